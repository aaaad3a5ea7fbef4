"""Planning a suite for many intents on the farm: the intents are handed out to planners on every host.

Planning an intent is retrieval (the text embedder, FAISS) and routing on the atlas graph: CPU work
that needs only the atlas and its index. The driver packs the indexed atlas once (without its
screenshots, which planning does not read), puts it in Ray's object store, and starts one
`Planner` actor per host (`per_host` for more); each unpacks the atlas into a temporary folder and
loads the embedder once, then plans intents as the driver hands them out, one at a time, as planners
free up. A planner whose host leaves the farm has its intent handed to another. The suite comes back
in the intents' order; an intent that cannot be planned comes back with its typed error's message,
as `appatlas plan` would print it. Each planner plans as `appatlas plan` does: by default the agent's
own decisions rehearsed on the atlas first (`appatlas.agent.rehearse`), `planner="words"` for caption
routes only.
"""

from __future__ import annotations

import io
import queue
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from appatlas.errors import AppatlasError, FarmError

__all__ = ["Planner", "pack_atlas", "plan_on_farm"]

SKIP = ("screenshots",)  # planning reads the tree of each state, never its picture


def pack_atlas(folder: Path) -> bytes:
    """The atlas folder (its database and index) as a gzip tar, screenshots left out."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if path.is_file() and rel.parts[0] not in SKIP and not path.name.endswith(("-wal", "-shm")):
                tar.add(path, arcname=rel.as_posix(), recursive=False)
    return buf.getvalue()


class Planner:
    """Plans intents on a copy of the atlas, on the host it was placed on."""

    def __init__(self, packed: bytes, planner: str = "agent") -> None:
        import socket

        from appatlas.graph.atlas import Atlas
        from appatlas.rag.retrieve import Retriever
        from appatlas.rag.store import RagStore

        self.tmp = tempfile.mkdtemp(prefix="appatlas-plan-")
        folder = Path(self.tmp) / "atlas"
        with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as tar:
            # our own archive; the "data" filter (3.11.4+) also refuses links and absolute names
            kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(folder, **kw)  # noqa: S202 - made by pack_atlas on the driver
        self.atlas = Atlas.open(folder)
        store = RagStore.open(self.atlas)
        if planner == "agent":  # the agent's rehearsal, as `appatlas plan` plans by default
            from appatlas.agent.rehearse import rehearser
            from appatlas.rag.views import atlas_views

            views = atlas_views(self.atlas)
            self.retriever = Retriever(self.atlas, store, views=views, rehearse=rehearser(self.atlas, views))
        else:
            self.retriever = Retriever(self.atlas, store)
        self.where = {"host": socket.gethostname(), "address": ray.util.get_node_ip_address(),
                      "node": ray.get_runtime_context().get_node_id()[:12]}

    def ready(self) -> dict[str, Any]:
        return self.where

    def plan(self, intent: str, k: int = 3) -> dict[str, Any]:
        """{"test": TestCase, "rejected": [...]} or {"error": "Class: message"}, with where and how long."""
        from appatlas.rag.plan import plan_from_retrieval

        began = time.perf_counter()
        try:
            retrieval = self.retriever.retrieve(intent, k=k)
            planned = plan_from_retrieval(self.retriever.views, retrieval, check=True)
            answer: dict[str, Any] = {"test": planned.test, "rejected": planned.rejected}
        except AppatlasError as exc:  # not grounded, no route, every route rejected: the intent's answer
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        return {**answer, **self.where, "ms": round(1000 * (time.perf_counter() - began), 1)}

    def close(self) -> None:
        self.atlas.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _planners(packed_ref: Any, per_host: int, planner: str) -> list[Any]:
    nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
    remote = ray.remote(Planner)
    # num_cpus=0: placed by node, not by the CPUs a node declared (a phone host may declare few).
    return [remote.options(num_cpus=0, max_restarts=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
        node, soft=False)).remote(packed_ref, planner) for node in nodes for _ in range(per_host)]


def plan_on_farm(atlas: Path, intents: Sequence[str], ray_address: str, *, k: int = 3, per_host: int = 1,
                 timeout: float = 600.0, on_event: Callable[[str], None] | None = None,
                 planner: str = "agent") -> dict[str, Any]:
    """Plan every intent on the farm's hosts; returns {"plans": [per intent, in order], "planners": [where]}.
    `planner`: "agent" (the agent's rehearsal first, as `appatlas plan`) or "words" (caption routes only).

    The driver must already be connected. The atlas must be indexed (`appatlas index`); a stale
    index is refused here, before anything is sent.
    """
    from ray.exceptions import GetTimeoutError, RayActorError

    from appatlas.graph.atlas import Atlas
    from appatlas.rag.store import RagStore

    if planner not in ("agent", "words"):
        raise ValueError(f"planner is 'agent' or 'words', not {planner!r}")
    say = on_event or (lambda _: None)
    with Atlas.open(atlas) as a:
        RagStore.open(a)  # IndexMissing / IndexStale, with what to run
    packed = pack_atlas(Path(atlas))
    say(f"atlas packed: {len(packed) / 1e6:.1f} MB")
    began = time.perf_counter()
    planners = _planners(ray.put(packed), per_host, planner)
    if not planners:
        raise FarmError(f"the farm at {ray_address} has no live host to plan on")
    todo: queue.Queue[int] = queue.Queue()
    for i in range(len(intents)):
        todo.put(i)
    plans: dict[int, dict[str, Any]] = {}
    where: list[dict[str, Any]] = []
    lock = threading.Lock()

    def worker(actor: Any) -> None:
        try:
            here = ray.get(actor.ready.remote(), timeout=timeout)
        except (RayActorError, GetTimeoutError) as exc:
            say(f"a planner did not start: {type(exc).__name__}")
            return
        with lock:
            where.append(here)
        while True:
            with lock:
                if len(plans) == len(intents):
                    return
            try:
                i = todo.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                answer = ray.get(actor.plan.remote(intents[i], k), timeout=timeout)
            except (RayActorError, GetTimeoutError) as exc:
                todo.put(i)  # its host left (or hangs): another planner takes the intent
                say(f"planner on {here['address']} lost ({type(exc).__name__}); intent {i + 1} handed on")
                return
            with lock:
                plans[i] = {"intent": intents[i], **answer}
            say(f"{here['address']}/{here['node'][:6]}: planned {intents[i]!r} in {answer['ms']:.0f} ms")

    threads = [threading.Thread(target=worker, args=(a,), daemon=True) for a in planners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for actor in planners:
        try:
            ray.get(actor.close.remote(), timeout=10)
        except Exception:  # noqa: BLE001 - a planner whose host left: nothing to clean there from here
            pass
        ray.kill(actor)
    missing = [intents[i] for i in range(len(intents)) if i not in plans]
    if missing:
        raise FarmError(f"no planner was left to plan {len(missing)} intent(s) ({missing[0]!r}, …); "
                        "see `appatlas farm status`")
    return {"plans": [plans[i] for i in range(len(intents))], "planners": where,
            "seconds": round(time.perf_counter() - began, 2)}
