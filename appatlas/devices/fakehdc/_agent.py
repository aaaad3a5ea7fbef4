"""The UI test daemon's RPC on port 8012, as hmdriver2's `HmClient` speaks it.

One JSON object per line in each direction, over a TCP stream hdc forwards (`hdc fport`):

  {"module": "com.ohos.devicetest.hypiumApiHelper", "method": "callHypiumApi",
   "params": {"api": "Driver.click", "this": "Driver#0", "args": [540, 1200], "message_type": "hypium"},
   "request_id": "20240815161352267072"}
  -> {"result": null}        or   {"exception": {"code": 401, "message": "…"}}

Objects are named references the daemon keeps: `Driver#0`; `On#seed`, from which `On.text`,
`On.id`, `On.type`, … (`this` = an On) build matchers that add one condition each (`On#N`);
`Component#N` from `Driver.findComponent(s)`. A component acts at its place on the screen in
front; when that screen no longer holds it, the call answers error 17000004. Replies are
written in one piece (hmdriver2 reads one `recv(4096)` per call).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from appatlas.devices.fakeadb._wire import IDLE_TIMEOUT, quickack
from appatlas.devices.fakehdc._device import Agent, HarmonyDevice
from appatlas.devices.fakehdc._dump import Node
from appatlas.devices.fakehdc._shell import gesture, key
from appatlas.errors import AppatlasError

log = logging.getLogger(__name__)

MAX_MESSAGE = 1024 * 1024
ARG_ERROR = 401
GONE = 17000004  # "the window or component is invisible or destroyed"
UNSUPPORTED = 17000005
_TEXT_FIELDS = {"text": "text", "id": "id", "key": "key", "type": "type", "description": "description"}
_FLAG_FIELDS = {"clickable": "clickable", "longClickable": "longClickable", "scrollable": "scrollable",
                "enabled": "enabled", "focused": "focused", "selected": "selected", "checked": "checked",
                "checkable": "checkable"}
_GETTERS = {"getId": "id", "getKey": "key", "getType": "type", "getText": "text", "getDescription": "description"}
_IS = {"isSelected": "selected", "isChecked": "checked", "isEnabled": "enabled", "isFocused": "focused",
       "isCheckable": "checkable", "isClickable": "clickable", "isLongClickable": "longClickable",
       "isScrollable": "scrollable"}


class ApiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(message)


async def serve(dev: HarmonyDevice, agent: Agent, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter) -> None:
    """Answer RPC lines on one forwarded connection until the client or the daemon goes away."""
    api = Api(dev, agent)
    while True:
        try:
            async with asyncio.timeout(IDLE_TIMEOUT):
                line = await reader.readuntil(b"\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            return
        if dev.agent is not agent:
            return  # the daemon was killed while this line was on its way
        reply = api.answer(line)
        writer.write(json.dumps(reply, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
        quickack(writer)
        await writer.drain()


class Api:
    """The hypium API calls, answered from the device's screen."""

    def __init__(self, dev: HarmonyDevice, agent: Agent) -> None:
        self.dev = dev
        self.agent = agent

    def answer(self, line: bytes) -> dict[str, Any]:
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict) or not isinstance(msg.get("params"), dict):
                raise ApiError(ARG_ERROR, "a request is a JSON object with params")
            params = msg["params"]
            if msg.get("method") == "Captures":
                return {"result": self._captures(str(params.get("api", "")))}
            if msg.get("method") != "callHypiumApi":
                raise ApiError(ARG_ERROR, f"unknown method {msg.get('method')!r}")
            args = params.get("args") or []
            if not isinstance(args, list):
                raise ApiError(ARG_ERROR, "args must be a list")
            return {"result": self.call(str(params.get("api", "")), params.get("this"), args)}
        except ApiError as exc:
            return {"exception": {"code": exc.code, "message": str(exc)}}
        except json.JSONDecodeError as exc:
            return {"exception": {"code": ARG_ERROR, "message": f"not JSON: {exc}"}}
        except AppatlasError as exc:  # the virtual device refused (e.g. typing where no field has focus)
            return {"exception": {"code": UNSUPPORTED, "message": str(exc)}}

    def call(self, api: str, this: Any, args: list[Any]) -> Any:
        cls, _, name = api.partition(".")
        if cls == "On":
            return self._on(name, this, args)
        if cls == "Driver":
            fn = self._driver.get(name)
            if fn is None:
                raise ApiError(ARG_ERROR, f"(PreProcessing: APiCallInfoChecker)Api {api} is not supported")
            return fn(self, args)
        if cls == "Component":
            return self._component(name, this, args)
        raise ApiError(ARG_ERROR, f"(PreProcessing: APiCallInfoChecker)Api {api} is not supported")

    # --- On: matchers ---------------------------------------------------------------------------

    def _on(self, name: str, this: Any, args: list[Any]) -> str:
        base = self.agent.ons.get(this) if isinstance(this, str) else None
        if base is None:
            raise ApiError(ARG_ERROR, f"On.{name}: unknown matcher {this!r}")
        if name in _TEXT_FIELDS:
            if not args or not isinstance(args[0], str):
                raise ApiError(ARG_ERROR, f"On.{name} takes a string (and a MatchPattern)")
            pattern = args[1] if len(args) > 1 and isinstance(args[1], int) else 0
            cond: tuple[Any, ...] = ("text", _TEXT_FIELDS[name], args[0], pattern)
        elif name in _FLAG_FIELDS:
            want = args[0] if args and isinstance(args[0], bool) else True
            cond = ("flag", _FLAG_FIELDS[name], want)
        elif name in ("isBefore", "isAfter"):
            other = self.agent.ons.get(args[0]) if args and isinstance(args[0], str) else None
            if other is None:
                raise ApiError(ARG_ERROR, f"On.{name} takes a matcher")
            cond = ("order", name, other)
        else:
            raise ApiError(ARG_ERROR, f"(PreProcessing: APiCallInfoChecker)Api On.{name} is not supported")
        ref = self.agent.name("On")
        self.agent.ons[ref] = (*base, cond)
        return ref

    def _matcher(self, ref: Any) -> tuple[tuple[Any, ...], ...]:
        conds = self.agent.ons.get(ref) if isinstance(ref, str) else None
        if conds is None:
            raise ApiError(ARG_ERROR, f"unknown matcher {ref!r}")
        return conds

    def _find(self, conds: tuple[tuple[Any, ...], ...]) -> list[Node]:
        _, nodes = self.dev.layout()
        return [n for i, n in enumerate(nodes) if _holds(conds, n, i, nodes)]

    def _found(self, nodes: list[Node]) -> list[str]:
        refs = []
        for n in nodes:
            ref = self.agent.name("Component")
            self.agent.components[ref] = n
            refs.append(ref)
        return refs

    # --- Driver ---------------------------------------------------------------------------------

    def _create(self, args: list[Any]) -> str:
        return "Driver#0"

    def _find_component(self, args: list[Any]) -> str | None:
        nodes = self._find(self._matcher(args[0] if args else None))
        return self._found(nodes[:1])[0] if nodes else None

    def _find_components(self, args: list[Any]) -> list[str] | None:
        nodes = self._find(self._matcher(args[0] if args else None))
        return self._found(nodes) or None

    def _click(self, args: list[Any]) -> None:
        x, y = _point(args)
        self.dev.device.tap(x, y)

    def _double_click(self, args: list[Any]) -> None:
        x, y = _point(args)
        self.dev.device.tap(x, y)
        self.dev.device.tap(x, y)

    def _long_click(self, args: list[Any]) -> None:
        x, y = _point(args)
        self.dev.device.long_tap(x, y)

    def _swipe(self, args: list[Any]) -> None:
        if len(args) < 4 or not all(_number(a) for a in args[:4]):
            raise ApiError(ARG_ERROR, "Driver.swipe takes startx, starty, endx, endy[, speed]")
        gesture(self.dev, *(int(a) for a in args[:4]))

    def _input_text(self, args: list[Any]) -> None:
        if len(args) != 2 or not isinstance(args[0], dict) or not isinstance(args[1], str):
            raise ApiError(ARG_ERROR, "Driver.inputText takes a point {x, y} and a string")
        x, y = _point([args[0].get("x"), args[0].get("y")])
        self.dev.device.tap(x, y)
        self.dev.device.type_text(args[1])

    def _press_back(self, args: list[Any]) -> None:
        key(self.dev, 2)

    def _press_home(self, args: list[Any]) -> None:
        key(self.dev, 1)

    def _trigger_key(self, args: list[Any]) -> None:
        if not args or not isinstance(args[0], int):
            raise ApiError(ARG_ERROR, "Driver.triggerKey takes a key code")
        key(self.dev, args[0])

    def _display_size(self, args: list[Any]) -> dict[str, int]:
        return {"x": self.dev.width, "y": self.dev.height}

    def _nothing(self, args: list[Any]) -> None:
        return None

    def _rotation(self, args: list[Any]) -> int:
        return 0

    def _true(self, args: list[Any]) -> bool:
        return True

    _driver: dict[str, Callable[[Api, list[Any]], Any]] = {
        "create": _create, "findComponent": _find_component, "findComponents": _find_components,
        "waitForComponent": _find_component, "click": _click, "doubleClick": _double_click,
        "longClick": _long_click, "swipe": _swipe, "fling": _swipe, "drag": _swipe, "inputText": _input_text,
        "pressBack": _press_back, "pressHome": _press_home, "triggerKey": _trigger_key,
        "getDisplaySize": _display_size, "getDisplayRotation": _rotation, "setDisplayRotation": _nothing,
        "delayMs": _nothing, "wakeUpDisplay": _nothing, "uiEventObserverOnce": _true,
        "getRecentUiEvent": _nothing,
    }

    # --- Component ------------------------------------------------------------------------------

    def _component(self, name: str, this: Any, args: list[Any]) -> Any:
        node = self.agent.components.get(this) if isinstance(this, str) else None
        if node is None:
            raise ApiError(ARG_ERROR, f"Component.{name}: unknown component {this!r}")
        if name in _GETTERS:
            return node.attrs.get(_GETTERS[name], "")
        if name in _IS:
            return node.attrs.get(_IS[name]) == "true"
        left, top, right, bottom = _bounds(node)
        if name == "getBounds":
            return {"left": left, "top": top, "right": right, "bottom": bottom}
        if name == "getBoundsCenter":
            return {"x": (left + right) // 2, "y": (top + bottom) // 2}
        self._still_there(node, name)
        x, y = _visible_center(left, top, right, bottom, self.dev.width, self.dev.height)
        device = self.dev.device
        if name == "click":
            device.tap(x, y)
        elif name == "doubleClick":
            device.tap(x, y)
            device.tap(x, y)
        elif name == "longClick":
            device.long_tap(x, y)
        elif name in ("inputText", "clearText"):
            text = args[0] if name == "inputText" and args and isinstance(args[0], str) else ""
            if name == "inputText" and not (args and isinstance(args[0], str)):
                raise ApiError(ARG_ERROR, "Component.inputText takes a string")
            device.tap(x, y)  # focus the field, then replace its text
            device.type_text(text)
        else:
            raise ApiError(UNSUPPORTED, f"Component.{name} is not supported by this device")
        return None

    def _still_there(self, node: Node, name: str) -> None:
        _, nodes = self.dev.layout()
        a = node.attrs
        if not any(n.attrs["type"] == a["type"] and n.attrs["id"] == a["id"] and n.attrs["bounds"] == a["bounds"]
                   for n in nodes):
            raise ApiError(GONE, f"Component.{name}: the component is invisible or destroyed (the screen changed)")

    def _captures(self, api: str) -> Any:
        if api == "captureLayout":
            return self.dev.layout()[0]
        raise ApiError(ARG_ERROR, f"Captures.{api} is not supported")


def _holds(conds: tuple[tuple[Any, ...], ...], node: Node, index: int, nodes: list[Node]) -> bool:
    for cond in conds:
        if cond[0] == "text":
            _, field, want, pattern = cond
            have = node.attrs.get(field, "")
            ok = {0: have == want, 1: want in have, 2: have.startswith(want), 3: have.endswith(want)}.get(pattern, False)
        elif cond[0] == "flag":
            ok = (node.attrs.get(cond[1]) == "true") == cond[2]
        else:
            others = [i for i, n in enumerate(nodes) if _holds(cond[2], n, i, nodes)]
            ok = bool(others) and (index < others[0] if cond[1] == "isBefore" else index > others[0])
        if not ok:
            return False
    return True


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _point(args: list[Any]) -> tuple[int, int]:
    if len(args) < 2 or not _number(args[0]) or not _number(args[1]):
        raise ApiError(ARG_ERROR, "expected x, y")
    return int(args[0]), int(args[1])


def _bounds(node: Node) -> tuple[int, int, int, int]:
    b = node.widget.bounds
    return b.x1, b.y1, b.x2, b.y2


def _visible_center(left: int, top: int, right: int, bottom: int, width: int, height: int) -> tuple[int, int]:
    x1, y1, x2, y2 = max(0, left), max(0, top), min(width, right), min(height, bottom)
    return ((x1 + x2) // 2, (y1 + y2) // 2) if x2 > x1 and y2 > y1 else ((left + right) // 2, (top + bottom) // 2)
