"""Planning over the atlas graph: routes through waypoints, test cases, coverage suites.

The graph is `Atlas.graph()`: nodes are screens (structure keys), edges are actions keyed by
`Action.key`, carrying `action`, `count`, `failures`, `reliability`, `transition`. An edge's
cost is one step plus the risk of taking it (-log reliability); going back and relaunching
cost more, because a person testing an intent rarely does either.

`route` is the shortest path that takes every waypoint in order (an edge to take, or a screen
to pass), with up to `k` alternatives; `to_test_case` turns a route into a runnable TestCase
(steps with expected screens, typed texts bound); `coverage_suite` is the smallest set of
routes from the launch screen found by greedy set cover over shortest paths.

This module knows graphs, not intents: retrieval (appatlas.rag) decides the waypoints and
which text goes into which field.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import networkx as nx

from appatlas.errors import NoPlan
from appatlas.types import Action, ActionKind, Step, TestCase

__all__ = ["Edge", "Route", "Waypoint", "coverage_suite", "edge_cost", "route", "shortest_route", "takes_in_order",
           "to_test_case"]

Edge = tuple[str, str, str]  # (source key, target key, action key): one edge of the MultiDiGraph
_KIND_COST = {ActionKind.BACK: 1.5, ActionKind.LAUNCH: 6.0}


def edge_cost(data: Mapping[str, object]) -> float:
    """Cost of taking one edge: a step, plus the risk it fails, plus a toll on back and relaunch."""
    reliability = float(data.get("reliability", 1.0))  # type: ignore[arg-type]
    action = data.get("action")
    toll = _KIND_COST.get(action.kind, 0.0) if isinstance(action, Action) else 0.0
    return 1.0 + toll - math.log(max(reliability, 1e-6))


@dataclass(frozen=True)
class Waypoint:
    """Something a route must do: take `edge`, or (when edge is None) pass through `screen`."""

    screen: str = ""
    edge: Edge | None = None

    def __post_init__(self) -> None:
        if not self.screen and self.edge is None:
            raise ValueError("a waypoint needs a screen or an edge")

    @property
    def entry(self) -> str:
        """The screen a route must reach before this waypoint is done."""
        return self.edge[0] if self.edge is not None else self.screen

    @property
    def exit(self) -> str:
        return self.edge[1] if self.edge is not None else self.screen


@dataclass
class Route:
    """A path through the graph: `start`, then `edges` in order."""

    start: str
    edges: list[Edge] = field(default_factory=list)
    cost: float = 0.0

    @property
    def screens(self) -> list[str]:
        return [self.start] + [v for _, v, _ in self.edges]

    @property
    def end(self) -> str:
        return self.edges[-1][1] if self.edges else self.start


def _simple(graph: nx.MultiDiGraph, weight: Callable[[Mapping[str, object]], float]) -> nx.DiGraph:
    """The cheapest edge between each pair of screens, as a DiGraph (what path search needs)."""
    g = nx.DiGraph()
    g.add_nodes_from(graph.nodes)
    for u, v, key, data in graph.edges(keys=True, data=True):
        w = weight(data)
        if not g.has_edge(u, v) or w < g.edges[u, v]["weight"]:
            g.add_edge(u, v, weight=w, key=key)
    return g


def _legs(simple: nx.DiGraph, a: str, b: str, k: int) -> list[tuple[list[str], float]]:
    """Up to k cheapest simple paths a -> b as (nodes, cost)."""
    if a == b:
        return [([a], 0.0)]
    try:
        paths = nx.shortest_simple_paths(simple, a, b, weight="weight")
        out = []
        for nodes in itertools.islice(paths, k):
            out.append((nodes, sum(simple.edges[u, v]["weight"] for u, v in itertools.pairwise(nodes))))
        return out
    except (nx.NetworkXNoPath, nx.NodeNotFound):
        return []


def route(graph: nx.MultiDiGraph, start: str, waypoints: Sequence[Waypoint], *, k: int = 1,
          weight: Callable[[Mapping[str, object]], float] = edge_cost) -> list[Route]:
    """Up to `k` cheapest routes from `start` that take every waypoint in order.

    Between waypoints each leg is a shortest path; alternatives swap one leg for its next
    cheapest path. Raises NoPlan naming the first waypoint that cannot be reached.
    """
    if start not in graph:
        raise NoPlan(f"the start screen {start[:12]}… is not in the atlas; pick a start screen the atlas has "
                     "(appatlas info shows them) or crawl the app again")
    simple = _simple(graph, weight)
    legs: list[list[tuple[list[Edge], float]]] = []
    here = start
    for i, wp in enumerate(waypoints):
        if wp.edge is not None and not graph.has_edge(*wp.edge):
            raise NoPlan(f"waypoint {i + 1} is not an edge of the atlas graph; re-index the atlas "
                         "(`appatlas index ATLAS`) so retrieval and graph agree")
        options = _legs(simple, here, wp.entry, k)
        if not options:
            raise NoPlan(f"no path in the atlas reaches waypoint {i + 1} ({wp.entry[:12]}…) from "
                         f"{here[:12]}…; crawl more of the app or choose another start screen")
        leg = []
        for nodes, cost in options:
            edges = [(u, v, simple.edges[u, v]["key"]) for u, v in itertools.pairwise(nodes)]
            if wp.edge is not None:
                edges.append(wp.edge)
                cost += weight(graph.edges[wp.edge])
            leg.append((edges, cost))
        legs.append(leg)
        here = wp.exit
    if not legs:
        return [Route(start=start)]
    best = [0] * len(legs)
    seen, out = set(), []
    frontier = [tuple(best)]
    while frontier and len(out) < k:
        frontier.sort(key=lambda choice: sum(legs[j][c][1] for j, c in enumerate(choice)))
        choice = frontier.pop(0)
        if choice in seen:
            continue
        seen.add(choice)
        edges = [e for j, c in enumerate(choice) for e in legs[j][c][0]]
        out.append(Route(start=start, edges=edges, cost=sum(legs[j][c][1] for j, c in enumerate(choice))))
        for j in range(len(legs)):
            if choice[j] + 1 < len(legs[j]):
                frontier.append(choice[:j] + (choice[j] + 1,) + choice[j + 1:])
    return out


def shortest_route(graph: nx.MultiDiGraph, start: str, end: str) -> Route:
    """The cheapest route from `start` to the screen `end`."""
    return route(graph, start, [Waypoint(screen=end)])[0]


def to_test_case(graph: nx.MultiDiGraph, r: Route, *, name: str, intent: str,
                 inputs: Mapping[Edge, str] | None = None, slots: Sequence[tuple[str, str]] = (),
                 notes: Mapping[Edge, str] | None = None) -> TestCase:
    """A TestCase that follows `r`: one step per edge, expecting the edge's target screen.

    `inputs` gives the text to type for TYPE edges (others keep the text the atlas recorded);
    `slots` are recorded on the test as its bound inputs (slot name, value).
    """
    inputs = inputs or {}
    notes = notes or {}
    steps = []
    for e in r.edges:
        action: Action = graph.edges[e]["action"]
        if action.kind is ActionKind.TYPE and e in inputs:
            action = replace(action, text=inputs[e])
        steps.append(Step(action=action, expect=e[1], note=notes.get(e, "")))
    return TestCase(name=name, intent=intent, start=r.start, steps=tuple(steps), end=r.end, inputs=tuple(slots))


def coverage_suite(graph: nx.MultiDiGraph, start: str, *, edges: bool = False,
                   weight: Callable[[Mapping[str, object]], float] = edge_cost) -> list[Route]:
    """The fewest routes from `start` that together visit every reachable screen (or take every
    reachable edge, with `edges=True`): greedy set cover over shortest paths.

    Greedy set cover is within a log factor of the smallest cover, and each route is a shortest
    path, so the suite stays short to run.
    """
    if start not in graph:
        raise NoPlan(f"the start screen {start[:12]}… is not in the atlas")
    simple = _simple(graph, weight)
    dist, paths = nx.single_source_dijkstra(simple, start, weight="weight")
    candidates: list[Route] = []
    if edges:
        for u, v, key, data in graph.edges(keys=True, data=True):
            if u in paths:
                nodes = paths[u]
                hops = [(a, b, simple.edges[a, b]["key"]) for a, b in itertools.pairwise(nodes)] + [(u, v, key)]
                candidates.append(Route(start=start, edges=hops, cost=dist[u] + weight(data)))
    else:
        for node, nodes in paths.items():
            hops = [(a, b, simple.edges[a, b]["key"]) for a, b in itertools.pairwise(nodes)]
            candidates.append(Route(start=start, edges=hops, cost=dist[node]))

    def covers(r: Route) -> set:
        return set(r.edges) if edges else set(r.screens)

    universe: set = set().union(*(covers(r) for r in candidates)) if candidates else set()
    chosen: list[Route] = []
    left = set(universe)
    while left:
        best = max(candidates, key=lambda r: (len(covers(r) & left), -r.cost))
        gain = covers(best) & left
        if not gain:
            break
        chosen.append(best)
        left -= gain
    return chosen


def takes_in_order(r: Route, waypoints: Iterable[Waypoint]) -> bool:
    """Whether `r` takes the waypoints in the given order (the planner's invariant).

    A route reads screen 0, edge 0, screen 1, edge 1, …; each waypoint must be found at or
    after the place where the previous one was found.
    """
    sequence: list[object] = []
    for i, screen in enumerate(r.screens):
        sequence.append(screen)
        if i < len(r.edges):
            sequence.append(r.edges[i])
    pos = 0
    for wp in waypoints:
        want: object = wp.edge if wp.edge is not None else wp.screen
        found = next((i for i in range(pos, len(sequence)) if sequence[i] == want), None)
        if found is None:
            return False
        pos = found
    return True
