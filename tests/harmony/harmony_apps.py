"""The virtual app the HarmonyOS tests drive (the built-in demo) and a started stand-in for it."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

import pytest

from appatlas.devices.fakehdc import FakeHdcServer
from appatlas.devices.spec import AppSpec
from appatlas.devices.virtual import VirtualDevice, open_app

SERIAL = "virtual-1"
PACKAGE = "com.appatlas.notes"


@cache
def _demo_spec() -> AppSpec:
    return open_app("demo").spec  # parsed once: specs are frozen, devices are not


def demo(serial: str = SERIAL, *, screenshots: bool = False) -> VirtualDevice:
    return open_app(_demo_spec(), serial=serial, screenshots=screenshots)


def served(*devices: VirtualDevice) -> Iterator[FakeHdcServer]:
    """A started server for `devices`, its environment applied until the generator is closed."""
    with FakeHdcServer(list(devices)) as srv, pytest.MonkeyPatch.context() as mp:
        for key, value in srv.environ().items():
            mp.setenv(key, value)
        yield srv
