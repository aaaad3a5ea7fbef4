"""A virtual screen as HarmonyOS' UI test service presents it: the `uitest dumpLayout` JSON.

Every node is `{"attributes": {...}, "children": [...]}` with string values ("true"/"false",
bounds as "[left,top][right,bottom]"). The top node is the display (empty `type`); its
children are windows, which name their `bundleName`, `abilityName` and `pagePath`. Component
types are ArkUI's (Text, Button, TextInput, Toggle, Checkbox, List, ListItem, Column, …), ids
are the bare names an ArkUI `.id("…")` gives (no `package:id/` prefix): the virtual app's
Android-style widgets are translated here, as a HarmonyOS port of the same app would draw them.

`Node` keeps each dumped component beside the Widget it came from, in drawing order, so the
agent's `On` matchers and the dump agree on what is on screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appatlas.types import Screen, Widget

__all__ = ["Node", "arkui_id", "arkui_type", "dump_layout"]

# Android view class (last dotted part) -> the ArkUI component a HarmonyOS app would use
_TYPES = {
    "TextView": "Text", "Button": "Button", "ImageButton": "Button", "EditText": "TextInput",
    "AutoCompleteTextView": "TextInput", "CheckBox": "Checkbox", "Switch": "Toggle", "ToggleButton": "Toggle",
    "RadioButton": "Radio", "ImageView": "Image", "LinearLayout": "Column", "FrameLayout": "Stack",
    "RelativeLayout": "RelativeContainer", "ConstraintLayout": "RelativeContainer", "ViewGroup": "Stack",
    "View": "Stack", "RecyclerView": "List", "ListView": "List", "ScrollView": "Scroll", "Spinner": "Select",
    "SeekBar": "Slider", "ProgressBar": "Progress", "WebView": "Web",
}
_LISTS = ("List", "Grid")


@dataclass(frozen=True, slots=True)
class Node:
    """One dumped component: its attributes (strings, as on the wire) and the virtual widget behind it."""

    attrs: dict[str, str]
    widget: Widget


def arkui_type(class_name: str, parent_type: str = "") -> str:
    """The ArkUI component type for an Android view class; a row of a list is a ListItem."""
    if parent_type in _LISTS:
        return "ListItem" if parent_type == "List" else "GridItem"
    short = class_name.rsplit(".", 1)[-1]
    return _TYPES.get(short, short)


def arkui_id(resource_id: str) -> str:
    """`com.example:id/title` -> `title`: ArkUI ids carry no package."""
    return resource_id.split(":id/", 1)[-1] if ":id/" in resource_id else resource_id


def _flag(value: bool) -> str:
    return "true" if value else "false"


def dump_layout(screen: Screen, *, abilities: dict[str, str]) -> tuple[dict[str, Any], list[Node]]:
    """(the dumpLayout JSON, its components in drawing order) for `screen`.

    `abilities` maps a bundle name to the ability in front for it (the window's `abilityName`).
    """
    nodes: list[Node] = []
    counter = iter(range(1, 1 << 30))

    def node(w: Widget, parent_type: str, host: str, window: dict[str, str] | None = None) -> dict[str, Any]:
        kind = arkui_type(w.class_name, parent_type)
        b = w.bounds
        bounds = f"[{b.x1},{b.y1}][{b.x2},{b.y2}]"
        ident = arkui_id(w.resource_id)
        acc = next(counter)
        attrs = {
            "accessibilityId": str(acc), "bounds": bounds, "checkable": _flag(w.checkable),
            "checked": _flag(w.checked), "clickable": _flag(w.clickable), "description": w.content_desc,
            "enabled": _flag(w.enabled), "focused": _flag(w.focused), "hashcode": f"{acc:x}", "hint": w.hint,
            "hostWindowId": host, "id": ident, "key": ident, "longClickable": _flag(w.long_clickable),
            "origBounds": bounds, "scrollable": _flag(w.scrollable), "selected": _flag(w.selected),
            "text": w.text, "type": kind, "visible": "true", "zIndex": "0", **(window or {}),
        }
        nodes.append(Node(attrs, w))
        return {"attributes": attrs, "children": [node(c, kind, host) for c in w.children]}

    root = screen.root
    windows = []
    for i, win in enumerate(root.children):
        bundle = win.package or screen.package
        ability = abilities.get(bundle, "")
        window = {"bundleName": bundle, "abilityName": ability,
                  "pagePath": f"pages/{ability.rsplit('.', 1)[-1]}" if ability else ""}
        windows.append(node(win, "", str(i + 1), window))
    b = root.bounds
    top = {"attributes": {"bounds": f"[{b.x1},{b.y1}][{b.x2},{b.y2}]", "type": "", "id": "", "text": "",
                          "description": "", "visible": "true"}, "children": windows}
    return top, nodes
