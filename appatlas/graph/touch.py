"""Which view a tap really reaches, so two taps are compared by what they do, not by how they were named.

Android delivers a touch to the deepest view under the finger and lets it bubble up until a view
consumes it; a view that is not clickable (a row's title, an icon inside a button) does not, so
a tap on the title of a settings row and a tap on the row itself reach the same handler: the row.
DroidBot records the view it aimed at (often the title); a plan or an agent may name the row.
`same_touch` counts those as one action and still tells apart two rows, or a clickable label
from the row around it (each consumes its own touch).

Ancestors are walked through the tree the screen was recorded with; the tap lands at the centre of
the named view, which lies inside every ancestor, so the handler is the deepest clickable view
(long-clickable for a long tap) on the path from the root to it — the view itself when none is.
"""

from __future__ import annotations

from appatlas.devices.base import locate
from appatlas.errors import SelectorNotFound
from appatlas.types import Action, ActionKind, Screen, Widget

__all__ = ["handler", "same_touch"]

_TAPS = (ActionKind.TAP, ActionKind.LONG_TAP)


def _path(root: Widget, target: Widget) -> list[Widget]:
    """The widgets from `root` down to `target` (by identity), or [] when it is not in the tree."""
    stack: list[tuple[Widget, int]] = [(root, 0)]
    path: list[Widget] = []
    while stack:
        node, depth = stack.pop()
        del path[depth:]
        path.append(node)
        if node is target:
            return path
        stack.extend((c, depth + 1) for c in reversed(node.children))
    return []


def handler(screen: Screen, widget: Widget, kind: ActionKind = ActionKind.TAP) -> Widget:
    """The view that consumes a `kind` tap aimed at the centre of `widget` on `screen`."""
    consumes = (lambda w: w.long_clickable) if kind is ActionKind.LONG_TAP else (lambda w: w.clickable or w.checkable)
    for node in reversed(_path(screen.root, widget)):
        if consumes(node):
            return node
    return widget


def same_touch(a: Action, b: Action, screen: Screen, *, strict_text: bool = True) -> bool:
    """Whether taps `a` and `b` reach the same handler on `screen` (the screen `a` was recorded on).

    Both selectors are located on `screen`; with `strict_text`, a selector whose text or description
    is not on the widget found (only a widget like it) does not count as found. Other kinds of action
    (typing, scrolling, back) are not taps: False — compare those by element and text instead.
    """
    if a.kind is not b.kind or a.kind not in _TAPS or a.target is None or b.target is None:
        return False
    found = []
    for action in (a, b):
        try:
            w = locate(action.target, screen)
        except SelectorNotFound:
            return False
        t = action.target
        if strict_text and ((t.text and w.text != t.text) or (t.content_desc and w.content_desc != t.content_desc)):
            return False
        found.append(handler(screen, w, a.kind))
    return found[0] is found[1]
