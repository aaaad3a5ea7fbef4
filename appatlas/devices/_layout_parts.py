"""The parts of a laid-out screen: state, handlers, the builder, and the widgets of a content area.

Sizes are Android dp scaled to the screen width (411 dp across, as on a 1080-px phone).
`_layout.py` assembles these into windows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from appatlas.devices.spec import AppSpec, Effect, Item, WidgetKind, WidgetSpec
from appatlas.types import Bounds, Widget

# dp sizes
STATUS, TOOLBAR, BOTTOM, PAD, GAP = 24, 56, 72, 16, 8
BUTTON, INPUT, CHECK, IMAGE, ICON, ERROR = 48, 56, 48, 160, 48, 24
ROW1, ROW2, LINE, FONT = 56, 72, 22, 16


@dataclass
class Entry:
    """One screen on the back stack, with what the user did on it (mutable device state)."""

    screen: str
    item: Item | None = None
    values: dict[str, str] = field(default_factory=dict)  # typed text by field key
    errors: dict[str, str] = field(default_factory=dict)  # gate errors by field key
    scroll: dict[str, int] = field(default_factory=dict)  # first visible row/widget by scroller key
    dialog: str = ""
    focused: str = ""  # field key of the focused input


@dataclass(frozen=True, slots=True)
class Handler:
    """What touching a widget does."""

    tap: Effect | None = None
    long_tap: Effect | None = None
    item: Item | None = None
    focus: str = ""  # field key an input tap focuses
    toggle: str = ""  # toggle key a checkbox/switch flips
    system: str = ""  # up, allow, deny, aerr_close, aerr_restart, launch
    in_dialog: bool = False
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Scroller:
    key: str
    offset: int
    page: int
    max_offset: int


@dataclass
class View:
    """A laid-out screen: the tree, and what each widget does (keyed by `id(widget)`)."""

    package: str
    activity: str
    root: Widget
    handlers: dict[int, Handler] = field(default_factory=dict)
    scrollers: dict[int, Scroller] = field(default_factory=dict)
    modal: Widget | None = None  # the window that takes every touch (dialog, popup)
    outside: str = ""  # what a touch outside `modal` does: "close" or "" (nothing)


class Builder:
    """Accumulates handlers and scrollers while widgets are made."""

    def __init__(self, spec: AppSpec, width: int, height: int) -> None:
        self.spec = spec
        self.w, self.h = width, height
        self.u = width / 411.0
        self.handlers: dict[int, Handler] = {}
        self.scrollers: dict[int, Scroller] = {}

    def px(self, dp: float) -> int:
        return round(dp * self.u)

    def rid(self, wid: str, package: str = "") -> str:
        return f"{package or self.spec.package}:id/{wid}" if wid else ""

    def make(self, handler: Handler | None = None, scroller: Scroller | None = None, **kw: object) -> Widget:
        kw.setdefault("package", self.spec.package)
        w = Widget(**kw)  # type: ignore[arg-type]
        if handler is not None:
            self.handlers[id(w)] = handler
        if scroller is not None:
            self.scrollers[id(w)] = scroller
        return w

    def lines(self, text: str, width_px: int) -> int:
        """Lines a text wraps to: greedy by words at an average glyph width of 0.55 em."""
        per_line = max(1, int(width_px / (self.px(FONT) * 0.55)))
        total = 0
        for para in text.split("\n"):
            n, used = 1, 0
            for word in para.split():
                size = len(word)
                if used and used + 1 + size <= per_line:
                    used += 1 + size
                    continue
                n += 1 if used else 0
                n += (size - 1) // per_line  # a word longer than a line breaks anywhere
                used = (size - 1) % per_line + 1
            total += n
        return total


class Fill:
    """Fills `{placeholders}` from the device state."""

    def __init__(self, values: Mapping[str, str], item: Item | None) -> None:
        self.values = values
        self.item = item

    @classmethod
    def at(cls, spec: AppSpec, *, item: Item | None, tick: int, visits: int) -> Fill:
        minutes = 9 * 60 + 41 + tick  # the clock starts at 9:41 and moves one minute per action
        return cls({"clock": f"{minutes // 60 % 24}:{minutes % 60:02d}", "tick": str(tick),
                    "visits": str(visits), "app": spec.name, "version": spec.version}, item)

    def with_item(self, item: Item) -> Fill:
        return Fill(self.values, item)

    def __call__(self, text: str) -> str:
        if "{" not in text:
            return text
        out, i = [], 0
        while True:
            j = text.find("{", i)
            k = text.find("}", j + 1) if j >= 0 else -1
            if j < 0 or k < 0:
                out.append(text[i:])
                return "".join(out)
            name = text[j + 1:k]
            if "{" in name:
                out.append(text[i:j + 1])
                i = j + 1
                continue
            out.append(text[i:j])
            out.append(self.lookup(name))
            i = k + 1

    def lookup(self, name: str) -> str:
        head, _, key = name.partition(".")
        if head == "item":
            return "" if self.item is None else self.item.value(key or "title")
        return self.values.get(name, "")


def toggle_key(scope: str, w: WidgetSpec, index: int) -> str:
    """Where a checkbox's state is kept: `<screen or dialog>.<id or position>`."""
    return f"{scope}.{w.id or f'w{index}'}"


def field_key(scope: str, w: WidgetSpec, in_dialog: bool) -> str:
    """Where an input's typed text is kept: its id, prefixed by the dialog it sits in."""
    return f"{scope}.{w.id}" if in_dialog else w.id


def widget_height(b: Builder, w: WidgetSpec, text: str, *, width: int, with_error: bool) -> int:
    """A widget's height in pixels; `text` wraps at `width`, a gate error adds a line under an input."""
    k = w.kind
    if k is WidgetKind.TEXT:
        return b.px(LINE) * b.lines(text, width) + b.px(GAP)
    if k is WidgetKind.INPUT:
        return b.px(INPUT if w.input_type != "multiline" else 96) + (b.px(ERROR) if with_error else 0)
    if k is WidgetKind.IMAGE:
        return b.px(IMAGE)
    if k is WidgetKind.ICON:
        return b.px(ICON)
    if k is WidgetKind.BUTTON:
        return b.px(BUTTON)
    return b.px(CHECK)


def content_area(b: Builder, scope: str, widgets: list[WidgetSpec], entry: Entry, toggles: Mapping[str, bool],
                 fill: Fill, area: Bounds, *, in_dialog: bool) -> Widget:
    """A vertical stack; the list (if any) takes the room left, else the stack scrolls when too tall."""
    pad, gap = b.px(PAD), b.px(GAP)
    inner = area.width - 2 * pad
    heights = []
    for w in widgets:
        if w.kind is WidgetKind.LIST:
            heights.append(0)
            continue
        err = bool(entry.errors.get(field_key(scope, w, in_dialog))) if w.kind is WidgetKind.INPUT else False
        heights.append(widget_height(b, w, fill(w.label or w.value), width=inner, with_error=err))
    avail = area.height - 2 * pad
    fixed = sum(heights) + gap * max(0, len(widgets) - 1)
    has_list = any(w.kind is WidgetKind.LIST for w in widgets)
    list_h = max(0, avail - fixed)
    scroller = None
    first, last = 0, len(widgets)
    if not has_list and fixed > avail:
        first, last, scroller = _window(heights, avail, gap, entry.scroll.get("", 0), "")
    kids, y = [], area.y1 + pad
    for i in range(first, last):
        w = widgets[i]
        hgt = list_h if w.kind is WidgetKind.LIST else heights[i]
        box = Bounds(area.x1 + pad, y, area.x2 - pad, y + hgt)
        if w.kind is WidgetKind.LIST:
            kids.append(_list(b, scope, w, box, entry, fill, in_dialog=in_dialog))
        else:
            kids.extend(_widget(b, scope, w, i, box, entry, toggles, fill, in_dialog=in_dialog))
        y += hgt + gap
    cls = "android.widget.ScrollView" if scroller is not None else "android.widget.LinearLayout"
    return b.make(scroller=scroller, class_name=cls, bounds=area, resource_id=b.rid("content") if not in_dialog else "",
                  scrollable=scroller is not None, children=tuple(kids))


def _window(heights: list[int], avail: int, gap: int, offset: int, key: str) -> tuple[int, int, Scroller]:
    """Which of the units fit from `offset` on, and how a scroll moves through them."""
    n = len(heights)

    def fits_from(start: int) -> int:
        used, end = 0, start
        while end < n and used + heights[end] <= avail:
            used += heights[end] + gap
            end += 1
        return max(end, start + 1)

    max_off = n - 1
    while max_off > 0 and fits_from(max_off - 1) >= n:
        max_off -= 1
    offset = max(0, min(offset, max_off))
    end = min(n, fits_from(offset))
    page = max(1, end - offset - 1)
    return offset, end, Scroller(key, offset, page, max_off)


def _widget(b: Builder, scope: str, w: WidgetSpec, index: int, box: Bounds, entry: Entry,
            toggles: Mapping[str, bool], fill: Fill, *, in_dialog: bool) -> list[Widget]:
    if w.kind is not WidgetKind.INPUT:
        return [leaf(b, w, box, entry, toggles, fill, key=toggle_key(scope, w, index), in_dialog=in_dialog)]
    fkey = field_key(scope, w, in_dialog)
    error = entry.errors.get(fkey, "")
    field_box = Bounds(box.x1, box.y1, box.x2, box.y2 - (b.px(ERROR) if error else 0))
    value = entry.values.get(fkey, fill(w.value))
    out = [b.make(Handler(tap=w.tap, focus=fkey, in_dialog=in_dialog, enabled=w.enabled),
                  class_name="android.widget.EditText", bounds=field_box, resource_id=b.rid(w.id),
                  text="\u2022" * len(value) if w.input_type == "password" else value,
                  hint=fill(w.label), content_desc=fill(w.desc), clickable=True, editable=True,
                  enabled=w.enabled, focused=entry.focused == fkey, password=w.input_type == "password")]
    if error:
        out.append(b.make(class_name="android.widget.TextView", bounds=Bounds(box.x1, field_box.y2, box.x2, box.y2),
                          resource_id=b.rid(f"{w.id}_error"), text=fill(error)))
    return out


_CLASSES = {
    WidgetKind.TEXT: "android.widget.TextView",
    WidgetKind.BUTTON: "android.widget.Button",
    WidgetKind.CHECKBOX: "android.widget.CheckBox",
    WidgetKind.SWITCH: "android.widget.Switch",
    WidgetKind.IMAGE: "android.widget.ImageView",
    WidgetKind.ICON: "android.widget.ImageButton",
}


def leaf(b: Builder, w: WidgetSpec, box: Bounds, entry: Entry, toggles: Mapping[str, bool], fill: Fill,
         *, key: str, in_dialog: bool) -> Widget:
    """A widget without children: text, button, checkbox, switch, image, icon."""
    checkable = w.checkable
    pictorial = w.kind in (WidgetKind.IMAGE, WidgetKind.ICON)
    label = fill(w.label)
    handler = None
    if w.tap is not None or w.long_tap is not None:
        handler = Handler(tap=w.tap, long_tap=w.long_tap, item=entry.item, toggle=key if checkable else "",
                          in_dialog=in_dialog, enabled=w.enabled)
    return b.make(handler, class_name=_CLASSES[w.kind], bounds=box, resource_id=b.rid(w.id),
                  text="" if pictorial else label, content_desc=fill(w.desc) or (label if pictorial else ""),
                  clickable=w.tap is not None or w.kind in (WidgetKind.BUTTON, WidgetKind.ICON),
                  long_clickable=w.long_tap is not None, checkable=checkable,
                  checked=toggles.get(key, w.checked) if checkable else False, enabled=w.enabled)


def _list(b: Builder, scope: str, w: WidgetSpec, box: Bounds, entry: Entry, fill: Fill, *,
          in_dialog: bool) -> Widget:
    two_line = any(it.subtitle for it in w.items)
    row_h = b.px(ROW2 if two_line else ROW1)
    n = len(w.items)
    visible = max(1, box.height // row_h)
    key = f"{scope}.{w.id}"
    max_off = max(0, n - visible)
    offset = max(0, min(entry.scroll.get(key, 0), max_off))
    scroller = Scroller(key, offset, max(1, visible - 1), max_off) if n > visible else None
    rows = []
    for i in range(offset, min(n, offset + visible)):
        it = w.items[i]
        y = box.y1 + (i - offset) * row_h
        row_fill = fill.with_item(it)
        title = row_fill(it.title)
        kids = []
        mid = y + row_h // 2 if two_line else y + row_h
        kids.append(b.make(class_name="android.widget.TextView", bounds=Bounds(box.x1 + b.px(PAD), y,
                           box.x2 - b.px(PAD), mid), resource_id=b.rid(f"{w.id}_title"), text=title))
        if two_line:
            kids.append(b.make(class_name="android.widget.TextView", bounds=Bounds(box.x1 + b.px(PAD), mid,
                               box.x2 - b.px(PAD), y + row_h), resource_id=b.rid(f"{w.id}_subtitle"),
                               text=row_fill(it.subtitle)))
        tap, long_tap = it.tap or w.row_tap, it.long_tap or w.row_long_tap
        handler = Handler(tap=tap, long_tap=long_tap, item=it, in_dialog=in_dialog, enabled=w.enabled) \
            if tap is not None or long_tap is not None else None
        rows.append(b.make(handler, class_name="android.widget.LinearLayout",
                           bounds=Bounds(box.x1, y, box.x2, y + row_h), resource_id=b.rid(f"{w.id}_row"),
                           clickable=tap is not None, long_clickable=long_tap is not None,
                           children=tuple(kids)))
    return b.make(scroller=scroller, class_name="androidx.recyclerview.widget.RecyclerView", bounds=box,
                  resource_id=b.rid(w.id), scrollable=scroller is not None, children=tuple(rows))


def button_row(b: Builder, scope: str, widgets: list[WidgetSpec], entry: Entry, fill: Fill, area: Bounds,
               *, in_dialog: bool) -> Widget:
    """A bar of buttons: equal widths across a screen's bottom, right-aligned in a dialog."""
    pad = b.px(PAD) if not in_dialog else b.px(GAP)
    n = len(widgets)
    if in_dialog:  # dialog buttons sit right-aligned at their text's width
        widths = [max(b.px(64), b.px(24) + int(len(fill(w.label or w.desc)) * b.px(FONT) * 0.6)) for w in widgets]
    else:
        widths = [(area.width - pad * (n + 1)) // n] * n
    x = area.x2 - pad - sum(widths) - pad * (n - 1) if in_dialog else area.x1 + pad
    kids = []
    h = b.px(BUTTON)
    y = area.y1 + (area.height - h) // 2
    for i, w in enumerate(widgets):
        kids.append(leaf(b, w, Bounds(max(area.x1, x), y, min(area.x2, x + widths[i]), y + h), entry, {}, fill,
                         key=toggle_key(scope, w, i), in_dialog=in_dialog))
        x += widths[i] + pad
    rid = "buttonPanel" if in_dialog else "bottom_bar"
    return b.make(class_name="android.widget.LinearLayout", bounds=area, resource_id=b.rid(rid), children=tuple(kids))

