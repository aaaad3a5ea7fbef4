"""`appatlas bench crawl`: explore each recorded app's replay with every strategy, same budget.

Every action counts against the budget — back presses and relaunches too — and coverage is read
from what the phone showed after each action. `random` runs with several seeds (mean and spread).

screen_coverage = distinct structure keys (content-free screens) reached / reachable in the recorded
graph from the launch screen. Also transition_coverage (screen-to-screen pairs), actions_to_90pct,
overhead_ms_per_action and checkpoints (coverage after 250/500/1000/2000 actions).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path
from statistics import mean
from typing import Any

from appatlas.devices.replay import RecordedApp, ReplayDevice
from appatlas.graph.atlas import Atlas
from appatlas.graph.crawler import PERMISSION_PACKAGES, CrawlConfig, crawl
from appatlas.graph.droidbot import import_droidbot
from appatlas.graph.replay import recorded_app
from appatlas.types import Action, ActionKind, Screen

__all__ = ["CHECKPOINTS", "reachable", "run_crawl_bench"]

CHECKPOINTS = (250, 500, 1000, 2000)


def reachable(app: RecordedApp) -> tuple[set[str], set[tuple[str, str]]]:
    """Screens and screen-to-screen hops a crawler can reach from the launch screen of a replay.

    A replay follows an action recorded on any state of the same screen, so this walks the
    recorded graph at screen level; relaunching only returns to the launch screen.
    """
    in_app = {sid for sid, s in app.states.items() if s.package == app.package or s.package in PERMISSION_PACKAGES}
    out: defaultdict[str, set[str]] = defaultdict(set)
    for e in app.edges:
        if e.action.kind is not ActionKind.LAUNCH and e.source in in_app and e.target in in_app:
            out[app.keys[e.source]].add(app.keys[e.target])
    start = app.keys[app.launch[0]]
    seen, hops, queue = {start}, set(), deque([start])
    while queue:
        node = queue.popleft()
        for nxt in out[node]:
            hops.add((node, nxt))
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen, hops


class _BudgetSpent(Exception):
    """Raised by `_Counted` when the crawl used its whole budget (every action counts)."""


class _Counted:
    """The replay device, counting *every* action a crawler takes — back presses and relaunches too — and
    the screen it shows after each one; the crawl is stopped when `budget` actions were taken, so every
    strategy gets exactly the same budget however it spends it."""

    def __init__(self, device: ReplayDevice, budget: int) -> None:
        self.device, self.budget = device, budget
        self.shown: list[str | None] = [self._key()]  # structure key after each action (None: not in the app)
        self.device_seconds = 0.0

    def _key(self) -> str | None:
        state = self.device.state
        return None if state is None else self.device.app.keys.get(state)

    def perform(self, action: Action) -> None:
        if len(self.shown) > self.budget:
            raise _BudgetSpent
        t = time.perf_counter()
        try:
            self.device.perform(action)
        finally:
            self.device_seconds += time.perf_counter() - t
            self.shown.append(self._key())

    def snapshot(self) -> Screen:
        t = time.perf_counter()
        try:
            return self.device.snapshot()
        finally:
            self.device_seconds += time.perf_counter() - t

    def __getattr__(self, name: str) -> Any:
        return getattr(self.device, name)


def _measure(app: RecordedApp, strategy: str, budget: int, seed: int) -> dict[str, Any]:
    screens, hops = reachable(app)
    device = _Counted(ReplayDevice(app, screenshots=False), budget)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, Atlas.create(Path(tmp) / "c.atlas", app=app.package) as atlas:
        try:  # the crawler's own budget is out of reach: the device stops it
            crawl(device, atlas, package=app.package,  # type: ignore[arg-type]
                  config=CrawlConfig(strategy=strategy, budget=100 * budget, seed=seed, saturation=100 * budget))
            stopped = "the crawler stopped"
        except _BudgetSpent:
            stopped = f"budget of {budget} actions used (back and relaunch counted)"
    seconds = time.perf_counter() - began
    found: set[str] = set()
    found_hops: set[tuple[str, str]] = set()
    curve = []  # screens found (of the reachable ones) after each action
    for before, after in zip(device.shown, device.shown[1:], strict=False):
        if after in screens:
            found.add(after)
        if before is not None and (before, after) in hops:
            found_hops.add((before, after))  # type: ignore[arg-type]
        curve.append(len(found | ({device.shown[0]} & screens)))
    final = curve[-1] if curve else 0
    actions = len(curve)
    at = lambda n: (curve[min(n, len(curve)) - 1] if curve else 0) / max(len(screens), 1)  # noqa: E731
    return {
        "screen_coverage": final / max(len(screens), 1),
        "transition_coverage": len(found_hops) / max(len(hops), 1),
        "actions_to_90pct": next((i + 1 for i, n in enumerate(curve) if n >= 0.9 * final), 0),
        "overhead_ms_per_action": 1000 * (seconds - device.device_seconds) / max(actions, 1),
        "checkpoints": {str(n): at(n) for n in CHECKPOINTS},
        "actions": actions,
        "screens_reachable": len(screens),
        "screens_found": final,
        "stopped": stopped,
    }


def run_crawl_bench(*, data: Path, out: Path, budget: int = 2000, strategies: tuple[str, ...] = ("random", "dfs", "atlas"),
                    apps: tuple[str, ...] = (), seed: int = 0, random_seeds: int = 3,
                    progress: Callable[[str, str], None] | None = None) -> dict[str, Any]:
    """Run every strategy on every app folder under `data`; write the JSON to `out` and return it.

    `random` runs with `random_seeds` seeds (seed, seed+1, …): its rows are their mean, and
    `summary.random_seeds` gives the seeds and each figure's mean, min and max over them."""
    folders = sorted(p for p in Path(data).iterdir() if p.is_dir() and (p / "states").is_dir())
    if apps:
        folders = [p for p in folders if p.name in apps]
    if not folders:
        raise FileNotFoundError(f"no app folders (with states/) under {data}")
    seeds = [seed + i for i in range(max(1, random_seeds))]
    results: dict[str, dict[str, Any]] = {}
    per_seed: dict[int, list[dict[str, Any]]] = {s: [] for s in seeds}
    for folder in folders:
        with tempfile.TemporaryDirectory() as tmp:
            import_droidbot(folder, Path(tmp) / "rec.atlas")
            with Atlas.open(Path(tmp) / "rec.atlas") as atlas:
                app = recorded_app(atlas)
        results[folder.name] = {}
        for strategy in strategies:
            if progress is not None:
                progress(folder.name, strategy)
            if strategy != "random":
                results[folder.name][strategy] = _measure(app, strategy, budget, seed)
                continue
            runs = [_measure(app, strategy, budget, s) for s in seeds]
            for s, run in zip(seeds, runs, strict=True):
                per_seed[s].append(run)
            results[folder.name][strategy] = _average(runs) | {"seeds": runs}
    summary: dict[str, Any] = {s: _average([results[a][s] for a in results]) for s in strategies}
    if "random" in strategies:
        means = [_average(rows) for rows in per_seed.values()]
        summary["random_seeds"] = {"seeds": seeds} | {
            k: {"mean": mean(m[k] for m in means), "min": min(m[k] for m in means), "max": max(m[k] for m in means)}
            for k in ("screen_coverage", "transition_coverage")}
    doc = {"benchmark": "crawl", "budget": budget, "data": str(data), "summary": summary, "apps": results}
    Path(out).write_text(json.dumps(doc, indent=2))
    return doc


def _average(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("screen_coverage", "transition_coverage", "actions_to_90pct", "overhead_ms_per_action")
    avg: dict[str, Any] = {k: mean(r[k] for r in rows) for k in keys}
    avg["checkpoints"] = {n: mean(r["checkpoints"][n] for r in rows) for n in rows[0]["checkpoints"]}
    return avg
