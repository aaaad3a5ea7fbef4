"""The campaign rows of `appatlas bench faults`: faults injected into a real campaign.

A campaign of four intents runs on two phones of the built-in app served by the local adb +
uiautomator2 server, through the real uiautomator2 client. A fault hits the second phone while it
runs its first case (or the model endpoint, or the campaign process itself). The rule for
"survived": every case still ends with a verdict (none lost), the reports are written, and every
case that passes without the fault still passes — at worst as *flaky*, after its retry on the
other phone. The fault-free verdicts are measured in the same run.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from appatlas.agent.campaign import STATE_FILE, CampaignResult, run_campaign
from appatlas.agent.knowledge import Knowledge
from appatlas.devices.fakeadb import FakeAdbServer
from appatlas.devices.u2 import connect
from appatlas.devices.virtual import open_app
from appatlas.graph.atlas import Atlas
from appatlas.graph.crawler import CrawlConfig, crawl
from appatlas.types import TestCase

__all__ = ["CAMPAIGN_SCENARIOS"]

INTENTS = ("turn on quiet hours in the notification settings", "open the archive with the email tester@example.com",
           "add a new task called 'Call the bank' due in 3 days", "turn on the sound in the notification settings")
SERIALS = ("virtual-1", "virtual-2")
VICTIM = "virtual-2"
MAX_STEPS = 12
FINAL = ("passed", "flaky", "failed")


def cases(copies: int = 1) -> list[TestCase]:
    """The campaign: the four intents, `copies` times each (more cases keep a campaign running longer)."""
    return [TestCase(name=f"case{c}_{i}", intent=text, start="", steps=())
            for c in range(copies) for i, text in enumerate(INTENTS)]


@cache
def knowledge(budget: int = 300) -> Knowledge:
    """What the agent knows of the built-in app: a crawl of `budget` actions (0: nothing at all)."""
    import tempfile

    device = open_app("demo", screenshots=False)
    with tempfile.TemporaryDirectory() as tmp, \
            Atlas.create(Path(tmp) / "demo.atlas", app=device.spec.package) as atlas:
        if budget:
            crawl(device, atlas, package=device.spec.package, config=CrawlConfig(budget=budget))
        return Knowledge.from_atlas(atlas)


@contextmanager
def _phones() -> Iterator[FakeAdbServer]:
    devices = [open_app("demo", serial=s, screenshots=False) for s in SERIALS]
    with FakeAdbServer(devices) as server:
        yield server


def _campaign(server: FakeAdbServer, out: Path, the_cases: list[TestCase], *, know: Knowledge,
              llm: object | None = None, on_event: Callable[[str], None] | None = None,
              resume: bool = False) -> CampaignResult:
    package = open_app("demo", screenshots=False).spec.package
    return run_campaign(the_cases, list(SERIALS), knowledge=know, out=out, llm=llm, max_steps=MAX_STEPS,
                        resume=resume, on_event=on_event,
                        connect=lambda s: connect(s, adb_port=server.port, app=package, timeout=3.0,
                                                  screenshots=False))


@cache
def _baseline(budget: int = 300) -> dict[str, str]:
    """Fault-free verdicts, measured once per run."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, _phones() as server:
        result = _campaign(server, Path(tmp), cases(), know=knowledge(budget))
    return {c.name: c.status for c in result.cases}


def _judge(result: CampaignResult, out: Path, baseline: dict[str, str]) -> tuple[bool, int, str]:
    """(survived, lost, what happened) for a finished campaign."""
    lost = [c.name for c in result.cases if c.status not in FINAL]
    worse = [c.name for c in result.cases if baseline.get(c.name) == "passed" and c.status not in ("passed", "flaky")]
    try:
        written = json.loads((out / "results.json").read_text())
        junit = ET.parse(out / "junit.xml").getroot()
        reports = len(written["cases"]) == len(result.cases) and junit.get("tests") == str(len(result.cases))
    except (OSError, ValueError, KeyError, ET.ParseError):
        reports = False
    counts = {s: sum(c.status == s for c in result.cases) for s in (*FINAL, "not_run")}
    what = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    if worse:
        what += f"; worse than without the fault: {', '.join(worse)}"
    if not reports:
        what += "; reports missing or incomplete"
    return not lost and not worse and reports, len(lost), what


def _row(fault: str, survived: bool, lost: int, recover: float | None, note: str) -> dict[str, Any]:
    return {"fault": fault, "target": "campaign", "survived": survived, "lost": lost, "recover_s": recover,
            "note": note}


def _phone_fault(fault: str, inject: Callable[[FakeAdbServer], None], note: str) -> Callable[[Path], dict[str, Any]]:
    """A fault on the second phone while it runs its first case."""

    def run(tmp: Path) -> dict[str, Any]:
        baseline = _baseline()
        marks: dict[str, Any] = {}
        with _phones() as server:

            def event(message: str) -> None:
                if "t" not in marks and message.startswith(f"{VICTIM}: running "):
                    marks["case"] = message.split(": running ", 1)[1]
                    marks["t"] = time.perf_counter()
                    inject(server)
                elif "t" in marks and "done" not in marks and message.split(": ", 1)[-1].startswith(
                        f"{marks['case']} ") and message.split(" ")[2] in FINAL:
                    marks["done"] = time.perf_counter() - marks["t"]

            result = _campaign(server, tmp, cases(), know=knowledge(), on_event=event)
        survived, lost, what = _judge(result, tmp, baseline)
        if "t" not in marks:
            return _row(fault, False, lost, None, f"the fault was never injected ({what})")
        moved = result.devices.get(VICTIM, "ok")
        where = "" if moved == "ok" else f"; {VICTIM} dropped out ({moved.split(':')[0]})"
        return _row(fault, survived, lost, marks.get("done"), f"{note} ({what}{where})")

    return run


class _Counting:
    """Passes choices on to a real model client and counts them: the row must prove the model was asked."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name, self.asked, self.seconds = inner, inner.name, 0, 0.0

    def choose(self, context: str, options: Any) -> tuple[int, list[float]]:
        self.asked += 1
        began = time.perf_counter()
        try:
            return self.inner.choose(context, options)
        finally:
            self.seconds += time.perf_counter() - began

    def chat(self, messages: Any, **kw: Any) -> str:
        return self.inner.chat(messages, **kw)


class _Silent(http.server.BaseHTTPRequestHandler):
    """An endpoint that takes the request and never answers in time."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        time.sleep(3.0)
        try:
            self.send_error(504)
        except OSError:
            pass  # the client gave up long ago, as it should

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _endpoint(kind: str) -> Iterator[str]:
    if kind == "down":  # a port nobody listens on: connection refused
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        yield f"http://127.0.0.1:{port}/v1"
        return
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Silent)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _llm_fault(fault: str, kind: str) -> Callable[[Path], dict[str, Any]]:
    """The model endpoint is down or too slow: the agent must go on from the graph alone, with a warning.

    The atlas is empty (an app never crawled), so the graph cannot answer and the agent asks the
    model; its verdicts must then equal those of a graph-only campaign on the same atlas. Recovery is
    the time spent waiting on the failing endpoint.
    """

    def run(tmp: Path) -> dict[str, Any]:
        from appatlas.agent.llm_openai import OpenAILM

        baseline = _baseline(budget=0)
        with _endpoint(kind) as url, _phones() as server:
            llm = _Counting(OpenAILM(base_url=url, model="local", timeout=0.5, max_retries=1))
            result = _campaign(server, tmp, cases(), know=knowledge(0), llm=llm)
        survived, lost, what = _judge(result, tmp, baseline)
        same = {c.name: c.status for c in result.cases} == baseline
        warned = sum(bool(a.get("warnings")) for c in result.cases for a in c.attempts)
        ok = survived and same and llm.asked > 0 and warned > 0
        note = (f"asked {llm.asked}×, all failed ({llm.seconds:.2f} s waiting in all); graph-only from then on (warning on "
                f"{warned} attempt(s)); verdicts {'equal' if same else 'differ from'} graph-only: {what}")
        return _row(fault, ok, lost, llm.seconds, note)

    return run


def _child(out: str) -> None:
    """The campaign process `kill -9` hits: eight cases on two phones, state saved after each."""
    with _phones() as server:
        _campaign(server, Path(out), cases(copies=2), know=knowledge(), resume=True)


def _finished(out: Path) -> dict[str, Any]:
    try:
        state = json.loads((out / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {c["name"]: c["attempts"] for c in state.get("cases", []) if c.get("status") in FINAL}


def _kill_9(tmp: Path) -> dict[str, Any]:
    fault = "kill -9 of a campaign, then resume"
    out = tmp / "campaign"
    code = f"from appatlas.bench.campaign_faults import _child; _child({str(out)!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=os.environ.copy())
    before: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not before and proc.poll() is None:
            time.sleep(0.02)
            before = _finished(out)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    if not before:
        return _row(fault, False, 0, None, "no case finished before the kill; nothing was tested")
    ran: list[str] = []
    t = time.perf_counter()
    with _phones() as server:
        result = _campaign(server, out, cases(copies=2), know=knowledge(), resume=True,
                           on_event=lambda m: ran.append(m.split(": running ", 1)[1]) if ": running " in m else None)
    recover = time.perf_counter() - t
    after = {c.name: c.attempts for c in result.cases}
    lost = sum(after.get(name) != attempts for name, attempts in before.items())
    rerun = sorted(set(ran) & set(before))
    survived, missing, what = _judge(result, out, {c.name: "passed" for c in cases(copies=2)})
    note = f"killed with {len(before)} of 8 cases finished; resumed, {what}"
    if rerun:
        note += f"; ran again: {', '.join(rerun)}"
    return _row(fault, survived and not rerun and not lost, lost + missing, recover, note)


CAMPAIGN_SCENARIOS: list[tuple[str, Callable[[Path], dict[str, Any]]]] = [
    ("campaign kill -9", _kill_9),
    ("campaign device removed", _phone_fault("device removed mid-campaign", lambda s: s.drop(VICTIM),
                                             "its case moved to the other phone")),
    ("campaign ui server", _phone_fault("UI server killed mid-campaign", lambda s: s.kill_ui_server(VICTIM),
                                        "restarted by the client")),
    ("campaign slow", _phone_fault("slow dumps mid-campaign (past the 3 s timeout)",
                                   lambda s: s.slow_dumps(VICTIM, 3500, count=1),
                                   "reconnected; the case ran again")),
    ("campaign empty", _phone_fault("empty dumps mid-campaign", lambda s: s.empty_dumps(VICTIM, 2), "retried")),
    ("campaign crash loop", _phone_fault("app crash loop mid-campaign (next 5 launches crash)",
                                         lambda s: s.crash_on_launch(VICTIM, 5),
                                         "failed there, passed on its retry elsewhere")),
    ("llm down", _llm_fault("LLM endpoint down", "down")),
    ("llm timeout", _llm_fault("LLM endpoint timing out", "timeout")),
]
