"""Campaigns: a suite of test cases run across devices, one worker per device, in parallel.

- A case that fails is run once more on another device (when one is left): passing then makes it
  *flaky*, failing again makes it *broken*.
- A device that hiccups (a timeout, its UI server dead past the client's own restart) is reconnected
  and its case goes back to the queue; a device that is gone (disconnected, or failing again right
  after a reconnect) stops its worker, and the other devices finish the suite.
- Progress is a JSON state file rewritten atomically after every case, so an interrupted campaign
  resumes where it stopped (finished cases are not run again).
- Results: `results.json`, JUnit XML (`junit.xml`) and a self-contained HTML report (`report.html`).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appatlas.agent.knowledge import Knowledge
from appatlas.agent.loop import Agent, RunConfig
from appatlas.devices.base import Device
from appatlas.errors import DeviceDisconnected, DeviceError
from appatlas.types import TestCase

__all__ = ["CampaignResult", "CaseResult", "load_suite", "run_campaign"]

log = logging.getLogger(__name__)
DeviceFactory = Callable[[str], Device]
STATE_FILE = "campaign-state.json"
RECONNECTS = 2  # per device and campaign: more hiccups than this and the device is taken out


@dataclass
class CaseResult:
    name: str
    intent: str
    status: str = "pending"  # pending | passed | flaky | failed | not_run
    attempts: list[dict[str, Any]] = field(default_factory=list)  # {device, passed, reason, steps, seconds}

    @property
    def passed(self) -> bool:
        return self.status in ("passed", "flaky")

    @property
    def final(self) -> bool:
        return self.status in ("passed", "flaky", "failed")


@dataclass
class CampaignResult:
    cases: list[CaseResult]
    devices: dict[str, str]  # serial -> "ok" | why it dropped out
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.passed for c in self.cases)

    def to_json(self) -> dict[str, Any]:
        counts = {s: sum(c.status == s for c in self.cases) for s in ("passed", "flaky", "failed", "not_run")}
        return {"passed": self.passed, "seconds": round(self.seconds, 2), "counts": counts, "devices": self.devices,
                "cases": [{"name": c.name, "intent": c.intent, "status": c.status, "attempts": c.attempts}
                          for c in self.cases]}


def load_suite(path: str | Path) -> list[TestCase]:
    """Test cases from a YAML file or a folder of them (the planner's test-case format)."""
    from appatlas.graph.testcases import load_tests

    path = Path(path)
    files = sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
    cases: list[TestCase] = []
    for f in files:
        cases += load_tests(f).tests
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"test names must be unique in a campaign; repeated: {', '.join(dupes)}")
    return cases


def run_campaign(cases: Sequence[TestCase], serials: Sequence[str], *, connect: DeviceFactory, knowledge: Knowledge,
                 out: Path, llm: object | None = None, max_steps: int = 30, resume: bool = True,
                 on_event: Callable[[str], None] | None = None) -> CampaignResult:
    """Run `cases` on the devices `serials` (opened with `connect`) and write the results into `out`."""
    if not serials:
        raise ValueError("a campaign needs at least one device (--device SERIAL)")
    out.mkdir(parents=True, exist_ok=True)
    campaign = _Campaign(list(cases), list(serials), connect, knowledge, out, llm, max_steps, on_event)
    if resume:
        campaign.restore()
    result = campaign.run()
    write_reports(result, out, knowledge=knowledge)
    return result


def write_reports(result: CampaignResult, out: Path, *, knowledge: Knowledge | None = None) -> None:
    from appatlas.agent.report_html import html_report
    from appatlas.agent.report_junit import junit_xml

    _atomic(out / "results.json", json.dumps(result.to_json(), indent=2))
    _atomic(out / "junit.xml", junit_xml(result))
    _atomic(out / "report.html", html_report(result, knowledge=knowledge))


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class _Campaign:
    def __init__(self, cases: list[TestCase], serials: list[str], connect: DeviceFactory, knowledge: Knowledge,
                 out: Path, llm: object | None, max_steps: int, on_event: Callable[[str], None] | None) -> None:
        self.cases = {c.name: c for c in cases}
        self.results = {c.name: CaseResult(c.name, c.intent) for c in cases}
        self.serials = serials
        self.connect = connect
        self.knowledge = knowledge
        self.out = out
        self.llm = llm
        self.max_steps = max_steps
        self.say = on_event or (lambda _: None)
        self.devices: dict[str, str] = {s: "ok" for s in serials}
        self.lock = threading.Lock()
        self.work: queue.Queue[tuple[str, str]] = queue.Queue()  # (case name, device to avoid)
        self.busy = 0

    # --- state ------------------------------------------------------------------------------------

    def restore(self) -> None:
        path = self.out / STATE_FILE
        if not path.is_file():
            return
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("campaign state %s is unreadable (%s); starting over", path, exc)
            return
        for entry in saved.get("cases", []):
            r = self.results.get(entry.get("name"))
            if r is not None and entry.get("status") in ("passed", "flaky", "failed", "pending"):
                r.status = entry["status"]
                r.attempts = list(entry.get("attempts", []))
        done = sum(r.final for r in self.results.values())
        if done:
            self.say(f"resuming: {done} of {len(self.results)} case(s) already finished")

    def save(self) -> None:
        state = CampaignResult(list(self.results.values()), dict(self.devices)).to_json()
        _atomic(self.out / STATE_FILE, json.dumps(state, indent=2))

    # --- running ----------------------------------------------------------------------------------

    def run(self) -> CampaignResult:
        began = time.perf_counter()
        for r in self.results.values():
            if not r.final:
                avoid = r.attempts[-1]["device"] if r.attempts else ""
                self.work.put((r.name, avoid))
        workers = [threading.Thread(target=self.worker, args=(s,), name=f"campaign-{s}", daemon=True)
                   for s in self.serials]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        for r in self.results.values():
            if not r.final:
                r.status = "not_run"  # every device dropped out before it could run
        self.save()
        return CampaignResult(list(self.results.values()), dict(self.devices), time.perf_counter() - began)

    def alive(self) -> list[str]:
        return [s for s, why in self.devices.items() if why == "ok"]

    def take(self, serial: str) -> str | None:
        """The next case for `serial`: not one it should avoid while another live device can take it."""
        while True:
            with self.lock:
                if self.devices[serial] != "ok":
                    return None
                skipped = []
                found = None
                while not self.work.empty():
                    name, avoid = self.work.get_nowait()
                    if avoid == serial and len(self.alive()) > 1:
                        skipped.append((name, avoid))
                        continue
                    found = name
                    break
                for item in skipped:
                    self.work.put(item)
                if found is not None:
                    self.busy += 1
                    return found
                if self.busy == 0 and not skipped:
                    return None  # nothing queued and nothing running that could come back
            time.sleep(0.05)

    def worker(self, serial: str) -> None:
        try:
            device = self.connect(serial)
        except DeviceError as exc:
            self.drop(serial, f"could not connect: {exc}")
            return
        agent = self.new_agent()
        reconnects = 0
        while (name := self.take(serial)) is not None:
            self.say(f"{serial}: running {name}")
            try:
                attempt = self.attempt(device, agent, name, serial)
            except DeviceError as exc:
                with self.lock:
                    self.busy -= 1
                    self.work.put((name, ""))  # not the case's fault: it runs again
                if not isinstance(exc, DeviceDisconnected) and reconnects < RECONNECTS:
                    reconnects += 1
                    self.say(f"{serial}: {type(exc).__name__} ({exc}); reconnecting ({reconnects} of {RECONNECTS})")
                    close = getattr(device, "close", None)
                    if close is not None:
                        close()
                    try:
                        device = self.connect(serial)
                        continue
                    except DeviceError as again:
                        exc = again
                self.drop(serial, f"{type(exc).__name__}: {exc}")
                return
            self.finish(name, attempt)

    def new_agent(self) -> Agent | None:
        """The decision loop a worker runs its cases with (a farm runs it next to the phone instead)."""
        return Agent(self.knowledge, llm=self.llm)

    def attempt(self, device: Any, agent: Any, name: str, serial: str) -> dict[str, Any]:
        """Run case `name` once on `device`: the attempt's record. A DeviceError is not the case's fault."""
        return run_attempt(device, agent, self.cases[name], serial, max_steps=self.max_steps,
                           evidence_dir=self.out / "evidence" / _safe(name) / serial)

    def finish(self, name: str, attempt: dict[str, Any]) -> None:
        with self.lock:
            r = self.results[name]
            r.attempts.append(attempt)
            tries = len(r.attempts)
            if attempt["passed"]:
                r.status = "passed" if tries == 1 else "flaky"
            elif tries < 2:
                r.status = "pending"
                self.work.put((name, attempt["device"]))  # once more, on another device if there is one
            else:
                r.status = "failed"
            self.busy -= 1
            self.save()
        self.say(f"{attempt['device']}: {name} {r.status} ({attempt['reason']})")

    def drop(self, serial: str, why: str) -> None:
        with self.lock:
            self.devices[serial] = why
            self.save()
        self.say(f"{serial} dropped out: {why}; its cases go to the other devices")


def run_attempt(device: Device, agent: Agent, case: TestCase, serial: str, *, max_steps: int,
                evidence_dir: Path | None) -> dict[str, Any]:
    """One run of `case` on `device` by `agent`, as the campaign records it (threads and farm alike)."""
    began = time.perf_counter()
    device.launch()
    res = agent.run(device, case.intent, plan=case if case.steps else None, name=case.name,
                    config=RunConfig(max_steps=max_steps, evidence_dir=evidence_dir))
    return {"device": serial, "passed": res.verdict.passed, "reason": res.verdict.reason,
            "status": res.verdict.status, "checks": list(res.verdict.checks),
            "steps": list(res.verdict.steps), "seconds": round(time.perf_counter() - began, 2),
            "warnings": res.warnings}


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80] or "case"
