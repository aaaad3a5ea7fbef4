"""Campaigns on a two-node Ray farm over four virtual phones: the threaded campaign's verdicts, a host lost
mid-campaign, a killed driver resumed."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from appatlas.agent.campaign import STATE_FILE, run_campaign
from appatlas.bench.campaign_faults import cases, knowledge
from appatlas.bench.farm import (
    PACKAGE,
    farm_campaign,
    finished,
    head_restart_check,
    kill,
    start_driver,
    wait_finished,
)
from appatlas.bench.farm import phones as fresh_phones
from appatlas.devices.u2 import connect
from appatlas.farm.cluster import farm_phones, farm_status
from appatlas.types import Action, ActionKind, Selector, Step, TestCase

SERIALS = ("virtual-1", "virtual-2", "virtual-3", "virtual-4")  # as in conftest.py
HOSTS = (SERIALS[:2], SERIALS[2:])


def _broken() -> TestCase:
    step = Step(Action(ActionKind.TAP, target=Selector(resource_id=f"{PACKAGE}:id/no_such_button")), expect="0" * 32)
    return TestCase(name="broken", intent="press the missing button", start="", steps=(step,), end="0" * 32)


def _threaded(phones, out: Path, the_cases):
    return run_campaign(the_cases, list(SERIALS), knowledge=knowledge(), out=out, max_steps=12, resume=False,
                        connect=lambda s: connect(s, adb_port=phones.port, app=PACKAGE, timeout=5.0,
                                                  screenshots=False))


def test_the_farm_declares_each_phone_on_its_host_and_gives_the_threaded_verdicts(farm, phones, tmp_path) -> None:
    import ray

    assert farm_phones(ray) == sorted(SERIALS)
    status = farm_status(ray)
    assert sorted(tuple(p["serial"] for p in h["phones"]) for h in status) == sorted(HOSTS)
    assert all(h["address"] == "127.0.0.1" for h in status)  # loopback only

    the_cases = [*cases(), _broken()]
    # The demo app keeps what a case saves: each campaign gets phones fresh from the box.
    with fresh_phones(4) as server:
        threaded = _threaded(server, tmp_path / "threads", the_cases)
    with fresh_phones(4) as server:
        farmed = farm_campaign(farm.address, server.port, tmp_path / "farm", the_cases, resume=False)
    assert {c.name: c.status for c in farmed.cases} == {c.name: c.status for c in threaded.cases}
    assert {c.name: c.status for c in farmed.cases}["broken"] == "failed"
    broken = next(c for c in farmed.cases if c.name == "broken")
    assert len({a["device"] for a in broken.attempts}) == 2  # retried on another phone
    node_of = {p["serial"]: h["node"] for h in status for p in h["phones"]}
    for c in farmed.cases:
        for a in c.attempts:  # each attempt says which host ran it: the one the phone is plugged into
            assert a["node"] == node_of[a["device"]] and a["address"] == "127.0.0.1" and a["host"]
    written = json.loads((tmp_path / "farm" / "results.json").read_text())
    assert written["cases"][0]["attempts"][0]["node"] and (tmp_path / "farm" / "junit.xml").is_file()


def test_a_killed_driver_resumes_without_rerunning_finished_cases(farm, phones, tmp_path) -> None:
    for s in SERIALS:
        phones.pace(s, action_ms=60, dump_ms=30)
    proc = start_driver(farm.address, phones.port, tmp_path, copies=2)
    try:
        before = wait_finished(proc, tmp_path, at_least=1, limit=90)
    finally:
        kill(proc)  # kill -9: nothing after the last saved case is written
    assert before, "the driver finished no case before the kill"
    before = finished(tmp_path)
    assert len(before) < 8, "the campaign ended before the kill; nothing to resume"
    ran: list[str] = []
    began = time.perf_counter()
    result = farm_campaign(farm.address, phones.port, tmp_path, cases(2), resume=True,
                           on_event=lambda m: ran.append(m.split(": running ", 1)[1]) if ": running " in m else None)
    assert time.perf_counter() - began < 60
    assert not set(ran) & set(before)  # finished cases are not run again
    after = {c.name: c.attempts for c in result.cases}
    assert all(after[name] == attempts for name, attempts in before.items())
    assert all(c.final for c in result.cases)
    assert json.loads((tmp_path / STATE_FILE).read_text())["passed"]


def test_a_restarted_head_is_rejoined_by_the_driver_itself(farm, phones, tmp_path) -> None:
    # Run second to last (conftest.py): the farm goes down and comes back on the same address.
    import ray

    for s in SERIALS:
        # A case is in flight when the farm goes down: slow enough that the restart (which takes a moment
        # to stop the nodes) lands before the eighth case ends, even on a fast machine (60/30 ms did not).
        phones.pace(s, action_ms=200, dump_ms=100)
    got = head_restart_check(farm, phones.port, tmp_path, reconnect=90)
    assert got["at_kill"] and len(got["before"]) < 8, "the fault did not land mid-campaign"
    assert got["exit"] == 0  # the driver finished by itself: nobody ran the command again
    assert len(got["after"]) == 8 and got["passed"] == 8  # every case, finished after the restart
    assert not got["rerun"]  # none finished before the restart ran again
    assert all(got["after"][name] == attempts for name, attempts in got["before"].items())
    assert farm_phones(ray) == sorted(SERIALS)  # this process is back on the restarted farm


def test_a_host_removed_mid_campaign_loses_no_case(farm, phones, tmp_path) -> None:
    # Run last (conftest.py): a test after it would pay for starting the second host again.
    for s in SERIALS:
        phones.pace(s, action_ms=200, dump_ms=100)  # a case outlasts killing the host: it dies mid-case
    killer: list[threading.Thread] = []

    def event(message: str) -> None:
        if not killer and message.startswith("virtual-3: running "):
            killer.append(threading.Thread(target=farm.remove_host, args=(1,)))
            killer[0].start()

    result = farm_campaign(farm.address, phones.port, tmp_path, cases(2), resume=False, on_event=event)
    killer[0].join()
    assert all(c.final for c in result.cases)  # no case lost
    assert all(c.passed for c in result.cases)  # and none failed for the host's sake
    assert result.devices["virtual-3"] != "ok" and result.devices["virtual-4"] != "ok"
    assert result.devices["virtual-1"] == "ok" and result.devices["virtual-2"] == "ok"
    moved = [c for c in result.cases if c.attempts[-1]["device"] in ("virtual-1", "virtual-2")]
    assert len(moved) >= 7  # the lost host's in-flight case finished on the head's phones
