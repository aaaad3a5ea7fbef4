"""Progress: which of the intent's words the steps so far have covered."""

from __future__ import annotations

from appatlas.agent.progress import Progress, Taken
from appatlas.rag.intent import parse_intent
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


def test_a_switch_flipped_on_a_screen_with_its_own_save_is_committed_by_save_not_at_once() -> None:
    intent = parse_intent("turn on quiet hours")
    flip = Taken(ActionKind.TAP, label="Quiet hours", changed=True, keeps=True)
    assert Progress(intent, [flip]).last_commit(dialog_now=False) == -1
    assert Progress(intent, [flip, Taken(ActionKind.TAP, label="Save", confirm=True)]).last_commit(dialog_now=False) == 1
    settings = Taken(ActionKind.TAP, label="Quiet hours", changed=True)  # a settings list saves a switch at once
    assert Progress(intent, [settings]).last_commit(dialog_now=False) == 0


def test_a_screen_keeps_its_switches_when_it_has_a_save_button() -> None:
    from appatlas.agent.progress import taken
    from appatlas.types import Action, Bounds, Screen, Selector, Widget

    def screen(*buttons: str) -> Screen:
        kids = (Widget("android.widget.Switch", Bounds(0, 0, 1080, 150), text="Quiet hours", clickable=True,
                       checkable=True, package="com.x", resource_id="com.x:id/pref_quiet"),
                *(Widget("android.widget.Button", Bounds(0, 200 * (i + 1), 1080, 200 * (i + 1) + 150), text=b,
                         clickable=True, package="com.x") for i, b in enumerate(buttons)))
        return Screen("com.x", "com.x.Main", Widget("hierarchy", Bounds(0, 0, 1080, 2280), children=kids), 1080, 2280)

    tap = Action(ActionKind.TAP, Selector(resource_id="com.x:id/pref_quiet"))
    assert taken(tap, screen("Save")).keeps and not taken(tap, screen("Quiet hours help")).keeps


SMS = parse_intent("send a text message to Bob")
SHARE = Taken(ActionKind.TAP, label="Share", screen="contact")


def test_a_tap_that_advanced_nothing_of_the_intent_is_the_wrong_turn_to_back_out_of() -> None:
    from appatlas.agent.progress import wrong_turn

    scrolled = [SHARE, Taken(ActionKind.SCROLL, label="list", screen="share sheet")]
    assert wrong_turn(Progress(SMS, scrolled, current="share sheet")) is SHARE


def test_a_tap_that_covered_a_word_of_the_intent_is_no_wrong_turn() -> None:
    from appatlas.agent.progress import wrong_turn

    email = Taken(ActionKind.TAP, label="Send email", screen="contact")
    assert wrong_turn(Progress(SMS, [email], current="mail app")) is None


def test_a_tap_that_changed_something_or_stayed_on_its_screen_is_no_wrong_turn() -> None:
    from appatlas.agent.progress import wrong_turn

    flipped = Taken(ActionKind.TAP, label="Favourite", screen="contact", changed=True)
    assert wrong_turn(Progress(SMS, [flipped], current="contact 2")) is None
    assert wrong_turn(Progress(SMS, [SHARE], current="contact")) is None


def test_a_run_backs_out_once() -> None:
    from appatlas.agent.progress import wrong_turn

    again = [SHARE, Taken(ActionKind.BACK, screen="share sheet"), Taken(ActionKind.TAP, label="Call", screen="contact")]
    assert wrong_turn(Progress(SMS, again, current="dialer")) is None


def test_the_tap_backed_out_of_is_known_only_on_its_own_screen() -> None:
    from appatlas.agent.progress import backed_out_of

    history = [SHARE, Taken(ActionKind.SCROLL, screen="share sheet"), Taken(ActionKind.BACK, screen="share sheet")]
    assert backed_out_of(history, "contact") is SHARE
    assert backed_out_of(history, "contacts list") is None
    assert backed_out_of(history[:2], "contact") is None
