"""The virtual app the u2 tests drive (the built-in demo), and the serial it runs under."""

from __future__ import annotations

from functools import cache

from appatlas.devices.spec import AppSpec
from appatlas.devices.virtual import VirtualDevice, open_app

SERIAL = "virtual-1"
PACKAGE = "com.appatlas.notes"
WIDTH, HEIGHT = 1080, 2280


def rid(name: str) -> str:
    return f"{PACKAGE}:id/{name}"


@cache
def _demo_spec() -> AppSpec:
    return open_app("demo").spec  # parsed once: specs are frozen, devices are not


def demo(serial: str = SERIAL) -> VirtualDevice:
    return open_app(_demo_spec(), serial=serial)
