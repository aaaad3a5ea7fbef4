"""Progress: which of the intent's words the steps so far have covered."""

from __future__ import annotations

from appatlas.agent.intent import parse_intent
from appatlas.agent.progress import Progress, Taken
from appatlas.types import ActionKind

SNOOZE_ON = Taken(ActionKind.SCROLL, label="settings", toggles=(("Always use same snooze time", True, False),))


def test_a_switch_already_on_does_not_set_a_value_the_intent_names() -> None:
    progress = Progress(parse_intent("Set the snooze time to 5 minutes"), [SNOOZE_ON])
    assert {"snooze", "time"} <= set(progress.uncovered())


def test_a_switch_already_as_the_intent_wants_it_covers_its_words() -> None:
    progress = Progress(parse_intent("turn on always use same snooze time"), [SNOOZE_ON])
    assert "snooze" not in progress.uncovered()


def test_a_switch_in_the_other_state_covers_nothing() -> None:
    progress = Progress(parse_intent("turn off always use same snooze time"), [SNOOZE_ON])
    assert "snooze" in progress.uncovered()
