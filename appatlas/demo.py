"""`appatlas demo`: the whole pipeline that exists so far, on the built-in demo app, with no phone.

The app runs on a virtual phone behind the local adb + uiautomator2 server, so the demo drives it
through the real uiautomator2 client — the same path as a phone on USB. Stages:

1. crawl the app into an atlas (screenshots included) and check every screen of it was found;
2. plan tests for a few intents from the atlas alone (captions, index, retrieval, shortest paths);
3. run those tests as a small campaign on two virtual phones, with JUnit XML and an HTML report.

It writes `summary.md` and `summary.json` beside the atlas in the result folder.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from appatlas.devices.base import Device
from appatlas.devices.virtual import VirtualDevice, open_app
from appatlas.errors import AppatlasError
from appatlas.graph.atlas import Atlas
from appatlas.graph.crawler import CrawlConfig, CrawlProgress, crawl

__all__ = ["DEMO_INTENTS", "DEMO_TRUTHS", "run_demo"]

DEMO_INTENTS = (
    "create a text note named 'Groceries'",
    "turn on quiet hours in the notification settings",
    "open the archive with the email tester@example.com",
    "add a new task called 'Call the bank'",
)
# What each intent leaves in the app's real state (VirtualDevice.state()), written by a person as the
# ground truth every verdict of the demo is compared with. Nothing that plans or judges reads it.
DEMO_TRUTHS = {
    DEMO_INTENTS[0]: {"list": "notes", "title": "Groceries", "kind": "text"},
    DEMO_INTENTS[1]: {"toggle": "quiet_hours.pref_quiet", "is": True},
    DEMO_INTENTS[2]: {"visited": "archive"},
    DEMO_INTENTS[3]: {"list": "tasks", "title": "Call the bank"},
}
_MARKER = "summary.json"


def run_demo(out: Path, *, budget: int = 600, through_u2: bool = True,
             progress: Callable[[CrawlProgress], None] | None = None,
             say: Callable[[str], None] = lambda _: None, web: bool = False) -> dict[str, Any]:
    """Run the demo into `out` (replacing an earlier demo result there) and return its summary.

    `web=True` runs the same stages on the built-in web app in Chromium (`appatlas.demo_web`)."""
    if web:
        from appatlas.demo_web import run_web_demo

        return run_web_demo(out, budget=budget, progress=progress, say=say)
    _prepare(out)
    started = time.perf_counter()
    virtual = open_app("demo", serial="virtual-1")
    package = virtual.spec.package
    visited: set[str] = set()

    def watch(p: CrawlProgress) -> None:
        # The virtual phone knows which of its spec's screens it shows; the crawler never sees this.
        screen, dialog = virtual.location
        visited.update(x for x in (screen, dialog) if x)
        if progress is not None:
            progress(p)

    with _device(virtual, through_u2=through_u2, say=say) as device:
        say(f"crawling {package} ({virtual.spec.name}) with up to {budget} actions")
        with Atlas.create(out / "demo.atlas", app=package) as atlas:
            report = crawl(device, atlas, package=package, config=CrawlConfig(budget=budget), progress=watch)
            counts = atlas.counts()
    expected = set(virtual.spec.screens) | set(virtual.spec.dialogs)
    summary: dict[str, Any] = {
        "app": package,
        "backend": "u2 via the local adb + uiautomator2 server" if through_u2 else "virtual device",
        "crawl": {"actions": report.actions, "screens": report.screens, "states": counts["states"],
                  "transitions": counts["transitions"], "screenshots": counts["screenshots"],
                  "crashes_found": counts["findings"], "stopped": report.stopped,
                  "overhead_ms_per_action": round(report.overhead_ms_per_action, 2)},
        "spec_screens": {"expected": len(expected), "found": len(expected & visited),
                         "missing": sorted(expected - visited)},
    }
    summary["plans"] = _plan(out, say)
    summary["campaign"] = _campaign(out, say)
    summary["verdicts_checked"] = summary["campaign"].get("verdicts_checked", 0)
    summary["verdicts_wrong"] = summary["campaign"].get("verdicts_wrong", 0)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (out / _MARKER).write_text(json.dumps(summary, indent=2))
    (out / "summary.md").write_text(_markdown(summary))
    return summary


def _prepare(out: Path) -> None:
    if out.exists():
        if not (out / _MARKER).is_file() and any(out.iterdir()):
            raise AppatlasError(f"{out} exists and is not an earlier demo result; pass another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / _MARKER).write_text('{"status": "running"}')  # marks the folder as ours even if this run dies


@contextmanager
def _device(virtual: VirtualDevice, *, through_u2: bool, say: Callable[[str], None]) -> Iterator[Device]:
    if not through_u2:
        yield virtual
        return
    from appatlas.devices.fakeadb import FakeAdbServer
    from appatlas.devices.u2 import connect

    with FakeAdbServer([virtual], port=0) as server:
        say(f"virtual phone {virtual.serial} is served by a local adb server on 127.0.0.1:{server.port}")
        device = connect(virtual.serial, adb_port=server.port, app=virtual.spec.package)
        try:
            yield device
        finally:
            device.close()


def _plan(out: Path, say: Callable[[str], None]) -> dict[str, Any]:
    try:
        from appatlas.rag.demo import demo_retrieval
    except ImportError:
        return {"skipped": "the retrieval stage is not installed in this build"}
    try:  # the agent's own decisions rehearsed on the atlas plan first (`appatlas plan`'s default planner)
        from appatlas.agent.rehearse import rehearser
    except ImportError:
        rehearser = None
    say("planning tests for intents from the atlas alone")
    return demo_retrieval(out / "demo.atlas", out / "tests", list(DEMO_INTENTS), rehearse_with=rehearser)


def _campaign(out: Path, say: Callable[[str], None]) -> dict[str, Any]:
    try:
        from appatlas.agent.demo import demo_campaign
    except ImportError:
        return {"skipped": "the agent stage is not installed in this build"}
    say("running the planned tests as a campaign on two virtual phones through the local u2 server")
    return demo_campaign(out / "demo.atlas", out / "tests", out / "campaign", devices=2, truths=DEMO_TRUTHS)


def _markdown(s: dict[str, Any]) -> str:
    c, a = s["crawl"], s["spec_screens"]
    lines = [
        f"# appatlas demo — {s['app']}",
        "",
        f"Driven through: {s['backend']}. Took {s['seconds']} s.",
        "",
        "## Crawl",
        f"- {c['actions']} actions found {c['screens']} screens ({c['states']} states), "
        f"{c['transitions']} transitions, {c['screenshots']} screenshots, {c['crashes_found']} crash finding(s).",
        f"- Stopped: {c['stopped']}. Crawler overhead: {c['overhead_ms_per_action']} ms per action.",
        f"- Screens and dialogs of the app reached: {a['found']} of {a['expected']}"
        + (f" (missing: {', '.join(a['missing'])})" if a["missing"] else " (all of them)."),
        "",
        "## Test plans",
    ]
    plans = s.get("plans", {})
    if "skipped" in plans:
        lines.append(f"- {plans['skipped']}")
    else:
        for t in plans.get("tests", []):
            if "error" in t:
                lines.append(f"- “{t['intent']}”: no plan ({t['error']})")
            else:
                expect = "; ".join(t.get("expect", [])) or "nothing to check"
                lines.append(f"- “{t['intent']}”: {t['steps']} steps → `{Path(t['file']).name}`; expects: {expect}")
    lines += ["", "## Campaign"]
    camp = s.get("campaign", {})
    if "skipped" in camp:
        lines.append(f"- {camp['skipped']}")
    else:
        counts = ", ".join(f"{n} {k}" for k, n in camp.get("counts", {}).items())
        lines.append(f"- {camp.get('cases')} test cases on {len(camp.get('devices', []))} phones: {counts}.")
        lines.append(f"- Verdicts compared with the app's real state: {camp.get('verdicts_checked', 0)}, "
                     f"wrong: {camp.get('verdicts_wrong', 0)}.")
        lines.append(f"- Report: `{Path(camp.get('report', '')).relative_to(Path(camp.get('report', '')).parents[1])}`, "
                     f"JUnit: `{Path(camp.get('junit', '')).relative_to(Path(camp.get('junit', '')).parents[1])}`.")
    lines += ["", "Open `demo.atlas` with `appatlas info appatlas-demo/demo.atlas`."]
    return "\n".join(lines) + "\n"
