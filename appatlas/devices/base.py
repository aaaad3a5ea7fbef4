"""The Device protocol every backend implements, and selector resolution shared by all of them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from appatlas.errors import SelectorNotFound, UnsafeName
from appatlas.types import Action, Screen, Selector, Widget

__all__ = ["Device", "DeviceInfo", "app_name", "locate", "selector_for"]

_PACKAGE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+")
_ACTIVITY = re.compile(r"\.?[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*")


def app_name(app: str) -> tuple[str, str]:
    """("package", "activity" or "") from "package[/activity]", refusing anything that is not a valid
    Android name: these names come from recordings and atlases and end up in `adb shell` commands."""
    package, _, activity = app.partition("/")
    if not _PACKAGE.fullmatch(package) or (activity and not _ACTIVITY.fullmatch(activity)):
        raise UnsafeName(f"{app[:80]!r} is not a valid Android package[/activity] name; refusing to send it to the "
                         "device (expected e.g. com.example.notes/.MainActivity)")
    return package, activity


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    serial: str
    model: str
    width: int
    height: int
    sdk: int = 0


@runtime_checkable
class Device(Protocol):
    """What appatlas needs from a phone, an emulator or a virtual app.

    `snapshot` observes; `perform` acts (resolving the action's selector on the current
    screen, bounds as the last resort). Backends raise `appatlas.errors.DeviceError` subclasses.
    """

    serial: str

    def snapshot(self) -> Screen: ...

    def perform(self, action: Action) -> None: ...

    def current_app(self) -> tuple[str, str]:
        """(package, activity) in the foreground."""
        ...

    def launch(self, app: str = "") -> None:
        """Start `app` ("package" or "package/activity"); "" means the app under test."""
        ...

    def stop_app(self, package: str = "") -> None: ...

    def info(self) -> DeviceInfo: ...


def selector_for(widget: Widget, screen: Screen) -> Selector:
    """The most stable selector that finds `widget` again on `screen`.

    `index` counts earlier widgets on the screen matching the same fields, so rows of a list
    that share an id stay apart.
    """
    fields = {"resource_id": widget.resource_id, "content_desc": widget.content_desc, "text": widget.text}
    if not any(fields.values()):
        fields = {}
    matches = [w for w in screen.widgets() if _matches(w, widget.class_name, **fields)]
    index = next((i for i, w in enumerate(matches) if w is widget), 0)
    return Selector(class_name=widget.class_name, index=index, bounds=widget.bounds, **fields)


def _matches(w: Widget, class_name: str, resource_id: str = "", content_desc: str = "", text: str = "") -> bool:
    return (
        (not class_name or w.class_name == class_name)
        and (not resource_id or w.resource_id == resource_id)
        and (not content_desc or w.content_desc == content_desc)
        and (not text or w.text == text)
    )


def locate(selector: Selector, screen: Screen, *, serial: str = "") -> Widget:
    """The widget `selector` names on `screen`.

    Tries the full selector, then drops the text (texts change, e.g. a field that was typed
    into), then falls back to the widget at the centre of the recorded bounds.
    """
    attempts = [
        dict(resource_id=selector.resource_id, content_desc=selector.content_desc, text=selector.text),
        dict(resource_id=selector.resource_id, content_desc=selector.content_desc),
    ]
    for fields in attempts:
        if not any(fields.values()) and not selector.class_name:
            continue
        if not any(fields.values()) and (selector.resource_id or selector.content_desc or selector.text):
            continue
        matches = [w for w in screen.widgets() if _matches(w, selector.class_name, **fields)]
        if matches:
            if selector.index < len(matches):
                return matches[selector.index]
            if selector.bounds is None:
                return matches[-1]
            break
    if selector.bounds is not None:
        hit = screen.widget_at(*selector.bounds.center)
        if hit is not None:
            return hit
    raise SelectorNotFound(
        f"no widget matches {selector.describe()} on {screen.package}/{screen.activity}; "
        "the app may have changed: re-crawl the screen or edit the test",
        serial=serial,
    )
