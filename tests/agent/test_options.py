"""Options of a screen: rows named by their text, the element a person points at, confirm buttons."""

from __future__ import annotations

from appatlas.agent.options import describe_option, is_dialog, options
from appatlas.rag.text import CONFIRM_LABELS, CONFIRM_WORDS, tokens
from appatlas.types import ActionKind, Bounds, Screen, Widget

W, H = 1080, 2280


FULL = Bounds(0, 0, W, H)


def _screen(*widgets: Widget, window: Bounds = FULL) -> Screen:
    frame = Widget("android.widget.FrameLayout", window, package="com.x", children=widgets)
    return Screen("com.x", "com.x.Main", Widget("hierarchy", Bounds(0, 0, W, H), children=(frame,)), W, H)


def _row(y: int, title: str, value: str) -> Widget:
    return Widget("android.widget.LinearLayout", Bounds(0, y, W, y + 150), clickable=True, package="com.x",
                  children=(Widget("android.widget.TextView", Bounds(40, y + 10, 800, y + 70), text=title,
                                   package="com.x", resource_id="com.x:id/title"),
                            Widget("android.widget.TextView", Bounds(40, y + 80, 800, y + 140), text=value,
                                   package="com.x")))


def test_a_row_is_named_by_its_texts_and_points_at_its_title() -> None:
    opt = next(o for o in options(_screen(_row(100, "Snooze time", "10 minutes"))) if o.widget is not None)
    assert opt.label == "Snooze time 10 minutes" and opt.name == "Snooze time"
    assert opt.widget.resource_id == "com.x:id/title"


def test_a_screen_always_offers_back_last() -> None:
    assert options(_screen(_row(100, "a", "b")))[-1].kind is ActionKind.BACK


def test_a_field_is_a_type_option_named_by_its_hint() -> None:
    field = Widget("android.widget.EditText", Bounds(0, 100, W, 200), hint="Title", editable=True, package="com.x")
    opt = options(_screen(field))[0]
    assert opt.kind is ActionKind.TYPE and opt.label == "Title"


def test_typing_nothing_into_a_field_is_a_tap_on_it() -> None:
    field = Widget("android.widget.EditText", Bounds(0, 100, W, 200), hint="Title", editable=True, package="com.x")
    screen = _screen(field)
    assert options(screen)[0].action(screen).kind is ActionKind.TAP


def test_the_dialog_positive_button_confirms_and_cancel_does_not() -> None:
    ok = Widget("android.widget.Button", Bounds(700, 1400, 900, 1500), text="OK", resource_id="android:id/button1",
                clickable=True, package="com.x")
    cancel = Widget("android.widget.Button", Bounds(400, 1400, 600, 1500), text="Cancel",
                    resource_id="android:id/button2", clickable=True, package="com.x")
    screen = _screen(cancel, ok, window=Bounds(28, 700, 1052, 1600))
    by_label = {o.label: o for o in options(screen)}
    assert is_dialog(screen)
    assert by_label["OK"].positive and not by_label["Cancel"].positive and by_label["Cancel"].negative


def test_the_agent_and_the_planner_read_one_vocabulary_of_confirming_buttons() -> None:
    # a plain button (no dialog id) in a dialog confirms for the agent exactly when the planner, reading the
    # label's stemmed words, takes it for a confirm button too (`keys._close`); "Set" shares its stem with
    # "Settings", so the planner's word-by-word reading leaves it to the agent
    def button(label: str) -> Widget:
        return Widget("android.widget.Button", Bounds(700, 1400, 900, 1500), text=label, clickable=True,
                      package="com.x")

    for label in [*sorted(CONFIRM_LABELS - {"set"}), "Update", "Next", "Sign in", "Settings", "Cancel", "Share"]:
        agent = options(_screen(button(label.title()), window=Bounds(28, 700, 1052, 1600)))[0].positive
        assert agent == (set(tokens(label)) <= CONFIRM_WORDS), label
    assert options(_screen(button("Set"), window=Bounds(28, 700, 1052, 1600)))[0].positive
    assert not set(tokens("Settings")) <= CONFIRM_WORDS


def test_a_menu_item_that_reads_delete_is_not_a_confirmation() -> None:
    item = Widget("android.widget.TextView", Bounds(0, 100, W, 200), text="Delete", clickable=True, package="com.x")
    assert not options(_screen(item))[0].positive


def test_a_checkbox_describes_its_state() -> None:
    box = Widget("android.widget.CheckBox", Bounds(0, 100, W, 200), text="Autosave notes", checkable=True,
                 checked=True, clickable=True, package="com.x")
    assert describe_option(options(_screen(box))[0]) == "tap 'Autosave notes' (on)"


def test_a_delete_button_outside_a_dialog_is_an_action_not_a_confirmation() -> None:
    page = Widget("android.widget.Button", Bounds(0, 100, W, 200), text="Delete", clickable=True, package="com.x")
    assert not options(_screen(page))[0].positive
    asked = Widget("android.widget.Button", Bounds(700, 1400, 900, 1500), text="Delete", clickable=True,
                   package="com.x")
    assert options(_screen(asked, window=Bounds(28, 700, 1052, 1600)))[0].positive


def test_a_long_clickable_row_of_a_list_is_tapped_elsewhere_long_pressed() -> None:
    def item(y: int) -> Widget:
        return Widget("android.widget.FrameLayout", Bounds(0, y, W, y + 150), long_clickable=True, package="com.x",
                      children=(Widget("android.widget.TextView", Bounds(40, y + 10, 800, y + 140), text="7:00 am",
                                       package="com.x"),))
    listed = Widget("androidx.recyclerview.widget.RecyclerView", Bounds(0, 100, W, 1000), package="com.x",
                    children=(item(100),))
    assert options(_screen(listed))[0].kind is ActionKind.TAP
    assert options(_screen(item(100)))[0].kind is ActionKind.LONG_TAP
