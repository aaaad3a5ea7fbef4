"""A generated app of any size, for measuring crawlers and planners at scale.

`synthetic_spec(1000)` is a 1,000-screen app: a tree of screens (every screen reachable from
the launch screen), cross links that make cycles, menus, lists whose rows open one detail
screen with row-specific text, forms with gated submit buttons, settings with switches. The
same `n_screens` and `seed` always give the same spec.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

__all__ = ["synthetic_spec"]

PACKAGE = "com.appatlas.synthetic"
_WORDS = ("Account", "Orders", "Profile", "Inbox", "Photos", "Library", "Cart", "Settings", "Friends", "Events",
          "Reports", "Billing", "Devices", "Music", "Maps", "Recipes", "Travel", "Health", "Files", "Help")
_KINDS = ("menu", "menu", "list", "form", "settings")


def synthetic_spec(n_screens: int, *, seed: int = 0) -> dict[str, Any]:
    """A spec dict (as `spec_from_dict` takes) with exactly `n_screens` screens, all reachable."""
    if not isinstance(n_screens, int) or n_screens < 1:
        raise ValueError(f"n_screens must be a positive integer, got {n_screens!r}")
    rng = random.Random(seed)
    children: list[list[int]] = [[] for _ in range(n_screens)]
    frontier = deque([0])
    capacity = {0: 4}
    for i in range(1, n_screens):
        parent = frontier[0]
        children[parent].append(i)
        capacity[parent] -= 1
        if capacity[parent] == 0:
            frontier.popleft()
        capacity[i] = rng.choice((1, 2, 3, 3, 4, 5))
        frontier.append(i)
    kinds = ["menu" if i == 0 or not children[i] else rng.choice(_KINDS) for i in range(n_screens)]
    details = {children[i][0] for i in range(n_screens) if kinds[i] == "list"}
    screens = [_screen(i, children[i], kinds[i], i in details, n_screens, rng) for i in range(n_screens)]
    return {"app": {"package": PACKAGE, "name": "Synthetic", "version": "1.0", "launch": "s0"},
            "screens": screens}


def _screen(i: int, kids: list[int], kind: str, detail: bool, n: int, rng: random.Random) -> dict[str, Any]:
    word = _WORDS[rng.randrange(len(_WORDS))]
    widgets: list[dict[str, Any]] = [{"text": f"{word} screen {i}", "id": "heading"}]
    if detail:  # opened by the rows of a list: shows the row it was opened from
        widgets.append({"text": "{item.subtitle}", "id": "row_detail"})
    if kind == "list":
        detail, rest = kids[0], kids[1:]
        rows = [{"title": f"{word} item {r}", "subtitle": f"Entry {r} of {i}", "data": {"n": str(r)}}
                for r in range(rng.randint(3, 18))]
        widgets.append({"list": None, "id": "rows", "items": rows, "row_tap": {"go": f"s{detail}"}})
        widgets += [{"button": f"Open {k}", "id": f"open_{k}", "place": "bottom", "tap": {"go": f"s{k}"}}
                    for k in rest[:4]]
        widgets[0]["text"] = f"{word} list {i}"
    elif kind == "form":
        first, rest = kids[0], kids[1:]
        rule = rng.choice(("nonempty", "email", "number"))
        widgets.append({"input": f"{word} {rule}", "id": "field", "input_type": "email" if rule == "email" else
                        "number" if rule == "number" else "text"})
        widgets.append({"button": "Submit", "id": "submit",
                        "tap": {"go": f"s{first}", "when": {"field": "field", "rule": rule}, "error": f"Needs {rule}"}})
        widgets += [{"button": f"Go to {k}", "id": f"go_{k}", "tap": {"go": f"s{k}"}} for k in rest]
    else:
        if kind == "settings":
            widgets += [{"switch": f"Option {j}", "id": f"opt_{j}", "checked": rng.random() < 0.5}
                        for j in range(rng.randint(1, 3))]
            widgets.append({"checkbox": "Remember", "id": "remember"})
        widgets += [{"button": f"Go to {k}", "id": f"go_{k}", "tap": {"go": f"s{k}"}} for k in kids]
    for j in range(rng.choice((0, 1, 1, 2))):  # cross links make the graph cyclic
        target = rng.randrange(n)
        if target != i:
            widgets.append({"button": f"Jump to {target}", "id": f"jump_{j}", "tap": {"go": f"s{target}"}})
    title = "Home" if i == 0 else "{item.title}" if detail else f"{word} {i}"
    return {"id": f"s{i}", "title": title, "activity": f".{word}Activity", "widgets": widgets}
