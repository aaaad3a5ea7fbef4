"""An atlas read as what retrieval needs: one view per screen (structure key) and per graph edge.

A *screen view* merges the facts of every state of one structure key. A *transition view* is one
edge of the plan graph (source screen, action, target screen) — `Atlas.graph()` with edges keyed by
`edge_key`, which tells apart widgets that share a resource id — named by the id of the stored
transition the graph keeps for it, so captions (`transition:<id>`), the index and the planner all
speak of the same edges. The views also keep what the order of observations says: which steps were
taken one right after the other, and what an action with several outcomes did last.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import networkx as nx

from appatlas.devices.base import locate
from appatlas.errors import SelectorNotFound
from appatlas.graph.atlas import Atlas, StoredTransition
from appatlas.graph.fingerprint import structure_tokens
from appatlas.graph.planner import Edge
from appatlas.rag.describe import ActionFacts, ScreenFacts, action_facts, merge_facts, screen_facts
from appatlas.rag.text import keeps
from appatlas.types import Action, ActionKind, Screen, Widget, view_kind

__all__ = ["AtlasViews", "ScreenView", "TransitionView", "atlas_views", "changed_twin", "closes_dialog", "dialog_opener",
           "edge_key", "keeps_change", "screen_subject",
           "transition_subject"]


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
    # texts some observations of this screen show and others do not (content: note titles, a list's rows), as
    # against the texts every observation shows (its chrome: a title, a tab bar, button labels)
    changing: frozenset[str] = frozenset()


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
    # pairs of graph edges observed one right after the other (the second leaving where the first
    # arrived): steps that have been taken together, hidden state included (the tab a tap switched
    # to, the radio button set before OK). Each pair keeps the states it was seen through
    # (first source, its target, second target), so one recording can be left out of it.
    followed: dict[tuple[Edge, Edge], frozenset[tuple[int, int, int]]] = field(default_factory=dict)

    # for actions seen to lead to more than one screen (hidden state: data added, a permission
    # granted), every observation of each outcome in order: (observation number, source state,
    # target state) per edge
    outcomes: dict[Edge, list[tuple[int, int, int]]] = field(default_factory=dict)
    _plan_graph: nx.MultiDiGraph | None = field(default=None, init=False, repr=False)
    _twins: dict[str, str | None] = field(default_factory=dict, init=False, repr=False)

    def latest_outcomes(self, walks: Sequence[Sequence[int]] = ()) -> set[Edge]:
        """Of each action with several outcomes, the outcome observed last (the app as it is now),
        leaving out observations of the state steps of `walks` (recordings, as state ids in order)."""
        drop = {(a, b) for w in walks for a, b in zip(w, w[1:], strict=False)}
        latest: dict[tuple[str, str], tuple[int, Edge]] = {}
        for edge, seen in self.outcomes.items():
            last = max((n for n, a, b in seen if (a, b) not in drop), default=-1)
            group = (edge[0], edge[2])
            if last >= 0 and (group not in latest or last > latest[group][0]):
                latest[group] = (last, edge)
        return {edge for _, edge in latest.values()}

    def followed_without(self, walks: Sequence[Sequence[int]] = ()) -> set[tuple[Edge, Edge]]:
        """The pairs of `followed` still seen once the state triples of `walks` (recordings, as state
        ids in order) are left out."""
        drop = {tuple(w[i:i + 3]) for w in walks for i in range(len(w) - 2)}
        return {pair for pair, seen in self.followed.items() if not seen <= drop}

    def consequences(self, followed: Iterable[tuple[Edge, Edge]]) -> dict[Edge, dict[tuple[str, str], Edge]]:
        """What a choice decides: for a choice made on a screen (a radio button, checkbox or switch
        tapped, the screen staying), the outcome each action with several outcomes had every time it
        was taken right after that choice. `followed`: pairs of steps (see `followed_without`).

        Hidden state the screen's structure does not show: choose 'Checklist' in the new-note dialog
        and its OK opens the checklist, not the text note. A choice after which an action had several
        outcomes decides nothing about it. Keyed by choice, then (source, action key).
        """
        seen: dict[tuple[Edge, tuple[str, str]], set[Edge]] = defaultdict(set)
        for choice, then in followed:
            if then in self.outcomes and self.is_choice(choice):
                seen[(choice, (then[0], then[2]))].add(then)
        out: dict[Edge, dict[tuple[str, str], Edge]] = defaultdict(dict)
        for (choice, action), outcomes in seen.items():
            if len(outcomes) == 1:
                out[choice][action] = next(iter(outcomes))
        return dict(out)

    def is_choice(self, edge: Edge) -> bool:
        """Whether `edge` sets a choice on its screen: a tap on a radio button, checkbox or switch that
        stays on that screen."""
        t = self.transitions.get(self.graph.edges[edge]["transition"]) if self.graph.has_edge(*edge) else None
        return t is not None and edge[0] == edge[1] and t.action.kind is ActionKind.TAP and \
            t.facts.widget in ("choice", "checkbox", "switch")

    def transient(self, key: str) -> bool:
        """The screen `key` is known and is a dialog or a menu (`ScreenFacts.transient`)."""
        view = self.screens.get(key)
        return view is not None and view.facts.transient

    @property
    def plan_graph(self) -> nx.MultiDiGraph:
        """The graph plans are made on: the recorded graph without the back presses that landed on a dialog
        or a menu. Back closes a dialog or a menu, it does not open one: such an outcome is the history of
        the exploration (a replayed back stack, a dialog left open under an activity), not a step a test
        from a fresh launch can take."""
        if self._plan_graph is None:
            hidden = [(u, v, k) for u, v, k, d in self.graph.edges(keys=True, data=True)
                      if d["action"].kind is ActionKind.BACK and self.transient(v)]
            self._plan_graph = nx.restricted_view(self.graph, [], hidden) if hidden else self.graph
        return self._plan_graph

    def expected_screens(self, start: str, edges: list[tuple[str, str, str]]) -> list[str]:
        """The screen to expect after each edge of a route.

        Usually the edge's recorded target. But a dialog returns to the screen that opened it: when
        a recording saw a dialog's choice land on another screen of the opener's activity (the
        same page scrolled elsewhere, because the dialog was once opened from there), the
        opener is what this route will see.
        """
        out: list[str] = []
        screens = [start]
        typed: set[str] = set()  # the forms this route typed into

        def closed(i: int) -> bool:  # the route's step i closed the screen it left
            view, edge = self.screens.get(screens[i]), edges[i]
            if view is None or not view.facts.transient:
                return False
            return view.facts.kind == "menu" or (self.graph.has_edge(*edge) and
                                                  closes_dialog(view.example, self.graph.edges[edge]["action"]))

        for u, v, key in edges:
            expect = v
            view = self.screens.get(u)
            if v == u and self.closes_unseen((u, v, key)):
                expect = dialog_opener(screens, u, closed) or v
                if expect != v and view is not None and keeps_change(view.example, self.graph.edges[u, v, key]["action"]):
                    expect = self.changed_twin(expect) or expect  # it changed something: the opener shows the change
            elif v == u and u in typed and self.submits_unseen((u, v, key)):
                expect = self.form_opener(screens, u) or v  # a filled form's Save returns to what opened it
            elif view is not None and view.facts.kind == "dialog" and len(screens) >= 2:
                opener = screens[-2]
                same = self.screens.get(opener)
                target = self.screens.get(v)
                if same is not None and target is not None and opener != v and v != u and \
                        not same.facts.transient and self.scroll_variants(opener, v):
                    expect = opener
            if self.graph.has_edge(u, v, key) and self.graph.edges[u, v, key]["action"].kind is ActionKind.TYPE:
                typed.add(u)
            out.append(expect)
            screens.append(expect)
        return out

    def submits_unseen(self, edge: Edge) -> bool:
        """Whether `edge` is the keeping button (Save, OK: `keeps`) of a form — a screen with a text field, not a
        dialog — that the atlas only ever saw leave the form as it was. An exploration presses Save on a form it
        filled with its own values, or none, and the app refuses them (a contact with no name); filled as the
        intent says, the form closes. `form_opener` says where to."""
        view = self._only_stayed(edge)
        if view is None or view.facts.transient:
            return False
        action = self.graph.edges[edge]["action"]
        if action.kind is not ActionKind.TAP or action.target is None:
            return False
        return any(w.editable for w in view.example.widgets()) and keeps(action.target.text or action.target.content_desc)

    def _only_stayed(self, edge: Edge) -> ScreenView | None:
        """The view of `edge`'s screen when `edge` is a step the atlas only ever saw leave that screen as it was (a
        self-loop, and the same action never led anywhere else); else None."""
        u, v, key = edge
        view = self.screens.get(u)
        if u != v or view is None or not self.graph.has_edge(u, v, key):
            return None
        if any(k == key and x != u for _, x, k in self.graph.out_edges(u, keys=True)):
            return None  # it was seen to lead somewhere: that is its outcome
        return view

    def form_opener(self, screens: Sequence[str], form: str) -> str | None:
        """The screen a route's `form` (the last of `screens`) returns to once saved: the latest screen before it
        that is neither the form nor a dialog or menu opened on the way, when it is of another activity — saving
        finishes the form's activity, and the phone shows the one under it. None when there is no such screen."""
        here = self.screens.get(form)
        i = len(screens) - 1
        while i >= 0 and (screens[i] == form or self.transient(screens[i])):
            i -= 1
        opener = self.screens.get(screens[i]) if i >= 0 else None
        if here is None or opener is None or opener.example.activity == here.example.activity:
            return None
        return opener.key

    def changed_twin(self, key: str) -> str | None:
        """The screen `key` as it shows once something on it changed (`changed_twin`), cached per screen."""
        if key not in self._twins:
            self._twins[key] = changed_twin({k: v.example for k, v in self.screens.items()}, key)
        return self._twins[key]

    def closes_unseen(self, edge: Edge) -> bool:
        """Whether `edge` is a tap that closes a dialog (`closes_dialog`) which the atlas only ever saw leave
        the dialog as it was. A phone closes a dialog on OK or on a choice of a list; an exploration that
        saw nothing happen was shown no outcome for it (a replayed recording knows only the taps it
        recorded), so the route expects the dialog's opener, as after any other close."""
        view = self._only_stayed(edge)
        return view is not None and view.facts.kind == "dialog" and \
            closes_dialog(view.example, self.graph.edges[edge]["action"])

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
        shown = [{w.text.strip() for w in screens[i].widgets() if w.text.strip() and not w.editable} for i in ids]
        views[key] = ScreenView(key=key, facts=merge_facts(facts[key]), states=ids, example=example,
                                changing=frozenset(set.union(*shown) - set.intersection(*shown)))
    stored = {t.id: t for t in atlas.transitions()}
    graph, edge_of = _graph(atlas, stored, screens)
    observed = [t for t in atlas.observations() if t in edge_of]
    seen: dict[tuple[Edge, Edge], set[tuple[int, int, int]]] = defaultdict(set)
    for a, b in zip(observed, observed[1:], strict=False):
        ta, tb = stored[a], stored[b]
        if ta.target == tb.source:
            seen[(edge_of[a], edge_of[b])].add((ta.source, ta.target, tb.target))
    followed = {pair: frozenset(triples) for pair, triples in seen.items()}
    targets: dict[tuple[str, str], set[str]] = defaultdict(set)
    for u, v, key in edge_of.values():
        targets[(u, key)].add(v)
    outcomes: dict[Edge, list[tuple[int, int, int]]] = defaultdict(list)
    for n, t in enumerate(observed):
        e = edge_of[t]
        if len(targets[(e[0], e[2])]) > 1:
            outcomes[e].append((n, stored[t].source, stored[t].target))
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
    return AtlasViews(screens=views, transitions=edges, graph=graph, launch=launch, origins=origins,
                      followed=followed, outcomes=dict(outcomes))


def _is_button(w: Widget) -> bool:
    kind = view_kind(w.class_name)
    return kind.endswith("Button") and not kind.endswith(("ImageButton", "RadioButton", "ToggleButton", "CompoundButton")) \
        and w.clickable and not w.checkable and bool(w.label)


def closes_dialog(dialog: Screen, action: Action) -> bool:
    """Whether tapping `action` on `dialog` (a screen read as a dialog) closes it, by how dialogs work on
    every platform: a button of its lowest row of buttons (OK, Cancel, Save: not a button inside its
    content, such as a time to change), or, in a dialog with no buttons, one of its options (a list of
    choices closes when one is picked; a checkbox or a field does not)."""
    if action.kind is not ActionKind.TAP or action.target is None:
        return False
    try:
        w = locate(action.target, dialog)
    except SelectorNotFound:
        return False
    buttons = [b for b in dialog.widgets() if _is_button(b)]
    if buttons:
        lowest = max(b.bounds.y1 for b in buttons)
        return any(b is w for b in buttons) and w.bounds.y2 > lowest
    kind = view_kind(w.class_name)
    return w.actionable and not w.editable and (not w.checkable or kind.endswith("RadioButton"))


def keeps_change(dialog: Screen, action: Action) -> bool:
    """Whether a tap that closes `dialog` keeps a change: a choice of a list with no buttons, or a button that
    keeps (OK, Save), not Cancel."""
    label = (action.target.text or action.target.content_desc) if action.target is not None else ""
    return keeps(label) or not any(_is_button(b) for b in dialog.widgets())


def changed_twin(examples: Mapping[str, Screen], key: str) -> str | None:
    """The screen `key` as it shows once something on it changed: the one other screen of its activity that has
    every control of `key` (by resource id) and more, among them a button that keeps the change (Save). An editor
    shows its Save only after an edit; a crawl that saw a dialog's choice do nothing never saw the editor change
    through it, but may have through another dialog. None when there is no such screen, or more than one."""
    here = examples.get(key)
    if here is None or screen_facts(here).transient:
        return None
    ids = {w.resource_id for w in here.widgets() if w.resource_id}
    found = []
    for k, other in examples.items():
        if k == key or other.activity != here.activity:
            continue
        more = {w.resource_id for w in other.widgets() if w.resource_id}
        if not ids < more:
            continue
        added = [w for w in other.widgets() if w.resource_id in more - ids and w.actionable]
        if any(keeps(w.text or w.content_desc) for w in added) and not screen_facts(other).transient:
            found.append(k)
    return found[0] if len(found) == 1 else None


def dialog_opener(screens: Sequence[str], dialog: str, closed: Callable[[int], bool]) -> str | None:
    """The screen under `dialog` (the last of the route's `screens`): the latest screen before it that the
    route did not close on its way (`closed(i)`: the step that left `screens[i]` closed it — an item picked
    from a menu, OK on a dialog that opened the next one). None when the route began on the dialog."""
    i = len(screens) - 1
    while i >= 0 and screens[i] == dialog:
        i -= 1
    while i >= 0 and closed(i):
        i -= 1
    return screens[i] if i >= 0 else None


def edge_key(action: Action, screen: Screen | None) -> str:
    """The key of an action's edge in the plan graph: `Action.key`, told apart by the widget's text
    when its resource id does not name one widget (menu items that are all `id/title`, list rows).

    `Action.key` leaves the text out when a widget has an id (texts change); but where several
    widgets on the screen share that id, the key alone would merge "Add holidays" and "Settings"
    into one edge, and a route through one would tap the other.
    """
    target = action.target
    if action.kind is ActionKind.TYPE or target is None or not target.resource_id or not target.text \
            or screen is None:
        return action.key
    shared = sum(1 for w in screen.widgets() if w.resource_id == target.resource_id)
    return f"{action.key}|{target.text}" if shared > 1 else action.key


def _graph(atlas: Atlas, stored: dict[int, StoredTransition],
           screens: dict[int, Screen]) -> tuple[nx.MultiDiGraph, dict[int, Edge]]:
    """`Atlas.graph()` with edges keyed by `edge_key`: one edge per (source, action, target) seen;
    and the edge each stored transition is part of."""
    g = nx.MultiDiGraph()
    edge_of = {}
    for node, data in atlas.graph().nodes(data=True):
        g.add_node(node, **data)
    for t in stored.values():
        key = edge_key(t.action, screens.get(t.source))
        edge_of[t.id] = (t.source_key, t.target_key, key)
        if g.has_edge(t.source_key, t.target_key, key):
            data = g.edges[t.source_key, t.target_key, key]
            data["count"] += t.count
            data["failures"] += t.failures
        else:
            g.add_edge(t.source_key, t.target_key, key=key, action=t.action, count=t.count, failures=t.failures,
                       transition=t.id)
    for _, _, data in g.edges(data=True):
        data["reliability"] = (data["count"] + 1) / (data["count"] + data["failures"] + 2)
    return g, edge_of
