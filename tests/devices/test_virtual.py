"""The virtual device: touches, typing, gates, dialogs, permissions, back stack, crashes, scrolling, the demo."""

from __future__ import annotations

import random
from collections import deque
from typing import Any

import pytest

from appatlas.devices.base import Device, locate, selector_for
from appatlas.devices.spec import AppSpec, EffectKind, spec_from_dict
from appatlas.devices.virtual import VirtualDevice, open_app
from appatlas.errors import ActionRefused, DeviceError, SelectorNotFound, SpecError
from appatlas.hierarchy import parse_u2_xml, to_u2_xml
from appatlas.types import Action, Screen, Selector, Widget

MINI = "com.example.mini"
NOTES = "com.appatlas.notes"
LAUNCHER = ("com.android.launcher3", "com.android.launcher3.Launcher")


def tap(device: VirtualDevice, **selector: Any) -> None:
    device.perform(Action("tap", Selector(**selector)))


def type_into(device: VirtualDevice, field_id: str, text: str, *, package: str = MINI) -> None:
    device.perform(Action("type", Selector(resource_id=f"{package}:id/{field_id}"), text=text))


def find(screen: Screen, **fields: str) -> Widget | None:
    return next((w for w in screen.widgets() if all(getattr(w, k) == v for k, v in fields.items())), None)


def texts(screen: Screen) -> list[str]:
    return [w.text for w in screen.widgets() if w.text]


def shape(widget: Widget) -> tuple[Any, ...]:
    """The tree without its texts: what must stay when only dynamic content changes."""
    return (widget.class_name, widget.resource_id, str(widget.bounds), tuple(shape(c) for c in widget.children))


def field(screen: Screen, field_id: str, package: str = MINI) -> Widget:
    w = find(screen, resource_id=f"{package}:id/{field_id}")
    assert w is not None, f"{field_id} is not on {screen.activity}"
    return w


# --- the protocol and the start ---------------------------------------------------------------


def test_virtual_device_satisfies_the_device_protocol(mini: VirtualDevice) -> None:
    assert isinstance(mini, Device)


def test_device_starts_on_the_launch_screen(mini: VirtualDevice) -> None:
    screen = mini.snapshot()
    assert (screen.package, screen.activity) == (MINI, f"{MINI}.HomeActivity")
    assert mini.current_app() == (MINI, f"{MINI}.HomeActivity")


def test_info_reports_the_spec_screen_size(mini: VirtualDevice) -> None:
    info = mini.info()
    assert (info.serial, info.width, info.height) == ("virtual-1", 1080, 2280)


def test_snapshot_carries_a_png_screenshot_by_default() -> None:
    device = open_app("demo")
    assert device.snapshot().screenshot[:8] == b"\x89PNG\r\n\x1a\n"


def test_snapshot_has_no_screenshot_when_turned_off(mini: VirtualDevice) -> None:
    assert mini.snapshot().screenshot is None


def test_every_widget_lies_inside_the_screen_and_its_parent(demo: VirtualDevice) -> None:
    def check(w: Widget, parent: Widget) -> None:
        b, p = w.bounds, parent.bounds
        assert p.x1 <= b.x1 <= b.x2 <= p.x2 and p.y1 <= b.y1 <= b.y2 <= p.y2, (w.class_name, b, p)
        for c in w.children:
            check(c, w)

    root = demo.snapshot().root
    for window in root.children:
        check(window, root)


# --- touching -----------------------------------------------------------------------------------


def test_tap_by_selector_and_by_point_hit_the_same_widget(mini_dict: dict[str, Any]) -> None:
    spec = spec_from_dict(mini_dict)
    by_selector, by_point = VirtualDevice(spec, screenshots=False), VirtualDevice(spec, screenshots=False)
    button = find(by_point.snapshot(), text="Delete account")
    assert button is not None
    tap(by_selector, resource_id=f"{MINI}:id/delete")
    by_point.tap(*button.bounds.center)
    assert by_selector.snapshot() == by_point.snapshot()


def test_a_tap_on_a_rows_label_opens_the_row(demo: VirtualDevice) -> None:
    subtitle = find(demo.snapshot(), text="Flights and hotel")
    assert subtitle is not None and not subtitle.clickable
    demo.tap(*subtitle.bounds.center)
    assert demo.snapshot().activity == f"{NOTES}.NoteActivity"


def test_a_selector_found_by_selector_for_taps_that_widget(demo: VirtualDevice) -> None:
    screen = demo.snapshot()
    row = next(w for w in screen.widgets() if w.resource_id == f"{NOTES}:id/notes_row")
    assert locate(selector_for(row, screen), screen) is row


def test_tapping_a_missing_widget_raises_selector_not_found(mini: VirtualDevice) -> None:
    with pytest.raises(SelectorNotFound, match="Nowhere"):
        tap(mini, text="Nowhere")


def test_list_rows_open_a_detail_with_row_specific_content(mini: VirtualDevice) -> None:
    type_into(mini, "email", "ana@example.com")
    tap(mini, text="Sign in")
    tap(mini, text="Mail 3")
    third = mini.snapshot()
    mini.press_back()
    tap(mini, text="Mail 5")
    fifth = mini.snapshot()
    assert "Body 3" in texts(third) and "Body 5" in texts(fifth)
    assert shape(third.root) == shape(fifth.root)


def test_long_tap_on_a_row_opens_its_dialog(mini: VirtualDevice) -> None:
    type_into(mini, "email", "ana@example.com")
    tap(mini, text="Sign in")
    mini.perform(Action("long_tap", Selector(text="Mail 1")))
    assert "Are you sure?" in texts(mini.snapshot())


def test_navigate_up_returns_like_back(demo: VirtualDevice) -> None:
    tap(demo, text="Groceries")
    tap(demo, content_desc="Navigate up")
    assert demo.snapshot().activity == f"{NOTES}.MainActivity"


# --- typing and gates ---------------------------------------------------------------------------


def test_typed_text_shows_in_the_field(mini: VirtualDevice) -> None:
    type_into(mini, "email", "ana@example.com")
    assert field(mini.snapshot(), "email").text == "ana@example.com"


def test_typed_password_shows_as_dots(mini: VirtualDevice) -> None:
    type_into(mini, "pin", "1234")
    pin = field(mini.snapshot(), "pin")
    assert pin.password and pin.text == "\u2022" * 4


def test_tapping_a_field_focuses_it_for_low_level_typing(mini: VirtualDevice) -> None:
    mini.tap(*field(mini.snapshot(), "email").bounds.center)
    mini.type_text("bo")
    mini.type_text("b", append=True)
    screen = mini.snapshot()
    assert field(screen, "email").focused and field(screen, "email").text == "bob"


def test_typing_with_no_focused_field_raises(mini: VirtualDevice) -> None:
    with pytest.raises(ActionRefused, match="no text field has focus"):
        mini.type_text("lost")


def test_typed_text_persists_while_a_dialog_opens_and_closes(mini: VirtualDevice) -> None:
    type_into(mini, "email", "ana@example.com")
    tap(mini, text="Delete account")
    tap(mini, text="Cancel")
    assert field(mini.snapshot(), "email").text == "ana@example.com"


def test_typed_text_is_gone_after_the_app_restarts(mini: VirtualDevice) -> None:
    type_into(mini, "email", "ana@example.com")
    mini.launch()
    assert field(mini.snapshot(), "email").text == ""


def test_gate_keeps_the_screen_and_shows_its_error_on_invalid_input(mini: VirtualDevice) -> None:
    type_into(mini, "email", "not-an-email")
    tap(mini, text="Sign in")
    screen = mini.snapshot()
    assert screen.activity == f"{MINI}.HomeActivity"
    assert find(screen, resource_id=f"{MINI}:id/email_error", text="Enter a valid email") is not None


def test_gate_opens_its_target_on_valid_input(mini: VirtualDevice) -> None:
    type_into(mini, "email", "ana@example.com")
    tap(mini, text="Sign in")
    assert mini.snapshot().activity == f"{MINI}.InboxActivity"


def test_typing_again_clears_the_gate_error(mini: VirtualDevice) -> None:
    type_into(mini, "email", "nope")
    tap(mini, text="Sign in")
    type_into(mini, "email", "still nope")
    assert find(mini.snapshot(), resource_id=f"{MINI}:id/email_error") is None


def test_typing_into_a_button_raises(mini: VirtualDevice) -> None:
    with pytest.raises(ActionRefused, match="not a text field"):
        mini.perform(Action("type", Selector(text="Boom"), text="x"))


# --- toggles ------------------------------------------------------------------------------------


def test_tapping_a_checkbox_flips_it(mini: VirtualDevice) -> None:
    tap(mini, text="Remember me")
    assert find(mini.snapshot(), text="Remember me").checked


def test_switch_state_survives_a_restart(mini: VirtualDevice) -> None:
    tap(mini, text="Dark theme")
    mini.launch()
    assert not find(mini.snapshot(), text="Dark theme").checked


# --- dialogs ------------------------------------------------------------------------------------


def test_a_dialog_opens_as_a_second_window(mini: VirtualDevice) -> None:
    tap(mini, text="Delete account")
    screen = mini.snapshot()
    assert len(screen.root.children) == 2 and "Are you sure?" in texts(screen)


def test_a_dialog_button_closes_the_dialog(mini: VirtualDevice) -> None:
    tap(mini, text="Delete account")
    tap(mini, text="Cancel")
    assert "Are you sure?" not in texts(mini.snapshot())


def test_back_closes_a_dialog_and_stays_on_the_screen(mini: VirtualDevice) -> None:
    tap(mini, text="Delete account")
    mini.press_back()
    screen = mini.snapshot()
    assert "Are you sure?" not in texts(screen) and screen.activity == f"{MINI}.HomeActivity"


def test_a_tap_outside_a_dialog_closes_it_without_reaching_the_screen(mini: VirtualDevice) -> None:
    tap(mini, text="Delete account")
    boom = find(mini.snapshot(), text="Boom")
    dialog = mini.snapshot().root.children[-1]
    assert not dialog.bounds.contains(*boom.bounds.center)
    mini.tap(*boom.bounds.center)
    assert not mini.crashed and "Are you sure?" not in texts(mini.snapshot())


def test_a_dialogs_back_button_leaves_the_screen_under_it(mini: VirtualDevice) -> None:
    type_into(mini, "email", "ana@example.com")
    tap(mini, text="Sign in")
    mini.perform(Action("long_tap", Selector(text="Mail 1")))
    tap(mini, text="Delete")
    assert mini.snapshot().activity == f"{MINI}.HomeActivity"


# --- permissions --------------------------------------------------------------------------------


def test_permission_popup_shows_on_first_entry(mini: VirtualDevice) -> None:
    tap(mini, text="Camera")
    screen = mini.snapshot()
    assert screen.package == "com.android.permissioncontroller"
    assert find(screen, text="Allow") is not None and find(screen, text="Deny") is not None


def test_permission_popup_appears_once(mini: VirtualDevice) -> None:
    tap(mini, text="Camera")
    tap(mini, text="Allow")
    mini.press_back()
    mini.launch()
    tap(mini, text="Camera")
    screen = mini.snapshot()
    assert screen.package == MINI and screen.activity == f"{MINI}.CameraActivity"


def test_denying_a_permission_with_on_deny_back_returns(mini: VirtualDevice) -> None:
    tap(mini, text="Camera")
    tap(mini, text="Deny")
    assert mini.snapshot().activity == f"{MINI}.HomeActivity"


# --- back stack, leaving, crashing --------------------------------------------------------------


def test_back_pops_the_back_stack(mini: VirtualDevice) -> None:
    type_into(mini, "email", "ana@example.com")
    tap(mini, text="Sign in")
    tap(mini, text="Mail 0")
    mini.press_back()
    assert mini.snapshot().activity == f"{MINI}.InboxActivity"


def test_back_on_the_launch_screen_leaves_the_app(mini: VirtualDevice) -> None:
    mini.press_back()
    screen = mini.snapshot()
    assert screen.package == LAUNCHER[0] and mini.current_app() == LAUNCHER


def test_launch_restarts_on_the_launch_screen_with_a_fresh_stack(mini: VirtualDevice) -> None:
    type_into(mini, "email", "ana@example.com")
    tap(mini, text="Sign in")
    mini.perform(Action("launch", app=MINI))
    mini.press_back()
    assert mini.current_app() == LAUNCHER


def test_the_launcher_icon_starts_the_app(mini: VirtualDevice) -> None:
    mini.press_back()
    tap(mini, content_desc="Mini")
    assert mini.current_app() == (MINI, f"{MINI}.HomeActivity")


def test_stop_app_shows_the_launcher(mini: VirtualDevice) -> None:
    mini.stop_app()
    assert mini.current_app() == LAUNCHER


def test_launching_another_package_raises(mini: VirtualDevice) -> None:
    with pytest.raises(DeviceError, match="not installed"):
        mini.launch("com.example.other")


def test_leaving_for_another_app_and_back_returns(mini: VirtualDevice) -> None:
    tap(mini, text="Help")
    assert mini.current_app()[0] == "com.android.chrome"
    mini.press_back()
    assert mini.current_app() == (MINI, f"{MINI}.HomeActivity")


def test_a_crash_shows_the_system_dialog_over_the_launcher(mini: VirtualDevice) -> None:
    tap(mini, text="Boom")
    screen = mini.snapshot()
    assert screen.package == "android" and "Mini has stopped" in texts(screen)
    assert mini.current_app() == LAUNCHER and mini.crashed


def test_launch_after_a_crash_restarts_the_app(mini: VirtualDevice) -> None:
    tap(mini, text="Boom")
    mini.launch()
    assert mini.current_app() == (MINI, f"{MINI}.HomeActivity") and not mini.crashed


def test_closing_the_crash_dialog_leaves_the_launcher(mini: VirtualDevice) -> None:
    tap(mini, text="Boom")
    tap(mini, text="Close app")
    screen = mini.snapshot()
    assert screen.package == LAUNCHER[0] and "Mini has stopped" not in texts(screen)


def test_export_diagnostics_crashes_the_demo(demo: VirtualDevice) -> None:
    for step in ({"content_desc": "Settings"}, {"text": "Advanced"}, {"text": "Diagnostics"},
                 {"text": "Export diagnostics"}):
        tap(demo, **step)
    assert demo.crashed and "Atlas Notes has stopped" in texts(demo.snapshot())


# --- dynamic content, scrolling, determinism ----------------------------------------------------


def test_dynamic_text_changes_with_each_action_but_the_shape_stays(demo: VirtualDevice) -> None:
    tap(demo, content_desc="Settings")
    tap(demo, text="About")
    before = demo.snapshot()
    demo.perform(Action("scroll", direction="down"))  # nothing to scroll here: only time passes
    after = demo.snapshot()
    assert texts(before) != texts(after)
    assert shape(before.root) == shape(after.root)


def test_scrolling_down_shows_later_rows(demo: VirtualDevice) -> None:
    assert find(demo.snapshot(), text="Old ideas") is None
    demo.perform(Action("scroll", direction="down"))
    screen = demo.snapshot()
    assert find(screen, text="Old ideas") is not None and find(screen, text="Groceries") is None


def test_scrolling_up_returns_to_the_first_rows(demo: VirtualDevice) -> None:
    demo.perform(Action("scroll", direction="down"))
    demo.perform(Action("scroll", direction="up"))
    assert find(demo.snapshot(), text="Groceries") is not None


def test_scrolling_past_the_end_keeps_the_last_rows(demo: VirtualDevice) -> None:
    for _ in range(5):
        demo.perform(Action("scroll", direction="down"))
    last = [w.text for w in demo.snapshot().widgets() if w.resource_id == f"{NOTES}:id/notes_title"]
    assert last[-1] == "Old ideas"


def test_a_screen_too_tall_for_its_widgets_scrolls_by_widgets(mini_dict: dict[str, Any]) -> None:
    mini_dict["screens"][2]["widgets"] = [{"text": f"Paragraph {i}"} for i in range(40)]
    device = VirtualDevice(spec_from_dict(mini_dict), screenshots=False)
    device.launch(f"{MINI}/.MailActivity")
    for _ in range(3):
        device.perform(Action("scroll", direction="down"))
    screen = device.snapshot()
    assert find(screen, text="Paragraph 0") is None and find(screen, text="Paragraph 39") is not None


def test_a_scrolled_out_row_is_tapped_after_scrolling(demo: VirtualDevice) -> None:
    demo.perform(Action("scroll", target=Selector(resource_id=f"{NOTES}:id/notes"), direction="down"))
    tap(demo, text="Old ideas")
    assert "Old ideas" in texts(demo.snapshot())


def test_same_actions_give_the_same_screens_and_pixels() -> None:
    runs = []
    for _ in range(2):
        device = open_app("demo")
        tap(device, text="Trip to Lisbon")
        tap(device, text="Attach photo")
        tap(device, text="Allow")
        runs.append(device.snapshot())
    assert runs[0] == runs[1] and runs[0].screenshot == runs[1].screenshot


def _walk(device: VirtualDevice, steps: int, *, seed: int) -> list[Screen]:
    """Random touches, typing, scrolls, back and launches; the screen seen before each."""
    rng = random.Random(seed)
    seen = []
    for _ in range(steps):
        screen = device.snapshot()
        seen.append(screen)
        targets = [w for w in screen.widgets() if w.clickable or w.editable or w.long_clickable]
        roll = rng.random()
        if roll < 0.08 or not targets:
            device.press_back()
        elif roll < 0.12:
            device.launch()
        elif roll < 0.16:
            device.perform(Action("scroll", direction=rng.choice(("up", "down"))))
        else:
            w = rng.choice(targets)
            kind = "type" if w.editable else "long_tap" if rng.random() < 0.1 else "tap"
            try:
                device.perform(Action(kind, selector_for(w, screen), text="ana@example.com" if kind == "type" else ""))
            except ActionRefused:  # a field under a dialog: the touch closed the dialog, nothing has focus
                assert kind == "type"
    return seen


def test_random_walk_never_breaks_the_device(demo: VirtualDevice) -> None:
    """Any sequence of touches, typing and keys leaves the device answering with a valid screen."""
    seen = _walk(demo, 400, seed=7)
    assert len({s.activity for s in seen}) > 10 and demo.snapshot().root.children


def test_every_screen_of_a_walk_survives_the_uiautomator2_xml_round_trip(demo: VirtualDevice) -> None:
    for screen in _walk(demo, 120, seed=11):
        assert parse_u2_xml(to_u2_xml(screen.root), width=1080, height=2280) == screen.root


# --- the demo app -------------------------------------------------------------------------------


def _reachable(spec: AppSpec) -> set[str]:
    """Screens and dialogs reachable from the launch screen by the spec's go / dialog effects."""
    seen, queue = {spec.launch}, deque([spec.launch])
    while queue:
        owner = spec.screens.get(queue[0]) or spec.dialogs[queue[0]]
        queue.popleft()
        for w in owner.widgets:
            effects = [w.tap, w.long_tap, w.row_tap, w.row_long_tap]
            effects += [e for it in w.items for e in (it.tap, it.long_tap)]
            for e in effects:
                if e is not None and e.kind in (EffectKind.GO, EffectKind.DIALOG) and e.target not in seen:
                    seen.add(e.target)
                    queue.append(e.target)
    return seen


def test_demo_has_25_to_35_distinct_screens(demo_spec: AppSpec) -> None:
    assert 25 <= len(demo_spec.screens) + len(demo_spec.dialogs) <= 35


def test_every_demo_screen_is_reachable_from_launch(demo_spec: AppSpec) -> None:
    assert _reachable(demo_spec) == set(demo_spec.screens) | set(demo_spec.dialogs)


def test_demo_archive_opens_only_for_a_valid_email(demo: VirtualDevice) -> None:
    tap(demo, text="Archive")
    type_into(demo, "unlock_email", "me@", package=NOTES)
    tap(demo, text="Unlock")
    assert demo.snapshot().activity == f"{NOTES}.UnlockActivity"
    type_into(demo, "unlock_email", "me@example.com", package=NOTES)
    tap(demo, text="Unlock")
    assert demo.snapshot().activity == f"{NOTES}.ArchiveActivity"


def test_open_app_names_the_built_in_apps_when_the_name_is_unknown() -> None:
    with pytest.raises(SpecError, match="built-in apps: demo"):
        open_app("no-such-app")


def test_open_app_loads_a_yaml_path(tmp_path, demo_spec: AppSpec) -> None:
    from appatlas.devices.apps import builtin_apps

    path = tmp_path / "notes.yaml"
    path.write_bytes(builtin_apps()["demo"].read_bytes())
    assert open_app(path, screenshots=False).snapshot() == VirtualDevice(demo_spec, screenshots=False).snapshot()
