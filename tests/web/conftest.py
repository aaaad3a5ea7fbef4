"""Fixtures for the web backend: the built-in web demo app on 127.0.0.1 and devices on the system Chromium.

Skipped, with the reason, only when Chromium or Playwright is not installed; everything else is real:
Playwright drives the Debian chromium against the demo server the project ships.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from appatlas.devices.apps.webdemo import WebDemoServer


def _chromium_or_skip() -> None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip("Playwright is not installed (pip install -e '.[test]' installs it)")
    from appatlas.devices._web_host import find_chromium
    from appatlas.errors import DeviceError

    try:
        find_chromium()
    except DeviceError as exc:
        pytest.skip(f"no Chromium on this machine: {exc}")


@pytest.fixture(scope="session")
def webapp() -> Iterator[WebDemoServer]:
    with WebDemoServer() as server:
        yield server


@pytest.fixture(scope="session")
def _browser(webapp: WebDemoServer):
    """One device held for the whole session, so the browser starts once (each test gets its own context)."""
    _chromium_or_skip()
    from appatlas.devices.web import connect

    keeper = connect(webapp.url, serial="web-keeper", screenshots=False)
    yield keeper
    keeper.close()


@pytest.fixture
def web(webapp: WebDemoServer, _browser):
    """A fresh browser context on the demo's notes list: its own session, so its own app data."""
    from appatlas.devices.web import connect

    devices = []

    def make(path: str = "", **kw):
        dev = connect(webapp.url + path.lstrip("/"), **{"screenshots": False, **kw})
        devices.append(dev)
        return dev

    yield make
    for dev in devices:
        dev.close()
