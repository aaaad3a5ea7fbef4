"""The core values of appatlas: plain, validated, frozen dataclasses with no I/O.

Widget   one node of a screen's view tree (class, ids, text, bounds, flags, children)
Screen   what a device shows at one moment: package, activity, widget tree, screenshot
Selector how an action finds its widget again (resource-id, text, content-desc, class+index, bounds)
Action   tap / long-tap / type / scroll / back / launch
Transition  one observed edge: screen --action--> screen
Step, TestCase  a runnable test: actions with the screen expected after each
Expectation     what must hold on the device when a test is done (a value shown, a switch on, …)
Verdict  the outcome of running a test
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

__all__ = [
    "Action",
    "ActionKind",
    "Bounds",
    "EXPECTATION_KINDS",
    "Expectation",
    "Screen",
    "Selector",
    "Step",
    "TestCase",
    "Transition",
    "Verdict",
    "Widget",
    "qualify_activity",
    "view_kind",
]

# ArkUI components (HarmonyOS) by the Android view of the same kind. Web widgets are named so already
# (`web.Button`, `web.ListView`: appatlas.devices._web_dom); Android's are themselves.
_ARKUI_KINDS = {
    "Text": "TextView", "Span": "TextView", "Image": "ImageView", "TextInput": "EditText", "TextArea": "EditText",
    "Search": "EditText", "Checkbox": "CheckBox", "Toggle": "Switch", "Radio": "RadioButton", "List": "ListView",
    "ListItem": "ViewGroup", "Grid": "GridView", "GridItem": "ViewGroup", "Scroll": "ScrollView", "Select": "Spinner",
    "Slider": "SeekBar", "Progress": "ProgressBar", "Web": "WebView", "Column": "LinearLayout", "Row": "LinearLayout",
    "Stack": "FrameLayout", "RelativeContainer": "RelativeLayout", "Tabs": "TabWidget",
}


def view_kind(class_name: str) -> str:
    """What kind of view a widget is, on any platform, by the Android name of that kind: "Button" for
    android.widget.Button, web.Button and ArkUI's Button; "ListView" for ArkUI's List. Checks of a
    widget's kind compare this, so they hold on HarmonyOS and the web too."""
    short = class_name.rsplit(".", 1)[-1]
    return _ARKUI_KINDS.get(short, short)


def qualify_activity(package: str, activity: str) -> str:
    """The fully qualified activity class name: `.MainActivity` in `com.x` is `com.x.MainActivity`."""
    activity = activity.split("/", 1)[1] if "/" in activity else activity
    return package + activity if activity.startswith(".") else activity


@dataclass(frozen=True, slots=True)
class Bounds:
    """A rectangle in screen pixels, [x1, y1) .. [x2, y2)."""

    x1: int
    y1: int
    x2: int
    y2: int

    def __post_init__(self) -> None:
        if self.x2 < self.x1 or self.y2 < self.y1:
            raise ValueError(f"bounds [{self.x1},{self.y1}][{self.x2},{self.y2}] have negative size")

    @property
    def width(self) -> int:
        return self.x2 - self.x1

    @property
    def height(self) -> int:
        return self.y2 - self.y1

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def center(self) -> tuple[int, int]:
        return ((self.x1 + self.x2) // 2, (self.y1 + self.y2) // 2)

    def contains(self, x: int, y: int) -> bool:
        return self.x1 <= x < self.x2 and self.y1 <= y < self.y2

    def __str__(self) -> str:
        return f"[{self.x1},{self.y1}][{self.x2},{self.y2}]"


@dataclass(frozen=True, slots=True)
class Widget:
    """One view of a screen. `children` are in drawing order (later = on top)."""

    class_name: str
    bounds: Bounds
    resource_id: str = ""
    text: str = ""
    content_desc: str = ""
    package: str = ""
    hint: str = ""
    clickable: bool = False
    long_clickable: bool = False
    editable: bool = False
    scrollable: bool = False
    checkable: bool = False
    checked: bool = False
    enabled: bool = True
    focused: bool = False
    selected: bool = False
    password: bool = False
    children: tuple[Widget, ...] = ()

    @property
    def signature(self) -> str:
        """DroidBot's content-free signature: `[class]…[resource_id]…`."""
        return f"[class]{self.class_name}[resource_id]{self.resource_id}"

    @property
    def label(self) -> str:
        """What a person reads on it: its text, else its content description, else its hint."""
        return self.text or self.content_desc or self.hint

    @property
    def actionable(self) -> bool:
        return self.enabled and (self.clickable or self.long_clickable or self.editable or self.checkable
                                 or self.scrollable)

    def walk(self) -> Iterator[Widget]:
        """This widget and every descendant, depth-first in drawing order."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def with_text(self, text: str) -> Widget:
        return replace(self, text=text)


@dataclass(frozen=True, slots=True)
class Screen:
    """What a device shows: the foreground app, its view tree and, when taken, a screenshot.

    `screenshot` holds encoded image bytes: PNG from appatlas devices, PNG or JPEG from recordings.
    """

    package: str
    activity: str
    root: Widget
    width: int
    height: int
    screenshot: bytes | None = field(default=None, repr=False, compare=False)

    def widgets(self) -> Iterator[Widget]:
        return self.root.walk()

    def widget_at(self, x: int, y: int) -> Widget | None:
        """The top-most widget under a point (what a finger would hit), or None.

        Later siblings are drawn above earlier ones and children above parents; the
        deepest, last-drawn hit wins, regardless of its `clickable` flag (recorded taps
        often land on a label inside a clickable row).
        """
        hit: Widget | None = None
        node: Widget | None = self.root if self.root.bounds.contains(x, y) else None
        while node is not None:
            hit = node
            node = next((c for c in reversed(node.children) if c.bounds.contains(x, y)), None)
        return hit

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(w.label for w in self.widgets() if w.label)


class ActionKind(enum.StrEnum):
    TAP = "tap"
    LONG_TAP = "long_tap"
    TYPE = "type"
    SCROLL = "scroll"
    BACK = "back"
    LAUNCH = "launch"


_NEEDS_TARGET = {ActionKind.TAP, ActionKind.LONG_TAP, ActionKind.TYPE}
SCROLL_DIRECTIONS = ("up", "down", "left", "right")


@dataclass(frozen=True, slots=True)
class Selector:
    """How to find a widget again on a screen that may differ in size or content.

    Fields are tried from the most to the least stable: resource-id, content-desc, text,
    class + index among same-class widgets; `bounds` is the last resort.
    """

    resource_id: str = ""
    text: str = ""
    content_desc: str = ""
    class_name: str = ""
    index: int = 0
    bounds: Bounds | None = None

    def __post_init__(self) -> None:
        if not (self.resource_id or self.text or self.content_desc or self.class_name or self.bounds):
            raise ValueError("a selector needs at least one of resource_id, text, content_desc, class_name, bounds")
        if self.index < 0:
            raise ValueError(f"selector index must be >= 0, got {self.index}")

    @property
    def signature(self) -> str:
        return f"[class]{self.class_name}[resource_id]{self.resource_id}"

    def describe(self) -> str:
        """A short human-readable form, for logs and reports."""
        for name, value in (("id", self.resource_id), ("desc", self.content_desc), ("text", self.text)):
            if value:
                return f"{name}={value!r}"
        if self.class_name:
            return f"{self.class_name.rsplit('.', 1)[-1]}#{self.index}"
        return f"at {self.bounds}"


@dataclass(frozen=True, slots=True)
class Action:
    """One thing a tester does. Validates itself: a tap needs a target, typing needs text."""

    kind: ActionKind
    target: Selector | None = None
    text: str = ""  # typed text for TYPE
    direction: str = ""  # for SCROLL
    app: str = ""  # "package" or "package/activity" for LAUNCH

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ActionKind(self.kind))
        if self.kind in _NEEDS_TARGET and self.target is None:
            raise ValueError(f"a {self.kind.value} action needs a target selector")
        if self.kind is ActionKind.SCROLL and self.direction not in SCROLL_DIRECTIONS:
            raise ValueError(f"scroll direction must be one of {SCROLL_DIRECTIONS}, got {self.direction!r}")
        if self.kind is ActionKind.LAUNCH and not self.app:
            raise ValueError("a launch action needs app='package' or 'package/activity'")

    @property
    def key(self) -> str:
        """Identity of the action in the graph: kind + target, without the typed value.

        Typing 'Alice' or 'Bob' into the same field is the same edge of the app's graph.
        """
        t = self.target
        where = "" if t is None else f"{t.signature}|{t.resource_id or t.content_desc or t.text}|{t.index}"
        if t is not None and not (t.resource_id or t.content_desc or t.text) and t.bounds is not None:
            where += f"|{t.bounds}"
        extra = self.direction or self.app
        return f"{self.kind.value}|{where}|{extra}"

    def describe(self) -> str:
        if self.kind is ActionKind.TYPE:
            return f"type {self.text!r} into {self.target.describe() if self.target else '?'}"
        if self.kind in _NEEDS_TARGET:
            return f"{self.kind.value} {self.target.describe() if self.target else '?'}"
        if self.kind is ActionKind.SCROLL:
            return f"scroll {self.direction}" + (f" in {self.target.describe()}" if self.target else "")
        if self.kind is ActionKind.LAUNCH:
            return f"launch {self.app}"
        return self.kind.value


@dataclass(frozen=True, slots=True)
class Transition:
    """An observed edge of the app graph, between two screens named by their structure keys."""

    source: str
    action: Action
    target: str
    count: int = 1
    failures: int = 0

    @property
    def reliability(self) -> float:
        """Share of attempts that led to `target` (Laplace-smoothed so one observation is not certainty)."""
        return (self.count + 1) / (self.count + self.failures + 2)


@dataclass(frozen=True, slots=True)
class Step:
    """One action of a test and the screen (structure key) expected after it."""

    action: Action
    expect: str = ""
    note: str = ""


EXPECTATION_KINDS = ("shown", "gone", "checked", "unchecked", "screen", "route")


@dataclass(frozen=True, slots=True)
class Expectation:
    """One thing that must be true when a test is done, checked on the device.

    shown      a row or text reading `text` is on the screen `where`, at least `count` times (default 1);
               with `new`, more times than when the run first saw that screen (a row it created)
    gone       fewer of them are on `where` than when the run first saw it (none if it never did);
               with `count`, at most `count`
    checked    the switch / checkbox labelled `text` on `where` is on (`unchecked`: off)
    screen     the screen `where` is open (`text` says which, for the reader)
    route      every step landed on the screen the test expects after it (a coverage test's point: the
               runner checks it from the steps, not from a screen)

    `where` is a structure key ("" = the screen the run ends on); `note` says it in words.
    """

    kind: str
    text: str = ""
    where: str = ""
    count: int | None = None
    note: str = ""
    new: bool = False

    def __post_init__(self) -> None:
        if self.kind not in EXPECTATION_KINDS:
            raise ValueError(f"expectation kind must be one of {EXPECTATION_KINDS}, got {self.kind!r}")
        if self.kind != "screen" and not self.text.strip():
            raise ValueError(f"a {self.kind} expectation needs the text it is about")
        if self.kind == "screen" and not self.where:
            raise ValueError("a screen expectation needs the screen (`where`, a structure key)")
        if self.count is not None and self.count < 0:
            raise ValueError(f"expectation count must be >= 0, got {self.count}")

    def describe(self) -> str:
        if self.note:
            return self.note
        where = f" on {self.where[:8]}…" if self.where else ""
        if self.kind == "screen":
            return f"the screen {self.text or self.where[:8] + '…'} is open"
        if self.kind == "route":
            return "every step lands on the screen the test expects after it"
        if self.kind in ("checked", "unchecked"):
            return f"{self.text!r} is {'on' if self.kind == 'checked' else 'off'}{where}"
        if self.kind == "gone":
            return f"{self.text!r} is gone{where}"
        n = self.count if self.count is not None else 1
        if self.new:
            return f"a new {self.text!r} is shown{where}"
        return f"{self.text!r} is shown{where}" + (f" ({n} times or more)" if n > 1 else "")


@dataclass(frozen=True, slots=True)
class TestCase:
    """A runnable test: from `start`, do `steps`; pass if the end oracle `end` holds at the end."""

    __test__ = False  # not a pytest test class

    name: str
    intent: str
    start: str
    steps: tuple[Step, ...]
    end: str = ""
    inputs: tuple[tuple[str, str], ...] = ()  # (slot name, value) bound to typed fields
    expect: tuple[Expectation, ...] = ()  # what must hold when it is done (PASS needs every one)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a test case needs a name")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What happened when a test ran: pass/fail, why, and the evidence per step and per expectation.

    `checks` holds one {"expectation", "holds", "evidence"} per expectation of the test (and one for
    an error shown on screen); `status` is "passed", "failed" or "inconclusive" (nothing to check).
    """

    test: str
    passed: bool
    reason: str
    steps: tuple[dict[str, object], ...] = ()
    checks: tuple[dict[str, object], ...] = ()
    status: str = ""
