"""The stock uiautomator2 client, unchanged, drives a virtual app through the local server."""

from __future__ import annotations

import hashlib

import adbutils
import uiautomator2 as u2
from u2_apps import HEIGHT, PACKAGE, SERIAL, WIDTH, rid

from appatlas.devices.virtual import VirtualDevice
from appatlas.hierarchy import parse_u2_xml, to_u2_xml


def test_connect_installs_the_bundled_u2_jar(u2d: u2.Device, adb: adbutils.AdbClient) -> None:
    from uiautomator2.utils import with_package_resource

    with with_package_resource("assets/u2.jar") as jar:
        want = hashlib.md5(jar.read_bytes()).hexdigest()
    assert want in adb.device(SERIAL).shell(["toybox", "md5sum", "/data/local/tmp/u2.jar"])


def test_dump_hierarchy_is_the_virtual_screen(u2d: u2.Device, vdev: VirtualDevice) -> None:
    assert parse_u2_xml(u2d.dump_hierarchy()) == parse_u2_xml(to_u2_xml(vdev.snapshot().root))


def test_app_current_is_the_virtual_foreground(u2d: u2.Device, vdev: VirtualDevice) -> None:
    cur = u2d.app_current()
    assert (cur["package"], cur["activity"]) == vdev.current_app()


def test_device_info_has_the_screen_size(u2d: u2.Device) -> None:
    info = u2d.info
    assert (info["displayWidth"], info["displayHeight"], info["currentPackageName"]) == (WIDTH, HEIGHT, PACKAGE)


def test_click_by_selector_opens_the_next_screen(u2d: u2.Device) -> None:
    u2d(text="Groceries").click()
    assert u2d.app_current()["activity"] == f"{PACKAGE}.NoteActivity"


def test_second_instance_of_a_repeated_id_is_the_second_row(u2d: u2.Device) -> None:
    first, second = (u2d(resourceId=rid("notes_row"), instance=i).info for i in (0, 1))
    assert second["bounds"]["top"] >= first["bounds"]["bottom"]
    assert u2d(resourceId=rid("notes_row")).count > 1


def test_set_text_types_into_the_field(u2d: u2.Device) -> None:
    u2d(description="Search").click()
    u2d(resourceId=rid("search_query")).set_text("Groceries")
    assert u2d(resourceId=rid("search_query")).get_text() == "Groceries"


def test_send_keys_pastes_into_the_focused_field(u2d: u2.Device) -> None:
    u2d(description="Search").click()
    u2d(resourceId=rid("search_query")).click()
    u2d.send_keys("Lisbon")
    assert u2d(resourceId=rid("search_query")).get_text() == "Lisbon"


def test_press_back_returns_to_the_previous_screen(u2d: u2.Device) -> None:
    u2d(text="Groceries").click()
    u2d.press("back")
    assert u2d.app_current()["activity"] == f"{PACKAGE}.MainActivity"


def test_app_stop_then_start_relaunches(u2d: u2.Device) -> None:
    u2d.app_stop(PACKAGE)
    assert u2d.app_current()["package"] != PACKAGE
    u2d.app_start(PACKAGE)
    assert u2d.app_current()["package"] == PACKAGE


def test_missing_selector_raises_the_clients_not_found_error(u2d: u2.Device) -> None:
    import pytest

    with pytest.raises(u2.UiObjectNotFoundError):
        u2d(text="No such widget").click(timeout=0.1)


def test_screenshot_is_an_image_of_the_screen(u2d: u2.Device, vdev: VirtualDevice) -> None:
    from u2_apps import demo, pixel_distance, rid

    from appatlas.types import Action, ActionKind, Selector

    png = vdev.snapshot().screenshot
    elsewhere = demo("elsewhere")
    elsewhere.perform(Action(ActionKind.TAP, target=Selector(resource_id=rid("action_settings"))))
    shot = u2d.screenshot()
    # The client's image is the screen's pixels (JPEG noise measured 0.5 of 255) and not another
    # screen's (the settings screen differs by 14): size alone would pass a blank image.
    assert png is not None and pixel_distance(shot, png) < 3
    assert pixel_distance(shot, elsewhere.snapshot().screenshot) > 3 * pixel_distance(shot, png) + 5
