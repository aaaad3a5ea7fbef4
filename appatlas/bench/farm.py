"""`appatlas bench farm` and the farm rows of `appatlas bench faults`.

Throughput: the campaign of the fault matrix (four intents of the built-in app, repeated) on 1, 2,
4 and 8 virtual phones that keep a real phone's pace (~300 ms per action, ~150 ms per hierarchy
dump, `FakeAdbServer.pace`), run by the threaded campaign and by the farm (a two-node Ray cluster
on 127.0.0.1, the phones split between the nodes), on the same phones.

Cases per minute are steady-state: each phone's finished cases over the span from its first case's
start to its last case's end, summed over the phones. That leaves out connecting and, for the farm,
starting the phones' actors (reported apart, as `startup_s`), which a long campaign pays once.
`scaling_efficiency_8` = farm rate at 8 phones / (8 x farm rate at 1); `farm_vs_threads_4` = farm
rate / threaded rate at 4 phones; `driver_ms_per_case` = the driver's wait for an attempt beyond the
attempt's own time on the phone's host (dispatch, transfer, result), mean over the farm's cases.

Nothing here imports Ray at module level: the fault matrix imports this module with or without it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from appatlas.agent.campaign import STATE_FILE, CampaignResult, run_campaign
from appatlas.bench.campaign_faults import FINAL, _judge, _row, cases, knowledge
from appatlas.devices.fakeadb import FakeAdbServer
from appatlas.devices.u2 import connect
from appatlas.devices.virtual import open_app

__all__ = ["FARM_SCENARIOS", "run_farm_bench"]

MAX_STEPS = 12
PACKAGE = "com.appatlas.notes"


def serials(n: int) -> list[str]:
    return [f"virtual-{i}" for i in range(1, n + 1)]


@contextmanager
def phones(n: int, *, action_ms: int = 0, dump_ms: int = 0) -> Iterator[FakeAdbServer]:
    with FakeAdbServer([open_app("demo", serial=s, screenshots=False) for s in serials(n)]) as server:
        for s in server.serials:
            if action_ms or dump_ms:
                server.pace(s, action_ms=action_ms, dump_ms=dump_ms)
        yield server


def spec(adb_port: int) -> Any:
    from appatlas.farm.phone import PhoneSpec

    return PhoneSpec(package=PACKAGE, adb_port=adb_port, timeout=5.0, screenshots=False, max_steps=MAX_STEPS)


def farm_campaign(address: str, adb_port: int, out: Path, the_cases: list, *, chosen: Sequence[str] = (),
                  resume: bool = True, reconnect: float = 0.0,
                  on_event: Callable[[str], None] | None = None) -> CampaignResult:
    from appatlas.farm.campaign import run_farm_campaign

    return run_farm_campaign(the_cases, address, spec=spec(adb_port), knowledge=knowledge(), out=out,
                             serials=chosen, resume=resume, reconnect=reconnect, on_event=on_event)


def _child(address: str, adb_port: int, out: str, copies: int, reconnect: float = 0.0) -> None:
    """A farm campaign driver in its own process: the one `kill -9` (or a lost Ray head) hits.

    It notes each case it starts in OUT/started.log, so a test sees what ran after a fault."""
    from appatlas.farm.cluster import connect as join

    log = Path(out) / "started.log"
    log.parent.mkdir(parents=True, exist_ok=True)

    def note(message: str) -> None:
        if ": running " in message:
            with log.open("a") as f:
                f.write(message.split(": running ", 1)[1] + "\n")

    join(address)
    farm_campaign(address, adb_port, Path(out), cases(copies), reconnect=reconnect, on_event=note)


def finished(out: Path) -> dict[str, Any]:
    """Cases the state file says are finished, with their attempts."""
    try:
        state = json.loads((out / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {c["name"]: c["attempts"] for c in state.get("cases", []) if c.get("status") in FINAL}


def started(out: Path) -> list[str]:
    """The cases a driver started by `start_driver` began, in order (a case run twice is listed twice)."""
    path = out / "started.log"
    return path.read_text().split() if path.is_file() else []


def start_driver(address: str, adb_port: int, out: Path, copies: int, *, reconnect: float = 0.0) -> subprocess.Popen:
    code = (f"from appatlas.bench.farm import _child; _child({address!r}, {adb_port}, {str(out)!r}, {copies}, "
            f"{reconnect})")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=os.environ.copy())


def wait_finished(proc: subprocess.Popen, out: Path, *, at_least: int = 1, limit: float = 120.0) -> dict[str, Any]:
    """Poll the driver's state file until `at_least` cases are finished (or the driver ends, or `limit`)."""
    deadline = time.monotonic() + limit
    done: dict[str, Any] = {}
    while time.monotonic() < deadline and len(done) < at_least and proc.poll() is None:
        time.sleep(0.02)
        done = finished(out)
    return done


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


# --- throughput -------------------------------------------------------------------------------------


class _Clock:
    """Per-phone first start and last finish, from the campaign's events (threads and farm say the same)."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.done: dict[str, int] = defaultdict(int)

    def __call__(self, message: str) -> None:
        now = time.perf_counter()
        serial, _, rest = message.partition(": ")
        if rest.startswith("running "):
            self.first.setdefault(serial, now)
        elif rest.split(" ")[1:2] and rest.split(" ")[1] in FINAL + ("pending",):
            self.last[serial] = now
            self.done[serial] += 1

    def rate(self) -> float:
        """Cases per minute, steady state: sum over phones of finished / (last finish - first start)."""
        total = 0.0
        for s, n in self.done.items():
            span = self.last[s] - self.first[s]
            if span > 0:
                total += n / span
        return 60 * total


def _measure(run: Callable[[Callable[[str], None]], CampaignResult], n_cases: int) -> dict[str, Any]:
    clock = _Clock()
    began = time.perf_counter()
    result = run(clock)
    wall = time.perf_counter() - began
    attempts = [a for c in result.cases for a in c.attempts]
    first = min(clock.first.values(), default=began)
    return {"cases": n_cases, "cases_per_minute": round(clock.rate(), 2),
            "wall_cases_per_minute": round(60 * n_cases / wall, 2), "wall_s": round(wall, 2),
            "startup_s": round(first - began, 2),
            "statuses": {s: sum(c.status == s for c in result.cases) for s in (*FINAL, "not_run")},
            "attempts": len(attempts), "_attempts": attempts}


def run_farm_bench(*, out: Path | None = None, counts: Sequence[int] = (1, 2, 4, 8), per_phone: int = 8,
                   action_ms: int = 300, dump_ms: int = 150,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure the farm and the threaded campaign at each phone count; write the JSON to `out`."""
    from appatlas.farm.cluster import LocalFarm

    say = progress or (lambda _: None)
    most = max(counts)
    all_serials = serials(most)
    hosts = [all_serials[0::2], all_serials[1::2]] if most > 1 else [all_serials]
    rows: list[dict[str, Any]] = []
    know = knowledge()
    with LocalFarm(hosts) as farm, tempfile.TemporaryDirectory() as tmp:
        farm.connect()
        for n in counts:
            chosen = all_serials[:n]  # alternate hosts: 2 phones = one on each node
            the_cases = cases(copies=-(-per_phone * n // 4))[:per_phone * n]  # per_phone cases for each phone
            load = os.getloadavg()[0]

            def threaded(n: int = n, chosen: list[str] = chosen, the_cases: list = the_cases) -> dict[str, Any]:
                say(f"{n} phone(s), threads")
                with phones(most, action_ms=action_ms, dump_ms=dump_ms) as server:  # fresh: the app keeps data
                    return _measure(lambda ev: run_campaign(
                        the_cases, chosen, knowledge=know, out=Path(tmp) / f"threads-{n}", max_steps=MAX_STEPS,
                        resume=False, on_event=ev, connect=lambda s: connect(
                            s, adb_port=server.port, app=PACKAGE, timeout=5.0, screenshots=False)),
                        len(the_cases))

            def farmed_run(n: int = n, chosen: list[str] = chosen, the_cases: list = the_cases) -> dict[str, Any]:
                say(f"{n} phone(s), farm")
                with phones(most, action_ms=action_ms, dump_ms=dump_ms) as server:
                    return _measure(lambda ev: farm_campaign(
                        farm.address, server.port, Path(tmp) / f"farm-{n}", the_cases, chosen=chosen,
                        resume=False, on_event=ev), len(the_cases))

            # Alternate which runs first, so a change of the machine's load does not favour one side.
            if len(rows) % 2:
                threads, farmed = threaded(), farmed_run()
            else:
                farmed, threads = farmed_run(), threaded()
            waits = [a["driver_wait_s"] - a["seconds"] for a in farmed.pop("_attempts") if "driver_wait_s" in a]
            threads.pop("_attempts")
            rows.append({"phones": n, "load_at_start": round(load, 2), "threads": threads, "farm": farmed,
                         "driver_ms_per_case": round(1000 * sum(waits) / len(waits), 1) if waits else None})
    by = {r["phones"]: r for r in rows}
    one = by.get(1, {}).get("farm", {}).get("cases_per_minute")
    summary: dict[str, Any] = {
        "scaling_efficiency_8": round(by[8]["farm"]["cases_per_minute"] / (8 * one), 3) if one and 8 in by else None,
        "farm_vs_threads_4": (round(by[4]["farm"]["cases_per_minute"] / by[4]["threads"]["cases_per_minute"], 3)
                              if 4 in by else None),
        "driver_ms_per_case": (round(sum(r["driver_ms_per_case"] for r in rows) / len(rows), 1) if rows else None),
        "same_verdicts": all(r["farm"]["statuses"] == r["threads"]["statuses"] for r in rows),
    }
    doc = {"benchmark": "farm", "action_ms": action_ms, "dump_ms": dump_ms, "per_phone": per_phone,
           "cpus": os.cpu_count(), "load": os.getloadavg(), "summary": summary, "rows": rows}
    if out is not None:
        Path(out).write_text(json.dumps(doc, indent=2))
    return doc


# --- fault matrix rows ----------------------------------------------------------------------------

FARM_HOSTS = (("virtual-1", "virtual-2"), ("virtual-3", "virtual-4"))
PACE = {"action_ms": 60, "dump_ms": 30}  # slower than the unpaced server, so a fault lands mid-case


def _baseline() -> dict[str, str]:
    with phones(4) as server, tempfile.TemporaryDirectory() as tmp:
        result = run_campaign(cases(2), serials(4), knowledge=knowledge(), out=Path(tmp), max_steps=MAX_STEPS,
                              resume=False, connect=lambda s: connect(s, adb_port=server.port, app=PACKAGE,
                                                                      timeout=5.0, screenshots=False))
    return {c.name: c.status for c in result.cases}


def _host_lost(tmp: Path) -> dict[str, Any]:
    """The second host of a two-node farm dies while its phone runs a case: its cases move to the head's phones."""
    import threading

    from appatlas.farm.cluster import LocalFarm

    fault = "farm host lost mid-campaign"
    baseline = _baseline()
    marks: dict[str, Any] = {}
    with phones(4, **PACE) as server, LocalFarm(FARM_HOSTS) as farm:
        farm.connect()

        def event(message: str) -> None:
            if "t" not in marks and message.startswith("virtual-3: running "):
                marks["t"] = time.perf_counter()
                marks["kill"] = threading.Thread(target=farm.remove_host, args=(1,))
                marks["kill"].start()  # from another thread: the case is in flight when the host dies
            elif "t" in marks and "moved" not in marks and " dropped out" in message:
                marks["moved"] = time.perf_counter() - marks["t"]

        result = farm_campaign(farm.address, server.port, tmp, cases(2), resume=False, on_event=event)
        if "kill" in marks:
            marks["kill"].join()
    survived, lost, what = _judge(result, tmp, baseline)
    if "t" not in marks:
        return _row(fault, False, lost, None, f"the host was never killed ({what})")
    gone = sorted(s for s, why in result.devices.items() if why != "ok")
    ok = survived and set(gone) == {"virtual-3", "virtual-4"}
    return _row(fault, ok, lost, marks.get("moved"),
                f"its phones {', '.join(gone) or 'none'} dropped out, their cases moved to the head's ({what})")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def head_restart_check(farm: Any, adb_port: int, out: Path, *, reconnect: float = 120.0) -> dict[str, Any]:
    """A driver (its own process) runs 8 cases; the farm loses every node mid-campaign and is started again
    on the same address; the driver rejoins by itself and finishes. What happened, for tests and the row."""
    proc = start_driver(farm.address, adb_port, out, copies=2, reconnect=reconnect)
    try:
        at_kill = wait_finished(proc, out, limit=120)
        t = time.perf_counter()
        farm.restart()
        before = finished(out)  # nothing finishes while the farm is down
        try:
            proc.wait(timeout=reconnect + 60)
        except subprocess.TimeoutExpired:
            pass
        recover = time.perf_counter() - t
    finally:
        code = proc.poll()
        kill(proc)
    after = finished(out)
    runs = started(out)
    return {"at_kill": len(at_kill), "before": before, "after": after, "exit": code, "recover_s": recover,
            "rerun": sorted(name for name in before if runs.count(name) > len(before[name])),
            "passed": sum(all(a["passed"] for a in attempts[-1:]) for attempts in after.values())}


def _head_restarted(tmp: Path) -> dict[str, Any]:
    """The Ray head dies mid-campaign; the other host's node follows it (without GCS fault tolerance its
    raylet exits once the head stays away). The farm is started again on the same address; the driver,
    still running, rejoins it by itself and finishes from its campaign state."""
    from appatlas.farm.cluster import LocalFarm

    fault = "Ray head restarted mid-campaign; the driver rejoins by itself"
    with phones(4, **PACE) as server, LocalFarm(FARM_HOSTS, port=free_port()) as farm:
        got = head_restart_check(farm, server.port, tmp / "campaign")
    if not got["at_kill"]:
        return _row(fault, False, 0, None, "no case finished before the head died; nothing was tested")
    lost = sum(got["after"].get(name) != attempts for name, attempts in got["before"].items())
    missing = 8 - len(got["after"])
    ended = "finished by itself" if got["exit"] == 0 else f"ended with exit status {got['exit']}"
    note = (f"{len(got['before'])} of 8 cases finished when the farm went down; the driver {ended}, "
            f"{got['passed']} of 8 passed")
    if got["rerun"]:
        note += f"; ran again: {', '.join(got['rerun'])}"
    ok = got["exit"] == 0 and not got["rerun"] and not lost and not missing and len(got["before"]) < 8
    return _row(fault, ok, lost + missing, got["recover_s"], note)


FARM_SCENARIOS: list[tuple[str, Callable[[Path], dict[str, Any]]]] = [
    ("farm host lost", _host_lost),
    ("farm head restarted", _head_restarted),
]
