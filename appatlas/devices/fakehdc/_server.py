"""FakeHdcServer: the stand-in hdc server and UI test daemons, on an asyncio loop in a background thread."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

from appatlas.devices.fakeadb._phone import VirtualLike
from appatlas.devices.fakeadb._wire import close, tune
from appatlas.devices.fakehdc import _agent
from appatlas.devices.fakehdc._device import AGENT_PORT, Faults, HarmonyDevice
from appatlas.devices.fakehdc._hdcd import Hdcd

log = logging.getLogger(__name__)
T = TypeVar("T")
_CALL_TIMEOUT = 10.0
_CLIENT = Path(__file__).with_name("_client.py")
_CLIENT_SH = Path(__file__).with_name("hdc.sh")


def _has_dev_tcp(bash: str) -> bool:
    """Whether this bash opens TCP connections through /dev/tcp (some builds leave it out)."""
    import socket
    import subprocess

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        try:
            done = subprocess.run([bash, "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"], capture_output=True,
                                  timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0


class FakeHdcServer:
    """An hdc server plus a UI test daemon per device, in front of virtual devices.

    hmdriver2 runs the `hdc` command for every device call; `bin_dir` holds the stand-in's one
    and `environ()` the variables that make hmdriver2 use it (PATH, HDC_SERVER_HOST/PORT):

        with FakeHdcServer([open_app("demo")]) as server:
            os.environ.update(server.environ())
            d = hmdriver2.driver.Driver(server.serials[0])

    `port=0` takes a free port. Forwards (`hdc fport`) listen on 127.0.0.1. Fault injection
    (`drop`, `reconnect`, `kill_agent`, `slow_dumps`) is safe to call from any thread.
    """

    def __init__(self, devices: Iterable[VirtualLike] | Mapping[str, VirtualLike], *, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        pairs = list(devices.items()) if isinstance(devices, Mapping) else [(d.serial, d) for d in devices]
        if not pairs:
            raise ValueError("FakeHdcServer needs at least one device, e.g. [open_app('demo')]")
        serials = [s for s, _ in pairs]
        if len(set(serials)) != len(serials):
            raise ValueError(f"serials must be unique, got {serials}; open each app with serial=...")
        if not 0 <= port < 65536:
            raise ValueError(f"port must be in 0..65535, got {port}")
        self.host = host
        self.port = port
        self._devices = {s: HarmonyDevice(d, serial=s) for s, d in pairs}
        self._forwards: dict[int, tuple[str, int, asyncio.Server]] = {}
        self._hdcd = Hdcd(self._devices, forward=self._forward, unforward=self._unforward,
                          forwards=lambda: [(s, lp, rp) for lp, (s, rp, _) in sorted(self._forwards.items())])
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._bin: str | None = None

    # --- life cycle -----------------------------------------------------------------------------

    @property
    def serials(self) -> list[str]:
        return list(self._devices)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def bin_dir(self) -> str:
        """A folder holding the stand-in `hdc` command: bash with /dev/tcp (~2 ms a start), else Python."""
        if self._bin is None:
            folder = tempfile.mkdtemp(prefix="appatlas-hdc-")
            script = Path(folder) / "hdc"
            bash = shutil.which("bash")
            if bash is not None and _has_dev_tcp(bash):
                script.write_text(f"#!{bash}\n" + _CLIENT_SH.read_text(encoding="utf-8"), encoding="utf-8")
            else:  # -I -S: no site-packages, no environment; the client needs only builtin modules
                script.write_text(f"#!{sys.executable} -IS\n" + _CLIENT.read_text(encoding="utf-8"),
                                  encoding="utf-8")
            script.chmod(0o755)
            self._bin = folder
        return self._bin

    def environ(self) -> dict[str, str]:
        """PATH with `bin_dir` first, and HDC_SERVER_HOST/PORT: what hmdriver2 needs to use this server."""
        return {"PATH": self.bin_dir + os.pathsep + os.environ.get("PATH", ""),
                "HDC_SERVER_HOST": self.host, "HDC_SERVER_PORT": str(self.port)}

    def start(self) -> FakeHdcServer:
        """Listen and serve in a background thread; returns once the port accepts connections."""
        if self.running:
            return self
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fakehdc", daemon=True)
        self._thread.start()
        try:
            self._server = asyncio.run_coroutine_threadsafe(self._open(), loop).result(_CALL_TIMEOUT)
        except BaseException:
            self._halt()
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("fake hdc server on %s:%d serving %s", self.host, self.port, ", ".join(self.serials))
        return self

    async def _open(self) -> asyncio.Server:
        return await asyncio.start_server(self._hdcd.handle, self.host, self.port, limit=64 * 1024)

    def stop(self) -> None:
        """Close every connection, forward and port, end the thread, remove `bin_dir`."""
        if self._loop is not None:
            if self.running:
                try:
                    asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(_CALL_TIMEOUT)
                except (TimeoutError, RuntimeError) as exc:
                    log.warning("fake hdc server did not close cleanly: %s", exc)
            self._halt()
        if self._bin is not None:
            shutil.rmtree(self._bin, ignore_errors=True)
            self._bin = None

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for _, _, listener in self._forwards.values():
            listener.close()
        self._forwards.clear()
        for dev in self._devices.values():
            dev.stop_agent()
            for w in list(dev.streams):
                w.transport.abort()
        for w in list(self._hdcd.connections):
            w.transport.abort()
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

    def __enter__(self) -> FakeHdcServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- forwards (`hdc fport`) -----------------------------------------------------------------

    async def _forward(self, serial: str, local: int, remote: int) -> str | None:
        if local in self._forwards:
            return None if self._forwards[local][:2] == (serial, remote) else f"tcp:{local} is forwarded already"
        try:
            listener = await asyncio.start_server(lambda r, w: self._bridge(serial, remote, r, w), "127.0.0.1",
                                                  local, limit=_agent.MAX_MESSAGE)
        except OSError as exc:
            return f"cannot listen on tcp:{local} ({exc.strerror or exc})"
        self._forwards[local] = (serial, remote, listener)
        return None

    def _unforward(self, serial: str, local: int, remote: int) -> str | None:
        entry = self._forwards.get(local)
        if entry is None or entry[:2] != (serial, remote):
            return f"no forward tcp:{local} tcp:{remote} for {serial}"
        del self._forwards[local]
        entry[2].close()
        return None

    async def _bridge(self, serial: str, remote: int, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        """A connection to a forwarded port: the device's daemon when it listens there, else closed at once."""
        dev = self._devices[serial]
        agent = dev.agent
        if not dev.online or agent is None or remote != AGENT_PORT:
            await close(writer)
            return
        tune(writer)
        agent.streams.add(writer)
        dev.streams.add(writer)
        try:
            await _agent.serve(dev, agent, reader, writer)
        finally:
            agent.streams.discard(writer)
            dev.streams.discard(writer)
            await close(writer)

    # --- the devices ----------------------------------------------------------------------------

    def device(self, serial: str) -> VirtualLike:
        """The virtual device behind `serial` (touch it only while no client call is in flight)."""
        return self._device(serial).device

    def _device(self, serial: str) -> HarmonyDevice:
        try:
            return self._devices[serial]
        except KeyError:
            raise KeyError(f"no device {serial!r} on this server; serials: {self.serials}") from None

    def _in_loop(self, fn: Callable[[], T]) -> T:
        if not self.running or self._loop is None:
            return fn()

        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(_CALL_TIMEOUT)

    def _set(self, target: object, **values: object) -> None:
        def apply() -> None:
            for name, value in values.items():
                setattr(target, name, value)

        self._in_loop(apply)

    # --- faults ---------------------------------------------------------------------------------

    def drop(self, serial: str) -> None:
        """Pull the cable: the device leaves `hdc list targets`, its daemon and streams end."""
        self._in_loop(self._device(serial).drop)

    def reconnect(self, serial: str) -> None:
        """Plug it back in (its UI test daemon stays down until a client starts it)."""
        self._set(self._device(serial), online=True)

    def kill_agent(self, serial: str, *, restartable: bool = True) -> None:
        """Kill the UI test daemon; with restartable=False every `uitest start-daemon` dies at once too."""
        dev = self._device(serial)
        self._set(dev.faults, daemon_dies=not restartable)
        self._in_loop(dev.stop_agent)

    def slow_dumps(self, serial: str, delay_ms: int, *, count: int | None = None) -> None:
        """Delay the next `count` `uitest dumpLayout` calls (all of them when None) by `delay_ms`."""
        if delay_ms < 0 or (count is not None and count < 0):
            raise ValueError("delay_ms and count must be >= 0")
        self._set(self._device(serial).faults, dump_delay_s=delay_ms / 1000, slow_dumps=count)

    def agent_running(self, serial: str) -> bool:
        return self._in_loop(lambda: self._device(serial).agent is not None)

    def clear_faults(self, serial: str) -> None:
        """Forget injected faults."""
        self._set(self._device(serial), faults=Faults())
