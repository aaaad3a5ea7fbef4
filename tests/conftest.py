"""Shared fixtures: the recorded data folder (skipped cleanly when absent) and imported atlases."""

from __future__ import annotations

import os
import random
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import settings

# Hypothesis draws the same examples on every run (CI runs the README's bare `python -m pytest`, so
# the default profile is the derandomized one); a property takes milliseconds per example, and the
# 5 s deadline still fits a 2-core machine loaded several times over while a hang fails the example.
# HYPOTHESIS_PROFILE=explore draws new random examples (with the example database) for a local hunt.
settings.register_profile("ci", derandomize=True, database=None, deadline=timedelta(seconds=5), print_blob=True)
settings.register_profile("explore", deadline=timedelta(seconds=5), print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("APPATLAS_DATA", REPO.parent / "shared" / "data"))
DROIDTASK = DATA / "droidtask"
YELP = DATA / "droidbot-yelp"
DEV_APPS = sorted(p.name for p in DROIDTASK.iterdir() if p.is_dir()) if DROIDTASK.is_dir() else []
NO_DATA = f"needs {DROIDTASK} (the shared data folder beside the repository); not present here"
# DEV_APPS for parametrize: without the data, one parameter that skips saying why (an empty
# parameter set would skip as "got empty parameter set", which names nothing to fix).
DEV_APP_PARAMS = DEV_APPS or [pytest.param("absent", marks=pytest.mark.skip(reason=NO_DATA))]
DATA_FIXTURES = frozenset({"droidtask", "yelp", "imported"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that asks for the shared data carries the `data` marker (so `-m "not data"` leaves it out)."""
    for item in items:
        if DATA_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("data") is None:
            item.add_marker(pytest.mark.data)


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Every test starts from the same seed of every global random source, whatever ran before it."""
    random.seed(0)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(0)
    if "torch" in sys.modules:  # seeding must not import torch (seconds) for tests that never use it
        sys.modules["torch"].manual_seed(0)


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs {path} (the shared data folder beside the repository); not present here")
    return path


@pytest.fixture(scope="session")
def droidtask() -> Path:
    return need(DROIDTASK)


@pytest.fixture(scope="session")
def yelp() -> Path:
    return need(YELP)


@pytest.fixture(scope="session")
def imported(tmp_path_factory: pytest.TempPathFactory, droidtask: Path):
    """app name -> (ImportReport, atlas folder), each dev app imported once per test session."""
    from appatlas.graph.droidbot import import_droidbot

    cache: dict[str, object] = {}

    def get(app: str):
        if app not in cache:
            out = tmp_path_factory.mktemp(app) / f"{app}.atlas"
            cache[app] = (import_droidbot(droidtask / app, out), out)
        return cache[app]

    return get


def crawl_ledger(folder: Path, package: str) -> dict[str, int]:
    """What a crawler resuming on the atlas at `folder` must take over, counted from the atlas itself.

    `screens` and `effects` are what the crawl model counts as seen (distinct structure keys;
    distinct (screen, action spot, screen) effects: CrawlModel.learn's "new"), so a resumed crawl's
    own counters must equal them; `observations` minus `returns` (the back presses recorded after
    the crawl left the app, which the crawler does not count as actions) is the actions spent
    (a permission dialog is the app's, as for the crawler).
    """
    from appatlas.graph.atlas import Atlas
    from appatlas.graph.crawler import PERMISSION_PACKAGES
    from appatlas.graph.model import spot

    with Atlas.open(folder) as atlas:
        states = {s.id: s for s in atlas.states()}
        outside = {sid for sid in states if atlas.screen(sid, with_screenshot=False).package not in (package, *PERMISSION_PACKAGES)}
        transitions = {t.id: t for t in atlas.transitions()}
        key = {sid: s.structure_key for sid, s in states.items()}
        observed = list(atlas.observations())
        return {"screens": len(set(key.values())), "observations": len(observed),
                "effects": len({(key[t.source], spot(t.action), key[t.target]) for t in transitions.values()}),
                "returns": sum(transitions[tid].source in outside for tid in observed)}


def byte_level_bpe():
    """A byte-level BPE tokenizer with no merges (one token per byte): tiny test models need no download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    tok = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(sorted(alphabet))}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok
