"""What a crawl knows about the app so far: candidate actions per screen, what was tried, what happened.

The model is a pure function of the atlas (states and observed transitions), so a crawl killed at
any moment resumes with exactly the same frontier: `CrawlModel.from_atlas` replays the record.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

from appatlas.devices.base import selector_for
from appatlas.graph.atlas import Atlas, State
from appatlas.graph.fingerprint import ADAPTER_VIEWS
from appatlas.types import Action, ActionKind, Screen, Widget

__all__ = ["DEFAULT_DENY", "PASSES", "Candidate", "CrawlModel", "button_role", "candidates", "spot"]

DEFAULT_DENY = (r"delete all", r"factory reset", r"log ?out", r"sign ?out", r"uninstall", r"erase (all|everything)",
                r"reset (all|app|everything)", r"wipe")
BACK = Action(ActionKind.BACK)
REFUSED = "|refused-in-state|"  # marks a per-state refusal among the dropped spots of a screen
REPEATED = 4  # this many widgets of one kind and signature on a screen make a grid of data, like list rows
BAR_BACKGROUNDS = ("statusBarBackground", "navigationBarBackground")  # window decor, not the app
Node = TypeVar("Node", str, int)  # a screen (structure key) or a state (id)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One thing that can be done on a screen. TYPE candidates get their text when chosen."""

    action: Action
    widget: Widget | None
    row: bool = False  # a row of a list or a cell of a grid: its siblings probably do the same
    loose: bool = False  # a view not marked clickable, under no view that is (DroidBot taps these too)

    @property
    def key(self) -> str:
        return spot(self.action)

    @property
    def detail(self) -> str:
        """Its spot plus what it shows (its texts and its children's): the same place with other content."""
        if self.widget is None:
            return self.key
        return self.key + "|" + "|".join(w.label for w in self.widget.walk() if w.label)


def candidates(screen: Screen, *, deny: tuple[str, ...] = DEFAULT_DENY) -> list[Candidate]:
    """Every action a tester could take on `screen` (its clickable, editable, scrollable widgets, and back).

    A leaf view under no clickable view is a candidate too, as in DroidBot: the `clickable` flag of
    a dump is unreliable (a list that handles its rows' clicks, a selected tab that still takes a tap).
    """
    denied = re.compile("|".join(deny), re.IGNORECASE) if deny else None
    out: list[Candidate] = []
    seen: set[str] = set()
    stack: list[tuple[Widget, bool, bool]] = [(screen.root, False, False)]  # (widget, in a list, under a touchable)
    while stack:
        w, in_list, covered = stack.pop()
        touchable = w.enabled and (w.clickable or w.checkable or w.long_clickable)
        stack.extend((c, in_list or w.class_name.endswith(ADAPTER_VIEWS), covered or touchable)
                     for c in reversed(w.children))
        if not w.enabled or w.bounds.area == 0:
            continue
        label = w.label or w.resource_id
        if denied is not None and label and denied.search(label):
            continue
        kinds = []
        if w.editable:
            kinds.append(ActionKind.TYPE)
        elif w.clickable or w.checkable or w.long_clickable:
            # A long-clickable row nearly always takes a plain tap too, whatever its flags say.
            kinds.append(ActionKind.TAP)
        if w.long_clickable and not w.editable:
            kinds.append(ActionKind.LONG_TAP)
        if w.scrollable:
            kinds.append(ActionKind.SCROLL)
        loose = (not kinds and not covered and not w.children and w.package in ("", screen.package)
                 and not w.resource_id.endswith(BAR_BACKGROUNDS))
        if loose:
            kinds.append(ActionKind.TAP)
        if not kinds:
            continue
        target = selector_for(w, screen)
        for kind in kinds:
            if kind is ActionKind.SCROLL:
                action = Action(kind, target=target, direction="down")
            elif kind is ActionKind.TYPE:
                action = Action(kind, target=target, text="")
            else:
                action = Action(kind, target=target)
            if spot(action) not in seen:
                seen.add(spot(action))
                out.append(Candidate(action, w, row=in_list, loose=loose))
    # Widgets repeated on the screen (cells of a month, days of a picker) are rows too, list or not.
    repeats = Counter(f"{c.action.kind.value}|{c.widget.signature}" for c in out if c.widget is not None)
    out = [replace(c, row=True) if c.widget is not None and not c.row
           and repeats[f"{c.action.kind.value}|{c.widget.signature}"] >= REPEATED else c for c in out]
    out.append(Candidate(BACK, None))
    return out


def spot(action: Action) -> str:
    """The crawler's identity of an action: kind, widget signature, description and position.

    Texts are left out on purpose: a label that changes ("synced 3 min ago") or a field that was
    typed into is the same place to act on, and keying by text would make the frontier endless.
    """
    t = action.target
    if t is None:
        return f"{action.kind.value}|{action.app}"
    return f"{action.kind.value}|{t.signature}|{t.content_desc}|{t.bounds}|{action.direction}"


_SUBMIT = re.compile(r"^(ok|save|done|create|add|submit|confirm|apply|yes|send|continue|next|sign in|log in)$",
                     re.IGNORECASE)
_DISMISS = re.compile(r"^(cancel|close|dismiss|no|not now|discard|later)$", re.IGNORECASE)


def button_role(widget: Widget) -> str:
    """"submit", "dismiss" or "": what a button does to the form or dialog it closes, by Android's dialog
    button ids (button1 positive, button2 negative) and by its label."""
    rid = widget.resource_id.rsplit("/", 1)[-1].lower()
    label = widget.label.strip()
    if rid == "button1" or _SUBMIT.match(label) or rid in ("save", "done", "confirm", "submit", "ok"):
        return "submit"
    if rid == "button2" or _DISMISS.match(label) or rid in ("cancel", "close", "dismiss"):
        return "dismiss"
    return ""


def form_of(screen: Screen) -> frozenset[str]:
    """The state of the screen's form: which fields hold something and which boxes are ticked.

    A submit button's effect depends on it (a gate, a chosen note type), not on the exact text.
    """
    return frozenset(f"{w.resource_id}|{w.bounds}|{'checked' if w.checked else 'filled'}" for w in screen.widgets()
                     if (w.editable and w.text and w.text != w.hint) or (w.checkable and w.checked))


PASSES = ("screen", "views", "content", "state")
SCREEN, VIEWS, CONTENT, STATE = range(len(PASSES))


class CrawlModel:
    """Candidates, tried actions and observed effects, by screen (structure key) and by state.

    The crawl goes from coarse to fine, one pass when the previous one has nothing left to try:

    1. `screen`: each action (its spot) once per screen, a submit button once per state of its form, rows
       of a list or grid until two did the same; walks aim at screens (at a state of the screen when only
       that state offers what is left, as another tab of one pager does).
    2. `views`: the same for views not marked clickable (a selected tab's label, a list that takes
       its rows' clicks), which a dump's flags say nothing happens on.
    3. `content`: each action once per distinct content of its widget (the row now shows another
       contact, the button another label); walks aim at states from now on.
    4. `state`: each action once more in every state (the same screen after other actions: a list
       holding the note just created), a flaky one a few times; again, while a round finds something.
    """

    RETRIES = 3  # tries of a flaky action per state in the last pass

    def __init__(self, *, deny: tuple[str, ...] = DEFAULT_DENY,
                 on_drop: Callable[[str, list[str]], None] | None = None) -> None:
        self.deny = deny
        self.on_drop = on_drop  # persists what the crawl gave up, so a resume gives it up too
        self.on_pass: Callable[[str], None] | None = None  # persists the pass, so a resume is in it too
        self.level = SCREEN  # index into PASSES
        self.rounds = 1  # rounds of the last pass: when it is done and it found something, it starts again
        self._round_start = (0, 0)  # (states, transitions) when the current round began
        self._cands: dict[int, list[Candidate]] = {}
        self._form: dict[int, frozenset[str]] = {}
        self.key_of: dict[int, str] = {}
        self.states_of: defaultdict[str, list[int]] = defaultdict(list)  # screen -> its states, as seen
        self.tried: set[tuple[str, frozenset[str], str]] = set()  # (screen, filled fields, action key)
        self.tried_anyhow: set[tuple[str, str]] = set()  # (screen, action key), whatever the fields held
        self.tried_kinds: defaultdict[str, set[str]] = defaultdict(set)  # screen -> "kind|signature" tried
        self.effects: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        self.frontier: defaultdict[str, set[str]] = defaultdict(set)  # screen -> untried action keys
        self.nav: defaultdict[str, dict[tuple[str, str], Action]] = defaultdict(dict)  # s -> (action key, t) -> action
        self.signature_screens: defaultdict[str, set[str]] = defaultdict(set)
        self.noop_spots: defaultdict[str, set[str]] = defaultdict(set)  # screen -> bounds where taps did nothing
        # Rows of a list or grid: what tapping them did, by (screen, "kind|signature"); once two rows did the
        # same and many more remain, the others wait for the content pass (rows are data, as in the structure key).
        self.row_effects: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        self._row_keys: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        self.rows_tried: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        self.transitions = 0
        # Later passes work on states: what was tried where, what it did, and what is left per state.
        self.tried_detail: set[tuple[str, str]] = set()  # (screen, Candidate.detail)
        self._details: dict[int, dict[str, str]] = {}  # state id -> action key -> its detail there
        self.detail_states: defaultdict[tuple[str, str], set[int]] = defaultdict(set)
        self.tried_in_state: Counter[tuple[int, str]] = Counter()
        self.state_nav: defaultdict[int, dict[tuple[str, int], Action]] = defaultdict(dict)
        self.state_effects: defaultdict[tuple[int, str], Counter[int]] = defaultdict(Counter)
        self.state_frontier: defaultdict[int, set[str]] = defaultdict(set)  # state id -> keys untried there

    @property
    def fine(self) -> bool:
        """Past the first pass: walks aim at states, not screens."""
        return self.level >= CONTENT

    @classmethod
    def from_atlas(cls, atlas: Atlas, *, explore: Callable[[Screen], bool],
                   deny: tuple[str, ...] = DEFAULT_DENY) -> CrawlModel:
        """Rebuild the model from everything the atlas recorded (for --resume)."""
        model = cls(deny=deny)
        saved, _, rounds = (atlas.get_meta("crawl_pass") or PASSES[0]).partition(":")
        saved = "state" if saved == "fine" else saved  # atlases of earlier versions
        model.level = PASSES.index(saved) if saved in PASSES else 0
        model.rounds = int(rounds) if rounds.isdigit() else 1
        states = {s.id: s for s in atlas.states()}
        for state in states.values():
            screen = atlas.screen(state.id, with_screenshot=False)
            model.see(state, screen, explore=explore(screen))
        for t in atlas.transitions():
            model.learn(states[t.source], t.action, states[t.target])
        for skey, key in sorted(atlas.dropped()):
            sid, refused, action_key = key.partition(REFUSED)
            if refused and sid.isdigit() and int(sid) in model._cands:
                model._refuse_in_state(int(sid), skey, action_key)
            else:
                model.frontier[skey].discard(key)
                model.tried_anyhow.add((skey, key))
        model.on_drop = atlas.drop
        model.on_pass = lambda name: atlas.set_meta("crawl_pass", name)
        return model

    def drop(self, skey: str, keys: list[str]) -> None:
        """Give up these actions of a screen for good (unreachable from here, or refused)."""
        if not keys:
            return
        for k in keys:
            self.frontier[skey].discard(k)
            self.tried_anyhow.add((skey, k))
        if self.on_drop is not None:
            self.on_drop(skey, keys)

    def see(self, state: State, screen: Screen, *, explore: bool = True) -> None:
        """Note a state: its candidates join the frontier of its screen (unless it is not to be explored:
        another app, the launcher, a crash dialog)."""
        if state.id in self._cands:
            return
        cands = candidates(screen, deny=self.deny) if explore else []
        self._cands[state.id] = cands
        self._form[state.id] = form_of(screen)
        self.key_of[state.id] = state.structure_key
        self.states_of[state.structure_key].append(state.id)
        self._details[state.id] = {c.key: c.detail for c in cands}
        skey = state.structure_key
        for c in cands:
            self.detail_states[(skey, c.detail)].add(state.id)
            if c.row and c.widget is not None:
                self._row_keys[(skey, f"{c.action.kind.value}|{c.widget.signature}")].add(c.key)
            if self._open_on_screen(skey, c):
                self.frontier[skey].add(c.key)
            if self._open_in_state(state.id, skey, c):
                self.state_frontier[state.id].add(c.key)
            if c.widget is not None:
                self.signature_screens[f"{c.widget.signature}|{c.widget.label}"].add(skey)

    def _open_on_screen(self, skey: str, c: Candidate) -> bool:
        return self._due(c) and (skey, c.key) not in self.tried_anyhow and not self._alike(skey, c)

    def _due(self, c: Candidate) -> bool:
        """Whether the screen-level passes try it: a view not marked clickable only in the second, and only if
        it says something (a tab's label; not a divider or a background, which wait for the content pass)."""
        return not c.loose or (self.level >= VIEWS and c.widget is not None and bool(c.widget.label))

    def _open_in_state(self, sid: int, skey: str, c: Candidate) -> bool:
        if self.level == CONTENT:
            return (skey, c.detail) not in self.tried_detail
        return self.level == STATE and self.tried_in_state[(sid, c.key)] < self.rounds

    def candidates_of(self, state: State) -> list[Candidate]:
        return self._cands.get(state.id, [])

    def form(self, state: State) -> frozenset[str]:
        return self._form.get(state.id, frozenset())

    def learn(self, source: State, action: Action, target: State) -> bool:
        """Record that `action` on `source` led to `target`; True if that effect is new (screen level)."""
        s, t, key = source.structure_key, target.structure_key, spot(action)
        new = t not in self.effects.get((s, key), ())
        self.tried.add((s, self.form(source), key))
        self.tried_anyhow.add((s, key))
        self.tried_in_state[(source.id, key)] += 1
        self._tried_detail(source.id, s, key)
        if action.target is not None:
            kind = f"{action.kind.value}|{action.target.signature}"
            self.tried_kinds[s].add(kind)
            if key in self._row_keys.get((s, kind), ()):
                self.row_effects[(s, kind)][t] += 1
                self.rows_tried[(s, kind)].add(key)
                if self._rows_alike(s, kind):
                    self.frontier[s].difference_update(self._row_keys[(s, kind)])
        self.frontier[s].discard(key)
        if self.level == STATE and self.tried_in_state[(source.id, key)] >= self.rounds:
            self.state_frontier[source.id].discard(key)
        self.effects[(s, key)][t] += 1
        self.state_effects[(source.id, key)][target.id] += 1
        if source.id != target.id:
            self.state_nav[source.id][(key, target.id)] = action
        if new:
            self.transitions += 1
        if s != t:
            self.nav[s][(key, t)] = action
        elif action.target is not None and action.target.bounds is not None and source.id == target.id:
            self.noop_spots[s].add(str(action.target.bounds))
        return new

    def refuse(self, state: State, action: Action) -> None:
        """An action the device would not perform on this state: tried, with no effect to learn."""
        self.tried.add((state.structure_key, self.form(state), spot(action)))
        self._refuse_in_state(state.id, state.structure_key, spot(action))
        self.drop(state.structure_key, [spot(action), f"{state.id}{REFUSED}{spot(action)}"])

    def _refuse_in_state(self, sid: int, skey: str, key: str) -> None:
        self._tried_detail(sid, skey, key)
        self.tried_in_state[(sid, key)] += self.RETRIES
        self.state_frontier[sid].discard(key)

    def _tried_detail(self, sid: int, skey: str, key: str) -> None:
        """`key` was tried on state `sid`: so was what it showed there, in every state that shows the same."""
        shown = self._details.get(sid, {}).get(key, key)
        if (skey, shown) in self.tried_detail:
            return
        self.tried_detail.add((skey, shown))
        if self.level == CONTENT:
            for other in self.detail_states.get((skey, shown), ()):
                self.state_frontier[other].discard(key)

    def is_tried(self, state: State, cand: Candidate) -> bool:
        if self.level == STATE:
            # An action that led to different screens before gets a few more tries in each state.
            allowed = self.RETRIES if self.flaky(state.structure_key, cand.key) else 1
            return self.tried_in_state[(state.id, cand.key)] >= allowed + self.rounds - 1
        if self.level == CONTENT:
            return (state.structure_key, cand.detail) in self.tried_detail
        if not self._due(cand) or self._alike(state.structure_key, cand):
            return True  # views not marked clickable, and rows like rows that did the same, wait for later passes
        return self._tried_with_form(state.structure_key, self.form(state), cand)

    def _tried_with_form(self, skey: str, form: frozenset[str], c: Candidate) -> bool:
        """A submit button is tried once per state of its form (a gate that wants a valid email, the type of
        note ticked); anything else once per screen."""
        if c.widget is not None and c.action.kind is ActionKind.TAP and button_role(c.widget) == "submit":
            return (skey, form, c.key) in self.tried
        return (skey, c.key) in self.tried_anyhow

    def tried_on_screen(self, state: State, cand: Candidate) -> bool:
        """Tried on this screen with the form as it is now (whatever the pass)."""
        return (state.structure_key, self.form(state), cand.key) in self.tried

    def deepen(self) -> bool:
        """Switch to the next pass, or start another round of the last one if the previous round found
        something new (data the app holds now may change what an action does); False when done."""
        grown = (len(self._cands), self.transitions) != self._round_start
        if self.level == len(PASSES) - 1:
            if not grown:
                return False
            self.rounds += 1
        else:
            self.level += 1
        self._round_start = (len(self._cands), self.transitions)
        if self.on_pass is not None:
            self.on_pass(PASSES[self.level] if self.rounds == 1 else f"{PASSES[self.level]}:{self.rounds}")
        self.state_frontier.clear()
        for sid, cands in self._cands.items():
            for c in cands:
                if self._open_in_state(sid, self.key_of[sid], c):
                    self.state_frontier[sid].add(c.key)
                if self.level == VIEWS and self._open_on_screen(self.key_of[sid], c):
                    self.frontier[self.key_of[sid]].add(c.key)
        return True

    def _alike(self, skey: str, c: Candidate) -> bool:
        return c.row and c.widget is not None and self._rows_alike(skey, f"{c.action.kind.value}|{c.widget.signature}")

    def _rows_alike(self, skey: str, kind: str) -> bool:
        """Two or more rows of this kind were tried on this screen, all led to the same screen, and many more
        are left (a grid of days, a long list; the few choices of a dialog are all tried)."""
        seen = self.row_effects.get((skey, kind))
        if seen is None or len(seen) != 1:
            return False
        tried = self.rows_tried[(skey, kind)]
        return len(tried) >= 2 and len(self._row_keys[(skey, kind)] - tried) >= 3 * len(tried)

    def flaky(self, skey: str, action_key: str) -> bool:
        """An action that led to different screens on different tries."""
        return len(self.effects.get((skey, action_key), ())) > 1

    def path_to_frontier(self, start: str, *, skip: set[str] | None = None
                         ) -> tuple[str, list[tuple[str, Action]]] | None:
        """The most reliable short path from `start` to the nearest other screen with untried actions.

        Returns (that screen, steps); each step is (screen the action is taken on, action). A step costs 1 plus the surprise
        -log p of landing where it should (p from what that action did on that screen so far),
        so an action whose effect depends on history (back, "navigate up") loses its pull as
        soon as it misleads.
        """
        return _nearest(start, self.nav, self.effects, lambda node: bool(self.frontier.get(node)), skip or set())

    def path_to_state(self, start: int, *, skip: set[int] | None = None, targets: set[int] | None = None
                      ) -> tuple[int, list[tuple[int, Action]]] | None:
        """As `path_to_frontier`, over states: the nearest other state with actions untried in it (later passes),
        or the nearest of `targets`.

        A state is a screen with given content (a list holding the note just created, a form
        with a box ticked, another tab of one pager); only a path through states reaches it again.
        """
        wanted = (lambda node: node in targets) if targets is not None else (
            lambda node: bool(self.state_frontier.get(node)))
        return _nearest(start, self.state_nav, self.state_effects, wanted, skip or set())

    def states_with_untried(self, skey: str) -> set[int]:
        """The known states of screen `skey` that offer an action of its frontier, untried with their form."""
        left = self.frontier.get(skey)
        if not left:
            return set()
        return {sid for sid in self.states_of.get(skey, ()) if any(
            c.key in left and self._open_on_screen(skey, c) and not self._tried_with_form(skey, self._form[sid], c)
            for c in self._cands[sid])}

    def open_screens(self) -> int:
        """Screens (states, in later passes) that still have untried actions."""
        return sum(1 for v in (self.state_frontier if self.fine else self.frontier).values() if v)


def _nearest(start: Node, nav: Mapping[Node, dict[tuple[str, Node], Action]],
             effects: Mapping[tuple[Node, str], Counter[Node]], wanted: Callable[[Node], bool],
             skip: set[Node]) -> tuple[Node, list[tuple[Node, Action]]] | None:
    """Dijkstra from `start` to the nearest other node that is `wanted` and not skipped; a step costs 1 - log p."""
    dist: dict[Node, float] = {start: 0.0}
    paths: dict[Node, list[tuple[Node, Action]]] = {start: []}
    heap: list[tuple[float, int, Node]] = [(0.0, 0, start)]
    tie = 0
    while heap:
        d, _, node = heapq.heappop(heap)
        if d > dist.get(node, math.inf):
            continue
        if node != start and node not in skip and wanted(node):
            return node, paths[node]
        for (key, target), action in nav.get(node, {}).items():
            seen = effects[(node, key)]
            nd = d + 1.0 - math.log(seen[target] / sum(seen.values()))
            if nd < dist.get(target, math.inf):
                dist[target] = nd
                paths[target] = [*paths[node], (node, action)]
                tie += 1
                heapq.heappush(heap, (nd, tie, target))
    return None
