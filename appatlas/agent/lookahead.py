"""Look-ahead over the atlas graph: what an option leads to, and what scrolling would bring into view.

An option's look-ahead value is the best value of the words and slots on the screens the atlas says
it leads to, discounted by `gamma` per hop, `depth` hops deep, never counting the screen it starts
from (nor, for back, the screens already passed: going back there is not progress).
"""

from __future__ import annotations

from appatlas.agent.intent import Slot, same_term
from appatlas.agent.knowledge import Knowledge
from appatlas.agent.options import Option
from appatlas.agent.valuing import pick_value, same_option
from appatlas.types import ActionKind

__all__ = ["VERTICAL", "LookAhead"]

VERTICAL = ("ScrollView", "ListView", "RecyclerView")  # containers whose scrolling shows more of the same screen


class LookAhead:
    def __init__(self, knowledge: Knowledge, *, gamma: float, depth: int, slot_pick: float) -> None:
        self.knowledge = knowledge
        self.gamma = gamma
        self.depth = depth
        self.slot_pick = slot_pick

    def value(self, o: Option, key: str, uncovered: list[str], slots: list[Slot], *, been: set[str]) -> float:
        """The discounted best value reachable by taking `o` on the screen `key`."""
        if o.widget is None and o.kind is not ActionKind.BACK:
            return 0.0
        targets = {t.target_key for t in self.knowledge.out(key) if t.target_key != key and same_option(t.action, o)
                   and not (o.kind is ActionKind.BACK and t.target_key in been)}
        if not targets:
            return 0.0
        memo: dict[tuple[str, int], float] = {}
        return self.gamma * max(self._best(k, self.depth - 1, uncovered, slots, {key}, memo) for k in targets)

    def _best(self, key: str, depth: int, uncovered: list[str], slots: list[Slot], avoid: set[str],
              memo: dict[tuple[str, int], float]) -> float:
        if (key, depth) in memo:
            return memo[(key, depth)]
        value = self._screen_value(key, uncovered, slots)
        if depth > 0:
            nxt = {t.target_key for t in self.knowledge.out(key)
                   if t.target_key not in avoid and t.target_key != key and t.action.kind is not ActionKind.BACK}
            if nxt:
                ahead = max(self._best(k, depth - 1, uncovered, slots, avoid | {key}, memo) for k in nxt)
                value = max(value, self.gamma * ahead)
        memo[(key, depth)] = value
        return value

    def _screen_value(self, key: str, uncovered: list[str], slots: list[Slot]) -> float:
        info = self.knowledge.screens.get(key)
        if info is None:
            return 0.0
        return max((self._label_value(label, ws, uncovered, slots, 0.5) for label, ws in info.labels), default=0.0)

    def _label_value(self, label: str, ws: tuple[str, ...], uncovered: list[str], slots: list[Slot],
                     pick: float) -> float:
        v = sum(self.knowledge.weight(t) for t in uncovered if any(same_term(t, w) for w in ws))
        return v + max((pick_value(s, label) * self.slot_pick * pick for s in slots), default=0.0)

    def hidden(self, o: Option, key: str, uncovered: list[str], slots: list[Slot], visible: set[str]) -> float:
        """The best value among labels that scrolling this container brings into view.

        Known from a recorded scroll of this screen, or — for a vertical list — from the labels other
        states of the same screen showed (a pager's pages are other content, not further down).
        """
        labels = [lw for t in self.knowledge.out(key) if t.action.kind is ActionKind.SCROLL
                  and same_option(t.action, o) for lw in self.knowledge.labels_of(t.target)]
        info = self.knowledge.screens.get(key)
        if info is not None and o.widget is not None and o.widget.class_name.endswith(VERTICAL):
            labels += list(info.labels)
        return max((self._label_value(label, ws, uncovered, slots, 1.0) for label, ws in labels
                    if label not in visible), default=0.0)
