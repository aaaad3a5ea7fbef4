"""The campaign stage of `appatlas demo`: the planned tests run on virtual phones of the built-in app,
through the local adb + uiautomator2 server (the same path as phones on USB), with an HTML report."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from appatlas.agent.campaign import load_suite, run_campaign
from appatlas.agent.knowledge import Knowledge
from appatlas.graph.atlas import Atlas
from appatlas.types import TestCase

__all__ = ["checked_summary", "demo_campaign", "truth_holds"]

FALLBACK_INTENTS = (
    "turn on quiet hours in the notification settings",
    "open the archive with the email tester@example.com",
)


def demo_campaign(atlas_path: Path, tests_dir: Path, out_dir: Path, *, devices: int = 2,
                  truths: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Run the tests in `tests_dir` (or, when there are none, a few intents) on `devices` virtual phones.

    Returns a summary: counts per status, the devices, and where the reports are. With `truths`
    (intent -> what the app's real state must hold, see `truth_holds`), every verdict is compared
    with the state of the phone that gave it: `verdicts_checked`, `verdicts_wrong` and, per case,
    `truth`.
    """
    from appatlas.devices.fakeadb import FakeAdbServer
    from appatlas.devices.u2 import connect
    from appatlas.devices.virtual import open_app

    with Atlas.open(atlas_path) as atlas:
        knowledge = Knowledge.from_atlas(atlas)
    has_tests = tests_dir.is_dir() and any(tests_dir.glob("*.y*ml"))
    cases = load_suite(tests_dir) if has_tests else [
        TestCase(name=f"intent_{i + 1}", intent=text, start="", steps=()) for i, text in enumerate(FALLBACK_INTENTS)]
    phones = [open_app("demo", serial=f"virtual-{i + 1}") for i in range(max(1, devices))]
    package = phones[0].spec.package
    with FakeAdbServer(phones, port=0) as server:
        result = run_campaign(cases, [p.serial for p in phones],
                              connect=lambda s: connect(s, adb_port=server.port, app=package),
                              knowledge=knowledge, out=out_dir, resume=False, max_steps=20)
    summary = result.to_json()
    states = {p.serial: p.state() for p in phones}
    return checked_summary(summary, len(cases), states, truths or {}, truth_holds, out_dir)


def checked_summary(summary: Mapping[str, Any], cases: int, states: Mapping[str, Any],
                    truths: Mapping[str, Any], holds: Callable[[Any, Any], bool], report_dir: Path) -> dict[str, Any]:
    """A campaign's summary with each verdict compared with the app's real state: `states` by device serial,
    `truths` by intent, `holds(state, truth)` whether the intent really happened on that device."""
    verdicts = []
    for case in summary["cases"]:
        truth = truths.get(case["intent"])
        last = case["attempts"][-1] if case["attempts"] else None
        if truth is None or last is None:
            continue
        real = holds(states[last["device"]], truth)
        verdicts.append({"case": case["name"], "intent": case["intent"], "passed": bool(last["passed"]),
                         "real": real, "agrees": bool(last["passed"]) == real})
    return {"passed": summary["passed"], "counts": summary["counts"], "devices": summary["devices"],
            "seconds": summary["seconds"], "cases": cases,
            "verdicts_checked": len(verdicts), "verdicts_wrong": sum(not v["agrees"] for v in verdicts),
            "verdicts": verdicts,
            "report": str(report_dir / "report.html"), "junit": str(report_dir / "junit.xml")}


def truth_holds(state: Mapping[str, Any], truth: Mapping[str, Any]) -> bool:
    """Whether a virtual app's real state (VirtualDevice.state()) holds `truth`:

    {"list": id, "title": t[, key: value …]}  a row of list `id` titled t (with those data values)
    {"toggle": "screen.widget", "is": bool}    a switch / checkbox in that state
    {"visited": screen id}                      the app showed that screen
    """
    if "list" in truth:
        extra = {k: v for k, v in truth.items() if k not in ("list", "title")}
        return any(row.get("title") == truth["title"] and all(row.get(k) == v for k, v in extra.items())
                   for row in state["lists"].get(truth["list"], []))
    if "toggle" in truth:
        return state["toggles"].get(truth["toggle"]) == truth["is"]
    if "visited" in truth:
        return truth["visited"] in state["visited"]
    raise ValueError(f"not a truth: {dict(truth)}")
