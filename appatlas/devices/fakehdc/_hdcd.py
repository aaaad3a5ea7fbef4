"""One `hdc` call: the server side of the stand-in's `hdc` command (see `_client`).

Commands, as hmdriver2 writes them: `list targets`, `shell CMD`, `file send LOCAL REMOTE`,
`file recv REMOTE LOCAL`, `fport tcp:LOCAL tcp:REMOTE`, `fport ls`, `fport rm tcp:L tcp:R`,
`version`, `start`/`kill` (server life: answered, nothing to do). A call names its device with
`-t SERIAL`; without one it goes to the only device. Failures answer hdc's `[Fail]…` lines.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from appatlas.devices.fakeadb._wire import IDLE_TIMEOUT, close, tune
from appatlas.devices.fakehdc import _shell
from appatlas.devices.fakehdc._device import HarmonyDevice

log = logging.getLogger(__name__)

MAX_HEADER = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
VERSION = "Ver: 3.1.0e (appatlas stand-in)"
NO_DEVICE = "[Fail]Device not founded or connected"
# (serial, local port, remote port) -> an error message or None
Forward = Callable[[str, int, int], Awaitable[str | None]]
Unforward = Callable[[str, int, int], str | None]


class Hdcd:
    """Answers `hdc` calls for a set of devices; forwards are opened through the server's callbacks."""

    def __init__(self, devices: dict[str, HarmonyDevice], *, forward: Forward, unforward: Unforward,
                 forwards: Callable[[], list[tuple[str, int, int]]]) -> None:
        self.devices = devices
        self.forward = forward
        self.unforward = unforward
        self.forwards = forwards
        self.connections: set[asyncio.StreamWriter] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tune(writer)
        self.connections.add(writer)
        dev: HarmonyDevice | None = None
        try:
            async with asyncio.timeout(IDLE_TIMEOUT):
                fields, body = await _request(reader)
            serial = fields[0].decode("utf-8", "replace")
            argv = [f.decode("utf-8", "replace") for f in fields[1:]]
            needs = _needs_device(argv)
            dev = self._device(serial) if needs else None
            if needs and dev is None:
                several = not serial and len(self._online()) > 1
                out, code, data = ("[Fail]ExecuteCommand need connect-key? please confirm a device by help info"
                                   if several else NO_DEVICE), 1, b""
            else:
                if dev is not None:
                    dev.streams.add(writer)
                out, code, data = await self._run(dev, argv, body)
        except (ValueError, asyncio.LimitOverrunError, asyncio.IncompleteReadError) as exc:
            out, code, data = f"[Fail]bad request: {exc}", 1, b""
        except (TimeoutError, ConnectionError):
            self.connections.discard(writer)
            await close(writer)
            return
        try:
            # a received file goes alone (the client prints hdc's transfer line); otherwise the output
            payload = data if data else out.encode("utf-8") + (b"\n" if out and not out.endswith("\n") else b"")
            writer.write(b"%d\n" % code + payload)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            if dev is not None:
                dev.streams.discard(writer)
            self.connections.discard(writer)
            await close(writer)

    def _online(self) -> list[HarmonyDevice]:
        return [d for d in self.devices.values() if d.online]

    def _device(self, serial: str) -> HarmonyDevice | None:
        if not serial:
            online = self._online()
            return online[0] if len(online) == 1 else None
        dev = self.devices.get(serial)
        return dev if dev is not None and dev.online else None

    async def _run(self, dev: HarmonyDevice | None, argv: list[str], body: bytes) -> tuple[str, int, bytes]:
        cmd = argv[0] if argv else ""
        if cmd == "list" and argv[1:2] == ["targets"]:
            online = [d.serial for d in self.devices.values() if d.online]
            if "-v" in argv:
                return "\n".join(f"{s}\t\tUSB\tConnected\tlocalhost\thdc" for s in online) or "[Empty]", 0, b""
            return "\n".join(online) or "[Empty]", 0, b""
        if cmd in ("version", "-v", "checkserver"):
            return VERSION, 0, b""
        if cmd in ("start", "kill", "start-server", "kill-server"):
            return "", 0, b""
        assert dev is not None
        if cmd == "shell":
            return await self._shell(dev, " ".join(argv[1:])), 0, b""
        if cmd == "file" and len(argv) >= 4 and argv[1] in ("send", "recv"):
            return self._file(dev, argv[1], [a for a in argv[2:] if not a.startswith("-")], body)
        if cmd == "fport":
            return await self._fport(dev, argv[1:])
        return f"[Fail]Unknown command: {' '.join(argv)[:200]}", 1, b""

    async def _shell(self, dev: HarmonyDevice, line: str) -> str:
        if "dumpLayout" in line:
            delay = dev.faults.take_delay()
            if delay:
                await asyncio.sleep(delay)
                if not dev.online:
                    return NO_DEVICE
        return _shell.run(dev, line)

    def _file(self, dev: HarmonyDevice, how: str, paths: list[str], body: bytes) -> tuple[str, int, bytes]:
        if len(paths) != 2:
            return f"[Fail]file {how} takes two paths", 1, b""
        t0 = time.perf_counter()
        if how == "send":
            local, remote = paths
            if remote.endswith("/"):
                remote += local.replace("\\", "/").rsplit("/", 1)[-1]
            problem = dev.store(remote, body)
            if problem is not None:
                return f"[Fail]Error opening file: {problem}, path:{remote}", 1, b""
            return _transferred(len(body), t0), 0, b""
        remote = paths[0]
        data = dev.files.get(remote)
        if data is None:
            return f"[Fail]Error opening file: no such file or directory, path:{remote}", 1, b""
        return _transferred(len(data), t0), 0, data

    async def _fport(self, dev: HarmonyDevice, args: list[str]) -> tuple[str, int, bytes]:
        if args[:1] == ["ls"]:
            rows = [f"{s}    tcp:{lp} tcp:{rp}    [Forward]" for s, lp, rp in self.forwards()]
            return "\n".join(rows) or "[Empty]", 0, b""
        remove = args[:1] == ["rm"]
        ports = _ports(args[1:] if remove else args)
        if ports is None:
            return f"[Fail]Incorrect forward command: {' '.join(args)[:100]}", 1, b""
        if remove:
            problem = self.unforward(dev.serial, *ports)
            if problem:
                return f"[Fail]{problem}", 1, b""
            return f"Remove forward ruler success, ruler:tcp:{ports[0]} tcp:{ports[1]}", 0, b""
        problem = await self.forward(dev.serial, *ports)
        if problem:
            return f"[Fail]Forward port failed: {problem}", 1, b""
        return "Forwardport result:OK", 0, b""


async def _request(reader: asyncio.StreamReader) -> tuple[list[bytes], bytes]:
    """(serial and argv, body): NUL-terminated fields (their count first, the body's size last), then the body."""
    count = _number(await _field(reader), 1024)
    if count < 2:
        raise ValueError("a request has a serial and a command")
    fields = [await _field(reader) for _ in range(count)]
    size = _number(await _field(reader), MAX_BODY)
    return fields, await reader.readexactly(size) if size else b""


async def _field(reader: asyncio.StreamReader) -> bytes:
    return (await reader.readuntil(b"\0"))[:-1]


def _number(raw: bytes, most: int) -> int:
    text = raw.strip()
    if not text.isdigit() or int(text) > most:
        raise ValueError(f"expected a number up to {most}, got {text[:20]!r}")
    return int(text)


def _needs_device(argv: list[str]) -> bool:
    return bool(argv) and argv[0] not in ("list", "version", "-v", "checkserver", "start", "kill", "start-server",
                                          "kill-server")


def _ports(args: list[str]) -> tuple[int, int] | None:
    if len(args) != 2 or not all(a.startswith("tcp:") and a[4:].isdigit() for a in args):
        return None
    local, remote = int(args[0][4:]), int(args[1][4:])
    return (local, remote) if 0 < local < 65536 and 0 < remote < 65536 else None


def _transferred(size: int, t0: float) -> str:
    ms = max(1, round(1000 * (time.perf_counter() - t0)))
    return f"FileTransfer finish, Size:{size}, File count = 1, time:{ms}ms rate:{size / ms:.2f}kB/s"
