"""One HarmonyOS device behind the stand-in: a virtual app plus what the device adds to it.

It holds the files sent over `hdc file send`, whether the UI test daemon (`uitest
start-daemon`, which serves the agent's RPC on port 8012) runs, the injected faults, and the
dumped layout of the screen in front. All of it is touched from the server's event loop only.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import zlib
from dataclasses import dataclass, field
from typing import Any

from appatlas.devices.fakeadb._phone import VirtualLike, png_of
from appatlas.devices.fakehdc._dump import Node, dump_layout
from appatlas.types import Screen, Widget

AGENT_PORT = 8012  # where the UI test daemon serves its RPC on the device
AGENT_SO = "/data/local/tmp/agent.so"
MAX_FILE = 64 * 1024 * 1024
MAX_STORAGE = 256 * 1024 * 1024


@dataclass
class Faults:
    """Trouble to inject, counted down as it is served."""

    dump_delay_s: float = 0.0
    slow_dumps: int | None = None  # how many dumps are delayed; None = all of them
    daemon_dies: bool = False  # `uitest start-daemon` exits at once (the service cannot start)

    def take_delay(self) -> float:
        if self.dump_delay_s <= 0 or self.slow_dumps == 0:
            return 0.0
        if self.slow_dumps is not None:
            self.slow_dumps -= 1
        return self.dump_delay_s


@dataclass
class Agent:
    """The running UI test daemon: its pid, open RPC connections and the objects it handed out."""

    pid: int
    streams: set[asyncio.StreamWriter] = field(default_factory=set)
    ons: dict[str, tuple[tuple[Any, ...], ...]] = field(default_factory=lambda: {"On#seed": ()})
    components: dict[str, Node] = field(default_factory=dict)
    serial_no: int = 0

    def name(self, kind: str) -> str:
        self.serial_no += 1
        return f"{kind}#{self.serial_no}"


class HarmonyDevice:
    """A virtual device as hdcd, the system and the UI test daemon present it."""

    def __init__(self, device: VirtualLike, *, serial: str) -> None:
        self.device = device
        self.serial = serial
        self.online = True
        self.files: dict[str, bytes] = {}
        self.agent: Agent | None = None
        self.faults = Faults()
        self.streams: set[asyncio.StreamWriter] = set()
        self._info = device.info()
        self._pids = 0
        self._dumped: tuple[Screen, dict[str, Any], list[Node]] | None = None
        self._jpeg: tuple[Widget, bytes] | None = None

    @property
    def width(self) -> int:
        return self._info.width

    @property
    def height(self) -> int:
        return self._info.height

    @property
    def model(self) -> str:
        return self._info.model or "appatlas virtual"

    def bundle(self) -> str:
        """The app under test's bundle name."""
        for holder in ("spec", "app"):
            package = getattr(getattr(self.device, holder, None), "package", None)
            if isinstance(package, str) and package:
                return package
        return self.device.current_app()[0]

    def main_ability(self) -> str:
        """The ability `aa start` opens the app with: the spec's launch screen's activity."""
        spec = getattr(self.device, "spec", None)
        if spec is not None and hasattr(spec, "activity_name"):
            return str(spec.activity_name(spec.launch))
        package, ability = self.device.current_app()
        return ability if package == self.bundle() and ability else "EntryAbility"

    def params(self) -> dict[str, str]:
        return {"const.product.model": self.model, "const.product.brand": "appatlas",
                "const.product.name": "appatlas virtual", "const.ohos.apiversion": "12",
                "const.product.software.version": "appatlas-virtual 5.0.0", "const.product.cpu.abilist": "arm64-v8a",
                "const.product.devicetype": "phone", "const.ohos.fullname": "OpenHarmony-5.0.0.0"}

    # --- the screen -----------------------------------------------------------------------------

    def layout(self) -> tuple[dict[str, Any], list[Node]]:
        """The dumpLayout JSON of the screen in front and its components, rebuilt when the screen changed."""
        screen = self.device.snapshot()
        if self._dumped is None or self._dumped[0].root is not screen.root:
            # the window in front names its ability: the screen's own package (a crash or
            # permission dialog over the app is in front of it)
            top, nodes = dump_layout(screen, abilities={screen.package: screen.activity})
            self._dumped = (screen, top, nodes)
        return self._dumped[1], self._dumped[2]

    def jpeg(self) -> bytes:
        """The screen as `snapshot_display` writes it (JPEG), encoded once per screen."""
        from PIL import Image

        screen = self.device.snapshot()
        if self._jpeg is None or self._jpeg[0] is not screen.root:
            buf = io.BytesIO()
            Image.open(io.BytesIO(png_of(screen))).convert("RGB").save(buf, "JPEG", quality=80)
            self._jpeg = (screen.root, buf.getvalue())
        return self._jpeg[1]

    def png(self) -> bytes:
        return png_of(self.device.snapshot())

    # --- files and processes --------------------------------------------------------------------

    def store(self, path: str, data: bytes) -> str | None:
        """Keep a file; an error message when it does not fit."""
        if len(data) > MAX_FILE:
            return f"file too large ({len(data)} bytes, at most {MAX_FILE})"
        used = sum(len(v) for p, v in self.files.items() if p != path)
        if used + len(data) > MAX_STORAGE:
            return "No space left on device"
        self.files[path] = data
        return None

    def md5(self, path: str) -> str | None:
        data = self.files.get(path)
        return None if data is None else hashlib.md5(data, usedforsecurity=False).hexdigest()

    def pid(self, name: str) -> int:
        return 1000 + zlib.crc32(name.encode()) % 30000

    def start_agent(self) -> bool:
        """`uitest start-daemon singleness`: True when the daemon is up (it needs the pushed agent.so)."""
        if self.agent is not None:
            return True
        if AGENT_SO not in self.files or self.faults.daemon_dies:
            return False
        self._pids += 1
        self.agent = Agent(pid=40000 + self._pids)
        return True

    def stop_agent(self) -> None:
        """The daemon ends: its RPC port stops answering, its connections drop."""
        agent, self.agent = self.agent, None
        if agent is not None:
            for w in list(agent.streams):
                w.transport.abort()

    def drop(self) -> None:
        """The cable is pulled: the device leaves `hdc list targets` and every stream to it closes."""
        self.online = False
        self.stop_agent()
        for w in list(self.streams):
            w.transport.abort()
