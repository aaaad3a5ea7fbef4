"""Campaigns on the farm: the threaded campaign's semantics, each phone's cases run on its own host.

The driver keeps `appatlas.agent.campaign`'s queue, retry, drop-out and resume logic (one driver
thread per phone waits on that phone's actor); only the attempt itself runs remotely, next to the
phone. So: a failed case runs once more on *another* phone; a phone whose host leaves the farm is
dropped and its case goes back to the queue; the state file is rewritten after every case on the
driver's disk, so a killed driver (or a restarted Ray head) resumes without re-running finished
cases. Each attempt records the phone (`device`) and where it ran (`host`, `address`, `node`).

A lost Ray head (`reconnect` > 0): Ray ends every actor with it, so every phone drops out and the
run stops with cases left. The driver then leaves the dead cluster (`ray.shutdown()` works while
the head is down), waits for the head's address to answer again and for its phones to be declared
(other hosts' nodes rejoin, or are started again), joins the new cluster and goes on from the
campaign state, as a rerun of the command would. (Ray without GCS fault tolerance cannot carry a
driver over to a restarted head; joining anew is the clean way.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ray

from appatlas.agent.campaign import CampaignResult, _Campaign, _safe, write_reports
from appatlas.agent.knowledge import Knowledge
from appatlas.errors import FarmError
from appatlas.farm.cluster import farm_phones
from appatlas.farm.phone import PhoneSpec, RemotePhone, phone_actor
from appatlas.types import TestCase

__all__ = ["run_farm_campaign"]

MAX_REJOINS = 5  # lost heads one campaign rides out


class _FarmCampaign(_Campaign):
    def __init__(self, cases: list[TestCase], serials: list[str], spec: PhoneSpec, knowledge: Knowledge, out: Path,
                 on_event: Callable[[str], None] | None, open_timeout: float) -> None:
        super().__init__(cases, serials, self._open, knowledge, out, None, spec.max_steps, on_event)
        self.spec = spec
        self.open_timeout = open_timeout
        self.knowledge_ref = ray.put(knowledge)  # sent once; every actor reads the same copy
        self.actors: dict[str, Any] = {}

    def _open(self, serial: str) -> RemotePhone:
        if serial not in self.actors:
            self.actors[serial] = phone_actor(serial, self.spec, self.knowledge_ref)
        return RemotePhone(self.actors[serial], serial, open_timeout=self.open_timeout).open()

    def new_agent(self) -> None:
        return None  # the agent runs in the phone's actor

    def attempt(self, device: Any, agent: Any, name: str, serial: str) -> dict[str, Any]:
        answer = device.run(self.cases[name])
        folder = self.out / "evidence" / _safe(name) / serial
        for rel, data in answer.get("evidence", {}).items():
            path = (folder / rel).resolve()
            if folder.resolve() in path.parents:  # names come from another host: stay in the folder
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        return answer["attempt"]

    def release(self) -> None:
        for actor in self.actors.values():
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001 - an actor whose host already left
                pass
        self.actors.clear()


def run_farm_campaign(cases: Sequence[TestCase], ray_address: str, *, spec: PhoneSpec, knowledge: Knowledge,
                      out: Path, serials: Sequence[str] = (), resume: bool = True, open_timeout: float = 60.0,
                      reconnect: float = 0.0, on_event: Callable[[str], None] | None = None) -> CampaignResult:
    """Run `cases` on the farm's phones (all of them, or `serials`) and write the results into `out`.

    The driver must already be connected (`appatlas.farm.cluster.connect`). `reconnect`: seconds to wait
    for a lost head to come back (and its phones with it) before the cases left are given up; 0: never.
    """
    phones = farm_phones(ray)
    chosen = list(serials) or phones
    missing = [s for s in chosen if s not in phones]
    if missing:
        raise FarmError(f"the farm at {ray_address} has no phone {', '.join(missing)}; it has: "
                        f"{', '.join(phones) or 'none'} (see `appatlas farm status`)")
    if not chosen:
        raise FarmError(f"the farm at {ray_address} declares no phone; start its nodes with --device SERIAL")
    out.mkdir(parents=True, exist_ok=True)
    say = on_event or (lambda _: None)
    campaign = _FarmCampaign(list(cases), chosen, spec, knowledge, out, on_event, open_timeout)
    if resume:
        campaign.restore()
    rejoins, done_before = 0, -1
    while True:
        try:
            result = campaign.run()
        finally:
            campaign.release()
        done = sum(c.final for c in result.cases)
        # A rejoin that finished nothing more means the trouble is not the head: stop, as without reconnect.
        if (reconnect <= 0 or done == len(result.cases) or done == done_before or rejoins >= MAX_REJOINS
                or not _head_lost()):
            break
        rejoins, done_before = rejoins + 1, done
        say(f"the farm's head at {ray_address} is gone; waiting up to {reconnect:.0f} s for it and its phones")
        here = _rejoin(ray_address, chosen, reconnect)
        say(f"rejoined the farm at {ray_address}: {', '.join(here)}; going on from the campaign state")
        campaign = _FarmCampaign(list(cases), here, spec, knowledge, out, on_event, open_timeout)
        campaign.restore()
    write_reports(result, out, knowledge=knowledge)
    return result


@ray.remote(num_cpus=0)
def _alive() -> bool:
    return True


def _head_lost(wait: float = 5.0) -> bool:
    """Whether the cluster this driver joined is gone: a no-op task finds no node to run on."""
    from ray.exceptions import GetTimeoutError, RayError

    try:
        return not ray.get(_alive.remote(), timeout=wait)
    except (GetTimeoutError, RayError, ConnectionError):
        return True


def _rejoin(address: str, wanted: Sequence[str], within: float) -> list[str]:
    """Leave the dead cluster, join the head at `address` again once it answers, and wait until it declares
    some of the `wanted` phones (a moment longer for the rest); the phones there now, or FarmError."""
    from appatlas.farm.cluster import connect

    ray.shutdown()
    deadline = time.monotonic() + within
    here: list[str] = []
    settle = None  # once the first phone is back, the others get a few seconds more
    while time.monotonic() < deadline:
        if not ray.is_initialized():
            try:
                connect(address)
            except FarmError:
                time.sleep(1.0)
                continue
        here = [s for s in wanted if s in farm_phones(ray)]
        if here and settle is None:
            settle = time.monotonic() + 5.0
        if len(here) == len(wanted) or (settle is not None and time.monotonic() >= settle):
            return here
        time.sleep(0.5)
    if here:
        return here
    raise FarmError(f"the farm's head at {address} did not come back with any of {', '.join(wanted)} within "
                    f"{within:.0f} s; run the same command again to resume from the campaign state")
