"""uiautomator2 selectors (the `UiSelector` the client sends as a dict) matched on a Widget tree.

The order of matches is the device's: depth-first over the window roots, parents before
children, siblings in drawing order; `instance` picks the n-th match in that order.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from appatlas.hierarchy import ROOT_CLASS
from appatlas.types import Bounds, Widget

MAX_PATTERN = 256  # a regex longer than any real selector is refused, not compiled
MAX_CHAIN = 8

_STRINGS = {
    "text": ("text", "eq"), "textContains": ("text", "in"), "textMatches": ("text", "re"),
    "textStartsWith": ("text", "start"),
    "className": ("class", "eq"), "classNameMatches": ("class", "re"),
    "description": ("desc", "eq"), "descriptionContains": ("desc", "in"),
    "descriptionMatches": ("desc", "re"), "descriptionStartsWith": ("desc", "start"),
    "packageName": ("package", "eq"), "packageNameMatches": ("package", "re"),
    "resourceId": ("id", "eq"), "resourceIdMatches": ("id", "re"),
}
_FLAGS = {
    "checkable": "checkable", "checked": "checked", "clickable": "clickable",
    "longClickable": "long_clickable", "scrollable": "scrollable", "enabled": "enabled",
    "focused": "focused", "selected": "selected",
}
_INTS = ("index", "instance")
_META = ("mask", "childOrSibling", "childOrSiblingSelector")


class SelectorInvalid(ValueError):
    """The selector dict is not one uiautomator2 could have sent."""


@dataclass(frozen=True, slots=True)
class Node:
    widget: Widget
    index: int  # position among its parent's children
    parent: Node | None


def _focusable(w: Widget) -> bool:
    return w.clickable or w.editable  # what the hierarchy dump writes as focusable


def _field(w: Widget, name: str) -> str:
    return {"text": w.text, "class": w.class_name, "desc": w.content_desc, "package": w.package,
            "id": w.resource_id}[name]


def _check(sel: Any) -> dict[str, Any]:
    if not isinstance(sel, Mapping):
        raise SelectorInvalid(f"a selector is a JSON object, got {type(sel).__name__}")
    out: dict[str, Any] = {}
    for key, value in sel.items():
        if key in _META:
            continue
        if key in _STRINGS:
            if not isinstance(value, str):
                raise SelectorInvalid(f"selector field {key} must be a string")
            if _STRINGS[key][1] == "re":
                if len(value) > MAX_PATTERN:
                    raise SelectorInvalid(f"selector pattern {key} is longer than {MAX_PATTERN} characters")
                try:
                    value = re.compile(value, re.DOTALL)
                except re.error as exc:
                    raise SelectorInvalid(f"selector pattern {key}: {exc}") from None
        elif key in _FLAGS or key == "focusable":
            if not isinstance(value, bool):
                raise SelectorInvalid(f"selector field {key} must be true or false")
        elif key in _INTS:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise SelectorInvalid(f"selector field {key} must be an integer >= 0")
        else:
            raise SelectorInvalid(f"unknown selector field {key!r}")
        out[key] = value
    return out


def _matches(node: Node, sel: Mapping[str, Any]) -> bool:
    w = node.widget
    for key, value in sel.items():
        if key in _STRINGS:
            field, op = _STRINGS[key]
            have = _field(w, field)
            ok = (have == value if op == "eq" else value in have if op == "in"
                  else have.startswith(value) if op == "start" else value.fullmatch(have) is not None)
        elif key in _FLAGS:
            ok = getattr(w, _FLAGS[key]) == value
        elif key == "focusable":
            ok = _focusable(w) == value
        elif key == "index":
            ok = node.index == value
        else:  # instance is applied to the list of matches
            ok = True
        if not ok:
            return False
    return True


def _walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed([Node(c, i, n) for i, c in enumerate(n.widget.children)]))


def _nodes(root: Widget) -> Iterator[Node]:
    top = Node(root, 0, None)
    if root.class_name != ROOT_CLASS:
        yield from _walk(top)
        return
    for i, c in enumerate(root.children):
        yield from _walk(Node(c, i, top))


def _pick(candidates: list[Node], sel: Mapping[str, Any]) -> list[Node]:
    found = [n for n in candidates if _matches(n, sel)]
    if "instance" in sel:
        i = sel["instance"]
        return found[i:i + 1]
    return found


def find(root: Widget, selector: Any) -> list[Widget]:
    """Every widget `selector` names, in device order (one at most when it sets `instance`)."""
    base = _check(selector)
    chain = selector.get("childOrSibling") or []
    subs = selector.get("childOrSiblingSelector") or []
    if not isinstance(chain, list) or not isinstance(subs, list) or len(chain) != len(subs):
        raise SelectorInvalid("childOrSibling and childOrSiblingSelector must be lists of the same length")
    if len(chain) > MAX_CHAIN:
        raise SelectorInvalid(f"more than {MAX_CHAIN} child/sibling steps")
    current = _pick(list(_nodes(root)), base)
    for how, sub in zip(chain, subs, strict=True):
        if how not in ("child", "sibling"):
            raise SelectorInvalid(f"childOrSibling entries are 'child' or 'sibling', got {how!r}")
        if isinstance(sub, Mapping) and (sub.get("childOrSibling") or sub.get("childOrSiblingSelector")):
            raise SelectorInvalid("nested child/sibling selectors are not supported")
        step = _check(sub)
        pool: list[Node] = []
        for n in current:
            if how == "child":
                pool.extend(list(_walk(n))[1:])
            elif n.parent is not None:
                pool.extend(Node(c, i, n.parent) for i, c in enumerate(n.parent.widget.children)
                            if c is not n.widget)
        current = _pick(pool, step)
    return [n.widget for n in current]


def _rect(b: Bounds) -> dict[str, int]:
    return {"left": b.x1, "top": b.y1, "right": b.x2, "bottom": b.y2}


def obj_info(w: Widget, *, width: int, height: int) -> dict[str, Any]:
    """The `objInfo` answer for one widget, as the uiautomator2 server writes it."""
    visible = Bounds(max(0, w.bounds.x1), max(0, w.bounds.y1),
                     max(max(0, w.bounds.x1), min(width, w.bounds.x2)),
                     max(max(0, w.bounds.y1), min(height, w.bounds.y2)))
    return {
        "bounds": _rect(w.bounds), "visibleBounds": _rect(visible), "childCount": len(w.children),
        "className": w.class_name, "contentDescription": w.content_desc or None,
        "packageName": w.package, "resourceName": w.resource_id or None, "text": w.text,
        "checkable": w.checkable, "checked": w.checked, "clickable": w.clickable, "enabled": w.enabled,
        "focusable": _focusable(w), "focused": w.focused, "longClickable": w.long_clickable,
        "scrollable": w.scrollable, "selected": w.selected,
    }
