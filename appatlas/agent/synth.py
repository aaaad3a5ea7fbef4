"""Decisions generated from a crawled atlas, to train and tune the decider on apps it will not be tested on.

No person writes them and no recorded task is read: every transition the crawl made that goes
somewhere (not back, not a scroll) is the last step of a synthetic task; the way there is the
shortest path over the atlas graph from the crawl's first screen. The intent is written from the
captions of that last action and of where it leads (`appatlas.rag.captioner.leads_to`), in two
ways a tester writes: by the control ("turn on 'Quiet hours'", "tap 'Sort by'") and by the goal
("open the 'About' screen"). Each step of the path is one decision: the intent, the steps so far,
the options of the screen (what each says and leads to, as `appatlas.agent.meaning` embeds them)
and the index of the option the path takes.

These are the training data of `appatlas train agent` (`appatlas.agent.train`: the MiniLM ranker of
`appatlas.agent.ranker`) and the decisions on which fitted weights are chosen with an
evaluated app left out. They reach no evaluated task: a benchmark builds them from the training
apps' explorations only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import networkx as nx

from appatlas.agent.knowledge import Knowledge
from appatlas.agent.meaning import Meaning
from appatlas.agent.options import BACK_OPTION, describe_option
from appatlas.agent.valuing import same_option
from appatlas.types import Action, ActionKind

__all__ = ["SyntheticDecision", "synthetic_decisions"]


@dataclass(frozen=True)
class SyntheticDecision:
    intent: str
    history: tuple[str, ...]  # the steps taken so far, described
    options: tuple[str, ...]  # what each option says and leads to
    answer: int  # the option the path takes
    screen: str  # structure key of the screen decided on
    target: str = ""  # structure key of the screen the answer leads to
    last: bool = False  # the path's final step (the action the intent was written from)
    state: int = -1  # the state decided on (the screen's first known state)
    path: tuple[tuple[int, Action], ...] = ()  # (state, action) of the steps so far, to replay them as history


def _intents(meaning: Meaning, key: str, label: str, target: str, toggle: bool) -> list[str]:
    from appatlas.rag.describe import screen_facts

    info = meaning.knowledge.screens.get(target)
    screen = meaning.knowledge.state_screens.get(info.states[0]) if info else None
    place = screen_facts(screen).place if screen is not None else ""
    by_control = f"turn on '{label}'" if toggle else f"tap '{label}'"
    return [by_control] + ([f"open the {place}"] if place and target != key else [])


def synthetic_decisions(knowledge: Knowledge, *, limit: int = 200, seed: int = 0) -> list[SyntheticDecision]:
    """At most `limit` decisions from `knowledge`'s transitions (see the module docstring), in a seeded order."""
    if not knowledge.screens:
        return []
    meaning = knowledge.meaning  # the sentences the store and every policy over this knowledge read
    graph = knowledge.graph()
    start = knowledge.state_key[min(knowledge.state_key)]  # the crawl's first screen
    paths = nx.single_source_shortest_path(graph, start)
    ends = [t for t in knowledge.transitions if t.action.kind in (ActionKind.TAP, ActionKind.LONG_TAP)
            and t.target_key != t.source_key and t.source_key in paths]
    random.Random(seed).shuffle(ends)
    out: list[SyntheticDecision] = []
    for end in ends:
        if len(out) >= limit:
            break
        keys = paths[end.source_key]
        hops = [(a, b, next(iter(graph.get_edge_data(a, b).values()))["action"]) for a, b in zip(keys, keys[1:],
                                                                                                     strict=False)]
        hops.append((end.source_key, end.target_key, end.action))
        last = _step(knowledge, end.source_key, end.action)
        if last is None:
            continue
        opts, answer = last
        if opts[answer].negative:
            continue  # 'Cancel' is a way out, not a task
        label = opts[answer].label
        for intent in _intents(meaning, end.source_key, label, end.target_key, opts[answer].checkable):
            history: list[str] = []
            path: list[tuple[int, Action]] = []
            for n, (key, target, action) in enumerate(hops):
                step = _step(knowledge, key, action)
                if step is None:
                    break
                options, index = step
                state = knowledge.screens[key].states[0]
                out.append(SyntheticDecision(intent, tuple(history), tuple(meaning.describe(key, o) for o in options),
                                             index, key, target, last=n == len(hops) - 1, state=state,
                                             path=tuple(path)))
                history.append(describe_option(options[index]))
                path.append((state, action))
    return out[:limit]


def _step(knowledge: Knowledge, key: str, action):  # noqa: ANN001, ANN202 - an Action; (options, index) | None
    info = knowledge.screens.get(key)
    if info is None:
        return None
    options = [*knowledge.options_of(info.states[0]), BACK_OPTION]
    index = next((i for i, o in enumerate(options) if same_option(action, o)), None)
    return None if index is None else (options, index)
