"""The uiautomator2 server's JSON-RPC methods, answered by a Phone.

Errors carry the messages the Java server sends (the client reads them: a
`UiObjectNotFoundException` in the message becomes `UiObjectNotFoundError`).
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from appatlas.devices.base import selector_for
from appatlas.devices.fakeadb._phone import Phone, png_of
from appatlas.devices.fakeadb._selector import SelectorInvalid, find, obj_info
from appatlas.errors import AppatlasError
from appatlas.hierarchy import to_u2_xml
from appatlas.types import Action, ActionKind, Screen, Widget

PARSE_ERROR, INVALID_REQUEST, NO_METHOD, INVALID_PARAMS, INTERNAL = -32700, -32600, -32601, -32602, -32603
NOT_FOUND = -32002
DEVICE_REFUSED = -32001
# Methods that act on the screen: they pay the phone's action delay (Faults.action_delay_s).
ACTIONS = frozenset({"click", "pressKey", "pressKeyCode", "setText", "clearTextField", "pasteClipboard",
                     "clearInputText", "swipe", "drag", "swipePoints", "injectInputEvent"})
KEYCODES = {"back": 4, "home": 3, "menu": 82, "enter": 66, "search": 84, "delete": 67, "del": 67,
            "recent": 187, "power": 26, "volume_up": 24, "volume_down": 25, "volume_mute": 164,
            "camera": 27, "center": 23, "left": 21, "right": 22, "up": 19, "down": 20}


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


def _arg(args: list[Any], i: int, kind: type | tuple[type, ...], name: str, default: Any = ...) -> Any:
    if i >= len(args):
        if default is ...:
            raise RpcError(INVALID_PARAMS, f"missing parameter {i} ({name})")
        return default
    value = args[i]
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise RpcError(INVALID_PARAMS, f"parameter {name} must be a number, got a boolean")
    if not isinstance(value, kind):
        raise RpcError(INVALID_PARAMS, f"parameter {name} has the wrong type ({type(value).__name__})")
    return value


def _coord(args: list[Any], i: int, name: str) -> int:
    value = _arg(args, i, (int, float), name)
    if not -1e6 < value < 1e6:
        raise RpcError(INVALID_PARAMS, f"parameter {name} is off any screen: {value}")
    return int(value)


def _find(phone: Phone, sel: Any) -> tuple[Screen, list[Widget]]:
    screen = phone.screen()
    try:
        return screen, find(screen.root, sel)
    except SelectorInvalid as exc:
        raise RpcError(INVALID_PARAMS, f"java.lang.IllegalArgumentException: {exc}") from None


def _one(phone: Phone, args: list[Any]) -> tuple[Screen, Widget]:
    screen, found = _find(phone, _arg(args, 0, dict, "selector"))
    if not found:
        shown = {k: v for k, v in args[0].items() if k not in ("mask", "childOrSibling", "childOrSiblingSelector")}
        raise RpcError(NOT_FOUND, f"androidx.test.uiautomator.UiObjectNotFoundException: UiSelector{shown}")
    return screen, found[0]


class _Jpeg:
    """PNG -> base64 JPEG, as takeScreenshot answers; the last result is kept (same screen, same bytes)."""

    def __init__(self) -> None:
        self._key: tuple[bytes, float, int] | None = None
        self._value = ""

    def __call__(self, png: bytes, scale: float, quality: int) -> str:
        key = (png, scale, quality)
        if key != self._key:
            from PIL import Image

            img = Image.open(io.BytesIO(png)).convert("RGB")
            if scale != 1.0:
                img = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))))
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=quality)
            self._key, self._value = key, base64.b64encode(buf.getvalue()).decode("ascii")
        return self._value


def _prune(w: Widget, depth: int) -> Widget:
    """Keep `depth` levels of the tree, as the server's maxDepth does."""
    if not w.children:
        return w
    if depth <= 1:
        return replace(w, children=())
    return replace(w, children=tuple(_prune(c, depth - 1) for c in w.children))


class UiRpc:
    """JSON-RPC dispatch for one phone."""

    def __init__(self, phone: Phone) -> None:
        self.phone = phone
        self._jpeg = _Jpeg()
        self._xml: tuple[Widget, int, str] | None = None  # widget trees are immutable: same root, same XML
        self._methods: dict[str, Callable[[list[Any]], Any]] = {
            "takeScreenshot": self._screenshot, "click": self._click, "pressKey": self._press_key,
            "pressKeyCode": self._press_keycode, "deviceInfo": self._device_info,
            "waitForExists": lambda a: bool(_find(self.phone, _arg(a, 0, dict, "selector"))[1]),
            "waitUntilGone": lambda a: not _find(self.phone, _arg(a, 0, dict, "selector"))[1],
            "exist": lambda a: bool(_find(self.phone, _arg(a, 0, dict, "selector"))[1]),
            "count": lambda a: len(_find(self.phone, _arg(a, 0, dict, "selector"))[1]),
            "objInfo": self._obj_info, "objInfoOfAllInstances": self._obj_infos,
            "getText": lambda a: _one(self.phone, a)[1].text, "setText": self._set_text,
            "clearTextField": lambda a: self._set_text([a[0] if a else None, ""]),
            "setClipboard": self._set_clipboard, "getClipboard": lambda a: self.phone.clipboard,
            "pasteClipboard": self._paste, "clearInputText": lambda a: self._type(""),
            "swipe": self._swipe, "drag": self._swipe, "swipePoints": self._swipe_points,
            "injectInputEvent": self._inject,
            "getLastToast": lambda a: None, "clearLastToast": lambda a: True, "makeToast": lambda a: True,
            "getLastTraversedText": lambda a: None, "clearLastTraversedText": lambda a: True,
            "wakeUp": lambda a: True, "sleep": lambda a: True, "freezeRotation": lambda a: True,
            "setOrientation": lambda a: True, "openNotification": lambda a: False,
            "openQuickSettings": lambda a: False,
        }

    async def call(self, method: str, params: Any) -> Any:
        """Run one method; RpcError for anything the client did wrong."""
        if params is None or params == {}:
            args: list[Any] = []
        elif isinstance(params, list):
            args = params
        else:
            raise RpcError(INVALID_PARAMS, "params must be a list (named parameters are not supported)")
        if method == "dumpWindowHierarchy":
            return await self._dump(args)
        handler = self._methods.get(method)
        if handler is None:
            raise RpcError(NO_METHOD, f"Method not found: {method[:80]}")
        if method in ACTIONS and self.phone.faults.action_delay_s > 0:
            await asyncio.sleep(self.phone.faults.action_delay_s)  # other phones are served meanwhile
        try:
            return handler(args)
        except AppatlasError as exc:  # the device refused (typing with no field focused, …)
            raise RpcError(DEVICE_REFUSED, f"java.lang.IllegalStateException: {exc}") from None

    async def _dump(self, args: list[Any]) -> str:
        _arg(args, 0, bool, "compressed", False)
        depth = _arg(args, 1, int, "maxDepth", 50)
        if depth < 1:
            raise RpcError(INVALID_PARAMS, "maxDepth must be >= 1")
        delay = self.phone.faults.take_delay()
        if delay:
            await asyncio.sleep(delay)  # the real server waits for UI idle; a busy screen is slow
        if self.phone.faults.take_empty():
            return ""
        root = self.phone.screen().root
        if self._xml is None or self._xml[0] is not root or self._xml[1] != depth:
            self._xml = (root, depth, to_u2_xml(_prune(root, depth + 1) if depth < 50 else root))
        return self._xml[2]

    def _screenshot(self, args: list[Any]) -> str:
        scale = float(_arg(args, 0, (int, float), "scale", 1.0))
        quality = _arg(args, 1, int, "quality", 80)
        if not (0.05 <= scale <= 1.0 and 1 <= quality <= 100):
            raise RpcError(INVALID_PARAMS, "scale must be in [0.05, 1] and quality in [1, 100]")
        return self._jpeg(png_of(self.phone.screen()), scale, quality)

    def _click(self, args: list[Any]) -> bool:
        x, y = _coord(args, 0, "x"), _coord(args, 1, "y")
        ms = _arg(args, 2, (int, float), "duration", 0)
        self.phone.tap(x, y, long=ms >= 400)  # click(x, y, ms) is how the client long-clicks
        return True

    def _press_key(self, args: list[Any]) -> bool:
        name = _arg(args, 0, str, "key").lower()
        return self._press_keycode([KEYCODES[name]]) if name in KEYCODES else False

    def _press_keycode(self, args: list[Any]) -> bool:
        code = _arg(args, 0, int, "keyCode")
        if code == 4:
            self.phone.back()
        elif code == 3:
            self.phone.device.stop_app()  # home: the app leaves the foreground
        return True

    def _device_info(self, args: list[Any]) -> dict[str, Any]:
        p = self.phone
        return {
            "currentPackageName": p.focus()[0] or "android", "displayWidth": p.width, "displayHeight": p.height,
            "displayRotation": 0, "displaySizeDpX": round(p.width / 2.625), "displaySizeDpY": round(p.height / 2.625),
            "productName": p.props()["ro.product.name"], "screenOn": True, "sdkInt": p.sdk,
            "naturalOrientation": True,
        }

    def _obj_info(self, args: list[Any]) -> dict[str, Any]:
        screen, w = _one(self.phone, args)
        return obj_info(w, width=screen.width, height=screen.height)

    def _obj_infos(self, args: list[Any]) -> list[dict[str, Any]]:
        screen, found = _find(self.phone, _arg(args, 0, dict, "selector"))
        return [obj_info(w, width=screen.width, height=screen.height) for w in found]

    def _set_text(self, args: list[Any]) -> bool:
        text = args[1] if len(args) > 1 else ""
        if not isinstance(text, str):
            raise RpcError(INVALID_PARAMS, "text must be a string")
        screen, w = _one(self.phone, args)
        # The device's own "type into this widget" (focus it, replace its text).
        self.phone.device.perform(Action(ActionKind.TYPE, target=selector_for(w, screen), text=text))
        return True

    def _set_clipboard(self, args: list[Any]) -> None:
        self.phone.clipboard = _arg(args, 1, str, "text")

    def _type(self, text: str) -> bool:
        self.phone.device.type_text(text)
        return True

    def _paste(self, args: list[Any]) -> bool:
        # Android pastes into the focused field, and does nothing when none has focus.
        try:
            return self._type(self.phone.clipboard or "")
        except AppatlasError:
            return False

    def _swipe(self, args: list[Any]) -> bool:
        fx, fy, tx, ty = (_coord(args, i, n) for i, n in enumerate(("fromX", "fromY", "toX", "toY")))
        self._gesture(fx, fy, tx, ty)
        return True

    def _swipe_points(self, args: list[Any]) -> bool:
        pts = _arg(args, 0, list, "points")
        if len(pts) < 4 or len(pts) % 2 or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                                     for v in pts):
            raise RpcError(INVALID_PARAMS, "points must be a flat list x1, y1, x2, y2, ...")
        self._gesture(int(pts[0]), int(pts[1]), int(pts[-2]), int(pts[-1]))
        return True

    def _gesture(self, fx: int, fy: int, tx: int, ty: int) -> None:
        dx, dy = tx - fx, ty - fy
        if max(abs(dx), abs(dy)) < 10:
            self.phone.tap(fx, fy)
            return
        # The finger moves against the content: a finger going up scrolls down.
        direction = ("down" if dy < 0 else "up") if abs(dy) >= abs(dx) else ("right" if dx < 0 else "left")
        self.phone.device.perform(Action(ActionKind.SCROLL, direction=direction))

    def _inject(self, args: list[Any]) -> bool:
        action = _arg(args, 0, int, "action")
        x, y = _coord(args, 1, "x"), _coord(args, 2, "y")
        if action == 1:  # ACTION_UP ends a touch: a tap where it lifted
            self.phone.tap(x, y)
        return True
