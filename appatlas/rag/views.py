"""An atlas read as what retrieval needs: one view per screen (structure key) and per graph edge.

A *screen view* merges the facts of every state of one structure key. A *transition view* is one
edge of `Atlas.graph()` (source screen, action, target screen), named by the id of the stored
transition the graph keeps for it, so captions (`transition:<id>`), the index and the planner
all speak of the same edges.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import networkx as nx

from appatlas.graph.atlas import Atlas
from appatlas.graph.fingerprint import structure_tokens
from appatlas.rag.describe import ActionFacts, ScreenFacts, action_facts, merge_facts, screen_facts
from appatlas.types import Action, Screen

__all__ = ["AtlasViews", "ScreenView", "TransitionView", "atlas_views", "screen_subject", "transition_subject"]


def screen_subject(key: str) -> str:
    return f"screen:{key}"


def transition_subject(transition_id: int) -> str:
    return f"transition:{transition_id}"


@dataclass
class ScreenView:
    key: str  # structure key
    facts: ScreenFacts
    states: list[int]  # state ids of this screen, first observed first
    example: Screen  # the first observed state (with its screenshot when asked for)


@dataclass
class TransitionView:
    id: int  # the stored transition the graph edge stands for
    source: str  # structure keys
    target: str
    action: Action
    facts: ActionFacts
    count: int
    reliability: float
    source_state: int


@dataclass
class AtlasViews:
    screens: dict[str, ScreenView]
    transitions: dict[int, TransitionView]
    graph: nx.MultiDiGraph
    launch: list[str]  # screens the app opened on, most frequent first
    origins: dict[int, str] = field(default_factory=dict)  # state id -> the recording's own id of it

    @property
    def plan_graph(self) -> nx.MultiDiGraph:
        """The graph plans are made on (the recorded graph; inferred edges would join it here)."""
        return self.graph

    def expected_screens(self, start: str, edges: list[tuple[str, str, str]]) -> list[str]:
        """The screen to expect after each edge of a route.

        Usually the edge's recorded target. But a dialog returns to the screen that opened it: when
        a recording saw a dialog's choice land on another screen of the opener's activity (the
        same page scrolled elsewhere, because the dialog was once opened from there), the
        opener is what this route will see.
        """
        out: list[str] = []
        screens = [start]
        for u, v, _ in edges:
            expect = v
            view = self.screens.get(u)
            if view is not None and view.facts.kind == "dialog" and len(screens) >= 2:
                opener = screens[-2]
                same = self.screens.get(opener)
                target = self.screens.get(v)
                if same is not None and target is not None and opener != v and v != u and \
                        same.facts.kind not in ("dialog", "menu") and self.scroll_variants(opener, v):
                    expect = opener
            out.append(expect)
            screens.append(expect)
        return out

    def scroll_variants(self, a: str, b: str) -> bool:
        """Whether screens `a` and `b` are one page scrolled to different rows: same activity, and the
        same widgets (by class and id) outside their scrolling containers; only what scrolled differs."""
        va, vb = self.screens.get(a), self.screens.get(b)
        if va is None or vb is None or va.example.activity != vb.example.activity:
            return False
        fixed_a = {t for t in structure_tokens(va.example) if "[resource_id]" in t}
        fixed_b = {t for t in structure_tokens(vb.example) if "[resource_id]" in t}
        return fixed_a == fixed_b

    def place(self, key: str) -> str:
        view = self.screens.get(key)
        return view.facts.place if view is not None else "unknown screen"


def atlas_views(atlas: Atlas, *, screenshots: bool = False) -> AtlasViews:
    """Read every screen and graph edge of `atlas` once, with their facts."""
    by_key: dict[str, list[int]] = defaultdict(list)
    facts: dict[str, list[ScreenFacts]] = defaultdict(list)
    screens: dict[int, Screen] = {}
    origins: dict[int, str] = {}
    for state in atlas.states():
        origins[state.id] = state.origin
        screen = atlas.screen(state.id, with_screenshot=False)
        screens[state.id] = screen
        by_key[state.structure_key].append(state.id)
        facts[state.structure_key].append(screen_facts(screen))
    views = {}
    for key, ids in by_key.items():
        example = atlas.screen(ids[0], with_screenshot=True) if screenshots else screens[ids[0]]
        views[key] = ScreenView(key=key, facts=merge_facts(facts[key]), states=ids, example=example)
    graph = atlas.graph()
    stored = {t.id: t for t in atlas.transitions()}
    edges = {}
    launches: dict[str, int] = defaultdict(int)
    for u, v, data in graph.edges(data=True):
        t = stored[data["transition"]]
        edges[t.id] = TransitionView(
            id=t.id, source=u, target=v, action=data["action"],
            facts=action_facts(data["action"], screens.get(t.source)), count=data["count"],
            reliability=data["reliability"], source_state=t.source)
        if data["action"].kind.value == "launch":
            launches[v] += data["count"]
    launch = sorted(launches, key=lambda k: -launches[k])
    if not launch and views:
        launch = [next(iter(views))]  # no recorded launch: the first screen ever observed
    return AtlasViews(screens=views, transitions=edges, graph=graph, launch=launch, origins=origins)
