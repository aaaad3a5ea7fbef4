"""`appatlas bench faults`: inject each fault into a real crawl and a real campaign through the local device server.

Each row says whether the run survived (finished, or stopped with the typed error and resumed),
how many already-recorded transitions were lost (must be 0), and how long recovery took.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from appatlas.bench.campaign_faults import CAMPAIGN_SCENARIOS
from appatlas.bench.farm import FARM_SCENARIOS
from appatlas.devices.fakeadb import FakeAdbServer
from appatlas.devices.u2 import U2Device, connect
from appatlas.devices.virtual import open_app
from appatlas.errors import AppatlasError, AtlasCorrupt, AtlasFull, DeviceDisconnected
from appatlas.graph.atlas import DB_NAME, Atlas
from appatlas.graph.crawler import CrawlConfig, CrawlProgress, crawl

__all__ = ["FaultRow", "run_faults_bench"]

SERIAL = "virtual-1"
BUDGET = 60
FAULT_AT = 20
KILL_AFTER = 50  # committed observations the crawl has made when kill -9 hits it
KILL_WAIT_S = 60.0  # at most this long for them (a loaded machine starts the process slowly)


@dataclass
class FaultRow:
    fault: str
    target: str
    survived: bool
    lost: int
    recover_s: float | None
    note: str


@contextmanager
def _phone_server() -> Iterator[tuple[FakeAdbServer, str]]:
    device = open_app("demo", serial=SERIAL, screenshots=False)
    with FakeAdbServer([device]) as server:
        yield server, device.spec.package


def _connect(server: FakeAdbServer, package: str) -> U2Device:
    return connect(SERIAL, adb_port=server.port, timeout=3.0, app=package, screenshots=False)


def _observations(folder: Path) -> set[int]:
    """Observation ids as another process sees them: only what was committed."""
    conn = sqlite3.connect(f"file:{folder / DB_NAME}?mode=ro", uri=True)
    try:
        return {r[0] for r in conn.execute("SELECT id FROM observations")}
    finally:
        conn.close()


@dataclass(frozen=True)
class _Trace:
    """What a crawl shows of a fault it rode through: the evidence that the fault did fire."""

    restarts: int  # automatic UI-server restarts the client made
    retries: int  # snapshots the crawler looked at again after a timeout
    empty: int  # empty dumps the client saw and asked again for
    crashes: int  # crash findings recorded after the fault was injected


class _EmptyDumps(logging.Handler):
    """Counts the client's "empty view hierarchy" retries (devices/u2.py logs each one)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.seen += "empty view hierarchy" in record.getMessage()


def _in_crawl(name: str, inject: Callable[[FakeAdbServer], None], fired: Callable[[_Trace], bool], tmp: Path, *,
              note: str, times: int = 1) -> FaultRow:
    """A fault (injected `times` actions in a row) the crawl must ride through without stopping.

    Finishing the budget is not enough: `fired` must find the fault's trace in the run (a restart,
    a retry, crash findings), or the row did not test anything.
    """
    empty = _EmptyDumps()
    u2_log = logging.getLogger("appatlas.devices.u2")
    u2_log.addHandler(empty)
    with _phone_server() as (server, package), _connect(server, package) as phone, \
            Atlas.create(tmp / "a.atlas", app=package) as atlas:
        marks: dict[str, Any] = {}

        def progress(p: CrawlProgress) -> None:
            if p.actions == FAULT_AT:
                marks["before"] = set(atlas.observations())
                marks["findings"] = len(atlas.findings())
            if FAULT_AT <= p.actions < FAULT_AT + times:
                marks["t"] = time.perf_counter()
                inject(server)
            elif p.actions == FAULT_AT + times:
                marks["recover"] = time.perf_counter() - marks["t"]

        try:
            report = crawl(phone, atlas, package=package, config=CrawlConfig(budget=BUDGET), progress=progress)
            survived, why = report.actions == BUDGET, f"{report.actions} of {BUDGET} actions; {report.findings} findings"
            trace = _Trace(phone.restarts, report.retries, empty.seen,
                           sum(f["kind"] == "crash" for f in atlas.findings()) - marks.get("findings", 0))
            if "t" not in marks or not fired(trace):
                survived, why = False, f"{why}; the fault left no trace, so it did not fire: {trace}"
        except AppatlasError as exc:
            survived, why = False, f"{type(exc).__name__}: {exc}"
        finally:
            u2_log.removeHandler(empty)
        lost = len(marks.get("before", set()) - set(atlas.observations()))
    return FaultRow(name, "crawl", survived, lost, marks.get("recover"), f"{note} ({why})")


def _stop_and_resume(name: str, tmp: Path, *, replug: bool) -> FaultRow:
    """The phone goes away: the crawl stops with DeviceDisconnected; replugged, --resume goes on."""
    with _phone_server() as (server, package):
        marks: dict[str, Any] = {}
        with _connect(server, package) as phone, Atlas.create(tmp / "a.atlas", app=package) as atlas:

            def progress(p: CrawlProgress) -> None:
                if p.actions == FAULT_AT:
                    marks["before"] = set(atlas.observations())
                    server.drop(SERIAL)

            try:
                crawl(phone, atlas, package=package, config=CrawlConfig(budget=BUDGET), progress=progress)
                return FaultRow(name, "crawl", False, 0, None, "the crawl did not notice the phone was gone")
            except DeviceDisconnected as exc:
                marks["error"] = str(exc)
        lost = len(marks["before"] - _observations(tmp / "a.atlas"))
        if not replug:
            return FaultRow(name, "crawl", SERIAL in marks["error"] and lost == 0, lost, None,
                            "stopped with DeviceDisconnected naming the phone; atlas intact")
        t = time.perf_counter()
        server.reconnect(SERIAL)
        with _connect(server, package) as phone, Atlas.open(tmp / "a.atlas") as atlas:
            report = crawl(phone, atlas, package=package, config=CrawlConfig(budget=BUDGET), resume=True)
        recover = time.perf_counter() - t
        lost = len(marks["before"] - _observations(tmp / "a.atlas"))
        return FaultRow(name, "crawl", report.actions == BUDGET, lost, recover,
                        "DeviceDisconnected, replugged, --resume finished the budget")


def _kill_9(tmp: Path) -> FaultRow:
    out = tmp / "k.atlas"
    cmd = [sys.executable, "-m", "appatlas.cli", "crawl", "--app", "demo", "--out", str(out), "--budget", "100000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "COLUMNS": "120"})
    before: set[int] = set()
    try:
        deadline = time.monotonic() + KILL_WAIT_S
        while time.monotonic() < deadline and len(before) < KILL_AFTER:
            time.sleep(0.05)
            try:
                before = _observations(out)
            except (sqlite3.Error, FileNotFoundError):
                pass
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    try:
        before = _observations(out)  # what was committed when the kill came (the process is gone now)
    except (sqlite3.Error, FileNotFoundError):
        before = set()
    if not before:
        return FaultRow("kill -9 of the crawler, then --resume", "crawl", False, 0, None,
                        "nothing was committed before the kill; nothing was tested")
    t = time.perf_counter()
    device = open_app("demo", screenshots=False)
    with Atlas.open(out) as atlas:
        resumed = len(atlas.observations())
        report = crawl(device, atlas, package=device.spec.package,
                       config=CrawlConfig(budget=resumed + 30), resume=True)
    lost = len(before - _observations(out))
    return FaultRow("kill -9 of the crawler, then --resume", "crawl", report.actions == resumed + 30, lost,
                    time.perf_counter() - t, f"killed after {len(before)} committed observations")


def _disk_full(tmp: Path) -> FaultRow:
    with _phone_server() as (server, package), _connect(server, package) as phone:
        marks: dict[str, Any] = {}
        with Atlas.create(tmp / "a.atlas", app=package) as atlas:

            def progress(p: CrawlProgress) -> None:
                if p.actions == FAULT_AT:
                    marks["before"] = set(atlas.observations())
                    atlas.set_size_limit((tmp / "a.atlas" / DB_NAME).stat().st_size)

            try:
                crawl(phone, atlas, package=package, config=CrawlConfig(budget=BUDGET), progress=progress)
                return FaultRow("disk full while writing the atlas", "crawl", False, 0, None, "no error raised")
            except AtlasFull:
                pass
        t = time.perf_counter()
        with Atlas.open(tmp / "a.atlas") as atlas:  # space freed: a new connection has no quota
            report = crawl(phone, atlas, package=package, config=CrawlConfig(budget=BUDGET), resume=True)
        lost = len(marks["before"] - _observations(tmp / "a.atlas"))
    return FaultRow("disk full while writing the atlas", "crawl", report.actions == BUDGET, lost,
                    time.perf_counter() - t, "AtlasFull, space freed, --resume finished the budget")


def _corrupt_at_start(tmp: Path) -> FaultRow:
    folder = tmp / "c.atlas"
    device = open_app("demo", screenshots=False)
    with Atlas.create(folder, app="demo") as atlas:
        crawl(device, atlas, package=device.spec.package, config=CrawlConfig(budget=BUDGET))
    db = folder / DB_NAME
    data = bytearray(db.read_bytes())
    for offset in range(4096 * 2, len(data), 4096):
        data[offset:offset + 16] = b"\xde\xad\xbe\xef" * 4
    db.write_bytes(bytes(data))
    try:
        Atlas.open(folder).close()
        return FaultRow("corrupt atlas file at start", "crawl", False, 0, None, "opened a damaged file")
    except AtlasCorrupt:
        untouched = db.read_bytes() == bytes(data)
    return FaultRow("corrupt atlas file at start", "crawl", untouched, 0, None,
                    "refused with AtlasCorrupt; the file was left byte for byte")


def _crash_loop(server: FakeAdbServer) -> None:
    server.crash_app(SERIAL)


SCENARIOS: list[tuple[str, Callable[[Path], FaultRow]]] = [
    ("kill -9", _kill_9),
    ("ui server", lambda d: _in_crawl("UI server killed", lambda s: s.kill_ui_server(SERIAL),
                                      lambda t: t.restarts == 1, d, note="one automatic restart")),
    ("drop", lambda d: _stop_and_resume("connection dropped", d, replug=True)),
    ("removed", lambda d: _stop_and_resume("device removed", d, replug=False)),
    ("slow", lambda d: _in_crawl("slow dumps (past the 3 s timeout)", lambda s: s.slow_dumps(SERIAL, 3500, count=1),
                                 lambda t: t.retries >= 1, d, note="looked again")),
    ("empty", lambda d: _in_crawl("empty dumps", lambda s: s.empty_dumps(SERIAL, 2), lambda t: t.empty == 2, d,
                                  note="uiautomator2's known flake, retried")),
    ("crash loop", lambda d: _in_crawl("app crash loop (5 crashes in a row)", _crash_loop, lambda t: t.crashes >= 5,
                                       d, times=5, note="findings recorded, relaunched")),
    ("disk full", _disk_full),
    ("corrupt", _corrupt_at_start),
    *((name, lambda d, run=run: FaultRow(**run(d))) for name, run in CAMPAIGN_SCENARIOS),
    # The farm's rows (a host lost, the Ray head restarted) where Ray is installed (appatlas[farm]).
    *((name, lambda d, run=run: FaultRow(**run(d))) for name, run in FARM_SCENARIOS
      if importlib.util.find_spec("ray") is not None),
]


def run_faults_bench(*, out: Path | None = None, only: tuple[str, ...] = (),
                     progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every fault scenario (or `only` those named); write the JSON to `out` and return it."""
    rows = []
    for name, run in SCENARIOS:
        if only and name not in only:
            continue
        if progress is not None:
            progress(name)
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(run(Path(tmp)))
    doc = {"benchmark": "faults", "summary": {"faults": len(rows), "survived": sum(r.survived for r in rows),
                                               "lost": sum(r.lost for r in rows)},
           "rows": [asdict(r) for r in rows]}
    if out is not None:
        Path(out).write_text(json.dumps(doc, indent=2))
    return doc
