"""What a tester can do on a screen, described the way a person reads it.

An *option* is one actionable element: a button, a row, a toggle, a field, a scrollable list, or
the back key. A clickable row usually carries no text of its own; its label is the text of the
views inside it, and the element an action names is the one carrying that label (the text view),
because that is the element a person points at and the one recorders such as DroidBot name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from appatlas.devices.base import selector_for
from appatlas.graph.fingerprint import SYSTEM_CHROME, root_windows
from appatlas.rag.text import CONFIRM_LABELS
from appatlas.types import Action, ActionKind, Screen, Widget, view_kind

__all__ = ["BACK_OPTION", "Option", "describe_option", "is_dialog", "options", "shown_texts", "widget_label"]

POSITIVE_IDS = ("android:id/button1",)
NEGATIVE_IDS = ("android:id/button2", "android:id/button3")
DESTRUCTIVE_WORDS = frozenset({"delete", "remove", "clear", "discard", "erase"})
_LISTS = ("ListView", "RecyclerView", "GridView")
CANCEL_WORDS = frozenset({"cancel", "no", "not now", "later", "dismiss", "close", "skip", "deny", "don't allow",
                          "never", "no thanks"})


@dataclass(frozen=True)
class Option:
    """One thing that can be done on a screen."""

    kind: ActionKind
    widget: Widget | None  # the element the action names (None for back)
    label: str = ""  # what a person reads on it
    receiver: Widget | None = None  # the view that gets the touch (a row around a label)
    in_dialog: bool = False
    direction: str = ""  # for scroll
    title: str = ""  # a row's first line ("Snooze time" of "Snooze time 10 minutes"); else the label

    @property
    def name(self) -> str:
        """What the option is (its title); the rest of a row's label describes its current value."""
        return self.title or self.label

    @property
    def checkable(self) -> bool:
        return any(w is not None and w.checkable for w in (self.widget, self.receiver))

    @property
    def checked(self) -> bool:
        return any(w is not None and w.checkable and w.checked for w in (self.widget, self.receiver))

    @property
    def editable(self) -> bool:
        return self.kind is ActionKind.TYPE

    @property
    def positive(self) -> bool:
        """A confirming button: a dialog's positive button, or a button that says OK, Save, Yes, …"""
        if self.kind is not ActionKind.TAP or self.widget is None:
            return False
        if self.widget.resource_id in POSITIVE_IDS or (self.receiver and self.receiver.resource_id in POSITIVE_IDS):
            return True
        # Only a button confirms: a menu item that reads "Print" or "Delete" is a choice, not an answer; and
        # a "Delete" button outside a dialog is the action itself, not the answer to one.
        label = self.label.strip().lower()
        if label in DESTRUCTIVE_WORDS and not self.in_dialog:
            return False
        return view_kind(self.widget.class_name).endswith("Button") and label in CONFIRM_LABELS

    @property
    def radio(self) -> bool:
        return any(w is not None and w.checkable and "Radio" in w.class_name for w in (self.widget, self.receiver))

    @property
    def negative(self) -> bool:
        if self.widget is None:
            return False
        return self.widget.resource_id in NEGATIVE_IDS or self.label.strip().lower() in CANCEL_WORDS

    def action(self, screen: Screen, *, text: str = "") -> Action:
        """The Action that does this on `screen` (typing `text` for a field)."""
        if self.kind is ActionKind.BACK or self.widget is None:
            return Action(ActionKind.BACK)
        target = selector_for(self.widget, screen)
        if self.kind is ActionKind.SCROLL:
            return Action(ActionKind.SCROLL, target=target, direction=self.direction or "down")
        if self.kind is ActionKind.TYPE and text:
            return Action(ActionKind.TYPE, target=target, text=text)
        if self.kind is ActionKind.TYPE:
            return Action(ActionKind.TAP, target=target)  # nothing to type: focusing the field is a tap
        return Action(self.kind, target=target)


BACK_OPTION = Option(ActionKind.BACK, None, "go back")


def widget_label(w: Widget) -> str:
    """A widget's own words: text, else content description, else hint, else its resource id's name."""
    if w.label:
        return w.label.strip()
    name = w.resource_id.rsplit("/", 1)[-1]
    return re.sub(r"[_\-]+", " ", name).strip()


def is_dialog(screen: Screen) -> bool:
    """Whether the app's top window is smaller than the screen (a dialog or a popup menu)."""
    windows = [w for w in root_windows(screen) if w.package not in SYSTEM_CHROME]
    if not windows:
        return False
    top = windows[-1].bounds
    return top.width < screen.width * 0.98 or top.height < screen.height * 0.9


def _texts_inside(w: Widget, limit: int = 3) -> list[Widget]:
    """Descendants carrying words (not w itself), in reading order, stopping at nested actionable views."""
    out: list[Widget] = []
    stack = list(reversed(w.children))
    while stack and len(out) < limit:
        node = stack.pop()
        if node.clickable or node.editable or node.checkable:
            continue  # a nested control is an option of its own
        if node.text.strip() or node.content_desc.strip():
            out.append(node)
        stack.extend(reversed(node.children))
    return out


def options(screen: Screen, *, scroll: bool = True) -> list[Option]:
    """Every option on `screen`, in reading order, ending with back. One option per target element."""
    windows = [w for w in root_windows(screen) if w.package not in SYSTEM_CHROME]
    dialog = is_dialog(screen)
    top = windows[-1] if windows else None
    out: list[Option] = []
    seen: set[int] = set()
    for window in windows:
        in_dialog = dialog and window is top
        stack = [(window, False)]
        while stack:
            w, in_list = stack.pop()
            stack.extend((c, in_list or view_kind(w.class_name).endswith(_LISTS)) for c in reversed(w.children))
            if not w.enabled or w.bounds.area == 0 or w.package in SYSTEM_CHROME:
                continue
            opt = _option_of(w, in_dialog, in_list)
            if opt is not None and id(opt.widget) not in seen:
                seen.add(id(opt.widget))
                out.append(opt)
            if scroll and w.scrollable:
                out.append(Option(ActionKind.SCROLL, w, widget_label(w) or "list", w, in_dialog, "down"))
    out.append(BACK_OPTION)
    return out


def _option_of(w: Widget, in_dialog: bool, in_list: bool = False) -> Option | None:
    if w.editable:
        return Option(ActionKind.TYPE, w, w.text.strip() or w.hint.strip() or widget_label(w), w, in_dialog)
    if not (w.clickable or w.checkable or w.long_clickable):
        return None
    # A row of a list that only declares a long-click listener is still opened by a tap (the list
    # handles it; recorders tap it); elsewhere a long-clickable-only view is for long-pressing.
    kind = ActionKind.TAP if (w.clickable or w.checkable or in_list) else ActionKind.LONG_TAP
    if w.label.strip():
        return Option(kind, w, w.label.strip(), w, in_dialog)
    inner = _texts_inside(w)
    if inner:  # a row: named by the text inside it, which is also the element a person points at
        return Option(kind, inner[0], " ".join(x.label.strip() for x in inner), w, in_dialog,
                      title=inner[0].label.strip())
    if _has_control_inside(w):
        return None  # a container whose controls are options of their own
    return Option(kind, w, widget_label(w), w, in_dialog)


def _has_control_inside(w: Widget) -> bool:
    return any(d is not w and (d.clickable or d.checkable or d.editable) for d in w.walk())


def describe_option(o: Option, *, text: str = "") -> str:
    """How an option reads in a prompt or a report: tap 'Settings', type 'Bob' into 'Name', press back."""
    if o.kind is ActionKind.BACK:
        return "press back"
    if o.kind is ActionKind.SCROLL:
        return f"scroll {o.direction or 'down'} in '{o.label}'"
    if o.kind is ActionKind.TYPE:
        return f"type '{text}' into '{o.label}'" if text else f"tap the field '{o.label}'"
    state = ""
    if o.checkable:
        state = " (on)" if o.checked else " (off)"
    verb = "long-press" if o.kind is ActionKind.LONG_TAP else "tap"
    return f"{verb} '{o.label}'{state}"


def shown_texts(screen: Screen, *, fields: bool = False) -> set[str]:
    """The texts (lower case) a screen shows as itself — a title, a name one can only long-press — not the
    items it offers to tap; with `fields`, also what its text fields hold."""
    inside = {id(d) for o in options(screen, scroll=False) if o.kind is ActionKind.TAP and o.receiver is not None
              for d in o.receiver.walk()}
    return {w.text.strip().lower() for w in screen.widgets() if w.text.strip() and id(w) not in inside
            and ((fields and w.editable) or not (w.clickable or w.checkable or w.editable))}
