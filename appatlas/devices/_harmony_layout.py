"""Parse HarmonyOS' `uitest dumpLayout` JSON into a Widget tree.

The format (as `hmdriver2` reads it, and as the UI test service writes it): every node is
`{"attributes": {...}, "children": [...]}`; attribute values are strings ("true"/"false" for
flags), `bounds` is "[left,top][right,bottom]", `type` is the ArkUI component (Text, Button,
TextInput, Toggle, List, …), `id`/`key` the developer's id, `description` the accessibility
text. The top node is the display; its children are windows, which carry `bundleName`,
`abilityName` and `pagePath`.

Mapping: type -> class_name (as is), id (else key) -> resource_id, description -> content_desc,
the flags one to one; `editable` is not in the dump and comes from the type (TextInput,
TextArea, Search, RichEditor). Each widget's `package` is its window's bundle.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from appatlas.errors import HierarchyError
from appatlas.hierarchy import ROOT_CLASS
from appatlas.types import Bounds, Widget

__all__ = ["EDITABLE_TYPES", "Layout", "parse_layout"]

EDITABLE_TYPES = frozenset({"TextInput", "TextArea", "Search", "RichEditor"})
MAX_DEPTH = 200
MAX_NODES = 50_000
_BOUNDS = re.compile(r"\[(-?\d+),(-?\d+)\]\[(-?\d+),(-?\d+)\]")


@dataclass(frozen=True, slots=True)
class Layout:
    """A parsed dump: the widget tree (root = the display) and each window's (bundle, ability)."""

    root: Widget
    windows: tuple[tuple[str, str], ...]

    def foreground(self, prefer: str = "") -> tuple[str, str]:
        """(bundle, ability) of the window in front: the first naming an ability (`prefer`'s bundle first)."""
        named = [w for w in self.windows if w[1]]
        return next((w for w in named if w[0] == prefer), named[0] if named else ("", ""))


def parse_layout(data: bytes | str | dict[str, Any], *, source: str = "<layout>", width: int = 0,
                 height: int = 0) -> Layout:
    """The dump as a Layout; HierarchyError when it is not a dumpLayout JSON."""
    if isinstance(data, bytes | str):
        if not (data.strip() if isinstance(data, str) else data.strip()):
            raise HierarchyError(source, "empty layout (the UI test service answers this while the UI is busy)")
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise HierarchyError(source, f"not JSON: {exc}") from None
    else:
        doc = data
    if not isinstance(doc, dict) or not isinstance(doc.get("attributes", {}), dict):
        raise HierarchyError(source, "the top is not a node ({\"attributes\": {...}, \"children\": [...]})")
    count = [0]
    windows: list[tuple[str, str]] = []
    children = []
    for i, win in enumerate(_kids(doc, source)):
        attrs = _attrs(win, source)
        bundle, ability = str(attrs.get("bundleName", "")), str(attrs.get("abilityName", ""))
        windows.append((bundle, ability))
        children.append(_node(win, source, depth=1, package=bundle, count=count, where=f"window {i}"))
    b = _bounds(_attrs(doc, source).get("bounds", ""))
    if b is None or (b.x2 <= b.x1 and width > 0):
        b = Bounds(0, 0, max(width, 0), max(height, 0))
    root = Widget(class_name=ROOT_CLASS, bounds=b, children=tuple(children))
    return Layout(root, tuple(windows))


def _kids(node: dict[str, Any], source: str) -> list[dict[str, Any]]:
    kids = node.get("children", [])
    if not isinstance(kids, list) or not all(isinstance(k, dict) for k in kids):
        raise HierarchyError(source, "children must be a list of nodes")
    return kids


def _attrs(node: dict[str, Any], source: str) -> dict[str, Any]:
    attrs = node.get("attributes", {})
    if not isinstance(attrs, dict):
        raise HierarchyError(source, "attributes must be an object")
    return attrs


def _node(node: dict[str, Any], source: str, *, depth: int, package: str, count: list[int], where: str) -> Widget:
    if depth > MAX_DEPTH:
        raise HierarchyError(source, f"nodes nested deeper than {MAX_DEPTH}")
    count[0] += 1
    if count[0] > MAX_NODES:
        raise HierarchyError(source, f"more than {MAX_NODES} nodes")
    a = _attrs(node, source)
    bounds = _bounds(a.get("bounds", ""))
    if bounds is None:
        raise HierarchyError(source, f"{where}: bounds {str(a.get('bounds'))[:40]!r} is not [l,t][r,b]")
    kind = _text(a.get("type")) or "Node"
    kids = tuple(_node(k, source, depth=depth + 1, package=package, count=count, where=f"{where}/{i}")
                 for i, k in enumerate(_kids(node, source)))
    return Widget(
        class_name=kind, bounds=bounds, resource_id=_text(a.get("id")) or _text(a.get("key")),
        text=_text(a.get("text")), content_desc=_text(a.get("description")), package=package,
        hint=_text(a.get("hint")), clickable=_flag(a.get("clickable")), long_clickable=_flag(a.get("longClickable")),
        editable=kind in EDITABLE_TYPES, scrollable=_flag(a.get("scrollable")), checkable=_flag(a.get("checkable")),
        checked=_flag(a.get("checked")), enabled=_flag(a.get("enabled"), default=True),
        focused=_flag(a.get("focused")), selected=_flag(a.get("selected")), children=kids,
    )


def _bounds(raw: Any) -> Bounds | None:
    m = _BOUNDS.fullmatch(str(raw).strip())
    if m is None:
        return None
    x1, y1, x2, y2 = (int(v) for v in m.groups())
    return Bounds(x1, y1, max(x1, x2), max(y1, y2))


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _flag(value: Any, *, default: bool = False) -> bool:
    if isinstance(value, bool):
        return value
    if value is None or value == "":
        return default
    return str(value).lower() == "true"
