"""App specs: a YAML (or dict) description of an app's screens, validated into frozen dataclasses.

An author names screens, their widgets and what tapping each does; the virtual device lays
them out and runs them. The format is documented in `docs/app-spec.md`. Anything malformed
raises `SpecError(source, problem)` naming the screen, the widget and what to fix — never
another exception, whatever the input.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from appatlas.errors import SpecError

__all__ = [
    "AppSpec",
    "DialogSpec",
    "Effect",
    "EffectKind",
    "Item",
    "Permission",
    "Rule",
    "ScreenSpec",
    "Store",
    "WidgetKind",
    "WidgetSpec",
    "load_spec",
    "spec_from_dict",
    "spec_from_yaml",
    "template_names",
]


MAX_FILE_BYTES = 8 << 20


class WidgetKind(enum.StrEnum):
    TEXT = "text"
    BUTTON = "button"
    INPUT = "input"
    CHECKBOX = "checkbox"
    SWITCH = "switch"
    LIST = "list"
    IMAGE = "image"
    ICON = "icon"


class EffectKind(enum.StrEnum):
    GO = "go"  # open a screen (push on the back stack)
    BACK = "back"  # as the back key; from a dialog button: close the dialog, then leave the screen
    DIALOG = "dialog"  # open a dialog over the current screen
    CLOSE = "close"  # close the open dialog
    TOGGLE = "toggle"  # flip a checkbox / switch (their default)
    CRASH = "crash"  # the app dies
    LEAVE = "leave"  # to the launcher, or to another app's screen (`target` = its package)
    NONE = "none"  # nothing happens


RULES = ("nonempty", "email", "number", "phone")
INPUT_TYPES = ("text", "email", "number", "phone", "password", "multiline")
PLACES = ("content", "toolbar", "bottom", "fab")
BACK_RULES = ("stack", "exit", "none")

_TEMPLATE = re.compile(r"\{([^{}]*)\}")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_NUMBER = re.compile(r"[+-]?[0-9]+([.,][0-9]+)?")
_PHONE = re.compile(r"\+?[0-9 ()-]{6,20}")


@dataclass(frozen=True, slots=True)
class Rule:
    """What a gate's field must hold: one of `RULES`, or `match` (a full-match regular expression)."""

    kind: str
    pattern: str = ""

    def accepts(self, value: str) -> bool:
        v = value.strip()
        if self.kind == "nonempty":
            return bool(v)
        if self.kind == "email":
            return _EMAIL.fullmatch(v) is not None
        if self.kind == "number":
            return _NUMBER.fullmatch(v) is not None
        if self.kind == "phone":
            return _PHONE.fullmatch(v) is not None
        return re.fullmatch(self.pattern, value) is not None


@dataclass(frozen=True, slots=True)
class Store:
    """The app's data a tap changes: a row made from typed fields is added to a list (`save`).

    `to` is the id of a list widget anywhere in the app; `title` and `subtitle` name inputs of the
    screen the tap is on (their typed text becomes the row's lines); `data` is kept on the row.
    `truncate` > 0 keeps only that many characters of the title (a seeded bug); `at` is "top" or
    "bottom" of the list.
    """

    to: str
    title: str
    subtitle: str = ""
    data: tuple[tuple[str, str], ...] = ()
    truncate: int = 0
    at: str = "top"


REMOVE_ROWS = ("item", "first", "last")


@dataclass(frozen=True, slots=True)
class Effect:
    """What a tap does. `target` is a screen id (go), a dialog id (dialog) or a package (leave).

    Besides moving, a tap may change the app's data: `save` adds a row to a list, `remove` (a list
    id) deletes the row the screen was opened from (`remove_row: item`), or the first / last row
    (seeded bugs). Data changes happen only when the gate (if any) lets the tap through.
    """

    kind: EffectKind
    target: str = ""
    field: str = ""  # gate: the input whose value decides whether the effect happens
    rule: Rule | None = None
    error: str = ""  # gate: shown under the field when the value is refused
    save: Store | None = None
    remove: str = ""
    remove_row: str = "item"


@dataclass(frozen=True, slots=True)
class Item:
    """One row of a list. `data` holds extra values a detail screen shows as `{item.<key>}`."""

    title: str
    subtitle: str = ""
    tap: Effect | None = None
    long_tap: Effect | None = None
    data: tuple[tuple[str, str], ...] = ()

    def value(self, key: str) -> str:
        if key == "title":
            return self.title
        if key == "subtitle":
            return self.subtitle
        return dict(self.data).get(key, "")


@dataclass(frozen=True, slots=True)
class WidgetSpec:
    """One widget as the author wrote it; bounds come from the layout."""

    kind: WidgetKind
    label: str = ""  # text / button label / input hint / checkbox label / image or icon description
    id: str = ""
    desc: str = ""
    input_type: str = "text"
    value: str = ""  # an input's initial text
    checked: bool = False
    enabled: bool = True
    place: str = "content"
    tap: Effect | None = None
    long_tap: Effect | None = None
    items: tuple[Item, ...] = ()
    row_tap: Effect | None = None
    row_long_tap: Effect | None = None
    persist: bool = True  # a checkbox / switch keeps its state after its screen closes (false: a seeded bug)

    @property
    def checkable(self) -> bool:
        return self.kind in (WidgetKind.CHECKBOX, WidgetKind.SWITCH)


@dataclass(frozen=True, slots=True)
class Permission:
    """A system permission popup shown the first time a screen is entered."""

    name: str
    message: str
    on_deny: str = "stay"  # or "back"


@dataclass(frozen=True, slots=True)
class ScreenSpec:
    id: str
    activity: str
    title: str = ""
    widgets: tuple[WidgetSpec, ...] = ()
    back: str = "stack"  # "stack" | "exit" | "none" | a screen id
    up: bool = True  # a "Navigate up" button in the title bar
    permission: Permission | None = None


@dataclass(frozen=True, slots=True)
class DialogSpec:
    id: str
    title: str = ""
    message: str = ""
    widgets: tuple[WidgetSpec, ...] = ()
    cancelable: bool = True


@dataclass(frozen=True, slots=True)
class AppSpec:
    """A whole app: its package, launch screen, screens and dialogs (both keyed by id)."""

    package: str
    name: str
    launch: str
    screens: Mapping[str, ScreenSpec]
    dialogs: Mapping[str, DialogSpec]
    version: str = ""
    width: int = 1080
    height: int = 2280
    status_bar: bool = False
    source: str = "<spec>"

    def activity_name(self, screen_id: str) -> str:
        """The screen's fully qualified activity (`.Foo` expands with the package)."""
        act = self.screens[screen_id].activity
        return self.package + act if act.startswith(".") else act


def template_names(text: str) -> list[str]:
    """The `{name}` placeholders in a text, in order."""
    return _TEMPLATE.findall(text)


def spec_from_dict(data: Any, *, source: str = "<dict>") -> AppSpec:
    """Validate an already parsed spec (a dict as `yaml.safe_load` gives) into an AppSpec."""
    from appatlas.devices._spec_reader import read_spec  # the reader builds these types: import it late

    try:
        return read_spec(data, source=source)
    except RecursionError:
        raise SpecError(source, "nested too deeply to be an app spec") from None


# --- loading ------------------------------------------------------------------------------------


def load_spec(spec: str | os.PathLike[str] | Mapping[str, Any], *, source: str = "") -> AppSpec:
    """Load an app spec from a YAML file path or an already parsed dict."""
    if isinstance(spec, Mapping):
        return spec_from_dict(spec, source=source or "<dict>")
    path = Path(spec)
    src = source or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpecError(src, f"file is {size} bytes, more than the {MAX_FILE_BYTES} an app spec may have")
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(src, "no such file; pass the path of a YAML app spec or a built-in app name") from None
    except OSError as exc:
        raise SpecError(src, f"cannot read the file: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(src, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return spec_from_yaml(text, source=src)


def spec_from_yaml(text: str, *, source: str = "<yaml>") -> AppSpec:
    """Parse YAML text (with `yaml.safe_load`) and validate it as an app spec."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise SpecError(source, f"not valid YAML{where}: {problem}") from None
    except (RecursionError, ValueError, OverflowError) as exc:
        raise SpecError(source, f"not valid YAML: {type(exc).__name__}") from None
    return spec_from_dict(data, source=source)


