"""What a screen and an action show, read from the widget tree alone (no model).

`screen_facts` pulls a screen's title, kind (dialog, menu, settings, list, form), fields,
toggles, choices, buttons and texts; `merge_facts` joins the facts of the states that share a
structure key (one screen seen with different content); `action_facts` names what an action
touches ("the 'Autosave notes' checkbox"). The heuristic captioner and the lexical index are
built from these facts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from appatlas.devices.base import locate
from appatlas.errors import SelectorNotFound
from appatlas.graph.fingerprint import SYSTEM_CHROME
from appatlas.rag.text import camel_words, id_words
from appatlas.types import Action, ActionKind, Screen, Widget, view_kind

__all__ = ["ActionFacts", "ScreenFacts", "action_facts", "merge_facts", "screen_facts", "widget_label"]

_CHROME_IDS = ("statusBarBackground", "navigationBarBackground")
_TITLE_IDS = ("alertTitle", "dialog_title", "title_template", "toolbar_title", "action_bar_title", "message")
_MAX_LABEL = 60


@dataclass
class ScreenFacts:
    """What one screen (or all states of one structure key, merged) shows, in words."""

    activity: str
    title: str = ""
    kind: str = "screen"  # dialog | menu | settings | list | form | screen
    fields: list[str] = field(default_factory=list)
    toggles: list[str] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)
    buttons: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # readable words of resource ids

    @property
    def transient(self) -> bool:
        """A dialog or a menu: a window opened over a screen, not a place of its own. Both are there to be
        answered (a choice taken, or back), and either way the user lands on the screen under them, so
        they are never a destination, a back into one is exploration history, and a test checks what
        they leave behind rather than themselves."""
        return self.kind in ("dialog", "menu")

    @property
    def place(self) -> str:
        """A short name for the screen: its title and kind ("'Add a new note' dialog")."""
        words = " ".join(w for w in camel_words(self.activity) if w != "activity")
        if self.title:
            kind = "screen" if self.title.casefold() == self.kind else self.kind
            return f"'{self.title}' {kind}"
        return f"{words or 'app'} {self.kind}"

    def words(self) -> str:
        """Every word the screen shows, for lexical matching."""
        parts = [self.title, " ".join(camel_words(self.activity)), self.kind, *self.fields, *self.toggles,
                 *self.choices, *self.buttons, *self.texts, " ".join(self.ids)]
        return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class ActionFacts:
    """What an action does, in words: verb, the label of what it touches, and what kind of widget that is."""

    verb: str
    label: str = ""
    widget: str = ""  # button | field | checkbox | switch | choice | row | icon | item
    checked: bool | None = None  # a toggle's state before the action

    def phrase(self) -> str:
        if self.verb in ("back", "launch"):
            return "go back" if self.verb == "back" else "launch the app"
        what = f"'{self.label}'" if self.label else "a"
        if self.verb == "type":
            return f"type text into the {what} {self.widget or 'field'}"
        state = "" if self.checked is None else (" (turn it off)" if self.checked else " (turn it on)")
        return f"{self.verb.replace('_', ' ')} {what} {self.widget}{state}".strip()


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 1] + "\u2026"


def _app_windows(screen: Screen) -> list[Widget]:
    return [w for w in screen.root.children if w.package not in SYSTEM_CHROME]


def _skip(w: Widget) -> bool:
    return w.package in SYSTEM_CHROME or w.resource_id.endswith(_CHROME_IDS)


def widget_label(w: Widget) -> str:
    """What a person would call this widget: its own label, else its descendants' labels, else its id words."""
    if w.label:
        return _clip(w.label)
    inner = [c.label for c in w.walk() if c is not w and c.label]
    if inner:
        return _clip(" ".join(inner[:2]))
    words = id_words(w.resource_id)
    return " ".join(words)


def _actionable_owner(root: Widget, target: Widget) -> Widget | None:
    """The nearest actionable widget that holds `target` (not itself), or None."""
    path: list[Widget] = []

    def find(node: Widget) -> bool:
        if node is target:
            return True
        path.append(node)
        if any(find(c) for c in node.children):
            return True
        path.pop()
        return False

    if not find(root):
        return None
    return next((w for w in reversed(path) if w.actionable and not w.scrollable), None)


def _kind_of(w: Widget) -> str:
    cls = view_kind(w.class_name)
    if w.editable or cls.endswith("EditText"):
        return "field"
    if "Switch" in cls or "Toggle" in cls:
        return "switch"
    if "RadioButton" in cls:
        return "choice"
    if w.checkable or "CheckBox" in cls:
        return "checkbox"
    if "ImageButton" in cls or "ImageView" in cls:
        return "icon"
    if cls.endswith("Button"):
        return "button"
    if w.children:
        return "row"
    return "item"


def screen_facts(screen: Screen) -> ScreenFacts:
    """The facts of one observed screen (see ScreenFacts)."""
    facts = ScreenFacts(activity=screen.activity)
    windows = _app_windows(screen)
    area = max(1, screen.width * screen.height)
    dialog = bool(windows) and windows[-1].bounds.area < 0.85 * area or len(windows) > 1
    toolbar_title = ""
    rows = 0
    ids: list[str] = []
    has_list = False
    for window in windows:
        for w in window.walk():
            if _skip(w):
                continue
            cls = view_kind(w.class_name)
            ids.extend(id_words(w.resource_id))
            if cls.endswith(("RecyclerView", "ListView", "GridView")):
                has_list = True
            if not facts.title and w.text and not w.clickable and any(
                    t in w.resource_id.rsplit("/", 1)[-1] for t in _TITLE_IDS):
                facts.title = _clip(w.text)
            if not toolbar_title and ("Toolbar" in cls or "toolbar" in w.resource_id):
                toolbar_title = next((c.text for c in w.walk() if c.text and not c.clickable
                                      and view_kind(c.class_name).endswith("TextView")), "")
            kind = _kind_of(w)
            if kind == "field":
                facts.fields.append(_clip(w.hint or " ".join(id_words(w.resource_id)) or w.text))
            elif kind in ("switch", "checkbox"):
                facts.toggles.append(widget_label(w))
            elif kind == "choice":
                facts.choices.append(widget_label(w))
            elif (w.clickable or w.long_clickable) and kind != "row" and w.label:
                facts.buttons.append(_clip(w.label))
            elif (w.clickable or w.long_clickable) and kind == "row":
                rows += 1
                if not any(c.clickable or c.checkable for c in w.walk() if c is not w):
                    facts.buttons.append(widget_label(w))
            elif w.label and not w.clickable:
                facts.texts.append(_clip(w.label))
    facts.title = facts.title or _clip(toolbar_title)
    facts.ids = list(dict.fromkeys(ids))
    facts.texts = [t for t in dict.fromkeys(facts.texts) if t not in facts.buttons and t not in facts.toggles
                   and t != facts.title]
    settingsish = "settings" in camel_words(screen.activity) or len(facts.toggles) >= 3
    if dialog and rows >= 3 and not facts.fields and not facts.choices:
        facts.kind = "menu"
    elif dialog:
        facts.kind = "dialog"
    elif settingsish:
        facts.kind = "settings"
    elif facts.fields and not has_list:
        facts.kind = "form"
    elif has_list:
        facts.kind = "list"
    if not facts.title and facts.kind == "settings":
        facts.title = "Settings"
    if not facts.title and facts.kind == "dialog" and facts.texts:
        facts.title = facts.texts[0]  # an untitled dialog is known by its first line
    return facts


def merge_facts(many: Sequence[ScreenFacts], *, drop: Iterable[str] = ()) -> ScreenFacts:
    """One screen's facts from all its observed states: the most common title and kind, labels
    ordered by how often they were seen. Texts in `drop` (values typed by testers) are left out:
    they are test data, not what the screen is."""
    if not many:
        raise ValueError("merge_facts needs at least one ScreenFacts")
    dropped = {d.casefold() for d in drop}

    def ranked(lists: Iterable[list[str]]) -> list[str]:
        counts: Counter[str] = Counter()
        order: dict[str, int] = {}
        for lst in lists:
            for item in dict.fromkeys(lst):
                if item and item.casefold() not in dropped:
                    counts[item] += 1
                    order.setdefault(item, len(order))
        return sorted(counts, key=lambda k: (-counts[k], order[k]))

    titles = Counter(f.title for f in many if f.title and f.title.casefold() not in dropped)
    kinds = Counter(f.kind for f in many)
    return ScreenFacts(
        activity=many[0].activity,
        title=titles.most_common(1)[0][0] if titles else "",
        kind=kinds.most_common(1)[0][0],
        fields=ranked(f.fields for f in many), toggles=ranked(f.toggles for f in many),
        choices=ranked(f.choices for f in many), buttons=ranked(f.buttons for f in many),
        texts=ranked(f.texts for f in many), ids=ranked(f.ids for f in many))


def action_facts(action: Action, screen: Screen | None) -> ActionFacts:
    """What `action` touches on `screen` (the screen it was taken on), in words."""
    kind = action.kind
    if kind in (ActionKind.BACK, ActionKind.LAUNCH):
        return ActionFacts(verb=kind.value)
    if kind is ActionKind.SCROLL:
        return ActionFacts(verb="scroll", label=action.direction, widget="list")
    target = action.target
    assert target is not None  # validated by Action
    widget: Widget | None = None
    if screen is not None:
        try:
            widget = locate(target, screen)
        except SelectorNotFound:
            widget = None
    if widget is None:
        label = target.text or target.content_desc or " ".join(id_words(target.resource_id))
        return ActionFacts(verb=kind.value, label=_clip(label), widget="field" if kind is ActionKind.TYPE else "item")
    if kind is not ActionKind.TYPE and screen is not None and not widget.actionable and \
            not any(c.isalpha() for c in widget.label):
        # a tap on a number (a track number, a count) or a bare view inside a clickable row taps the
        # row, and a number says which, not what: the row's texts name it (track '0' is "0 test1")
        widget = _actionable_owner(screen.root, widget) or widget
    wkind = _kind_of(widget)
    if kind is ActionKind.TYPE:
        label = widget.hint or " ".join(id_words(widget.resource_id)) or widget.text
        return ActionFacts(verb="type", label=_clip(label), widget="field")
    checked = None
    toggle = widget if widget.checkable else next((c for c in widget.walk() if c.checkable), None)
    if toggle is not None:
        checked = toggle.checked
        wkind = _kind_of(toggle) if wkind in ("row", "item") else wkind
    label = widget_label(widget)
    if not label and screen is not None:  # a bare icon: its id, or where it sits
        label = "navigate up" if widget.bounds.x1 == 0 and widget.bounds.y2 < screen.height * 0.2 else ""
    return ActionFacts(verb=kind.value, label=label, widget=wkind, checked=checked)
