"""Taps compared by the view that handles them (appatlas.graph.touch)."""

from appatlas.graph.touch import handler, same_touch
from appatlas.types import Action, ActionKind, Bounds, Screen, Selector, Widget


def _row(i: int, *, label_clickable: bool = False) -> Widget:
    top = 100 * i
    title = Widget("android.widget.TextView", Bounds(10, top + 10, 500, top + 50), resource_id="app:id/title",
                   text=f"Row {i}", clickable=label_clickable)
    switch = Widget("android.widget.Switch", Bounds(600, top + 10, 700, top + 50), resource_id="app:id/switch",
                    checkable=True)
    return Widget("android.widget.LinearLayout", Bounds(0, top, 720, top + 100), resource_id=f"app:id/row{i}",
                  clickable=True, long_clickable=True, children=(title, switch))


def _screen(*, label_clickable: bool = False) -> Screen:
    root = Widget("android.widget.FrameLayout", Bounds(0, 0, 720, 1280),
                  children=tuple(_row(i, label_clickable=label_clickable) for i in range(3)))
    return Screen("app", "Main", root, 720, 1280)


def _tap(kind: ActionKind = ActionKind.TAP, **selector: object) -> Action:
    return Action(kind, Selector(**selector))  # type: ignore[arg-type]


def test_a_row_and_its_plain_title_reach_the_same_handler():
    assert same_touch(_tap(text="Row 1", resource_id="app:id/title"), _tap(resource_id="app:id/row1"), _screen())


def test_two_rows_are_two_handlers():
    assert not same_touch(_tap(text="Row 1", resource_id="app:id/title"), _tap(resource_id="app:id/row2"), _screen())


def test_a_clickable_label_is_its_own_handler():
    screen = _screen(label_clickable=True)
    assert not same_touch(_tap(text="Row 1", resource_id="app:id/title"), _tap(resource_id="app:id/row1"), screen)


def test_a_switch_in_a_row_is_not_the_row():
    screen = _screen()
    switch = next(w for w in screen.widgets() if w.resource_id == "app:id/switch")
    assert handler(screen, switch) is switch


def test_a_long_tap_goes_to_the_long_clickable_row():
    screen = _screen()
    title = next(w for w in screen.widgets() if w.text == "Row 0")
    assert handler(screen, title, ActionKind.LONG_TAP).resource_id == "app:id/row0"
    assert same_touch(_tap(ActionKind.LONG_TAP, text="Row 0", resource_id="app:id/title"),
                      _tap(ActionKind.LONG_TAP, resource_id="app:id/row0"), screen)


def test_a_text_not_on_the_screen_is_not_found():
    assert not same_touch(_tap(text="Row 9", resource_id="app:id/title"), _tap(resource_id="app:id/row1"), _screen())


def test_typing_is_not_a_tap():
    a = Action(ActionKind.TYPE, Selector(resource_id="app:id/title"), text="x")
    assert not same_touch(a, a, _screen())
