"""Faults on the wire become the typed errors of appatlas.errors that name the device, as on Android."""

from __future__ import annotations

import logging

import pytest
from harmony_apps import PACKAGE, SERIAL

from appatlas.devices.fakehdc import FakeHdcServer
from appatlas.devices.harmony import HarmonyDevice, connect, list_devices
from appatlas.devices.virtual import VirtualDevice
from appatlas.errors import DeviceDisconnected, DeviceError, DeviceTimeout, UiServerDied
from appatlas.types import Action, ActionKind, Selector

TAP = Action(ActionKind.TAP, target=Selector(text="Groceries"))


def test_a_device_that_leaves_is_disconnected_and_comes_back(server: FakeHdcServer, device: HarmonyDevice) -> None:
    server.drop(SERIAL)
    with pytest.raises(DeviceDisconnected) as err:
        device.perform(TAP)  # an RPC call: the forwarded stream closes
    assert err.value.serial == SERIAL and "hdc list targets" in str(err.value)
    with pytest.raises(DeviceDisconnected):
        device.snapshot()  # an hdc call: `[Fail]Device not founded or connected`
    assert list_devices() == []
    server.reconnect(SERIAL)
    with connect(SERIAL, app=PACKAGE, timeout=3.0, screenshots=False) as again:
        again.perform(TAP)
        assert again.current_app()[1].endswith("NoteActivity")


def test_a_killed_daemon_is_restarted_once_and_the_call_goes_through(
        server: FakeHdcServer, device: HarmonyDevice, vdev: VirtualDevice, caplog: pytest.LogCaptureFixture) -> None:
    server.kill_agent(SERIAL)
    assert not server.agent_running(SERIAL)
    with caplog.at_level(logging.WARNING, logger="appatlas.devices.harmony"):
        device.perform(TAP)
    assert device.restarts == 1 and vdev.location == ("note_detail", "")
    assert any("restarting" in r.getMessage() for r in caplog.records)
    device.perform(Action(ActionKind.BACK))
    assert device.restarts == 1 and vdev.location == ("notes", "")


def test_a_daemon_that_cannot_start_is_ui_server_died(server: FakeHdcServer, device: HarmonyDevice) -> None:
    server.kill_agent(SERIAL, restartable=False)
    with pytest.raises(UiServerDied) as err:
        device.perform(TAP)
    assert err.value.serial == SERIAL and "reconnect" in str(err.value)


def test_a_slow_layout_dump_is_a_timeout_and_the_next_one_works(server: FakeHdcServer) -> None:
    with connect(SERIAL, app=PACKAGE, timeout=0.8, screenshots=False) as d:
        server.slow_dumps(SERIAL, 2500, count=1)
        with pytest.raises(DeviceTimeout) as err:
            d.snapshot()
        assert err.value.serial == SERIAL
        assert d.snapshot().activity.endswith("MainActivity")


def test_no_hdc_server_and_no_hdc_command_are_disconnected(server: FakeHdcServer, device: HarmonyDevice,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    server.stop()
    with pytest.raises(DeviceDisconnected) as err:
        device.snapshot()
    assert "no hdc server" in str(err.value)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(DeviceDisconnected) as err:
        list_devices()
    assert "PATH" in str(err.value)


def test_unknown_or_unsafe_serials_are_refused_before_any_device_call(server: FakeHdcServer) -> None:
    with pytest.raises(DeviceDisconnected) as err:
        connect("FMR0223C13000649", timeout=3.0)
    assert SERIAL in str(err.value)  # says what is attached
    with pytest.raises(DeviceError) as err:
        connect("x; rm -rf ~", timeout=3.0)
    assert "not a device serial" in str(err.value)
