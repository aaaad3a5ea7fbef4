"""From an intent to a runnable test: retrieve, route through the key transitions, bind the slots.

`plan_intent(atlas_folder, intent)` is what `appatlas plan ATLAS "intent"` calls; it opens the
atlas and its index (refusing a stale one), retrieves, and returns the TestCase with its
alternatives and the retrieval that explains it.

Plans are checked before they are kept (rag.expect): an intent the atlas does not relate to is
refused (IntentNotGrounded, naming the closest screens); a route whose end screen shows an error,
that never types or picks a value the intent names, or that picks a row by position where the
intent names it is rejected, and the next route (or one composed from the expectations) is tried;
when none passes, PlanRejected says why. The kept test carries the expectations its verdict checks.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import networkx as nx

from appatlas.errors import AppatlasError, IntentNotGrounded, PlanRejected
from appatlas.graph.atlas import Atlas
from appatlas.graph.planner import Edge, Route, edge_cost, to_test_case
from appatlas.rag.expect import compose_route, derive_expectations, grounding, plan_problems, rows_by_text
from appatlas.rag.retrieve import Rehearse, Retrieval, Retriever
from appatlas.rag.slots import Slot, field_affinity
from appatlas.rag.store import RagStore
from appatlas.rag.views import AtlasViews, atlas_views
from appatlas.types import ActionKind, TestCase

__all__ = ["IntentPlan", "bind_inputs", "coverage_tests", "plan_from_retrieval", "plan_intent", "test_name"]


@dataclass
class IntentPlan:
    test: TestCase
    retrieval: Retrieval
    alternatives: list[TestCase] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # why earlier routes were not kept


def test_name(intent: str) -> str:
    """A file- and identifier-friendly name for a test of `intent`."""
    words = re.findall(r"[a-z0-9]+", intent.lower())[:8]
    return "_".join(words) or "test"


def bind_inputs(views: AtlasViews, r: Route, retrieval: Retrieval) -> dict[Edge, str]:
    """The text to type on each TYPE edge of `r`: the slot retrieval chose for it, else the best
    remaining typed slot whose field suits it."""
    inputs: dict[Edge, str] = {}
    used: set[int] = set()
    for kt in retrieval.key_transitions:
        if kt.slot is not None and kt.edge in r.edges:
            inputs[kt.edge] = kt.slot.value
            used.add(id(kt.slot))
    left: list[Slot] = [s for s in retrieval.slots if s.is_typed and id(s) not in used]
    for e in r.edges:
        if e in inputs or not left:
            continue
        action = views.graph.edges[e]["action"]
        if action.kind is not ActionKind.TYPE:
            continue
        tid = views.graph.edges[e]["transition"]
        label = views.transitions[tid].facts.label if tid in views.transitions else ""
        slot = max(left, key=lambda s: field_affinity(s, label))
        inputs[e] = slot.value
        left.remove(slot)
    return inputs


MIN_GROUNDING = 0.34  # share of the intent's content words the atlas must show somewhere


def plan_from_retrieval(views: AtlasViews, retrieval: Retrieval, *, name: str = "", check: bool = False) -> IntentPlan:
    """The checked test (and alternatives) for an intent's retrieval, with its expectations.

    Raises IntentNotGrounded when the atlas does not relate to the intent, PlanRejected when no route
    passes the plan checks, NoPlan when retrieval found no route at all. `check=False` (what the
    retrieval benchmark measures) keeps retrieval's first route as it is (its rows picked by their text, as
    `rag.expect.rows_by_text` picks them for every test), with no expectations.
    """
    from appatlas.errors import NoPlan

    intent = retrieval.intent
    if check:
        share, _ = grounding(views, intent)
        if share < MIN_GROUNDING:
            closest = [f"{views.screens[c.key].facts.place} ({c.key[:8]}…)" for c in retrieval.ends[:3]
                       if c.key in views.screens]
            raise IntentNotGrounded(intent, closest)
    if not retrieval.routes and not check:
        raise NoPlan(f"no route in the atlas realises {intent!r}; crawl more of the app, or name the "
                     "start screen with --start")
    name = name or test_name(intent)
    notes = {kt.edge: kt.reason for kt in retrieval.key_transitions}
    slots = _unique_slots(retrieval.slots)
    # Rows are tapped by their text, checked or not: the test taps what the atlas saw, not a position in a list.
    tests = [rows_by_text(views, _dialogs_return(views, to_test_case(
        views.plan_graph, r, name=name if i == 0 else f"{name}_alt{i}", intent=intent,
        inputs=bind_inputs(views, r, retrieval), slots=slots, notes=notes)), intent)
             for i, r in enumerate(retrieval.routes)]
    if not check:
        if not tests:
            raise NoPlan(f"no route in the atlas realises {intent!r}")
        return IntentPlan(test=tests[0], retrieval=retrieval, alternatives=tests[1:])
    start = retrieval.starts[0].key if retrieval.starts else ""
    composed = compose_route(views, intent, start, retrieval.slots) if start else None
    if composed is not None:
        r, inputs = composed
        tests.append(rows_by_text(views, _dialogs_return(views, to_test_case(
            views.plan_graph, r, name=f"{name}_composed", intent=intent, inputs=inputs, slots=slots)), intent))
    rejected: list[str] = []
    kept: list[TestCase] = []
    for t in tests:
        problems = plan_problems(views, t, intent, retrieval.slots)
        if problems:
            rejected.append(f"{len(t.steps)}-step route: {'; '.join(problems)}")
        else:
            kept.append(t)
    if not kept:
        raise PlanRejected(intent, rejected or ["retrieval found no route"])
    kept = [replace(t, name=name if i == 0 else f"{name}_alt{i}",
                    expect=derive_expectations(views, intent, t, retrieval.slots)) for i, t in enumerate(kept)]
    return IntentPlan(test=kept[0], retrieval=retrieval, alternatives=kept[1:], rejected=rejected)


def _dialogs_return(views: AtlasViews, test: TestCase) -> TestCase:
    """Expect the opener after a dialog closes (see AtlasViews.expected_screens), noting where that differs."""
    edges = []
    here = test.start
    for step in test.steps:
        edges.append((here, step.expect, step.action.key))
        here = step.expect
    expected = views.expected_screens(test.start, edges)
    if expected == [s.expect for s in test.steps]:
        return test
    steps = tuple(s if e == s.expect else replace(s, expect=e, note=(s.note + "; " if s.note else "") +
                                                   "the dialog returns to the screen that opened it")
                  for s, e in zip(test.steps, expected, strict=True))
    return replace(test, steps=steps, end=expected[-1] if expected else test.end)


def _unique_slots(slots: list[Slot]) -> tuple[tuple[str, str], ...]:
    """(name, value) of the typed slots, names made unique ("name", "name_2")."""
    out, seen = [], {}
    for s in slots:
        if not s.is_typed:
            continue
        seen[s.name] = seen.get(s.name, 0) + 1
        out.append((s.name if seen[s.name] == 1 else f"{s.name}_{seen[s.name]}", s.value))
    return tuple(out)


def plan_intent(atlas_folder: str | Path, intent: str, *, start: str | None = None, screenshot: bytes | None = None,
                k: int = 3, name: str = "",
                rehearse_with: Callable[[Atlas, AtlasViews], Rehearse] | None = None) -> IntentPlan:
    """Plan a test of `intent` on the atlas at `atlas_folder` (its index must be up to date).

    `rehearse_with(atlas, views)` makes the rehearsal retrieval tries first (`appatlas.agent.rehearse.rehearser`:
    the agent's own decisions played on the atlas); without it, routes come from word-matched key transitions.
    """
    with Atlas.open(atlas_folder) as atlas:
        store = RagStore.open(atlas)
        views = atlas_views(atlas)
        retriever = Retriever(atlas, store, views=views,
                              rehearse=rehearse_with(atlas, views) if rehearse_with else None)
        retrieval = retriever.retrieve(intent, start=start, screenshot=screenshot, k=k)
        return plan_from_retrieval(retriever.views, retrieval, name=name, check=True)


def coverage_tests(atlas: Atlas, *, edges: bool = False, views: AtlasViews | None = None,
                   dialogs: bool = False, buttons: bool = False) -> list[TestCase]:
    """The smallest set of tests from the launch screen that visits every screen (or takes every
    transition, with `edges=True`): greedy set cover over shortest paths (graph.planner). With
    `dialogs`, also one test per button of a dialog or menu that no test taps yet (each choice a
    dialog offers is an outcome of its own: cancel, confirm, keep editing); with `buttons`, one per
    button of any screen that no test taps yet, for each screen the atlas saw it lead to (a form's
    Save, a camera's shutter: visiting every screen does not press every button that leads there).

    A coverage test is about its route: it expects every step to land where the atlas saw it land
    (a `route` expectation) and its last screen to be open."""
    from appatlas.graph.planner import coverage_suite
    from appatlas.rag.views import atlas_views
    from appatlas.types import Expectation

    views = views if views is not None else atlas_views(atlas)
    if not views.launch:
        return []
    routes = coverage_suite(views.graph, views.launch[0], edges=edges, weight=_usual_outcome(views.graph))
    what = "transition" if edges else "screen"
    out = []
    for i, r in enumerate(routes):
        t = _dialogs_return(views, to_test_case(views.graph, r, name=f"coverage_{what}s_{i + 1:02d}",
                                                intent=f"visit {len(set(r.edges if edges else r.screens))} "
                                                       f"{what}s from the launch screen"))
        expect = [Expectation("route", "every step lands where the atlas saw it land")]
        if t.end and t.end in views.screens:
            expect.append(Expectation("screen", where=t.end, note=f"the {views.screens[t.end].facts.place} is open"))
        out.append(replace(t, expect=tuple(expect)))
    if (dialogs or buttons) and not edges:
        out += _dialog_tests(views, {e for r in routes for e in r.edges}, len(out), every_screen=buttons)
    return out


def _usual_outcome(graph: nx.MultiDiGraph) -> Callable[[Mapping[str, object]], float]:
    """Edge cost for coverage routes, with a toll on an outcome an action seldom had: "Navigate up" that
    once returned to the photo it came from is no way to reach that photo on a fresh phone."""
    totals: Counter[tuple[str, str]] = Counter()
    for u, _, d in graph.edges(data=True):
        totals[(u, d["action"].key)] += int(d.get("count", 1))
    share = {id(d): int(d.get("count", 1)) / max(1, totals[(u, d["action"].key)]) for u, _, d in graph.edges(data=True)}

    def weight(data: Mapping[str, object]) -> float:
        return edge_cost(data) - 2.0 * math.log(max(share.get(id(data), 1.0), 1e-6))
    return weight


def _dialog_tests(views: AtlasViews, taken: set[Edge], first: int, *, every_screen: bool = False) -> list[TestCase]:
    """One test per button edge no test takes yet, of dialogs and menus (of every screen with
    `every_screen`), each expecting its route and where the button led."""
    from appatlas.graph.planner import Waypoint, route
    from appatlas.types import Expectation

    out: list[TestCase] = []
    g = views.graph
    weight = _usual_outcome(g)
    for key, v in views.screens.items():
        if not (every_screen or v.facts.transient) or not g.has_node(key):
            continue
        for u, t, k, d in g.out_edges(key, keys=True, data=True):
            a = d["action"]
            if (u, t, k) in taken or a.kind is not ActionKind.TAP or a.target is None or \
                    "button" not in a.target.class_name.lower():
                continue
            try:
                r = route(g, views.launch[0], [Waypoint(edge=(u, t, k))], weight=weight)[0]
            except AppatlasError:
                continue
            taken.update(r.edges)
            test = _dialogs_return(views, to_test_case(
                g, r, name=f"coverage_{'dialogs' if v.facts.transient else 'buttons'}_{first + len(out) + 1:02d}",
                intent=f"take {a.describe()} on the {v.facts.place}"))
            expect = [Expectation("route", "every step lands where the atlas saw it land")]
            if test.end in views.screens:
                expect.append(Expectation("screen", where=test.end,
                                          note=f"the {views.screens[test.end].facts.place} is open"))
            out.append(replace(test, expect=tuple(expect)))
    return out
