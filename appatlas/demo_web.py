"""`appatlas demo --web`: the same pipeline as `appatlas demo`, on the built-in web app in Chromium.

1. serve Atlas Notes for the web on 127.0.0.1 and crawl it through Playwright + the system Chromium
   into a web atlas (screenshots included); the server tells which of its pages were served;
2. plan tests for intents from the atlas alone (captions, index, retrieval, shortest paths);
3. run them as a campaign on two browser contexts (two sessions: two "phones" with their own data),
   with JUnit XML and an HTML report, and compare every verdict with what the app really holds.

It writes the same `summary.md` / `summary.json` / `demo.atlas` / `tests/` / `campaign/` as the Android demo.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from appatlas.devices.apps.webdemo import PAGES, WebDemoServer
from appatlas.graph.atlas import Atlas
from appatlas.graph.crawler import CrawlConfig, CrawlProgress, crawl

__all__ = ["WEB_INTENTS", "WEB_TRUTHS", "run_web_demo", "web_truth_holds"]

WEB_INTENTS = (
    "create a text note named 'Weekend plans'",
    "turn on quiet hours in the notification settings",
    "open the archive with the email tester@example.com",
    "add a new task called 'Call the bank'",
)
# What each intent leaves in the app's real state (WebDemoServer.state()), written by a person as the
# ground truth every verdict is compared with. Nothing that plans or judges reads it.
WEB_TRUTHS: dict[str, dict[str, Any]] = {
    WEB_INTENTS[0]: {"note": "Weekend plans", "kind": "text"},
    WEB_INTENTS[1]: {"setting": "quiet_hours", "is": True},
    WEB_INTENTS[2]: {"unlocked_as": "tester@example.com"},
    WEB_INTENTS[3]: {"task": "Call the bank"},
}


def web_truth_holds(state: Mapping[str, Any], truth: Mapping[str, Any]) -> bool:
    """Whether the web demo's real state for one session holds `truth` (see WEB_TRUTHS)."""
    if "note" in truth:
        return any(n["title"] == truth["note"] and n.get("kind") == truth.get("kind", n.get("kind"))
                   for n in state["notes"])
    if "setting" in truth:
        return state["settings"].get(truth["setting"]) == truth["is"]
    if "unlocked_as" in truth:
        return state["unlocked_as"] == truth["unlocked_as"]
    if "task" in truth:
        return any(t["title"] == truth["task"] and t["due_days"] == truth.get("due_days", t["due_days"])
                   for t in state["tasks"])
    raise ValueError(f"not a truth: {dict(truth)}")


def run_web_demo(out: Path, *, budget: int = 600, progress: Callable[[CrawlProgress], None] | None = None,
                 say: Callable[[str], None] = lambda _: None, devices: int = 2) -> dict[str, Any]:
    """Run the web demo into `out` (replacing an earlier demo result there) and return its summary."""
    from appatlas.demo import _markdown, _prepare
    from appatlas.devices.web import connect

    _prepare(out)
    started = time.perf_counter()
    with WebDemoServer() as server:
        say(f"Atlas Notes for the web is served on {server.url}")
        crawler = connect(server.url, serial="web-crawler")
        try:
            package = crawler.app
            say(f"crawling {server.url} in Chromium {crawler.info().model.split()[-1]} with up to {budget} actions")
            with Atlas.create(out / "demo.atlas", app=package, platform="web") as atlas:
                report = crawl(crawler, atlas, package=package, config=CrawlConfig(budget=budget), progress=progress)
                counts = atlas.counts()
            served = server.state(crawler.cookies()["sid"])["visited"]
            model = crawler.info().model
        finally:
            crawler.close()
        summary: dict[str, Any] = {
            "app": package,
            "platform": "web",
            "backend": f"web: Playwright driving the system {model} on the built-in web demo",
            "crawl": {"actions": report.actions, "screens": report.screens, "states": counts["states"],
                      "transitions": counts["transitions"], "screenshots": counts["screenshots"],
                      "crashes_found": counts["findings"], "stopped": report.stopped,
                      "overhead_ms_per_action": round(report.overhead_ms_per_action, 2)},
            "spec_screens": {"expected": len(PAGES), "found": len(set(PAGES) & set(served)),
                             "missing": sorted(set(PAGES) - set(served))},
        }
        summary["plans"] = _plan_web(out, say)
        summary["campaign"] = _campaign(out, server, package, devices, say)
    summary["verdicts_checked"] = summary["campaign"].get("verdicts_checked", 0)
    summary["verdicts_wrong"] = summary["campaign"].get("verdicts_wrong", 0)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "summary.md").write_text(_markdown(summary).replace("appatlas-demo/demo.atlas", f"{out}/demo.atlas"))
    return summary


def _plan_web(out: Path, say: Callable[[str], None]) -> dict[str, Any]:
    try:
        from appatlas.rag.demo import demo_retrieval
    except ImportError:
        return {"skipped": "the retrieval stage is not installed in this build"}
    say("planning tests for intents from the atlas alone")
    return demo_retrieval(out / "demo.atlas", out / "tests", list(WEB_INTENTS))


def _campaign(out: Path, server: WebDemoServer, package: str, devices: int,
              say: Callable[[str], None]) -> dict[str, Any]:
    try:
        from appatlas.agent.campaign import load_suite, run_campaign
        from appatlas.agent.demo import checked_summary
        from appatlas.agent.knowledge import Knowledge
    except ImportError:
        return {"skipped": "the agent stage is not installed in this build"}
    from appatlas.devices.web import connect
    from appatlas.types import TestCase

    with Atlas.open(out / "demo.atlas") as atlas:
        knowledge = Knowledge.from_atlas(atlas)
    tests = out / "tests"
    cases = load_suite(tests) if tests.is_dir() and any(tests.glob("*.y*ml")) else [
        TestCase(name=f"intent_{i + 1}", intent=text, start="", steps=()) for i, text in enumerate(WEB_INTENTS)]
    serials = [f"web-{i + 1}" for i in range(max(1, devices))]
    opened: dict[str, Any] = {}
    sessions: dict[str, str] = {}

    def open_context(serial: str):  # noqa: ANN202 - a WebDevice
        dev = connect(server.url, serial=serial, app=package)
        opened[serial] = dev
        sessions[serial] = dev.cookies()["sid"]
        return dev

    say(f"running the planned tests as a campaign on {len(serials)} browser contexts")
    try:
        result = run_campaign(cases, serials, connect=open_context, knowledge=knowledge, out=out / "campaign",
                              resume=False, max_steps=20)
    finally:
        for dev in opened.values():
            dev.close()
    summary = result.to_json()
    states = {serial: server.state(sid) for serial, sid in sessions.items()}
    return checked_summary(summary, len(cases), states, WEB_TRUTHS, web_truth_holds, out / "campaign")
