"""Exploration strategies behind one interface: given where we are and what we know, what next?

random  Monkey-like: uniform over the screen's candidate actions (back included)
dfs     DroidBot's greedy depth-first: an untried action on this screen, else back
atlas   ours, model-based: untried actions ranked by expected novelty; when this screen is
        exhausted, walk the shortest known path to the nearest screen with untried actions
"""

from __future__ import annotations

import random as _random
from collections import Counter, deque
from typing import Protocol

from appatlas.graph.atlas import State
from appatlas.graph.model import BACK, Candidate, CrawlModel
from appatlas.types import Action, ActionKind

__all__ = ["STRATEGIES", "AtlasStrategy", "DfsStrategy", "RandomStrategy", "Strategy", "make_strategy"]


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
    name = "dfs"

    def __init__(self, *, seed: int = 0) -> None:
        del seed

    def choose(self, state: State, model: CrawlModel) -> Candidate | Action | None:
        for cand in model.candidates_of(state):
            if cand.action.kind is not ActionKind.BACK and not model.is_tried(state, cand):
                return cand
        return BACK


class AtlasStrategy:
    name = "atlas"
    MAX_ATTEMPTS = 3

    def __init__(self, *, seed: int = 0) -> None:
        del seed  # deterministic: ties are broken by position on the screen
        self._walk: deque[tuple[str, Action]] = deque()  # (screen to act on, action)
        self._goal = ""
        self._lost = 0  # walks in a row that ended somewhere unexpected
        self._attempts: Counter[str] = Counter()  # walks started towards each screen

    def choose(self, state: State, model: CrawlModel) -> Candidate | Action | None:
        skey = state.structure_key
        if skey == self._goal:
            self._attempts[skey] = 0
        if self._walk and self._walk[0][0] == skey:
            return self._walk.popleft()[1]
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
            return max(untried, key=lambda ic: (self._novelty(ic[1], skey, model), -ic[0]))[1]
        # What is left untried on this screen was seen in other content (a row that is gone now):
        # it cannot be reached from here, so it must not keep drawing the crawl back.
        here = {c.key for c in model.candidates_of(state)}
        if model.fine:
            # In the second pass the frontier belongs to other states of this screen, which no walk can
            # aim at; coming here found none of them, so stop coming.
            model.frontier[skey].clear()
        else:
            model.drop(skey, sorted(k for k in model.frontier[skey] if k not in here))
        # Screens that several walks never reached are given up: their state must depend on
        # something the graph does not show (data, history).
        hopeless = {k for k, n in self._attempts.items() if n >= self.MAX_ATTEMPTS}
        found = model.path_to_frontier(skey, skip=hopeless)
        if found is None:
            return None
        goal, path = found
        self._goal = goal
        self._attempts[goal] += 1
        self._walk.extend(path[1:])
        return path[0][1]

    @staticmethod
    def _novelty(c: Candidate, skey: str, model: CrawlModel) -> float:
        """Higher first: fill forms, then widgets unique to this screen; rows like tried rows, no-op spots, back last."""
        kind = c.action.kind
        if kind is ActionKind.BACK:
            return -5.0
        score = 0.0
        if kind is ActionKind.TYPE:
            score += 3.0
        if c.widget is not None:
            screens = model.signature_screens.get(f"{c.widget.signature}|{c.widget.label}", set())
            if len(screens) <= 1:
                score += 2.0  # a widget seen on no other screen leads somewhere only it leads
            if c.row and f"{kind.value}|{c.widget.signature}" in model.tried_kinds.get(skey, ()):
                score -= 2.5  # another row of this list was tried: this one likely does the same
            if str(c.widget.bounds) in model.noop_spots.get(skey, ()):
                score -= 3.0
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
