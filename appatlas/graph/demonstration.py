"""What a recorded task's demonstration added to a recording — and the recording without it.

A recording (DroidBot's events) mixes automated exploration with the demonstrations of recorded
tasks. To evaluate a task honestly, nothing of its own demonstration may be known: every hop it
made (one observation of the transition between two consecutive steps *by the step's action*,
and the scroll hops within a step) is taken away, transitions left with no observation disappear,
and the states that only the demonstration reached are forgotten. `removal` computes that once,
for every consumer: the agent's knowledge (`Knowledge.without`), the retrieval index (an atlas
copy with `Atlas.forget`), and the phone an exploration-only crawl explores (`exploration_edges`,
every task's demonstration taken away).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from appatlas.types import Action, ActionKind

__all__ = ["Demonstration", "Removal", "Transition", "removal", "same_action", "same_element"]


class Transition(Protocol):
    """What `removal` reads of a recorded transition (StoredTransition and RecordedEdge both are)."""

    @property
    def id(self) -> int: ...
    @property
    def source(self) -> int: ...
    @property
    def target(self) -> int: ...
    @property
    def action(self) -> Action: ...
    @property
    def count(self) -> int: ...


@dataclass(frozen=True)
class Demonstration:
    """One recorded task's walk: the states of each step (a scrolled step lists several) and, where
    known, the action each step took (None on the last step or when it is unknown)."""

    task: str
    steps: tuple[tuple[int, ...], ...]
    actions: tuple[Action | None, ...] = ()

    def action(self, i: int) -> Action | None:
        return self.actions[i] if i < len(self.actions) else None


@dataclass(frozen=True)
class Removal:
    """Observations to take away per transition id, states to forget, tasks to forget."""

    uses: Counter[int] = field(default_factory=Counter)
    states: frozenset[int] = frozenset()
    tasks: frozenset[str] = frozenset()

    def kept_count(self, t: Transition) -> int:
        return t.count - self.uses.get(t.id, 0)


def same_element(a: Action, b: Action) -> bool:
    """The same kind of action on the same element (resource id, text and description all equal)."""
    ta, tb = a.target, b.target
    if ta is None or tb is None:
        return a.kind is b.kind and ta is tb
    return a.kind is b.kind and (ta.resource_id, ta.text, ta.content_desc) == (tb.resource_id, tb.text, tb.content_desc)


def same_action(a: Action, b: Action) -> bool:
    """`same_element`, and the same typed text (case-insensitive)."""
    return same_element(a, b) and a.text.strip().casefold() == b.text.strip().casefold()


def removal(demos: Iterable[Demonstration], transitions: Sequence[Transition], *,
            kept_task_states: Iterable[int] = ()) -> Removal:
    """What `demos` added to a recording of `transitions` (see the module docstring).

    A hop between two steps takes one observation of a transition from a state of the first step
    to a state of the next, by the step's action when it is known (two menu items may join the
    same screens); a hop whose action no transition carries went unlogged and takes nothing. A
    state is forgotten when it belongs to a demonstration and no kept transition nor any state of
    a kept task (`kept_task_states`) anchors it.
    """
    left = {t.id: t.count for t in transitions}
    by_pair: dict[tuple[int, int], list[Transition]] = {}
    for t in transitions:
        by_pair.setdefault((t.source, t.target), []).append(t)
    uses: Counter[int] = Counter()
    demo_states: set[int] = set()
    names: set[str] = set()

    def take(sources: Sequence[int], targets: Sequence[int], action: Action | None, *,
             scroll: bool = False) -> None:
        found = [t for s in sources for g in targets if s != g for t in by_pair.get((s, g), ()) if left[t.id] > 0]
        if action is not None:  # the demonstration's own event; the same element typed otherwise is a near miss
            found = ([t for t in found if same_action(t.action, action)]
                     or [t for t in found if same_element(t.action, action)])
        elif scroll:
            found = [t for t in found if t.action.kind is ActionKind.SCROLL] or found
        if found:
            best = max(found, key=lambda t: left[t.id])
            left[best.id] -= 1
            uses[best.id] += 1

    for demo in demos:
        names.add(demo.task)
        for i, group in enumerate(demo.steps):
            demo_states.update(group)
            for above, below in zip(group, group[1:], strict=False):
                take([above], [below], None, scroll=True)
            if i + 1 < len(demo.steps):
                take(group, demo.steps[i + 1], demo.action(i))
    anchored = set(kept_task_states)
    for t in transitions:
        if left[t.id] > 0:
            anchored.update((t.source, t.target))
    return Removal(uses=uses, states=frozenset(demo_states - anchored), tasks=frozenset(names))
