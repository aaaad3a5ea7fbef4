"""Experience: tests that ran, written back to the atlas so similar intents find their path.

Recorded task demonstrations and executed tests are the same thing to retrieval: an intent and
the path that realised it. `add_experience` stores one as a recorded task (origin
"experience"); the next `appatlas index` adds it to the tasks index, and retrieval then uses it
as a strong prior for similar intents.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

from appatlas.graph.atlas import Atlas, RecordedStep, RecordedTask
from appatlas.types import TestCase

__all__ = ["add_experience"]


def add_experience(atlas: Atlas, intent: str, path: TestCase | Sequence[RecordedStep], *,
                   name: str = "") -> RecordedTask:
    """Store `intent` realised by `path` as experience in `atlas`.

    `path` is a test case that passed (its screens are structure keys; each is stored as the
    first state observed of that screen) or the recorded steps themselves (state ids and the
    action taken on each; None on the last). Raises ValueError for a path the atlas does not know.
    """
    if not intent.strip():
        raise ValueError("experience needs the intent it realised")
    if isinstance(path, TestCase):
        steps = _steps_of(atlas, path)
    else:
        steps = tuple(path)
        for s in steps:
            atlas.state(s.state)  # KeyError for a state the atlas does not have
    if not steps:
        raise ValueError("experience needs at least one step")
    if not name:
        digest = hashlib.sha1(f"{intent}|{time.time_ns()}".encode(), usedforsecurity=False).hexdigest()[:10]
        name = f"experience-{digest}"
    task = RecordedTask(name=name, intent=intent, steps=steps, origin="experience")
    atlas.add_task(task)
    return task


def _steps_of(atlas: Atlas, test: TestCase) -> tuple[RecordedStep, ...]:
    first: dict[str, int] = {}
    for state in atlas.states():
        first.setdefault(state.structure_key, state.id)
    keys = [test.start] + [s.expect for s in test.steps]
    missing = [k for k in keys if k not in first]
    if missing:
        raise ValueError(f"screen {missing[0][:12]}… of the test is not in the atlas; add the test's screens "
                         "(crawl or import) before recording it as experience")
    actions = [s.action for s in test.steps] + [None]
    return tuple(RecordedStep(first[k], a) for k, a in zip(keys, actions, strict=True))
