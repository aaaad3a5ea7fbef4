"""JSON forms of widgets, selectors and actions, as the Atlas stores them (no pickle, ever)."""

from __future__ import annotations

from typing import Any

from appatlas.types import Action, ActionKind, Bounds, Selector, Widget

__all__ = ["action_from_json", "action_to_json", "widget_from_json", "widget_to_json"]

_FLAGS = ("clickable", "long_clickable", "editable", "scrollable", "checkable", "checked", "focused", "selected",
          "password")
_STRINGS = ("resource_id", "text", "content_desc", "package", "hint")


def widget_to_json(w: Widget) -> dict[str, Any]:
    """A compact dict: only non-default fields, bounds as a list, children nested."""
    out: dict[str, Any] = {"c": w.class_name, "b": [w.bounds.x1, w.bounds.y1, w.bounds.x2, w.bounds.y2]}
    for name in _STRINGS:
        if value := getattr(w, name):
            out[name] = value
    flags = [name for name in _FLAGS if getattr(w, name)]
    if flags:
        out["f"] = flags
    if not w.enabled:
        out["disabled"] = True
    if w.children:
        out["k"] = [widget_to_json(c) for c in w.children]
    return out


def widget_from_json(d: dict[str, Any]) -> Widget:
    """Inverse of `widget_to_json`. Raises KeyError/TypeError/ValueError on a malformed dict."""
    flags = set(d.get("f", ()))
    unknown = flags - set(_FLAGS)
    if unknown:
        raise ValueError(f"unknown widget flags {sorted(unknown)}")
    return Widget(
        class_name=str(d["c"]),
        bounds=Bounds(*(int(v) for v in d["b"])),
        enabled=not d.get("disabled", False),
        children=tuple(widget_from_json(c) for c in d.get("k", ())),
        **{name: str(d.get(name, "")) for name in _STRINGS},
        **{name: name in flags for name in _FLAGS},
    )


def _selector_to_json(s: Selector) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in (("resource_id", s.resource_id), ("text", s.text),
                                            ("content_desc", s.content_desc), ("class_name", s.class_name)) if v}
    if s.index:
        out["index"] = s.index
    if s.bounds is not None:
        out["bounds"] = [s.bounds.x1, s.bounds.y1, s.bounds.x2, s.bounds.y2]
    return out


def action_to_json(a: Action) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": a.kind.value}
    if a.target is not None:
        out["target"] = _selector_to_json(a.target)
    for name in ("text", "direction", "app"):
        if value := getattr(a, name):
            out[name] = value
    return out


def action_from_json(d: dict[str, Any]) -> Action:
    """Inverse of `action_to_json`. Raises KeyError/TypeError/ValueError on a malformed dict."""
    target = None
    if (t := d.get("target")) is not None:
        bounds = Bounds(*(int(v) for v in t["bounds"])) if "bounds" in t else None
        target = Selector(resource_id=str(t.get("resource_id", "")), text=str(t.get("text", "")),
                          content_desc=str(t.get("content_desc", "")), class_name=str(t.get("class_name", "")),
                          index=int(t.get("index", 0)), bounds=bounds)
    return Action(kind=ActionKind(d["kind"]), target=target, text=str(d.get("text", "")),
                  direction=str(d.get("direction", "")), app=str(d.get("app", "")))
