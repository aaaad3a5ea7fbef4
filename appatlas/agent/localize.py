"""Where am I? The screen a device shows, found in what the atlas knows.

    exact      the very state was recorded (content key)
    structure  the same screen with other content (structure key)
    nearest    an unknown screen that shares most of its widgets with a known one
               (Jaccard overlap of structure tokens, same activity preferred)
    retrieved  an unknown screen that a retriever (the rag store) matched
    unknown    none of these: the agent handles interruptions, then asks the model
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from appatlas.agent.knowledge import Knowledge
from appatlas.graph.fingerprint import structure_key, structure_tokens
from appatlas.types import Screen

__all__ = ["Place", "Retriever", "localize"]

Retriever = Callable[[Screen], "tuple[str, float] | None"]  # screen -> (known structure key, score)


@dataclass(frozen=True)
class Place:
    key: str  # the screen's own structure key
    how: str  # exact | structure | nearest | retrieved | unknown
    known_as: str = ""  # the known screen it is (or resembles); "" when unknown
    state: int | None = None
    score: float = 0.0

    @property
    def known(self) -> bool:
        return bool(self.known_as)


def localize(screen: Screen, knowledge: Knowledge, *, threshold: float = 0.6,
             retriever: Retriever | None = None) -> Place:
    """Find `screen` in `knowledge` (see the module docstring)."""
    key = structure_key(screen)
    state = knowledge.state_of(screen)
    if state is not None:
        return Place(key, "exact", knowledge.state_key.get(state, key), state, 1.0)
    if key in knowledge.screens:
        return Place(key, "structure", key, None, 1.0)
    tokens = structure_tokens(screen)
    best, best_score = "", 0.0
    for info in knowledge.screens.values():
        union = len(tokens | info.tokens)
        score = len(tokens & info.tokens) / union if union else 0.0
        if info.activity == screen.activity:
            score += 0.05  # a tie goes to the same activity
        if score > best_score:
            best, best_score = info.key, score
    if best and best_score >= threshold:
        return Place(key, "nearest", best, None, min(best_score, 1.0))
    if retriever is not None:
        found = retriever(screen)
        if found is not None and found[0] in knowledge.screens:
            return Place(key, "retrieved", found[0], None, found[1])
    return Place(key, "unknown", "", None, best_score)
