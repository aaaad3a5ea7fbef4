"""The agent's own verdict on a free run of `bench tasks`, decided the way `appatlas run` decides it.

The verdict may use only what the agent knows in the setting: the knowledge atlas (`explore`: the
crawl of the phone without the task's demonstration; `import`: the recording without the task and
its demonstration, `settings.atlas_without`) — never the recorded task's screens, values or steps.
From that atlas and the intent, the product plans a test (`rag.plan.plan_from_retrieval`, with its
checks), which carries the expectations derived from the intent (`rag.expect`). The free run made
its own steps, so the test keeps its expectations and drops the planned steps; the verdict is then
`agent.loop.judge_run`, the runner's own judgement: PASS only when every expectation holds on the
device (checked with read-only moves), `inconclusive` when nothing can be checked (planning refused
the intent, or it implies nothing checkable), FAIL otherwise, quoting the evidence.

    planner = TestPlanner(Path(tmp), text_embedder())
    test, note = planner.test_case(atlas_dir, intent, start_screen, name="task3")
    verdict = judge_run(Agent(knowledge), device, test, screens, actions, done=said_done)
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from appatlas.errors import AppatlasError
from appatlas.graph.atlas import Atlas
from appatlas.graph.fingerprint import structure_key
from appatlas.rag.embed import TextEmbedder
from appatlas.rag.store import INDEX_DIR
from appatlas.types import Screen, TestCase, Verdict

__all__ = ["TestPlanner", "verdict_fields"]

WORDS = {"passed": "PASS", "failed": "FAIL", "inconclusive": "inconclusive"}


class TestPlanner:
    """Plans intents over knowledge atlases, each indexed once; embeddings are shared through `cache`."""

    __test__ = False  # not a pytest class

    def __init__(self, cache: Path, embedder: TextEmbedder) -> None:
        self.cache, self.embedder = Path(cache), embedder
        self._indexed: set[Path] = set()

    def test_case(self, atlas_dir: Path, intent: str, start: Screen, *, name: str) -> tuple[TestCase, str]:
        """The test `appatlas plan` makes of `intent` on the atlas at `atlas_dir` from `start`, its steps left
        out (a free run takes its own), and a note when planning refused: then it has no expectations."""
        from appatlas.bench.retrieval import _captioned_index, indexed_retriever

        key = structure_key(start)
        bare = TestCase(name=name, intent=intent, start=key, steps=())
        with Atlas.open(atlas_dir) as atlas:
            index = atlas.folder / INDEX_DIR / "cache"
            if self.cache.is_dir():
                shutil.copytree(self.cache, index, dirs_exist_ok=True)
            # indexed once per atlas (tasks whose demonstration leaves the same phone share a crawl), planned
            # every time as `appatlas plan` plans: with the agent's rehearsal
            retriever = _captioned_index(atlas, atlas_dir, "heuristic", self.embedder, screenshots=False) \
                if atlas.folder not in self._indexed else None
            if retriever is None:
                retriever = indexed_retriever(atlas, self.embedder)
            else:
                self._indexed.add(atlas.folder)
                shutil.copytree(index, self.cache, dirs_exist_ok=True)
            from appatlas.errors import IntentNotGrounded
            from appatlas.rag.expect import derive_expectations
            from appatlas.rag.plan import plan_from_retrieval

            try:
                plan = plan_from_retrieval(retriever.views, retriever.retrieve(intent, start=key), name=name,
                                           check=True)
            except IntentNotGrounded as exc:
                return bare, f"planning refused the intent: {exc}"
            except AppatlasError as exc:
                # No route passed the plan checks, but what the intent must leave true is known from the
                # intent and the atlas alone: the free run took its own steps, so those are what is judged.
                expect = derive_expectations(retriever.views, intent, bare)
                return replace(bare, expect=expect), "" if expect else f"planning refused the intent: {exc}"
        return replace(plan.test, steps=(), end=""), ""


def verdict_fields(verdict: Verdict, note: str = "") -> dict[str, Any]:
    """`run.verdict` (PASS / FAIL / inconclusive), `run.verdict_reason` and `run.verdict_checks` of a row."""
    status = verdict.status or ("passed" if verdict.passed else "failed")
    reason = verdict.reason + (f" ({note})" if note else "")
    return {"verdict": WORDS.get(status, status), "verdict_reason": reason,
            "verdict_checks": [dict(c) for c in verdict.checks]}
