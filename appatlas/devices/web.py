"""The Device protocol on a web app, through Playwright and the system's Chromium.

    from appatlas.devices.web import connect

    page = connect("http://127.0.0.1:8000/", allow_origins=["https://auth.example.com"])
    screen = page.snapshot()        # Screen: the DOM's roles, names, ids, boxes, flags; a JPEG of the viewport
    page.perform(action)            # tap / type / scroll / back / launch, aimed by selector

What a phone's words mean here:

  package    the app's name (default: the start URL's host) on the app's origins (the start URL's, and
             each `allow_origins`); another origin's host when the page left them (the crawler then
             goes back, as when a tap leaves an Android app); "" on about:blank
  activity   the URL's route: its path with numbers and ids as {n} / {id}, plus a `#/…` hash route
  launch     open the start URL in the device's one tab (popups closed); stop_app closes every tab
  back       answers an open alert/confirm with Cancel, closes a modal dialog (Escape), closes a tab
             that has no history (a popup) and returns to its opener, else goes back in history;
             back from the first page leaves the app (about:blank), as back from an app's first screen
  tap        a click (a <select>'s option is selected); type fills a field (a trailing "\\n" presses
             Enter); long tap is a right click (the context menu); scroll scrolls the element or page

Hazards, handled as on a phone:
  alert / confirm / prompt   shown as a dialog window (`appatlas_dialog_*` ids: message, input, OK,
                             Cancel) above the blocked page; tapping OK / Cancel answers it
  new tabs and popups        become the current page; closing them (or back) returns to the opener
  other origins              reported as another package: left and returned from
  downloads                  saved to a temporary folder, listed in `WebDevice.downloads`; the page stays;
                             the folder is removed when the device closes (read the files before)
  an uncaught script error   from the app's own origins, or a 5xx page: AppCrashed on the next snapshot
                             (errors of other origins' scripts, such as ads, are only logged)
  slow pages                 a navigation past `timeout` is DeviceTimeout; an element that cannot be
                             clicked within ACTION_TIMEOUT (hidden, covered, disabled) is ActionRefused
  a closed browser           DeviceDisconnected; nothing answering at the URL: DeviceDisconnected too

Playwright is imported only when a device connects: `pip install 'appatlas[web]'`; the browser is the
system's Chromium (`apt-get install chromium`), never one Playwright downloads.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from appatlas.devices._web_dom import (
    DIALOG_IDS,
    FRAMES_READY_JS,
    PICK_JS,
    WALK_JS,
    build_root,
    frame_of,
    opens_tab,
)
from appatlas.devices._web_host import BrowserHost
from appatlas.devices.base import DeviceInfo, locate
from appatlas.errors import (
    ActionRefused,
    AppatlasError,
    AppCrashed,
    DeviceDisconnected,
    DeviceError,
    DeviceTimeout,
    SelectorNotFound,
)
from appatlas.types import Action, ActionKind, Bounds, Screen, Selector, Widget

__all__ = ["ACTION_TIMEOUT", "WebDevice", "connect", "route_of", "web_url"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 20.0  # seconds a navigation may take
ACTION_TIMEOUT = 3.0  # seconds an element may take to become clickable
QUIET_S = 0.03  # after an action, the network must be quiet this long ...
QUIET_MAX_S = 2.0  # ... but no longer than this is waited (pages that poll forever)
DEFAULT_VIEWPORT = (1280, 800)
_serials = itertools.count(1)
_NUMBER = re.compile(r"^\d+$")
_ID = re.compile(r"^(?=.*\d)[0-9a-f-]{8,}$|^[0-9a-f]{24,}$", re.IGNORECASE)
_UNREACHABLE = ("ERR_CONNECTION_REFUSED", "ERR_NAME_NOT_RESOLVED", "ERR_ADDRESS_UNREACHABLE",
                "ERR_INTERNET_DISCONNECTED", "ERR_CONNECTION_RESET", "ERR_EMPTY_RESPONSE")
_CLOSED = ("has been closed", "Target closed", "Browser closed", "Connection closed")
_DETACHED = "Not attached to an active page"  # CDP, on a tab that is going away or between two documents
# A document being replaced while it is read: its context destroyed, its frame detached for a moment, or
# no documentElement yet (seen in `demo --web` under load). Reading again once the new one is parsed works.
_TRANSIENT = ("context was destroyed", "navigat", _DETACHED, "Cannot read properties of null")


_NAMED = re.compile(r"^(?P<name>[A-Za-z0-9_.-]{1,40})=(?P<url>https?://.*)$")


def web_url(spec: str) -> str:
    """The URL of a `web:URL` (or `web:NAME=URL`) device argument or a bare http(s) URL; ValueError otherwise."""
    url = spec[4:] if spec.startswith("web:") else spec
    named = _NAMED.match(url)
    url = named.group("url") if named else url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{spec!r} is not a web app's address; give web:http://host[:port]/path")
    return url


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def route_of(url: str) -> str:
    """The page's "activity": its path with numbers and ids generalised, and a hash route if it has one.

    /notes/12/edit -> /notes/{n}/edit; /u/5f3a9c0e-77aa -> /u/{id}; /app#/settings/3 -> /app#/settings/{n}
    """
    parts = urlsplit(url)

    def general(path: str) -> str:
        segs = ["{n}" if _NUMBER.match(s) else "{id}" if _ID.match(s) else s for s in path.split("/")]
        return "/".join(segs).rstrip("/") or "/"

    route = general(parts.path or "/")
    if parts.fragment.startswith(("/", "!/")):
        route += "#" + general(parts.fragment.lstrip("!"))
    return route


def connect(url: str, *, serial: str | None = None, app: str = "", allow_origins: tuple[str, ...] | list[str] = (),
            timeout: float = DEFAULT_TIMEOUT, screenshots: bool = True,
            viewport: tuple[int, int] = DEFAULT_VIEWPORT, executable: str | None = None,
            headless: bool = True) -> WebDevice:
    """A new browser context (its own cookies and storage) showing `url`; see the module doc.

    `url` may be `NAME=URL` (`--device web:alice=https://app.example.com/`): NAME is the device's
    serial, so a campaign can run two contexts of one site (`web:a=URL`, `web:b=URL`).

    `app` names the app in atlases (default: the URL's host); `allow_origins` are more origins that are
    part of the app (a login service, a CDN-hosted page); `executable` is the Chromium to use
    (default: $APPATLAS_CHROMIUM or `chromium` on PATH).
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    named = _NAMED.match(url[4:] if url.startswith("web:") else url)
    serial = serial or (named.group("name") if named else f"web-{next(_serials)}")
    return WebDevice(web_url(url), serial=serial, app=app,
                     allow_origins=tuple(web_url(o) for o in allow_origins), timeout=timeout,
                     screenshots=screenshots, viewport=viewport, executable=executable, headless=headless)


class WebDevice:
    """One browser context driven as a device; build it with `connect()`."""

    platform = "web"  # what atlases made with it record (Atlas.create(..., platform=))

    def __init__(self, url: str, *, serial: str, app: str, allow_origins: tuple[str, ...], timeout: float,
                 screenshots: bool, viewport: tuple[int, int], executable: str | None, headless: bool) -> None:
        self.url, self.serial, self.timeout, self.screenshots = url, serial, timeout, screenshots
        self.app = app or urlsplit(url).hostname or "web"
        self.origins = frozenset({_origin(url), *(_origin(o) for o in allow_origins)})
        # What an atlas made with this device keeps, so a later crawl or run connects the same way
        # (devices.select.remember_device / device_options).
        self.options = {"allow_origins": sorted(self.origins - {_origin(url)})}
        self.viewport = viewport
        self.downloads: list[dict[str, str]] = []  # {"url", "file"} of each download, in order
        self.script_errors: list[str] = []  # every uncaught script error seen (the app's and others')
        self._download_dir = Path(tempfile.mkdtemp(prefix="appatlas-downloads-"))
        self._pages: list[Any] = []  # open tabs, the current one last
        self._inflight: dict[Any, int] = {}
        self._open_requests: set[int] = set()
        self._saving: set[asyncio.Future] = set()  # downloads being written
        self._failed: dict[Any, str] = {}  # page -> host whose navigation failed (the page shows chrome-error)
        self._crashes: list[str] = []  # app failures not yet reported
        self._dialog: Any = None  # an open alert/confirm/prompt
        self._dialog_event: asyncio.Event | None = None
        self._blocked: asyncio.Future | None = None  # the action the open dialog holds up
        self._prompt = ""
        self._last: dict[str, Any] | None = None  # the last walk (shown under a JS dialog)
        self._last_png: bytes | None = None
        self._context: Any = None
        self._host = BrowserHost.acquire(executable, headless=headless, timeout=max(timeout, 30.0))
        try:
            self._call(self._open(), "open a browser context")
            self._call(self._launch(""), f"open {url}")
        except BaseException:
            self.close()
            raise

    # --- Device protocol ------------------------------------------------------------------------

    def snapshot(self) -> Screen:
        """The current tab as a Screen (a JS dialog, when one is open, as a window above it)."""
        return self._call(self._snapshot(self.screenshots), "snapshot")

    def perform(self, action: Action) -> None:
        """Do one action (see the module doc for what each kind means on a page)."""
        kind = action.kind
        if kind is ActionKind.LAUNCH:
            self.launch(action.app)
            return
        self._call(self._perform(action), action.describe())

    def current_app(self) -> tuple[str, str]:
        page = self._page
        return self._where(page) if page is not None else ("", "")

    def launch(self, app: str = "") -> None:
        """Open the start URL ("" or the app's name) or another http(s) URL in the device's one tab."""
        self._call(self._launch(app), f"launch {app or self.url}")

    def stop_app(self, package: str = "") -> None:
        """Close every tab (the page's memory is gone; cookies and storage stay, as an app's data does)."""
        self._call(self._stop(), "stop")

    def info(self) -> DeviceInfo:
        return DeviceInfo(serial=self.serial, model=f"Chromium {self._host.version}", width=self.viewport[0],
                          height=self.viewport[1])

    # --- more than the protocol -------------------------------------------------------------------

    def press(self, key: str) -> None:
        """Press a key on the focused element (Playwright key names: "Enter", "Escape", "Control+A", …)."""
        self._call(self._act(lambda: self._page.keyboard.press(key)), f"press {key}")

    def evaluate(self, script: str, arg: Any = None) -> Any:
        """Run a script in the current page and return its JSON result (for tests and checks, not actions)."""
        return self._call(self._page.evaluate(script, arg), "evaluate a script")

    def cookies(self) -> dict[str, str]:
        """The cookies the start URL's site sees, by name (a web app's session, as a phone's app data)."""
        return {c["name"]: c["value"] for c in self._call(self._context.cookies(self.url), "read cookies")}

    def get_json(self, path: str) -> Any:
        """GET `path` (relative to the start URL; "/api/state" is from the site's root) with this device's
        cookies and return the JSON answer (an app's state API)."""
        async def get() -> Any:
            response = await self._context.request.get(urljoin(self.url, path))
            return await response.json()

        return self._call(get(), f"GET {path}")

    def close(self) -> None:
        """Close the browser context (the browser stops with the last device)."""
        if self._context is not None:
            try:
                self._call(self._context.close(), "close", timeout=10.0)
            except AppatlasError as exc:
                log.debug("closing %s: %s", self.serial, exc)
            self._context = None
        if self._host is not None:
            self._host.release()
            self._host = None  # type: ignore[assignment]
        # Every device made its own folder; left behind, a test suite or a campaign fills /tmp with them.
        shutil.rmtree(self._download_dir, ignore_errors=True)

    def __enter__(self) -> WebDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the one boundary for Playwright's errors --------------------------------------------------

    def _call(self, coro: Any, what: str, *, timeout: float | None = None) -> Any:
        if self._host is None:
            if hasattr(coro, "close"):
                coro.close()  # never to be awaited
            raise DeviceDisconnected(f"{self.serial} is closed; connect again", serial=self.serial)
        return self._host.run(self._guard(coro, what), timeout=(timeout or self.timeout) + ACTION_TIMEOUT + 5)

    async def _guard(self, coro: Any, what: str) -> Any:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        try:
            return await coro
        except AppatlasError:
            raise
        except PlaywrightTimeout as exc:
            raise DeviceTimeout(f"{self.serial}: {what} got no answer within {self.timeout:g} s (a slow page or "
                                "server): retry, or connect with a longer timeout", serial=self.serial) from exc
        except PlaywrightError as exc:
            raise self._translate(exc, what) from exc

    def _translate(self, exc: Exception, what: str) -> DeviceError:
        s, msg = self.serial, str(exc)
        if any(m in msg for m in _UNREACHABLE):
            code = next(m for m in _UNREACHABLE if m in msg)
            return DeviceDisconnected(f"{s}: nothing answers at {self.url} ({code}) during {what}; start the site "
                                      "or check the address", serial=s)
        if any(m in msg for m in _CLOSED):
            return DeviceDisconnected(f"{s}: the browser or its page was closed during {what}; connect again",
                                      serial=s)
        return DeviceError(f"{s}: {what} failed: {msg.splitlines()[0][:300] if msg else type(exc).__name__}",
                           serial=s)

    # --- pages and their events ---------------------------------------------------------------------

    @property
    def _page(self) -> Any:
        # A tab that closed itself (window.close()) may not have reported its close event yet.
        while self._pages and self._pages[-1].is_closed():
            self._pages.pop()
        return self._pages[-1] if self._pages else None

    async def _open(self) -> None:
        self._dialog_event = asyncio.Event()
        self._context = await self._host.browser.new_context(
            viewport={"width": self.viewport[0], "height": self.viewport[1]}, accept_downloads=True)
        self._context.set_default_timeout(ACTION_TIMEOUT * 1000)
        self._context.set_default_navigation_timeout(self.timeout * 1000)
        self._context.on("page", self._on_page)

    def _on_page(self, page: Any) -> None:
        self._pages.append(page)
        self._inflight[page] = 0
        page.on("dialog", self._on_dialog)
        page.on("pageerror", lambda err: self._on_script_error(page, err))
        page.on("crash", lambda _: self._crashes.append(f"the tab crashed on {page.url}"))
        page.on("close", lambda _: self._on_close(page))
        page.on("download", self._on_download)
        page.on("request", lambda r: self._count(page, r, +1))
        page.on("requestfinished", lambda r: self._count(page, r, -1))
        page.on("requestfailed", lambda r: self._on_request_failed(page, r))
        page.on("response", lambda r: self._on_response(page, r))

    def _on_close(self, page: Any) -> None:
        if page in self._pages:
            self._pages.remove(page)
        for table in (self._inflight, self._failed):
            table.pop(page, None)

    def _count(self, page: Any, request: Any, step: int) -> None:
        if request.resource_type in ("eventsource", "websocket"):
            return  # long-lived by design: never "quiet"
        # A request ends at its response, its end or its failure, whichever comes first: Chromium never
        # reports the end of a fetch whose body the page does not read.
        key = id(request)
        if step > 0:
            self._open_requests.add(key)
        elif key in self._open_requests:
            self._open_requests.discard(key)
        else:
            return
        self._inflight[page] = max(0, self._inflight.get(page, 0) + step)
        if step > 0 and request.is_navigation_request() and request.frame == page.main_frame:
            self._failed.pop(page, None)

    def _on_request_failed(self, page: Any, request: Any) -> None:
        self._count(page, request, -1)
        if request.is_navigation_request() and request.frame == page.main_frame:
            self._failed[page] = urlsplit(request.url).netloc or "chrome-error"

    def _on_response(self, page: Any, response: Any) -> None:
        request = response.request
        self._count(page, request, -1)
        if (response.status >= 500 and request.is_navigation_request() and request.frame == page.main_frame
                and _origin(response.url) in self.origins):
            self._crashes.append(f"the server answered {response.status} for {route_of(response.url)}")

    def _on_script_error(self, page: Any, err: Any) -> None:
        text = f"{getattr(err, 'name', '') or 'Error'}: {getattr(err, 'message', '') or err}"
        self.script_errors.append(text)
        stack = getattr(err, "stack", "") or ""
        urls = re.findall(r"https?://[^\s):]+(?::\d+)?", stack)
        # An app's own bug, not an ad's or a tracker's: the stack runs through the app's origins.
        if not urls or any(_origin(u) in self.origins for u in urls):
            self._crashes.append(f"uncaught {text} on {route_of(page.url)}")
        else:
            log.info("%s: a script of another origin failed (ignored): %s", self.serial, text)

    def _on_dialog(self, dialog: Any) -> None:
        if dialog.type == "beforeunload":  # "leave this page?": a tester leaves
            asyncio.ensure_future(dialog.accept())
            return
        self._dialog, self._prompt = dialog, dialog.default_value or ""
        assert self._dialog_event is not None
        self._dialog_event.set()

    def _on_download(self, download: Any) -> None:
        name = Path(download.suggested_filename or "download").name or "download"
        path = self._download_dir / f"{len(self.downloads) + 1:03d}-{name}"
        self.downloads.append({"url": download.url, "file": str(path)})
        self._saving.add(asyncio.ensure_future(download.save_as(path)))

    def _where(self, page: Any) -> tuple[str, str]:
        url = page.url
        if not url or url.startswith("about:"):
            return "", ""
        if url.startswith("chrome-error:"):
            return self._failed.get(page, "chrome-error"), ""
        parts = urlsplit(url)
        if _origin(url) in self.origins:
            return self.app, route_of(url)
        return parts.netloc, route_of(url)

    # --- observing ---------------------------------------------------------------------------------

    async def _race(self, make: Any) -> tuple[bool, Any]:
        """Run `make()` until it ends or the page opens a JS dialog; (True, result) or (False, the pending task)."""
        assert self._dialog_event is not None
        task = asyncio.ensure_future(make())
        waiter = asyncio.ensure_future(self._dialog_event.wait())
        try:
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED,
                                         timeout=self.timeout + ACTION_TIMEOUT)
        finally:
            waiter.cancel()
        if task in done:
            return True, task.result()
        if self._dialog is not None:
            return False, task
        task.cancel()
        raise DeviceTimeout(f"{self.serial}: the page did not answer within {self.timeout:g} s", serial=self.serial)

    async def _walk(self) -> Any:
        """One walk of the current page, again when a navigation replaced the document meanwhile."""
        return await self._evaluate(WALK_JS, {}, tries=4)

    async def _evaluate(self, js: str, arg: Any = None, *, page: Any = None, tries: int = 3) -> Any:
        """`evaluate(js)` on `page` (default: the current page, read again each try), again once a document
        that was being replaced is parsed (see _TRANSIENT)."""
        from playwright.async_api import Error as PlaywrightError

        for attempt in range(tries):
            at = page if page is not None else self._page
            try:
                return await (at.evaluate(js) if arg is None else at.evaluate(js, arg))
            except PlaywrightError as exc:
                if not any(m in str(exc) for m in _TRANSIENT) or attempt == tries - 1 or \
                        (page is not None and page.is_closed()):
                    raise
                await self._parsed(at)
        raise AssertionError("unreachable")

    async def _parsed(self, page: Any) -> None:
        """Wait until `page` shows a parsed document again (after a transient error; see _TRANSIENT)."""
        from playwright.async_api import Error as PlaywrightError

        await asyncio.sleep(0.05)
        try:
            await page.wait_for_load_state("domcontentloaded", timeout=self.timeout * 1000)
        except PlaywrightError:
            pass  # it closed or is still between documents: the caller's next try tells

    async def _snapshot(self, shot: bool) -> Screen:
        if self._dialog is not None:
            return self._dialog_screen()
        self._raise_crash()
        page = self._page
        if page is None:
            return self._empty_screen()
        done, walk = await self._race(self._walk)
        if not done:
            return self._dialog_screen()
        png = None
        if shot:
            done, png = await self._race(lambda: page.screenshot(type="jpeg", quality=70))
            if not done:
                return self._dialog_screen()
        self._raise_crash()  # a script that failed while the page was read
        self._last, self._last_png = walk, png
        package, activity = self._where(page)
        root, _ = build_root(walk, package=package)
        return Screen(package, activity, root, int(walk["vw"]), int(walk["vh"]), png)

    def _empty_screen(self) -> Screen:
        w, h = self.viewport
        return Screen("", "", Widget("hierarchy", Bounds(0, 0, w, h)), w, h, None)

    def _dialog_screen(self) -> Screen:
        """The page as last seen, blocked, under a window that shows the open alert/confirm/prompt."""
        d, (w, h) = self._dialog, self.viewport
        page = self._page
        package, activity = self._where(page) if page is not None else ("", "")
        x1, y1, x2, y2 = w // 2 - 220, h // 3 - 90, w // 2 + 220, h // 3 + 90
        kids = [Widget("web.TextView", Bounds(x1 + 20, y1 + 20, x2 - 20, y1 + 80), DIALOG_IDS["message"],
                       text=(d.message or "")[:300], package=package)]
        if d.type == "prompt":
            kids.append(Widget("web.EditText", Bounds(x1 + 20, y1 + 85, x2 - 20, y1 + 115), DIALOG_IDS["input"],
                               text=self._prompt, package=package, clickable=True, editable=True, focused=True))
        if d.type in ("confirm", "prompt"):
            kids.append(Widget("web.Button", Bounds(x2 - 200, y2 - 50, x2 - 110, y2 - 15), DIALOG_IDS["dismiss"],
                               text="Cancel", package=package, clickable=True))
        kids.append(Widget("web.Button", Bounds(x2 - 100, y2 - 50, x2 - 20, y2 - 15), DIALOG_IDS["accept"],
                           text="OK", package=package, clickable=True))
        window = Widget("web.Dialog", Bounds(x1, y1, x2, y2), f"appatlas_dialog_{d.type}", package=package,
                        children=tuple(kids))
        walk = self._last or {"nodes": [], "windows": [{"c": "web.Document", "b": [0, 0, w, h]}], "vw": w, "vh": h}
        root, _ = build_root(walk, package=package, extra_windows=(window,), disable=True)
        return Screen(package, activity, root, w, h, self._last_png)

    def _raise_crash(self) -> None:
        if self._crashes:
            what = "; ".join(dict.fromkeys(self._crashes))[:400]
            self._crashes.clear()
            raise AppCrashed(f"{self.app} failed on {self.serial}: {what}. Launch it again; the browser console "
                             "(or the server's log, for a 5xx) has the stack", serial=self.serial)

    # --- acting ------------------------------------------------------------------------------------

    async def _perform(self, action: Action) -> None:
        if self._dialog is not None:
            await self._on_js_dialog(action)
            return
        if self._page is None:
            raise ActionRefused(f"{self.serial}: no page is open; launch() first", serial=self.serial)
        kind = action.kind
        if action.target is not None and action.target.resource_id.startswith("appatlas_dialog_"):
            # aimed at a JS dialog that is gone: never fall back to the page under where it was
            raise SelectorNotFound(f"{self.serial}: no alert/confirm/prompt is open for {action.target.describe()}",
                                   serial=self.serial)
        if kind is ActionKind.BACK:
            await self._back()
        elif kind is ActionKind.SCROLL:
            await self._scroll(action)
        else:
            assert action.target is not None  # Action validates this
            await self._touch(action, action.target)
        await self._settle()

    async def _act(self, make: Any) -> None:
        """Run an action; when it opens a JS dialog, it stays pending until the dialog is answered.
        (`_perform` waits for the page to settle afterwards.)"""
        done, result = await self._race(make)
        if not done:
            self._blocked = result

    async def _element(self, sel: Selector) -> tuple[Any, Widget, bool]:
        """(element handle or None, the widget `sel` names on the page now, whether clicking it opens a tab)."""
        done, walk = await self._race(self._walk)
        if not done:
            raise ActionRefused(f"{self.serial}: a dialog opened; answer it first", serial=self.serial)
        package, activity = self._where(self._page)
        root, built = build_root(walk, package=package)
        screen = Screen(package, activity, root, int(walk["vw"]), int(walk["vh"]))
        widget = locate(sel, screen, serial=self.serial)
        index = next((i for i, w in enumerate(built) if w is widget), None)
        if index is None:
            return None, widget, False
        element = await self._pick(walk, index)
        if element is None:
            raise ActionRefused(f"{self.serial}: the page changed while {sel.describe()} was sought; look again",
                                serial=self.serial)
        return element, widget, opens_tab(walk, index)

    async def _pick(self, walk: dict[str, Any], index: int) -> Any:
        """The element handle of walked node `index`, made in the frame whose document holds it (a same-origin
        iframe's element is clicked, filled and scrolled into view by Playwright in that frame); None if gone."""
        frame = self._page.main_frame
        holder = frame_of(walk, index)
        if holder >= 0:
            iframe = await self._pick(walk, holder)
            frame = await iframe.content_frame() if iframe is not None else None
            if frame is None:
                return None
        return (await frame.evaluate_handle(PICK_JS, index)).as_element()

    async def _touch(self, action: Action, sel: Selector) -> None:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        element, widget, new_tab = await self._element(sel)
        if element is None:  # the selector fell back to a point (a window, a gap): tap there
            if action.kind is ActionKind.TYPE:
                raise ActionRefused(f"{self.serial}: nothing to type into at {sel.describe()}", serial=self.serial)
            x, y = widget.bounds.center if sel.bounds is None else sel.bounds.center
            await self._act(lambda: self._click_at(x, y))
            return
        try:
            if widget.class_name == "web.CheckedTextView":  # an option of a <select>: select it
                select = (await element.evaluate_handle("o => o.closest('select')")).as_element()
                await self._act(lambda: select.select_option(element=element))
            elif action.kind is ActionKind.TYPE:
                if not widget.editable:
                    raise ActionRefused(f"{self.serial}: {sel.describe()} is not a field; nothing was typed",
                                        serial=self.serial)
                text = action.text
                await element.fill(text.rstrip("\n"))
                if text.endswith("\n"):
                    await self._act(lambda: element.press("Enter"))
            elif action.kind is ActionKind.LONG_TAP:
                await self._act(lambda: element.click(button="right"))
            else:
                tabs = len(self._pages)
                await self._act(lambda: element.click())
                if new_tab:  # the tab it opens is reported a moment later: wait for it to be the page
                    await self._await_tab(tabs)
        except PlaywrightTimeout as exc:
            if self._inflight.get(self._page, 0):  # the click started a navigation that is slow: wait for it
                await self._page.wait_for_load_state("domcontentloaded", timeout=self.timeout * 1000)
                return
            raise ActionRefused(f"{self.serial}: {sel.describe()} could not be clicked within {ACTION_TIMEOUT:g} s "
                                f"(hidden, covered or disabled): {str(exc).splitlines()[0][:160]}",
                                serial=self.serial) from exc
        except PlaywrightError as exc:
            if "not an <input>" in str(exc) or "not editable" in str(exc):
                raise ActionRefused(f"{self.serial}: {sel.describe()} takes no text", serial=self.serial) from exc
            if any(m in str(exc) for m in _CLOSED) and self._page is not None:
                return  # the tap closed its own tab (window.close()): the opener is the page now
            raise

    async def _await_tab(self, tabs: int) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + min(self.timeout, ACTION_TIMEOUT)  # a tab the browser blocked never comes
        while len(self._pages) <= tabs and loop.time() < end and self._dialog is None:
            await asyncio.sleep(0.01)

    async def _click_at(self, x: int, y: int) -> None:
        """Click a document point: scroll it into the viewport, then click there."""
        sx, sy = await self._page.evaluate(
            "([x, y]) => { window.scrollTo(Math.max(0, x - innerWidth / 2), Math.max(0, y - innerHeight / 2));"
            " return [scrollX, scrollY]; }", [x, y])
        await self._page.mouse.click(x - sx, y - sy)

    async def _scroll(self, action: Action) -> None:
        dx, dy = {"down": (0, 1), "up": (0, -1), "right": (1, 0), "left": (-1, 0)}[action.direction]
        if action.target is not None:
            element, _, _ = await self._element(action.target)
            if element is not None:
                await element.evaluate("(e, [dx, dy]) => e.scrollBy(dx * e.clientWidth * 0.8, "
                                       "dy * e.clientHeight * 0.8)", [dx, dy])
                return
        await self._page.evaluate("([dx, dy]) => window.scrollBy(dx * innerWidth * 0.8, dy * innerHeight * 0.8)",
                                  [dx, dy])

    async def _back(self) -> None:
        page = self._page
        done, modal = await self._race(lambda: self._evaluate(
            "() => !!document.querySelector('dialog:modal,[role=dialog][aria-modal=true],"
            "[role=alertdialog][aria-modal=true]')", page=page))
        if not done:
            self._blocked = modal
            return
        if modal:  # back closes a dialog, as on Android
            await self._act(lambda: page.keyboard.press("Escape"))
            return
        done, went = await self._race(lambda: self._go_back(page))
        if not done:
            self._blocked = went
        elif not went and len(self._pages) > 1:  # a popup with nothing to go back to: close it, back to its opener
            await page.close()
        elif not went:  # back from the first page leaves the app
            await self._act(lambda: page.goto("about:blank"))

    async def _go_back(self, page: Any) -> bool:
        """History back; False when there is nothing to go back to. An entry that was a form's POST answer is
        passed over, as a person would after Chromium's "Confirm Form Resubmission" page (ERR_CACHE_MISS);
        other failed loads leave the tab on Chromium's error page (another "package", left by back)."""
        from playwright.async_api import Error as PlaywrightError

        for _ in range(3):
            before = page.url
            try:
                response = await page.go_back(wait_until="domcontentloaded")
            except PlaywrightError as exc:
                if "ERR_CACHE_MISS" in str(exc):
                    continue
                if "net::ERR_" in str(exc):
                    return True
                if _DETACHED in str(exc) or any(m in str(exc) for m in _CLOSED):
                    # The tab is closing (its window.close() reported late): its opener is the page, back is
                    # done. Or it is between two documents (the history was not read, so nothing happened yet):
                    # once the new one is parsed, back again.
                    await self._parsed(page)
                    if page.is_closed() or self._page is not page:
                        return True
                    if _DETACHED in str(exc):
                        continue
                raise
            return response is not None or page.url != before
        return True

    async def _on_js_dialog(self, action: Action) -> None:
        d, target = self._dialog, action.target
        rid = target.resource_id if target is not None else ""
        text = target.text if target is not None else ""
        if action.kind is ActionKind.TYPE and rid == DIALOG_IDS["input"] and d.type == "prompt":
            self._prompt = action.text
            return
        if action.kind is ActionKind.BACK or rid == DIALOG_IDS["dismiss"] or (not rid and text == "Cancel"):
            await self._answer(accept=False)
        elif rid == DIALOG_IDS["accept"] or (not rid and text == "OK"):
            await self._answer(accept=True)
        elif action.kind is ActionKind.LAUNCH:
            await self._answer(accept=False)
        else:
            raise ActionRefused(f"{self.serial}: a {d.type} dialog is open ({(d.message or '')[:80]!r}); only its "
                                "OK / Cancel (or back) can be pressed", serial=self.serial)

    async def _answer(self, *, accept: bool) -> None:
        d, blocked = self._dialog, self._blocked
        self._dialog, self._blocked = None, None
        assert self._dialog_event is not None
        self._dialog_event.clear()
        if accept:
            await (d.accept(self._prompt) if d.type == "prompt" else d.accept())
        else:
            await d.dismiss()
        if blocked is not None:  # the click that opened the dialog now ends
            done, _ = await asyncio.wait({blocked}, timeout=ACTION_TIMEOUT)
            if blocked in done and blocked.exception() is not None:
                log.debug("%s: the action behind the dialog ended with %s", self.serial, blocked.exception())
        if self._dialog is None:
            await self._settle()

    async def _settle(self) -> None:
        """Wait for what the action started: a new document, then a quiet network (at most QUIET_MAX_S)."""
        page = self._page
        if page is None or self._dialog is not None:
            return
        from playwright.async_api import Error as PlaywrightError

        try:
            done, _ = await self._race(lambda: page.wait_for_load_state("domcontentloaded",
                                                                       timeout=self.timeout * 1000))
        except PlaywrightError as exc:
            if any(m in str(exc) for m in _CLOSED) and self._page is not None and self._page is not page:
                return  # the tab closed while it loaded; its opener is the page now
            raise
        if not done:
            return
        loop = asyncio.get_running_loop()
        end, quiet = loop.time() + QUIET_MAX_S, None
        while loop.time() < end and self._dialog is None:
            now = loop.time()
            self._saving = {f for f in self._saving if not f.done()}
            if self._inflight.get(self._page, 0) > 0 or self._saving:
                quiet = None
            elif quiet is None:
                quiet = now
            elif now - quiet >= QUIET_S:
                if len(page.frames) == 1 or await self._frames_ready(page):
                    break
                quiet = None  # an iframe's new document is still being read: its widgets are not there yet
            await asyncio.sleep(0.01)

    async def _frames_ready(self, page: Any) -> bool:
        """Whether every same-origin iframe (nested ones too) shows a parsed document with a body."""
        from playwright.async_api import Error as PlaywrightError

        try:
            return bool(await page.evaluate(FRAMES_READY_JS))
        except PlaywrightError:
            return True  # the page itself is changing: the next snapshot walks it again anyway

    async def _launch(self, app: str) -> None:
        url = self.url
        if app not in ("", self.app, self.url):
            try:
                url = web_url(app)
            except ValueError:
                raise DeviceError(f"{self.serial}: cannot launch {app!r}: this device runs {self.app} "
                                  f"({self.url}); give an http(s) URL or ''", serial=self.serial) from None
        if self._dialog is not None:
            await self._answer(accept=False)
        for extra in self._pages[1:]:  # popups and tabs opened since: a launch starts from one tab
            await extra.close()
        if self._page is None:
            await self._context.new_page()
        self._crashes.clear()
        page = self._page
        done, _ = await self._race(lambda: page.goto(url, wait_until="domcontentloaded"))
        if not done:
            return
        await self._settle()

    async def _stop(self) -> None:
        if self._dialog is not None:
            await self._answer(accept=False)
        for page in list(self._pages):
            await page.close()
        self._crashes.clear()
