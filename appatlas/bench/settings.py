"""What the agent and the retriever may know in a benchmark over recorded tasks (BENCHMARKS.md, settings).

- `explore` (the headline): only what a crawl of the app found. The phone the crawler explores is
  the recording with the evaluated task's demonstration taken away (`exploration_phone`), and the
  crawler types generic values; no recorded task is known (no task memory: a new app has none).
- `import`: the recorded graph with the evaluated task's demonstration taken away (`atlas_without`
  for the index, `Knowledge.without` for the agent), the app's other tasks kept as experience.

Both use `appatlas.graph.demonstration.removal`, the one rule for what a demonstration added.
The phone the agent is evaluated on is always the whole recording: the task must be doable there.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from appatlas.devices.replay import RecordedApp, ReplayDevice
from appatlas.graph.atlas import Atlas
from appatlas.graph.demonstration import Demonstration, removal

__all__ = ["SETTINGS", "anchors", "atlas_without", "explored_atlas", "exploration_phone"]

SETTINGS = ("explore", "import")
Progress = Callable[[str, str], None]


def check_setting(setting: str) -> str:
    """`setting` if it is one of SETTINGS, else a ValueError that says what to use."""
    if setting == "crawl":
        raise ValueError("--atlas crawl became --atlas explore: a crawl of the app with no task's demonstration "
                         "on the phone it explores (BENCHMARKS.md, settings)")
    if setting not in SETTINGS:
        raise ValueError(f"--atlas must be one of {', '.join(SETTINGS)}, not {setting!r}")
    return setting


def exploration_phone(phone: RecordedApp, demos: Iterable[Demonstration]) -> RecordedApp:
    """The recorded app without the demonstrations `demos`: the observations they made are taken away (a transition left with none disappears, as do states only demonstrations
    reached), and so are the edges and scroll pages that only the task files describe."""
    logged = [e for e in phone.edges if phone.logged(e)]
    cut = removal(demos, logged)
    edges = [replace(e, count=cut.kept_count(e)) for e in logged
             if cut.kept_count(e) > 0 and e.source not in cut.states and e.target not in cut.states]
    kept = {e.id for e in edges}
    states = {sid: s for sid, s in phone.states.items() if sid not in cut.states}
    launch = [s for s in phone.launch if s in states]
    return RecordedApp(package=phone.package, states=states, edges=edges,
                       keys={k: v for k, v in phone.keys.items() if k in states}, launch=launch,
                       log=[e for e in phone.log if e in kept])


def explored_atlas(phone: RecordedApp, out: Path, *, budget: int, seed: int = 0) -> Path:
    """Crawl `phone` (an `exploration_phone`) with `budget` actions into a new atlas at `out`."""
    from appatlas.graph.crawler import CrawlConfig, crawl

    with Atlas.create(out, app=phone.package) as atlas:
        crawl(ReplayDevice(phone, screenshots=False), atlas, package=phone.package,
              config=CrawlConfig(budget=budget, saturation=budget, seed=seed))
    return out


def atlas_without(source: Path, out: Path, demo: Demonstration) -> Path:
    """A copy of the atlas at `source` (index and embedding cache included) without `demo`'s task and
    demonstration; the caller re-captions and re-indexes it (only changed texts are embedded again)."""
    shutil.copytree(source, out)
    with Atlas.open(out) as atlas:
        transitions = list(atlas.transitions())
        others = [t for t in atlas.tasks() if t.name != demo.task]
        cut = removal([demo], transitions, kept_task_states=(s.state for t in others for s in t.steps))
        atlas.forget(uses=cut.uses, states=cut.states, tasks=cut.tasks)
        atlas.set_meta("left_out", demo.task)
    return out


def anchors(data: Path, apps: Sequence[str], *, path: Path | None = None) -> dict[str, Any]:
    """AutoDroid's published per-step results for `apps`, as `summary.anchors`: per app and over all,
    per model, action accuracy and completion. Read from `path`, else from every JSON file in the
    `anchors/` folder beside `data`; {} when there is none (unseen apps have no anchor)."""
    files = [path] if path is not None else sorted((Path(data).parent / "anchors").glob("*.json"))
    per_task: dict[str, dict[str, dict[str, list[bool]]]] = {}
    for f in files:
        try:
            doc = json.loads(Path(f).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        for app, tasks in (doc.get("apps") or {}).items():
            if app in apps:
                for task, row in tasks.items():
                    per_task.setdefault(app, {})[task] = {m: v for m, v in row.items() if isinstance(v, list)}
    if not per_task:
        return {}

    def rates(rows: list[dict[str, list[bool]]]) -> dict[str, dict[str, float]]:
        models = sorted({m for r in rows for m in r})
        out = {}
        for m in models:
            runs = [r[m] for r in rows if m in r]
            steps = [s for run in runs for s in run]
            out[m] = {"action_accuracy": round(sum(steps) / max(len(steps), 1), 4),
                      "completion_rate": round(sum(all(run) for run in runs) / max(len(runs), 1), 4),
                      "tasks": len(runs)}
        return out

    result: dict[str, Any] = {app: rates(list(tasks.values())) for app, tasks in sorted(per_task.items())}
    result["all"] = rates([row for tasks in per_task.values() for row in tasks.values()])
    return result
