"""Exploration strategies behind one interface: given where we are and what we know, what next?

random  Monkey-like: uniform over the screen's candidate actions (back included)
dfs     DroidBot's greedy depth-first: an untried action on this screen, else a walk to the nearest screen
        with one, else a restart
atlas   ours, model-based: untried actions ranked by expected novelty; when this screen is
        exhausted, walk the most reliable known path to the nearest screen (in later passes, state)
        with untried actions; the passes are described in `appatlas.graph.model.CrawlModel`
"""

from __future__ import annotations

import random as _random
from collections import Counter, deque
from typing import Protocol

from appatlas.graph.atlas import State
from appatlas.graph.model import BACK, Candidate, CrawlModel, button_role
from appatlas.types import Action, ActionKind

__all__ = ["STRATEGIES", "AtlasStrategy", "DfsStrategy", "RandomStrategy", "Strategy", "button_role",
           "make_strategy"]


class Strategy(Protocol):
    name: str

    def choose(self, state: State, model: CrawlModel) -> Candidate | Action | None:
        """The next step: a candidate of `state`, a known action to walk, or None (restart the app;
        None again right after a restart means there is nothing left to explore)."""
        ...


class RandomStrategy:
    name = "random"

    def __init__(self, *, seed: int = 0) -> None:
        self.rng = _random.Random(seed)

    def choose(self, state: State, model: CrawlModel) -> Candidate | Action | None:
        cands = model.candidates_of(state)
        return self.rng.choice(cands) if cands else BACK


class DfsStrategy:
    """DroidBot's greedy search (`UtgGreedySearchPolicy`, dfs): an untried action on this screen, in
    screen order; when there is none, walk the known graph to the nearest screen that still has one;
    when none is reachable, restart the app (None). Screens a walk reached that had nothing untried
    after all (by this rule) are not walked to again."""

    name = "dfs"

    def __init__(self, *, seed: int = 0) -> None:
        del seed
        self._walk: deque[tuple[str, Action]] = deque()
        self._spent: set[str] = set()

    def choose(self, state: State, model: CrawlModel) -> Candidate | Action | None:
        skey = state.structure_key
        if self._walk and self._walk[0][0] == skey:
            return self._walk.popleft()[1]
        self._walk.clear()
        for cand in model.candidates_of(state):  # every candidate, in screen order, as DroidBot does
            if cand.action.kind is not ActionKind.BACK and not model.tried_on_screen(state, cand):
                return cand
        self._spent.add(skey)
        found = model.path_to_frontier(skey, skip=self._spent)
        if found is None:
            return None  # nowhere left to go from here: restart the app, as DroidBot does
        steps = found[1]
        self._walk.extend(steps[1:])
        return steps[0][1]


class AtlasStrategy:
    name = "atlas"
    MAX_ATTEMPTS = 3

    def __init__(self, *, seed: int = 0) -> None:
        del seed  # deterministic: ties are broken by position on the screen
        # (screen to act on, state to act on or None for any state of that screen, action)
        self._walk: deque[tuple[str, int | None, Action]] = deque()
        self._goal: str | int = ""  # a screen (first pass) or a state (second pass)
        self._lost = 0  # walks in a row that ended somewhere unexpected
        self._attempts: Counter[str | int] = Counter()  # walks started towards each goal

    def choose(self, state: State, model: CrawlModel) -> Candidate | Action | None:
        skey = state.structure_key
        if self._goal in (skey, state.id):
            self._attempts[self._goal] = 0
        if self._walk and self._walk[0][0] == skey and self._walk[0][1] in (None, state.id):
            return self._walk.popleft()[2]
        if self._walk:  # the app went somewhere else than the walk expected
            self._walk.clear()
            self._lost += 1
            if self._lost >= 2:
                # Back and "navigate up" depend on a history the graph does not see; after two
                # misleading walks, start over from the launch screen, as a tester would.
                self._lost = 0
                return None
        else:
            self._lost = 0
        untried = [(i, c) for i, c in enumerate(model.candidates_of(state)) if not model.is_tried(state, c)]
        if untried:
            return max(untried, key=lambda ic: (self._novelty(ic[1], state, model), -ic[0]))[1]
        # Goals that several walks never reached are given up: their state must depend on
        # something the graph does not show (data, history).
        hopeless = {k for k, n in self._attempts.items() if n >= self.MAX_ATTEMPTS}
        if model.fine:
            # Later passes: every state (the same screen with other content: the note just created,
            # a ticked box) gets its untried actions; walks aim at states.
            model.state_frontier[state.id].clear()
            found_state = model.path_to_state(state.id, skip={k for k in hopeless if isinstance(k, int)})
            if found_state is None:
                return None
            goal: str | int = found_state[0]
            steps = [(model.key_of[sid], sid, action) for sid, action in found_state[1]]
        else:
            # What is left untried on this screen is in another state of it (another tab of one pager, a row
            # of other content): walk there. What no known state offers (a row that is gone now, rows that
            # wait for a later pass) must not keep drawing the crawl back.
            holders = model.states_with_untried(skey) - {state.id} - {k for k in hopeless if isinstance(k, int)}
            found_state = model.path_to_state(state.id, targets=holders) if holders else None
            if found_state is not None:
                goal = found_state[0]
                steps = [(model.key_of[sid], sid, action) for sid, action in found_state[1]]
            else:
                model.drop(skey, sorted(model.frontier[skey]))
                found = model.path_to_frontier(skey, skip={k for k in hopeless if isinstance(k, str)})
                if found is None:
                    return None
                goal = found[0]
                steps = [(key, None, action) for key, action in found[1]]
        self._goal = goal
        self._attempts[goal] += 1
        self._walk.extend(steps[1:])
        return steps[0][2]

    @staticmethod
    def _novelty(c: Candidate, state: State, model: CrawlModel) -> float:
        """Higher first: fill forms, submit them, widgets unique to this screen; rows like tried rows, no-op
        spots, dismissing buttons, views not marked clickable, back last."""
        kind = c.action.kind
        if kind is ActionKind.BACK:
            return -5.0
        skey = state.structure_key
        score = 0.0
        if kind is ActionKind.TYPE:
            # A field typed on this screen before is no longer news: what the form does with it is.
            score += 0.5 if (skey, c.key) in model.tried_anyhow else 3.0
        if c.widget is not None:
            screens = model.signature_screens.get(f"{c.widget.signature}|{c.widget.label}", set())
            if len(screens) <= 1:
                score += 2.0  # a widget seen on no other screen leads somewhere only it leads
            if c.row and f"{kind.value}|{c.widget.signature}" in model.tried_kinds.get(skey, ()):
                score -= 2.5  # another row of this list was tried: this one likely does the same
            if str(c.widget.bounds) in model.noop_spots.get(skey, ()):
                score -= 3.0
            role = button_role(c.widget) if kind is ActionKind.TAP else ""
            if role == "submit" and model.form(state):
                score += 2.5  # a filled form (a ticked option) is submitted before anything undoes it
            elif role == "dismiss":
                score -= 2.0  # cancel leads back where we came from: try it after what may lead on
            if c.loose:
                score -= 2.5
        if kind is ActionKind.LONG_TAP:
            score -= 1.0
        if kind is ActionKind.SCROLL:
            score -= 0.5
        return score


STRATEGIES = {"random": RandomStrategy, "dfs": DfsStrategy, "atlas": AtlasStrategy}


def make_strategy(name: str, *, seed: int = 0) -> Strategy:
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name](seed=seed)
