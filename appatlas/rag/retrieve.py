"""Intent -> start screens, key transitions and end screens, each with a score and the reason.

An intent is realised by actions, not by arriving somewhere (docs/ARCHITECTURE.md, "Planning").
So retrieval finds the intent's *key transitions* — the actions whose labels carry the intent's
words (tap 'Autosave notes', choose 'Light'), the fields its typed values go into, and the
button that confirms a dialog left open — and the planner routes through them in order. The
end candidates are where those routes end.

Evidence, in the order it is weighed:
  experience  recorded tasks / executed tests with a similar intent: their start, their path
  captions    hybrid (cosine + BM25) match of the intent against transition and screen captions
  elements    the store's elements collection (the functional memory the agent reads): where acting on the
              elements nearest the intent leaves the user, fused by rank into the ends (`_acted_on`, `_fuse`)
  launch      where the app opens, for the start

Typed values are masked out of the query (they say what to type, not where to go), so a test
never finds its way by the text its own recording typed.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from appatlas.errors import NoPlan
from appatlas.graph.atlas import Atlas
from appatlas.graph.planner import Edge, Route, Waypoint, route
from appatlas.rag.keys import Evidence, KeyPicker
from appatlas.rag.slots import FIELD_WORDS, Slot, extract_slots, masked_query
from appatlas.rag.store import RagStore
from appatlas.rag.text import tokens
from appatlas.rag.views import AtlasViews, atlas_views

__all__ = ["Candidate", "KeyTransition", "Rehearsal", "Retrieval", "Retriever"]

# Intent words that say *how* (change, set, turn on) rather than *what*: weak evidence on their own.
_WEAK = frozenset(tokens("change set turn enable disable make adjust select choose switch check go open want "
                         "use option mode function page add create new"))



@dataclass
class Candidate:
    key: str  # structure key
    score: float
    reason: str


@dataclass
class KeyTransition:
    id: int  # stored transition id (caption subject `transition:<id>`)
    edge: Edge
    score: float
    reason: str
    slot: Slot | None = None  # the value typed by this transition

    @property
    def waypoint(self) -> Waypoint:
        return Waypoint(edge=self.edge)


@dataclass
class Retrieval:
    intent: str
    query: str  # the intent with typed values masked
    slots: list[Slot]
    starts: list[Candidate]
    key_transitions: list[KeyTransition]
    ends: list[Candidate]
    routes: list[Route] = field(default_factory=list)
    experience: list[tuple[str, float]] = field(default_factory=list)  # (task name, similarity)
    ms: float = 0.0
    rehearsal: str = ""  # how the agent's rehearsal ended (finished: its route is the first), when one ran


@dataclass
class Rehearsal:
    """The agent's own decisions played on the atlas (`appatlas.agent.rehearse`): a route, why each step,
    what it typed, and whether the agent judged the intent realised at its end."""

    start: str
    edges: list[Edge] = field(default_factory=list)
    notes: dict[Edge, str] = field(default_factory=dict)
    typed: dict[Edge, str] = field(default_factory=dict)
    done: bool = False
    reason: str = ""


Rehearse = Callable[[str, str], "Rehearsal | None"]


@dataclass
class _Scores:
    edges: dict[int, float]  # transition id -> hybrid relevance
    screens: dict[str, float]  # structure key -> hybrid relevance
    weights: dict[str, float]  # intent term -> weight (idf, weak words discounted)


class Retriever:
    """Retrieval over one atlas and its index. Reads the atlas; never touches a device."""

    def __init__(self, atlas: Atlas, store: RagStore, *, views: AtlasViews | None = None,
                 rehearse: Rehearse | None = None) -> None:
        """`rehearse(intent, start)`, when given, plays the agent's decisions on the atlas; a rehearsal the
        agent finished becomes the first route (`appatlas.agent.rehearse`), word-matched routes follow."""
        self.atlas = atlas
        self.rehearse = rehearse
        self.store = store
        self.views = views if views is not None else atlas_views(atlas)
        self.package = atlas.get_meta("package")
        self.picker = KeyPicker(self.views)
        self._app_words = _app_words(self.package)
        tasks = {f"task:{t.name}": t for t in atlas.tasks()}
        keys = {s.id: s.structure_key for s in atlas.states()}
        # each recorded task's screens, in order: what a similar intent's path looked like
        self._task_path: dict[str, list[str]] = {s: [keys.get(st.state, "") for st in t.steps] for s, t in tasks.items()}
        self._task_states = {t.name: [st.state for st in t.steps] for t in tasks.values()}
        self._followed = self.views.followed_without()
        self._latest = self.views.latest_outcomes()
        self._after = self.views.consequences(self._followed)
        self._shown_on: dict[str, int] | None = None  # element sentence -> screens showing it (`_acted_on`)

    # --- public ------------------------------------------------------------------------------

    def retrieve(self, intent: str, *, screenshot: bytes | None = None, exclude_tasks: Sequence[str] = (),
                 start: str | None = None, k: int = 5) -> Retrieval:
        """Rank start and end screens for `intent`, pick its key transitions, and route through them.

        `exclude_tasks` (task names) are never used as experience: the benchmark leaves each
        task's own recording out. `start` forces the start screen; a `screenshot` says where the
        tester is and becomes the start.
        """
        t0 = time.perf_counter()
        slots = extract_slots(intent)
        query = _without_app_name(masked_query(intent, slots) or intent, self._app_words)
        qvec = self.store.embed_query(query)
        scores = self._scores(query, qvec, slots)
        experience = self._experience(qvec, query, exclude_tasks)
        starts = self._starts(scores, experience, screenshot)
        if start is not None:
            starts = [Candidate(start, 1.0, "given")] + [c for c in starts if c.key != start]
        # steps seen taken together, outcomes seen last — without those of a left-out recording
        walks = [self._task_states[n] for n in exclude_tasks if n in self._task_states]
        followed = self.views.followed_without(walks) if walks else self._followed
        latest = self.views.latest_outcomes(walks) if walks else self._latest
        after = self.views.consequences(followed) if walks else self._after
        keys = self._key_transitions(starts[0].key, scores, experience, slots, query, followed,
                                     latest, after) if starts else []
        routes = self._routes(starts[0].key, keys, k) if starts else []
        rehearsed = self.rehearse(intent, starts[0].key) if self.rehearse is not None and starts else None
        if rehearsed is not None and rehearsed.done and rehearsed.edges:
            keys = self._rehearsed_keys(rehearsed, slots)
            routes = [Route(rehearsed.start, list(rehearsed.edges))] + [
                r for r in routes if r.edges != rehearsed.edges][:max(k - 1, 0)]
        ends = self._ends(routes, scores, experience, starts)
        if rehearsed is not None and rehearsed.done and rehearsed.edges:
            # the agent judged the intent realised where its rehearsed route ends: that end comes first, before
            # the other outcomes its last action has had (hidden state) and the other routes' ends
            done = self.views.expected_screens(routes[0].start, routes[0].edges)[-1]
            ends = sorted(ends, key=lambda c: c.key != done)
        elif starts:  # no finished rehearsal: what acting on the elements that best mean the intent leaves one on
            ends = _fuse(ends, self._acted_on(query, qvec, starts[0].key))
        told = "" if rehearsed is None else (("finished: " if rehearsed.done and rehearsed.edges else "unfinished: ")
                                              + rehearsed.reason)
        return Retrieval(intent=intent, query=query, slots=slots, starts=starts[:k], key_transitions=keys,
                         ends=ends[:k], routes=routes, experience=[(n, s) for n, s, _ in experience],
                         ms=(time.perf_counter() - t0) * 1000, rehearsal=told)

    # --- evidence ----------------------------------------------------------------------------

    def _scores(self, query: str, qvec: np.ndarray, slots: Sequence[Slot] = ()) -> _Scores:
        out = {}
        # "add the holidays of X and list all the events": each part is scored on its own too, so
        # the actions of the second part are not drowned by the words of the first
        parts = [p for p in _CLAUSE.split(query) if len(tokens(p)) >= 2]
        queries = [(query, qvec)]
        if len(parts) > 1:
            queries += list(zip(parts, self.store.embedder.encode(parts), strict=True))
        for name in ("transitions", "screens"):
            col = self.store.collections[name]
            best = np.zeros(len(col.docs), dtype=np.float32)
            for text, vec in queries:
                dense = col.dense_scores(vec)
                lex = col.lexical_scores(text)
                top = float(lex.max()) if len(lex) else 0.0
                best = np.maximum(best, 0.5 * np.clip(dense, 0, None) + 0.5 * (lex / top if top > 0 else lex))
            out[name] = {d.meta["id"] if name == "transitions" else d.meta["key"]: float(s)
                         for d, s in zip(col.docs, best, strict=True)}
        bm25 = self.store.collections["transitions"].bm25
        field_cues = {w for s in slots if s.is_typed for w in tokens(s.clause)} & FIELD_WORDS
        descriptors = _descriptors(query)
        # the old value of "from 'a' to 'b'" says what changes, not where to go: its words are left out,
        # unless the intent also says them outside it ("change the event type 'regular event' to …")
        rest = query
        for s in slots:
            if s.replaced:
                rest = rest.replace(s.value, " ")
        replaced = {w for s in slots if s.replaced for w in tokens(s.value)} - set(tokens(rest))
        screens = self.store.collections["screens"].bm25
        top_idf = float(bm25.idf.max()) if bm25 is not None and len(bm25.idf) else 1.0
        weights = {}
        for term in dict.fromkeys(tokens(query)):
            if term == "~not" or term in replaced:
                continue  # a negation says which way to flip, an old value what changes: neither where to go
            if bm25 is not None and term in bm25.vocab:
                idf = float(bm25.idf[bm25.vocab[term]])
            elif screens is not None and term in screens.vocab:
                idf = float(screens.idf[screens.vocab[term]])
            else:
                idf = 0.5 * top_idf  # a word the atlas never shows: some weight, it may be a synonym
            weights[term] = idf * (0.25 if term in _WEAK else 1.0) * (0.2 if term in self._app_words else 1.0) \
                * (0.3 if term in field_cues else 1.0) * (0.35 if term in descriptors else 1.0)
        total = sum(weights.values()) or 1.0
        return _Scores(edges=out["transitions"], screens=out["screens"],
                       weights={t: w / total for t, w in weights.items()})

    def _experience(self, qvec: np.ndarray, query: str, exclude: Sequence[str]) -> list[tuple[str, float, str]]:
        """Similar recorded intents: (task name, similarity, subject), best first, own recording left out."""
        col = self.store.collections["tasks"]
        if not len(col):
            return []
        dense = col.dense_scores(qvec)
        banned = {f"task:{n}" for n in exclude}
        out = []
        for i in np.argsort(-dense)[:8]:
            doc = col.docs[i]
            if doc.subject in banned or dense[i] < 0.45:
                continue
            out.append((doc.meta["name"], float(dense[i]), doc.subject))
        return out[:3]

    def _starts(self, scores: _Scores, experience: list[tuple[str, float, str]],
                screenshot: bytes | None) -> list[Candidate]:
        score: dict[str, float] = defaultdict(float)
        reason: dict[str, str] = {}
        if screenshot is not None and "shots" in self.store.collections:
            hits = self.store.search_screenshot(screenshot, k=2)
            if hits:  # the screenshot shows where the tester is: that decides, unless it is ambiguous
                margin = hits[0].score - (hits[1].score if len(hits) > 1 else 0.0)
                key = hits[0].meta["key"]
                score[key] += 4.0 * hits[0].score * min(1.0, 0.5 + 10 * margin)
                reason[key] = f"the screenshot looks like it ({hits[0].score:.2f})"
        launches = [k for k in self.views.launch if self._in_app(k)] or self._beyond(self.views.launch)
        for rank, key in enumerate(launches[:5]):
            score[key] += 0.6 / (rank + 1)
            reason.setdefault(key, "the app opens here" if rank == 0 else "the app sometimes opens here")
        for name, sim, subject in experience:
            path = self._task_path.get(subject) or [""]
            if path[0]:
                score[path[0]] += 1.5 * sim
                reason.setdefault(path[0], f"similar task {name!r} started here ({sim:.2f})")
        if not score:
            first = next(iter(self.views.screens))
            return [Candidate(first, 0.0, "the first screen observed")]
        ranked = sorted(score, key=lambda k: -score[k])
        return [Candidate(k, score[k], reason.get(k, "")) for k in ranked]

    def _beyond(self, launches: Sequence[str]) -> list[str]:
        """Where the app's own screens begin when it opens on another app's (a permission request):
        the nearest in-app screens reached from there, then the launch screens themselves. A tester
        who writes an intent has long answered the request; the run answers it as an interruption."""
        g = self.views.plan_graph
        seen, frontier, found = set(launches), list(launches), []
        while frontier and not found:
            nxt = []
            for key in frontier:
                for _, other in g.out_edges(key) if key in g else ():
                    if other not in seen:
                        seen.add(other)
                        (found if self._in_app(other) else nxt).append(other)
            frontier = nxt
        return found + [k for k in launches if k not in found]

    def _in_app(self, key: str) -> bool:
        view = self.views.screens.get(key)
        return view is not None and (not self.package or view.example.package == self.package)

    # --- key transitions -----------------------------------------------------------------------

    def _key_transitions(self, start: str, scores: _Scores, experience: list[tuple[str, float, str]],
                         slots: list[Slot], query: str, followed: set[tuple[Edge, Edge]],
                         latest: set[Edge], after: dict[Edge, dict[tuple[str, str], Edge]]) -> list[KeyTransition]:
        order = {t: i for i, t in reversed(list(enumerate(tokens(query))))}
        ev = Evidence(weights=scores.weights, edges=scores.edges, screens=scores.screens,
                      experience=[(sim, self._task_path.get(subject, [])) for _, sim, subject in experience[:2]],
                      slots=[s for s in slots if s.is_typed], order=order, near=Evidence.neighbours(tokens(query)),
                      followed=followed, latest=latest, after=after)
        picks = self.picker.pick(start, ev)
        return [KeyTransition(p.transition, p.edge, 1.0, p.reason, p.slot) for p in picks]

    def _rehearsed_keys(self, rehearsed: Rehearsal, slots: Sequence[Slot]) -> list[KeyTransition]:
        """Every step of a finished rehearsal is a key transition; a typed one carries the slot it typed."""
        out = []
        for edge in rehearsed.edges:
            text = rehearsed.typed.get(edge, "")
            slot = next((s for s in slots if s.is_typed and text and s.value.casefold() == text.casefold()), None)
            out.append(KeyTransition(self.views.plan_graph.edges[edge]["transition"], edge, 1.0,
                                     f"the agent, rehearsed on the atlas: {rehearsed.notes.get(edge, '')}", slot))
        return out

    # --- routes and ends -----------------------------------------------------------------------

    def _routes(self, start: str, keys: list[KeyTransition], k: int) -> list[Route]:
        waypoints = [kt.waypoint for kt in keys]
        while True:
            try:
                return route(self.views.plan_graph, start, waypoints, k=k)
            except NoPlan:  # drop the last waypoint and plan what is left (an empty list: no plan)
                if not waypoints:
                    return []
                waypoints = waypoints[:-1]

    def _ends(self, routes: list[Route], scores: _Scores, experience: list[tuple[str, float, str]],
              starts: list[Candidate]) -> list[Candidate]:
        score: dict[str, float] = defaultdict(float)
        reason: dict[str, str] = {}

        def add(key: str, value: float, why: str) -> None:
            score[key] += value
            reason.setdefault(key, why)

        for rank, r in enumerate(routes):
            end = self.views.expected_screens(r.start, r.edges)[-1] if r.edges else r.start
            add(end, (3.0 if rank == 0 else 2.0) / (rank + 1), "the planned route through the key transitions ends here")
        if routes and routes[0].edges:
            best = routes[0]
            u, v, key = best.edges[-1]
            label = self._label(best.edges[-1])
            g = self.views.plan_graph
            # The same action (or another with the same label) has led elsewhere too: hidden state
            # (data created earlier) decides which; those screens are the next best guesses.
            for _, other, k in g.out_edges(u, keys=True):
                if other != v and (k == key or (label and self._label((u, other, k)) == label)):
                    add(other, 1.5, "the final action has also led here")
            # A screen of the same activity the route passed (settings scrolled to another row)
            activity = self._activity(best.end)
            for earlier in reversed(best.screens[:-1]):
                if earlier != best.end and activity and self._activity(earlier) == activity and \
                        not self.views.transient(earlier):
                    add(earlier, 1.2, "the same screen as the route's end, seen before it scrolled")
                    break
        for name, sim, subject in experience:
            path = self._task_path.get(subject) or [""]
            if path[-1]:
                add(path[-1], 0.8 * sim, f"similar task {name!r} ended here ({sim:.2f})")
        for key, s in sorted(scores.screens.items(), key=lambda kv: -kv[1])[:10]:
            add(key, 0.5 * s, f"its caption matches the intent ({s:.2f})")
        # The actions whose captions mean the intent most: an intent that sets or shows something ends where
        # that control is (the settings page holding "Font size") or where it leads, even when no route through
        # it was found (the exploration never saw the control's own dialog)
        for tid, s in sorted(scores.edges.items(), key=lambda kv: -kv[1])[:3]:
            t = self.views.transitions.get(tid)
            if t is not None:
                for key in dict.fromkeys((t.target, t.source)):
                    add(key, 0.4 * s, f"the action nearest the intent in meaning, '{t.facts.label}', is here ({s:.2f})")
        ranked = sorted(score, key=lambda k: -score[k])
        return [Candidate(k, score[k], reason[k]) for k in ranked]

    def _acted_on(self, query: str, qvec: np.ndarray, start: str, *, k: int = 10) -> list[Candidate]:
        """Where acting on the elements whose functional memory best matches the intent leaves the user, best
        first: the store's elements collection (what each element says and where it leads, rag.captioner
        `element_sentence`), searched by meaning and words. An element leads where the atlas saw its action go,
        read as a route from `start` (`AtlasViews.expected_screens`: a dialog's choice returns to its opener);
        one whose action was never seen taken, or goes nowhere else (a switch, a field), leaves the user on its
        own screen — unless the same element is shown on other screens too (a player bar, a row of a page seen
        scrolled): it then says nothing of which of them the intent ends on, and does not vote. Empty when the
        store has no elements (an index built without them)."""
        if not self.store.has_elements:
            return []
        if self._shown_on is None:  # how many screens show each element sentence
            keys: dict[str, set[str]] = defaultdict(set)
            for d in self.store.element_docs():
                keys[d.text].add(d.meta["key"])
            self._shown_on = {text: len(on) for text, on in keys.items()}
        g = self.views.plan_graph
        out: dict[str, Candidate] = {}
        for hit in self.store.search("elements", query, k=k, qvec=qvec):
            key, label = hit.meta["key"], str(hit.meta.get("label", "")).casefold()
            ends = []
            for edge in (g.out_edges(key, keys=True) if key in g else ()):
                if label and self._label(edge) == label:
                    try:
                        r = route(g, start, [Waypoint(edge=edge)], k=1)[0]
                    except NoPlan:
                        continue
                    ends.append(self._settled([r.start, *self.views.expected_screens(r.start, r.edges)]))
            ends = ends or [self._settled([key])]
            if set(ends) == {key} and self._shown_on.get(hit.text, 1) > 1:
                continue
            for end in dict.fromkeys(ends):
                out.setdefault(end, Candidate(end, hit.score, f"acting on '{hit.meta.get('label', '')}', the element "
                                                             f"nearest the intent in meaning, leads here ({hit.score:.2f})"))
        return list(out.values())

    def _settled(self, screens: Sequence[str]) -> str:
        """Where a user acting along `screens` is left once the way is done: a dialog or menu is not where an
        intent ends (it closes on a choice, or on OK, onto the screen under it), so the last screen of the
        way that is neither; the last screen when all are."""
        return next((k for k in reversed(screens) if not self.views.transient(k)), screens[-1])

    def _label(self, edge: Edge) -> str:
        data = self.views.plan_graph.edges[edge]
        t = self.views.transitions.get(data["transition"])
        return t.facts.label.casefold() if t is not None else ""

    def _activity(self, key: str) -> str:
        view = self.views.screens.get(key)
        return view.facts.activity if view is not None else ""


_RRF_K = 60  # reciprocal rank fusion's standard constant (Cormack et al. 2009): no weight fitted on any app


def _fuse(ends: list[Candidate], acted: list[Candidate]) -> list[Candidate]:
    """The end candidates of the routes and captions fused by rank with those the elements say (reciprocal rank
    fusion: each list adds 1/(k + rank)). Ties keep the routes' order. Nothing to fuse: `ends` as they were."""
    if not acted:
        return ends
    score: dict[str, float] = defaultdict(float)
    reason: dict[str, str] = {}
    for ranked in (ends, acted):
        for rank, c in enumerate(ranked):
            score[c.key] += 1.0 / (_RRF_K + rank + 1)
            reason.setdefault(c.key, c.reason)
    order: dict[str, int] = {}
    for i, c in enumerate(ends + acted):
        order.setdefault(c.key, i)
    ranked = sorted(score, key=lambda key: (-score[key], order[key]))
    return [Candidate(key, score[key], reason[key]) for key in ranked]


class _AppWords(frozenset[str]):
    """Words naming the app itself ("calendar", "music player"): every task says them, they pick nothing.

    The package's last two names, whole, and any word the app's own name starts or ends with
    ("music" and "player" of "musicplayer", "launcher" of "applauncher") — from the package alone,
    with no list of app kinds."""

    name: str = ""

    def __contains__(self, term: object) -> bool:
        if not isinstance(term, str):
            return False
        return frozenset.__contains__(self, term) or (
            len(term) >= 4 and len(self.name) > len(term) and (self.name.startswith(term) or self.name.endswith(term)))


def _app_words(package: str) -> _AppWords:
    parts = [p for p in package.lower().split(".") if p not in ("com", "org", "net", "pro", "android", "app")]
    out = _AppWords(set(tokens(" ".join(parts[-2:]))) | {"app", "application"})
    out.name = parts[-1] if parts else ""
    return out


def _without_app_name(query: str, app_words: _AppWords) -> str:
    """`query` without the phrase that names the app itself ("... of the Notes app", "in the Music player
    application"): every intent of the app may say it and it points at no screen, yet it pulls the meaning
    of the whole query (MiniLM, BM25) towards every screen that shows the app's name. Only the words right
    before "app"/"application" that name the app go; "the note 'Diary'" keeps its word."""
    words = query.split()
    out: list[str] = []
    for w in words:
        if re.fullmatch(r"(?i)app(lication)?[.,;:!?]?", w) and out and all(t in app_words for t in tokens(out[-1])) \
                and tokens(out[-1]):
            while out and tokens(out[-1]) and all(t in app_words for t in tokens(out[-1])):
                out.pop()
            if out and out[-1].casefold() == "the":
                out.pop()
            if out and out[-1].casefold() in ("of", "in", "on", "for", "within", "inside"):
                out.pop()
            if w[-1] in ".,;:!?" and out:
                out[-1] += w[-1]
            continue
        out.append(w)
    return " ".join(out) if out else query


_CLAUSE = re.compile(r",\s*(?:and\s+)?|\s+and\s+(?=(?:then\s+)?[a-z]+\s)|;\s*|\s+then\s+", re.I)
_ENTITY = re.compile(r"^(?:[A-Z][a-z]+|[A-Z]{2,}|\S*\d\S*|['\"\u2018\u201c].*)$")


def _descriptors(text: str) -> set[str]:
    """Words that only say what kind of thing a named thing is: "the DCIM *folder*", "*contact* Bob",
    "the *song* 'test1'". The name picks the action; the kind word would only pull in look-alikes.
    A word that also appears on its own ("create a *folder* … in the 'DCIM' folder") is kept."""
    words = re.findall(r"['\"\u2018\u201c][^'\"\u2019\u201d]+['\"\u2019\u201d]|[\w:'%]+", text)
    beside: set[int] = set()
    for i, w in enumerate(words):
        if i == 0 or not _ENTITY.match(w) or w.lower() == "i":
            continue
        beside.update(j for j in (i - 1, i + 1) if 0 <= j < len(words) and not _ENTITY.match(words[j]))
    described: dict[str, bool] = {}
    for j, w in enumerate(words):
        if _ENTITY.match(w) and j:
            continue
        for t in tokens(w):
            described[t] = described.get(t, True) and j in beside
    return {t for t, only in described.items() if only}
