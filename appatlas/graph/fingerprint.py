"""Screen identity: a structure key that decides "same screen", and a content key that sees everything.

The structure key follows DroidBot's content-free state (activity + the *set* of widget
signatures `[class]…[resource_id]…`), which already ignores texts, counters and typed values
and, being a set, the number of rows in a list. Unlike DroidBot's recordings, a uiautomator2
dump holds only the views on screen, so three refinements keep one screen one key:

- rows of adapter views (RecyclerView, ListView, GridView) are data; only the container counts;
- inside any other scrolling container only widget classes count, not ids: which settings rows
  are visible depends on the scroll position, which kinds of rows exist does not;
- system chrome (status bar, keyboard) is not the app's screen.

Measured on the seven DroidTask dev apps (figures in docs/screen-identity.md) it gives about as
many keys as DroidBot's `state_str_content_free`, splits tabs DroidBot merged, and never merges
two consecutive steps of a recorded task unless the task stayed on one screen.
"""

from __future__ import annotations

import hashlib

from appatlas.types import Screen, Widget

__all__ = ["content_key", "structure_key", "structure_tokens"]

ADAPTER_VIEWS = ("RecyclerView", "ListView", "GridView")
SYSTEM_CHROME = ("com.android.systemui", "com.google.android.inputmethod.latin", "com.android.inputmethod.latin",
                 "io.github.ylimit.droidbotapp")


def _is_chrome(w: Widget) -> bool:
    return w.package in SYSTEM_CHROME


def structure_tokens(screen: Screen) -> frozenset[str]:
    """The set of content-free tokens that make up the screen's structure.

    Outside scrolling containers a token is the widget's signature (class + resource id).
    Inside one, only the class counts: which rows are on screen depends on the scroll
    position, but the kinds of rows (switches, checkboxes, text rows) do not. Rows of
    adapter views (lists, grids) are data and do not count at all.
    """
    tokens: set[str] = set()
    stack: list[tuple[Widget, bool]] = [(c, False) for c in root_windows(screen)]
    while stack:
        w, scrolled = stack.pop()
        if _is_chrome(w):
            continue
        tokens.add(f"[class]{w.class_name}" if scrolled else w.signature)
        if w.class_name.endswith(ADAPTER_VIEWS):
            continue
        stack.extend((c, scrolled or w.scrollable) for c in w.children)
    return frozenset(tokens)


def root_windows(screen: Screen) -> tuple[Widget, ...]:
    return screen.root.children


def structure_key(screen: Screen) -> str:
    """A 32-hex key equal for the same screen whatever its content (see module doc)."""
    body = f"{screen.activity}{{{','.join(sorted(structure_tokens(screen)))}}}"
    return hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest()


def content_key(screen: Screen) -> str:
    """A 64-hex key that changes with any visible text, check state or selection."""
    h = hashlib.sha256(f"{screen.package}/{screen.activity}".encode())
    for w in screen.root.walk():
        if _is_chrome(w):
            continue
        h.update(
            "\x1f".join((w.signature, w.text, w.content_desc, str(w.bounds),
                         f"{w.checked:d}{w.selected:d}{w.enabled:d}")).encode("utf-8", "surrogatepass")
        )
        h.update(b"\x1e")
    return h.hexdigest()
