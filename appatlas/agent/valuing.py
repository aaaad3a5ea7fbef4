"""How an option is valued, piece by piece: the helpers of `appatlas.agent.policy`.

    submits / confirming   the button that ends a form or a dialog
    is_keypad / digit      a dial pad, and the digit a key enters
    precision              how much of a label the matched words are
    pick_value             how well a label names a slot
    field_fit / text_for   which field a value goes into, and what exactly is typed there
    same_option            whether a recorded action is this option (for the graph and for memory)
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from appatlas.agent.options import Option
from appatlas.agent.progress import names_slot
from appatlas.graph.inputs import field_kind
from appatlas.rag.intent import Intent, Slot, words
from appatlas.rag.text import CONFIRM_LABELS
from appatlas.types import Action, ActionKind, Screen, view_kind

__all__ = ["confirming", "digit", "field_fit", "is_keypad", "pick_value", "precision", "same_option", "submits",
           "text_for"]


def submits(o: Option) -> bool:
    """A button that ends a form or a dialog (OK, Save, Done…), whatever kind of view draws it."""
    return o.positive or (o.kind is ActionKind.TAP and o.label.strip().lower() in CONFIRM_LABELS)


def confirming(opts: Sequence[Option], *, form: bool = True) -> Option | None:
    """The button that submits this screen: a positive one (OK, Save, …), else — on a form that was
    typed into — its only plain button ("Unlock", "Add task")."""
    positive = next((o for o in opts if o.positive and not o.negative), None)
    if positive is not None:
        return positive
    if form:
        buttons = [o for o in opts if o.kind is ActionKind.TAP and o.widget is not None and not o.negative
                   and view_kind(o.widget.class_name) == "Button"]
        if len(buttons) == 1:
            return buttons[0]
    # A button named for submitting by its id ("thread_send_message" under an icon that reads 'SMS', the
    # print spooler's "print_button" that reads 'Save to PDF').
    named = [o for o in opts if o.kind is ActionKind.TAP and o.widget is not None and not o.negative
             and _SUBMIT_ID.search(o.widget.resource_id.rsplit("/", 1)[-1])]
    return named[0] if len(named) == 1 else None


_SUBMIT_ID = re.compile(r"(^|_)(send|save|submit|confirm|apply|done|print)(_|$)")
_FILE = re.compile(r"^[\w\- ]+\.[A-Za-z0-9]{2,4}$")
DIGITS = {w: str(i) for i, w in enumerate("zero one two three four five six seven eight nine".split())}


def is_keypad(screen: Screen) -> bool:
    """Whether the screen shows a key for every digit (a dial pad), not just some numbers (a date picker)."""
    return len({digit(w.label) for w in screen.widgets() if digit(w.label)}) == 10


def digit(label: str) -> str:
    """The digit a keypad key enters ('7', 'Seven'), or ''."""
    label = label.strip().lower()
    return label if len(label) == 1 and label.isdigit() else DIGITS.get(label, "")


def precision(label: str, matched: list[str]) -> float:
    """Between 0.5 and 1: how much of the label the matched words are ('Light' beats 'Auto light / dark')."""
    n = len(words(label))
    return 0.5 + 0.5 * min(1.0, len(matched) / n) if n else 1.0


def pick_value(slot: Slot, label: str) -> float:
    return names_slot(slot, label)


def field_fit(o: Option, slot: Slot, intent: Intent) -> float:
    """How well a field suits a slot (0 = not at all)."""
    assert o.widget is not None
    kind = field_kind(o.widget)
    label = _field_words(o)
    cue_fits = bool(slot.cue) and slot.cue in label
    if kind == "search" and not re.search(r"\b(search|find|look for|filter)", intent.text, re.IGNORECASE):
        return 0.0  # a search box takes what the intent says to search for, nothing else
    if kind == "search" and slot.cue == "search":
        return 1.5  # "search for the DCIM folder": whatever the value is, it goes here
    if _FILE.match(slot.text) and re.search(r"file|name", label):
        return 1.0  # "export to test.ics": the file name field, whatever default it holds
    if re.search(r"[\d_]", o.widget.text) and not cue_fits:
        return 0.0  # a field holding content (a date, a file name) is rewritten only when named
    if slot.kind == "name":
        if kind != "name":
            return 0.0
        return 1.0 if len(slot.text.split()) > 1 or not re.search(r"\b(first|given|sur|last|family)", label) else 0.8
    if slot.kind == "email":
        return 1.0 if kind == "email" else 0.4
    if slot.kind == "number" or slot.text.replace("+", "").isdigit():
        fit = 1.0 if kind in ("phone", "number") else 0.6 if kind in ("text", "search") else 0.3
    else:
        fit = 0.9 if kind in ("name", "text", "search") else 0.6
    return fit + (0.5 if cue_fits or ("search" in label and "search" in slot.cue) else 0.0)


def _field_words(o: Option) -> str:
    """What names a field: its label, hint and resource id (a filled field's label is its content)."""
    w = o.widget
    rid = w.resource_id.rsplit("/", 1)[-1].replace("_", " ") if w is not None else ""
    return " ".join((o.label, w.hint if w is not None else "", rid)).lower()


def text_for(slot: Slot, o: Option) -> str:
    """The text to type: a two-word name splits over first-name and surname fields."""
    parts = slot.typed.split()
    label = _field_words(o)
    if slot.kind == "name" and len(parts) > 1:
        if re.search(r"\b(first|given)\b", label):
            return parts[0]
        if re.search(r"(surname|last name|family)", label):
            return " ".join(parts[1:])
    return slot.typed


def same_option(action: Action, o: Option) -> bool:
    """Whether a recorded action is this option (same kind, same element by signature and words or place)."""
    if o.kind is ActionKind.BACK:
        return action.kind is ActionKind.BACK
    if action.target is None or o.widget is None:
        return False
    kinds = {o.kind} | ({ActionKind.TAP} if o.kind is ActionKind.TYPE else set())
    if action.kind not in kinds:
        return False
    t, w = action.target, o.widget
    candidates = [w] + ([o.receiver] if o.receiver is not None else [])
    for c in candidates:
        if t.class_name and t.class_name != c.class_name or t.resource_id != c.resource_id:
            continue
        if (t.content_desc and t.content_desc == c.content_desc) or (t.text and t.text == c.text and
                                                                      action.kind is not ActionKind.TYPE):
            return True
        if t.bounds is not None and t.bounds == c.bounds:
            return True
    return False

