"""What an intent must leave true, derived from the intent and the atlas; plans checked against it.

`derive_expectations(views, intent, test)` reads the intent the way a tester would and states, in
terms of the atlas's screens, what must hold when the test is done:

- a value it creates ("a note named 'Groceries'", "a task called 'Call the bank'") is shown in the
  list the form was opened from — one more time than the atlas saw it there;
- a switch or checkbox it names ("turn on quiet hours") is in the wanted state on its screen;
- an item it deletes ("delete the note called Trip to Lisbon") is gone from its list;
- a screen it opens ("open the archive") is open.

Nothing here knows any particular app: the words come from the intent, the places from the atlas's
captions (screen titles, list rows, switch labels). `plan_problems` says why a planned test cannot
realise its intent (its end screen shows an error, a value the intent names is never typed or
picked, a row is picked by position where the intent names it); `compose_route` routes through
what the expectations need when retrieval's route does not; `grounding` says whether the atlas
relates to the intent at all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import networkx as nx

from appatlas.devices.base import locate
from appatlas.errors import AppatlasError
from appatlas.graph.expectations import screen_errors
from appatlas.graph.planner import Edge, Route, Waypoint, edge_cost, route
from appatlas.rag.slots import Slot, extract_slots, field_affinity
from appatlas.rag.text import tokens
from appatlas.rag.views import AtlasViews
from appatlas.types import ActionKind, Expectation, Screen, Selector, TestCase, Widget

__all__ = ["compose_route", "derive_expectations", "grounding", "named_rows", "plan_problems", "rows_by_text"]

_CREATE = re.compile(r"\b(create|add|new|make|save|write|rename|compose|insert|register)\b", re.I)
_DELETE = re.compile(r"\b(delete|remove|erase|discard|trash)\b", re.I)
_OFF = re.compile(r"\b(turn off|switch off|disable|deactivate|uncheck|untick|stop)\b", re.I)
_SWITCH = re.compile(r"\b(turn|switch|enable|disable|activate|deactivate|check|uncheck|tick|untick|toggle)\b", re.I)
_OPEN = re.compile(r"\b(open|go to|show|view|navigate|see|display|unlock|enter)\b", re.I)
_SUBMIT = frozenset(tokens("save add create ok done submit confirm continue next apply unlock sign log send "
                           "finish yes set"))
_ABANDON = frozenset(tokens("cancel discard back close delete remove dismiss no skip later"))
_HOW = frozenset(tokens("turn switch on off enable disable activate deactivate open go create add make delete "
                        "remove toggle"))
_PHRASE = re.compile(r"[\w@.+-]+")
_STOP = frozenset(tokens("a an the to in on of for with and or my me this that it its is be by at from as into "
                         "called named titled please then all"))


def _words(text: str) -> set[str]:
    return {w for w in tokens(text) if w not in _STOP}


def _said(intent: str) -> set[str]:
    """The intent's content words, the values it carries left out (they say what, not where)."""
    rest = intent
    for s in extract_slots(intent):
        rest = rest.replace(s.value, " ")
    return _words(rest)


def _example(views: AtlasViews, key: str) -> Screen | None:
    v = views.screens.get(key)
    return v.example if v is not None else None


def _rows(screen: Screen) -> list[tuple[Widget, list[str]]]:
    """Rows of the screen's lists, with their texts: clickable views that hold texts, two or more of the
    same kind side by side (a dialog's choices too), or any such child of a scrolling container."""
    out = []
    for w in screen.widgets():
        groups: dict[tuple[str, str], list[Widget]] = {}
        for row in w.children:
            if row.children and (row.clickable or row.long_clickable):
                groups.setdefault((row.class_name, row.resource_id), []).append(row)
        for (_, _), rows in groups.items():
            if len(rows) < 2 and not w.scrollable:
                continue
            for row in rows:
                texts = [x.text.strip() for x in row.walk() if x.text.strip() and not x.editable]
                if texts:
                    out.append((row, texts))
    return out


def named_rows(views: AtlasViews, intent: str) -> list[tuple[str, str]]:
    """(screen key, row label) of list rows the intent names by their text, longest names first.

    A value the intent types ("a note named 'Groceries'") names what is made, not a row to pick."""
    said = intent
    for s in extract_slots(intent):
        if s.typed:
            said = said[:s.start] + " " * (s.end - s.start) + said[s.end:]
    said = " " + " ".join(_PHRASE.findall(said.casefold())) + " "
    found: dict[str, str] = {}
    for key, v in views.screens.items():
        for _, texts in _rows(v.example):
            title = texts[0]
            norm = " ".join(_PHRASE.findall(title.casefold()))
            if len(norm) >= 4 and f" {norm} " in said and len(title) > len(found.get(key, "")):
                found[key] = title
    return sorted(found.items(), key=lambda kv: -len(kv[1]))


def grounding(views: AtlasViews, intent: str) -> tuple[float, list[str]]:
    """How much of the intent the atlas shows: the share of its content words any screen or action says,
    and those words. A value the intent carries counts as shown (it is what gets typed)."""
    # the words that say how (turn on, open, create) ground nothing: what they act on must
    want = _said(intent) - _HOW
    if not want:
        return (1.0 if extract_slots(intent) else 0.0), []
    vocab: set[str] = set()
    for v in views.screens.values():
        vocab |= set(tokens(v.facts.words()))
    for t in views.transitions.values():
        vocab |= set(tokens(t.facts.label))
    hit = [w for w in want if w in vocab or any(len(w) >= 4 and (x.startswith(w) or w.startswith(x))
                                                 for x in vocab if len(x) >= 4)]
    return len(hit) / len(want), hit


# --- deriving ---------------------------------------------------------------------------------------


def _screens_of(views: AtlasViews, test: TestCase) -> list[str]:
    return [test.start] + [s.expect for s in test.steps]


def _list_before_form(views: AtlasViews, test: TestCase) -> str:
    """The list screen the route's form was opened from: the last screen with list rows before the first typing."""
    keys = _screens_of(views, test)
    first_type = next((i for i, s in enumerate(test.steps) if s.action.kind is ActionKind.TYPE), None)
    if first_type is None:
        return ""
    for key in reversed(keys[:first_type + 1]):
        ex = _example(views, key)
        if ex is not None and len(_rows(ex)) >= 2 and views.screens[key].facts.kind not in ("dialog", "menu"):
            return key
    return ""


def _toggle_goal(views: AtlasViews, intent: str) -> tuple[str, str, Edge | None] | None:
    """(screen key, label, the edge that flips it) of the switch or checkbox the intent names."""
    if not _SWITCH.search(intent):
        return None
    want = _said(intent)
    best: tuple[float, str, str, Edge | None] | None = None
    for u, v, k, data in views.plan_graph.edges(keys=True, data=True):
        t = views.transitions.get(data.get("transition"))
        if t is None or t.facts.widget not in ("switch", "checkbox") or not t.facts.label:
            continue
        label_words = _words(t.facts.label)
        if not label_words or not label_words <= want:
            continue
        score = len(label_words) + (0.5 if (t.facts.checked is False) != bool(_OFF.search(intent)) else 0.0)
        if best is None or score > best[0]:
            best = (score, u, t.facts.label, (u, v, k))
    return None if best is None else (best[1], best[2], best[3])


def _open_goal(views: AtlasViews, intent: str) -> str:
    """The screen the intent opens: the one whose title words are all in the intent (most words first)."""
    if not _OPEN.search(intent):
        return ""
    want = _said(intent)
    best = ("", 0)
    for key, v in views.screens.items():
        title = _words(v.facts.title)
        if v.facts.kind in ("dialog", "menu") or not title or not title <= want:
            continue
        ex = v.example
        if screen_errors(ex):
            continue
        if len(title) > best[1]:
            best = (key, len(title))
    return best[0]


def derive_expectations(views: AtlasViews, intent: str, test: TestCase,
                        slots: Sequence[Slot] | None = None) -> tuple[Expectation, ...]:
    """What `test` must leave true for `intent` (module docstring), in terms of the atlas's screens."""
    slots = list(slots) if slots is not None else extract_slots(intent)
    out: list[Expectation] = []
    typed = [s for s in slots if s.typed]
    if _CREATE.search(intent) and typed:
        where = _list_before_form(views, test) or (test.end if test.steps and
                                                   test.steps[-1].action.kind is not ActionKind.TYPE else "")
        ex = _example(views, where) if where else None
        if ex is not None:
            place = views.screens[where].facts.place
            for s in typed[:1]:  # the first value names what is created; the others are its details
                out.append(Expectation("shown", s.value, where=where, new=True,
                                       note=f"a new {s.value!r} is shown in the {place}"))
    if _DELETE.search(intent):
        for key, label in named_rows(views, intent)[:1]:
            out.append(Expectation("gone", label, where=key,
                                   note=f"{label!r} is no longer in the {views.screens[key].facts.place}"))
    toggle = _toggle_goal(views, intent)
    if toggle is not None:
        key, label, _ = toggle
        off = bool(_OFF.search(intent))
        out.append(Expectation("unchecked" if off else "checked", label, where=key,
                               note=f"{label!r} is {'off' if off else 'on'} on the {views.screens[key].facts.place}"))
    if not out:
        key = _open_goal(views, intent)
        if key:
            out.append(Expectation("screen", where=key, note=f"the {views.screens[key].facts.place} is open"))
    return tuple(out)


# --- checking plans -----------------------------------------------------------------------------------


def _tapped(views: AtlasViews, key: str, selector: Selector) -> Widget | None:
    ex = _example(views, key)
    if ex is None:
        return None
    try:
        return locate(selector, ex)
    except AppatlasError:
        return None


def _is_row_pick(selector: Selector) -> bool:
    return not (selector.text or selector.content_desc)


def rows_by_text(views: AtlasViews, test: TestCase, intent: str) -> TestCase:
    """Row taps the intent names by text are made to pick the row by that text, not by position."""
    names = dict(named_rows(views, intent))
    if not names:
        return test
    steps = list(test.steps)
    here = test.start
    for i, step in enumerate(steps):
        a = step.action
        label = names.get(here)
        if label and a.kind in (ActionKind.TAP, ActionKind.LONG_TAP) and a.target is not None \
                and _is_row_pick(a.target):
            w = _tapped(views, here, a.target)
            texts = [x.text.strip() for x in w.walk()] if w is not None else []
            if label not in texts:
                steps[i] = replace(step, action=replace(a, target=Selector(text=label)),
                                   note=(step.note + "; " if step.note else "") + f"the row {label!r} by its text")
        here = step.expect or here
    return replace(test, steps=tuple(steps))


def plan_problems(views: AtlasViews, test: TestCase, intent: str, slots: Sequence[Slot] | None = None) -> list[str]:
    """Why `test` cannot realise `intent`, one reason each; empty when it can."""
    slots = list(slots) if slots is not None else extract_slots(intent)
    problems: list[str] = []
    passes = set(_screens_of(views, test))
    for e in derive_expectations(views, intent, test, slots):
        if e.kind in ("screen", "checked", "unchecked") and e.where not in passes:
            problems.append(f"it never reaches the screen where {e.describe()}")
    end = _example(views, test.end) if test.end else None
    if end is not None and test.steps:
        shown = screen_errors(end)
        if shown:
            problems.append(f"its end screen shows an error: {'; '.join(repr(t) for t in shown)}")
    typed_texts = {s.action.text.strip().casefold() for s in test.steps if s.action.kind is ActionKind.TYPE}
    picked = {(s.action.target.text or s.action.target.content_desc).strip().casefold()
              for s in test.steps if s.action.target is not None}
    here = test.start
    for s in test.steps:  # a row picked by position names what its texts say
        if s.action.target is not None and _is_row_pick(s.action.target):
            w = _tapped(views, here, s.action.target)
            if w is not None:
                picked |= {x.text.strip().casefold() for x in w.walk() if x.text.strip()}
        here = s.expect or here
    for s in slots:
        v = s.value.strip().casefold()
        if s.typed and v not in typed_texts:
            problems.append(f"it never types {s.value!r}, which the intent names")
        elif not s.typed and not any(re.search(rf"(^|\W){re.escape(v)}(\W|$)", t) for t in typed_texts | picked):
            problems.append(f"it never picks {s.value!r}, which the intent names")
    names = dict(named_rows(views, intent))
    here = test.start
    for s in test.steps:
        label = names.get(here)
        if label and s.action.target is not None and _is_row_pick(s.action.target):
            w = _tapped(views, here, s.action.target)
            texts = [x.text.strip() for x in w.walk()] if w is not None else []
            if label not in texts:
                problems.append(f"it picks the row {texts[0] if texts else '?'!r} by position where the intent "
                                f"names {label!r}")
        here = s.expect or here
    toggle = _toggle_goal(views, intent)
    if toggle is not None and toggle[2] is not None:
        key, label, _ = toggle
        flips = any(s.action.target is not None and (s.action.target.text or s.action.target.content_desc) == label
                    for s in test.steps) or any(
            e[0] == key and views.transitions.get(views.plan_graph.edges[e].get("transition")) is not None
            and views.transitions[views.plan_graph.edges[e]["transition"]].facts.label == label
            for e in _edges_of(views, test))
        if not flips:
            problems.append(f"it never touches {label!r}, which the intent switches")
    unsaved = _unsaved(views, test, intent)
    if unsaved:
        problems.append(unsaved)
    return problems


def _changes(action: object) -> bool:
    a = action  # a typed text, or a tap on a switch / checkbox
    t = getattr(a, "target", None)
    return a.kind is ActionKind.TYPE or (a.kind is ActionKind.TAP and t is not None and any(
        c in t.class_name.lower() for c in ("switch", "checkbox", "togglebutton")))


def _unsaved(views: AtlasViews, test: TestCase, intent: str) -> str:
    """Why the route leaves a change unsaved: it changes a screen that has a submit button (Save) and
    never leaves that screen after the change; "" when it does not."""
    here = test.start
    last: tuple[int, str] | None = None
    for i, s in enumerate(test.steps):
        if _changes(s.action):
            last = (i, here)
        here = s.expect or here
    if last is None:
        return ""
    i, screen = last
    if any(s.expect and s.expect != screen for s in test.steps[i + 1:]):
        return ""
    submit = _submit(views, screen, intent)
    if submit is None:
        return ""
    return (f"it changes the {views.screens[screen].facts.place} but never presses "
            f"{_label(views, submit)!r}, which keeps the change")


def _edges_of(views: AtlasViews, test: TestCase) -> list[Edge]:
    out = []
    here = test.start
    g = views.plan_graph
    for s in test.steps:
        if g.has_node(here):
            for _, v, k, d in g.out_edges(here, keys=True, data=True):
                if v == s.expect and d["action"].key == s.action.key:
                    out.append((here, v, k))
                    break
        here = s.expect
    return out


# --- composing a route from the expectations ---------------------------------------------------------


def _weight(views: AtlasViews):  # noqa: ANN202 - a weight function for planner.route
    """Edge cost, with a toll on edges into screens that show an error (a route goes around them)."""
    bad = {k for k, v in views.screens.items() if screen_errors(v.example)}
    into_bad = {d.get("transition") for _, v, d in views.plan_graph.edges(data=True) if v in bad}

    def weight(data) -> float:  # noqa: ANN001
        return edge_cost(data) + (25.0 if data.get("transition") in into_bad else 0.0)
    return weight


def _label(views: AtlasViews, e: Edge) -> str:
    t = views.transitions.get(views.plan_graph.edges[e].get("transition"))
    return t.facts.label if t is not None else ""


def _form(views: AtlasViews, intent: str, typed: list[Slot]) -> tuple[str, dict[int, Edge], list[Edge]] | None:
    """The form the typed values go into: (screen, slot index -> its type edge, the other fields' type edges)."""
    g = views.plan_graph
    want = _said(intent)
    best: tuple[float, str, dict[int, Edge], list[Edge]] | None = None
    for key, v in views.screens.items():
        if screen_errors(v.example) or not g.has_node(key):
            continue
        fields: dict[str, Edge] = {}
        for _, t, k, d in g.out_edges(key, keys=True, data=True):
            a = d["action"]
            if a.kind is ActionKind.TYPE and a.target is not None:
                fields.setdefault(a.target.resource_id or a.target.describe(), (key, t, k))
        if not fields:
            continue
        chosen: dict[int, Edge] = {}
        score = 0.0
        free = dict(fields)
        for i, s in enumerate(typed):
            if not free:
                break
            name, e = max(free.items(), key=lambda kv: field_affinity(s, _label(views, kv[1]) + " " + kv[0]))
            score += 2.0 * field_affinity(s, _label(views, e) + " " + name) + 0.1
            chosen[i] = e
            del free[name]
        if len(chosen) < len(typed):
            continue
        place = _words(" ".join([v.facts.title, *v.facts.ids, *v.facts.fields, *v.facts.buttons]))
        # what opens the form says what it makes ("Text note" opens the note form, not the checklist's)
        opened_by = max((len(_words(_label(views, (a, key, k))) & want)
                         for a, _, k in g.in_edges(key, keys=True) if a != key), default=0)
        score += 0.5 * len(place & want) + 0.5 * opened_by \
            + (1.0 if _submit(views, key, intent) is not None else 0.0)
        if best is None or score > best[0]:
            best = (score, key, chosen, list(free.values()))
    return None if best is None else (best[1], best[2], best[3])


def _submit(views: AtlasViews, form: str, intent: str) -> Edge | None:
    """The button that submits `form`: leads elsewhere without an error, its label the intent's or a submit word."""
    g = views.plan_graph
    want = _said(intent)
    best: tuple[float, Edge] | None = None
    for _, t, k, d in g.out_edges(form, keys=True, data=True):
        a = d["action"]
        if a.kind is not ActionKind.TAP or t == form:
            continue
        ex = _example(views, t)
        if ex is None or screen_errors(ex):
            continue
        label = _words(_label(views, (form, t, k)))
        if not label or label & _ABANDON:
            continue
        score = 2.0 * len(label & want) + 1.0 * len(label & _SUBMIT)
        if score > 0 and (best is None or score > best[0]):
            best = (score, (form, t, k))
    return None if best is None else best[1]


def compose_route(views: AtlasViews, intent: str, start: str,
                  slots: Sequence[Slot] | None = None) -> tuple[Route, dict[Edge, str]] | None:
    """A route from `start` through what the intent's expectations need, and the text for its typed edges:
    the rows it names (by text), the switch it flips, the form its values go into (every field filled, the
    atlas's own value where the intent names none) and its submit button, then the screen it opens."""
    slots = list(slots) if slots is not None else extract_slots(intent)
    g = views.plan_graph
    if not g.has_node(start):
        return None
    waypoints: list[Waypoint] = []
    inputs: dict[Edge, str] = {}
    for key, label in named_rows(views, intent)[:1]:
        edges = [(key, t, k) for _, t, k, d in g.out_edges(key, keys=True, data=True)
                 if d["action"].kind is ActionKind.TAP and t != key and _row_label(views, key, d["action"].target) == label]
        if edges:
            waypoints.append(Waypoint(edge=edges[0]))
    typed = [s for s in slots if s.typed]
    toggle = _toggle_goal(views, intent)
    if toggle is not None and toggle[2] is not None:
        waypoints.append(Waypoint(edge=toggle[2]))
        keep = _submit(views, toggle[0], intent) if not any(s.typed for s in slots) else None
        if keep is not None:  # a settings form with a Save button: the change is kept by pressing it
            waypoints.append(Waypoint(edge=keep))
    if typed:
        form = _form(views, intent, typed)
        if form is None:
            return None
        key, chosen, others = form
        for i, e in chosen.items():
            inputs[e] = typed[i].value
            waypoints.append(Waypoint(edge=e))
        for e in others:
            waypoints.append(Waypoint(edge=e))
        submit = _submit(views, key, intent)
        if submit is not None:
            waypoints.append(Waypoint(edge=submit))
    elif toggle is None:
        target = _open_goal(views, intent)
        if target:
            waypoints.append(Waypoint(screen=target))
    if not waypoints:
        return None
    try:
        routes = route(g, start, waypoints, weight=_weight(views))
    except (AppatlasError, nx.NetworkXException):
        return None
    return (routes[0], inputs) if routes else None


def _row_label(views: AtlasViews, key: str, selector: Selector | None) -> str:
    if selector is None:
        return ""
    w = _tapped(views, key, selector)
    if w is None:
        return ""
    texts = [x.text.strip() for x in w.walk() if x.text.strip()]
    return texts[0] if texts else ""
