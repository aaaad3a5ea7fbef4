"""The local adb + uiautomator2 server on a free port, the real clients pointed at it, and twins.

A *twin* is a second virtual device running the same app, driven directly: whatever is done
through the server is done to the twin too, and the two must end on the same screen.
"""

from __future__ import annotations

from collections.abc import Iterator

import adbutils
import pytest
import uiautomator2 as u2
from u2_apps import PACKAGE, SERIAL, demo

from appatlas.devices.fakeadb import FakeAdbServer
from appatlas.devices.u2 import U2Device, connect
from appatlas.devices.virtual import VirtualDevice


@pytest.fixture
def server() -> Iterator[FakeAdbServer]:
    with FakeAdbServer([demo()]) as srv:
        yield srv


@pytest.fixture
def adb(server: FakeAdbServer) -> adbutils.AdbClient:
    return adbutils.AdbClient(host=server.host, port=server.port)


@pytest.fixture
def u2d(server: FakeAdbServer, adb: adbutils.AdbClient) -> Iterator[u2.Device]:
    """The stock uiautomator2 client, unchanged."""
    d = u2.connect(adb.device(SERIAL))
    yield d
    d.stop_uiautomator(wait=False)


@pytest.fixture
def device(server: FakeAdbServer) -> Iterator[U2Device]:
    """appatlas' backend on the same server (without screenshots: JPEG to PNG costs ~50 ms a call)."""
    with connect(SERIAL, adb_port=server.port, timeout=3.0, app=PACKAGE, screenshots=False) as d:
        yield d


@pytest.fixture
def twin() -> VirtualDevice:
    return demo("twin")


@pytest.fixture
def vdev(server: FakeAdbServer) -> VirtualDevice:
    """The virtual device behind the server (touch it only between client calls)."""
    dev = server.device(SERIAL)
    assert isinstance(dev, VirtualDevice)
    return dev
