"""One phone behind the local adb server: a virtual device plus what adbd and Android add to it.

The phone holds the files pushed over `sync:`, whether the uiautomator2 server runs, the
clipboard, the injected faults, and the crash dialog Android draws over a crashed app.
All of it is touched from the server's event loop only.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import zlib
from dataclasses import dataclass, field
from typing import Protocol

from appatlas.devices.base import DeviceInfo
from appatlas.hierarchy import ROOT_CLASS
from appatlas.types import Action, Bounds, Screen, Widget

LAUNCHER = "com.android.launcher3"
SYSTEM_PACKAGES = ("android", "com.android.settings", "com.android.systemui", LAUNCHER)
MAX_FILE = 64 * 1024 * 1024
MAX_STORAGE = 256 * 1024 * 1024
CRASH_IDS = ("android:id/aerr_close", "android:id/aerr_restart", "android:id/aerr_wait")


class VirtualLike(Protocol):
    """What the server needs from the device it fronts (appatlas.devices.virtual satisfies it).

    Optional: a `crashed` attribute (True while the device shows its own crash dialog), and
    `spec.package` or `app.package` naming the app under test.
    """

    serial: str

    def snapshot(self) -> Screen: ...

    def perform(self, action: Action) -> None: ...

    def tap(self, x: int, y: int) -> None: ...

    def long_tap(self, x: int, y: int) -> None: ...

    def type_text(self, text: str) -> None: ...

    def press_back(self) -> None: ...

    def launch(self, app: str = "") -> None: ...

    def stop_app(self, package: str = "") -> None: ...

    def current_app(self) -> tuple[str, str]: ...

    def info(self) -> DeviceInfo: ...


@dataclass
class Faults:
    """Trouble to inject, counted down as it is served."""

    dump_delay_s: float = 0.0
    slow_dumps: int | None = None  # how many dumps are delayed; None = all of them
    empty_dumps: int = 0
    relaunch_fails: bool = False  # app_process dies at once (e.g. another tool holds UiAutomation)
    crashing_launches: int = 0  # the next launches of the app crash at once (a crash loop)
    action_delay_s: float = 0.0  # every tap, key, text, swipe and launch takes this long (a real phone's pace)

    def take_empty(self) -> bool:
        if self.empty_dumps > 0:
            self.empty_dumps -= 1
            return True
        return False

    def take_delay(self) -> float:
        if self.dump_delay_s <= 0 or self.slow_dumps == 0:
            return 0.0
        if self.slow_dumps is not None:
            self.slow_dumps -= 1
        return self.dump_delay_s


@dataclass
class UiServer:
    """The uiautomator2 server process: its port, its open HTTP connections, and its end."""

    port: int
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    streams: set[asyncio.StreamWriter] = field(default_factory=set)


@dataclass
class Crash:
    package: str
    anr: bool


@dataclass(frozen=True)
class File:
    data: bytes
    mode: int
    mtime: int
    md5: str  # what `toybox md5sum` prints; kept, as the client asks on every connect


class Phone:
    """A virtual device as adbd, Android and the uiautomator2 server present it."""

    def __init__(self, device: VirtualLike, *, serial: str, transport_id: int) -> None:
        self.device = device
        self.serial = serial
        self.transport_id = transport_id
        self.online = True
        self.files: dict[str, File] = {}
        self.ui: UiServer | None = None
        self.clipboard: str | None = None
        self.faults = Faults()
        self.crash: Crash | None = None
        self.streams: set[asyncio.StreamWriter] = set()
        self.package = _package_of(device)
        self._info = device.info()

    # --- what the phone knows of itself -------------------------------------------------------

    @property
    def width(self) -> int:
        return self._info.width

    @property
    def height(self) -> int:
        return self._info.height

    @property
    def model(self) -> str:
        return self._info.model or "appatlas virtual"

    @property
    def sdk(self) -> int:
        return self._info.sdk or 30

    def packages(self) -> list[str]:
        return sorted({*SYSTEM_PACKAGES, self.package})

    def props(self) -> dict[str, str]:
        release = {29: "10", 30: "11", 31: "12", 32: "12", 33: "13", 34: "14", 35: "15"}.get(self.sdk, "11")
        return {
            "ro.serialno": self.serial, "ro.build.version.sdk": str(self.sdk),
            "ro.build.version.release": release, "ro.product.model": self.model,
            "ro.product.brand": "appatlas", "ro.product.manufacturer": "appatlas",
            "ro.product.name": "appatlas_virtual", "ro.product.device": "virtual",
            "ro.product.cpu.abi": "x86_64", "ro.debuggable": "1",
        }

    def pid(self, package: str) -> int:
        return 2000 + zlib.crc32(package.encode()) % 30000

    def running(self) -> list[str]:
        pkg = self.device.current_app()[0]
        return sorted({"com.android.systemui", LAUNCHER, pkg})

    # --- the screen, with Android's crash dialog over a crashed app ----------------------------

    def focus(self) -> tuple[str, str]:
        """(package, activity) in front; a crash dialog is the "Application Error: pkg" window."""
        crashed = self.crash is not None or getattr(self.device, "crashed", False)
        if crashed:
            anr = self.crash is not None and self.crash.anr
            package = self.crash.package if self.crash is not None else self.package
            return "", f"{'Application Not Responding' if anr else 'Application Error'}: {package}"
        return self.device.current_app()

    def screen(self) -> Screen:
        if self.crash is not None:
            return _crash_screen(self.crash, self.width, self.height)
        return self.device.snapshot()

    def tap(self, x: int, y: int, *, long: bool = False) -> None:
        if self.crash is not None:
            hit = self.screen().widget_at(x, y)
            if hit is not None and not long:
                self._answer(hit.resource_id)
            return
        (self.device.long_tap if long else self.device.tap)(x, y)

    def back(self) -> None:
        if self.crash is not None:
            self._answer("android:id/aerr_wait" if self.crash.anr else "android:id/aerr_close")
            return
        self.device.press_back()

    def _answer(self, button: str) -> None:
        """A button of the crash dialog: close the app, open it again, or wait (ANR)."""
        crash = self.crash
        if crash is None or button not in CRASH_IDS:
            return
        self.crash = None
        if button == "android:id/aerr_close":
            self.device.stop_app(crash.package)
        elif button == "android:id/aerr_restart":
            self.device.launch(crash.package)

    def launch(self, app: str) -> None:
        self.crash = None
        self.device.launch(app)
        if self.faults.crashing_launches > 0:
            self.faults.crashing_launches -= 1
            self.crash = Crash(app or self.package, anr=False)

    def stop(self, package: str) -> None:
        if self.crash is not None and self.crash.package == package:
            self.crash = None
        self.device.stop_app(package)

    # --- files ----------------------------------------------------------------------------------

    def store(self, path: str, data: bytes, *, mode: int, mtime: int) -> str | None:
        """Keep a pushed file; an error message when it does not fit."""
        if len(data) > MAX_FILE:
            return f"file too large ({len(data)} bytes, at most {MAX_FILE})"
        used = sum(len(f.data) for p, f in self.files.items() if p != path)
        if used + len(data) > MAX_STORAGE:
            return "No space left on device"
        self.files[path] = File(data, mode, mtime, hashlib.md5(data, usedforsecurity=False).hexdigest())
        return None

    # --- the uiautomator2 server ---------------------------------------------------------------

    def stop_ui(self) -> None:
        """The UI server process ends: its port stops answering, its connections drop."""
        ui, self.ui = self.ui, None
        if ui is not None:
            ui.stopped.set()
            for w in list(ui.streams):
                w.transport.abort()

    def drop(self) -> None:
        """The cable is pulled: the phone leaves `host:devices` and every stream to it closes."""
        self.online = False
        self.stop_ui()
        for w in list(self.streams):
            w.transport.abort()


def _package_of(device: VirtualLike) -> str:
    """The app under test: an app spec's (or a recording's) package, else what is in front now."""
    for holder in ("spec", "app"):
        package = getattr(getattr(device, holder, None), "package", None)
        if isinstance(package, str) and package:
            return package
    return device.current_app()[0]


def _crash_screen(crash: Crash, width: int, height: int) -> Screen:
    """The dialog Android shows over a crashed (or frozen: ANR) app."""
    w, h = width or 1080, height or 1920
    top, left, right = h // 2 - 160, 60, w - 60
    if crash.anr:
        title = f"{crash.package} isn't responding"
        buttons = [("android:id/aerr_close", "Close app"), ("android:id/aerr_wait", "Wait")]
    else:
        title = f"{crash.package} has stopped"
        buttons = [("android:id/aerr_restart", "Open app again"), ("android:id/aerr_close", "Close app")]
    rows = tuple(Widget(class_name="android.widget.Button", bounds=Bounds(left, top + 120 + i * 100, right,
                                                                          top + 210 + i * 100),
                        resource_id=rid, text=text, package="android", clickable=True)
                 for i, (rid, text) in enumerate(buttons))
    dialog = Widget(class_name="android.widget.LinearLayout", bounds=Bounds(left, top, right, top + 330),
                    package="android", children=(
                        Widget(class_name="android.widget.TextView", bounds=Bounds(left, top, right, top + 110),
                               resource_id="android:id/alertTitle", text=title, package="android"),
                        *rows))
    window = Widget(class_name="android.widget.FrameLayout", bounds=Bounds(0, 0, w, h), package="android",
                    children=(dialog,))
    root = Widget(class_name=ROOT_CLASS, bounds=Bounds(0, 0, w, h), children=(window,))
    return Screen(package="android", activity="com.android.server.am.AppErrorDialog", root=root, width=w,
                  height=h)


def png_of(screen: Screen) -> bytes:
    """The screen's PNG, or a plain grey one of its size when the device renders none."""
    if screen.screenshot:
        return screen.screenshot
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (max(1, screen.width), max(1, screen.height)), (96, 96, 96)).save(buf, "PNG")
    return buf.getvalue()
