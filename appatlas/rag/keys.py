"""Choosing an intent's key transitions: the waypoints whose route best explains the intent.

A route's *value* is what it explains minus what it costs:

    value = coverage  (intent words named by the labels of the actions it takes)
          + context   (intent words in the titles of screens it passes, discounted)
          + end       (how well the screen it ends on matches the intent)
          + slots     (typed values it has a fitting field for)
          + experience (share of a similar recorded task's actions it repeats)
          - lambda * cost (steps, risk, back/relaunch tolls)

Waypoints are added greedily — the candidate edge and the position in the order that raise the
value most — until nothing raises it. Navigation that every route needs (More options ->
Settings) is found by the shortest paths between waypoints and earns its coverage there; a
detour is taken only when the words it explains are worth its steps.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from appatlas.graph.expectations import screen_errors
from appatlas.graph.planner import Edge
from appatlas.rag.slots import FIELD_WORDS, Slot, field_affinity
from appatlas.rag.text import CONFIRM_WORDS, id_words, tokens
from appatlas.rag.views import AtlasViews, TransitionView
from appatlas.rag.walk import Decisions, Walker, latest_choice
from appatlas.types import ActionKind

__all__ = ["Evidence", "KeyPicker", "Pick", "number_fits"]

LAMBDA = 0.06  # value of one unit of route cost (a plain step costs ~1)
MIN_GAIN = 0.02  # a waypoint must raise the value by this much to be worth adding
_SAVE = frozenset(tokens("save done apply"))
_NAV = (ActionKind.BACK, ActionKind.LAUNCH)
_QUOTED = re.compile(r"[\"\u201c\u2018'][^\"\u201d\u2019']*[\"\u201d\u2019']")
_EXP_FLOOR = 0.7  # below this similarity a recorded task says nothing about this intent
_EXP_WEIGHT = 0.3
END_OFFERS = 0.2  # share of an intent word credited when the destination only offers it (a button, a toggle)
FOLLOWED = 0.01  # per pair of consecutive route steps observed one right after the other: a tie-breaker


@dataclass
class Evidence:
    """What one query knows: term weights, relevance of edges and screens, experience, slots."""

    weights: dict[str, float]  # intent term -> weight, summing to 1
    edges: dict[int, float]  # transition id -> hybrid relevance 0..1
    screens: dict[str, float]  # structure key -> hybrid relevance 0..1
    experience: list[tuple[float, list[str]]] = field(default_factory=list)  # (similarity, recorded screens)
    slots: list[Slot] = field(default_factory=list)  # typed slots
    order: dict[str, int] = field(default_factory=dict)  # term -> position of its first mention
    near: dict[str, frozenset[str]] = field(default_factory=dict)  # number term -> the words beside it
    followed: set[tuple[Edge, Edge]] = field(default_factory=set)  # steps seen one after the other
    latest: set[Edge] = field(default_factory=set)  # of actions with several outcomes, the one seen last
    # a choice (radio button, checkbox) -> (source, action key) -> the outcome that action had whenever
    # taken right after it (AtlasViews.consequences)
    after: Decisions = field(default_factory=dict)

    @classmethod
    def neighbours(cls, terms: Sequence[str]) -> dict[str, frozenset[str]]:
        """For each number among `terms` (the query's tokens in order), the words just before and after it:
        "remind me 1 hour before" -> 1: {remind, hour}. A number means something only with its unit."""
        out: dict[str, set[str]] = {}
        for i, t in enumerate(terms):
            if _is_number(t):
                out.setdefault(t, set()).update(w for w in terms[max(0, i - 1):i + 2] if not _is_number(w))
        return {t: frozenset(w) for t, w in out.items()}

    @property
    def step_cost(self) -> float:
        """Value of one unit of route cost: long intents spread their value thin, so steps cost less."""
        n = sum(1 for w in self.weights.values() if w >= 0.05)
        return LAMBDA * min(1.0, 3.0 / max(1, n))


@dataclass
class Pick:
    edge: Edge
    transition: int
    reason: str
    slot: Slot | None = None


class KeyPicker:
    """Greedy waypoint selection over one atlas graph (reusable across queries)."""

    def __init__(self, views: AtlasViews) -> None:
        self.views = views
        self.graph = views.plan_graph
        self.walker = Walker(self.graph)
        self.tid = {(u, v, k): d["transition"] for u, v, k, d in self.graph.edges(keys=True, data=True)}
        self.edge_of = {t: e for e, t in self.tid.items()}
        self.words = {t.id: frozenset(tokens(action_words(t, views))) for t in views.transitions.values()}
        self.labels = {t.id: frozenset(tokens(t.facts.label)) for t in views.transitions.values()}
        # what the widget is, by its resource id ("folder_title", "album_title"): two "Recordings" differ here
        self.kinds = {t.id: frozenset(tokens(" ".join(id_words(t.action.target.resource_id))))
                      for t in views.transitions.values() if t.action.target is not None}
        self.titles = {k: frozenset(tokens(v.facts.title)) for k, v in views.screens.items()}
        # what a destination offers: its toggles, choices and buttons (not its data: a note named
        # "Diary" on screen does not make that screen where "print 'Diary'" ends)
        self.screen_words = {k: frozenset(tokens(" ".join(v.facts.toggles + v.facts.choices + v.facts.buttons)))
                             for k, v in views.screens.items()}
        # screens that show an error (a validation message, "has stopped"): no confirm leads there
        self.failing = frozenset(k for k, v in views.screens.items() if screen_errors(v.example))

    # --- routes --------------------------------------------------------------------------------

    def route(self, start: str, waypoints: Sequence[Edge],
              after: Decisions | None = None) -> tuple[list[Edge], float] | None:
        """Edges and cost of the shortest route taking `waypoints` in order, a choice deciding where
        the action that leaves its screen goes (see `Walker`); None if impossible."""
        return self.walker.route(start, waypoints, after)

    # --- value ---------------------------------------------------------------------------------

    def value(self, start: str, edges: list[Edge], cost: float, ev: Evidence,
              bound: dict[Edge, Slot]) -> float:
        credit: dict[str, float] = {}
        for i, e in enumerate(edges):
            tid = self.tid[e]
            # A label that shares a word with the intent but not its meaning ("Show all folders
            # content" for "sort folders by name") earns only part of that word.
            gate = min(1.0, max(0.0, (ev.edges.get(tid, 0.0) - 0.2) / 0.4))
            if i == len(edges) - 1 and self._unfinished(e):
                gate *= END_OFFERS
            for t in self.words.get(tid, frozenset()):
                if number_fits(t, self.labels.get(tid, frozenset()), ev):
                    credit[t] = max(credit.get(t, 0.0), gate)
        for t, share in self._keyed(edges, ev).items():  # "call 911" on a keypad: 9, 1, 1
            credit[t] = max(credit.get(t, 0.0), share)
        for slot in bound.values():
            for t in set(tokens(slot.clause)) & FIELD_WORDS:  # "mobile number 123…": the field explains them
                credit[t] = 1.0
        covered = set(credit)
        coverage = sum(w * credit[t] for t, w in ev.weights.items() if t in credit)
        seen = set().union(*(self.titles.get(v, frozenset()) for _, v, _ in edges)) if edges else set()
        context = 0.3 * sum(w for t, w in ev.weights.items() if t in seen and t not in covered)
        end = edges[-1][1] if edges else start
        end_score = 0.0
        # An intent is never "stay where you are", and an open dialog or menu is not a destination
        # (its choices are there to be taken): only a real destination earns this.
        passed = {start} | {u for u, _, _ in edges}
        if end not in passed and not self.views.transient(end):  # coming back is not arriving
            shown = self.screen_words.get(end, frozenset())
            end_score = 0.1 * ev.screens.get(end, 0.0) + END_OFFERS * sum(
                w for t, w in ev.weights.items() if t in shown and t not in covered and t not in seen)
        slots = sum(0.2 + 0.3 * self.affinity(e, s) for e, s in bound.items())
        screens = [start] + [v for _, v, _ in edges]
        experience = sum(_EXP_WEIGHT * max(0.0, sim - _EXP_FLOOR) / (1 - _EXP_FLOOR) * _in_order(rec, screens)
                         for sim, rec in ev.experience if rec)
        typed = sum(1 for e in edges if e not in bound and self.graph.edges[e]["action"].kind is ActionKind.TYPE)
        # steps that have been seen taken one after the other are likelier to work together, an action
        # that has led to several screens most likely does what it did last, and a widget whose id
        # names an intent word is the likelier of two with one label
        together = FOLLOWED * sum(1 for pair in itertools.pairwise(edges) if pair in ev.followed) \
            + FOLLOWED * sum(1 for e in edges if e in ev.latest) \
            + FOLLOWED * sum(1 for e in edges if self.kinds.get(self.tid[e], frozenset()) & ev.weights.keys())
        return coverage + context + end_score + slots + experience + together \
            - ev.step_cost * (cost + typed) - 0.05 * self.inversions(edges, ev)

    def _unfinished(self, edge: Edge) -> bool:
        """Whether `edge` opens a dialog the atlas never saw left but by going back ('Add new checklist
        items', its OK never taken): a route that stops there has asked, not done, what the edge names."""
        u, v, _ = edge
        view = self.views.screens.get(v)
        if u == v or view is None or view.facts.kind != "dialog":
            return False
        return all(w == v or d["action"].kind in _NAV for _, w, d in self.graph.out_edges(v, data=True))

    def digit(self, tid: int) -> str:
        """The digit a keypad key enters ('Nine', '9'), or ""."""
        t = self.views.transitions.get(tid)
        if t is None or t.action.kind is not ActionKind.TAP:
            return ""
        words = tokens(t.facts.label)
        return words[0] if len(words) == 1 and len(words[0]) == 1 and words[0].isdigit() else ""

    def _keyed(self, edges: list[Edge], ev: Evidence) -> dict[str, float]:
        """Numbers of the intent entered key by key on a keypad along `edges`: the share of each
        number's digits the route presses, in order."""
        numbers = [t for t in ev.weights if _is_number(t) and len(t) > 1 and t.isdigit()]
        if not numbers:
            return {}
        pressed = "".join(self.digit(self.tid[e]) for e in edges)
        if not pressed:
            return {}
        out = {}
        for t in numbers:
            i = 0
            for d in pressed:
                if i < len(t) and d == t[i]:
                    i += 1
            out[t] = i / len(t)
        return out

    def inversions(self, edges: list[Edge], ev: Evidence) -> int:
        """Waypoints taken in another order than the intent names them ("Bob's … number": Bob first)."""
        firsts = []
        for e in edges:
            hit = [ev.order[t] for t in self.words.get(self.tid[e], ()) if t in ev.order]
            if hit:
                firsts.append(min(hit))
        return sum(1 for a, b in itertools.pairwise(firsts) if b < a)

    # --- picking -------------------------------------------------------------------------------

    def candidates(self, ev: Evidence, limit: int = 40) -> list[int]:
        terms = set(ev.weights)
        scored = []
        for t in self.views.transitions.values():
            if t.action.kind in _NAV or t.action.kind is ActionKind.TYPE:
                continue
            hit = self.words[t.id] & terms
            rel = ev.edges.get(t.id, 0.0)
            if hit:
                scored.append((sum(ev.weights[w] for w in sorted(hit)) + rel, t.id))
        scored.sort(reverse=True)
        picked = [t for _, t in scored[:limit]]
        # keys of a keypad that enter a number the intent names digit by digit
        digits = {d for t in terms if _is_number(t) and t.isdigit() and len(t) > 1 for d in t}
        if digits:
            picked += [t.id for t in self.views.transitions.values() if t.id not in picked and self.digit(t.id) in digits]
        # Screens whose words match (a settings page listing the option) are destinations even when
        # no recorded action names the intent: the ways into the best of them are candidates too.
        for key in sorted(ev.screens, key=lambda k: -ev.screens[k])[:3]:
            for u, v, k in self.graph.in_edges(key, keys=True):
                t = self.tid[(u, v, k)]
                if u != v and t not in picked and self.graph.edges[u, v, k]["action"].kind not in _NAV:
                    picked.append(t)
        return picked

    def affinity(self, edge: Edge, slot: Slot) -> float:
        t = self.views.transitions[self.tid[edge]]
        rid = t.action.target.resource_id if t.action.target else ""
        return field_affinity(slot, f"{t.facts.label} {rid}")

    def fields(self, slot: Slot, ev: Evidence) -> list[int]:
        """TYPE transitions whose field could take `slot` (its words fit the slot's), best first."""
        scored = []
        for t in self.views.transitions.values():
            if t.action.kind is not ActionKind.TYPE:
                continue
            affinity = self.affinity(self.edge_of[t.id], slot)
            if affinity > 0:
                scored.append((affinity + 0.5 * ev.edges.get(t.id, 0.0), t.id))
        scored.sort(reverse=True)
        return [t for _, t in scored[:6]]

    def pick(self, start: str, ev: Evidence, *, max_waypoints: int = 7) -> list[Pick]:
        """Waypoints, in route order, chosen greedily by value (see module doc).

        Greedy choice is myopic about typed values: a nearby field can look best before the
        action that leads to the right one is chosen. So it runs twice — fields among all
        candidates, and fields only after the other waypoints — and keeps the better plan.
        """
        plans = []
        actions = [(self.edge_of[t], None) for t in self.candidates(ev)]
        fields = [(self.edge_of[t], slot) for slot in ev.slots for t in self.fields(slot, ev)]
        for stages in ([actions + fields], [actions, fields]):
            waypoints: list[Edge] = []
            bound: dict[Edge, Slot] = {}
            reasons: dict[Edge, str] = {}
            value = self._greedy(start, ev, stages, waypoints, bound, reasons, max_waypoints)
            value = self._swap(start, ev, actions, waypoints, bound, reasons, value)
            plans.append((value, waypoints, bound, reasons))
        _, waypoints, bound, reasons = max(plans, key=lambda p: p[0])
        for _ in range(2):  # a dialog may open another (OK -> "are you sure?" -> OK)
            longer = self._confirm(start, waypoints, ev, bound, reasons)
            if len(longer) == len(waypoints):
                break
            waypoints = longer
        walked = self.walker.walk(start, waypoints, ev.after)
        if walked is not None:  # what a choice decided is taken as it is, by any planner of this route
            for e in walked[2]:
                reasons.setdefault(e, f"{self.views.transitions[self.tid[e]].facts.phrase()}: where it led whenever "
                                      "taken after the choice made before it")
            waypoints = walked[2]
        return [Pick(e, self.tid[e], reasons.get(e, ""), bound.get(e)) for e in waypoints]

    def _greedy(self, start: str, ev: Evidence, stages: list[list[tuple[Edge, Slot | None]]],
                waypoints: list[Edge], bound: dict[Edge, Slot], reasons: dict[Edge, str], limit: int) -> float:
        """Add waypoints from each stage's pool while one raises the value; returns the final value."""
        base = self.route(start, waypoints, ev.after)
        assert base is not None
        best_value = self.value(start, base[0], base[1], ev, bound)
        for pool in stages:
            while len(waypoints) < limit:
                best = None
                for edge, slot in pool:
                    if edge in waypoints or (slot is not None and slot in bound.values()):
                        continue
                    trial_bound = dict(bound)
                    if slot is not None:
                        trial_bound[edge] = slot
                    for pos in range(len(waypoints) + 1):
                        trial = waypoints[:pos] + [edge] + waypoints[pos:]
                        r = self.route(start, trial, ev.after)
                        if r is None:
                            continue
                        v = self.value(start, r[0], r[1], ev, trial_bound)
                        if v > best_value + MIN_GAIN and (best is None or v > best[0]):
                            best = (v, trial, trial_bound, edge, slot)
                if best is None:
                    break
                best_value = best[0]
                waypoints[:] = best[1]
                bound.clear()
                bound.update(best[2])
                reasons[best[3]] = self._reason(best[3], best[4], ev)
        return best_value

    def _swap(self, start: str, ev: Evidence, pool: list[tuple[Edge, Slot | None]], waypoints: list[Edge],
              bound: dict[Edge, Slot], reasons: dict[Edge, str], value: float) -> float:
        """Second thoughts on greedy choices: replace an action waypoint by another candidate when the
        whole route is then worth more. Greedy picks "Recordings" before it picks the "Folders" tab,
        and of two "Recordings" (an album, a folder) the one that fits the tab is only known after."""
        for _ in range(2):
            best = None
            for i, old in enumerate(waypoints):
                if old in bound:
                    continue
                for edge, _slot in pool:
                    if edge in waypoints:
                        continue
                    trial = waypoints[:i] + [edge] + waypoints[i + 1:]
                    r = self.route(start, trial, ev.after)
                    if r is None:
                        continue
                    v = self.value(start, r[0], r[1], ev, bound)
                    if v > value + 1e-6 and (best is None or v > best[0]):
                        best = (v, trial, edge)
            if best is None:
                break
            value, waypoints[:] = best[0], best[1]
            reasons[best[2]] = self._reason(best[2], None, ev)
        return value

    def _reason(self, edge: Edge, slot: Slot | None, ev: Evidence) -> str:
        t = self.views.transitions[self.tid[edge]]
        if slot is not None:
            return f"types the {slot.name.replace('_', ' ')} {slot.value!r} into the {t.facts.label or 'text'} field"
        hit = sorted(self.words[t.id] & set(ev.weights))
        if hit:
            return f"{t.facts.phrase()}: its label matches {', '.join(hit)}"
        return f"{t.facts.phrase()}: a similar recorded task did it"

    def _confirm(self, start: str, waypoints: list[Edge], ev: Evidence, bound: dict[Edge, Slot],
                 reasons: dict[Edge, str]) -> list[Edge]:
        """Close what the last waypoint leaves open: OK on a dialog, Save on an edited form."""
        if not waypoints:
            return waypoints
        last = waypoints[-1]
        second = len(waypoints) >= 2 and reasons.get(last, "").endswith("left open")
        end = self.views.screens.get(last[1])
        if end is None:
            return waypoints
        options = []
        walked = self.route(start, waypoints, ev.after)
        choice = latest_choice(walked[0], ev.after) if walked is not None else None
        decided = ev.after.get(choice, {}) if choice is not None else {}
        for u, v, key in self.graph.out_edges(last[1], keys=True):
            t = self.views.transitions.get(self.tid[(u, v, key)])
            if t is None or v == u or t.action.kind in _NAV or decided.get((u, key), (u, v, key)) != (u, v, key):
                continue
            label = set(tokens(t.facts.label))
            strong = bool(label & _SAVE)
            if not label or not label <= CONFIRM_WORDS:
                continue  # a confirm button says only that: OK, Save, Delete, Send
            if not (end.facts.kind in ("dialog", "form") or strong):
                continue
            if second and not (end.facts.kind == "dialog" or strong):
                continue  # after one confirm, only a dialog it opened or a save screen needs another
            if v in self.failing:
                continue  # a Save that led to "Give the note a title" did not confirm: its other outcome did
            options.append((ev.screens.get(v, 0.0) + 0.1 * t.count + (0.5 if strong else 0.0), (u, v, key), t))
        if not options:
            return waypoints + self._close(last[1], decided, ev, reasons)
        _, edge, t = max(options, key=lambda o: o[0])
        reasons[edge] = f"{t.facts.phrase()}: confirms what the previous step left open"
        return waypoints + [edge]

    def _close(self, dialog: str, decided: Mapping[tuple[str, str], Edge], ev: Evidence,
               reasons: dict[Edge, str]) -> list[Edge]:
        """A dialog or menu with no confirm button is closed by a choice: the one nearest the intent
        (of those a choice made there leaves possible)."""
        view = self.views.screens.get(dialog)
        if view is None or not view.facts.transient:
            return []
        best, best_rel = None, 0.0
        for u, v, key in self.graph.out_edges(dialog, keys=True):
            t = self.views.transitions.get(self.tid[(u, v, key)])
            if t is None or v == u or t.action.kind in _NAV or t.action.kind is ActionKind.TYPE or \
                    decided.get((u, key), (u, v, key)) != (u, v, key):
                continue
            rel = ev.edges.get(t.id, 0.0)
            if rel > best_rel:
                best, best_rel = (u, v, key), rel
        if best is None:
            return []
        t = self.views.transitions[self.tid[best]]
        reasons[best] = f"{t.facts.phrase()}: the choice nearest the intent closes the {view.facts.kind}"
        return [best]


def action_words(t: TransitionView, views: AtlasViews) -> str:
    """The words of what an action touches, and the title of the screen it opens: what it *does*."""
    words = [t.facts.label, t.facts.widget if t.facts.widget in ("switch", "checkbox") else ""]
    if t.target != t.source and t.target in views.screens:
        # the title of what it opens, without quoted content ("delete note "Diary"?" names data, not purpose)
        words.append(_QUOTED.sub(" ", views.screens[t.target].facts.title))
    return " ".join(w for w in words if w)


def number_fits(term: str, label: frozenset[str], ev: Evidence) -> bool:
    """Whether a label (its tokens) explains the intent term `term`, as far as numbers go.

    A number in a label explains the intent's number only beside the same unit: "1 hour before"
    explains "remind me 1 hour before", "July 1 (Sat)" (a date shown on screen) does not. A label
    that is only numbers (a day '30', a key '9'), or whose other words the intent does not use
    ("5 columns" for "five images per row"), is given the benefit of the doubt.
    """
    if not _is_number(term) or term not in ev.near or term not in label:
        return True  # not a number of the intent, or it came with the title of the screen the action opens
    unit = {w for w in label if not _is_number(w)}
    # the label's other words are the intent's own words, but not the ones beside this number
    # ("July 1 (Sat)" for "on july 30, remind me 1 hour before"): that number is something else
    return not (unit & set(ev.weights)) or bool(unit & ev.near[term])


def _is_number(term: str) -> bool:
    return bool(term) and term[0].isdigit()


def _in_order(needle: list[str], hay: list[str]) -> float:
    """Share of `needle` (consecutive repeats collapsed) found in `hay` in order."""
    want = [k for i, k in enumerate(needle) if i == 0 or needle[i - 1] != k]
    pos, hit = 0, 0
    for k in want:
        try:
            pos = hay.index(k, pos) + 1
            hit += 1
        except ValueError:
            continue
    return hit / len(want) if want else 0.0
