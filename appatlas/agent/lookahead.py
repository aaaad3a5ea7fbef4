"""Look-ahead over the atlas graph: what an option leads to, and what scrolling would bring into view.

An option's look-ahead value is the best value of the words and slots on the screens the atlas says
it leads to, discounted by `gamma` per hop, `depth` hops deep, never counting the screen it starts
from (nor, for back, the screens already passed: going back there is not progress).
"""

from __future__ import annotations

from collections.abc import Callable

from appatlas.agent.knowledge import MAX_STATES_PER_SCREEN, Knowledge
from appatlas.agent.options import Option
from appatlas.agent.valuing import pick_value, same_option
from appatlas.rag.intent import Slot, label_words, terms_in
from appatlas.types import ActionKind, view_kind

__all__ = ["VERTICAL", "LookAhead"]

VERTICAL = ("ScrollView", "ListView", "RecyclerView")  # containers whose scrolling shows more of the same screen


class LookAhead:
    def __init__(self, knowledge: Knowledge, *, gamma: float, depth: int, slot_pick: float,
                 weight: Callable[[str], float] | None = None) -> None:
        self.knowledge = knowledge
        self.weight = weight or knowledge.weight  # a word's weight (the policy discounts the app's own name)
        self.gamma = gamma
        self.depth = depth
        self.slot_pick = slot_pick
        self._steps: dict[str, list[tuple[str, tuple[str, ...]]]] = {}  # key -> (target, words of the control)

    def coverage(self, o: Option, key: str, uncovered: list[str], *, been: set[str] = frozenset(),
                 targets: list[str] | None = None, memo: dict[tuple[str, int], frozenset[int]] | None = None) -> float:
        """The share of the IDF weight of `uncovered` that one path starting with `o` names along the way: its
        own label, the control taken on each screen after it, and a label of the last screen (`depth` hops,
        undiscounted). 'More options' -> 'Settings' -> 'Reminder sound' covers "reminder sound" where no single
        label of the first screen after it does: `value` credits the best label alone, this the whole path.

        `targets`: where `o` leads (default: where the atlas saw it lead from `key`); `memo` may be shared by the
        options of one decision (the same `uncovered` and `been`)."""
        if not uncovered or (o.widget is None and o.kind is not ActionKind.BACK):
            return 0.0
        weights = [self.weight(t) for t in uncovered]
        total = sum(weights)
        if total <= 0:
            return 0.0
        memo = {} if memo is None else memo
        avoid = set(been) | {key}
        if targets is None:
            targets = [t.target_key for t in self.knowledge.out(key) if same_option(t.action, o)]
        own = self._mask(o.label, uncovered) if o.kind in (ActionKind.TAP, ActionKind.LONG_TAP) else 0
        masks = {own} | {own | m for k in set(targets) - avoid
                         for m in self._masks(k, self.depth - 1, uncovered, avoid, memo)}
        return max(sum(w for i, w in enumerate(weights) if m >> i & 1) for m in masks) / total

    def _mask(self, label: str, uncovered: list[str], ws: tuple[str, ...] | None = None) -> int:
        hits = set(terms_in(uncovered, ws if ws is not None else tuple(label_words(label))))
        return sum(1 << i for i, t in enumerate(uncovered) if t in hits)

    def _masks(self, key: str, depth: int, uncovered: list[str], avoid: set[str],
               memo: dict[tuple[str, int], frozenset[int]]) -> frozenset[int]:
        """The sets of `uncovered` (bit masks) that one path from the screen `key` can name within `depth` more hops."""
        if (key, depth) in memo:
            return memo[(key, depth)]
        memo[(key, depth)] = frozenset()  # a cycle names nothing new
        info = self.knowledge.screens.get(key)
        out = {self._mask(label, uncovered, ws) for label, ws in (info.labels if info else ())}
        if depth > 0:
            for target, ws in self._controls(key):
                if target not in avoid and target != key:
                    mine = self._mask("", uncovered, ws)
                    out |= {mine | m for m in self._masks(target, depth - 1, uncovered, avoid, memo)}
        out.discard(0)
        kept = frozenset(m for m in out if not any(m != n and m & n == m for n in out))  # the largest only
        memo[(key, depth)] = kept
        return kept

    def _controls(self, key: str) -> list[tuple[str, tuple[str, ...]]]:
        """(target, words of the control) of every recorded step forward from the screen `key` (not back)."""
        if key not in self._steps:
            steps = []
            for t in self.knowledge.out(key):
                if t.action.kind is ActionKind.BACK or t.target_key == key:
                    continue
                words = next((ws for o, (_, ws) in zip(self.knowledge.options_of(t.source),
                                                       self.knowledge.labels_of(t.source), strict=True)
                              if same_option(t.action, o)), ())
                steps.append((t.target_key, words))
            self._steps[key] = steps
        return self._steps[key]

    def value(self, o: Option, key: str, uncovered: list[str], slots: list[Slot], *, been: set[str],
              here: frozenset[str] | set[str] = frozenset()) -> float:
        """The discounted best value reachable by taking `o` on the screen `key` — not counting what this
        screen offers already (`here`, its option labels: the same toggle one screen on is no progress)."""
        if o.widget is None and o.kind is not ActionKind.BACK:
            return 0.0
        # Where it led, how often: an option seen to lead to several screens (back, whose target depends on
        # how one got here) is worth what it leads to on average, not its luckiest outcome.
        # (Staying on this screen is not an outcome: it is a tap that did nothing visible, to try again.)
        led: dict[str, int] = {}
        for t in self.knowledge.out(key):
            if same_option(t.action, o) and t.target_key != key:
                led[t.target_key] = led.get(t.target_key, 0) + max(t.count, 1)
        targets = {k for k in led if k not in been}
        if not targets:
            return 0.0
        # A screen another option here reaches in one step is no credit for a detour through this one
        # (back to a twin of this screen, then its "More options"): the other option gets it directly.
        direct = {t.target_key for t in self.knowledge.out(key) if t.action.kind is not ActionKind.BACK
                  and not same_option(t.action, o)} - targets
        memo: dict[tuple[str, int], float] = {}
        total = sum(led.values())
        return self.gamma * sum(led[k] * self._best(k, self.depth - 1, uncovered, slots, {key} | been | direct, memo,
                                                    here) for k in targets) / total

    def _best(self, key: str, depth: int, uncovered: list[str], slots: list[Slot], avoid: set[str],
              memo: dict[tuple[str, int], float], here: frozenset[str] | set[str]) -> float:
        """The value of the screen `key`: its best label, or (discounted) the best of the screens after it."""
        memo_key = (key, depth)
        if memo_key in memo:
            return memo[memo_key]
        value = self._screen_value(key, uncovered, slots, here)
        if depth > 0:
            nxt = {t.target_key for t in self.knowledge.out(key)
                   if t.target_key not in avoid and t.target_key != key and t.action.kind is not ActionKind.BACK}
            if nxt:
                ahead = max(self._best(k, depth - 1, uncovered, slots, avoid | {key}, memo, here) for k in nxt)
                value = max(value, self.gamma * ahead)
        memo[memo_key] = value
        return value

    def _screen_value(self, key: str, uncovered: list[str], slots: list[Slot],
                      here: frozenset[str] | set[str] = frozenset()) -> float:
        info = self.knowledge.screens.get(key)
        if info is None:
            return 0.0
        best = max((self._label_value(label, ws, uncovered, slots, 0.5) for label, ws in info.labels
                    if label not in here), default=0.0)
        # A field where a value still to type fits is where the intent goes on.
        if any(_fits(s, kind) for s in slots if s.role == "input" for kind in info.fields):
            best = max(best, 0.5 * self.slot_pick)
        # A field holding the value the intent replaces ("from '222222' to …") both fits the new value and names
        # what changes (as `Policy._value_field` reads it on the screen itself): the form where the change is made,
        # not any form a number fits (a message box).
        if any(s.replaces and s.replaces.lower() in info.held for s in slots if s.role == "input"):
            best = max(best, self.slot_pick)
        # What the same page shows further down is a scroll away.
        down = max((self._label_value(label, ws, uncovered, slots, 0.5) for k in self.knowledge.pages(key)
                    for label, ws in self.knowledge.screens[k].labels), default=0.0)
        return max(best, self.gamma * down)

    def _label_value(self, label: str, ws: tuple[str, ...], uncovered: list[str], slots: list[Slot],
                     pick: float) -> float:
        v = sum(self.weight(t) for t in terms_in(uncovered, ws))
        return v + max((pick_value(s, label) * self.slot_pick * pick for s in slots), default=0.0)

    def hidden(self, o: Option, key: str, uncovered: list[str], slots: list[Slot], visible: set[str], *,
               names: set[str] = frozenset(), been: set[str] = frozenset()) -> float:
        """The best value among options that scrolling this container brings into view: a hidden option's
        label, plus — on the other scroll positions of a page — where it leads (a setting's name further
        down is worth its dialog too). `names`: what the visible options are (a row showing another
        value is the same row).

        Known from a recorded scroll of this screen, or — for a vertical list — from the labels other
        states of the same screen showed and the other positions of its page (a pager's pages are other
        content, not further down).
        """
        shown: list[tuple[str, int]] = [(t.target_key, t.target) for t in self.knowledge.out(key)
                                        if t.action.kind is ActionKind.SCROLL and same_option(t.action, o)]
        info = self.knowledge.screens.get(key)
        if info is not None and o.widget is not None and view_kind(o.widget.class_name).endswith(VERTICAL):
            shown += [(key, sid) for sid in info.states[:MAX_STATES_PER_SCREEN]]
            shown += [(k, sid) for k in self.knowledge.pages(key) if o.widget.resource_id in self.knowledge.screens[k].scrolls
                      for sid in self.knowledge.screens[k].states[:MAX_STATES_PER_SCREEN]]
        best, valued = 0.0, set()
        for k, sid in shown:
            for h, (label, ws) in zip(self.knowledge.options_of(sid), self.knowledge.labels_of(sid), strict=True):
                if label in visible or h.name in names or (k, label) in valued:
                    continue
                valued.add((k, label))
                value = self._label_value(h.name, ws, uncovered, slots, 1.0)
                if k != key:  # another scroll position of the page: the option is there to take
                    value += self.value(h, k, uncovered, slots, been=been, here=visible)
                best = max(best, value)
        return best


def _fits(slot: Slot, kind: str) -> bool:
    """Whether a field of `kind` can take the value (search boxes only what is searched for)."""
    if kind == "search" or slot.cue == "search":
        return kind == "search" and slot.cue == "search"
    if slot.kind == "email":
        return kind in ("email", "text")
    if slot.kind == "number":
        return kind in ("phone", "number", "text")
    return kind in ("text", "name")
