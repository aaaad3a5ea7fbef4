"""One Chromium per process for every web device, driven by Playwright's async API on a thread of its own.

Why a thread with an event loop and not Playwright's sync API: a page that opens `alert()` or
`confirm()` blocks the click that opened it until the dialog is answered, and the answer is the
next *action* (OK or Cancel, chosen by the crawler or the agent after a snapshot). With the async
API the click stays a pending task while the device returns a screen that shows the dialog; the
sync API would hang in the click. The thread also lets devices be used from any thread (a campaign
runs one per device) and puts a hard deadline on every call.

Each device is a browser context (its own cookies and storage, like a phone's app data) in the one
browser, which starts with the first device and stops with the last.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from appatlas.errors import DeviceError, DeviceTimeout

__all__ = ["BrowserHost", "find_chromium"]

T = TypeVar("T")
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = ("install Debian's chromium (`apt-get install chromium`) or point APPATLAS_CHROMIUM at a Chromium or "
                "Chrome binary; appatlas never downloads a browser (no `playwright install`)")


def find_chromium(executable: str | None = None) -> str:
    """The Chromium binary to drive: `executable`, $APPATLAS_CHROMIUM, or one on PATH."""
    for candidate in (executable, os.environ.get("APPATLAS_CHROMIUM"), *CANDIDATES):
        if not candidate:
            continue
        path = candidate if os.path.isfile(candidate) and os.access(candidate, os.X_OK) else shutil.which(candidate)
        if path:
            return path
        if candidate in (executable, os.environ.get("APPATLAS_CHROMIUM")):
            raise DeviceError(f"no Chromium at {candidate!r}; {INSTALL_HINT}")
    raise DeviceError(f"no Chromium found on this machine; {INSTALL_HINT}")


class BrowserHost:
    """The event-loop thread, Playwright and the browser; shared and reference-counted (`acquire`)."""

    _lock = threading.Lock()
    _shared: dict[tuple[str, bool], BrowserHost] = {}

    def __init__(self, executable: str, headless: bool) -> None:
        self.executable, self.headless = executable, headless
        self.users = 0
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="appatlas-web", daemon=True)
        self._thread.start()
        self.playwright: Any = None
        self.browser: Any = None
        self.version = ""

    @classmethod
    def acquire(cls, executable: str | None = None, *, headless: bool = True, timeout: float = 30.0) -> BrowserHost:
        try:
            from playwright.async_api import async_playwright
        except ImportError as exc:
            raise DeviceError("the web backend needs Playwright: pip install 'appatlas[web]' (or pip install "
                              f"playwright); the browser itself is the system's Chromium ({INSTALL_HINT})") from exc
        path = find_chromium(executable)
        with cls._lock:
            host = cls._shared.get((path, headless))
            if host is None or host.browser is None or not host.browser.is_connected():
                host = cls(path, headless)

                async def start() -> None:
                    host.playwright = await async_playwright().start()
                    # --no-sandbox: CI and containers run as root, where Chromium's sandbox refuses to start.
                    host.browser = await host.playwright.chromium.launch(
                        executable_path=path, headless=headless,
                        args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
                    host.version = host.browser.version

                try:
                    host.run(start(), timeout=timeout)
                except BaseException as exc:
                    host._stop()
                    if isinstance(exc, DeviceError):
                        raise
                    raise DeviceError(f"Chromium at {path} did not start ({type(exc).__name__}: {str(exc)[:300]}); "
                                      f"{INSTALL_HINT}") from exc
                cls._shared[(path, headless)] = host
            host.users += 1
            return host

    def release(self) -> None:
        with self._lock:
            self.users -= 1
            if self.users > 0:
                return
            if self._shared.get((self.executable, self.headless)) is self:
                del self._shared[(self.executable, self.headless)]
        self._stop()

    def _stop(self) -> None:
        async def stop() -> None:
            if self.browser is not None:
                await self.browser.close()
            if self.playwright is not None:
                await self.playwright.stop()

        try:
            self.run(stop(), timeout=10.0)
        except Exception:  # noqa: BLE001 - closing a browser that is already gone is not an error
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)

    def run(self, coro: Coroutine[Any, Any, T], *, timeout: float) -> T:
        """Run `coro` on the browser's loop and wait for it, at most `timeout` seconds (then DeviceTimeout)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("a web device was called from its own event loop")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise DeviceTimeout(f"the browser did not answer within {timeout:g} s; the page may be busy: retry, "
                                "or connect with a longer timeout") from None
