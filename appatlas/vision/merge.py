"""Pixels and the view tree together: the tree wins where it speaks, pixels fill its holes.

A hole is a leaf of the tree that draws by itself and tells nothing: a SurfaceView, a
TextureView or GLSurfaceView (games, video, maps), a WebView or a Flutter view without
accessibility children, or an app window with no children at all. Widgets read off the
screenshot whose centre lies in a hole become that hole's children; a widget that covers a
labelled widget of the tree is dropped (the tree already says what is there).
"""

from __future__ import annotations

from dataclasses import replace

from appatlas.types import Screen, Widget

__all__ = ["HOLE_CLASSES", "holes", "merge"]

HOLE_CLASSES = ("SurfaceView", "TextureView", "GLSurfaceView", "WebView", "FlutterView", "FlutterSurfaceView",
                "UnityPlayer")
_SYSTEM = ("com.android.systemui",)


def _is_hole(w: Widget, screen: Screen) -> bool:
    if w.children or w.package in _SYSTEM:
        return False
    cls = w.class_name.rsplit(".", 1)[-1]
    if cls.endswith(HOLE_CLASSES) and not w.text:
        return True
    # a bare window: a view that fills most of the screen and says nothing
    return w.bounds.area >= 0.5 * screen.width * screen.height and not w.label and cls.endswith("Layout")


def holes(screen: Screen) -> list[Widget]:
    """The leaves of `screen`'s tree that pixels must explain, largest first."""
    found = [w for w in screen.widgets() if w is not screen.root and _is_hole(w, screen)]
    return sorted(found, key=lambda w: -w.bounds.area)


def merge(screen: Screen, pixels: tuple[Widget, ...] | list[Widget]) -> Screen:
    """`screen` with the widgets read from its pixels put into its holes (unchanged when it has none)."""
    gaps = holes(screen)
    if not gaps:
        return screen
    spoken = [w for w in screen.widgets() if w.label and not w.children]
    placed: dict[int, list[Widget]] = {id(h): [] for h in gaps}
    for p in pixels:
        cx, cy = p.bounds.center
        hole = next((h for h in gaps if h.bounds.contains(cx, cy)), None)
        if hole is None or any(_covers(p, t) for t in spoken):
            continue
        placed[id(hole)].append(p)
    root = _fill(screen.root, placed)
    return replace(screen, root=root)


def _covers(p: Widget, t: Widget) -> bool:
    a, b = p.bounds, t.bounds
    ix = max(0, min(a.x2, b.x2) - max(a.x1, b.x1))
    iy = max(0, min(a.y2, b.y2) - max(a.y1, b.y1))
    return ix * iy > 0.5 * min(a.area, b.area) > 0


def _fill(w: Widget, placed: dict[int, list[Widget]]) -> Widget:
    if id(w) in placed:
        return replace(w, children=tuple(placed[id(w)]))
    if not w.children:
        return w
    kids = tuple(_fill(c, placed) for c in w.children)
    if all(a is b for a, b in zip(kids, w.children, strict=True)):
        return w
    return replace(w, children=kids)
