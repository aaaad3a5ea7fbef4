"""Crawls on the farm: several at once, one per phone, merged into atlases on the driver's disk.

Each job (an app and the atlas folder it goes into) is crawled on a free phone by the phone's
actor; the crawler writes through `RemoteAtlas`, which hands every write to an `AtlasWriter` actor
placed on the driver's node. That actor owns the SQLite atlas and commits each write before the
crawler goes on, so a host that dies mid-crawl loses nothing already observed; its job goes back
to the queue and another phone continues it into the same atlas (states are merged by content).

Not done yet: one app split over several phones by start screens (each job is one whole app).
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from appatlas.agent.campaign import RECONNECTS
from appatlas.errors import DeviceDisconnected, DeviceError, FarmError
from appatlas.farm.cluster import farm_phones
from appatlas.farm.phone import PhoneSpec, RemotePhone, phone_actor

__all__ = ["AtlasWriter", "CrawlJob", "RemoteAtlas", "crawl_on_phone", "run_farm_crawl"]

WRITES = frozenset({"add_state", "add_transition", "add_finding", "set_meta", "drop", "mark_failure", "counts"})


@dataclasses.dataclass(frozen=True)
class CrawlJob:
    package: str
    out: Path


class AtlasWriter:
    """Owns one atlas on the driver's disk; every crawler write goes through `call` and is committed there."""

    def __init__(self, folder: str, app: str) -> None:
        from appatlas.graph.atlas import Atlas

        path = Path(folder)  # an atlas already there is continued (a job moved from a lost host, a rerun)
        self.atlas = Atlas.open(path) if path.is_dir() and any(path.iterdir()) else Atlas.create(path, app=app)

    def call(self, method: str, *args: Any, **kw: Any) -> Any:
        if method not in WRITES:
            raise AttributeError(f"the farm's atlas writer does not offer {method!r}")
        return getattr(self.atlas, method)(*args, **kw)

    def close(self) -> dict[str, int]:
        counts = self.atlas.counts()
        self.atlas.close()
        return counts


class RemoteAtlas:
    """What the crawler needs of an Atlas, on another host: each call is a committed write on the driver."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in WRITES:
            raise AttributeError(name)
        return lambda *args, **kw: ray.get(self._writer.call.remote(name, *args, **kw))


def crawl_on_phone(device: Any, package: str, writer: Any, config: Any, *, start: Any = None,
                   where: dict[str, Any]) -> dict[str, Any]:
    """Runs in the phone's actor: launch `package` and crawl it into the driver's atlas."""
    from appatlas.graph.crawler import crawl

    device.launch(package)
    report = crawl(device, RemoteAtlas(writer), package=package, config=config)
    return {"report": {k: v for k, v in dataclasses.asdict(report).items() if k != "timeline"}, **where}


def _writer(job: CrawlJob) -> Any:
    here = ray.get_runtime_context().get_node_id()  # the driver's node: the atlas stays on this disk
    return ray.remote(AtlasWriter).options(
        num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote(
        str(job.out.resolve()), job.package)


def run_farm_crawl(jobs: Sequence[CrawlJob], ray_address: str, *, config: Any, spec: PhoneSpec,
                   serials: Sequence[str] = (), on_event: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Crawl every job, as many at once as there are phones; returns per job its report and where it ran."""
    say = on_event or (lambda _: None)
    phones = farm_phones(ray)
    chosen = [s for s in (serials or phones) if s in phones]
    if not chosen:
        raise FarmError(f"the farm at {ray_address} has none of the phones asked for; it has: "
                        f"{', '.join(phones) or 'none'}")
    writers = {job.out: _writer(job) for job in jobs}
    todo: queue.Queue[CrawlJob] = queue.Queue()
    for job in jobs:
        todo.put(job)
    results: dict[str, Any] = {}
    lock = threading.Lock()
    pending = [len(jobs)]
    actors: dict[str, Any] = {}

    def worker(serial: str) -> None:
        actors[serial] = phone_actor(serial, spec)
        try:
            phone = RemotePhone(actors[serial], serial).open()
        except DeviceError as exc:
            say(f"{serial} dropped out: {exc}")
            return
        hiccups = 0
        while True:
            with lock:
                if pending[0] == 0:
                    return
            try:
                job = todo.get(timeout=0.2)
            except queue.Empty:
                continue
            say(f"{serial}: crawling {job.package} into {job.out}")
            try:
                answer = phone._call(actors[serial].crawl.remote(job.package, writers[job.out], config),
                                     phone.case_timeout, f"crawl of {job.package}")
            except DeviceError as exc:
                todo.put(job)  # what it saw is committed; another phone goes on from there
                say(f"{serial}: {type(exc).__name__} ({exc}); {job.package} goes back to the queue")
                hiccups += 1
                if isinstance(exc, DeviceDisconnected) or hiccups > RECONNECTS:
                    return
                continue
            with lock:
                results[str(job.out)] = {"package": job.package, "device": serial, **answer}
                pending[0] -= 1
            say(f"{serial}: {job.package} done ({answer['report']['actions']} actions)")

    began = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in chosen]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for actor in actors.values():
        ray.kill(actor)
    counts = {str(out): ray.get(w.close.remote()) for out, w in writers.items()}
    for w in writers.values():
        ray.kill(w)
    missing = [str(j.out) for j in jobs if str(j.out) not in results]
    return {"seconds": round(time.perf_counter() - began, 2), "jobs": results, "atlases": counts,
            "unfinished": missing}
