"""FakeAdbServer: the local adb server, run on an asyncio loop in a background thread."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from appatlas.devices.fakeadb._adbd import AdbDaemon
from appatlas.devices.fakeadb._phone import LAUNCHER, Crash, Faults, Phone, VirtualLike

log = logging.getLogger(__name__)
T = TypeVar("T")
_CALL_TIMEOUT = 10.0


class FakeAdbServer:
    """An adb server plus a uiautomator2 server per phone, in front of virtual devices.

    The real adbutils / uiautomator2 clients run against it unchanged:

        with FakeAdbServer([open_app("demo")]) as server:
            adb = adbutils.AdbClient(host=server.host, port=server.port)
            d = uiautomator2.connect(adb.device(server.serials[0]))

    `port=0` takes a free port. Fault injection (`drop`, `kill_ui_server`, `slow_dumps`,
    `empty_dumps`, `crash_app`) is safe to call from any thread.
    """

    def __init__(self, devices: Iterable[VirtualLike] | Mapping[str, VirtualLike], *, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        pairs = list(devices.items()) if isinstance(devices, Mapping) else [(d.serial, d) for d in devices]
        if not pairs:
            raise ValueError("FakeAdbServer needs at least one device, e.g. [open_app('demo')]")
        serials = [s for s, _ in pairs]
        if len(set(serials)) != len(serials):
            raise ValueError(f"serials must be unique, got {serials}; open each app with serial=...")
        if not 0 <= port < 65536:
            raise ValueError(f"port must be in 0..65535, got {port}")
        self.host = host
        self.port = port
        self._phones = {s: Phone(d, serial=s, transport_id=i + 1) for i, (s, d) in enumerate(pairs)}
        self._daemon = AdbDaemon(self._phones)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    # --- life cycle -----------------------------------------------------------------------------

    @property
    def serials(self) -> list[str]:
        return list(self._phones)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> FakeAdbServer:
        """Listen and serve in a background thread; returns once the port accepts connections."""
        if self.running:
            return self
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fakeadb", daemon=True)
        self._thread.start()
        try:
            self._server = asyncio.run_coroutine_threadsafe(self._open(), loop).result(_CALL_TIMEOUT)
        except BaseException:
            self._halt()
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("fake adb server on %s:%d serving %s", self.host, self.port, ", ".join(self.serials))
        return self

    async def _open(self) -> asyncio.Server:
        return await asyncio.start_server(self._daemon.handle, self.host, self.port, limit=64 * 1024)

    def stop(self) -> None:
        """Close every connection and the port, and end the thread."""
        if self._loop is None:
            return
        if self.running:
            try:
                asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(_CALL_TIMEOUT)
            except (TimeoutError, RuntimeError) as exc:
                log.warning("fake adb server did not close cleanly: %s", exc)
        self._halt()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for phone in self._phones.values():
            phone.stop_ui()
        for w in list(self._daemon.connections):
            w.transport.abort()
        # Aborted connections end their handlers; whatever still waits (a slow dump) is cancelled.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=0.2)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _halt(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(_CALL_TIMEOUT)
        if loop is not None and not loop.is_running():
            loop.close()
        self._loop, self._thread, self._server = None, None, None

    def __enter__(self) -> FakeAdbServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the devices ----------------------------------------------------------------------------

    def device(self, serial: str) -> VirtualLike:
        """The virtual device behind `serial` (touch it only while no client call is in flight)."""
        return self._phone(serial).device

    def _phone(self, serial: str) -> Phone:
        try:
            return self._phones[serial]
        except KeyError:
            raise KeyError(f"no device {serial!r} on this server; serials: {self.serials}") from None

    def _in_loop(self, fn: Callable[[], T]) -> T:
        if not self.running or self._loop is None:
            return fn()

        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(_CALL_TIMEOUT)

    # --- faults ---------------------------------------------------------------------------------

    def _set(self, target: object, **values: object) -> None:
        """Set attributes of a phone (or its faults) on the loop thread, between two requests."""
        def apply() -> None:
            for name, value in values.items():
                setattr(target, name, value)

        self._in_loop(apply)

    def drop(self, serial: str) -> None:
        """Pull the cable: the device leaves host:devices and all its streams close."""
        self._in_loop(self._phone(serial).drop)

    def reconnect(self, serial: str) -> None:
        """Plug it back in (its UI server stays dead until a client relaunches it)."""
        self._set(self._phone(serial), online=True)

    def kill_ui_server(self, serial: str, *, restartable: bool = True) -> None:
        """Kill the uiautomator2 server; with restartable=False every relaunch dies at once too."""
        phone = self._phone(serial)
        self._set(phone.faults, relaunch_fails=not restartable)
        self._in_loop(phone.stop_ui)

    def slow_dumps(self, serial: str, delay_ms: int, *, count: int | None = None) -> None:
        """Delay the next `count` hierarchy dumps (all of them when None) by `delay_ms`."""
        if delay_ms < 0 or (count is not None and count < 0):
            raise ValueError("delay_ms and count must be >= 0")
        self._set(self._phone(serial).faults, dump_delay_s=delay_ms / 1000, slow_dumps=count)

    def pace(self, serial: str, *, action_ms: int = 300, dump_ms: int = 150) -> None:
        """Make the phone as slow as a real one: every action takes `action_ms`, every dump `dump_ms`.

        The waits are asynchronous, so the other phones of the server go on meanwhile.
        """
        if action_ms < 0 or dump_ms < 0:
            raise ValueError("action_ms and dump_ms must be >= 0")
        self._set(self._phone(serial).faults, action_delay_s=action_ms / 1000, dump_delay_s=dump_ms / 1000,
                  slow_dumps=None)

    def empty_dumps(self, serial: str, count: int) -> None:
        """The next `count` hierarchy dumps answer "" (as a busy UI does)."""
        if count < 0:
            raise ValueError("count must be >= 0")
        self._set(self._phone(serial).faults, empty_dumps=count)

    def crash_app(self, serial: str, *, anr: bool = False) -> None:
        """Crash (or freeze, anr=True) the app in front: Android's "has stopped" dialog covers it."""
        phone = self._phone(serial)

        def crash() -> None:
            package = phone.device.current_app()[0]
            phone.crash = Crash(package if package != LAUNCHER else phone.package, anr)

        self._in_loop(crash)

    def crash_on_launch(self, serial: str, launches: int) -> None:
        """A crash loop: each of the next `launches` launches of the app crashes at once."""
        if launches < 0:
            raise ValueError("launches must be >= 0")
        self._set(self._phone(serial).faults, crashing_launches=launches)

    def clear_faults(self, serial: str) -> None:
        """Forget injected faults and any crash dialog."""
        self._set(self._phone(serial), faults=Faults(), crash=None)
