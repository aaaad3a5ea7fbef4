"""appatlas' uiautomator2 backend ends where the virtual device, driven directly, ends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from u2_apps import HEIGHT, PACKAGE, SERIAL, WIDTH, rid

from appatlas.devices.base import Device, selector_for
from appatlas.devices.fakeadb import FakeAdbServer
from appatlas.devices.u2 import U2Device, connect
from appatlas.devices.virtual import VirtualDevice
from appatlas.errors import AppCrashed, DeviceError, SelectorNotFound
from appatlas.types import Action, ActionKind, Screen, Selector, Widget


def same_screen(device: U2Device, twin: VirtualDevice) -> None:
    got, want = device.snapshot(), twin.snapshot()
    assert (got.package, got.activity, got.width, got.height) == (want.package, want.activity, want.width,
                                                                   want.height)
    assert got.root == want.root


def find(screen: Screen, **fields: str) -> Widget:
    return next(w for w in screen.widgets() if all(getattr(w, k) == v for k, v in fields.items()))


def tap(screen: Screen, **fields: str) -> Action:
    return Action(ActionKind.TAP, target=selector_for(find(screen, **fields), screen))


def both(device: U2Device, twin: VirtualDevice, action: Action) -> None:
    device.perform(action)
    twin.perform(action)


def test_is_a_device(device: U2Device) -> None:
    assert isinstance(device, Device)


def test_snapshot_without_screenshots_has_none(device: U2Device) -> None:
    assert device.snapshot().screenshot is None


def test_snapshot_equals_the_virtual_screen(device: U2Device, twin: VirtualDevice) -> None:
    same_screen(device, twin)


def test_snapshot_carries_the_phones_jpeg_as_large_as_the_devices(server: FakeAdbServer, twin: VirtualDevice) -> None:
    from u2_apps import pixel_distance

    with connect(SERIAL, adb_port=server.port, timeout=3.0) as device:
        got = device.snapshot().screenshot
        device.perform(Action(ActionKind.TAP, target=Selector(resource_id=rid("action_settings"))))
        settings = device.snapshot().screenshot
    want = twin.snapshot().screenshot
    # Kept as the phone encoded it (JPEG): re-encoding every screenshot would cost ~40 ms.
    assert got is not None and want is not None and settings is not None and got.startswith(b"\xff\xd8\xff")
    # The same pixels as the screen (JPEG noise is about 0.5 of 255), not another screen's (about 14).
    assert pixel_distance(got, want) < 3 and pixel_distance(settings, want) > 3 * pixel_distance(got, want) + 5


def test_current_app_is_package_and_activity(device: U2Device) -> None:
    assert device.current_app() == (PACKAGE, f"{PACKAGE}.MainActivity")


def test_info_reports_serial_size_and_sdk(device: U2Device) -> None:
    info = device.info()
    assert (info.serial, info.width, info.height, info.sdk) == (SERIAL, WIDTH, HEIGHT, 34)


def test_tap_by_selector_matches_direct_driving(device: U2Device, twin: VirtualDevice) -> None:
    both(device, twin, tap(twin.snapshot(), content_desc="Search"))
    same_screen(device, twin)
    assert device.current_app()[1] == f"{PACKAGE}.SearchActivity"


def test_tap_on_the_second_of_equal_rows_opens_that_row(device: U2Device, twin: VirtualDevice) -> None:
    screen = twin.snapshot()
    second = [w for w in screen.widgets() if w.resource_id == rid("notes_row")][1]
    both(device, twin, Action(ActionKind.TAP, target=selector_for(second, screen)))
    same_screen(device, twin)
    assert "Trip to Lisbon" in device.snapshot().texts


def test_tap_by_point_when_only_bounds_are_known(device: U2Device, twin: VirtualDevice) -> None:
    icon = find(twin.snapshot(), content_desc="Search")
    both(device, twin, Action(ActionKind.TAP, target=Selector(bounds=icon.bounds)))
    same_screen(device, twin)
    assert device.current_app()[1] == f"{PACKAGE}.SearchActivity"


def test_stale_selector_falls_back_to_its_bounds(device: U2Device, twin: VirtualDevice) -> None:
    icon = find(twin.snapshot(), content_desc="Search")
    stale = Selector(resource_id=rid("renamed"), class_name=icon.class_name, bounds=icon.bounds)
    device.perform(Action(ActionKind.TAP, target=stale))
    assert device.current_app()[1] == f"{PACKAGE}.SearchActivity"


def test_selector_without_match_or_bounds_is_selector_not_found(device: U2Device) -> None:
    with pytest.raises(SelectorNotFound, match=SERIAL):
        device.perform(Action(ActionKind.TAP, target=Selector(text="Nowhere")))


def test_long_tap_matches_direct_driving(device: U2Device, twin: VirtualDevice) -> None:
    screen = twin.snapshot()
    row = next(w for w in screen.widgets() if w.resource_id == rid("notes_row"))
    both(device, twin, Action(ActionKind.LONG_TAP, target=selector_for(row, screen)))
    same_screen(device, twin)
    assert device.snapshot().root != screen.root  # the row's actions dialog opened


def test_type_matches_direct_driving(device: U2Device, twin: VirtualDevice) -> None:
    both(device, twin, tap(twin.snapshot(), content_desc="Search"))
    screen = twin.snapshot()
    both(device, twin, Action(ActionKind.TYPE, target=selector_for(find(screen, resource_id=rid("search_query")),
                                                                   screen), text="Grocéries"))
    same_screen(device, twin)
    assert "Grocéries" in device.snapshot().texts


def test_type_by_point_taps_the_field_then_pastes(device: U2Device, twin: VirtualDevice) -> None:
    both(device, twin, tap(twin.snapshot(), content_desc="Search"))
    field = find(twin.snapshot(), resource_id=rid("search_query"))
    device.perform(Action(ActionKind.TYPE, target=Selector(bounds=field.bounds), text="Lisbon"))
    twin.tap(*field.bounds.center)  # what a finger and a keyboard do
    twin.type_text("Lisbon")
    same_screen(device, twin)


def test_back_matches_direct_driving(device: U2Device, twin: VirtualDevice) -> None:
    both(device, twin, tap(twin.snapshot(), text="Groceries"))
    both(device, twin, Action(ActionKind.BACK))
    same_screen(device, twin)


def test_scroll_down_matches_direct_driving(device: U2Device, twin: VirtualDevice) -> None:
    both(device, twin, Action(ActionKind.SCROLL, direction="down"))
    same_screen(device, twin)
    assert "Groceries" not in device.snapshot().texts


def test_stop_then_launch_matches_direct_driving(device: U2Device, twin: VirtualDevice) -> None:
    device.stop_app()
    twin.stop_app()
    same_screen(device, twin)
    both(device, twin, Action(ActionKind.LAUNCH, app=PACKAGE))
    same_screen(device, twin)


def test_launch_of_an_activity_opens_that_screen(device: U2Device) -> None:
    device.launch(f"{PACKAGE}/.SearchActivity")
    assert device.current_app() == (PACKAGE, f"{PACKAGE}.SearchActivity")


def test_launch_of_a_missing_app_says_it_is_not_installed(device: U2Device) -> None:
    with pytest.raises(DeviceError, match="com.example.missing.*installed"):
        device.launch("com.example.missing")


def test_tap_by_point_on_a_plain_label_stays_on_the_screen(device: U2Device, twin: VirtualDevice) -> None:
    title = find(twin.snapshot(), text="Atlas Notes")
    both(device, twin, Action(ActionKind.TAP, target=Selector(bounds=title.bounds)))
    same_screen(device, twin)
    assert device.current_app()[1] == f"{PACKAGE}.MainActivity"


def _step(screen: Screen, data: st.DataObject) -> Action:
    live = [w for w in screen.widgets() if w.clickable and w.enabled]
    fields = [w for w in screen.widgets() if w.editable]
    kinds = ["back", "scroll"] + (["tap"] * 4 if live else []) + (["type"] if fields else [])
    # Draw plain integers and index into what the screen offers: the screen depends on state kept
    # between examples, and hypothesis needs the *drawn data* to be the same when it replays one.
    kind = kinds[data.draw(st.integers(0, 1_000)) % len(kinds)]
    if kind == "back":
        return Action(ActionKind.BACK)
    if kind == "scroll":
        return Action(ActionKind.SCROLL, direction=data.draw(st.sampled_from(["up", "down"])))
    if kind == "type":
        w = fields[data.draw(st.integers(0, 1_000)) % len(fields)]
        return Action(ActionKind.TYPE, target=selector_for(w, screen), text=data.draw(st.text("abé@.1 ", max_size=8)))
    w = live[data.draw(st.integers(0, 1_000)) % len(live)]
    return Action(ActionKind.TAP, target=selector_for(w, screen))


# The phone and its twin keep state between examples (one server for all), so a replayed example
# would not see the same screens: derandomized, with no example database, every run is the same walk.
# A walk is up to ~1 s of requests through the server: 30 s per example fits a loaded machine.
@settings(max_examples=12, deadline=timedelta(seconds=30), derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_walk_ends_on_the_same_screen(device: U2Device, twin: VirtualDevice, data: st.DataObject) -> None:
    # one server for all examples: each starts from a fresh launch on both sides
    device.launch()
    twin.launch()
    for _ in range(data.draw(st.integers(1, 8))):
        both(device, twin, _step(twin.snapshot(), data))
        if twin.crashed:
            with pytest.raises(AppCrashed):
                device.snapshot()
            return
        same_screen(device, twin)
