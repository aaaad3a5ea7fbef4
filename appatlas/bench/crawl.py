"""`appatlas bench crawl`: explore each recorded app's replay with every strategy, same budget.

screen_coverage = distinct structure keys (content-free screens) reached / reachable in the recorded
graph from the launch screen. Also transition_coverage (screen-to-screen pairs), actions_to_90pct,
overhead_ms_per_action and checkpoints (coverage after 250/500/1000/2000 actions).
"""

from __future__ import annotations

import json
import tempfile
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
from appatlas.types import ActionKind

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


def _measure(app: RecordedApp, strategy: str, budget: int, seed: int) -> dict[str, Any]:
    screens, hops = reachable(app)
    device = ReplayDevice(app, screenshots=False)
    with tempfile.TemporaryDirectory() as tmp, Atlas.create(Path(tmp) / "c.atlas", app=app.package) as atlas:
        report = crawl(device, atlas, package=app.package,
                       config=CrawlConfig(strategy=strategy, budget=budget, seed=seed, saturation=budget))
        key = {s.id: s.structure_key for s in atlas.states()}
        transitions = {t.id: t for t in atlas.transitions()}
        found: set[str] = set()
        found_hops: set[tuple[str, str]] = set()
        curve = []  # screens found (of the reachable ones) after each action
        for tid in atlas.observations():
            t = transitions[tid]
            for k in (key[t.source], key[t.target]):
                if k in screens:
                    found.add(k)
            if (key[t.source], key[t.target]) in hops:
                found_hops.add((key[t.source], key[t.target]))
            curve.append(len(found))
    final = len(found)
    at = lambda n: (curve[min(n, len(curve)) - 1] if curve else 0) / max(len(screens), 1)  # noqa: E731
    return {
        "screen_coverage": final / max(len(screens), 1),
        "transition_coverage": len(found_hops) / max(len(hops), 1),
        "actions_to_90pct": next((i + 1 for i, n in enumerate(curve) if n >= 0.9 * final), 0),
        "overhead_ms_per_action": report.overhead_ms_per_action,
        "checkpoints": {str(n): at(n) for n in CHECKPOINTS},
        "actions": report.actions,
        "screens_reachable": len(screens),
        "screens_found": final,
        "stopped": report.stopped,
    }


def run_crawl_bench(*, data: Path, out: Path, budget: int = 2000, strategies: tuple[str, ...] = ("random", "dfs", "atlas"),
                    apps: tuple[str, ...] = (), seed: int = 0,
                    progress: Callable[[str, str], None] | None = None) -> dict[str, Any]:
    """Run every strategy on every app folder under `data`; write the JSON to `out` and return it."""
    folders = sorted(p for p in Path(data).iterdir() if p.is_dir() and (p / "states").is_dir())
    if apps:
        folders = [p for p in folders if p.name in apps]
    if not folders:
        raise FileNotFoundError(f"no app folders (with states/) under {data}")
    results: dict[str, dict[str, Any]] = {}
    for folder in folders:
        with tempfile.TemporaryDirectory() as tmp:
            import_droidbot(folder, Path(tmp) / "rec.atlas")
            with Atlas.open(Path(tmp) / "rec.atlas") as atlas:
                app = recorded_app(atlas)
        results[folder.name] = {}
        for strategy in strategies:
            if progress is not None:
                progress(folder.name, strategy)
            results[folder.name][strategy] = _measure(app, strategy, budget, seed)
    summary = {s: _average([results[a][s] for a in results]) for s in strategies}
    doc = {"benchmark": "crawl", "budget": budget, "data": str(data), "summary": summary, "apps": results}
    Path(out).write_text(json.dumps(doc, indent=2))
    return doc


def _average(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("screen_coverage", "transition_coverage", "actions_to_90pct", "overhead_ms_per_action")
    avg: dict[str, Any] = {k: mean(r[k] for r in rows) for k in keys}
    avg["checkpoints"] = {n: mean(r["checkpoints"][n] for r in rows) for n in rows[0]["checkpoints"]}
    return avg
