"""Routes through waypoints that respect what a choice decides (hidden state the screen does not show).

A shortest path picks an action's outcome as if it could be chosen: from the new-note dialog, "OK"
leads to the text note or to the checklist, whichever is nearer. But once 'Checklist' was chosen
there, OK opens the checklist. `AtlasViews.consequences` reads these decisions from the order of
observations (leave-one-out in the benchmark); `Walker` routes with them: a choice made on a screen
decides the outcome of the action that leaves it, until the route leaves that screen.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import networkx as nx

from appatlas.graph.planner import Edge, edge_cost

__all__ = ["Decisions", "Walker", "latest_choice"]

# a choice -> (source, action key) -> the outcome that action had whenever it was taken right after the choice
Decisions = Mapping[Edge, Mapping[tuple[str, str], Edge]]


class Walker:
    """Shortest routes over one plan graph, with single-source paths cached (reusable across queries)."""

    def __init__(self, graph: nx.MultiDiGraph) -> None:
        self.graph = graph
        self.simple = nx.DiGraph()  # the cheapest edge between two screens: what path search needs
        for u, v, key, data in graph.edges(keys=True, data=True):
            w = edge_cost(data)
            if not self.simple.has_edge(u, v) or w < self.simple.edges[u, v]["weight"]:
                self.simple.add_edge(u, v, weight=w, key=key)
        self._paths: dict[str, tuple[dict[str, float], dict[str, list[str]]]] = {}

    def route(self, start: str, waypoints: Sequence[Edge],
              after: Decisions | None = None) -> tuple[list[Edge], float] | None:
        """Edges and cost of the shortest route taking `waypoints` in order; None if impossible.

        With `after`, a choice made on a screen decides where the action that leaves it goes: a route
        never expects OK to open a text note once 'Checklist' was chosen."""
        walked = self.walk(start, waypoints, after or {})
        return None if walked is None else (walked[0], walked[1])

    def walk(self, start: str, waypoints: Sequence[Edge],
             after: Decisions) -> tuple[list[Edge], float, list[Edge]] | None:
        """`route`, and the edges it must take as they are: the waypoints and the outcomes a choice
        decided, in route order (another planner of the route takes them as waypoints)."""
        edges: list[Edge] = []
        pinned: list[Edge] = []
        here, cost = start, 0.0
        for wp in waypoints:
            leg = self._leg(here, wp[0], latest_choice(edges, after), after)
            if leg is None:
                return None
            steps, forced, leg_cost = leg
            choice = latest_choice(edges + steps, after)
            decided = after.get(choice, {}) if choice is not None else {}
            if decided.get((wp[0], wp[2]), wp) != wp:
                return None  # the choice made on this screen makes this action lead elsewhere
            edges += steps + [wp]
            pinned += forced + [wp]
            cost += leg_cost + edge_cost(self.graph.edges[wp])
            here = wp[1]
        return edges, cost, pinned

    def _from(self, src: str) -> tuple[dict[str, float], dict[str, list[str]]]:
        if src not in self._paths:
            if src in self.simple:
                self._paths[src] = nx.single_source_dijkstra(self.simple, src, weight="weight")
            else:
                self._paths[src] = ({src: 0.0}, {src: [src]})
        return self._paths[src]

    def _leg(self, here: str, goal: str, choice: Edge | None,
             after: Decisions) -> tuple[list[Edge], list[Edge], float] | None:
        """The shortest steps from `here` to `goal`, those of them a choice decided, and their cost.
        Where a `choice` made here decides the outcome of the action that leaves this screen, that
        outcome is taken and the rest is planned from where it leads."""
        dist, paths = self._from(here)
        if goal not in dist:
            return None
        decided = after.get(choice, {}) if choice is not None else {}
        forced = decided.get((here, self.simple.edges[here, paths[goal][1]]["key"])) if goal != here else None
        if forced is None:
            return self._steps(paths[goal]), [], dist[goal]
        dist, paths = self._from(forced[1])
        if goal not in dist:
            return None
        return [forced] + self._steps(paths[goal]), [forced], edge_cost(self.graph.edges[forced]) + dist[goal]

    def _steps(self, nodes: Sequence[str]) -> list[Edge]:
        return [(a, b, self.simple.edges[a, b]["key"]) for a, b in itertools.pairwise(nodes)]


def latest_choice(edges: Sequence[Edge], after: Decisions) -> Edge | None:
    """The latest choice that decides something (a key of `after`) made on the screen `edges` end on,
    since they arrived there: typing on that screen keeps it, leaving the screen leaves it behind."""
    for e in reversed(edges):
        if e in after:
            return e
        if e[0] != e[1]:
            return None
    return None
