"""A rehearsal: the agent's own decisions, played on the atlas instead of a phone, as a plan.

Retrieval's key transitions are picked by matching words; the agent decides with everything it knows
(look-ahead, slots, toggles, forms, confirmations) and is measured far more accurate. Rehearsing
puts the two on one path: from the start screen's first recorded state, the policy decides; the
decision is matched to a transition the atlas saw from that state (else from another state of the
same screen) and the rehearsal moves to where that transition led, until the policy says the
intent is realised. The route is made of atlas edges, so the planner turns it into a test like any
other route; each step carries the policy's reason, and each typed value what the policy typed.

A rehearsal that stops before "done" (the atlas never saw the chosen action taken, or the steps loop)
is no plan: retrieval then keeps its own routes. Nothing here touches a device.

A switch is as the crawl last left it in the atlas, not as a run will find it: where the agent would stop
because a switch the intent names already reads as wanted (and the rehearsal never touched it), it goes on
from a state of the same screen where the switch is the other way, so the plan flips it (and keeps it with
the screen's Save, as the agent does: `Progress.last_commit`).
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx

from appatlas.agent.knowledge import Knowledge
from appatlas.agent.options import options
from appatlas.agent.policy import Decision, Policy
from appatlas.agent.progress import Taken, taken
from appatlas.agent.valuing import same_option
from appatlas.devices.replay import with_field_text
from appatlas.graph.atlas import Atlas, StoredTransition
from appatlas.rag.describe import screen_facts
from appatlas.rag.intent import Intent, label_words, parse_intent, terms_in
from appatlas.rag.retrieve import Rehearsal
from appatlas.rag.views import AtlasViews, closes_dialog, dialog_opener, keeps_change
from appatlas.types import Action, ActionKind, Screen

__all__ = ["MAX_STEPS", "rehearse", "rehearser"]

MAX_STEPS = 15  # longer than any recorded DroidTask task (12 steps)


def _edge(graph: nx.MultiDiGraph, t: StoredTransition) -> tuple[str, str, str] | None:
    """The plan-graph edge standing for transition `t` (same screens, same action)."""
    if not graph.has_node(t.source_key):
        return None
    for u, v, k, data in graph.out_edges(t.source_key, keys=True, data=True):
        if v == t.target_key and data["action"].key == t.action.key:
            return (u, v, k)
    return None


def _is(t: StoredTransition, decision: Decision) -> bool:
    """Whether the atlas's transition `t` is the decided step: the same option, or typing into the same field
    (the crawler typed its own value there; the field is what matters)."""
    o = decision.option
    if o is not None and same_option(t.action, o):
        return True
    return (decision.action is not None and decision.action.kind is ActionKind.TYPE and t.action.kind is ActionKind.TYPE
            and o is not None and o.widget is not None and bool(o.widget.resource_id)
            and t.action.target is not None and t.action.target.resource_id == o.widget.resource_id)


def _kind(knowledge: Knowledge, state: int) -> str:
    return screen_facts(knowledge.state_screens[state]).kind


def _closes_unseen(knowledge: Knowledge, key: str, screen: Screen, t: StoredTransition) -> bool:
    """A tap that closes the dialog `key` (`closes_dialog`) which the atlas never saw lead anywhere."""
    if _kind(knowledge, t.source) != "dialog" or not closes_dialog(screen, t.action):
        return False
    return not any(o.action.key == t.action.key and o.target_key != key for o in knowledge.out(key))


def _opener(knowledge: Knowledge, trail: list[tuple[str, int, Action]], dialog: str) -> tuple[str, int] | None:
    """The (screen, state) under `dialog`, the screen the rehearsal is on (`dialog_opener`)."""
    def closed(i: int) -> bool:
        kind = _kind(knowledge, trail[i][1])
        return kind == "menu" or (kind == "dialog" and closes_dialog(knowledge.state_screens[trail[i][1]], trail[i][2]))

    screens = [k for k, _, _ in trail] + [dialog]
    key = dialog_opener(screens, dialog, closed)
    return next(((k, s) for k, s, _ in reversed(trail) if k == key), None) if key is not None else None


def _unset(knowledge: Knowledge, intent: Intent, key: str, state: int, history: list[Taken],
           done: set[tuple[str, str]]) -> int | None:
    """Another state of the screen `key` where a switch the intent names is not yet as it wants it, when this state
    shows it so without the rehearsal having touched it.

    The atlas keeps a switch as the crawl last left it (it flipped it while exploring); a run finds it as the app
    keeps it. A switch the intent says to turn on that the atlas happens to show on is still a step to plan."""
    if not intent.wants:
        return None
    touched = {t.label for t in history if t.changed}  # flipped by the rehearsal itself
    for o in options(knowledge.state_screens[state], scroll=False):
        if not o.checkable or o.radio or o.checked != (intent.wants == "on") or o.label in touched \
                or (key, o.label) in done or 2 * len(terms_in(intent.terms, label_words(o.label))) < len(intent.terms):
            continue
        for sid in knowledge.screens[key].states:
            flipped = next((x for x in options(knowledge.state_screens[sid], scroll=False)
                            if x.checkable and x.label == o.label), None) if sid in knowledge.state_screens else None
            if flipped is not None and flipped.checked != o.checked:
                done.add((key, o.label))
                return sid
    return None


def rehearse(knowledge: Knowledge, views: AtlasViews, intent: str, start: str, *,
             policy: Policy | None = None, limit: int = MAX_STEPS) -> Rehearsal | None:
    """The agent's decisions for `intent` from the screen `start`, played on the atlas `views` reads (its plan
    graph, and `AtlasViews.changed_twin`) (module docstring)."""
    info = knowledge.screens.get(start)
    if info is None or not info.states:
        return None
    policy = policy or Policy(knowledge)
    key, state = start, info.states[0]
    screen = knowledge.state_screens[state]
    history: list[Taken] = []
    trail: list[tuple[str, int, Action]] = []  # (screen, state, the action taken there) of each step
    out = Rehearsal(start=start)
    seen: set[tuple[int, str]] = set()  # (state, edge): the same step from the same state again is a loop
    read = parse_intent(intent)
    unset: set[tuple[str, str]] = set()  # (screen, toggle) already rehearsed from a state where it was not set
    for _ in range(limit):
        decision = policy.decide(read, screen, history, known_as=key)
        # Realised, or stuck: nothing the atlas knows advances the rest (a run backs out of a wrong turn there and
        # tries another option: a rehearsal follows one line of steps, so it ends as stuck).
        if decision.done or decision.stuck:
            other = _unset(knowledge, read, key, state, history, unset)
            if other is not None:  # the crawl left it set; a run finds it as the app keeps it: rehearse the flip
                state, screen = other, knowledge.state_screens[other]
                continue
            out.done, out.reason = not decision.stuck, decision.reason
            return out
        if decision.option is None or decision.action is None:
            out.reason = f"the agent's step is no element of the atlas: {decision.reason}"
            return out
        seen_here = [t for t in knowledge.out(key) if _is(t, decision)]
        if not seen_here:
            out.reason = f"the atlas never saw '{decision.reason}' taken"
            return out
        exact = [t for t in seen_here if t.source == state]
        t = max(exact or seen_here, key=lambda x: (x.count - x.failures, -x.id))
        edge = _edge(views.plan_graph, t)
        if edge is None or t.target not in knowledge.state_screens:
            out.reason = f"the atlas keeps no screen or edge for '{decision.reason}'"
            return out
        if (state, edge[2]) in seen:
            out.reason = "the steps go round in a loop"
            return out
        seen.add((state, edge[2]))
        out.edges.append(edge)
        out.notes[edge] = decision.reason
        if decision.text:
            out.typed[edge] = decision.text
        history.append(taken(decision.action, screen))
        trail.append((key, state, t.action))
        key, state = t.target_key, t.target
        if key == trail[-1][0] and _closes_unseen(knowledge, key, screen, t):
            # the atlas saw this OK (or this choice of a list) leave the dialog open only because it was never
            # shown what it does; a dialog closes onto the screen that opened it (as `AtlasViews.expected_screens`)
            key, state = _opener(knowledge, trail, key) or (key, state)
            if key != trail[-1][0] and keeps_change(screen, t.action):
                # it changed something: the opener shows the change (its Save), as `AtlasViews.expected_screens`
                twin = views.changed_twin(key)
                key, state = (twin, knowledge.screens[twin].states[0]) if twin is not None else (key, state)
        elif key == trail[-1][0] and views.submits_unseen(edge) \
                and any(k == key and a.kind is ActionKind.TYPE for k, _, a in trail[:-1]):
            # the atlas saw this Save refuse the form as the crawl filled it; filled by the rehearsal, it closes
            # onto the screen that opened the form (as `AtlasViews.expected_screens`)
            opener = views.form_opener([k for k, _, _ in trail], key)
            key, state = next(((k, st) for k, st, _ in reversed(trail) if k == opener), (key, state))
        typed_into = decision.option.widget if decision.action.kind is ActionKind.TYPE else None
        screen = knowledge.state_screens[state]
        if typed_into is not None:
            # the field holds what the agent typed, not the crawler's own value the atlas kept: else the agent
            # would type its next value into the same field ("called 'test' and type '123456'")
            screen = with_field_text(screen, typed_into, decision.text)
    out.reason = f"not done after {limit} steps"
    return out


def rehearser(atlas: Atlas, views: AtlasViews) -> Callable[[str, str], Rehearsal | None]:
    """`rehearse` bound to one atlas (what `Retriever(..., rehearse=...)` takes)."""
    knowledge = Knowledge.from_atlas(atlas)
    policy = Policy(knowledge)
    return lambda intent, start: rehearse(knowledge, views, intent, start, policy=policy)
