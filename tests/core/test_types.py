from __future__ import annotations

import pytest

from appatlas.devices.base import locate, selector_for
from appatlas.errors import SelectorNotFound
from appatlas.types import Action, ActionKind, Bounds, Screen, Selector, Widget, qualify_activity


def _row(i: int) -> Widget:
    return Widget(class_name="LinearLayout", bounds=Bounds(0, 100 * i, 100, 100 * i + 90), clickable=True,
                  resource_id="com.x:id/row", children=(
                      Widget(class_name="TextView", bounds=Bounds(10, 100 * i + 10, 90, 100 * i + 80),
                             text=f"Note {i}"),))


def _screen() -> Screen:
    row = _row
    window = Widget(class_name="FrameLayout", bounds=Bounds(0, 0, 100, 400), children=tuple(row(i) for i in range(3)))
    return Screen(package="com.x", activity="com.x.Main", width=100, height=400,
                  root=Widget(class_name="hierarchy", bounds=Bounds(0, 0, 100, 400), children=(window,)))


def test_a_tap_without_a_target_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a target"):
        Action(ActionKind.TAP)


def test_scroll_direction_is_validated() -> None:
    with pytest.raises(ValueError, match="scroll direction"):
        Action(ActionKind.SCROLL, direction="sideways")


def test_typing_different_values_into_one_field_is_one_graph_edge() -> None:
    field = Selector(resource_id="com.x:id/name", class_name="EditText")
    assert Action(ActionKind.TYPE, target=field, text="Alice").key == Action(ActionKind.TYPE, target=field, text="Bob").key


def test_widget_at_returns_the_deepest_last_drawn_widget_under_the_point() -> None:
    assert _screen().widget_at(50, 150).text == "Note 1"


def test_widget_at_outside_the_screen_is_none() -> None:
    assert _screen().widget_at(500, 50) is None


def test_selector_for_a_list_row_keeps_rows_apart_by_index() -> None:
    screen = _screen()
    rows = [w for w in screen.widgets() if w.resource_id == "com.x:id/row"]
    assert [locate(selector_for(r, screen), screen) is r for r in rows] == [True, True, True]


def test_locate_falls_back_to_bounds_when_ids_changed() -> None:
    screen = _screen()
    gone = Selector(resource_id="com.x:id/renamed", bounds=Bounds(0, 200, 100, 290))
    assert locate(gone, screen).text == "Note 2"  # what a finger at the old spot would hit


def test_locate_reports_a_missing_widget_with_the_next_step() -> None:
    with pytest.raises(SelectorNotFound, match="re-crawl"):
        locate(Selector(resource_id="com.x:id/none"), _screen())


def test_activity_names_are_qualified_with_their_package() -> None:
    assert qualify_activity("com.x", "com.x/.ui.Main") == "com.x.ui.Main"
    assert qualify_activity("com.x", "org.y.Other") == "org.y.Other"


@pytest.mark.parametrize("bad", ["com.x; rm -rf /", "com.x/.Main && reboot", "$(id)", "com", "com.x/.Ma in", "../x"])
def test_app_names_that_could_reach_a_shell_are_refused(bad: str) -> None:
    from appatlas.devices.base import app_name
    from appatlas.errors import UnsafeName

    with pytest.raises(UnsafeName, match="not a valid Android"):
        app_name(bad)


def test_valid_app_names_split_into_package_and_activity() -> None:
    from appatlas.devices.base import app_name

    assert app_name("com.x.notes/.ui.MainActivity") == ("com.x.notes", ".ui.MainActivity")
    assert app_name("com.x.notes") == ("com.x.notes", "")
