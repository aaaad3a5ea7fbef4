"""A virtual Android device running an app spec: the built-in demo, tests, benchmarks.

`VirtualDevice` implements the Device protocol (snapshot / perform / current_app / launch /
stop_app / info) and the low-level input a local uiautomator2 server needs (`tap(x, y)`,
`long_tap(x, y)`, `type_text`, `press_back`). A touch is hit-tested like a finger: the
top-most widget under the point decides, a dialog takes every touch. Everything is
deterministic: the same actions from the same start give the same screens, and the only
clock is the number of actions so far.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from appatlas.devices._layout import (
    LAUNCHER,
    PERMISSION,
    Entry,
    Handler,
    View,
    app_view,
    check_layout,
    external_view,
    fill_text,
    launcher_view,
)
from appatlas.devices.base import DeviceInfo, locate
from appatlas.devices.render import render_png
from appatlas.devices.spec import AppSpec, Effect, EffectKind, Item, WidgetKind, load_spec, spec_from_dict
from appatlas.errors import ActionRefused, DeviceError, SpecError
from appatlas.types import Action, ActionKind, Screen, Widget

__all__ = ["VirtualDevice", "open_app"]

_MODEL = "appatlas virtual device"


def open_app(spec: str | os.PathLike[str] | Mapping[str, Any] | AppSpec, *, screenshots: bool = True,
             serial: str = "virtual-1", screenshot_scale: float = 0.5) -> VirtualDevice:
    """A virtual device running `spec`: a built-in app name ("demo"), a YAML path, a dict or an AppSpec.

    A name or path prefixed with `canvas:` ("canvas:game") opens the app as pixels only: its view
    tree is one SurfaceView (see `appatlas.devices.canvas`).
    """
    if isinstance(spec, str) and spec.startswith("canvas:"):
        from appatlas.devices.canvas import CanvasDevice

        inner = open_app(spec[len("canvas:"):], screenshots=False, serial=serial)
        return CanvasDevice(inner.spec, screenshots=screenshots, serial=serial, screenshot_scale=screenshot_scale)
    if isinstance(spec, AppSpec):
        app = spec
    elif isinstance(spec, Mapping):
        app = spec_from_dict(spec)
    else:
        from appatlas.devices.apps import builtin_apps

        apps = builtin_apps()
        name = os.fspath(spec)
        if name in apps and not Path(name).is_file():
            app = load_spec(apps[name])
        elif Path(name).is_file():
            app = load_spec(name)
        else:
            raise SpecError(name, f"not a file and not a built-in app; built-in apps: {', '.join(sorted(apps))}")
    return VirtualDevice(app, screenshots=screenshots, serial=serial, screenshot_scale=screenshot_scale)


class VirtualDevice:
    """The Device protocol over an app spec. Starts with the app open on its launch screen.

    Screenshots are drawn at `screenshot_scale` of the screen size (half by default: a
    1080x2280 screen gives a 540x1140 PNG), which keeps a snapshot's cost near 5 ms.
    """

    def __init__(self, spec: AppSpec, *, screenshots: bool = True, serial: str = "virtual-1",
                 screenshot_scale: float = 0.5) -> None:
        if not 0.05 <= screenshot_scale <= 2:
            raise ValueError(f"screenshot_scale must be in 0.05..2, got {screenshot_scale}")
        check_layout(spec)
        self.spec = spec
        self.serial = serial
        self.screenshots = screenshots
        self.screenshot_scale = screenshot_scale
        self._tick = 0
        self._toggles: dict[str, bool] = {}  # app settings survive restarts, like SharedPreferences
        # switches that forget their state when their screen closes (`persist: false`, a seeded bug)
        self._volatile = {f"{sid}.{w.id or f'w{i}'}" for sid, sc in spec.screens.items()
                          for i, w in enumerate(sc.widgets) if w.checkable and not w.persist}
        self._visited: list[str] = []  # spec screens entered, in order (what a run went through)
        self._row_item: Item | None = None  # the list row whose long tap opened the dialog showing now
        self._decided: dict[str, bool] = {}  # permission answers survive restarts, as on a phone
        self._visits: Counter[str] = Counter()
        self._stack: list[Entry] = []
        self._mode = "launcher"  # app | launcher | crash | external
        self._external = ""
        self._popup_for = ""  # screen whose permission popup is showing
        self._view: View | None = None
        self._png: tuple[Widget, bytes] | None = None
        self._start(spec.launch)

    # --- Device protocol -----------------------------------------------------------------------

    def snapshot(self) -> Screen:
        """What the screen shows now, with a PNG screenshot unless built with `screenshots=False`."""
        view = self._current()
        png = None
        if self.screenshots:
            if self._png is None or self._png[0] is not view.root:
                png = render_png(view.root, width=self.spec.width, height=self.spec.height,
                                 scale=self.screenshot_scale)
                self._png = (view.root, png)
            png = self._png[1]
        return Screen(view.package, view.activity, view.root, self.spec.width, self.spec.height, png)

    def perform(self, action: Action) -> None:
        """Do one action; the selector is resolved on the current screen, then touched at its centre."""
        kind = action.kind
        if kind is ActionKind.BACK:
            self.press_back()
        elif kind is ActionKind.LAUNCH:
            self.launch(action.app)
        elif kind is ActionKind.SCROLL:
            self._tick += 1
            self._scroll(action)
            self._changed()
        else:
            assert action.target is not None  # Action validates this
            view = self._current()
            widget = locate(action.target, self._screen(view), serial=self.serial)
            if kind is ActionKind.TYPE:
                widget = _editable(widget) or widget
                if not widget.editable:
                    raise ActionRefused(f"cannot type into {action.target.describe()}: it is not a text field",
                                        serial=self.serial)
            x, y = _visible_center(widget, self.spec.width, self.spec.height)
            self._tick += 1
            if kind is ActionKind.TYPE:
                self._touch(x, y, long=False)
                self._type(action.text, append=False)
            else:
                self._touch(x, y, long=kind is ActionKind.LONG_TAP)
            self._changed()

    def current_app(self) -> tuple[str, str]:
        """(package, activity) in the foreground; the launcher after a crash, until the next launch."""
        if self._mode == "app":
            return PERMISSION if self._popup_for else (self.spec.package, self.spec.activity_name(self._top.screen))
        if self._mode == "external":
            return self._external, f"{self._external}.MainActivity"
        return LAUNCHER

    def launch(self, app: str = "") -> None:
        """Start the app afresh on its launch screen ("" or its package); the launcher's package goes home."""
        package, _, activity = app.partition("/")
        self._tick += 1
        if package in ("", self.spec.package):
            start = self.spec.launch
            if activity:
                full = activity if not activity.startswith(".") else package + activity
                start = next((s for s in self.spec.screens if self.spec.activity_name(s) == full), start)
            self._start(start)
        elif package == LAUNCHER[0]:
            self._mode = "launcher"
        else:
            raise DeviceError(f"{package} is not installed on virtual device {self.serial}; "
                              f"it runs {self.spec.package} only", serial=self.serial)
        self._changed()

    def stop_app(self, package: str = "") -> None:
        """Kill the app (its screens are forgotten); what shows next is the launcher."""
        if package and package == self._external and package != self.spec.package:
            self._external = ""
            self._mode = "app" if self._stack else "launcher"
        elif package in ("", self.spec.package):
            self._stack.clear()
            self._popup_for = ""
            if self._mode != "external":
                self._mode = "launcher"
        self._changed()

    def info(self) -> DeviceInfo:
        return DeviceInfo(serial=self.serial, model=_MODEL, width=self.spec.width, height=self.spec.height, sdk=34)

    # --- low-level input (what a uiautomator2 server forwards) ----------------------------------

    def tap(self, x: int, y: int) -> None:
        """A finger tap at a screen point."""
        self._tick += 1
        self._touch(x, y, long=False)
        self._changed()

    def long_tap(self, x: int, y: int) -> None:
        """A long press at a screen point."""
        self._tick += 1
        self._touch(x, y, long=True)
        self._changed()

    def type_text(self, text: str, *, append: bool = False) -> None:
        """Type into the focused field, replacing its text (or appending to it)."""
        self._tick += 1
        self._type(text, append=append)
        self._changed()

    def press_back(self) -> None:
        """The back key: closes a popup or dialog, else follows the screen's back rule."""
        self._tick += 1
        if self._mode == "crash":
            self._mode = "launcher"
        elif self._mode == "external":
            self._external = ""
            self._mode = "app" if self._stack else "launcher"
        elif self._mode == "app":
            top = self._top
            if self._popup_for:
                self._decide(False)
            elif top.dialog:
                if self.spec.dialogs[top.dialog].cancelable:
                    top.dialog = ""
                    top.focused = ""
            else:
                self._back()
        self._changed()

    # --- state -----------------------------------------------------------------------------------

    @property
    def crashed(self) -> bool:
        """True while the system's "has stopped" dialog shows."""
        return self._mode == "crash"

    @property
    def actions(self) -> int:
        """How many actions were done so far (the virtual clock)."""
        return self._tick

    @property
    def location(self) -> tuple[str, str]:
        """(spec screen id, open dialog id or "") while the app is in front; ("", "") otherwise.

        Tests and benchmarks use it to check which of the spec's screens a run reached.
        """
        if self._mode != "app":
            return ("", "")
        return (self._top.screen, self._top.dialog)

    def state(self) -> dict[str, Any]:
        """The app's real state, as its data would say it (not as any screen shows it).

        {"lists": {list id: [{"title", "subtitle", **data}, ...]}, "toggles": {"screen.widget": bool},
         "screen": spec screen id or "", "dialog": dialog id or "", "crashed": bool,
         "visited": [spec screen ids entered, in order]}. Tests and benchmarks compare verdicts
        with it; nothing that decides a verdict may read it.
        """
        lists = {w.id: [{"title": it.title, "subtitle": it.subtitle, **dict(it.data)} for it in w.items]
                 for sc in self.spec.screens.values() for w in sc.widgets if w.kind is WidgetKind.LIST}
        toggles = {}
        for scope in (*self.spec.screens.values(), *self.spec.dialogs.values()):
            for i, w in enumerate(scope.widgets):
                if w.checkable:
                    key = f"{scope.id}.{w.id or f'w{i}'}"
                    toggles[key] = self._toggles.get(key, w.checked)
        screen, dialog = self.location
        return {"lists": lists, "toggles": toggles, "screen": screen, "dialog": dialog, "crashed": self.crashed,
                "visited": list(self._visited)}

    @property
    def _top(self) -> Entry:
        return self._stack[-1]

    def _changed(self) -> None:
        self._view = None
        if self._volatile:  # a non-persisting switch forgets its state once its screen is not in front
            here = self._top.screen if self._mode == "app" and self._stack else ""
            for key in [k for k in self._toggles if k in self._volatile and k.partition(".")[0] != here]:
                del self._toggles[key]

    def _current(self) -> View:
        if self._view is None:
            if self._mode == "app":
                top = self._top
                popup = self.spec.screens[self._popup_for].permission if self._popup_for else None
                self._view = app_view(self.spec, top, toggles=self._toggles, tick=self._tick,
                                      visits=self._visits[top.screen], popup=popup)
            elif self._mode == "external":
                self._view = external_view(self.spec, self._external, tick=self._tick)
            else:
                self._view = launcher_view(self.spec, tick=self._tick, crashed=self._mode == "crash")
        return self._view

    def _screen(self, view: View) -> Screen:
        return Screen(view.package, view.activity, view.root, self.spec.width, self.spec.height)

    def _start(self, screen: str) -> None:
        self._stack.clear()
        self._external = ""
        self._popup_for = ""
        self._mode = "app"
        self._enter(screen, None)

    def _enter(self, screen: str, item: Item | None) -> None:
        self._stack.append(Entry(screen=screen, item=item))
        self._visited.append(screen)
        self._visits[screen] += 1
        perm = self.spec.screens[screen].permission
        self._popup_for = screen if perm is not None and perm.name not in self._decided else ""

    def _back(self) -> None:
        rule = self.spec.screens[self._top.screen].back
        if rule == "none":
            return
        if rule == "exit":
            self._leave_app()
        elif rule == "stack":
            self._stack.pop()
            if not self._stack:
                self._leave_app()
        else:
            at = next((i for i in range(len(self._stack) - 1, -1, -1) if self._stack[i].screen == rule), None)
            if at is None:
                item = self._top.item
                self._stack.pop()
                self._enter(rule, item)
            else:
                del self._stack[at + 1:]
        self._popup_for = ""

    def _leave_app(self) -> None:
        self._stack.clear()
        self._popup_for = ""
        self._mode = "launcher"

    def _decide(self, allow: bool) -> None:
        perm = self.spec.screens[self._popup_for].permission
        assert perm is not None
        self._decided[perm.name] = allow
        self._popup_for = ""
        if not allow and perm.on_deny == "back":
            self._back()

    # --- input -------------------------------------------------------------------------------

    def _touch(self, x: int, y: int, *, long: bool) -> None:
        view = self._current()
        if view.modal is not None and not view.modal.bounds.contains(x, y):
            if view.outside == "close" and self._mode == "app":
                self._top.dialog = ""
                self._top.focused = ""
            return
        path = _hit_path(view.root, x, y)
        for w in reversed(path):
            handler = view.handlers.get(id(w))
            if handler is not None:
                if handler.enabled:
                    self._handle(handler, long=long)
                return
            if w.clickable or w.long_clickable or w.editable:
                return  # a clickable view without behaviour swallows the touch

    def _handle(self, h: Handler, *, long: bool) -> None:
        if h.system:
            self._system(h.system, long=long)
            return
        if long:
            if h.long_tap is not None:
                self._apply(h.long_tap, h)
            return
        if h.focus:
            self._top.focused = h.focus
        if h.tap is not None:
            self._apply(h.tap, h)

    def _system(self, name: str, *, long: bool) -> None:
        if long and name != "launch":
            return
        if name == "launch" and not long:
            self._start(self.spec.launch)
        elif name == "up":
            self._back()
        elif name in ("allow", "deny"):
            self._decide(name == "allow")
        elif name == "aerr_restart":
            self._start(self.spec.launch)
        elif name == "aerr_close":
            self._mode = "launcher"

    def _apply(self, e: Effect, h: Handler) -> None:
        top = self._top
        kind = e.kind
        if e.rule is not None and not self._gate_open(e, h):
            return
        if e.save is not None or e.remove:
            self._store(e, h)
        if kind is EffectKind.TOGGLE:
            spec_default = self._checked_default(h.toggle)
            self._toggles[h.toggle] = not self._toggles.get(h.toggle, spec_default)
        elif kind is EffectKind.GO:
            top.dialog = ""
            top.focused = ""
            self._enter(e.target, h.item or top.item)
        elif kind is EffectKind.BACK:
            top.dialog = ""
            self._back()
        elif kind is EffectKind.DIALOG:
            if not h.in_dialog:
                self._row_item = h.item if h.item is not None and h.item is not top.item else None
            top.dialog = e.target
            top.focused = ""
        elif kind is EffectKind.CLOSE:
            top.dialog = ""
            top.focused = ""
        elif kind is EffectKind.CRASH:
            self._stack.clear()
            self._popup_for = ""
            self._mode = "crash"
        elif kind is EffectKind.LEAVE:
            if e.target:
                self._external = e.target
                self._mode = "external"
            else:
                self._mode = "launcher"

    def _store(self, e: Effect, h: Handler) -> None:
        """Change the app's data: the lists' rows live in the (per-device) spec the layout draws."""
        top = self._top
        if e.save is not None:
            st = e.save

            def typed(name: str) -> str:
                key = f"{top.dialog}.{name}" if h.in_dialog else name
                return top.values.get(key, self._initial_value(name, top.dialog if h.in_dialog else "")).strip()

            title = typed(st.title)
            title = title[:st.truncate] if st.truncate else title
            row = Item(title=title, subtitle=typed(st.subtitle) if st.subtitle else "", data=st.data)
            self._edit_list(st.to, lambda items: (row, *items) if st.at == "top" else (*items, row))
        if e.remove:
            # a dialog's buttons act on the row that opened it, or on what the screen shows
            gone = (self._row_item or top.item) if h.in_dialog else (h.item or top.item)
            pick = {"first": lambda items: items[:1], "last": lambda items: items[-1:],
                    "item": lambda items: tuple(it for it in items if it is gone)[:1]}[e.remove_row]
            self._edit_list(e.remove, lambda items: tuple(it for it in items if it not in pick(items)))

    def _edit_list(self, list_id: str, change: Any) -> None:
        screens = dict(self.spec.screens)
        for sid, sc in screens.items():
            widgets = list(sc.widgets)
            for i, w in enumerate(widgets):
                if w.kind is WidgetKind.LIST and w.id == list_id:
                    widgets[i] = replace(w, items=tuple(change(w.items)))
                    screens[sid] = replace(sc, widgets=tuple(widgets))
                    self.spec = replace(self.spec, screens=screens)
                    return

    def _gate_open(self, e: Effect, h: Handler) -> bool:
        """Whether the gate's field holds an accepted value; shows the gate's error if not."""
        assert e.rule is not None
        top = self._top
        key = f"{top.dialog}.{e.field}" if h.in_dialog else e.field
        value = top.values.get(key, self._initial_value(e.field, top.dialog if h.in_dialog else ""))
        if e.rule.accepts(value):
            top.errors.pop(key, None)
            return True
        if e.error:
            top.errors[key] = e.error
        return False

    def _checked_default(self, key: str) -> bool:
        scope, _, wid = key.rpartition(".")
        owner = self.spec.screens.get(scope) or self.spec.dialogs.get(scope)
        widgets = owner.widgets if owner is not None else ()
        for i, w in enumerate(widgets):
            if (w.id or f"w{i}") == wid:
                return w.checked
        return False

    def _initial_value(self, field: str, dialog: str) -> str:
        """A field's text before anything was typed: its spec value, placeholders filled."""
        top = self._top
        scope = self.spec.dialogs.get(dialog) if dialog else self.spec.screens[top.screen]
        w = next((w for w in scope.widgets if w.id == field), None) if scope is not None else None
        if w is None:
            return ""
        return fill_text(self.spec, w.value, item=top.item, tick=self._tick, visits=self._visits[top.screen])

    def _type(self, text: str, *, append: bool) -> None:
        if self._mode != "app" or self._popup_for or not self._top.focused:
            raise ActionRefused("no text field has focus; tap a field before typing", serial=self.serial)
        top = self._top
        key = top.focused
        dialog, _, field = key.rpartition(".")
        old = top.values.get(key, self._initial_value(field, dialog))
        top.values[key] = old + text if append else text
        top.errors.pop(key, None)

    def _scroll(self, action: Action) -> None:
        if action.direction not in ("up", "down"):
            return
        view = self._current()
        target = None
        if action.target is not None:
            widget = locate(action.target, self._screen(view), serial=self.serial)
            target = _scroll_container(view, widget)
        if target is None:
            target = next((w for w in view.root.walk() if id(w) in view.scrollers), None)
        if target is None or self._mode != "app":
            return
        sc = view.scrollers[id(target)]
        step = sc.page if action.direction == "down" else -sc.page
        self._top.scroll[sc.key] = max(0, min(sc.max_offset, sc.offset + step))


def _hit_path(root: Widget, x: int, y: int) -> list[Widget]:
    """Root-to-leaf widgets under a point: the last child drawn that contains it, at each level."""
    path: list[Widget] = []
    node: Widget | None = root if root.bounds.contains(x, y) else None
    while node is not None:
        path.append(node)
        node = next((c for c in reversed(node.children) if c.bounds.contains(x, y)), None)
    return path


def _editable(widget: Widget) -> Widget | None:
    return next((w for w in widget.walk() if w.editable), None)


def _scroll_container(view: View, widget: Widget) -> Widget | None:
    if id(widget) in view.scrollers:
        return widget
    inside = next((w for w in widget.walk() if id(w) in view.scrollers), None)
    if inside is not None:
        return inside
    cx, cy = widget.bounds.center
    return next((w for w in reversed(_hit_path(view.root, cx, cy)) if id(w) in view.scrollers), None)


def _visible_center(widget: Widget, width: int, height: int) -> tuple[int, int]:
    b = widget.bounds
    x1, y1, x2, y2 = max(0, b.x1), max(0, b.y1), min(width, b.x2), min(height, b.y2)
    return ((x1 + x2) // 2, (y1 + y2) // 2) if x2 > x1 and y2 > y1 else b.center
