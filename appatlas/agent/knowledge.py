"""What the agent knows about an app, read once from its Atlas and kept in memory.

Per screen (structure key): its states, the words on its options and on its static texts, its
structure tokens (for finding the nearest known screen), and its outgoing transitions. Also the
recorded tasks (experience) and an IDF weight per word, so rare words ("autosave") steer more
than common ones ("note").

`without(task)` is the same knowledge minus one recorded task *and its demonstration*: each hop
it made loses one observation of the transition it took (by the step's action; dropped when none
is left), and the states seen only in that demonstration are forgotten
(`appatlas.graph.demonstration.removal`). The tasks benchmark uses
it so that no task is evaluated with its own answer in the atlas.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import networkx as nx

from appatlas.agent.intent import label_words, words
from appatlas.agent.options import Option, options
from appatlas.graph.atlas import Atlas, RecordedTask, StoredTransition
from appatlas.graph.demonstration import Demonstration, removal
from appatlas.graph.fingerprint import content_key, structure_tokens
from appatlas.graph.inputs import field_kind
from appatlas.types import Action, Screen, view_kind

__all__ = ["Knowledge", "ScreenInfo"]

_VERTICAL = ("ScrollView", "ListView", "RecyclerView")
MAX_STATES_PER_SCREEN = 12  # enough examples to know a screen's words; a long crawl has hundreds


@dataclass(frozen=True)
class ScreenInfo:
    key: str
    states: tuple[int, ...]
    labels: tuple[tuple[str, tuple[str, ...]], ...]  # (option label, its words), every label seen on the screen
    texts: frozenset[str]  # words of static texts
    tokens: frozenset[str]  # structure tokens of its first state
    activity: str = ""
    scrolls: frozenset[str] = frozenset()  # resource ids of its vertical scrolling containers
    fields: frozenset[str] = frozenset()  # kinds of its text fields (appatlas.graph.inputs.field_kind)


def _screen_info(key: str, states: Sequence[int], screens: dict[int, Screen]) -> ScreenInfo:
    labels: dict[str, tuple[str, ...]] = {}
    texts: set[str] = set()
    for sid in states[:MAX_STATES_PER_SCREEN]:
        screen = screens[sid]
        for o in options(screen, scroll=False):
            # A field's text is whatever was typed there (by a crawler, too): not something to find.
            if o.widget is not None and o.label and not o.editable:
                labels.setdefault(o.label, tuple(label_words(o.label)))
        for w in screen.widgets():
            if w.text and not (w.clickable or w.editable):
                texts.update(words(w.text))
    first = screens[states[0]]
    scrolls = frozenset(w.resource_id for w in first.widgets() if w.scrollable and w.resource_id
                        and view_kind(w.class_name).endswith(_VERTICAL))
    fields = frozenset(field_kind(w) for w in first.widgets() if w.editable)
    return ScreenInfo(key, tuple(states), tuple(labels.items()), frozenset(texts), structure_tokens(first),
                      first.activity, scrolls, fields)


@dataclass
class Knowledge:
    """An atlas in memory, shaped for deciding (see the module docstring)."""

    package: str
    screens: dict[str, ScreenInfo]
    state_screens: dict[int, Screen] = field(repr=False)
    state_key: dict[int, str]
    content: dict[str, int]  # content key -> state id
    transitions: list[StoredTransition]
    tasks: list[RecordedTask]
    origins: dict[int, str] = field(default_factory=dict)  # state id -> the recording's own id

    def __post_init__(self) -> None:
        self._graph: nx.MultiDiGraph | None = None
        self._out: dict[str, list[StoredTransition]] | None = None
        self._by_state: dict[int, str] | None = None
        self._pages: dict[str, list[str]] | None = None
        self._options: dict[int, list[Option]] = {}
        self._labels: dict[int, list[tuple[str, tuple[str, ...]]]] = {}
        df: Counter[str] = Counter()
        seen: set[str] = set()
        for info in self.screens.values():
            for label, ws in info.labels:
                if label not in seen:
                    seen.add(label)
                    df.update(set(ws))
        n = max(len(seen), 1)
        self.idf = {w: math.log((n + 1) / (c + 0.5)) for w, c in df.items()}
        self.default_idf = math.log(n + 1)

    @classmethod
    def from_atlas(cls, atlas: Atlas) -> Knowledge:
        """Read everything the agent uses from `atlas`."""
        states = list(atlas.states())
        screens = {s.id: atlas.screen(s.id, with_screenshot=False) for s in states}
        state_key = {s.id: s.structure_key for s in states}
        package = atlas.get_meta("package") or next((s.package for s in screens.values()), "")
        return cls.build(package=package, screens=screens, state_key=state_key,
                         content={s.content_key: s.id for s in states},
                         transitions=list(atlas.transitions()), tasks=list(atlas.tasks()),
                         origins={s.id: s.origin for s in states if s.origin})

    @classmethod
    def build(cls, *, package: str, screens: dict[int, Screen], state_key: dict[int, str], content: dict[str, int],
              transitions: list[StoredTransition], tasks: list[RecordedTask],
              origins: dict[int, str] | None = None) -> Knowledge:
        by_key: dict[str, list[int]] = defaultdict(list)
        for sid in sorted(screens):
            by_key[state_key[sid]].append(sid)
        infos = {k: _screen_info(k, v, screens) for k, v in by_key.items()}
        return cls(package=package, screens=infos, state_screens=screens, state_key=state_key, content=content,
                   transitions=transitions, tasks=tasks, origins=origins or {})

    # --- reading ------------------------------------------------------------------------------

    def weight(self, word: str) -> float:
        return self.idf.get(word, self.default_idf)

    def out(self, key: str) -> list[StoredTransition]:
        """Transitions leaving the screen `key` (any of its states)."""
        if self._out is None:
            out: dict[str, list[StoredTransition]] = defaultdict(list)
            for t in self.transitions:
                out[t.source_key].append(t)
            self._out = dict(out)
        return self._out.get(key, [])

    def graph(self) -> nx.MultiDiGraph:
        """The screen graph, as `Atlas.graph()` builds it, from the transitions known here."""
        if self._graph is None:
            g = nx.MultiDiGraph()
            g.add_nodes_from(self.screens)
            for t in self.transitions:
                if g.has_edge(t.source_key, t.target_key, t.action.key):
                    data = g.edges[t.source_key, t.target_key, t.action.key]
                    data["count"] += t.count
                    data["failures"] += t.failures
                else:
                    g.add_edge(t.source_key, t.target_key, key=t.action.key, action=t.action, count=t.count,
                               failures=t.failures, transition=t.id)
            for _, _, data in g.edges(data=True):
                data["reliability"] = (data["count"] + 1) / (data["count"] + data["failures"] + 2)
            self._graph = g
        return self._graph

    def pages(self, key: str) -> list[str]:
        """Other screens that are this one scrolled elsewhere: the same activity and vertical scrolling
        container, not a dialog over it (a long settings page recorded at several positions)."""
        if self._pages is None:
            groups: dict[tuple[str, frozenset[str]], list[str]] = defaultdict(list)
            for k, info in self.screens.items():
                if info.scrolls:
                    groups[(info.activity, info.scrolls)].append(k)
            self._pages = {k: [x for x in ks if x != k] for ks in groups.values() for k in ks}
        return self._pages.get(key, [])

    def options_of(self, state_id: int) -> list[Option]:
        """The options (taps, not fields) of one known state that have a label."""
        if state_id not in self._options:
            screen = self.state_screens.get(state_id)
            self._options[state_id] = [] if screen is None else [
                o for o in options(screen, scroll=False) if o.widget is not None and o.label and not o.editable]
        return self._options[state_id]

    def labels_of(self, state_id: int) -> list[tuple[str, tuple[str, ...]]]:
        """(label, words) of the options of one known state."""
        if state_id not in self._labels:
            self._labels[state_id] = [(o.label, tuple(label_words(o.label))) for o in self.options_of(state_id)]
        return self._labels[state_id]

    def content_of(self, state_id: int) -> str:
        """The content key of a known state."""
        if self._by_state is None:
            self._by_state = {sid: c for c, sid in self.content.items()}
        return self._by_state[state_id]

    def state_of(self, screen: Screen) -> int | None:
        """The recorded state showing exactly this content, if any."""
        return self.content.get(content_key(screen))

    # --- leaving a task out ----------------------------------------------------------------------

    def without(self, task_name: str, *, records: Sequence[Sequence[int]] | None = None,
                actions: Sequence[Action | None] = ()) -> Knowledge:
        """This knowledge minus the recorded task `task_name` and its demonstration (module docstring).

        `records` gives every state of each step (a step scrolled through shows several) and
        `actions` each step's action; by default the task's own steps. What is taken away is decided
        by `appatlas.graph.demonstration.removal`, the one rule every benchmark uses.
        """
        task = next((t for t in self.tasks if t.name == task_name), None)
        if task is None and records is None:
            return self
        if records is None:
            assert task is not None
            records, actions = [[s.state] for s in task.steps], [s.action for s in task.steps]
        demo = Demonstration(task_name, tuple(tuple(r) for r in records), tuple(actions))
        others = [t for t in self.tasks if t.name != task_name]
        cut = removal([demo], self.transitions, kept_task_states=(s.state for t in others for s in t.steps))
        kept = [replace(t, count=cut.kept_count(t)) for t in self.transitions
                if cut.kept_count(t) > 0 and t.source not in cut.states and t.target not in cut.states]
        screens = {sid: s for sid, s in self.state_screens.items() if sid not in cut.states}
        return Knowledge.build(package=self.package, screens=screens,
                               state_key={k: v for k, v in self.state_key.items() if k in screens},
                               content={c: sid for c, sid in self.content.items() if sid in screens},
                               transitions=kept, tasks=others,
                               origins={k: v for k, v in self.origins.items() if k in screens})
