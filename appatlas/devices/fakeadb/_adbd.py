"""One adb client connection: host services, the switch to a device, then one device service.

Host services: version, devices, devices-l, features, track-devices, tport/transport (serial,
any, usb, local, id), host-serial:…:get-state/get-serialno/get-devpath/features/wait-for-…,
list-forward. Device services: shell (v1 and v2), exec, sync, tcp:PORT (the uiautomator2
server when it runs). Anything else gets FAIL with a message; nothing ends the server.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable, Mapping

from appatlas.devices.fakeadb import _shell
from appatlas.devices.fakeadb._http import serve_http
from appatlas.devices.fakeadb._phone import Phone, UiServer
from appatlas.devices.fakeadb._rpc import UiRpc
from appatlas.devices.fakeadb._sync import serve_sync
from appatlas.devices.fakeadb._wire import OKAY, ProtocolError, block, close, fail, read_request, tune

log = logging.getLogger(__name__)

ADB_VERSION = 41  # >= 41: clients use host:tport:serial
FEATURES = "shell_v2,cmd,stat_v2,ls_v2,fixed_push_mkdir,apex,abb,fixed_push_symlink_timestamp,abb_exec"
_TRANSPORT_ONLY = ("any", "usb", "local")
Target = Callable[[], "Phone"] | None  # resolves the phone a host-serial:… request names


class Refused(Exception):
    """A request the server answers with FAIL."""


class AdbDaemon:
    """The phones by serial, and the handler for each client connection (loop thread only)."""

    def __init__(self, phones: Mapping[str, Phone]) -> None:
        self.phones = dict(phones)
        self.rpcs = {serial: UiRpc(p) for serial, p in self.phones.items()}
        self.connections: set[asyncio.StreamWriter] = set()

    # --- lookup ---------------------------------------------------------------------------------

    def online(self) -> list[Phone]:
        return [p for p in self.phones.values() if p.online]

    def pick(self, which: str) -> Phone:
        """A phone by serial, or the only one for any/usb/local, as adb chooses."""
        if which in _TRANSPORT_ONLY:
            live = self.online()
            if not live:
                raise Refused("no devices/emulators found")
            if len(live) > 1:
                raise Refused("more than one device/emulator")
            return live[0]
        phone = self.phones.get(which)
        if phone is None or not phone.online:
            raise Refused(f"device '{which}' not found")
        return phone

    def by_id(self, tid: str) -> Phone:
        for p in self.online():
            if str(p.transport_id) == tid:
                return p
        raise Refused(f"no device with transport id '{tid}'")

    def listing(self, *, long: bool) -> str:
        lines = []
        for p in self.online():
            if long:
                model = p.model.replace(" ", "_")
                lines.append(f"{p.serial}\tdevice product:appatlas_virtual model:{model} device:virtual "
                             f"transport_id:{p.transport_id}\n")
            else:
                lines.append(f"{p.serial}\tdevice\n")
        return "".join(lines)

    # --- a connection ---------------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client connection to its end."""
        tune(writer)
        self.connections.add(writer)
        phone: Phone | None = None
        try:
            while True:
                try:
                    req = await read_request(reader)
                except ProtocolError as exc:
                    writer.write(fail(str(exc)))
                    return
                if req is None:
                    return
                try:
                    if phone is None:
                        phone = await self._host(req, reader, writer)
                        if phone is None:
                            return
                        phone.streams.add(writer)
                        continue
                    await self._device(phone, req, reader, writer)
                    return
                except Refused as exc:
                    writer.write(fail(str(exc)))
                    return
        except (TimeoutError, ConnectionError, ProtocolError):
            pass  # the peer went away or broke a stream mid-way; only this connection ends
        except asyncio.CancelledError:
            pass  # the server is stopping; this connection task simply ends
        except Exception:  # a bug here must cost one connection, never the server
            log.exception("adb connection failed")
        finally:
            self.connections.discard(writer)
            if phone is not None:
                phone.streams.discard(writer)
            try:
                await writer.drain()
            except (ConnectionError, RuntimeError):
                pass
            await close(writer)

    async def _host(self, req: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Phone | None:
        """Answer a host request; return the phone when the connection switched to it."""
        if req.startswith("host:tport:"):
            which = req[len("host:tport:"):]
            phone = self.pick(which[len("serial:"):] if which.startswith("serial:") else which)
            writer.write(OKAY + struct.pack("<Q", phone.transport_id))
            return phone
        if req.startswith("host:transport"):
            rest = req[len("host:transport"):]
            if rest.startswith("-id:"):
                phone = self.by_id(rest[4:])
            elif rest.startswith(":"):
                phone = self.pick(rest[1:])
            elif rest.startswith("-") and rest[1:] in _TRANSPORT_ONLY:
                phone = self.pick(rest[1:])
            else:
                raise Refused(f"unknown host service {req[:100]!r}")
            writer.write(OKAY)
            return phone
        target, cmd = self._split_target(req)
        if cmd == "version" and target is None:
            writer.write(OKAY + block(f"{ADB_VERSION:04x}"))
        elif cmd in ("devices", "devices-l") and target is None:
            writer.write(OKAY + block(self.listing(long=cmd == "devices-l")))
        elif cmd == "track-devices" and target is None:
            await self._track(writer)
        elif cmd == "features":
            if target is not None:
                target()
            writer.write(OKAY + block(FEATURES))
        elif cmd in ("get-state", "get-serialno", "get-devpath"):
            phone = target() if target is not None else self.pick("any")
            answer = {"get-state": "device", "get-serialno": phone.serial, "get-devpath": f"usb:{phone.serial}"}
            writer.write(OKAY + block(answer[cmd]))
        elif cmd.startswith("wait-for-"):
            await self._wait_for(cmd, target, writer)
        elif cmd == "list-forward":
            writer.write(OKAY + block(""))
        elif cmd == "kill":
            raise Refused("this is appatlas' local adb server: stop it with Ctrl-C (or FakeAdbServer.stop())")
        else:
            raise Refused(f"unknown host service {req[:100]!r}")
        return None

    def _split_target(self, req: str) -> tuple[Target, str]:
        if req.startswith("host:"):
            return None, req[5:]
        for prefix, kind in (("host-usb:", "usb"), ("host-local:", "local")):
            if req.startswith(prefix):
                return (lambda k=kind: self.pick(k)), req[len(prefix):]
        if req.startswith("host-transport-id:"):
            tid, _, cmd = req[len("host-transport-id:"):].partition(":")
            return (lambda: self.by_id(tid)), cmd
        if req.startswith("host-serial:"):
            rest = req[len("host-serial:"):]
            # serials may hold ':' (10.0.0.5:5555); a known one is matched whole
            for serial in self.phones:
                if rest.startswith(serial + ":"):
                    return (lambda s=serial: self.pick(s)), rest[len(serial) + 1:]
            serial, _, cmd = rest.rpartition(":")
            return (lambda: self.pick(serial)), cmd
        raise Refused(f"unknown service {req[:100]!r}")

    async def _track(self, writer: asyncio.StreamWriter) -> None:
        writer.write(OKAY)
        last = None
        while not writer.is_closing():
            now = self.listing(long=False)
            if now != last:
                writer.write(block(now))
                await writer.drain()
                last = now
            await asyncio.sleep(0.1)

    async def _wait_for(self, cmd: str, target: Target, writer: asyncio.StreamWriter) -> None:
        state = cmd.rsplit("-", 1)[-1]
        writer.write(OKAY)
        await writer.drain()
        while not writer.is_closing():
            try:
                present = True if target is None and self.online() else bool(target and target())
            except Refused:
                present = False
            if present == (state != "disconnect"):
                writer.write(OKAY)
                return
            await asyncio.sleep(0.05)

    # --- device services ------------------------------------------------------------------------

    async def _device(self, phone: Phone, req: str, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        if req.startswith(("shell:", "shell,", "exec:")):
            head, _, command = req.partition(":")
            await self._shell(phone, command, reader, writer, v2=head.startswith("shell,v2"))
        elif req == "sync:":
            writer.write(OKAY)
            await serve_sync(phone, reader, writer)
        elif req.startswith("tcp:"):
            port = req[4:].rsplit(":", 1)[-1]
            ui = phone.ui
            if ui is None or not port.isdigit() or int(port) != ui.port:
                raise Refused(f"connect error for {req[:40]}: Connection refused")
            writer.write(OKAY)
            ui.streams.add(writer)
            try:
                await serve_http(phone, ui, self.rpcs[phone.serial], reader, writer)
            finally:
                ui.streams.discard(writer)
        else:
            raise Refused(f"unknown device service {req[:100]!r} (appatlas' local adb server "
                          "offers shell, exec, sync and tcp)")

    async def _shell(self, phone: Phone, command: str, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter, *, v2: bool) -> None:
        if not command.strip():
            raise Refused("interactive shells are not supported; pass a command")
        if phone.faults.action_delay_s > 0 and command.split(maxsplit=1)[0] in ("am", "monkey", "input"):
            await asyncio.sleep(phone.faults.action_delay_s)  # a launch or key takes a real phone's time
        outcome = _shell.run(phone, command)
        if outcome.ui_port is not None and phone.ui is not None:
            outcome = _shell.Outcome(outcome.output + b"java.net.BindException: Address already in use\n", 1)
        ui = None
        if outcome.ui_port is not None:
            # listening before OKAY goes out: the client pings the port right after it
            ui = phone.ui = UiServer(outcome.ui_port)
        writer.write(OKAY)
        writer.write(_packet(1, outcome.output) if v2 else outcome.output)
        if ui is None:
            if v2:
                writer.write(_packet(3, bytes([outcome.rc & 0xFF])))
            return
        await writer.drain()
        await self._run_ui(phone, ui, reader)

    async def _run_ui(self, phone: Phone, ui: UiServer, reader: asyncio.StreamReader) -> None:
        """The long-lived `app_process` stream: the UI server lives as long as it does."""
        eof = asyncio.ensure_future(_until_eof(reader))  # the client closing its end kills app_process
        stop = asyncio.ensure_future(ui.stopped.wait())
        try:
            await asyncio.wait({eof, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            eof.cancel()
            stop.cancel()
            if phone.ui is ui:
                phone.stop_ui()


async def _until_eof(reader: asyncio.StreamReader) -> None:
    while await reader.read(4096):
        pass


def _packet(kind: int, data: bytes) -> bytes:
    return bytes([kind]) + struct.pack("<I", len(data)) + data
