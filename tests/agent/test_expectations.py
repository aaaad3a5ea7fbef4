"""Expectations on screens and devices (graph.expectations), their YAML, and the demo app's real state."""

from __future__ import annotations

import pytest

from appatlas.devices.virtual import open_app
from appatlas.errors import TestCaseInvalid
from appatlas.graph.expectations import check_device, check_screen, read_only, screen_errors
from appatlas.graph.fingerprint import structure_key
from appatlas.graph.testcases import dump_tests, parse_tests
from appatlas.types import Action, ActionKind, Expectation, Selector, TestCase

PKG = "com.appatlas.notes"


def _tap(device, **kw) -> None:  # noqa: ANN001
    device.perform(Action(ActionKind.TAP, target=Selector(**kw)))


def _type(device, rid: str, text: str) -> None:  # noqa: ANN001
    device.perform(Action(ActionKind.TYPE, target=Selector(resource_id=f"{PKG}:id/{rid}"), text=text))


def _new_note(device, title: str) -> None:  # noqa: ANN001
    _tap(device, resource_id=f"{PKG}:id/fab_new")
    _tap(device, text="Text note")
    if title:
        _type(device, "new_title", title)
    _tap(device, resource_id=f"{PKG}:id/new_save")


def test_a_new_row_is_counted_against_what_the_run_first_saw() -> None:
    device = open_app("demo", screenshots=False)
    before = device.snapshot()
    key = structure_key(before)
    new = Expectation("shown", "Groceries", where=key, new=True)
    assert not check_screen([new], before, here={key}, seen={key: before})[1].holds  # 1 seen, 2 needed
    _new_note(device, "Groceries")
    device.press_back()  # Saved -> the notes list
    after = device.snapshot()
    checks = check_screen([new], after, here={key}, seen={key: before})
    assert all(c.holds for c in checks), checks
    assert device.state()["lists"]["notes"][0] == {"title": "Groceries", "subtitle": "", "kind": "text"}


def test_an_error_under_a_field_fails_the_case_quoting_it() -> None:
    device = open_app("demo", screenshots=False)
    _new_note(device, "")  # Save with no title
    screen = device.snapshot()
    assert screen_errors(screen) == ["Give the note a title"]
    first = check_screen([], screen)[0]
    assert not first.holds and "Give the note a title" in first.evidence


def test_checking_moves_back_to_the_list_read_only_and_quotes_a_missing_row() -> None:
    device = open_app("demo", screenshots=False)
    start = device.snapshot()
    key = structure_key(start)
    _tap(device, text="Trip to Lisbon")
    _tap(device, content_desc="Delete")
    _tap(device, text="Delete")
    _tap(device, text="Book list")  # the check starts on another screen
    gone = Expectation("gone", "Trip to Lisbon", where=key)
    kept = Expectation("shown", "Groceries", where=key)
    checks = check_device([gone, kept], device, where=lambda s: {structure_key(s)}, seen={key: start})
    assert all(c.holds for c in checks), checks
    assert device.location == ("notes", "")
    missing = check_device([Expectation("shown", "Trip to Lisbon", where=key)], device,
                           where=lambda s: {structure_key(s)})
    assert not missing[1].holds and "Trip" in missing[1].evidence
    assert "Trip to Lisbon" not in [r["title"] for r in device.state()["lists"]["notes"]]


def test_read_only_moves_never_change_data() -> None:
    assert read_only(Action(ActionKind.BACK))
    assert read_only(Action(ActionKind.TAP, target=Selector(text="Back to notes")))
    for label in ("Save", "Delete", "OK", "Add task"):
        assert not read_only(Action(ActionKind.TAP, target=Selector(text=label)))
    assert not read_only(Action(ActionKind.TAP, target=Selector(resource_id="x:id/s",
                                                               class_name="android.widget.Switch")))


def test_a_switch_that_does_not_persist_forgets_when_its_screen_closes() -> None:
    from appatlas.devices.spec import WidgetKind

    base = open_app("demo", screenshots=False).spec
    from dataclasses import replace

    quiet = base.screens["quiet_hours"]
    widgets = tuple(replace(w, persist=False) if w.kind is WidgetKind.SWITCH else w for w in quiet.widgets)
    spec = replace(base, screens={**base.screens, "quiet_hours": replace(quiet, widgets=widgets)})
    for s, remembered in ((base, True), (spec, False)):
        device = open_app(s, screenshots=False)
        _tap(device, content_desc="Settings")
        _tap(device, text="Notifications")
        _tap(device, resource_id=f"{PKG}:id/open_quiet_hours")
        _tap(device, resource_id=f"{PKG}:id/pref_quiet")
        assert device.state()["toggles"]["quiet_hours.pref_quiet"]
        device.press_back()
        assert device.state()["toggles"]["quiet_hours.pref_quiet"] is remembered


def test_expectations_round_trip_through_yaml_and_bad_ones_are_named() -> None:
    test = TestCase(name="t", intent="create a note named 'X'", start="k1", steps=(), expect=(
        Expectation("shown", "X", where="k2", new=True, note="a new 'X' in the list"),
        Expectation("checked", "Quiet hours", where="k3"), Expectation("screen", where="k4")))
    text = dump_tests([test])
    assert "where: k2" in text and "new: true" in text
    assert parse_tests(text).tests[0].expect == test.expect
    bad = text.replace("checked: Quiet hours", "checked: Quiet hours\n    shown: X")
    with pytest.raises(TestCaseInvalid, match=r"tests\[0\]\.expect\[1\]"):
        parse_tests(bad)
