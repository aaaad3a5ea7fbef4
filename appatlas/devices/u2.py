"""The Device protocol on a real phone or emulator, through the uiautomator2 client (3.x).

Foreign exceptions (adbutils, uiautomator2, requests, sockets) are translated in one place,
`U2Device._guard`, always `raise … from exc`:

  a call that did not answer in time                     -> DeviceTimeout
  the device left `adb devices`, or the adb server went   -> DeviceDisconnected
  the UI server died and uiautomator2's one restart failed -> UiServerDied
  a selector matched nothing                              -> SelectorNotFound
  anything else                                           -> DeviceError
and a "has stopped" / "isn't responding" dialog in front is AppCrashed.

Retries are explicit, bounded and logged: an empty dump is tried again (3 tries in all), and a
UI server that stopped answering is restarted once (uiautomator2's own restart, reported here).
Every socket to the adb server carries the call timeout, so no call can hang.
"""

from __future__ import annotations

import base64
import http.client
import io
import logging
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import adbutils
import requests
import uiautomator2 as u2
from uiautomator2 import exceptions as u2e

from appatlas.devices.base import DeviceInfo, app_name
from appatlas.errors import (
    ActionRefused,
    AppatlasError,
    AppCrashed,
    DeviceDisconnected,
    DeviceError,
    DeviceTimeout,
    SelectorNotFound,
    UiServerDied,
)
from appatlas.hierarchy import parse_u2_xml
from appatlas.types import Action, ActionKind, Screen, Selector, Widget

__all__ = ["AttachedDevice", "U2Device", "connect", "list_devices"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 20.0  # seconds; dumps of busy real screens take a few
DUMP_TRIES = 3
SELECTOR_WAIT = 1.0  # seconds a selector may take to appear (a screen still opening)
_FOREIGN = (adbutils.AdbError, u2e.BaseException, requests.RequestException, OSError, EOFError,
            http.client.HTTPException, ValueError)
_TIMEOUTS = (TimeoutError, socket.timeout, adbutils.AdbTimeout, u2e.HTTPTimeoutError, requests.Timeout)
_UI_DEAD = (u2e.UiAutomationError, u2e.HTTPError)
_EMPTY = re.compile(r"<hierarchy[^>]*/>")
_FOCUS = re.compile(r"mCurrentFocus=Window\{\S+ \S+ (?P<name>[^}]*)\}")
_CRASH_FOCUS = re.compile(r"(?P<kind>Application Error|Application Not Responding): (?P<package>\S+)")
_CRASH_IDS = ("android:id/aerr_close", "android:id/aerr_restart", "android:id/aerr_wait")


@dataclass(frozen=True, slots=True)
class AttachedDevice:
    """One line of `adb devices -l`."""

    serial: str
    state: str  # device | offline | unauthorized | …
    model: str = ""
    product: str = ""
    transport_id: int = 0


class _Connection(adbutils.AdbConnection):
    # adbutils starts its bundled `adb` binary when nothing listens on the port; we never
    # want that (it would start a second adb server behind the user's back): fail instead.
    def _safe_connect(self) -> socket.socket:
        sock = self._create_socket()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small requests leave at once
        return sock


class _AdbClient(adbutils.AdbClient):
    """adbutils' client with the call timeout on every socket and no surprise adb server."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        super().__init__(host=host, port=port, socket_timeout=timeout)
        self.timeout = timeout
        self._version: int | None = None

    def make_connection(self, timeout: float | None = None) -> adbutils.AdbConnection:
        conn = _Connection(self.host, self.port)
        conn.conn.settimeout(min(timeout or self.timeout, self.timeout))
        return conn

    def server_version(self) -> int:
        # adbutils asks before every transport switch; it cannot change while the server runs
        if self._version is None:
            self._version = super().server_version()
        return self._version


class _U2Client(u2.Device):
    """uiautomator2's Device, reporting its automatic UI-server restart instead of doing it silently."""

    def __init__(self, dev: adbutils.AdbDevice, *, on_restart: Callable[[], None]) -> None:
        self._on_restart = on_restart
        self._started = False
        super().__init__(dev)
        self._started = True

    def start_uiautomator(self) -> None:
        if self._started:
            self._on_restart()
        super().start_uiautomator()


def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1.0).close()
        return True
    except OSError:
        return False


def list_devices(*, adb_host: str = "127.0.0.1", adb_port: int = 5037, timeout: float = 5.0) -> list[AttachedDevice]:
    """The devices an adb server knows (`adb devices -l`), in any state."""
    if not _reachable(adb_host, adb_port):
        raise DeviceDisconnected(f"no adb server answers at {adb_host}:{adb_port}: start one (`adb start-server`, "
                                 f"or `appatlas devices serve --port {adb_port}`) and plug in the phone")
    try:
        infos = _AdbClient(adb_host, adb_port, timeout).list(extended=True)
    except _FOREIGN as exc:
        raise DeviceDisconnected(f"the adb server at {adb_host}:{adb_port} did not list its devices ({exc}); "
                                 "restart it (`adb kill-server; adb start-server`)") from exc
    return [AttachedDevice(serial=i.serial, state=i.state, model=i.tags.get("model", ""),
                           product=i.tags.get("product", ""),
                           transport_id=int(i.tags.get("transport_id", "0") or 0)) for i in infos]


def connect(serial: str | None = None, *, adb_host: str = "127.0.0.1", adb_port: int = 5037,
            timeout: float = DEFAULT_TIMEOUT, app: str = "", screenshots: bool = True) -> U2Device:
    """Connect to a phone through the adb server at adb_host:adb_port; starts uiautomator2 on it.

    `serial` may be None when exactly one device is attached. `app` ("package" or
    "package/activity") is what `launch()` starts by default.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    attached = list_devices(adb_host=adb_host, adb_port=adb_port, timeout=min(timeout, 5.0))
    ready = [d.serial for d in attached if d.state == "device"]
    if serial is None:
        if len(ready) != 1:
            seen = ", ".join(f"{d.serial} ({d.state})" for d in attached) or "none"
            problem = "no device is attached" if not ready else "several devices are attached"
            raise DeviceDisconnected(f"{problem} to adb at {adb_host}:{adb_port} (seen: {seen}); pass the serial "
                                     "(--device SERIAL), see `appatlas devices list`")
        serial = ready[0]
    elif serial not in ready:
        state = next((d.state for d in attached if d.serial == serial), "absent")
        hint = " (accept the USB debugging prompt on the phone)" if state == "unauthorized" else ""
        raise DeviceDisconnected(f"device {serial} is {state} at adb {adb_host}:{adb_port}{hint}; attached: "
                                 f"{', '.join(ready) or 'none'} — see `appatlas devices list`", serial=serial)
    return U2Device(_AdbClient(adb_host, adb_port, timeout), serial, app=app, screenshots=screenshots)


class U2Device:
    """A phone driven by uiautomator2; build it with `connect()`."""

    def __init__(self, adb: _AdbClient, serial: str, *, app: str = "", screenshots: bool = True) -> None:
        self.serial = serial
        self.app = app
        self.screenshots = screenshots
        self.restarts = 0  # automatic UI-server restarts so far
        self._adb = adb
        with self._guard("connect (start the uiautomator2 server)"):
            self._d = _U2Client(adb.device(serial), on_restart=self._restarting)
            info = self._d.info
            model = self._d.shell(["getprop", "ro.product.model"], timeout=adb.timeout).output.strip()
        self._info = DeviceInfo(serial=serial, model=model or str(info.get("productName", "")),
                                width=int(info["displayWidth"]), height=int(info["displayHeight"]),
                                sdk=int(info.get("sdkInt") or 0))

    # --- Device protocol ------------------------------------------------------------------------

    def snapshot(self) -> Screen:
        """The screen now: hierarchy, foreground package/activity and (unless disabled) a PNG."""
        with self._guard("snapshot"):
            xml = self._dump()
            package, activity = self._focus()
            root = parse_u2_xml(xml, source=f"the dump of {self.serial}", width=self._info.width,
                                height=self._info.height)
            self._raise_if_crashed(root)
            png = self._png() if self.screenshots else None
        return Screen(package, activity, root, self._info.width, self._info.height, png)

    def perform(self, action: Action) -> None:
        """Do one action, aiming by selector with the recorded bounds' centre as the fallback."""
        kind = action.kind
        if kind is ActionKind.LAUNCH:
            self.launch(action.app)
            return
        with self._guard(action.describe()):
            if kind is ActionKind.BACK:
                self._d.press("back")
            elif kind is ActionKind.SCROLL:
                self._scroll(action)
            else:
                assert action.target is not None  # Action validates this
                self._touch(action, action.target)

    def current_app(self) -> tuple[str, str]:
        """(package, activity) in the foreground; AppCrashed while a crash/ANR dialog shows."""
        with self._guard("read the foreground app"):
            return self._focus()

    def launch(self, app: str = "") -> None:
        """Start `app` ("package" or "package/activity"); "" is the app given to connect()."""
        app = app or self.app
        if not app:
            raise DeviceError("no app to launch: pass launch('com.example/.MainActivity') or "
                              "connect(..., app='com.example')", serial=self.serial)
        package, activity = app_name(app)
        args = (["am", "start", "-a", "android.intent.action.MAIN", "-c", "android.intent.category.LAUNCHER",
                 "-n", f"{package}/{activity}"] if activity
                else ["monkey", "-p", package, "-c", "android.intent.category.LAUNCHER", "1"])
        with self._guard(f"launch {app}"):
            out = self._d.shell(args, timeout=self._adb.timeout)
        if out.exit_code != 0 or "Error" in out.output or "aborted" in out.output:
            raise DeviceError(f"cannot launch {app} on {self.serial}: {out.output.strip()[:200]}; is it installed? "
                              f"(`adb -s {self.serial} shell pm list packages`)", serial=self.serial)

    def stop_app(self, package: str = "") -> None:
        """Force-stop `package` ("" is the app given to connect())."""
        package = package or self.app.partition("/")[0]
        if not package:
            raise DeviceError("no app to stop: pass stop_app('com.example') or connect(..., app=…)",
                              serial=self.serial)
        package = app_name(package)[0]
        with self._guard(f"stop {package}"):
            self._d.app_stop(package)

    def info(self) -> DeviceInfo:
        """Serial, model, screen size and SDK level, read once at connect."""
        return self._info

    def close(self) -> None:
        """Stop the uiautomator2 server's stream (the phone keeps everything else)."""
        try:
            self._d.stop_uiautomator(wait=False)
        except _FOREIGN as exc:
            log.debug("closing %s: %s", self.serial, exc)

    def __enter__(self) -> U2Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the one boundary for foreign errors ----------------------------------------------------

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except AppatlasError:
            raise
        except _FOREIGN as exc:
            raise self._translate(exc, what) from exc

    def _translate(self, exc: BaseException, what: str) -> DeviceError:
        s, host, port, timeout = self.serial, self._adb.host, self._adb.port, self._adb.timeout
        if _caused_by(exc, _TIMEOUTS):
            return DeviceTimeout(f"{s}: {what} got no answer within {timeout:g} s; the phone may be busy (animated "
                                 "screens slow dumps down): retry, or connect with a longer timeout", serial=s)
        state = self._presence()
        if state == "no server":
            return DeviceDisconnected(f"{s}: the adb server at {host}:{port} went away during {what}; start it "
                                      "again (`adb start-server`) and reconnect", serial=s)
        if state != "device":
            return DeviceDisconnected(f"{s} disconnected during {what} (adb: {state}); replug the cable or "
                                      "`adb connect` it, check `appatlas devices list`, then connect again",
                                      serial=s)
        if isinstance(exc, u2e.UiObjectNotFoundError):
            return SelectorNotFound(f"{s}: nothing on screen matches ({what}); re-crawl the screen or edit the "
                                    "test", serial=s)
        if isinstance(exc, _UI_DEAD):
            return UiServerDied(f"the uiautomator2 server on {s} died during {what} and the automatic restart "
                                f"failed ({exc}); close other automation tools (Appium, another uiautomator2), "
                                f"then reconnect, or reboot the phone", serial=s)
        if isinstance(exc, u2e.RPCError) and "IllegalStateException" in str(exc):
            # The UI server refused this input on this screen (no focused field, a view that takes no text).
            return ActionRefused(f"{s}: the screen did not take {what}: {str(exc)[:200]}", serial=s)
        return DeviceError(f"{s}: {what} failed: {type(exc).__name__}: {str(exc)[:300]}", serial=s)

    def _presence(self) -> str:
        """The device's state as the adb server sees it now: device, offline, absent, no server."""
        if not _reachable(self._adb.host, self._adb.port):
            return "no server"
        try:
            states = {i.serial: i.state for i in self._adb.list()}
        except _FOREIGN:
            return "no server"
        return states.get(self.serial, "absent")

    def _restarting(self) -> None:
        self.restarts += 1
        log.warning("%s: the uiautomator2 server stopped answering; restarting it (the one automatic "
                    "restart, %d so far)", self.serial, self.restarts)

    # --- pieces ---------------------------------------------------------------------------------

    def _dump(self) -> str:
        # The JSON-RPC call itself rather than d.dump_hierarchy(): that one retries empty dumps
        # with 1 s sleeps and then returns an empty tree; here the retry is short and visible.
        for attempt in range(1, DUMP_TRIES + 1):
            xml = self._d.jsonrpc.dumpWindowHierarchy(False, 50)
            if isinstance(xml, str) and xml.strip() and not _EMPTY.search(xml):
                return xml
            if attempt < DUMP_TRIES:
                pause = 0.05 * 2 ** attempt
                log.warning("%s: empty view hierarchy (try %d of %d); retrying in %.0f ms", self.serial, attempt,
                            DUMP_TRIES, pause * 1000)
                time.sleep(pause)
        raise DeviceError(f"{self.serial} returned an empty view hierarchy {DUMP_TRIES} times: the UI is busy "
                          "(an animation or video); wait and retry, or turn animations off in Developer options",
                          serial=self.serial)

    def _png(self) -> bytes:
        """The screenshot as the phone encoded it (JPEG): decoding and re-encoding would cost ~40 ms."""
        data = self._d.jsonrpc.takeScreenshot(1, 80)
        if data:
            return base64.b64decode(data)
        image = self._d.screenshot()  # the server had none: uiautomator2 falls back to screencap
        buf = io.BytesIO()
        image.save(buf, "PNG", compress_level=1)
        return buf.getvalue()

    def _focus(self) -> tuple[str, str]:
        out = self._d.shell(["dumpsys", "window", "windows"], timeout=self._adb.timeout).output
        m = _FOCUS.search(out)
        if m is None:
            cur = self._d.app_current()
            return str(cur.get("package", "")), str(cur.get("activity", ""))
        name = m.group("name")
        crash = _CRASH_FOCUS.search(name)
        if crash is not None:
            raise self._crashed(crash.group("package"), anr=crash.group("kind").endswith("Responding"))
        package, _, activity = name.partition("/")
        return package, activity

    def _raise_if_crashed(self, root: Widget) -> None:
        ids = {w.resource_id for w in root.walk()}
        if any(i in ids for i in _CRASH_IDS):
            title = next((w.text for w in root.walk() if w.resource_id == "android:id/alertTitle"), "")
            anr = "android:id/aerr_wait" in ids or "responding" in title
            raise self._crashed(title.rsplit(" has stopped", 1)[0].rsplit(" isn't", 1)[0] or "the app", anr=anr)

    def _crashed(self, package: str, *, anr: bool) -> AppCrashed:
        s = self.serial
        if anr:
            return AppCrashed(f"{package} is not responding (ANR) on {s}: close or wait in the dialog, or "
                              f"relaunch it; `adb -s {s} shell dumpsys activity anr` shows why", serial=s)
        return AppCrashed(f"{package} crashed on {s} (Android shows its \"has stopped\" dialog): relaunch it with "
                          f"launch(); `adb -s {s} logcat -b crash` has the stack trace", serial=s)

    def _find(self, sel: Selector) -> Any | None:
        """The uiautomator2 UiObject for `sel`, tried as `locate` does (then without the text), or None."""
        base = {"resourceId": sel.resource_id, "description": sel.content_desc, "className": sel.class_name}
        tries = [{**base, "text": sel.text}]
        if sel.text and (sel.resource_id or sel.content_desc):
            tries.append(base)
        wait = SELECTOR_WAIT
        for fields in tries:
            kwargs = {k: v for k, v in fields.items() if v}
            if not kwargs:
                continue
            obj = self._d(**kwargs, instance=sel.index) if sel.index else self._d(**kwargs)
            if obj.wait(timeout=wait):
                return obj
            wait = 0.0
        return None

    def _touch(self, action: Action, sel: Selector) -> None:
        obj = self._find(sel)
        if obj is None:
            if sel.bounds is None:
                raise SelectorNotFound(f"{self.serial}: no widget matches {sel.describe()} and the action has no "
                                       "bounds to fall back on; re-crawl the screen or edit the test",
                                       serial=self.serial)
            b, w, h = sel.bounds, self._info.width, self._info.height
            # a finger can only touch the screen: the centre of the part of the bounds on it
            x1, y1, x2, y2 = max(0, b.x1), max(0, b.y1), min(w, b.x2), min(h, b.y2)
            x, y = ((x1 + x2) // 2, (y1 + y2) // 2) if x2 > x1 and y2 > y1 else b.center
            log.info("%s: %s not found by selector; touching its recorded bounds at (%d, %d)", self.serial,
                     sel.describe(), x, y)
        if action.kind is ActionKind.TYPE and obj is not None:
            obj.set_text(action.text, timeout=0)
        elif action.kind is ActionKind.TYPE:
            self._d.click(x, y)  # focus the field, then type as a keyboard would
            self._d.send_keys(action.text)
        elif action.kind is ActionKind.LONG_TAP:
            obj.long_click(timeout=0) if obj is not None else self._d.long_click(x, y)
        else:
            self._d.click(*(obj.center() if obj is not None else (x, y)))

    def _scroll(self, action: Action) -> None:
        obj = self._find(action.target) if action.target is not None else None
        x1, y1, x2, y2 = obj.bounds() if obj is not None else (0, 0, self._info.width, self._info.height)
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        near_y, far_y = y1 + (y2 - y1) // 4, y2 - (y2 - y1) // 4
        near_x, far_x = x1 + (x2 - x1) // 4, x2 - (x2 - x1) // 4
        # The finger moves against the content: to see what is below, it swipes up.
        fx, fy, tx, ty = {"down": (cx, far_y, cx, near_y), "up": (cx, near_y, cx, far_y),
                          "right": (far_x, cy, near_x, cy), "left": (near_x, cy, far_x, cy)}[action.direction]
        self._d.swipe(fx, fy, tx, ty, steps=10)


def _caused_by(exc: BaseException | None, kinds: tuple[type[BaseException], ...]) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, kinds) or any(isinstance(a, kinds) for a in getattr(exc, "args", ())):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False
