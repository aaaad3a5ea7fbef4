"""What the agent knows about an app, read once from its Atlas and kept in memory.

Per screen (structure key): its states, the words on its options and on its static texts, its
structure tokens (for finding the nearest known screen), and its outgoing transitions. Also the
recorded tasks (experience).

What the agent knows of each element — its functional memory (what it says and where it leads) and
its vector — and the weight of each word (rare words such as "autosave" steer more than common ones
such as "note") come from the atlas's retrieval store (`appatlas.rag.store`, its `elements`
collection), the index the planner and the retriever read: `from_atlas` opens it, or builds it when
it is missing or was made without these elements. Knowledge made without an atlas (`build`) weighs
words with the same function over its own labels.

`without(task)` is the same knowledge minus one recorded task *and its demonstration*: each hop
it made loses one observation of the transition it took (by the step's action; dropped when none
is left), and the states seen only in that demonstration are forgotten
(`appatlas.graph.demonstration.removal`). The tasks benchmark uses
it so that no task is evaluated with its own answer in the atlas. The store stays shared: word
weights are read from the elements of the states still known only, and an element's memory is
made from the transitions still known (a memory the store holds for a removed edge is a sentence
no remaining element says, so it is never looked up).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from appatlas.agent.options import Option, options
from appatlas.graph.atlas import Atlas, RecordedTask, StoredTransition
from appatlas.graph.demonstration import Demonstration, removal
from appatlas.graph.fingerprint import content_key, structure_tokens
from appatlas.graph.inputs import field_kind
from appatlas.rag.intent import label_words, words
from appatlas.rag.store import ElementDoc, word_weights
from appatlas.types import Action, Screen, view_kind

if TYPE_CHECKING:
    from appatlas.agent.meaning import Meaning
    from appatlas.rag.store import RagStore

__all__ = ["Knowledge", "ScreenInfo"]

log = logging.getLogger(__name__)
Progress = Any  # (what, done, total) -> None, as `appatlas.rag.store.build_index` reports

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
    held: frozenset[str] = frozenset()  # what its text fields hold (lower case): a value an intent may replace


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
    held = frozenset(w.text.strip().lower() for sid in states[:MAX_STATES_PER_SCREEN]
                     for w in screens[sid].widgets() if w.editable and w.text.strip())
    return ScreenInfo(key, tuple(states), tuple(labels.items()), frozenset(texts), structure_tokens(first),
                      first.activity, scrolls, fields, held)


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
    store: RagStore | None = field(default=None, repr=False)  # the atlas's retrieval store (module docstring)
    store_states: frozenset[int] | None = field(default=None, repr=False)  # of its elements, those still known

    def __post_init__(self) -> None:
        self._graph: nx.MultiDiGraph | None = None
        self._out: dict[str, list[StoredTransition]] | None = None
        self._by_state: dict[int, str] | None = None
        self._pages: dict[str, list[str]] | None = None
        self._options: dict[int, list[Option]] = {}
        self._labels: dict[int, list[tuple[str, tuple[str, ...]]]] = {}
        self._weights: tuple[dict[str, float], float] | None = None
        self._meaning: Meaning | None = None

    @property
    def meaning(self) -> Meaning:
        """What its elements mean (`appatlas.agent.meaning.Meaning`), one per knowledge: the store's element
        sentences are made with it and every policy deciding over this knowledge reads them (and the
        memories, reaches and targets behind them) from it, so they are made once."""
        if self._meaning is None:
            from appatlas.agent.meaning import Meaning

            self._meaning = Meaning(self)
        return self._meaning

    @classmethod
    def from_atlas(cls, atlas: Atlas, *, store: bool = True, embedder: Any = None, cache: Path | None = None,
                   progress: Progress | None = None) -> Knowledge:
        """Read everything the agent uses from `atlas`, with its retrieval store (module docstring): opened, or
        built beside the atlas when missing (`cache`: a shared embedding cache folder). `store=False`: none."""
        states = list(atlas.states())
        screens = {s.id: atlas.screen(s.id, with_screenshot=False) for s in states}
        state_key = {s.id: s.structure_key for s in states}
        package = atlas.get_meta("package") or next((s.package for s in screens.values()), "")
        knowledge = cls.build(package=package, screens=screens, state_key=state_key,
                              content={s.content_key: s.id for s in states},
                              transitions=list(atlas.transitions()), tasks=list(atlas.tasks()),
                              origins={s.id: s.origin for s in states if s.origin})
        if store:
            knowledge.store = _open_store(atlas, knowledge, embedder=embedder, cache=cache, progress=progress)
        return knowledge

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
        """How much `word` steers: its inverse document frequency over the labels of the app's elements."""
        idf, default = self._word_weights()
        return idf.get(word, default)

    @property
    def default_idf(self) -> float:
        """The weight of a word no element's label has (more than any word some label has)."""
        return self._word_weights()[1]

    def _word_weights(self) -> tuple[dict[str, float], float]:
        if self._weights is None:
            if self.store is not None and self.store.has_elements:
                self._weights = self.store.word_weights(self.store_states)
            else:  # no store (knowledge made in memory): the same weights over its own labels
                self._weights = word_weights(x for info in self.screens.values() for x in info.labels)
        return self._weights

    def stored_vectors(self, sentences: Sequence[str]) -> dict[str, np.ndarray]:
        """The vectors the store holds for those of `sentences` it indexed (element memories)."""
        return self.store.element_vectors(sentences) if self.store is not None else {}

    def element_docs(self) -> list[ElementDoc]:
        """Every labelled element (not a field) of the known screens' first states, as the store keeps it:
        its functional memory (`appatlas.agent.meaning.Meaning.describe`) and the words of its label."""
        out = []
        for key, info in self.screens.items():
            for sid in info.states[:MAX_STATES_PER_SCREEN]:
                for sentence, (label, ws) in zip(self.meaning.state_sentences(key, sid), self.labels_of(sid),
                                                 strict=True):
                    out.append(ElementDoc(key, sentence, label, ws, (sid,)))
        return out

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
        less = Knowledge.build(package=self.package, screens=screens,
                               state_key={k: v for k, v in self.state_key.items() if k in screens},
                               content={c: sid for c, sid in self.content.items() if sid in screens},
                               transitions=kept, tasks=others,
                               origins={k: v for k, v in self.origins.items() if k in screens})
        # The same store, read only for the states still known (the module docstring).
        less.store = self.store
        less.store_states = frozenset(screens) if self.store_states is None else self.store_states & set(screens)
        return less


def _open_store(atlas: Atlas, knowledge: Knowledge, *, embedder: Any = None, cache: Path | None = None,
                progress: Progress | None = None) -> RagStore | None:
    """`atlas`'s retrieval store holding `knowledge`'s elements: opened when it does, else (re)built (only
    what changed is embedded). None, with a warning, where the atlas folder cannot take an index."""
    from appatlas.errors import IndexMissing, IndexStale
    from appatlas.rag.store import RagStore, build_index, element_subject

    docs = knowledge.element_docs()
    wanted = {element_subject(d.key, d.sentence) for d in docs}
    try:
        store = RagStore.open(atlas, embedder=embedder)
        if store.has_elements and {d.subject for d in store.collections["elements"].docs} == wanted:
            return store
    except (IndexMissing, IndexStale):
        pass
    try:
        build_index(atlas, screenshots="off", embedder=embedder, elements=docs, cache=cache, progress=progress)
        return RagStore.open(atlas, embedder=embedder)
    except OSError as exc:
        log.warning("no retrieval store for %s (%s): word weights and memories are made in memory", atlas.folder, exc)
        return None
