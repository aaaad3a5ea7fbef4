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
from appatlas.rag.intent import NAMING, OFF_CUES
from appatlas.rag.slots import Slot, extract_slots, field_affinity
from appatlas.rag.text import keeps, tokens
from appatlas.rag.views import AtlasViews, ScreenView
from appatlas.types import ActionKind, Expectation, Screen, Selector, TestCase, Widget, view_kind

__all__ = ["compose_route", "derive_expectations", "grounding", "named_rows", "plan_problems", "route_effects",
           "rows_by_text"]

_CREATE = re.compile(r"\b(create|add|new|make|save|write|rename|compose|insert|register)\b", re.I)
_DELETE = re.compile(r"\b(delete|remove|erase|discard|trash)\b", re.I)
_SWITCH = re.compile(r"\b(turn|switch|enable|disable|activate|deactivate|check|uncheck|tick|untick|toggle|show|hide|"
                     r"display|use|allow|prevent|do not|don't|set)\b", re.I)
_OPEN = re.compile(r"\b(open|go to|show|view|navigate|see|display|unlock|enter|check|look at)\b", re.I)
# "change the alignment to center", "set the snooze time to 5 minute": what is set (X) and its new value (Y)
_SET_TO = re.compile(r"\b(?:change|set|adjust|switch|make|turn)\b(?P<what>.*?)\b(?:to|as)\b\s+(?P<value>.+)$", re.I)
# "set the sleep timer for five minutes": a duration or time given with "for", where no "to" says the value
_SET_FOR = re.compile(r"\b(?:set|adjust)\b(?P<what>.*?)\bfor\b\s+(?P<value>.+)$", re.I)
_VALUE_END = re.compile(r"\s*(?:,|;|\band\b|\bthen\b|\bin the\b|\bof the\b|\bfor the\b|\bwithin\b).*$", re.I)
_SORT = re.compile(r"\bsort\w*\b(?P<what>.+?)(?:\s+in\s+(?P<order>\w+)\s+order\b.*)?$", re.I)
# a state word a switch's label may carry ("CalDAV sync OFF"): not part of what it is called
_STATE_WORD = re.compile(r"\s+(on|off)$", re.I)
# a clause after the one that opens something ("open dialpad and call 911"): the open is a means, not the end
_LATER_ACT = re.compile(r"(?:,|\band\b|\bthen\b)\s*(?:\w+\s+){0,2}?(?:call|send|type|add|create|delete|play|set|"
                        r"change|search|save|sort|turn|select|pick|write|text|share|export|print|remove|rename|"
                        r"enable|disable|edit|choose|start|stop)\b", re.I)
_SUBMIT = frozenset(tokens("save add create ok done submit confirm continue next apply unlock sign log send "
                           "finish yes set"))
_ABANDON = frozenset(tokens("cancel discard back close delete remove dismiss no skip later"))
_HOW = frozenset(tokens("turn switch on off enable disable activate deactivate open go create add make delete "
                        "remove toggle"))
_PHRASE = re.compile(r"[\w@.+-]+")

# words that name a value ("a note called 'X'"), dropped as words, not as stems: "titled" and "title" stem alike,
# and "sort by title" names what is sorted
_NAMING = re.compile(r"\b(?:" + "|".join(sorted(NAMING)) + r")\b", re.I)


def _phrase(text: str) -> str:
    """`text` as lower-case words one space apart, for comparing a row's title with what the intent says."""
    return " ".join(_PHRASE.findall(text.casefold()))


def _words(text: str) -> set[str]:
    return set(tokens(_NAMING.sub(" ", text)))


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


def named_rows(views: AtlasViews, intent: str, *, listed: bool = False) -> list[tuple[str, str]]:
    """(screen key, row label) of list rows the intent names by their text, longest names first; with `listed`, of
    the named things a screen lists side by side instead (`_listed_names`: a strip of note tabs).

    A value the intent types ("a note named 'Groceries'") names what is made, not a row to pick."""
    said = intent
    values = set()  # a short name the intent gives as a value ("delete contact Bob") names a row whole
    for s in extract_slots(intent):
        if s.is_typed:
            said = said[:s.start] + " " * (s.end - s.start) + said[s.end:]
        else:
            values.add(_phrase(s.text))
    said = f" {_phrase(said)} "
    found: dict[str, str] = {}
    for key, v in views.screens.items():
        for title in (_listed_names(v) if listed else [texts[0] for _, texts in _rows(v.example)]):
            norm = _phrase(title)
            if (len(norm) >= 4 or norm in values) and f" {norm} " in said and len(title) > len(found.get(key, "")):
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
        if ex is not None and len(_rows(ex)) >= 2 and not views.screens[key].facts.transient:
            return key
    return ""


def label_core(label: str) -> str:
    """What a switch is called, without a state word its label may carry ("CalDAV sync OFF" -> "CalDAV sync")."""
    core = _STATE_WORD.sub("", label.strip())
    return core or label.strip()


def _intent_words(intent: str) -> set[str]:
    """The intent's content words, plus each pair of neighbours written as one ("dial pad" -> "dialpad")."""
    letters = re.findall(r"[^\W\d_]+", intent.casefold())
    joined = {tokens(a + b)[0] for a, b in zip(letters, letters[1:], strict=False) if tokens(a + b)}
    return _words(intent) | joined


def _matched(label: str, want: set[str]) -> tuple[float, int]:
    """(share of the label's content words the intent says, how many): how well an intent names a label."""
    words = _words(label) - {"~not"}
    if not words:
        return 0.0, 0
    hit = sum(1 for w in words if w in want or any(len(w) >= 4 and len(x) >= 4 and (x.startswith(w) or w.startswith(x))
                                                   for x in want))
    return hit / len(words), hit


def _toggles(screen: Screen, *, choices: bool = True) -> list[tuple[str, Widget]]:
    """(label, widget) of each switch and checkbox of a screen (and radio button, with `choices`): its own
    text, else the first text of the smallest row holding it and nothing else checkable (a settings row:
    title, summary, switch)."""
    out = [(label_core(w.label), w) for w in screen.widgets() if w.checkable and w.label.strip()
           and (choices or "radio" not in w.class_name.lower())]
    rows: dict[int, tuple[int, str, Widget]] = {}
    for row in screen.widgets():
        if row.checkable:
            continue
        inside = list(row.walk())
        toggles = [x for x in inside if x.checkable]
        texts = [x.text.strip() for x in inside if not x.checkable and x.text.strip() and not x.editable]
        if len(toggles) == 1 and not toggles[0].label.strip() and texts:
            t = toggles[0]
            if id(t) not in rows or row.bounds.area < rows[id(t)][0]:
                rows[id(t)] = (row.bounds.area, label_core(texts[0]), t)
    return out + [(label, t) for _, label, t in rows.values()]


def _toggle_goal(views: AtlasViews, intent: str) -> tuple[str, str, Edge | None] | None:
    """(screen key, label, the edge that flips it, if the atlas saw one) of the switch or checkbox the intent
    names: all of its label's words said by the intent (or most of them, with a word that says to switch)."""
    want = _intent_words(_strip_values(intent))
    if not want:
        return None
    switching = bool(_SWITCH.search(intent))
    flips: dict[tuple[str, str], Edge] = {}
    for u, v, k, data in views.plan_graph.edges(keys=True, data=True):
        t = views.transitions.get(data.get("transition"))
        if t is not None and t.facts.widget in ("switch", "checkbox") and t.facts.label:
            flips.setdefault((u, _norm_label(t.facts.label)), (u, v, k))
    best: tuple[tuple[float, int, float], str, str, Edge | None] | None = None
    for key, view in views.screens.items():
        for label, w in _toggles(view.example, choices=False):  # a choice is set, not switched
            share, hit = _matched(label, want)
            if not (share == 1.0 or (switching and share >= 0.6 and hit >= 2)) or not _named_by_words(label):
                continue
            if hit < 2 and not _switched_word(intent, label):
                continue  # one word ('Images', 'Bob') said somewhere in the intent does not name a switch
            edge = flips.get((key, _norm_label(label)))
            # of equal matches, the one the atlas saw flipped, in the state the intent changes
            score = (share, hit, (0.5 if edge is not None else 0.0)
                     + (0.25 if bool(w.checked) == bool(OFF_CUES.search(intent)) else 0.0))
            if best is None or score > best[0]:
                best = (score, key, label, edge)
    return None if best is None else (best[1], best[2], best[3])


_VERB = re.compile(r"\b(?:turn on|turn off|switch on|switch off|enable|disable|activate|deactivate|check|uncheck|"
                   r"tick|untick|show|hide|display|use|allow|mute|unmute)\s+(?:the\s+|a\s+|an\s+)?([\w-]+)", re.I)


def _switched_word(intent: str, label: str) -> bool:
    """Whether the intent puts a switching verb right before the one word of `label` ("turn on sound")."""
    words = _words(label)
    return any(set(tokens(m.group(1))) & words for m in _VERB.finditer(intent))


def _named_by_words(label: str) -> bool:
    """Whether a label names a setting in words: a row titled '7:00 am' holds an alarm's switch, and an
    intent naming that alarm ("turn on the '7:00 am' alarm clock vibration") does not name its switch."""
    return any(w.isalpha() and len(w) >= 3 and w not in ("am", "pm") for w in _words(label))


def _norm_label(text: str) -> str:
    return " ".join(label_core(text).casefold().split())


def _strip_values(intent: str) -> str:
    """The intent without the values it types (they name what is made, not a setting)."""
    out = intent
    for s in extract_slots(intent):
        if s.is_typed:
            out = out.replace(s.value, " ")
    return out


def _last_act(intent: str) -> bool:
    """Whether opening is the intent's last act (nothing to do after it: "open dialpad and call 911" is not)."""
    m = _OPEN.search(intent)
    return m is not None and not _LATER_ACT.search(intent, m.end())


def _open_goal(views: AtlasViews, intent: str) -> str:
    """The screen the intent opens: the one whose title words are all in the intent (most words first)."""
    if not _OPEN.search(intent) or not _last_act(intent):
        return ""
    want = _said(intent)
    best = ("", 0)
    for key, v in views.screens.items():
        title = _words(v.facts.title)
        if v.facts.transient or not title or not title <= want:
            continue
        ex = v.example
        if screen_errors(ex):
            continue
        if len(title) > best[1]:
            best = (key, len(title))
    return best[0]


def _row_values(screen: Screen) -> list[tuple[str, str]]:
    """(label, value) of each settings-like row: a view holding a title and, below it, the value it is set
    to ("Snooze time" / "10 minutes"), with nothing checkable in it."""
    out = []
    for row in screen.widgets():
        if row.checkable or not (row.clickable or any(x.clickable for x in row.walk())):
            continue
        inside = list(row.walk())
        # a list of two one-line items (a two-entry menu) is two rows, not a title and its value
        if any(x.checkable for x in inside) or sum(x.clickable for x in inside if x is not row) >= 2:
            continue
        texts = [x.text.strip() for x in inside if x.text.strip() and not x.editable and x is not row]
        if len(texts) == 2 and texts[0] != texts[1]:
            out.append((texts[0], texts[1]))
    return out


def _value_text(raw: str) -> str:
    """The value of "set X to Y": Y up to the next clause, quotes and a trailing period taken off."""
    value = _VALUE_END.sub("", raw).strip().strip(".").strip()
    for q in ("'", '"', "\u2018", "\u201c"):
        value = value.strip(q + {"'": "'", '"': '"', "\u2018": "\u2019", "\u201c": "\u201d"}[q])
    return value.strip()


def _value_goal(views: AtlasViews, intent: str, slots: Sequence[Slot]) -> Expectation | None:
    """"change the alignment to center": the row that says what X is set to reads Y, once more than the run
    first saw it there (the value was put there, not already shown); or, where no row shows the value, the
    choice Y is the one checked in the dialog or menu that offers it next to X."""
    m = _SET_TO.search(intent) or _SET_FOR.search(intent)
    if m is None:
        return None
    quoted = [s for s in slots if s.kind == "quoted" and s.name != "file" and s.start >= m.start("value")]
    value = quoted[0].value if quoted else _value_text(m.group("value"))
    what = _words(m.group("what")) - {"~not"}
    if not value or len(value) > 40 or not what:
        return None
    want_value = _words(value)
    best: tuple[float, str, str] | None = None
    for key, v in views.screens.items():
        for label, _shown_value in _row_values(v.example):
            share, hit = _matched(label, what)
            # the row says most of what X is ("Music" is no name for "the theme of the Music player")
            if share == 1.0 and 2 * hit >= len(what) and (best is None or hit > best[0]):
                best = (hit, key, label)
    if best is not None:
        _, key, label = best
        return Expectation("shown", value, where=key, new=True,
                           note=f"{label!r} reads {value!r} on the {views.screens[key].facts.place} (newly)")
    for key, v in views.screens.items():
        if not v.facts.transient:
            continue
        title_hit = _matched(v.facts.title, what | want_value)[1] if v.facts.title else 0
        for label, _ in _toggles(v.example):
            # the value alone ('Center'), or the value with the name of what is set ('3 columns' for "column
            # count to 3": a choice names its unit or its thing, never another value)
            named = _words(label)
            # opened by a control that names X, or says the intent's own verb with it ('Change view' for "change
            # the view from monthly to yearly")
            if want_value <= named <= want_value | what and (
                    title_hit or _opened_by(views, key, what | _words(m.group(0).split()[0]))):
                return Expectation("checked", label, where=key,
                                   note=f"{label!r} is the choice checked in the {v.facts.place}")
    return None


def _opened_by(views: AtlasViews, key: str, what: set[str]) -> bool:
    """Whether a tap whose label the intent's X names opens the screen `key` ("Alignment" opens its choices)."""
    for u, _, d in views.plan_graph.in_edges(key, data=True):
        t = views.transitions.get(d.get("transition"))
        if u != key and t is not None and t.facts.label and _matched(t.facts.label, what)[0] == 1.0:
            return True
    return False


def _sort_goal(views: AtlasViews, intent: str) -> list[Expectation]:
    """"sort by year in descending order": the option named is the one checked where sort options are offered
    (and the order named, when they offer one)."""
    m = _SORT.search(intent)
    if m is None:
        return []
    what = _words(m.group("what")) - {"~not"}
    order = (m.group("order") or "").strip()
    # The choice the intent names most fully, over every dialog or menu of choices, and where the order is
    # offered beside it: "sort contacts by 'Date created'" names 'Date created' (two words), not a 'Contacts'
    # tab choice elsewhere that shares the one word naming what is sorted.
    best: tuple[tuple[int, bool], str, str, dict[str, str]] | None = None
    for key, v in views.screens.items():
        if not v.facts.transient:
            continue
        options = _toggles(v.example)
        labels = {_norm_label(label): label for label, _ in options}
        hit = [label for label, _ in options if _words(label) and _words(label) <= what]
        if not hit:
            continue
        label = max(hit, key=lambda x: len(_words(x)))
        rank = (len(_words(label)), bool(order) and order.casefold() in labels)
        if best is None or rank > best[0]:
            best = (rank, key, label, labels)
    if best is None:
        return []
    _, key, label, labels = best
    place = views.screens[key].facts.place
    out = [Expectation("checked", label, where=key, note=f"{label!r} is checked in the {place}")]
    if order and order.casefold() in labels:
        out.append(Expectation("checked", labels[order.casefold()], where=key,
                               note=f"{labels[order.casefold()]!r} is checked in the {place}"))
    return out


def _mostly_names(texts: Sequence[str]) -> bool:
    """Whether most of `texts` are names (two letters or more), not days or numbers."""
    return bool(texts) and sum(bool(re.search(r"[^\W\d_]{2,}", t)) for t in texts) * 2 > len(texts)


def _named_list(views: AtlasViews, key: str) -> bool:
    """Whether the rows of a screen's lists are named things (titles with letters), not a grid of days or
    numbers: only such a list shows a name a form saved."""
    ex = _example(views, key)
    return ex is not None and _mostly_names([texts[0] for _, texts in _rows(ex)])


def _listed_names(view: ScreenView) -> list[str]:
    """The named things a screen lists: two or more texts side by side as views of one kind, most of them names,
    that the atlas saw change between observations of the screen (a strip of note tabs) — not a tab bar every
    observation shows alike, a toolbar's title beside a month's name, nor a grid of days."""
    out = []
    for w in view.example.widgets():
        kinds: dict[tuple[str, str], list[str]] = {}
        for c in w.children:
            if c.text.strip() and not c.editable:
                kinds.setdefault((c.class_name, c.resource_id), []).append(c.text.strip())
        out += [t for texts in kinds.values() if len(texts) >= 2 and _mostly_names(texts) and set(texts) & view.changing
                for t in texts]
    return out


def _shows_names(views: AtlasViews, key: str) -> bool:
    """Whether a screen lists named things (`_listed_names`)."""
    view = views.screens.get(key)
    return view is not None and bool(_listed_names(view))


def _shown_after(views: AtlasViews, test: TestCase) -> str:
    """Where a route with no list before its form shows what it made: the screen its last tap (the submit)
    leads to. Where that is the screen the route began on, only if that screen shows names (a notes app's tabs
    of notes do; a month view of days it returns to shows no name)."""
    if not test.steps or test.steps[-1].action.kind is ActionKind.TYPE:
        return ""
    if test.end == test.start and not _shows_names(views, test.end):
        return ""
    return test.end


def _created_name(typed: list[Slot]) -> str:
    """What a created thing is called: its first typed value, or the person's whole name ("Stephen Bob")."""
    parts = [s.value for s in typed if s.name in ("first_name", "last_name")]
    if len(parts) >= 2 and typed[0].name == "first_name":
        return " ".join(parts)
    return typed[0].value


# where an intent goes on to another act ("… and sort the items by creating date", ", type '123456'")
_NEXT_PART = re.compile(r"(?:,|\band\b|\bthen\b)\s*(?=(?:\w+\s+)?(?:call|send|type|add|create|delete|play|"
                        r"change|search|sort|turn|select|pick|write|text|share|export|print|remove|rename|enable|"
                        r"disable|edit|choose|start|stop|open|show|hide)\b)", re.I)


def derive_expectations(views: AtlasViews, intent: str, test: TestCase,
                        slots: Sequence[Slot] | None = None) -> tuple[Expectation, ...]:
    """What `test` must leave true for `intent` (module docstring), in terms of the atlas's screens.

    An intent of several acts ("create a checklist named 'test' and sort the items by creating date") is
    checked whole or not at all: when a later act implies nothing checkable, nothing is claimed (a verdict
    on the first act alone would pass a run that skipped the rest)."""
    whole = _derive(views, intent, test, slots)
    parts = _NEXT_PART.split(intent)
    if whole and len(parts) > 1:
        bare = TestCase(name=test.name, intent=intent, start=test.start, steps=())
        for part in parts[1:]:
            if part.strip() and not _derive(views, part, bare, None):
                return ()
    return whole


def _derive(views: AtlasViews, intent: str, test: TestCase,
            slots: Sequence[Slot] | None = None) -> tuple[Expectation, ...]:
    slots = list(slots) if slots is not None else extract_slots(intent)
    out: list[Expectation] = []
    typed = [s for s in slots if s.is_typed]
    if _CREATE.search(intent) and typed:
        listed = _list_before_form(views, test)
        # a list whose rows are days or numbers (a month view) does not show a name: nothing is claimed there
        where = (listed if _named_list(views, listed) else "") if listed else _shown_after(views, test)
        ex = _example(views, where) if where else None
        if ex is not None:
            place = views.screens[where].facts.place
            name = _created_name(typed)  # the first value names what is created; the others are its details
            # in the list it was opened from, one more row reads it; on the page saving leads to, it is shown
            out.append(Expectation("shown", name, where=where, new=bool(listed),
                                   note=f"a new {name!r} is shown in the {place}" if listed
                                   else f"{name!r} is shown on the {place} saving leads to"))
    # "change Bob's number from '222222' to '123…'" (a rename is a create, above): once saved, the new value shows
    # where saving leads (newly: the old one was there before)
    swapped = next((s for s in typed if s.replaces), None)
    if swapped is not None and not out:
        where = _shown_after(views, test)
        if where and _example(views, where) is not None:
            out.append(Expectation("shown", swapped.value, where=where, new=True,
                                   note=f"{swapped.value!r} is shown on the {views.screens[where].facts.place} saving "
                                        f"leads to, in place of {swapped.replaces!r}"))
    if _DELETE.search(intent):  # a row it names, else a named thing a screen lists ("delete the note 'Diary'": a tab)
        for key, label in (named_rows(views, intent) or named_rows(views, intent, listed=True))[:1]:
            out.append(Expectation("gone", label, where=key,
                                   note=f"{label!r} is no longer in the {views.screens[key].facts.place}"))
    toggle = _toggle_goal(views, intent)
    if toggle is not None and not typed:
        key, label, _ = toggle
        off = bool(OFF_CUES.search(intent))
        out.append(Expectation("unchecked" if off else "checked", label, where=key,
                               note=f"{label!r} is {'off' if off else 'on'} on the {views.screens[key].facts.place}"))
    if not out and not typed:
        value = _value_goal(views, intent, slots)
        if value is not None:
            out.append(value)
    if not out or typed:  # "create a checklist named 'test' and sort the items by creating date": both parts
        out += _sort_goal(views, intent)
    if out:
        # (what a form saves is checked where it shows; only choices are kept by a confirm of their own)
        out += _kept_by_confirm(views, [e for e in out if e.kind in ("checked", "unchecked") or not typed], intent)
    if not out:
        key = _open_goal(views, intent)
        if key:
            out.append(Expectation("screen", where=key, note=f"the {views.screens[key].facts.place} is open"))
    return tuple(out)


def _kept_by_confirm(views: AtlasViews, expect: list[Expectation], intent: str = "") -> list[Expectation]:
    """A choice made on a screen with its own Save or OK is kept only once that is pressed ("sort by year":
    the options of a Sort dialog checked and the dialog still open is no sort), and so is a value the
    intent says to save ("… and save it"): the run is expected to end where that confirm leads — or, where
    the atlas never saw it leave, on the screen that opens the choice's screen — and the choice is checked
    there by reopening its screen read-only."""
    out: list[Expectation] = []
    g = views.plan_graph
    for e in expect:
        view = views.screens.get(e.where)
        if e.kind not in ("shown", "checked", "unchecked") or view is None or not g.has_node(e.where):
            continue
        if not any(keeps(b) for b in view.facts.buttons) and not re.search(r"\bsave\b", intent, re.I):
            continue
        after = ""
        for _, t, d in g.out_edges(e.where, data=True):
            target = views.screens.get(t)
            if t != e.where and d["action"].kind is ActionKind.TAP and keeps(_step_label(views, e.where, d["action"])) \
                    and target is not None and not screen_errors(target.example):
                after = t
                break
        if not after:  # never seen confirmed: it returns to what opened it (past a menu that opened it)
            after, seen_keys = e.where, {e.where}
            said = _words(intent)
            for _ in range(3):
                # of the screens that open it, the one through a tap the intent names ("Sort by" for a sort)
                openers = sorted(((len(_words(_step_label(views, u, d["action"])) & said), d.get("count", 1), u)
                                  for u, _, d in g.in_edges(after, data=True)
                                  if u not in seen_keys and d["action"].kind is not ActionKind.BACK), reverse=True)
                if not openers:
                    after = ""
                    break
                after = openers[0][2]
                seen_keys.add(after)
                if not views.screens[after].facts.transient:
                    break
            if after and views.screens[after].facts.transient:
                after = ""
        if after and after in views.screens and not any(x.kind == "screen" and x.where == after for x in out):
            out.append(Expectation("screen", where=after, note=f"the {views.screens[after].facts.place} is open "
                                                               "(what was set is kept, not left unconfirmed)"))
    return out


# --- checking plans -----------------------------------------------------------------------------------


def _tapped(views: AtlasViews, key: str, selector: Selector) -> Widget | None:
    """The widget a step's selector tapped on the atlas's example of `key`. Rows share their id, so a row
    pick is the row where it was tapped (its bounds), not the first row with that id."""
    ex = _example(views, key)
    if ex is None:
        return None
    if _is_row_pick(selector) and selector.bounds is not None:
        x, y = selector.bounds.center
        under = [row for row, _ in _rows(ex) if row.bounds.contains(x, y)
                 and (not selector.resource_id or row.resource_id == selector.resource_id)]
        if under:
            return min(under, key=lambda r: r.bounds.area)
    try:
        return locate(selector, ex)
    except AppatlasError:
        return None


def _is_row_pick(selector: Selector) -> bool:
    return not (selector.text or selector.content_desc)


def rows_by_text(views: AtlasViews, test: TestCase, intent: str) -> TestCase:
    """Every row a test taps is picked by its text, not by its position in the list: the row the intent
    names by text is picked by that text, any other row by the text it showed in the atlas (its first
    line: "Text note", not the first row of `note_types`). A list that grows or reorders cannot make
    the test tap another row, and the YAML says which row it means."""
    names = dict(named_rows(views, intent))
    steps = list(test.steps)
    here = test.start
    for i, step in enumerate(steps):
        a = step.action
        if a.kind in (ActionKind.TAP, ActionKind.LONG_TAP) and a.target is not None and _is_row_pick(a.target):
            w = _tapped(views, here, a.target)
            texts = [x.text.strip() for x in w.walk() if x.text.strip() and not x.editable] if w is not None else []
            label = names.get(here)
            if label and label not in texts and _leads_alike(views, here, label, step.expect):
                steps[i] = replace(step, action=replace(a, target=Selector(text=label)),
                                   note=(step.note + "; " if step.note else "") + f"the row {label!r} by its text")
            elif w is not None and texts and _is_row(views, here, w) and _unique_text(views, here, texts[0]):
                steps[i] = replace(step, action=replace(a, target=Selector(text=texts[0])),
                                   note=(step.note + "; " if step.note else "") + f"the row {texts[0]!r} by its text")
        here = step.expect or here
    return replace(test, steps=tuple(steps))


def _leads_alike(views: AtlasViews, key: str, label: str, target: str) -> bool:
    """Whether the row `label` of screen `key` leads where the route's row led (`target`), or the atlas never
    saw it tapped: rows of one list then open the same screen for another item. A row that opens another
    screen ("Checklist" beside "Text note") is another choice, and the route is not the intent's."""
    outcomes = {t for _, t, d in views.plan_graph.out_edges(key, data=True)
                if d["action"].kind is ActionKind.TAP and d["action"].target is not None
                and _row_label(views, key, d["action"].target) == label}
    return not outcomes or target in outcomes


def _is_row(views: AtlasViews, key: str, widget: Widget) -> bool:
    ex = _example(views, key)
    return ex is not None and any(row is widget for row, _ in _rows(ex))


def _unique_text(views: AtlasViews, key: str, text: str) -> bool:
    """Whether exactly one view of the screen reads `text` (so a pick by that text is the same row)."""
    ex = _example(views, key)
    return ex is not None and sum(1 for w in ex.widgets() if w.text.strip() == text and not w.editable) == 1


def plan_problems(views: AtlasViews, test: TestCase, intent: str, slots: Sequence[Slot] | None = None) -> list[str]:
    """Why `test` cannot realise `intent`, one reason each; empty when it can."""
    slots = list(slots) if slots is not None else extract_slots(intent)
    problems: list[str] = []
    passes = set(_screens_of(views, test))
    typed_any = any(s.is_typed for s in slots)
    toggle = _toggle_goal(views, intent) if not typed_any else None
    for e in derive_expectations(views, intent, test, slots):
        # a switch the intent names and a screen it opens are places a plan must go; a choice in a dialog
        # is reached through states the atlas keys apart, so it is not asked of the route
        goal = e.kind == "screen" or (toggle is not None and e.kind in ("checked", "unchecked")
                                      and (e.where, e.text) == (toggle[0], toggle[1]))
        if goal and e.where not in passes:
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
        if s.is_typed and v not in typed_texts:
            problems.append(f"it never types {s.value!r}, which the intent names")
        elif not s.is_typed and not any(re.search(rf"(^|\W){re.escape(v)}(\W|$)", t) for t in typed_texts | picked):
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
        elif label and s.action.target is not None and s.action.target.text and s.action.target.text != label \
                and s.action.target.text in _row_titles(views, here):
            problems.append(f"it picks the row {s.action.target.text!r} where the intent names {label!r}")
        here = s.expect or here
    if toggle is not None and toggle[2] is not None:
        key, label, _ = toggle
        want = _norm_label(label)
        flips = any(s.action.target is not None and _norm_label(s.action.target.text or s.action.target.content_desc)
                    == want for s in test.steps) or any(
            e[0] == key and views.transitions.get(views.plan_graph.edges[e].get("transition")) is not None
            and _norm_label(views.transitions[views.plan_graph.edges[e]["transition"]].facts.label) == want
            for e in _edges_of(views, test))
        if not flips:
            problems.append(f"it never touches {label!r}, which the intent switches")
    if _DELETE.search(intent) and named_rows(views, intent) and not _deletes(views, test):
        problems.append("it never takes a Delete or Remove, which the intent asks for")
    unsaved = _unsaved(views, test, intent)
    if unsaved:
        problems.append(unsaved)
    return problems


def _changes(action: object) -> bool:
    a = action  # a typed text, or a tap on a switch / checkbox
    t = getattr(a, "target", None)
    return a.kind is ActionKind.TYPE or (a.kind is ActionKind.TAP and t is not None and any(
        c in view_kind(t.class_name).lower() for c in ("switch", "checkbox", "togglebutton")))


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
            if _DELETE.search(intent):  # then the Delete that item's screen offers, and its confirmation
                waypoints += [Waypoint(edge=e) for e in _delete_edges(views, edges[0][1])]
    typed = [s for s in slots if s.is_typed]
    toggle = _toggle_goal(views, intent) if not typed else None
    if toggle is not None and toggle[2] is not None:
        waypoints.append(Waypoint(edge=toggle[2]))
        keep = _submit(views, toggle[0], intent)
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


def _step_label(views: AtlasViews, key: str, action: object) -> str:
    t = getattr(action, "target", None)
    return (t.text or t.content_desc or _row_label(views, key, t)) if t is not None else ""


def _deletes(views: AtlasViews, test: TestCase) -> bool:
    """Whether a step of `test` takes an action labelled Delete or Remove (a button, an icon, a menu row)."""
    here = test.start
    for s in test.steps:
        if s.action.kind in (ActionKind.TAP, ActionKind.LONG_TAP) and _DELETE.search(_step_label(views, here, s.action)):
            return True
        here = s.expect or here
    return False


def _delete_edges(views: AtlasViews, item: str) -> list[Edge]:
    """From an item's screen, the tap labelled Delete or Remove, and the one that confirms it when it opens
    a dialog (its own Delete, or OK): the way the atlas saw that item deleted."""
    g = views.plan_graph
    out: list[Edge] = []
    for _, t, k, d in g.out_edges(item, keys=True, data=True):
        if t != item and d["action"].kind is ActionKind.TAP and _DELETE.search(_step_label(views, item, d["action"])):
            out.append((item, t, k))
            break
    if out and views.screens.get(out[0][1]) is not None and views.screens[out[0][1]].facts.kind == "dialog":
        dialog = out[0][1]
        for _, t, k, d in g.out_edges(dialog, keys=True, data=True):
            label = _step_label(views, dialog, d["action"])
            if t != dialog and d["action"].kind is ActionKind.TAP and (
                    _DELETE.search(label) or (_words(label) and _words(label) <= _SUBMIT)):
                out.append((dialog, t, k))
                break
    return out


def _row_titles(views: AtlasViews, key: str) -> set[str]:
    ex = _example(views, key)
    return {texts[0] for _, texts in _rows(ex)} if ex is not None else set()


def _row_label(views: AtlasViews, key: str, selector: Selector | None) -> str:
    if selector is None:
        return ""
    w = _tapped(views, key, selector)
    if w is None:
        return ""
    texts = [x.text.strip() for x in w.walk() if x.text.strip()]
    return texts[0] if texts else ""


def route_effects(views: AtlasViews, test: TestCase) -> TestCase:
    """A test whose route deletes a row (picks the row, then takes a Delete or Remove, and comes back to the
    list) also expects that row gone from the list, and picks it by its text: the route's point is a
    deletion, and a deletion that removes another row, or none, is a bug it can see. Other tests are
    returned as they are."""
    steps = list(test.steps)
    here = test.start
    picked: tuple[str, str, int] | None = None  # (list screen, row text, step index)
    found: list[tuple[str, str, int, int]] = []  # (list screen, row text, its pick, the delete step)
    for i, s in enumerate(steps):
        a = s.action
        if a.kind in (ActionKind.TAP, ActionKind.LONG_TAP) and a.target is not None:
            view = views.screens.get(here)
            if _is_row_pick(a.target) and view is not None and not view.facts.transient:
                w = _tapped(views, here, a.target)
                texts = [x.text.strip() for x in w.walk() if x.text.strip() and not x.editable] if w is not None else []
                if w is not None and texts and _is_row(views, here, w) and _unique_text(views, here, texts[0]):
                    picked = (here, texts[0], i)
            label = a.target.text or a.target.content_desc or _row_label(views, here, a.target)
            if picked is not None and label and _DELETE.search(label) and picked[0] != here:
                found.append((*picked, i))
                picked = None
        here = s.expect or here
    ends = [test.start] + [s.expect for s in steps]
    kept = [(key, text, i) for key, text, i, j in found if key in ends[j + 1:]]  # back on the list
    if not kept:
        return test
    expect = list(test.expect)
    for key, text, i in kept:
        steps[i] = replace(steps[i], action=replace(steps[i].action, target=Selector(text=text)),
                           note=(steps[i].note + "; " if steps[i].note else "") + f"the row {text!r} by its text")
        expect.append(Expectation("gone", text, where=key,
                                  note=f"{text!r} is no longer in the {views.screens[key].facts.place}"))
    return replace(test, steps=tuple(steps), expect=tuple(expect))
