"""The demo's retrieval step: caption, index, and plan a test for each intent on one atlas."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from appatlas.errors import NoPlan
from appatlas.graph.atlas import Atlas
from appatlas.graph.testcases import TestSuite, save_tests
from appatlas.rag.captioner import HeuristicCaptioner, caption_atlas
from appatlas.rag.plan import plan_from_retrieval, test_name
from appatlas.rag.retrieve import Rehearse, Retriever
from appatlas.rag.store import RagStore, build_index
from appatlas.rag.views import AtlasViews, atlas_views

__all__ = ["demo_retrieval"]


def demo_retrieval(atlas_path: Path, out_dir: Path, intents: list[str], *,
                   rehearse_with: Callable[[Atlas, AtlasViews], Rehearse] | None = None) -> dict[str, Any]:
    """Caption and index the atlas, plan each intent, save each test as YAML under `out_dir`.

    `rehearse_with(atlas, views)`: the planner's rehearsal, as `appatlas.rag.plan.plan_intent` takes it.

    Returns {"atlas", "captions", "index", "tests": [{intent, file, steps, start, end, key_steps, expect,
    rejected, ms} or {intent, error}]} for the demo to print. Plans are checked (rag.plan) and carry
    the expectations their verdicts check.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"atlas": str(atlas_path), "tests": []}
    with Atlas.open(atlas_path) as atlas:
        report = caption_atlas(atlas, HeuristicCaptioner())
        summary["captions"] = {"screens": report.screens, "transitions": report.transitions, "kept": report.kept}
        summary["index"] = build_index(atlas)
        store = RagStore.open(atlas)
        views = atlas_views(atlas)
        retriever = Retriever(atlas, store, views=views,
                              rehearse=rehearse_with(atlas, views) if rehearse_with else None)
        package = atlas.get_meta("package")
        for intent in intents:
            retrieval = retriever.retrieve(intent)
            try:
                planned = plan_from_retrieval(retriever.views, retrieval, check=True)
            except NoPlan as exc:
                summary["tests"].append({"intent": intent, "error": str(exc)})
                continue
            path = save_tests(out_dir / f"{test_name(intent)}.yaml", TestSuite([planned.test], app=package))
            summary["tests"].append({
                "intent": intent, "file": str(path), "steps": len(planned.test.steps), "start": planned.test.start,
                "end": planned.test.end, "key_steps": [kt.reason for kt in retrieval.key_transitions],
                "expect": [e.describe() for e in planned.test.expect], "rejected": planned.rejected,
                "inputs": dict(planned.test.inputs), "ms": round(retrieval.ms, 1)})
    return summary
