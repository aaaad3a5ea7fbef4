"""The Device protocol on a HarmonyOS device, through the hmdriver2 client (1.4).

hmdriver2 reaches a device two ways, and so does this backend:

  hdc, one process per call (`hdc [-s HOST:PORT] -t SERIAL …`)   layout dump + file recv, screenshot,
                                                                   foreground app, launch, stop, params
  the UI test daemon's RPC (port 8012 behind `hdc fport`)          finding components, click, long click,
                                                                   text input, swipe, back, display size

It uses hmdriver2's `HmClient` (the RPC socket, `invoke`, the daemon start-up) and `HdcWrapper`
(every hdc command line), not its `Driver`: that one is a per-serial singleton that any
instance's `__del__` clears, sleeps 0.6 s after every action, leaves a temp file per layout
dump, and its multi-field selectors keep only the last field (`On#seed` is restarted for each).
Selectors are built here by chaining `On.id` -> `On.description` -> `On.text` -> `On.type`.

Foreign exceptions (HdcError, DeviceNotFoundError, InvokeHypiumError, sockets, bad JSON) are
translated in one place, `HarmonyDevice._guard`, always `raise … from exc`:

  a call that did not answer in time                       -> DeviceTimeout
  the device left `hdc list targets`, or no hdc server      -> DeviceDisconnected
  the UI test daemon died and the one restart failed        -> UiServerDied
  a selector matched nothing (and no bounds to fall back)    -> SelectorNotFound
  the daemon refused the input                              -> ActionRefused
  anything else                                             -> DeviceError

Retries are explicit, bounded and logged: an empty layout is dumped again (3 tries in all), and
a daemon that stopped answering is restarted once per failure (`HarmonyDevice.restarts`).
hmdriver2 waits for hdc without a time limit; every hdc call here runs under the call timeout.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from appatlas.devices._harmony_layout import Layout, parse_layout
from appatlas.devices.base import DeviceInfo, app_name
from appatlas.errors import (
    ActionRefused,
    AppatlasError,
    DeviceDisconnected,
    DeviceError,
    DeviceTimeout,
    HierarchyError,
    SelectorNotFound,
    UiServerDied,
)
from appatlas.types import Action, ActionKind, Screen, Selector

__all__ = ["HarmonyDevice", "connect", "list_devices"]

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_TIMEOUT = 20.0
DUMP_TRIES = 3
START_TIMEOUT = 30.0  # starting the daemon is ~8 hdc calls, an agent push and hmdriver2's 0.5 s pause
SELECTOR_WAIT_MS = 1000  # how long the daemon may wait for a selector to appear (a page still opening)
REMOTE_DIR = "/data/local/tmp"
_SERIAL = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_ABILITY = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,255}")
_GONE = 17000004  # the daemon's "component invisible or destroyed"
_REFUSED = (17000005, 401)  # "operation not supported", "bad argument"
_SWIPE_SPEED = 2000  # px/s, hmdriver2's default
# hmdriver2 picks the forward's local port as the first free one from 10000, then asks hdc for it:
# two devices starting at once (a campaign's threads) would pick the same port. One at a time.
_START_LOCK = threading.Lock()


def _hm() -> Any:
    """hmdriver2's modules, imported on first use (an optional dependency), with its DEBUG chatter off."""
    try:
        import hmdriver2
        from hmdriver2 import _client, exception, hdc
    except ImportError as exc:
        raise DeviceError("the HarmonyOS backend needs hmdriver2: pip install 'appatlas[harmony]' "
                          f"(or pip install hmdriver2); import failed: {exc}") from exc
    # hmdriver2 sets its logger to DEBUG with a stderr handler at import: every hdc line and RPC
    # message would be printed. appatlas logs what matters itself.
    logging.getLogger(hmdriver2.__name__).setLevel(logging.WARNING)
    return _client, exception, hdc


def _use_server(hdc_host: str | None, hdc_port: int | None) -> None:
    # hmdriver2 reads HDC_SERVER_HOST/PORT from the environment on every hdc call (no argument
    # reaches it), so a chosen server is one for the whole process.
    if hdc_port is not None:
        os.environ["HDC_SERVER_HOST"] = hdc_host or "127.0.0.1"
        os.environ["HDC_SERVER_PORT"] = str(hdc_port)


def _server() -> str:
    host, port = os.environ.get("HDC_SERVER_HOST"), os.environ.get("HDC_SERVER_PORT")
    return f"{host}:{port}" if host and port else "hdc's default server"


def _bounded(fn: Callable[[], T], timeout: float, what: str, serial: str = "") -> T:
    """fn() in a helper thread, DeviceTimeout after `timeout` s (hmdriver2 waits for hdc forever)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=run, name="hdc-call", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise DeviceTimeout(f"{serial or 'hdc'}: {what} got no answer from hdc within {timeout:g} s; the device "
                            "may be busy: retry, or connect with a longer timeout", serial=serial)
    if "error" in box:
        raise box["error"]
    return box["value"]


def list_devices(*, hdc_host: str | None = None, hdc_port: int | None = None, timeout: float = 10.0) -> list[str]:
    """The serials `hdc list targets` shows."""
    _, exception, hdc = _hm()
    _use_server(hdc_host, hdc_port)
    if shutil.which("hdc") is None:
        raise DeviceDisconnected("no `hdc` command on PATH: install the HarmonyOS SDK's toolchains (hdc) and put "
                                 "it on PATH, or serve virtual apps with appatlas' stand-in (`python -m appatlas.devices.fakehdc`)")
    try:
        return list(_bounded(hdc.list_devices, timeout, "list targets"))
    except exception.HdcError as exc:
        raise DeviceDisconnected(f"no hdc server answers at {_server()} ({exc}); start it (`hdc start`) and "
                                 "plug in the device") from exc


def connect(serial: str | None = None, *, app: str = "", hdc_host: str | None = None, hdc_port: int | None = None,
            timeout: float = DEFAULT_TIMEOUT, screenshots: bool = True) -> HarmonyDevice:
    """Connect to a HarmonyOS device through hdc; starts the UI test daemon on it (hmdriver2's agent).

    `serial` may be None when exactly one device is attached. `app` ("bundle" or
    "bundle/ability") is what `launch()` starts by default. `hdc_host`/`hdc_port` pick an hdc
    server (for the whole process: hmdriver2 reads them from the environment).
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    attached = list_devices(hdc_host=hdc_host, hdc_port=hdc_port, timeout=min(timeout, 10.0))
    if serial is None:
        if len(attached) != 1:
            problem = "no device is attached" if not attached else "several devices are attached"
            raise DeviceDisconnected(f"{problem} to {_server()} (seen: {', '.join(attached) or 'none'}); pass the "
                                     "serial (--device harmony:SERIAL), see `hdc list targets`")
        serial = attached[0]
    if not _SERIAL.fullmatch(serial):
        raise DeviceError(f"{serial[:80]!r} is not a device serial (letters, digits, . _ : -); hmdriver2 puts it "
                          "on a shell command line", serial="")
    if serial not in attached:
        raise DeviceDisconnected(f"device {serial} is not attached to {_server()}; attached: "
                                 f"{', '.join(attached) or 'none'} — see `hdc list targets`", serial=serial)
    return HarmonyDevice(serial, app=app, timeout=timeout, screenshots=screenshots)


class HarmonyDevice:
    """A HarmonyOS device driven by hmdriver2; build it with `connect()`."""

    platform = "harmony"  # what atlases made with it record (Atlas.create(..., platform=))

    def __init__(self, serial: str, *, app: str = "", timeout: float = DEFAULT_TIMEOUT,
                 screenshots: bool = True) -> None:
        self._client_mod, self._exc, _ = _hm()
        self.serial = serial
        self.app = app
        self.timeout = timeout
        self.screenshots = screenshots
        self.restarts = 0  # UI test daemon restarts so far
        self._abilities: dict[str, str] = {}
        self._tmp = tempfile.mkdtemp(prefix="appatlas-harmony-")
        self._remote = f"{REMOTE_DIR}/appatlas_{re.sub(r'[^A-Za-z0-9_.-]', '_', serial)}_layout.json"
        with self._guard("connect (start the UI test daemon)"):
            self._client = self._hdc_call(lambda: self._client_mod.HmClient(serial), "open")
            self._hdc = self._client.hdc
            self._start(max(timeout, START_TIMEOUT), "start the UI test daemon")
            self._client.sock.settimeout(timeout)
            size = self._rpc("Driver.getDisplaySize")
            model = self._hdc_call(self._hdc.model, "read the model") or ""
            sdk = self._hdc_call(self._hdc.sdk_version, "read the API level") or "0"
        self._info = DeviceInfo(serial=serial, model=model, width=int(size["x"]), height=int(size["y"]),
                                sdk=int(sdk) if str(sdk).isdigit() else 0)

    # --- Device protocol ------------------------------------------------------------------------

    def snapshot(self) -> Screen:
        """The screen now: the layout, the app in front and (unless disabled) a JPEG screenshot."""
        with self._guard("snapshot"):
            layout = self._dump()
            package, ability = layout.foreground(prefer=self.app.partition("/")[0])
            if not package:
                package, ability = self._current()
            image = self._jpeg() if self.screenshots else None
        return Screen(package, ability, layout.root, self._info.width, self._info.height, image)

    def perform(self, action: Action) -> None:
        """Do one action, aiming by selector with the recorded bounds' centre as the fallback."""
        kind = action.kind
        if kind is ActionKind.LAUNCH:
            self.launch(action.app)
            return
        with self._guard(action.describe()):
            if kind is ActionKind.BACK:
                self._rpc("Driver.pressBack")
            elif kind is ActionKind.SCROLL:
                self._scroll(action)
            else:
                assert action.target is not None  # Action validates this
                self._touch(action, action.target)

    def current_app(self) -> tuple[str, str]:
        """(bundle, ability) in front, from the mission list (`aa dump -l`)."""
        with self._guard("read the foreground app"):
            return self._current()

    def launch(self, app: str = "") -> None:
        """Start `app` ("bundle" or "bundle/ability"); "" is the app given to connect()."""
        app = app or self.app
        if not app:
            raise DeviceError("no app to launch: pass launch('com.example.app') or connect(..., app='com.example.app')",
                              serial=self.serial)
        bundle = app_name(app.partition("/")[0])[0]
        ability = app.partition("/")[2]
        with self._guard(f"launch {app}"):
            ability = ability or self._main_ability(bundle)
            if not _ABILITY.fullmatch(ability):
                raise DeviceError(f"{ability[:80]!r} is not an ability name; refusing to put it on a shell line",
                                  serial=self.serial)
            out = self._hdc_call(lambda: self._hdc.start_app(bundle, ability), f"launch {bundle}").output
            if "error" in out.lower():
                raise DeviceError(f"{self.serial}: `aa start` refused {bundle}/{ability}: {out.strip()[:200]}; is it "
                                  "installed (`hdc shell bm dump -a`)?", serial=self.serial)

    def stop_app(self, package: str = "") -> None:
        package = package or self.app.partition("/")[0]
        if not package:
            raise DeviceError("no app to stop: pass stop_app('com.example.app') or connect(..., app=…)",
                              serial=self.serial)
        bundle = app_name(package)[0]
        with self._guard(f"stop {bundle}"):
            self._hdc_call(lambda: self._hdc.stop_app(bundle), f"stop {bundle}")

    def info(self) -> DeviceInfo:
        """Serial, model, screen size and API level, read once at connect."""
        return self._info

    def close(self) -> None:
        """Close the RPC socket and remove the port forward (the daemon keeps running on the device)."""
        try:
            _bounded(self._client.release, min(self.timeout, 5.0), "release", self.serial)
        except (AppatlasError, OSError) as exc:
            log.debug("closing %s: %s", self.serial, exc)
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> HarmonyDevice:
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
        except (self._exc.HdcError, self._exc.DeviceNotFoundError, self._exc.InvokeHypiumError, OSError,
                ValueError, KeyError, TypeError) as exc:
            raise self._translate(exc, what) from exc

    def _translate(self, exc: BaseException, what: str) -> DeviceError:
        s = self.serial
        state = self._presence()
        if state == "no server":
            return DeviceDisconnected(f"{s}: no hdc server answers at {_server()} (during {what}); start it "
                                      "(`hdc start`) and reconnect", serial=s)
        if state != "device":
            return DeviceDisconnected(f"{s} disconnected during {what} (not in `hdc list targets`); replug the "
                                      "cable or `hdc tconn` it, then connect again", serial=s)
        if isinstance(exc, self._exc.InvokeHypiumError):
            code = _code(exc)
            if code == _GONE:
                return SelectorNotFound(f"{s}: the component went away during {what} (the page changed); "
                                        "re-crawl the screen or edit the test", serial=s)
            if code in _REFUSED:
                return ActionRefused(f"{s}: the screen did not take {what}: {str(exc)[:200]}", serial=s)
        return DeviceError(f"{s}: {what} failed: {type(exc).__name__}: {str(exc)[:300]}", serial=s)

    def _presence(self) -> str:
        """device, absent or no server, as `hdc list targets` says now."""
        try:
            return "device" if self.serial in list_devices(timeout=min(self.timeout, 5.0)) else "absent"
        except DeviceError:
            return "no server"

    # --- hdc and RPC calls ----------------------------------------------------------------------

    def _hdc_call(self, fn: Callable[[], T], what: str) -> T:
        return _bounded(fn, self.timeout, what, self.serial)

    def _rpc(self, api: str, *, this: str = "Driver#0", args: list[Any] | None = None) -> Any:
        """One call to the UI test daemon; a dead daemon is restarted once and the call repeated."""
        try:
            return self._invoke(api, this, args or [])
        except self._exc.InvokeHypiumError:
            raise
        except TimeoutError as exc:  # sending did not finish in time
            self._reconnect()
            raise DeviceTimeout(f"{self.serial}: {api} could not be sent to the UI test daemon within "
                                f"{self.timeout:g} s; retry, or connect with a longer timeout",
                                serial=self.serial) from exc
        except (OSError, ValueError) as exc:
            if self._presence() != "device":
                raise
            self._restart(exc)
            try:
                return self._invoke(api, this, args or [])
            except (OSError, ValueError) as again:
                raise UiServerDied(f"the UI test daemon on {self.serial} stopped answering and did not come back "
                                   f"after a restart ({type(again).__name__}: {again}); close other hypium/uitest "
                                   "sessions, then reconnect, or reboot the device", serial=self.serial) from again

    def _invoke(self, api: str, this: str, args: list[Any]) -> Any:
        sock = self._client.sock
        if sock is None:
            raise ConnectionError("no connection to the UI test daemon")
        t0 = time.monotonic()
        try:
            return self._client.invoke(api, this=this, args=args).result
        except json.JSONDecodeError:
            # hmdriver2 turns a receive timeout into an empty reply: tell a silent daemon from a dead one
            if time.monotonic() - t0 >= 0.9 * (sock.gettimeout() or self.timeout):
                self._reconnect()  # a late answer must not be read as the next call's
                raise DeviceTimeout(f"{self.serial}: {api} got no answer from the UI test daemon within "
                                    f"{self.timeout:g} s; retry, or connect with a longer timeout",
                                    serial=self.serial) from None
            raise

    def _start(self, timeout: float, what: str) -> None:
        with _START_LOCK:
            _bounded(self._client.start, timeout, what, self.serial)

    def _reconnect(self) -> None:
        try:
            if self._client.sock is not None:
                self._client.sock.close()
            self._client._connect_sock()
            self._client.sock.settimeout(self.timeout)
        except OSError as exc:
            log.debug("%s: reconnecting to the daemon failed: %s", self.serial, exc)

    def _restart(self, cause: BaseException) -> None:
        self.restarts += 1
        log.warning("%s: the UI test daemon stopped answering (%s); restarting it (restart %d)", self.serial,
                    type(cause).__name__, self.restarts)
        try:
            if self._client.sock is not None:
                self._client.sock.close()
                self._client.sock = None
            self._start(max(self.timeout, START_TIMEOUT), "restart the UI test daemon")
            sock = self._client.sock
            if sock is None:
                raise ConnectionError("the restarted daemon gave no connection")
            sock.settimeout(self.timeout)
        except (OSError, ValueError, self._exc.HdcError) as exc:
            raise UiServerDied(f"the UI test daemon on {self.serial} died and could not be restarted ({exc}); "
                               "close other hypium/uitest sessions, then reconnect, or reboot the device",
                               serial=self.serial) from exc

    # --- pieces ---------------------------------------------------------------------------------

    def _dump(self) -> Layout:
        # The two hdc calls hmdriver2's dump_hierarchy makes, with a temp file of our own (its
        # version leaves one per call and turns a bad file into {}).
        local = os.path.join(self._tmp, "layout.json")
        for attempt in range(1, DUMP_TRIES + 1):
            self._hdc_call(lambda: self._hdc.shell(f"uitest dumpLayout -p {self._remote}"), "dump the layout")
            self._hdc_call(lambda: self._hdc.recv_file(self._remote, local), "fetch the layout")
            with open(local, "rb") as f:
                data = f.read()
            try:
                layout = parse_layout(data, source=f"the layout of {self.serial}", width=self._info.width,
                                      height=self._info.height)
            except HierarchyError as exc:
                if attempt == DUMP_TRIES:
                    raise DeviceError(f"{self.serial} returned an unusable layout {DUMP_TRIES} times ({exc.problem}); "
                                      "the UI is busy: wait and retry", serial=self.serial) from exc
                log.warning("%s: unusable layout (try %d of %d): %s", self.serial, attempt, DUMP_TRIES, exc.problem)
                time.sleep(0.05 * 2 ** attempt)
                continue
            if layout.root.children:
                return layout
            if attempt < DUMP_TRIES:
                log.warning("%s: empty layout (try %d of %d)", self.serial, attempt, DUMP_TRIES)
                time.sleep(0.05 * 2 ** attempt)
        raise DeviceError(f"{self.serial} returned an empty layout {DUMP_TRIES} times: the UI is busy (an "
                          "animation); wait and retry", serial=self.serial)

    def _jpeg(self) -> bytes:
        """The screenshot as `snapshot_display` encodes it (JPEG), through hmdriver2's three hdc calls."""
        local = os.path.join(self._tmp, "screen.jpeg")
        self._hdc_call(lambda: self._hdc.screenshot(local), "take a screenshot")
        with open(local, "rb") as f:
            return f.read()

    def _current(self) -> tuple[str, str]:
        bundle, ability = self._hdc_call(self._hdc.current_app, "read the mission list")
        return bundle or "", ability or ""

    def _main_ability(self, bundle: str) -> str:
        """The ability `aa start` needs for a bundle: its main module's main ability (`bm dump -n`)."""
        if bundle not in self._abilities:
            out = self._hdc_call(lambda: self._hdc.shell(f"bm dump -n {bundle}").output, f"read {bundle}'s abilities")
            try:
                info = json.loads(out[out.find("{"):out.rfind("}") + 1])
                main = info.get("mainEntry", "")
                module = next((m for m in info.get("hapModuleInfos", []) if m.get("name") == main),
                              (info.get("hapModuleInfos") or [{}])[0])
                self._abilities[bundle] = str(module.get("mainAbility") or "EntryAbility")
            except (ValueError, AttributeError, TypeError):
                raise DeviceError(f"{self.serial}: {bundle} is not installed or has no main ability "
                                  f"(`bm dump -n {bundle}`: {out.strip()[:120]!r}); pass bundle/ability",
                                  serial=self.serial) from None
        return self._abilities[bundle]

    def _find(self, sel: Selector) -> str | None:
        """The daemon's Component for `sel`, tried as `locate` does (then without the text), or None."""
        tries = [(sel.resource_id, sel.content_desc, sel.text)]
        if sel.text and (sel.resource_id or sel.content_desc):
            tries.append((sel.resource_id, sel.content_desc, ""))
        wait = SELECTOR_WAIT_MS
        for rid, desc, text in tries:
            if not (rid or desc or text or sel.class_name) or (not (rid or desc or text) and
                                                              (sel.resource_id or sel.content_desc or sel.text)):
                continue
            on = "On#seed"
            for api, value in (("On.id", rid), ("On.description", desc), ("On.text", text),
                               ("On.type", sel.class_name)):
                if value:
                    on = self._rpc(api, this=on, args=[value])
            if wait and self._rpc("Driver.waitForComponent", args=[on, wait]) is None:
                wait = 0
                continue
            found = self._rpc("Driver.findComponents", args=[on]) or []
            if sel.index < len(found):
                return str(found[sel.index])
            if found and sel.bounds is None:
                return str(found[-1])
            if found:
                return None
        return None

    def _point(self, sel: Selector) -> tuple[int, int]:
        if sel.bounds is None:
            raise SelectorNotFound(f"{self.serial}: no component matches {sel.describe()} and the action has no "
                                   "bounds to fall back on; re-crawl the screen or edit the test", serial=self.serial)
        b, w, h = sel.bounds, self._info.width, self._info.height
        x1, y1, x2, y2 = max(0, b.x1), max(0, b.y1), min(w, b.x2), min(h, b.y2)
        x, y = ((x1 + x2) // 2, (y1 + y2) // 2) if x2 > x1 and y2 > y1 else b.center
        log.info("%s: %s not found by selector; touching its recorded bounds at (%d, %d)", self.serial,
                 sel.describe(), x, y)
        return x, y

    def _touch(self, action: Action, sel: Selector) -> None:
        comp = self._find(sel)
        kind = action.kind
        if comp is not None:
            api = {ActionKind.TYPE: "Component.inputText", ActionKind.LONG_TAP: "Component.longClick"}.get(
                kind, "Component.click")
            self._rpc(api, this=comp, args=[action.text] if kind is ActionKind.TYPE else [])
            return
        x, y = self._point(sel)
        if kind is ActionKind.TYPE:
            self._rpc("Driver.inputText", args=[{"x": x, "y": y}, action.text])
        else:
            self._rpc("Driver.longClick" if kind is ActionKind.LONG_TAP else "Driver.click", args=[x, y])

    def _scroll(self, action: Action) -> None:
        comp = self._find(action.target) if action.target is not None else None
        if comp is not None:
            b = self._rpc("Component.getBounds", this=comp)
            x1, y1, x2, y2 = int(b["left"]), int(b["top"]), int(b["right"]), int(b["bottom"])
        else:
            x1, y1, x2, y2 = 0, 0, self._info.width, self._info.height
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        near_y, far_y = y1 + (y2 - y1) // 4, y2 - (y2 - y1) // 4
        near_x, far_x = x1 + (x2 - x1) // 4, x2 - (x2 - x1) // 4
        # The finger moves against the content: to see what is below, it swipes up.
        fx, fy, tx, ty = {"down": (cx, far_y, cx, near_y), "up": (cx, near_y, cx, far_y),
                          "right": (far_x, cy, near_x, cy), "left": (near_x, cy, far_x, cy)}[action.direction]
        self._rpc("Driver.swipe", args=[fx, fy, tx, ty, _SWIPE_SPEED])


def _code(exc: BaseException) -> int | None:
    """The daemon's error code in an InvokeHypiumError ({"code": …, "message": …})."""
    payload = exc.args[0] if exc.args else None
    if isinstance(payload, dict):
        code = payload.get("code")
        return code if isinstance(code, int) else None
    m = re.search(r"'code':\s*(\d+)", str(payload))
    return int(m.group(1)) if m else None
