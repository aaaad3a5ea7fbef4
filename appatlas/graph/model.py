"""What a crawl knows about the app so far: candidate actions per screen, what was tried, what happened.

The model is a pure function of the atlas (states and observed transitions), so a crawl killed at
any moment resumes with exactly the same frontier: `CrawlModel.from_atlas` replays the record.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from appatlas.devices.base import selector_for
from appatlas.graph.atlas import Atlas, State
from appatlas.graph.fingerprint import ADAPTER_VIEWS
from appatlas.types import Action, ActionKind, Screen, Widget

__all__ = ["DEFAULT_DENY", "Candidate", "CrawlModel", "candidates", "spot"]

DEFAULT_DENY = (r"delete all", r"factory reset", r"log ?out", r"sign ?out", r"uninstall", r"erase (all|everything)",
                r"reset (all|app|everything)", r"wipe")
BACK = Action(ActionKind.BACK)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One thing that can be done on a screen. TYPE candidates get their text when chosen."""

    action: Action
    widget: Widget | None
    row: bool = False  # a row of a list: its siblings probably do the same

    @property
    def key(self) -> str:
        return spot(self.action)


def candidates(screen: Screen, *, deny: tuple[str, ...] = DEFAULT_DENY) -> list[Candidate]:
    """Every action a tester could take on `screen` (its clickable, editable, scrollable widgets, and back)."""
    denied = re.compile("|".join(deny), re.IGNORECASE) if deny else None
    out: list[Candidate] = []
    seen: set[str] = set()
    stack: list[tuple[Widget, bool]] = [(screen.root, False)]
    while stack:
        w, in_list = stack.pop()
        stack.extend((c, in_list or w.class_name.endswith(ADAPTER_VIEWS)) for c in reversed(w.children))
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
                out.append(Candidate(action, w, row=in_list))
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


def form_of(screen: Screen) -> frozenset[str]:
    """The state of the screen's form: which fields hold something and which boxes are ticked.

    A submit button's effect depends on it (a gate, a chosen note type), not on the exact text.
    """
    return frozenset(f"{w.resource_id}|{w.bounds}|{'checked' if w.checked else 'filled'}" for w in screen.widgets()
                     if (w.editable and w.text and w.text != w.hint) or (w.checkable and w.checked))


class CrawlModel:
    """Candidates, tried actions and observed effects, by screen (structure key)."""

    RETRIES = 3  # tries of a flaky action per state in the second pass

    def __init__(self, *, deny: tuple[str, ...] = DEFAULT_DENY,
                 on_drop: Callable[[str, list[str]], None] | None = None) -> None:
        self.deny = deny
        self.on_drop = on_drop  # persists what the crawl gave up, so a resume gives it up too
        self.on_pass: Callable[[], None] | None = None
        self._cands: dict[int, list[Candidate]] = {}
        self._form: dict[int, frozenset[str]] = {}
        self.key_of: dict[int, str] = {}
        self.tried: set[tuple[str, frozenset[str], str]] = set()  # (screen, filled fields, action key)
        self.tried_anyhow: set[tuple[str, str]] = set()  # (screen, action key), whatever the fields held
        self.tried_kinds: defaultdict[str, set[str]] = defaultdict(set)  # screen -> "kind|signature" tried
        self.effects: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        self.frontier: defaultdict[str, set[str]] = defaultdict(set)  # screen -> untried action keys
        self.nav: defaultdict[str, dict[tuple[str, str], Action]] = defaultdict(dict)  # s -> (action key, t) -> action
        self.signature_screens: defaultdict[str, set[str]] = defaultdict(set)
        self.noop_spots: defaultdict[str, set[str]] = defaultdict(set)  # screen -> bounds where taps did nothing
        self.transitions = 0
        # Second pass: once every screen is exhausted, every *state* (the same screen with other
        # content, which may hide other data) is worth one more try of each of its actions.
        self.fine = False
        self.tried_in_state: Counter[tuple[int, str]] = Counter()

    @classmethod
    def from_atlas(cls, atlas: Atlas, *, explore: Callable[[Screen], bool],
                   deny: tuple[str, ...] = DEFAULT_DENY) -> CrawlModel:
        """Rebuild the model from everything the atlas recorded (for --resume)."""
        model = cls(deny=deny)
        if atlas.get_meta("crawl_pass") == "fine":
            model.fine = True
        states = {s.id: s for s in atlas.states()}
        for state in states.values():
            screen = atlas.screen(state.id, with_screenshot=False)
            model.see(state, screen, explore=explore(screen))
        for t in atlas.transitions():
            model.learn(states[t.source], t.action, states[t.target])
        for skey, key in atlas.dropped():
            model.frontier[skey].discard(key)
            model.tried_anyhow.add((skey, key))
        model.on_drop = atlas.drop
        model.on_pass = lambda: atlas.set_meta("crawl_pass", "fine")
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
        skey = state.structure_key
        for c in cands:
            if (skey, c.key) not in self.tried_anyhow or (self.fine and (state.id, c.key) not in self.tried_in_state):
                self.frontier[skey].add(c.key)
            if c.widget is not None:
                self.signature_screens[f"{c.widget.signature}|{c.widget.label}"].add(skey)

    def candidates_of(self, state: State) -> list[Candidate]:
        return self._cands.get(state.id, [])

    def form(self, state: State) -> frozenset[str]:
        return self._form.get(state.id, frozenset())

    def learn(self, source: State, action: Action, target: State) -> bool:
        """Record that `action` on `source` led to `target`; True if that effect is new (screen level)."""
        s, t = source.structure_key, target.structure_key
        new = t not in self.effects.get((s, spot(action)), ())
        self.tried.add((s, self.form(source), spot(action)))
        self.tried_anyhow.add((s, spot(action)))
        self.tried_in_state[(source.id, spot(action))] += 1
        if action.target is not None:
            self.tried_kinds[s].add(f"{action.kind.value}|{action.target.signature}")
        self.frontier[s].discard(spot(action))
        self.effects[(s, spot(action))][t] += 1
        if new:
            self.transitions += 1
        if s != t:
            self.nav[s][(spot(action), t)] = action
        elif action.target is not None and action.target.bounds is not None and source.id == target.id:
            self.noop_spots[s].add(str(action.target.bounds))
        return new

    def refuse(self, state: State, action: Action) -> None:
        """An action the device would not perform on this state: tried, with no effect to learn."""
        self.tried.add((state.structure_key, self.form(state), spot(action)))
        self.tried_in_state[(state.id, spot(action))] += self.RETRIES
        self.drop(state.structure_key, [spot(action)])

    def is_tried(self, state: State, cand: Candidate) -> bool:
        if self.fine:
            # An action that led to different screens before gets a few more tries in each state.
            allowed = self.RETRIES if self.flaky(state.structure_key, cand.key) else 1
            return self.tried_in_state[(state.id, cand.key)] >= allowed
        return (state.structure_key, self.form(state), cand.key) in self.tried

    def deepen(self) -> bool:
        """Switch to the second pass; False if it was already on (nothing left at all)."""
        if self.fine:
            return False
        self.fine = True
        if self.on_pass is not None:
            self.on_pass()
        for sid, cands in self._cands.items():
            for c in cands:
                if (sid, c.key) not in self.tried_in_state:
                    self.frontier[self.key_of[sid]].add(c.key)
        return True

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
        dist = {start: 0.0}
        paths: dict[str, list[tuple[str, Action]]] = {start: []}
        heap: list[tuple[float, int, str]] = [(0.0, 0, start)]
        tie = 0
        while heap:
            d, _, node = heapq.heappop(heap)
            if d > dist.get(node, math.inf):
                continue
            if node != start and self.frontier.get(node) and node not in (skip or ()):
                return node, paths[node]
            for (key, target), action in self.nav.get(node, {}).items():
                effects = self.effects[(node, key)]
                p = effects[target] / sum(effects.values())
                nd = d + 1.0 - math.log(p)
                if nd < dist.get(target, math.inf):
                    dist[target] = nd
                    paths[target] = [*paths[node], (node, action)]
                    tie += 1
                    heapq.heappush(heap, (nd, tie, target))
        return None

    def open_screens(self) -> int:
        return sum(1 for v in self.frontier.values() if v)
