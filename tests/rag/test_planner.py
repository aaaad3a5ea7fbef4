"""Planner invariants on random graphs: routes are paths of the graph, waypoints are taken in order."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appatlas.errors import NoPlan
from appatlas.graph.planner import (
    Route,
    Waypoint,
    coverage_suite,
    route,
    shortest_route,
    takes_in_order,
    to_test_case,
)
from appatlas.types import Action, ActionKind, Selector


def _graph(edges: list[tuple[int, int, int]]) -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()
    g.add_node("s0")
    for u, v, k in edges:
        action = Action(ActionKind.TAP, target=Selector(text=f"b{k}"))
        g.add_edge(f"s{u}", f"s{v}", key=action.key, action=action, count=1 + k % 3, failures=k % 2,
                   reliability=(2 + k % 3) / (3 + k % 3 + k % 2), transition=k)
    return g


graphs = st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7), st.integers(0, 5)), min_size=1, max_size=30).map(
    _graph)


def _is_path(g: nx.MultiDiGraph, r: Route) -> bool:
    here = r.start
    for u, v, key in r.edges:
        if u != here or not g.has_edge(u, v, key):
            return False
        here = v
    return True


@settings(max_examples=60)
@given(graphs, st.data())
def test_a_route_is_a_path_of_the_graph_that_takes_its_waypoints_in_order(g, data) -> None:
    edges = list(g.edges(keys=True))
    picked = data.draw(st.lists(st.sampled_from(edges), max_size=3))
    waypoints = [Waypoint(edge=e) for e in picked]
    try:
        routes = route(g, "s0", waypoints, k=3)
    except NoPlan:
        # unreachable: some waypoint's source cannot be reached from where the previous one ends
        here, reachable = "s0", True
        for u, v, _ in picked:
            reachable = reachable and (u == here or nx.has_path(g, here, u))
            here = v
        assert not reachable
        return
    assert 1 <= len(routes) <= 3
    for r in routes:
        assert _is_path(g, r)
        assert takes_in_order(r, waypoints)
    costs = [r.cost for r in routes]
    assert costs == sorted(costs)


@settings(max_examples=40)
@given(graphs)
def test_the_coverage_suite_visits_every_reachable_screen(g) -> None:
    suite = coverage_suite(g, "s0")
    visited = set(itertools.chain.from_iterable(r.screens for r in suite)) | {"s0"}
    assert visited == nx.descendants(g, "s0") | {"s0"}
    assert all(_is_path(g, r) for r in suite)


@settings(max_examples=40)
@given(graphs)
def test_the_edge_coverage_suite_takes_every_reachable_transition(g) -> None:
    reach = nx.descendants(g, "s0") | {"s0"}
    suite = coverage_suite(g, "s0", edges=True)
    taken = set(itertools.chain.from_iterable(r.edges for r in suite))
    assert taken == {e for e in g.edges(keys=True) if e[0] in reach}


def test_the_shortest_route_prefers_reliable_edges() -> None:
    g = nx.MultiDiGraph()
    ok, flaky = Action(ActionKind.TAP, target=Selector(text="ok")), Action(ActionKind.TAP, target=Selector(text="x"))
    g.add_edge("a", "b", key=flaky.key, action=flaky, count=1, failures=9, reliability=2 / 12, transition=1)
    g.add_edge("a", "c", key=ok.key, action=ok, count=9, failures=0, reliability=10 / 11, transition=2)
    g.add_edge("c", "b", key=ok.key, action=ok, count=9, failures=0, reliability=10 / 11, transition=3)
    assert shortest_route(g, "a", "b").screens == ["a", "c", "b"]


def test_an_unreachable_waypoint_is_a_typed_error_that_says_what_to_do() -> None:
    g = _graph([(0, 1, 0), (2, 3, 1)])
    with pytest.raises(NoPlan, match="crawl more"):
        route(g, "s0", [Waypoint(screen="s3")])


def test_a_test_case_expects_each_edges_target_and_types_the_bound_text() -> None:
    g = nx.MultiDiGraph()
    field = Action(ActionKind.TYPE, target=Selector(resource_id="x:id/name"), text="recorded")
    g.add_edge("form", "form", key=field.key, action=field, count=1, failures=0, reliability=0.7, transition=1)
    r = Route("form", [("form", "form", field.key)])
    test = to_test_case(g, r, name="t", intent="type", inputs={("form", "form", field.key): "Alice"},
                        slots=[("name", "Alice")])
    assert [s.expect for s in test.steps] == ["form"] and test.steps[0].action.text == "Alice"
    assert test.inputs == (("name", "Alice"),) and test.end == "form"
