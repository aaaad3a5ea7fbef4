"""Lays an app spec's screens out as widget trees: bounds, flags and resource ids, as a phone would dump them.

Pure functions of the virtual device's state. Each clickable widget gets a `Handler` saying
what a tap on it does; the device keys them by `id(widget)` of the tree built here. Besides
the app's screens: its dialogs, the permission popup, the launcher, the crash dialog, and
other apps' screens.
"""

from __future__ import annotations

from collections.abc import Mapping

from appatlas.devices._layout_parts import (
    BOTTOM,
    BUTTON,
    GAP,
    LINE,
    PAD,
    ROW1,
    ROW2,
    STATUS,
    TOOLBAR,
    Builder,
    Entry,
    Fill,
    Handler,
    Scroller,
    View,
    button_row,
    content_area,
    field_key,
    leaf,
    toggle_key,
    widget_height,
)
from appatlas.devices.spec import AppSpec, DialogSpec, Item, Permission, ScreenSpec, WidgetKind
from appatlas.errors import SpecError
from appatlas.hierarchy import ROOT_CLASS
from appatlas.types import Bounds, Widget

__all__ = [
    "CRASH_PACKAGE",
    "LAUNCHER",
    "PERMISSION",
    "Entry",
    "Handler",
    "Scroller",
    "View",
    "app_view",
    "check_layout",
    "external_view",
    "fill_text",
    "launcher_view",
]

LAUNCHER = ("com.android.launcher3", "com.android.launcher3.Launcher")
PERMISSION = ("com.android.permissioncontroller",
              "com.android.permissioncontroller.permission.ui.GrantPermissionsActivity")
CRASH_PACKAGE = "android"
_SYSTEMUI = "com.android.systemui"


def fill_text(spec: AppSpec, text: str, *, item: Item | None, tick: int, visits: int) -> str:
    """`text` with its `{placeholders}` filled as the screen would show them."""
    return Fill.at(spec, item=item, tick=tick, visits=visits)(text)


# --- the app's own screens ----------------------------------------------------------------------


def app_view(spec: AppSpec, entry: Entry, *, toggles: Mapping[str, bool], tick: int, visits: int,
             popup: Permission | None = None) -> View:
    """The app's screen `entry` with its open dialog or permission popup on top."""
    b = Builder(spec, spec.width, spec.height)
    screen = spec.screens[entry.screen]
    fill = Fill.at(spec, item=entry.item, tick=tick, visits=visits)
    windows = [_app_window(b, screen, entry, toggles, fill)]
    if spec.status_bar:  # above the app, below dialogs
        windows.append(_status_window(b, fill))
    modal, outside = None, ""
    package, activity = spec.package, spec.activity_name(screen.id)
    if entry.dialog and popup is None:
        dialog = spec.dialogs[entry.dialog]
        modal = _dialog_window(b, dialog, entry, toggles, fill)
        outside = "close" if dialog.cancelable else ""
        windows.append(modal)
    if popup is not None:
        modal = _permission_window(b, popup, fill)
        windows.append(modal)
        package, activity = PERMISSION
    return _view(b, package, activity, windows, modal, outside)


def _view(b: Builder, package: str, activity: str, windows: list[Widget], modal: Widget | None,
          outside: str) -> View:
    root = Widget(class_name=ROOT_CLASS, bounds=Bounds(0, 0, b.w, b.h), children=tuple(windows))
    return View(package, activity, root, b.handlers, b.scrollers, modal, outside)


def _app_window(b: Builder, screen: ScreenSpec, entry: Entry, toggles: Mapping[str, bool],
                fill: Fill) -> Widget:
    top = b.px(STATUS)
    tb = top + b.px(TOOLBAR)
    bottom_ws = [w for w in screen.widgets if w.place == "bottom"]
    bottom = b.h - (b.px(BOTTOM) if bottom_ws else 0)
    parts = [_toolbar(b, screen, entry, fill, top, tb)]
    body = [w for w in screen.widgets if w.place == "content"]
    parts.append(content_area(b, screen.id, body, entry, toggles, fill,
                              Bounds(0, tb, b.w, bottom), in_dialog=False))
    if bottom_ws:
        parts.append(button_row(b, screen.id, bottom_ws, entry, fill, Bounds(0, bottom, b.w, b.h),
                                in_dialog=False))
    column = b.make(class_name="android.widget.LinearLayout", bounds=Bounds(0, top, b.w, b.h),
                    children=tuple(parts))
    kids = [column]
    fab = next((w for w in screen.widgets if w.place == "fab"), None)
    if fab is not None:
        size, m = b.px(56), b.px(PAD)
        box = Bounds(b.w - m - size, bottom - m - size, b.w - m, bottom - m)
        kids.append(leaf(b, fab, box, entry, toggles, fill, key=toggle_key(screen.id, fab, 0), in_dialog=False))
    return b.make(class_name="android.widget.FrameLayout", bounds=Bounds(0, 0, b.w, b.h), children=tuple(kids))


def _toolbar(b: Builder, screen: ScreenSpec, entry: Entry, fill: Fill, y1: int, y2: int) -> Widget:
    kids = []
    x = b.px(PAD)
    size = y2 - y1
    if screen.up:
        kids.append(b.make(Handler(system="up"), class_name="android.widget.ImageButton",
                           bounds=Bounds(0, y1, size, y2), content_desc="Navigate up", clickable=True))
        x = size + b.px(PAD)
    icons = [w for w in screen.widgets if w.place == "toolbar"]
    right = b.w - len(icons) * size
    if screen.title:
        kids.append(b.make(class_name="android.widget.TextView", bounds=Bounds(x, y1, max(x, right), y2),
                           text=fill(screen.title)))
    for i, w in enumerate(icons):
        box = Bounds(right + i * size, y1, right + (i + 1) * size, y2)
        kids.append(leaf(b, w, box, entry, {}, fill, key=toggle_key(screen.id, w, i), in_dialog=False))
    return b.make(class_name="android.view.ViewGroup", bounds=Bounds(0, y1, b.w, y2),
                  resource_id=b.rid("toolbar"), children=tuple(kids))


# --- windows over the app -----------------------------------------------------------------------


def _dialog_box(b: Builder, height: int) -> Bounds:
    w = round(b.w * 0.84)
    x = (b.w - w) // 2
    height = min(height, b.h - 2 * b.px(STATUS))
    y = (b.h - height) // 2
    return Bounds(x, y, x + w, y + height)


def _dialog_heights(b: Builder, d: DialogSpec, fill: Fill, entry: Entry) -> tuple[int, int, int, int]:
    """(title, message, content, buttons) heights of a dialog."""
    inner = round(b.w * 0.84) - 2 * b.px(24)
    title = b.px(40) if d.title else 0
    message = b.px(LINE) * b.lines(fill(d.message), inner) + b.px(GAP) if d.message else 0
    body_h = 0
    body = [w for w in d.widgets if w.place != "bottom"]
    for w in body:
        if w.kind is WidgetKind.LIST:
            row = ROW2 if any(it.subtitle for it in w.items) else ROW1
            body_h += b.px(row) * max(1, len(w.items)) + b.px(GAP)
        else:
            err = bool(entry.errors.get(field_key(d.id, w, True)))
            body_h += widget_height(b, w, fill(w.label or w.value), width=inner, with_error=err) + b.px(GAP)
    body_h += 2 * b.px(PAD) if body else 0
    buttons = b.px(52) if any(w.place == "bottom" for w in d.widgets) else 0
    return title, message, body_h, buttons


def _dialog_window(b: Builder, d: DialogSpec, entry: Entry, toggles: Mapping[str, bool], fill: Fill) -> Widget:
    title_h, message_h, content_h, buttons_h = _dialog_heights(b, d, fill, entry)
    box = _dialog_box(b, b.px(24) + title_h + message_h + content_h + buttons_h + b.px(GAP))
    pad = b.px(24)
    kids, y = [], box.y1 + pad
    if d.title:
        kids.append(b.make(class_name="android.widget.TextView", bounds=Bounds(box.x1 + pad, y, box.x2 - pad,
                           y + title_h), resource_id="android:id/alertTitle", text=fill(d.title)))
        y += title_h
    if d.message:
        kids.append(b.make(class_name="android.widget.TextView", bounds=Bounds(box.x1 + pad, y, box.x2 - pad,
                           y + message_h), resource_id="android:id/message", text=fill(d.message)))
        y += message_h
    body = [w for w in d.widgets if w.place != "bottom"]
    if body:
        area = Bounds(box.x1 + pad - b.px(PAD), y, box.x2 - pad + b.px(PAD), y + content_h)
        kids.append(content_area(b, d.id, body, entry, toggles, fill, area, in_dialog=True))
        y += content_h
    buttons = [w for w in d.widgets if w.place == "bottom"]
    if buttons:
        kids.append(button_row(b, d.id, buttons, entry, fill, Bounds(box.x1, y, box.x2, min(box.y2, y + buttons_h)),
                               in_dialog=True))
    panel = b.make(class_name="android.widget.LinearLayout", bounds=box, resource_id="android:id/parentPanel",
                   children=tuple(kids))
    return b.make(class_name="android.widget.FrameLayout", bounds=box, children=(panel,))


def _system_dialog(b: Builder, *, package: str, title: str, message: str,
                   buttons: list[tuple[str, str, str]], ids: tuple[str, str]) -> Widget:
    """A stacked-button system dialog; `buttons` are (resource id, text, handler system name)."""
    pad, bh = b.px(24), b.px(BUTTON)
    inner = round(b.w * 0.84) - 2 * pad
    title_h = b.px(LINE) * b.lines(title, inner) + b.px(GAP) if title else 0
    msg_h = b.px(LINE) * b.lines(message, inner) + b.px(GAP) if message else 0
    box = _dialog_box(b, 2 * pad + title_h + msg_h + len(buttons) * (bh + b.px(GAP)))
    kids, y = [], box.y1 + pad
    for text, h, rid in ((title, title_h, ids[0]), (message, msg_h, ids[1])):
        if text:
            kids.append(b.make(class_name="android.widget.TextView", package=package,
                               bounds=Bounds(box.x1 + pad, y, box.x2 - pad, y + h), resource_id=rid, text=text))
            y += h
    for rid, text, system in buttons:
        kids.append(b.make(Handler(system=system), class_name="android.widget.Button", package=package,
                           bounds=Bounds(box.x1 + pad, y, box.x2 - pad, y + bh), resource_id=rid, text=text,
                           clickable=True))
        y += bh + b.px(GAP)
    panel = b.make(class_name="android.widget.LinearLayout", package=package, bounds=box, children=tuple(kids))
    return b.make(class_name="android.widget.FrameLayout", package=package, bounds=box, children=(panel,))


def _permission_window(b: Builder, p: Permission, fill: Fill) -> Widget:
    pkg = PERMISSION[0]
    return _system_dialog(b, package=pkg, title="", message=fill(p.message),
                          buttons=[(f"{pkg}:id/permission_allow_button", "Allow", "allow"),
                                   (f"{pkg}:id/permission_deny_button", "Deny", "deny")],
                          ids=("", f"{pkg}:id/permission_message"))


def _status_window(b: Builder, fill: Fill) -> Widget:
    h = b.px(STATUS)
    clock = b.make(class_name="android.widget.TextView", package=_SYSTEMUI,
                   bounds=Bounds(b.px(PAD), 0, b.px(PAD) + b.px(48), h), resource_id=f"{_SYSTEMUI}:id/clock",
                   text=fill.values["clock"])
    return b.make(class_name="android.widget.FrameLayout", package=_SYSTEMUI, bounds=Bounds(0, 0, b.w, h),
                  resource_id=f"{_SYSTEMUI}:id/status_bar", children=(clock,))


# --- outside the app ----------------------------------------------------------------------------


def launcher_view(spec: AppSpec, *, tick: int, crashed: bool) -> View:
    """The home screen with the app's icon; with the system's crash dialog on top after a crash."""
    b = Builder(spec, spec.width, spec.height)
    pkg = LAUNCHER[0]
    fill = Fill.at(spec, item=None, tick=tick, visits=0)
    cell = b.w // 4
    top = b.px(STATUS) + b.px(PAD)
    search = b.make(class_name="android.widget.TextView", package=pkg, resource_id=f"{pkg}:id/search_container",
                    bounds=Bounds(b.px(PAD), top, b.w - b.px(PAD), top + b.px(BUTTON)), text="Search")
    size = b.px(56)
    cx, y = cell // 2, b.h - 2 * cell
    picture = b.make(class_name="android.widget.ImageView", package=pkg,
                     bounds=Bounds(cx - size // 2, y + b.px(GAP), cx + size // 2, y + b.px(GAP) + size))
    name = b.make(class_name="android.widget.TextView", package=pkg, text=spec.name,
                  bounds=Bounds(0, y + b.px(GAP) + size, cell, y + b.px(GAP) + size + b.px(LINE)))
    icon = b.make(Handler(system="launch"), class_name="android.widget.FrameLayout", package=pkg,
                  bounds=Bounds(0, y, cell, y + cell), content_desc=spec.name, clickable=True, long_clickable=True,
                  children=(picture, name))
    workspace = b.make(class_name="android.view.ViewGroup", package=pkg, resource_id=f"{pkg}:id/workspace",
                       bounds=Bounds(0, b.px(STATUS), b.w, b.h), children=(search, icon))
    windows = [b.make(class_name="android.widget.FrameLayout", package=pkg, bounds=Bounds(0, 0, b.w, b.h),
                      children=(workspace,))]
    if spec.status_bar:
        windows.append(_status_window(b, fill))
    modal, package, activity = None, pkg, LAUNCHER[1]
    if crashed:
        modal = _system_dialog(b, package=CRASH_PACKAGE, title=f"{spec.name} has stopped", message="",
                               buttons=[("android:id/aerr_restart", "Open app again", "aerr_restart"),
                                        ("android:id/aerr_close", "Close app", "aerr_close")],
                               ids=("android:id/alertTitle", "android:id/message"))
        windows.append(modal)
        package, activity = CRASH_PACKAGE, "com.android.server.am.AppErrorDialog"
    return _view(b, package, activity, windows, modal, "")


def external_view(spec: AppSpec, package: str, *, tick: int) -> View:
    """Another app's screen, opened from the app under test (a share sheet target, a browser)."""
    b = Builder(spec, spec.width, spec.height)
    fill = Fill.at(spec, item=None, tick=tick, visits=0)
    top = b.px(STATUS)
    name = package.rsplit(".", 1)[-1].capitalize()
    title = b.make(class_name="android.widget.TextView", package=package,
                   bounds=Bounds(b.px(PAD), top, b.w - b.px(PAD), top + b.px(TOOLBAR)), text=name)
    body = b.make(class_name="android.widget.TextView", package=package,
                  bounds=Bounds(b.px(PAD), top + b.px(TOOLBAR) + b.px(PAD), b.w - b.px(PAD),
                                top + b.px(TOOLBAR) + b.px(PAD) + b.px(LINE)), text=f"Opened from {spec.name}")
    windows = [b.make(class_name="android.widget.FrameLayout", package=package, bounds=Bounds(0, 0, b.w, b.h),
                      children=(title, body))]
    if spec.status_bar:
        windows.append(_status_window(b, fill))
    return _view(b, package, f"{package}.MainActivity", windows, None, "")


# --- checks at load time ------------------------------------------------------------------------


def check_layout(spec: AppSpec) -> None:
    """Raise SpecError where a screen cannot be laid out (a list left without room, a dialog too tall)."""
    b = Builder(spec, spec.width, spec.height)
    fill = Fill.at(spec, item=Item(title="x" * 16), tick=0, visits=0)
    for s in spec.screens.values():
        where = f"screen {s.id!r}"
        icons = sum(w.place == "toolbar" for w in s.widgets)
        if icons > 4:
            raise SpecError(spec.source, f"{where}: {icons} toolbar icons; the title bar holds 4")
        if sum(w.place == "bottom" for w in s.widgets) > 4:
            raise SpecError(spec.source, f"{where}: more than 4 bottom buttons; move some into the content")
        body = [w for w in s.widgets if w.place == "content"]
        if not any(w.kind is WidgetKind.LIST for w in body):
            continue
        avail = spec.height - b.px(STATUS + TOOLBAR + 2 * PAD)
        avail -= b.px(BOTTOM) if any(w.place == "bottom" for w in s.widgets) else 0
        inner = spec.width - 2 * b.px(PAD)
        lst = next(w for w in body if w.kind is WidgetKind.LIST)
        row = b.px(ROW2 if any(it.subtitle for it in lst.items) else ROW1)
        fixed = sum(widget_height(b, w, fill(w.label or w.value), width=inner, with_error=True) + b.px(GAP)
                    for w in body if w.kind is not WidgetKind.LIST)
        if avail - fixed < 2 * row:
            raise SpecError(spec.source, f"{where}: the widgets around the list leave it less than two rows; "
                                         "move some to another screen")
    for d in spec.dialogs.values():
        e = Entry(screen=spec.launch)
        e.errors = {field_key(d.id, w, True): "x" for w in d.widgets if w.kind is WidgetKind.INPUT}
        total = b.px(24 + GAP) + sum(_dialog_heights(b, d, fill, e))
        if total > spec.height - 2 * b.px(STATUS):
            raise SpecError(spec.source, f"dialog {d.id!r}: too tall for the screen ({total} px); "
                                         "use fewer widgets or a screen instead")
        if sum(w.place == "bottom" for w in d.widgets) > 3:
            raise SpecError(spec.source, f"dialog {d.id!r}: more than 3 buttons; put the choices in a list")
