"""The HarmonyOS backend through the real hmdriver2 client: screens as the virtual device draws them, actions
landing where they would on the device, ArkUI component types and ids."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harmony_apps import PACKAGE, SERIAL, demo, served

from appatlas.devices.base import selector_for
from appatlas.devices.fakehdc._dump import arkui_id, arkui_type
from appatlas.devices.harmony import HarmonyDevice, connect
from appatlas.devices.select import open_device, platform_of
from appatlas.devices.virtual import VirtualDevice
from appatlas.errors import SelectorNotFound
from appatlas.types import Action, ActionKind, Bounds, Screen, Selector, Widget


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[HarmonyDevice, VirtualDevice]]:
    """One stand-in and one connection for the module (connecting costs ~1 s: hmdriver2 sleeps 0.5 s in it)."""
    vdev = demo()
    for _ in served(vdev):
        with connect(SERIAL, app=PACKAGE, timeout=3.0, screenshots=False) as d:
            yield d, vdev


@pytest.fixture
def device(shared: tuple[HarmonyDevice, VirtualDevice]) -> HarmonyDevice:
    shared[0].launch()  # each test starts on the app's first screen
    return shared[0]


@pytest.fixture
def vdev(shared: tuple[HarmonyDevice, VirtualDevice]) -> VirtualDevice:
    return shared[1]


def _row(screen: Screen, title: str) -> Widget:
    return next(w for w in screen.widgets() if w.text == title)


def test_the_snapshot_is_the_virtual_screen_in_arkui_terms(device: HarmonyDevice, vdev: VirtualDevice) -> None:
    got, want = device.snapshot(), vdev.snapshot()
    assert (got.package, got.activity) == vdev.current_app() == (PACKAGE, f"{PACKAGE}.MainActivity")
    pairs = list(zip(got.widgets(), want.widgets(), strict=True))
    assert len(pairs) > 30
    for g, w in pairs[1:]:  # [0] is the display
        assert (g.bounds, g.text, g.content_desc, g.hint) == (w.bounds, w.text, w.content_desc, w.hint)
        assert (g.clickable, g.long_clickable, g.scrollable, g.checkable, g.checked, g.enabled, g.focused) == \
            (w.clickable, w.long_clickable, w.scrollable, w.checkable, w.checked, w.enabled, w.focused)
        assert g.resource_id == arkui_id(w.resource_id) and ":id/" not in g.resource_id
        assert g.class_name in (arkui_type(w.class_name), "ListItem") and "android" not in g.class_name
        assert g.package == w.package
    assert {w.class_name for w in got.widgets()} >= {"Text", "Button", "List", "ListItem"}


def test_a_multi_field_selector_with_an_index_opens_that_row(device: HarmonyDevice, vdev: VirtualDevice) -> None:
    # hmdriver2's own d(id=…, type=…) keeps only the last field; the backend chains every one
    screen = device.snapshot()
    third = _row(screen, "Book list")
    same = [w for w in screen.widgets() if w.resource_id == third.resource_id and w.class_name == "Text"]
    assert third.resource_id and same.index(third) == 2
    device.perform(Action(ActionKind.TAP, target=Selector(resource_id=third.resource_id, class_name="Text",
                                                          index=2)))
    assert vdev.location == ("note_detail", "")
    assert any("Dispossessed" in w.text for w in device.snapshot().widgets())


def test_typing_replaces_the_fields_text_and_back_leaves(device: HarmonyDevice, vdev: VirtualDevice) -> None:
    device.perform(Action(ActionKind.TAP, target=selector_for(_row(device.snapshot(), "Groceries"),
                                                              device.snapshot())))
    screen = device.snapshot()
    edit = next(w for w in screen.widgets() if w.content_desc == "Edit")
    device.perform(Action(ActionKind.TAP, target=selector_for(edit, screen)))
    screen = device.snapshot()
    field = next(w for w in screen.widgets() if w.resource_id == "edit_title")
    assert field.class_name == "TextInput" and field.editable and field.text == "Groceries"
    device.perform(Action(ActionKind.TYPE, target=selector_for(field, screen), text="Weekly shop"))
    assert [w.text for w in device.snapshot().widgets() if w.resource_id == "edit_title"] == ["Weekly shop"]
    device.perform(Action(ActionKind.BACK))
    assert vdev.location[0] != "edit_note"


def test_the_recorded_bounds_are_the_last_resort(device: HarmonyDevice, vdev: VirtualDevice) -> None:
    row = _row(device.snapshot(), "Trip to Lisbon")
    device.perform(Action(ActionKind.TAP, target=Selector(resource_id="renamed_in_v2", bounds=row.bounds)))
    assert vdev.location == ("note_detail", "")
    with pytest.raises(SelectorNotFound) as err:
        device.perform(Action(ActionKind.TAP, target=Selector(resource_id="renamed_in_v2")))
    assert err.value.serial == SERIAL


def test_scroll_long_tap_stop_and_launch(device: HarmonyDevice, vdev: VirtualDevice) -> None:
    before = [w.text for w in device.snapshot().widgets() if w.resource_id == "notes_title"]
    device.perform(Action(ActionKind.SCROLL, direction="down"))
    after = [w.text for w in device.snapshot().widgets() if w.resource_id == "notes_title"]
    assert after != before and "Old ideas" in after
    device.perform(Action(ActionKind.SCROLL, direction="up"))
    device.perform(Action(ActionKind.LONG_TAP, target=Selector(text="Groceries", class_name="Text")))
    assert vdev.location == ("notes", "note_actions")
    device.stop_app()
    assert device.current_app()[0] != PACKAGE
    device.perform(Action(ActionKind.LAUNCH, app=PACKAGE))
    assert device.current_app() == (PACKAGE, f"{PACKAGE}.MainActivity") and vdev.location == ("notes", "")


def test_screenshots_are_the_devices_jpeg() -> None:
    from io import BytesIO

    import numpy as np
    from PIL import Image

    def rgb(data: bytes) -> np.ndarray:
        return np.asarray(Image.open(BytesIO(data)).convert("RGB"), dtype=np.int16)

    vdev = demo(screenshots=True)
    for _ in served(vdev):
        with connect(SERIAL, app=PACKAGE, timeout=3.0, screenshots=True) as d:
            shot = d.snapshot().screenshot
            assert shot is not None and shot[:3] == b"\xff\xd8\xff"  # JPEG, as snapshot_display writes it
            want = rgb(vdev.snapshot().screenshot or b"")
            assert np.abs(rgb(shot) - want).mean() < 3  # the screen itself, through JPEG
            d.perform(Action(ActionKind.TAP, target=Selector(text="Groceries")))
            assert np.abs(rgb(d.snapshot().screenshot or b"") - want).mean() > 5  # and it follows the screen


def test_device_arguments_pick_the_platform(shared: tuple[HarmonyDevice, VirtualDevice]) -> None:
    assert [platform_of(a) for a in ("emulator-5554", "10.0.0.2:5555", "harmony:FMR0223", "web:http://x")] == \
        ["android", "android", "harmony", "web"]
    d = open_device("harmony:", app=PACKAGE, timeout=3.0, screenshots=False)  # the only device attached
    try:
        assert isinstance(d, HarmonyDevice) and d.serial == SERIAL and d.platform == "harmony"
        assert (d.info().width, d.info().height) == (1080, 2280)
        assert d.snapshot().root.bounds == Bounds(0, 0, 1080, 2280)
    finally:
        d.close()
    shared[0]._reconnect()  # each connect restarts the daemon (as hmdriver2 does): the shared one reconnects
