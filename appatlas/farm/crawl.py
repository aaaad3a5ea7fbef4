"""Crawls on the farm: several at once, one per phone, merged into atlases on the driver's disk.

Each job (an app and the atlas folder it goes into) is crawled on a free phone by the phone's
actor; the crawler writes through `RemoteAtlas`, which hands every write to an `AtlasWriter` actor
placed on the driver's node. That actor owns the SQLite atlas and commits each write before the
crawler goes on, so a host that dies mid-crawl loses nothing already observed; its job goes back
to the queue and another phone continues it into the same atlas (states are merged by content).

One app on several phones (`run_split_crawl`): a short first crawl on one phone (or the atlas
already there) gives the app's screens; the screens with the most untried actions become start
screens, one job each. A job's phone launches the app, walks the atlas's cheapest route to its
start screen and crawls on from there, resuming from the atlas as it was when the job began (the
crawler's model knows everything tried so far, so it goes for what is untried nearest its start
screen, not for what another phone already did). All jobs write into the one atlas on the driver.
"""

from __future__ import annotations

import dataclasses
import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from appatlas.agent.campaign import RECONNECTS
from appatlas.errors import ActionRefused, DeviceDisconnected, DeviceError, FarmError, SelectorNotFound
from appatlas.farm.cluster import farm_phones
from appatlas.farm.phone import PhoneSpec, RemotePhone, phone_actor

__all__ = ["AtlasWriter", "CrawlJob", "RemoteAtlas", "crawl_on_phone", "run_farm_crawl", "run_split_crawl",
           "start_screens"]

WRITES = frozenset({"add_state", "add_transition", "add_finding", "set_meta", "drop", "mark_failure", "counts"})
SEED_BUDGET = 30  # actions of the first crawl that finds the start screens of a split crawl


@dataclasses.dataclass(frozen=True)
class CrawlJob:
    """An app crawled into the atlas at `out`: the whole app from its launch screen, or (a split crawl) on
    from `start_screen`, reached by `route`, for `budget` actions of its own."""

    package: str
    out: Path
    start_screen: str = ""
    route: tuple[Any, ...] = ()  # Actions from the launch screen to start_screen
    budget: int | None = None  # None: the crawl config's

    @property
    def name(self) -> str:
        return f"{self.out}#{self.start_screen[:10]}" if self.start_screen else str(self.out)


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

    def view(self) -> dict[str, Any]:
        """Everything a resumed crawl reads, in one answer (screens without screenshots)."""
        a = self.atlas
        states = list(a.states())
        return {"states": states, "screens": {s.id: a.screen(s.id, with_screenshot=False) for s in states},
                "transitions": list(a.transitions()), "dropped": a.dropped(), "observations": a.observations(),
                "meta": {k: a.get_meta(k) for k in ("crawl_pass", "package")}}

    def starts(self, package: str, n: int) -> list[dict[str, Any]]:
        return start_screens(self.atlas, package, n)


class RemoteAtlas:
    """What the crawler needs of an Atlas, on another host: each write is committed on the driver at once.

    Reads (a resumed crawl rebuilds its model from them, once, when it starts) come from `view`, the
    atlas as it was when this crawl began; what other phones add later is not seen, only merged.
    """

    def __init__(self, writer: Any, view: dict[str, Any] | None = None) -> None:
        self._writer = writer
        self._view = view

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in WRITES:
            raise AttributeError(name)
        return lambda *args, **kw: ray.get(self._writer.call.remote(name, *args, **kw))

    def _read(self) -> dict[str, Any]:
        if self._view is None:
            raise AttributeError("this remote atlas was made for writing only")
        return self._view

    def states(self) -> Iterator[Any]:
        return iter(self._read()["states"])

    def screen(self, state_id: int, *, with_screenshot: bool = True) -> Any:
        return self._read()["screens"][state_id]

    def transitions(self, *, source: int | None = None) -> Iterator[Any]:
        return iter([t for t in self._read()["transitions"] if source is None or t.source == source])

    def dropped(self) -> set[tuple[str, str]]:
        return set(self._read()["dropped"])

    def observations(self) -> list[int]:
        return list(self._read()["observations"])

    def get_meta(self, key: str, default: str = "") -> str:
        return self._read()["meta"].get(key) or default


def start_screens(atlas: Any, package: str, n: int) -> list[dict[str, Any]]:
    """Up to `n` screens of `package` to start crawls from: those with the most untried actions, each with
    the cheapest route (its actions) from the launch screen. Fewer when fewer screens have untried actions."""
    import networkx as nx

    from appatlas.graph.model import CrawlModel
    from appatlas.graph.planner import edge_cost
    from appatlas.types import ActionKind

    def in_app(screen: Any) -> bool:
        return screen.package == package

    model = CrawlModel.from_atlas(atlas, explore=in_app)
    graph = atlas.graph()
    launches = [(t.count, t.target_key) for t in atlas.transitions() if t.action.kind is ActionKind.LAUNCH]
    first = next(iter(atlas.states()), None)
    home = max(launches)[1] if launches else (first.structure_key if first else "")
    if home not in graph:
        return []
    simple = nx.DiGraph()  # the cheapest action between two screens, as the planner routes
    for u, v, data in graph.edges(data=True):
        w = edge_cost(data)
        if u != v and (not simple.has_edge(u, v) or w < simple.edges[u, v]["weight"]):
            simple.add_edge(u, v, weight=w, action=data["action"])
    simple.add_node(home)
    _, paths = nx.single_source_dijkstra(simple, home, weight="weight")
    untried = {k: len(v) for k, v in model.frontier.items() if v}
    if not untried:  # later passes keep what is left per state
        for sid, keys in model.state_frontier.items():
            if keys and sid in model.key_of:
                untried[model.key_of[sid]] = untried.get(model.key_of[sid], 0) + len(keys)
    ranked = sorted((k for k in untried if k in paths), key=lambda k: (-untried[k], len(paths[k]), k))
    return [{"screen": k, "untried": untried[k],
             "route": [simple.edges[u, v]["action"] for u, v in itertools.pairwise(paths[k])]}
            for k in ranked[:n]]


def _spent(view: dict[str, Any], package: str) -> int:
    """Actions the atlas's crawls spent, counted as the crawler counts them on --resume (graph.crawler):
    its observations, less the back presses recorded after a crawl had left the app."""
    outside = {s.id for s in view["states"] if view["screens"][s.id].package != package}
    source = {t.id: t.source for t in view["transitions"]}
    return sum(source[tid] not in outside for tid in view["observations"])


def crawl_on_phone(device: Any, package: str, writer: Any, config: Any, *, start: CrawlJob | None = None,
                   where: dict[str, Any]) -> dict[str, Any]:
    """Runs in the phone's actor: launch `package` and crawl it into the driver's atlas.

    With `start` (a job of a split crawl): walk its route to its start screen first, then crawl on from
    there, resuming from the atlas so what is already tried is not tried again, for the job's budget.
    """
    from appatlas.graph.crawler import crawl
    from appatlas.graph.fingerprint import structure_key

    device.launch(package)
    if start is not None and start.budget is not None:
        config = dataclasses.replace(config, budget=start.budget)
    if start is None or not start.start_screen:
        report = crawl(device, RemoteAtlas(writer), package=package, config=config)
        return {"report": _report(report), **where}
    walked = 0
    for action in start.route:  # the atlas's recorded actions; a widget that is not there ends the walk
        device.snapshot()  # each step on the screen it was recorded on, as a test's step waits for its screen
        try:
            device.perform(action)
        except (SelectorNotFound, ActionRefused):
            break
        walked += 1
    began_at = structure_key(device.snapshot())
    view = ray.get(writer.view.remote())
    spent = _spent(view, package)
    report = crawl(device, RemoteAtlas(writer, view), package=package, resume=True,
                   config=dataclasses.replace(config, budget=spent + config.budget))
    report.actions -= spent  # this job's own actions
    return {"report": _report(report), "walked": walked, "route": len(start.route), "began_at": began_at,
            "start_screen": start.start_screen, **where}


def _report(report: Any) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(report).items() if k != "timeline"}


def _writer(job: CrawlJob) -> Any:
    here = ray.get_runtime_context().get_node_id()  # the driver's node: the atlas stays on this disk
    return ray.remote(AtlasWriter).options(
        num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote(
        str(job.out.resolve()), job.package)


def _chosen(ray_address: str, serials: Sequence[str]) -> list[str]:
    phones = farm_phones(ray)
    chosen = [s for s in (serials or phones) if s in phones]
    if not chosen:
        raise FarmError(f"the farm at {ray_address} has none of the phones asked for; it has: "
                        f"{', '.join(phones) or 'none'}")
    return chosen


class _Crew:
    """The phones of one farm crawl: an actor each, opened once and kept for every round of jobs."""

    def __init__(self, serials: Sequence[str], spec: PhoneSpec, say: Callable[[str], None]) -> None:
        self.serials, self.spec, self.say = list(serials), spec, say
        self.actors: dict[str, Any] = {}
        self.phones: dict[str, RemotePhone | None] = {}

    def _phone(self, serial: str) -> RemotePhone | None:
        if serial not in self.phones:
            self.actors[serial] = phone_actor(serial, self.spec)
            try:
                self.phones[serial] = RemotePhone(self.actors[serial], serial).open()
            except DeviceError as exc:
                self.say(f"{serial} dropped out: {exc}")
                self.phones[serial] = None
        return self.phones[serial]

    def run(self, jobs: Sequence[CrawlJob], config: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Every job on a free phone, as many at once as there are phones; (results by job name, atlas counts)."""
        writers = {job.out: _writer(job) for job in jobs}
        todo: queue.Queue[CrawlJob] = queue.Queue()
        for job in jobs:
            todo.put(job)
        results: dict[str, Any] = {}
        lock = threading.Lock()
        pending = [len(jobs)]

        def worker(serial: str) -> None:
            phone = self._phone(serial)
            hiccups = 0
            while phone is not None:
                with lock:
                    if pending[0] == 0:
                        return
                try:
                    job = todo.get(timeout=0.2)
                except queue.Empty:
                    continue
                self.say(f"{serial}: crawling {job.package} into {job.out}"
                         + (f" from screen {job.start_screen[:10]}" if job.start_screen else ""))
                try:
                    answer = phone._call(self.actors[serial].crawl.remote(job.package, writers[job.out], config, job),
                                         phone.case_timeout, f"crawl of {job.package}")
                except DeviceError as exc:
                    todo.put(job)  # what it saw is committed; another phone goes on from there
                    self.say(f"{serial}: {type(exc).__name__} ({exc}); {job.package} goes back to the queue")
                    hiccups += 1
                    if isinstance(exc, DeviceDisconnected) or hiccups > RECONNECTS:
                        self.phones[serial] = None
                        return
                    continue
                with lock:
                    results[job.name] = {"package": job.package, "device": serial, **answer}
                    pending[0] -= 1
                self.say(f"{serial}: {job.package} done ({answer['report']['actions']} actions)")

        threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in self.serials]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        counts = {str(out): ray.get(w.close.remote()) for out, w in writers.items()}
        for w in writers.values():
            ray.kill(w)
        return results, counts

    def close(self) -> None:
        for actor in self.actors.values():
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001 - an actor whose host already left
                pass


def run_farm_crawl(jobs: Sequence[CrawlJob], ray_address: str, *, config: Any, spec: PhoneSpec,
                   serials: Sequence[str] = (), on_event: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Crawl every job, as many at once as there are phones; returns per job its report and where it ran."""
    crew = _Crew(_chosen(ray_address, serials), spec, on_event or (lambda _: None))
    began = time.perf_counter()
    try:
        results, counts = crew.run(jobs, config)
    finally:
        crew.close()
    return {"seconds": round(time.perf_counter() - began, 2), "jobs": results, "atlases": counts,
            "unfinished": [j.name for j in jobs if j.name not in results]}


def run_split_crawl(package: str, out: Path, ray_address: str, *, config: Any, spec: PhoneSpec,
                    serials: Sequence[str] = (), seed_budget: int = SEED_BUDGET,
                    on_event: Callable[[str], None] | None = None) -> dict[str, Any]:
    """One app crawled by every chosen phone at once, each from another start screen, into the atlas `out`.

    `config.budget` is the actions of all phones together: a first crawl of `seed_budget` on one phone
    when `out` holds no crawl of the app yet, the rest shared evenly by the start screens' jobs.
    """
    from appatlas.graph.atlas import Atlas

    say = on_event or (lambda _: None)
    chosen = _chosen(ray_address, serials)
    crew = _Crew(chosen, spec, say)
    began = time.perf_counter()
    results: dict[str, Any] = {}
    try:
        spent = 0
        if not _crawled(out, package):
            seed = CrawlJob(package, out, budget=min(seed_budget, config.budget))
            say(f"a first crawl of {seed.budget} actions finds the start screens")
            done, _ = crew.run([seed], config)
            results.update(done)
            spent = sum(r["report"]["actions"] for r in done.values())
        with Atlas.open(out) as atlas:
            starts = start_screens(atlas, package, len(chosen))
        left = config.budget - spent
        jobs = [CrawlJob(package, out, start_screen=s["screen"], route=tuple(s["route"]),
                         budget=left // len(starts) + (i < left % len(starts)))
                for i, s in enumerate(starts)] if left > 0 and starts else []
        for job, s in zip(jobs, starts, strict=False):
            say(f"start screen {job.start_screen[:10]}: {s['untried']} untried actions, {len(job.route)} steps "
                f"from launch, {job.budget} actions")
        done, counts = crew.run(jobs, config) if jobs else ({}, {})
        results.update(done)
    finally:
        crew.close()
    if not counts:
        with Atlas.open(out) as atlas:
            counts = {str(out): atlas.counts()}
    return {"seconds": round(time.perf_counter() - began, 2), "jobs": results, "atlases": counts,
            "starts": [j.start_screen for j in jobs],
            "unfinished": [j.name for j in jobs if j.name not in results]}


def _crawled(out: Path, package: str) -> bool:
    from appatlas.graph.atlas import DB_NAME, Atlas

    if not (out / DB_NAME).is_file():
        return False
    with Atlas.open(out) as atlas:
        return atlas.get_meta("package") == package and atlas.counts()["observations"] > 0
