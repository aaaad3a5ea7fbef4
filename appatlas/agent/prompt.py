"""The context a model reads before choosing: the goal, the steps so far, and the screen, kept short
(a 135M model on two cores pays for every token of it)."""

from __future__ import annotations

from collections.abc import Sequence

from appatlas.agent.options import is_dialog, options
from appatlas.types import Screen

__all__ = ["choice_context", "screen_summary"]

MAX_LABELS = 18
MAX_STEPS = 8


def screen_summary(screen: Screen) -> str:
    """One line: where we are and what the screen offers."""
    place = screen.activity.rsplit(".", 1)[-1] or screen.package
    labels = []
    for o in options(screen, scroll=False):
        if o.label and o.label not in labels and o.widget is not None:
            labels.append(o.label[:40])
    shown = ", ".join(f"'{x}'" for x in labels[:MAX_LABELS])
    more = f" and {len(labels) - MAX_LABELS} more" if len(labels) > MAX_LABELS else ""
    return f"{place}{' (a dialog)' if is_dialog(screen) else ''} with {shown}{more}"


def choice_context(goal: str, steps: Sequence[str], screen: Screen | None) -> str:
    """The user message of a choice: goal, recent steps, screen (left out where none is known: a decision
    replayed from training rows keeps what its options say, not the screen), and the question."""
    recent = list(steps)[-MAX_STEPS:]
    done = "; ".join(recent) if recent else "nothing yet"
    where = f"Screen: {screen_summary(screen)}\n" if screen is not None else ""
    return f"Goal: {goal}\nSteps so far: {done}\n{where}Which action comes next for the goal?"
