"""The local hdc + UI test daemon stand-in on a free port, with the real hmdriver2 client pointed at it.

hmdriver2 runs `hdc` through a shell and reads HDC_SERVER_HOST/PORT from the environment, so
each fixture puts the stand-in's `hdc` first on PATH and the server's address in the
environment (undone after the test).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harmony_apps import PACKAGE, SERIAL, demo, served

from appatlas.devices.fakehdc import FakeHdcServer
from appatlas.devices.harmony import HarmonyDevice, connect
from appatlas.devices.virtual import VirtualDevice


@pytest.fixture
def server() -> Iterator[FakeHdcServer]:
    yield from served(demo())


@pytest.fixture
def device(server: FakeHdcServer) -> Iterator[HarmonyDevice]:
    with connect(SERIAL, app=PACKAGE, timeout=3.0, screenshots=False) as d:
        yield d


@pytest.fixture
def vdev(server: FakeHdcServer) -> VirtualDevice:
    """The virtual device behind the server (touch it only between client calls)."""
    dev = server.device(SERIAL)
    assert isinstance(dev, VirtualDevice)
    return dev
