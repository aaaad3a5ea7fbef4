"""A game tested from pixels end to end: crawl, plan, campaign, with verdicts checked against the truth.

The Sky Hopper game (`canvas:game`) runs on virtual phones behind the local adb + uiautomator2
server, so the real client sees one SurfaceView, as on a phone with a Unity game. It is crawled
through `VisionDevice` (screens read from screenshots, taps at detected boxes), tests are planned
for four intents from that atlas alone, and run as a campaign on two fresh phones, again through
`VisionDevice`. Each verdict is compared with what the phone's app really holds afterwards
(`VirtualDevice.state()`, which nothing that plans or judges reads). The HTML report's screenshots
carry the detected boxes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["GAME_INTENTS", "GAME_TRUTHS", "vision_campaign"]

GAME_INTENTS = (
    "turn off the sound in the settings",
    "turn on vibration in the settings",
    "open the high scores",
    "play level 2",
)
# What each intent leaves in the game's real state, written by a person (see agent.demo.truth_holds).
GAME_TRUTHS: dict[str, dict[str, Any]] = {
    GAME_INTENTS[0]: {"toggle": "settings.sound", "is": False},
    GAME_INTENTS[1]: {"toggle": "settings.vibration", "is": True},
    GAME_INTENTS[2]: {"visited": "scores"},
    GAME_INTENTS[3]: {"visited": "level_2"},
}


def vision_campaign(out: Path, *, budget: int = 150, devices: int = 2, app: str = "game",
                    intents: tuple[str, ...] = GAME_INTENTS, truths: dict[str, dict[str, Any]] | None = None,
                    say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Crawl `canvas:<app>` from pixels into `out`/game.atlas, plan `intents`, run them; return a summary."""
    from appatlas.agent.campaign import load_suite, run_campaign
    from appatlas.agent.demo import truth_holds
    from appatlas.agent.knowledge import Knowledge
    from appatlas.devices.fakeadb import FakeAdbServer
    from appatlas.devices.u2 import connect
    from appatlas.devices.virtual import open_app
    from appatlas.graph.atlas import Atlas
    from appatlas.graph.crawler import CrawlConfig, crawl
    from appatlas.rag.demo import demo_retrieval
    from appatlas.vision.device import VisionDevice
    from appatlas.vision.ocr import load_ocr

    known: dict[str, dict[str, Any]] = dict(GAME_TRUTHS) if truths is None and intents == GAME_INTENTS \
        else dict(truths or {})
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    ocr = load_ocr()
    crawler_phone = open_app(f"canvas:{app}", serial="virtual-crawl")
    phones = [open_app(f"canvas:{app}", serial=f"virtual-{i + 1}") for i in range(max(1, devices))]
    package = crawler_phone.spec.package
    atlas_path = out / f"{app}.atlas"
    seen: set[str] = set()
    summary: dict[str, Any] = {"app": package}
    with FakeAdbServer([crawler_phone, *phones], port=0) as server:
        def open_phone(serial: str) -> VisionDevice:
            return VisionDevice(connect(serial, adb_port=server.port, app=package), ocr=ocr, annotate=True)

        say(f"crawling {package} from pixels through the local uiautomator2 server ({budget} actions)")
        dev = open_phone(crawler_phone.serial)
        try:
            with Atlas.create(atlas_path, app=package) as atlas:
                report = crawl(dev, atlas, package=package, config=CrawlConfig(budget=budget),
                               progress=lambda _p: seen.update(x for x in crawler_phone.location if x))
        finally:
            dev.close()
        expected = set(crawler_phone.spec.screens) | set(crawler_phone.spec.dialogs)
        summary["crawl"] = {"actions": report.actions, "screens": report.screens, "stopped": report.stopped,
                            "spec_screens_reached": len(seen & expected), "of": len(expected),
                            "missing": sorted(expected - seen),
                            "parse_ms_mean": round(sum(dev.ms) / max(1, len(dev.ms)), 1)}
        say("planning tests for the intents from the atlas alone")
        summary["plans"] = demo_retrieval(atlas_path, out / "tests", list(intents))
        with Atlas.open(atlas_path) as atlas:
            knowledge = Knowledge.from_atlas(atlas)
        cases = load_suite(out / "tests")
        say(f"running {len(cases)} tests on {len(phones)} phones, from pixels")
        result = run_campaign(cases, [p.serial for p in phones], connect=open_phone, knowledge=knowledge,
                              out=out / "campaign", resume=False, max_steps=20)
    camp = result.to_json()
    states = {p.serial: p.state() for p in phones}
    verdicts = []
    for case in camp["cases"]:
        truth = known.get(case["intent"])
        last = case["attempts"][-1] if case["attempts"] else None
        if truth is None or last is None:
            continue
        real = truth_holds(states[last["device"]], truth)
        verdicts.append({"intent": case["intent"], "passed": bool(last["passed"]), "real": real,
                         "agrees": bool(last["passed"]) == real})
    summary["campaign"] = {"cases": len(cases), "counts": camp["counts"], "passed": camp["passed"],
                           "verdicts": verdicts, "verdicts_wrong": sum(not v["agrees"] for v in verdicts),
                           "report": str(out / "campaign" / "report.html")}
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return summary
