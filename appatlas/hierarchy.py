"""View hierarchies in and out: uiautomator2's XML and DroidBot's `views` JSON, one Widget tree.

Both parsers return a synthetic root widget (class `hierarchy`) whose children are the
window roots, so a screen is always one tree. Anything that is not a hierarchy raises
`HierarchyError` naming the source and the problem — never another exception.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

from appatlas.errors import HierarchyError
from appatlas.types import Bounds, Widget

__all__ = ["ROOT_CLASS", "parse_droidbot_views", "parse_u2_xml", "to_u2_xml"]

ROOT_CLASS = "hierarchy"
MAX_DEPTH = 400  # real apps nest < 60 deep; deeper input is hostile or broken
_BOUNDS = re.compile(r"^\[(-?\d{1,9}),(-?\d{1,9})\]\[(-?\d{1,9}),(-?\d{1,9})\]$")

# uiautomator2 attribute name -> Widget field, for boolean flags
_FLAGS = {
    "checkable": "checkable",
    "checked": "checked",
    "clickable": "clickable",
    "enabled": "enabled",
    "focused": "focused",
    "scrollable": "scrollable",
    "long-clickable": "long_clickable",
    "password": "password",
    "selected": "selected",
}


def _bounds(x1: int, y1: int, x2: int, y2: int) -> Bounds:
    # Real dumps contain off-screen and inverted rectangles; keep them, with zero size.
    return Bounds(x1, y1, max(x1, x2), max(y1, y2))


def _root(children: Sequence[Widget], width: int | None, height: int | None) -> Widget:
    w = width if width is not None else max((c.bounds.x2 for c in children), default=0)
    h = height if height is not None else max((c.bounds.y2 for c in children), default=0)
    return Widget(class_name=ROOT_CLASS, bounds=Bounds(0, 0, max(w, 0), max(h, 0)), children=tuple(children))


# --- uiautomator2 XML -------------------------------------------------------------------------


def parse_u2_xml(data: bytes | str, *, source: str = "<hierarchy>", width: int | None = None,
                 height: int | None = None) -> Widget:
    """Parse `d.dump_hierarchy()` output into a Widget tree."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HierarchyError(source, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    else:
        text = data
    if not text.strip():
        raise HierarchyError(source, "empty dump (uiautomator2 returns this while the UI is busy; retry)")
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise HierarchyError(source, "DOCTYPE/ENTITY declarations are not allowed in a view hierarchy")
    try:
        top = ET.fromstring(text)
    except ET.ParseError as exc:
        raise HierarchyError(source, f"malformed XML: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise HierarchyError(source, f"malformed XML: {exc}") from None
    if top.tag != "hierarchy":
        raise HierarchyError(source, f"root element is <{top.tag}>, expected <hierarchy>")
    windows = [_u2_node(n, source, 1) for n in top if n.tag == "node"]
    return _root(windows, width, height)


def _u2_node(el: ET.Element, source: str, depth: int) -> Widget:
    if depth > MAX_DEPTH:
        raise HierarchyError(source, f"nodes nested deeper than {MAX_DEPTH}")
    a = el.attrib
    raw = a.get("bounds", "[0,0][0,0]")
    m = _BOUNDS.match(raw)
    if m is None:
        raise HierarchyError(source, f"bad bounds {raw[:60]!r} on a <node> (expected [x1,y1][x2,y2])")
    flags = {field: a.get(attr, "true" if attr == "enabled" else "false") == "true" for attr, field in _FLAGS.items()}
    cls = a.get("class", "")
    editable = cls.endswith("EditText") or a.get("editable") == "true"
    return Widget(
        class_name=cls,
        bounds=_bounds(*(int(g) for g in m.groups())),
        resource_id=a.get("resource-id", ""),
        text=a.get("text", ""),
        content_desc=a.get("content-desc", ""),
        package=a.get("package", ""),
        hint=a.get("hint", ""),
        editable=editable,
        children=tuple(_u2_node(c, source, depth + 1) for c in el if c.tag == "node"),
        **flags,
    )


def to_u2_xml(root: Widget, *, rotation: int = 0) -> str:
    """Write a Widget tree as uiautomator2's `dumpWindowHierarchy` does (attribute order, CRLF)."""
    lines = ["<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>", f'<hierarchy rotation="{rotation}">']
    windows = root.children if root.class_name == ROOT_CLASS else (root,)
    for i, w in enumerate(windows):
        _write_node(w, i, 1, lines)
    lines.append("</hierarchy>")
    return "\r\n".join(lines)


def _write_node(w: Widget, index: int, depth: int, out: list[str]) -> None:
    def b(v: bool) -> str:
        return "true" if v else "false"

    attrs = [
        ("index", str(index)), ("text", w.text), ("resource-id", w.resource_id), ("class", w.class_name),
        ("package", w.package), ("content-desc", w.content_desc), ("checkable", b(w.checkable)),
        ("checked", b(w.checked)), ("clickable", b(w.clickable)), ("enabled", b(w.enabled)),
        ("focusable", b(w.clickable or w.editable)), ("focused", b(w.focused)), ("scrollable", b(w.scrollable)),
        ("long-clickable", b(w.long_clickable)), ("password", b(w.password)), ("selected", b(w.selected)),
        ("visible-to-user", "true"), ("bounds", str(w.bounds)),
    ]
    if w.hint:
        attrs.append(("hint", w.hint))
    if w.editable and not w.class_name.endswith("EditText"):
        attrs.append(("editable", "true"))
    pad = "  " * depth
    head = pad + "<node " + " ".join(f"{k}={_attr(v)}" for k, v in attrs)
    if not w.children:
        out.append(head + " />")
        return
    out.append(head + ">")
    for i, c in enumerate(w.children):
        _write_node(c, i, depth + 1, out)
    out.append(pad + "</node>")


_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


def _attr(value: str) -> str:
    # Characters XML 1.0 cannot carry at all are dropped (as Android's serializer does);
    # whitespace is encoded so the parser does not normalise it away.
    cleaned = _ILLEGAL_XML.sub("", value)
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in cleaned) + '"'


# --- DroidBot views JSON ----------------------------------------------------------------------


def parse_droidbot_views(data: Any, *, source: str = "<views>", width: int | None = None,
                         height: int | None = None) -> Widget:
    """Parse DroidBot's `views` list (or a whole state dict, or its JSON text) into a Widget tree."""
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise HierarchyError(source, f"not JSON: {exc}") from None
    if isinstance(data, Mapping):
        if width is None and isinstance(data.get("width"), int):
            width = data["width"]
        if height is None and isinstance(data.get("height"), int):
            height = data["height"]
        data = data.get("views")
    if not isinstance(data, list):
        raise HierarchyError(source, "expected a list of views (DroidBot state['views'])")
    by_id: dict[int, Mapping[str, Any]] = {}
    for i, v in enumerate(data):
        if not isinstance(v, Mapping):
            raise HierarchyError(source, f"view {i} is {type(v).__name__}, expected an object")
        tid = v.get("temp_id", i)
        if not isinstance(tid, int) or isinstance(tid, bool):
            raise HierarchyError(source, f"view {i} has a non-integer temp_id {tid!r}")
        by_id[tid] = v
    roots = [tid for tid, v in by_id.items() if v.get("parent", -1) in (-1, None) or v.get("parent") not in by_id]
    built: dict[int, Widget] = {}
    return _root([_droidbot_view(t, by_id, source, built, 1) for t in roots if _visible(by_id[t])], width, height)


def _visible(v: Mapping[str, Any]) -> bool:
    return v.get("visible", True) is not False


def _droidbot_view(tid: int, by_id: Mapping[int, Mapping[str, Any]], source: str, built: dict[int, Widget],
                   depth: int) -> Widget:
    if depth > MAX_DEPTH:
        raise HierarchyError(source, f"views nested deeper than {MAX_DEPTH} (or a parent cycle)")
    if tid in built:
        return built[tid]
    v = by_id[tid]
    kids = v.get("children") or []
    if not isinstance(kids, list):
        raise HierarchyError(source, f"view {tid}: children is not a list")
    children = []
    for k in kids:
        if not isinstance(k, int) or isinstance(k, bool) or k not in by_id or k == tid:
            raise HierarchyError(source, f"view {tid}: child {k!r} does not exist")
        if _visible(by_id[k]):
            children.append(_droidbot_view(k, by_id, source, built, depth + 1))
    widget = Widget(
        class_name=_str(v.get("class")),
        bounds=_droidbot_bounds(v.get("bounds"), source, tid),
        resource_id=_str(v.get("resource_id")),
        text=_str(v.get("text")),
        content_desc=_str(v.get("content_description")),
        package=_str(v.get("package")),
        clickable=v.get("clickable") is True,
        long_clickable=v.get("long_clickable") is True,
        editable=v.get("editable") is True,
        scrollable=v.get("scrollable") is True,
        checkable=v.get("checkable") is True,
        checked=v.get("checked") is True,
        enabled=v.get("enabled") is not False,
        focused=v.get("focused") is True,
        selected=v.get("selected") is True,
        password=v.get("is_password") is True,
        children=tuple(children),
    )
    built[tid] = widget
    return widget


def _str(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _droidbot_bounds(raw: Any, source: str, tid: int) -> Bounds:
    try:
        (x1, y1), (x2, y2) = raw
        coords = [int(c) for c in (x1, y1, x2, y2)]
        if any(isinstance(c, bool) or not isinstance(c, int | float) for c in (x1, y1, x2, y2)):
            raise TypeError
    except (TypeError, ValueError, OverflowError):
        raise HierarchyError(source, f"view {tid}: bounds {str(raw)[:60]} are not [[x1,y1],[x2,y2]]") from None
    return _bounds(*coords)
