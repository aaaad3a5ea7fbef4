"""Faults on the wire become typed errors that name the device, or are survived as promised."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Iterator

import pytest
from u2_apps import PACKAGE, SERIAL, demo

from appatlas.devices.fakeadb import FakeAdbServer
from appatlas.devices.u2 import U2Device, connect, list_devices
from appatlas.devices.virtual import VirtualDevice
from appatlas.errors import AppCrashed, DeviceDisconnected, DeviceError, DeviceTimeout, UiServerDied
from appatlas.types import Action, ActionKind, Selector

U2_LOG = "appatlas.devices.u2"


@pytest.fixture
def no_adb_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tripwire: adbutils starts its bundled `adb` through subprocess.run; it must never get there."""
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"something tried to run {args[0]!r}")

    monkeypatch.setattr(subprocess, "run", forbidden)


@pytest.fixture
def impatient(server: FakeAdbServer) -> Iterator[U2Device]:
    with connect(SERIAL, adb_port=server.port, timeout=0.4) as d:
        yield d


def test_killed_ui_server_is_restarted_once_and_the_run_goes_on(server: FakeAdbServer, device: U2Device,
                                                                  twin: VirtualDevice,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    server.kill_ui_server(SERIAL)
    with caplog.at_level(logging.WARNING, logger=U2_LOG):
        screen = device.snapshot()
    assert device.restarts == 1
    assert "restarting it" in caplog.text
    assert screen.root == twin.snapshot().root


def test_ui_server_that_cannot_restart_is_ui_server_died(server: FakeAdbServer, device: U2Device) -> None:
    server.kill_ui_server(SERIAL, restartable=False)
    with pytest.raises(UiServerDied, match=SERIAL) as err:
        device.snapshot()
    assert err.value.serial == SERIAL and device.restarts == 1


def test_dropped_connection_is_device_disconnected_naming_the_serial(server: FakeAdbServer,
                                                                     device: U2Device) -> None:
    server.drop(SERIAL)
    with pytest.raises(DeviceDisconnected, match=f"{SERIAL} disconnected") as err:
        device.snapshot()
    assert err.value.serial == SERIAL


def test_action_on_a_dropped_device_is_device_disconnected(server: FakeAdbServer, device: U2Device) -> None:
    server.drop(SERIAL)
    with pytest.raises(DeviceDisconnected, match=SERIAL):
        device.perform(Action(ActionKind.BACK))


def test_replugged_device_works_again(server: FakeAdbServer, device: U2Device) -> None:
    server.drop(SERIAL)
    with pytest.raises(DeviceDisconnected):
        device.snapshot()
    server.reconnect(SERIAL)
    assert device.snapshot().package == PACKAGE


def test_empty_dumps_are_retried_and_logged(server: FakeAdbServer, device: U2Device, twin: VirtualDevice,
                                            caplog: pytest.LogCaptureFixture) -> None:
    server.empty_dumps(SERIAL, 2)
    with caplog.at_level(logging.WARNING, logger=U2_LOG):
        screen = device.snapshot()
    assert caplog.text.count("empty view hierarchy") == 2
    assert screen.root == twin.snapshot().root


def test_dumps_empty_every_try_give_a_device_error(server: FakeAdbServer, device: U2Device) -> None:
    server.empty_dumps(SERIAL, 3)
    with pytest.raises(DeviceError, match="empty view hierarchy 3 times"):
        device.snapshot()


def test_dump_slower_than_the_timeout_is_device_timeout(server: FakeAdbServer, impatient: U2Device) -> None:
    server.slow_dumps(SERIAL, 20_000, count=1)
    t0 = time.monotonic()
    with pytest.raises(DeviceTimeout, match=SERIAL) as err:
        impatient.snapshot()
    # The 0.4 s timeout, not the 20 s dump: 10 s is 25x the timeout, room for 2 loaded cores.
    assert time.monotonic() - t0 < 10.0
    assert err.value.serial == SERIAL


def test_after_a_timeout_the_next_call_answers(server: FakeAdbServer, impatient: U2Device) -> None:
    server.slow_dumps(SERIAL, 1500, count=1)
    with pytest.raises(DeviceTimeout):
        impatient.snapshot()
    assert impatient.snapshot().package == PACKAGE


def test_slow_dump_within_the_timeout_is_fine(server: FakeAdbServer, impatient: U2Device) -> None:
    server.slow_dumps(SERIAL, 100)
    assert impatient.snapshot().package == PACKAGE


def test_app_crash_is_app_crashed_naming_package_and_serial(server: FakeAdbServer, device: U2Device) -> None:
    server.crash_app(SERIAL)
    with pytest.raises(AppCrashed, match=f"{PACKAGE} crashed on {SERIAL}"):
        device.snapshot()


def test_anr_is_app_crashed_saying_not_responding(server: FakeAdbServer, device: U2Device) -> None:
    server.crash_app(SERIAL, anr=True)
    with pytest.raises(AppCrashed, match="not responding"):
        device.current_app()


def test_closing_the_crash_dialog_leaves_the_app(server: FakeAdbServer, device: U2Device) -> None:
    server.crash_app(SERIAL)
    device.perform(Action(ActionKind.TAP, target=Selector(text="Close app")))
    assert device.current_app()[0] == "com.android.launcher3"


def test_relaunch_after_a_crash_goes_on(server: FakeAdbServer, device: U2Device) -> None:
    server.crash_app(SERIAL)
    device.launch()
    assert device.snapshot().activity == f"{PACKAGE}.MainActivity"


def test_crash_caused_by_the_app_itself_is_app_crashed(device: U2Device) -> None:
    device.launch(f"{PACKAGE}/.DiagnosticsActivity")
    device.perform(Action(ActionKind.TAP, target=Selector(text="Export diagnostics")))
    with pytest.raises(AppCrashed, match=PACKAGE):
        device.snapshot()


def test_adb_server_gone_is_device_disconnected_without_starting_adb(server: FakeAdbServer,
                                                                     no_adb_binary: None) -> None:
    with connect(SERIAL, adb_port=server.port, timeout=60.0) as device:
        server.stop()
        t0 = time.monotonic()
        with pytest.raises(DeviceDisconnected, match="adb server"):
            device.snapshot()
    # Refused at once (about 0.1 s), not after waiting out the 60 s timeout: 15 s leaves room for
    # 2 loaded cores and still tells the two apart.
    assert time.monotonic() - t0 < 15.0


def test_connect_without_a_server_says_how_to_start_one(no_adb_binary: None) -> None:
    with FakeAdbServer([demo()]) as srv:
        port = srv.port
    with pytest.raises(DeviceDisconnected, match=f"no adb server answers at 127.0.0.1:{port}"):
        connect(SERIAL, adb_port=port)


def test_connect_to_an_unknown_serial_lists_the_attached_ones(server: FakeAdbServer) -> None:
    with pytest.raises(DeviceDisconnected, match=f"nope is absent.*{SERIAL}"):
        connect("nope", adb_port=server.port)


def test_connect_without_serial_among_several_asks_for_one() -> None:
    with FakeAdbServer([demo("a-1"), demo("b-2")]) as srv:
        with pytest.raises(DeviceDisconnected, match="several devices.*--device"):
            connect(adb_port=srv.port)


def test_connect_without_serial_takes_the_only_device(server: FakeAdbServer) -> None:
    with connect(adb_port=server.port) as d:
        assert d.serial == SERIAL


def test_list_devices_reports_serial_state_and_model(server: FakeAdbServer) -> None:
    [found] = list_devices(adb_port=server.port)
    assert (found.serial, found.state, found.model) == (SERIAL, "device", "appatlas_virtual_device")


def test_cleared_faults_no_longer_apply(server: FakeAdbServer, device: U2Device) -> None:
    server.empty_dumps(SERIAL, 5)
    server.crash_app(SERIAL)
    server.clear_faults(SERIAL)
    assert device.snapshot().package == PACKAGE
