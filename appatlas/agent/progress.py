"""What has been done towards an intent: the actions taken, and which of the intent's words and
slots they have covered. The policy values options by what they would add to this; the end
oracle says "done" only when nothing worth doing is left, so an intent is done by its actions,
never because a screen looks like the end.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from appatlas.agent.options import Option, is_dialog, options, shown_texts
from appatlas.devices.base import locate
from appatlas.errors import SelectorNotFound
from appatlas.graph.fingerprint import structure_key
from appatlas.rag.intent import Intent, Slot, label_words, same_term, words
from appatlas.rag.text import keeps
from appatlas.types import Action, ActionKind, Screen, view_kind

__all__ = ["Progress", "Taken", "backed_out_of", "names_slot", "taken", "wrong_turn"]


@dataclass(frozen=True)
class Taken:
    """One action already taken, as the agent remembers it."""

    kind: ActionKind
    label: str = ""
    text: str = ""  # typed text
    title: str = ""  # the element's name (a row's first line); what acting on it covers
    screen: str = ""  # structure key of the screen it was taken on
    changed: bool = False  # it typed, or flipped a toggle / picked a radio
    confirm: bool = False  # it pressed a confirming button (OK, Save, Yes, …)
    toggles: tuple[tuple[str, bool, bool], ...] = ()  # (label, checked, radio) of the screen's toggles then
    dialog: bool = False  # it was taken on a dialog
    button: bool = False  # it pressed a plain button (a form's submit, whatever it says)
    shown: frozenset[str] = frozenset()  # the texts the screen showed (lower case), fields' contents included
    fields: frozenset[str] = frozenset()  # what its text fields held (lower case)
    texts: frozenset[str] = frozenset()  # every text the screen showed, lower case (did a scroll move anything?)
    keeps: bool = False  # the screen has a button that keeps what it holds (Save, OK): a toggle there waits for it

    def describe(self) -> str:
        if self.kind is ActionKind.TYPE:
            return f"type '{self.text}' into '{self.label}'"
        if self.kind is ActionKind.BACK:
            return "press back"
        if self.kind is ActionKind.SCROLL:
            return f"scroll in '{self.label}'"
        return f"tap '{self.label}'"


def taken(action: Action, screen: Screen) -> Taken:
    """Remember `action` as taken on `screen` (its element's label and what kind of step it was)."""
    key = structure_key(screen)
    toggles = tuple((o.label, o.checked, o.radio) for o in options(screen, scroll=False) if o.checkable and o.label)
    dialog = is_dialog(screen)
    shown = frozenset(shown_texts(screen, fields=True))  # what the screen shows as itself, fields' contents too
    fields = frozenset(w.text.strip().lower() for w in screen.widgets() if w.editable and w.text.strip())
    kept = _keeps(screen)
    if action.target is None:
        return Taken(action.kind, screen=key, toggles=toggles, dialog=dialog, shown=shown, fields=fields,
                     texts=all_texts(screen), keeps=kept)
    try:
        widget = locate(action.target, screen)
    except SelectorNotFound:
        return Taken(action.kind, label=action.target.text or action.target.content_desc, text=action.text, screen=key,
                     toggles=toggles, dialog=dialog, shown=shown, fields=fields, texts=all_texts(screen), keeps=kept)
    opt = _option_for(widget, screen)
    label = opt.label if opt is not None else (widget.label or "")
    title = opt.name if opt is not None else label
    checkable = opt.checkable if opt is not None else widget.checkable
    positive = opt.positive if opt is not None else False
    button = action.kind is ActionKind.TAP and view_kind(widget.class_name) == "Button" and not checkable
    return Taken(action.kind, label=label, text=action.text, screen=key, title=title,
                 changed=action.kind is ActionKind.TYPE or checkable, confirm=positive, toggles=toggles, dialog=dialog,
                 button=button, shown=shown, fields=fields, texts=all_texts(screen), keeps=kept)


def _keeps(screen: Screen) -> bool:
    """Whether a screen has a button that keeps what it holds (`appatlas.rag.text.keeps`: Save, OK, Done, Apply),
    as the planner's expectations read it: a switch flipped there is kept once that is pressed."""
    return any(o.kind is ActionKind.TAP and o.widget is not None and view_kind(o.widget.class_name) == "Button"
               and keeps(o.label) for o in options(screen, scroll=False))


def all_texts(screen: Screen) -> frozenset[str]:
    """Every text `screen` shows, lower case: the same before and after a scroll that moved nothing."""
    return frozenset(t.strip().lower() for t in screen.texts)


def shows_value(texts: frozenset[str], value: str) -> bool:
    """Whether `texts` (`all_texts` of a screen) hold `value` — numbers as a clock writes them ("05:00")."""
    want = value.strip().lower().lstrip("0")
    return any(t.lstrip("0") == want for t in texts)


def _option_for(widget, screen: Screen) -> Option | None:  # noqa: ANN001 - a Widget
    opts = options(screen, scroll=False)
    for o in opts:
        if o.widget is widget or o.receiver is widget:
            return o
    for o in opts:  # the finger hit a label inside the option's row
        if o.receiver is not None and any(d is widget for d in o.receiver.walk()):
            return o
    return None


class Progress:
    """The intent's words and slots covered by `history`."""

    def __init__(self, intent: Intent, history: Sequence[Taken], *, current: str = "") -> None:
        self.intent = intent
        self.history = list(history)
        # Acting on a row covers what it is (its title), not the value it shows ("quiet hours" in the
        # subtitle of "Notifications" is still to be done on the next screen).
        acted = [w for t in history if t.kind is not ActionKind.BACK for w in label_words(t.title or t.label)]
        acted += [w for t in history for w in words(t.text)]
        # A toggle seen already as the intent wants it needs no action: its words count as done. A
        # checked radio button is a choice made; a checkbox must name at least half of the intent, so
        # a neighbour sharing one word does not count, and the intent must ask for a state (on / off):
        # "set the snooze time to 5 minutes" is not done by "Always use same snooze time" being on.
        for t in history:
            for label, on, radio in t.toggles:
                ws = label_words(label)
                hits = [x for x in intent.terms if any(same_term(x, w) for w in ws)]
                if radio and on and hits:
                    acted += ws
                elif not radio and intent.wants and on == (intent.wants == "on") and hits \
                        and 2 * len(hits) >= len(intent.terms):
                    acted += ws
        self.covered = {t for t in intent.terms if any(same_term(t, w) for w in acted)}
        # "dial pad" in the intent is "Dialpad" on what was acted on.
        for a, b in zip(intent.terms, intent.terms[1:], strict=False):
            if a + b in acted:
                self.covered |= {a, b}
        typed = [t.text.lower() for t in history if t.kind is ActionKind.TYPE and t.text]
        self.typed = {s.text for s in intent.slots if any(_typed_as(s, x) for x in typed)
                      or (s.kind == "name" and all(p in typed for p in s.typed.lower().split()))}
        self.typed |= {s.text for s in intent.slots if s.kind == "number" and _keyed(s, history)}
        labels = [t.label.lower() for t in history if t.kind in (ActionKind.TAP, ActionKind.LONG_TAP)]
        self.picked = {s.text for s in intent.slots if any(_names(s, lab) for lab in labels)}
        # A name that is also a word of what was acted on ('Sunday' of "Start week on Sunday") is done too.
        titles = [w for t in history if t.kind in (ActionKind.TAP, ActionKind.LONG_TAP)
                  for w in label_words(t.title or t.label)]
        for s in intent.slots:
            ws = words(s.text)
            if s.kind == "name" and ws and all(any(same_term(x, w) for w in titles) for x in ws):
                self.picked.add(s.text)
        # "open / play / check X" is done by picking X.
        if self.picked:
            self.covered |= {t for t in intent.terms if t in _OPENING}
        # "from A to B": A is done once B is typed (the field that held A holds B now).
        for i, s in enumerate(intent.slots):
            if s.cue == "from" and any(b.text in self.typed for b in intent.slots[i + 1:]):
                self.picked.add(s.text)
        # The words describing a value ("mobile number 555…") are done when the value is.
        for s in intent.slots:
            if s.text in self.typed or s.text in self.picked:
                # … but "a checklist named 'X'" is not made a checklist by typing its name.
                kinds = (() if s.cue in _NAMING else s.context) + ((s.kind_word,) if s.kind_word else ())
                if s.text in self.typed:
                    kinds += tuple(_TYPING)  # "text to the group 'Hi'": typing it is the texting
                self.covered |= {t for t in intent.terms if any(same_term(t, c) for c in kinds)}
        # Confirming a dialog that shows a value ("New timer 05:00", OK) sets it, and creates what was added.
        for t in history:
            if t.confirm and t.dialog:
                done = {s.text for s in intent.slots if shows_value(t.texts, s.text)}
                if done:
                    self.picked |= done
                    self.covered |= {x for x in intent.terms if any(same_term(x, c) for c in _CREATING)}
        self.current = current

    def uncovered(self) -> list[str]:
        return [t for t in self.intent.terms if t not in self.covered]

    def done_with(self, slot: Slot) -> bool:
        return slot.text in self.typed or slot.text in self.picked

    @property
    def actions(self) -> int:
        return len(self.history)

    def pending_change(self) -> bool:
        """A change (typing, a toggle) was made recently and no confirming button was pressed since."""
        # A tap that left the screen as it was (a row picked in a list, a key of a keypad) changed its form.
        after = [t.screen for t in self.history[1:]] + [self.current]
        last_change = max((i for i, t in enumerate(self.history)
                           if t.changed or (t.kind is ActionKind.TAP and t.screen == after[i] and self.current)),
                          default=-1)
        last_confirm = max((i for i, t in enumerate(self.history) if t.confirm or t.button), default=-1)
        return last_change > last_confirm and last_change >= len(self.history) - 4

    def last_commit(self, *, dialog_now: bool) -> int:
        """Index of the latest step that committed a change, or -1.

        A commit is a confirming or submitting button; a toggle outside a dialog (saved at once, unless its
        screen has a button that keeps it: then that button); a
        choice in a dialog that closed it; the pick of an item the intent names.
        """
        dialog_after = [t.dialog for t in self.history[1:]] + [dialog_now]
        last = -1
        for i, t in enumerate(self.history):
            if t.confirm or (t.button and (t.dialog or any(x.changed for x in self.history[:i]))):
                last = i  # a plain button commits on a dialog or after a change (a form's submit), else it navigates
            elif t.changed and t.kind is not ActionKind.TYPE and not (t.dialog and dialog_after[i]) and not t.keeps:
                last = i  # a toggle is saved at once, unless its screen has its own Save / OK
            elif t.kind in (ActionKind.TAP, ActionKind.LONG_TAP) and not t.changed and any(_names(s, t.label.lower())
                                                                          for s in self.intent.slots):
                last = i
        return last

    def last_confirm(self) -> int:
        """Index of the latest confirming or submitting button pressed, or -1."""
        return max((i for i, t in enumerate(self.history) if t.confirm or t.button), default=-1)

    def last_change(self) -> int:
        """Index of the latest step that typed or flipped something, or -1."""
        return max((i for i, t in enumerate(self.history) if t.changed), default=-1)

    def mentioned(self, slot: Slot) -> bool:
        """Whether the slot was typed, or an acted-on label carries it at all ('Use 24-hour time format')."""
        if slot.text in self.typed or slot.text in self.picked or any(names_slot(slot, t.label) > 0 for t in self.history
                                          if t.kind in (ActionKind.TAP, ActionKind.LONG_TAP)):
            return True
        # A value a screen we acted on already showed: a field prefilled with it, the note open by that name.
        return any(slot.typed.lower() in (t.shown if slot.role != "input" else t.fields) for t in self.history)

    def typed_last(self) -> bool:
        """Whether the latest change was typing (a form to submit) rather than a toggle (saved at once)."""
        changes = [t for t in self.history if t.changed]
        return bool(changes) and changes[-1].kind is ActionKind.TYPE

    def repeats(self, label: str, kind: ActionKind) -> int:
        """How often this was already done (same label, same kind) earlier in the run."""
        return sum(t.label == label and t.kind is kind for t in self.history)


def wrong_turn(progress: Progress, covered: set[str] | None = None) -> Taken | None:
    """The plain tap a tester would back out of, when the run is stuck: the last tap, if it and what followed it
    (scrolls only, so one back returns to its screen) advanced nothing of the intent — no word covered (`covered`:
    the words done as the current screen shows them, such as a switch already as wanted; default what was acted on),
    nothing typed or picked — and it changed nothing, confirmed nothing and went to another screen. None once anything
    was backed out of in this run (once per run: a second wrong turn is not searched for)."""
    history = progress.history
    if not history or any(t.kind is ActionKind.BACK for t in history):
        return None
    i = max((i for i, t in enumerate(history) if t.kind is not ActionKind.SCROLL), default=-1)
    t = history[i] if i >= 0 else None
    if t is None or t.kind is not ActionKind.TAP or t.changed or t.confirm or t.screen == progress.current:
        return None
    before = Progress(progress.intent, history[:i])
    now = progress.covered if covered is None else covered
    if (before.covered, before.typed, before.picked) != (now, progress.typed, progress.picked):
        return None
    return t


def backed_out_of(history: Sequence[Taken], current: str) -> Taken | None:
    """The tap the last step (a back) undid, when that back returned to the tap's screen (scrolls between them)."""
    if not history or history[-1].kind is not ActionKind.BACK:
        return None
    before = [t for t in history[:-1] if t.kind is not ActionKind.SCROLL]
    return before[-1] if before and before[-1].kind is ActionKind.TAP and before[-1].screen == current else None


def _typed_as(slot: Slot, typed: str) -> bool:
    want = slot.typed.lower()
    return typed == want or (slot.kind == "name" and len(want.split()) == 1 and typed in want.split())


def _names(slot: Slot, label: str) -> bool:
    """Whether an element's label names the slot ('30 minutes' names 30, 'Bob' names Bob, a track row
    '0 test1 00:10' names 'test1'; 'Max reminder duration 5 minutes' does not name 5)."""
    named = names_slot(slot, label)
    return named >= 0.7 or (named > 0 and slot.kind == "quoted" and not re.fullmatch(r"[\d:.,\s]+", slot.text))


def names_slot(slot: Slot, label: str) -> float:
    """1 if `label` is the slot, 0.7 if it starts with it as a word ('30 minutes' for 30), 0.3 if it holds
    it as a word elsewhere ('Max reminder duration 5 minutes' for 5), else 0."""
    want, have = slot.text.lower(), label.lower().strip()
    if not have:
        return 0.0
    if have == want:
        return 1.0
    m = re.search(rf"(?<![\w@.]){re.escape(want)}(?![\w@])", have)
    if m is None:
        return 0.0
    if m.start() > 0:
        return 0.3
    # "1 minute" for "… to 1 minute": the value with the unit the intent gives is the item itself.
    rest = words(have[m.end():])
    return 0.9 if slot.kind_word and rest and same_term(rest[0], slot.kind_word) else 0.7


_NAMING = frozenset({"named", "called", "titled"})
_TYPING = frozenset({"type", "text", "write", "enter"})
_CREATING = frozenset({"add", "create", "make"})
_OPENING = frozenset({"open", "play", "view", "launch", "start", "listen", "check", "see", "watch"})
_DIGITS = {w: str(i) for i, w in enumerate("zero one two three four five six seven eight nine".split())}


def _keyed(slot: Slot, history: Sequence[Taken]) -> bool:
    """A number entered on a keypad: the last taps of digit keys spell it."""
    keys = ""
    for t in reversed(history):
        label = t.label.strip().lower()
        digit = label if len(label) == 1 and label.isdigit() else _DIGITS.get(label, "")
        if t.kind is ActionKind.TAP and digit:
            keys = digit + keys
        else:
            break
    digits = slot.text.replace(" ", "")
    return len(digits) > 1 and keys.endswith(digits)
