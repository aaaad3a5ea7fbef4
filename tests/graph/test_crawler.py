from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appatlas.devices.virtual import open_app
from appatlas.graph.atlas import DB_NAME, Atlas
from appatlas.graph.crawler import CrawlConfig, crawl
from appatlas.graph.model import CrawlModel, candidates
from appatlas.types import ActionKind
from tests.conftest import crawl_ledger


def _crawl(tmp_path: Path, strategy: str = "atlas", budget: int = 800, **kw):
    device = open_app("demo", screenshots=False)
    atlas = Atlas.create(tmp_path / f"{strategy}.atlas", app="demo")
    report = crawl(device, atlas, package=device.spec.package, config=CrawlConfig(strategy=strategy, budget=budget,
                                                                                  **kw))
    return device, atlas, report


def _activities(atlas: Atlas) -> set[str]:
    return {atlas.screen(s.id, with_screenshot=False).activity for s in atlas.states()}


def test_atlas_strategy_reaches_every_screen_and_dialog_of_the_demo_app(tmp_path: Path) -> None:
    device = open_app("demo", screenshots=False)
    seen: set[str] = set()

    def watch(_progress: object) -> None:
        seen.update(x for x in device.location if x)

    with Atlas.create(tmp_path / "a.atlas", app="demo") as atlas:
        crawl(device, atlas, package=device.spec.package, config=CrawlConfig(budget=600), progress=watch)
    assert set(device.spec.screens) | set(device.spec.dialogs) <= seen


def test_the_screen_behind_text_entry_is_found_by_typing_a_valid_value(tmp_path: Path) -> None:
    _, atlas, _ = _crawl(tmp_path)
    typed = [t for t in atlas.transitions() if t.action.kind is ActionKind.TYPE]
    assert any("@" in t.action.text for t in typed)  # an email field got an email
    assert any(a.endswith("ArchiveActivity") for a in _activities(atlas))


def test_atlas_strategy_finds_more_screens_than_random_and_dfs_on_the_same_budget(tmp_path: Path) -> None:
    found = {s: _crawl(tmp_path, s, budget=300)[2].screens for s in ("atlas", "random", "dfs")}
    assert found["atlas"] > found["random"] and found["atlas"] > found["dfs"]


def test_a_crash_is_recorded_as_a_finding_with_the_path_that_led_there(tmp_path: Path) -> None:
    _, atlas, report = _crawl(tmp_path)
    (finding,) = [f for f in atlas.findings() if f["kind"] == "crash"][:1]
    assert report.findings >= 1 and "crashed" in finding["message"] and finding["path"]


DANGEROUS = ("Delete all", "Log out", "Archive everything")  # two default patterns and one only --deny names


def _danger_spec() -> dict:
    """An app whose first screen offers the dangerous buttons beside a harmless one, each to its own screen."""
    buttons = [{"button": label, "id": f"b{i}", "tap": {"go": f"after{i}"}} for i, label in enumerate(DANGEROUS)]
    return {
        "app": {"package": "com.x.danger", "name": "Danger", "launch": "home"},
        "screens": [
            {"id": "home", "title": "Home", "widgets": [*buttons, {"button": "Next", "id": "next", "tap": {"go": "other"}}]},
            *({"id": f"after{i}", "title": label, "widgets": [{"text": "Gone"}]} for i, label in enumerate(DANGEROUS)),
            {"id": "other", "title": "Other", "widgets": [{"text": "Safe"}]},
        ],
    }


def _tapped_and_reached(atlas: Atlas) -> tuple[set[str], set[str]]:
    tapped = {t.action.target.describe() for t in atlas.transitions() if t.action.target is not None}
    return tapped, _activities(atlas)


def test_dangerous_actions_are_never_tapped_and_deny_adds_patterns(tmp_path: Path) -> None:
    from appatlas.graph.model import DEFAULT_DENY

    def run(name: str, deny: tuple[str, ...]) -> tuple[set[str], set[str]]:
        with Atlas.create(tmp_path / f"{name}.atlas", app="com.x.danger") as atlas:
            crawl(open_app(_danger_spec(), screenshots=False), atlas, package="com.x.danger",
                  config=CrawlConfig(budget=60, deny=deny))
            return _tapped_and_reached(atlas)

    # Without a deny list the crawler taps all three within the budget: the app does tempt it.
    tapped, reached = run("open", ())
    assert all(any(label in t for t in tapped) for label in DANGEROUS), tapped
    assert {f"com.x.danger.After{i}Activity" for i in range(3)} <= reached
    tapped, reached = run("denied", DEFAULT_DENY + (r"archive everything",))
    assert not any(label in t for t in tapped for label in DANGEROUS), tapped
    assert not any(a.startswith("com.x.danger.After") for a in reached), reached
    assert "com.x.danger.OtherActivity" in reached  # the harmless button was still explored


def test_the_crawl_command_never_taps_defaults_or_its_deny_patterns(tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from appatlas.cli import app

    spec = tmp_path / "danger.yaml"
    spec.write_text(yaml.safe_dump(_danger_spec()))
    out = tmp_path / "cli.atlas"
    result = CliRunner().invoke(app, ["crawl", "--app", str(spec), "--out", str(out), "--budget", "60",
                                      "--deny", "archive every"])
    assert result.exit_code == 0, result.output
    with Atlas.open(out) as atlas:
        tapped, reached = _tapped_and_reached(atlas)
    assert not any(label in t for t in tapped for label in DANGEROUS), tapped
    assert "com.x.danger.OtherActivity" in reached and not any(a.startswith("com.x.danger.After") for a in reached)


def test_every_screen_offers_back_and_its_widgets(tmp_path: Path) -> None:
    screen = open_app("demo", screenshots=False).snapshot()
    kinds = {c.action.kind for c in candidates(screen)}
    assert ActionKind.BACK in kinds and ActionKind.TAP in kinds


def test_the_model_rebuilt_from_the_atlas_has_the_same_frontier(tmp_path: Path) -> None:
    device = open_app("demo", screenshots=False)
    atlas = Atlas.create(tmp_path / "m.atlas", app="demo")
    package = device.spec.package
    from appatlas.graph import crawler as crawler_module

    run = crawler_module._Crawl(device, atlas, package, CrawlConfig(budget=120), None, False)
    run.run()
    rebuilt = CrawlModel.from_atlas(atlas, explore=run._in_app)
    live = {k: v for k, v in run.model.frontier.items() if v}
    assert {k: v for k, v in rebuilt.frontier.items() if v} == live


def test_the_crawler_overhead_stays_within_milliseconds(tmp_path: Path) -> None:
    _, _, report = _crawl(tmp_path, budget=300)
    # Wall clock: about 1-2 ms per action on an idle machine; 50 ms is 25x that, so 2 cores loaded
    # several times over still pass while a per-action cost that grows with the atlas does not.
    # The 1,000-screen figure is a benchmark (`appatlas bench crawl`), not a test.
    assert report.overhead_ms_per_action < 50


def _committed(folder: Path) -> set[tuple[int, int, str]]:
    conn = sqlite3.connect(f"file:{folder / DB_NAME}?mode=ro", uri=True)
    try:
        return {(s, t, a) for s, t, a in conn.execute("SELECT source, target, action FROM transitions")}
    finally:
        conn.close()


@pytest.mark.timeout(120)
def test_a_crawl_killed_with_sigkill_resumes_and_keeps_every_transition(tmp_path: Path) -> None:
    out = tmp_path / "k.atlas"
    cmd = [sys.executable, "-m", "appatlas.cli", "crawl", "--app", "demo", "--out", str(out), "--budget", "100000"]
    env = {**os.environ, "COLUMNS": "120"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if (out / DB_NAME).exists() and len(_committed(out)) >= 60:
                    break
            except sqlite3.OperationalError:
                pass  # the schema is being created

            time.sleep(0.05)
        before = _committed(out)  # read by another process: only committed rows are visible
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    assert len(before) >= 60
    with Atlas.open(out) as atlas:
        assert before <= {(t.source, t.target, _blob(t.action)) for t in atlas.transitions()}
    killed = crawl_ledger(out, "com.appatlas.notes")
    spent = killed["observations"] - killed["returns"]  # what the resumed crawl counts as already spent
    resumed = subprocess.run([*cmd[:-1], str(spent + 50), "--resume"], capture_output=True, text=True, env=env,
                             timeout=60)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = _committed(out)
    assert before <= after
    ledger = crawl_ledger(out, "com.appatlas.notes")
    # Exactly the 50 actions the budget left (a restart from scratch would spend all of it again) ...
    assert (ledger["observations"] - killed["observations"]) - (ledger["returns"] - killed["returns"]) == 50
    # ... and the resumed crawl knew everything committed before the kill: its own counters are the
    # atlas's, so nothing seen before was counted again as new, and it found more.
    *_, last = re.findall(r"screens (\d+)\s+transitions (\d+)", resumed.stdout)
    assert (int(last[0]), int(last[1])) == (ledger["screens"], ledger["effects"])
    assert ledger["effects"] > killed["effects"]


def _blob(action) -> str:  # noqa: ANN001
    import json

    from appatlas.graph.codec import action_to_json

    return json.dumps(action_to_json(action), sort_keys=True, separators=(",", ":"))
