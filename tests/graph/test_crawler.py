from __future__ import annotations

import os
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


def test_dangerous_actions_are_never_candidates(tmp_path: Path) -> None:
    device = open_app("demo", screenshots=False)
    _, atlas, _ = _crawl(tmp_path)
    for t in atlas.transitions():
        label = t.action.target.describe() if t.action.target else ""
        assert "delete all" not in label.lower() and "log out" not in label.lower()
    del device


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
    assert report.overhead_ms_per_action < 20  # the 1,000-screen figure is measured by `bench crawl`


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
        observed = atlas.counts()["observations"]
        assert before <= {(t.source, t.target, _blob(t.action)) for t in atlas.transitions()}
    resumed = subprocess.run([*cmd[:-1], str(observed + 50), "--resume"], capture_output=True, text=True, env=env,
                             timeout=60)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = _committed(out)
    assert before <= after and len(after) >= len(before)
    with Atlas.open(out) as atlas:
        assert atlas.counts()["observations"] >= observed + 40  # it went on from where it stopped


def _blob(action) -> str:  # noqa: ANN001
    import json

    from appatlas.graph.codec import action_to_json

    return json.dumps(action_to_json(action), sort_keys=True, separators=(",", ":"))
