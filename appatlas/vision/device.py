"""A device seen through its pixels: any Device, with the screenshot parsed into its tree's holes.

`VisionDevice(inner)` implements the Device protocol. `snapshot()` takes the inner device's
screen, reads widgets off its screenshot (OCR + classical vision) and merges them into the
holes of its view tree (`appatlas.vision.merge`); screens without holes pass unchanged. An
action aimed at a widget read from pixels becomes a touch at that widget's box on the current
screen — the inner device (a phone through uiautomator2, a virtual app) only ever gets
coordinates. With `annotate=True` the screenshot it returns has the detected boxes drawn on it,
so atlases and reports show what was seen.
"""

from __future__ import annotations

import io
from typing import Any

from appatlas.devices.base import Device, DeviceInfo, locate
from appatlas.errors import SelectorNotFound
from appatlas.types import Action, ActionKind, Screen, Selector, Widget
from appatlas.vision.merge import holes, merge
from appatlas.vision.ocr import Ocr, load_ocr
from appatlas.vision.parse import VISION_PREFIX, Parsed, parse_png

__all__ = ["VisionDevice", "annotate_png", "is_vision"]

_TARGETED = (ActionKind.TAP, ActionKind.LONG_TAP, ActionKind.TYPE)


def is_vision(w: Widget) -> bool:
    """Whether a widget was read from pixels (not from the view tree)."""
    return w.resource_id.startswith(VISION_PREFIX)


class VisionDevice:
    """See the module doc. `ms` lists the parse time of every screenshot read so far."""

    def __init__(self, inner: Device, *, ocr: Ocr | None = None, annotate: bool = False) -> None:
        self.inner = inner
        self.serial: str = inner.serial
        self.ocr = ocr or load_ocr()
        self.annotate = annotate
        self.ms: list[float] = []
        self.last_parse: Parsed | None = None
        self._last: Screen | None = None

    def __getattr__(self, name: str) -> Any:  # close(), location, spec, … of the inner device
        return getattr(self.inner, name)

    # --- Device protocol ------------------------------------------------------------------------

    def snapshot(self) -> Screen:
        screen = self.inner.snapshot()
        if not holes(screen) or not screen.screenshot:
            self._last = screen
            return screen
        parsed = parse_png(screen.screenshot, width=screen.width, height=screen.height, package=screen.package,
                           ocr=self.ocr)
        self.ms.append(parsed.ms)
        self.last_parse = parsed
        merged = merge(screen, parsed.widgets)
        if self.annotate:
            seen = [w for w in merged.widgets() if is_vision(w) and w.enabled]
            merged = Screen(merged.package, merged.activity, merged.root, merged.width, merged.height,
                            annotate_png(screen.screenshot, seen, width=screen.width))
        self._last = merged
        return merged

    def perform(self, action: Action) -> None:
        if action.kind in _TARGETED and action.target is not None:
            action = self._to_touch(action)
        self._last = None
        self.inner.perform(action)

    def current_app(self) -> tuple[str, str]:
        return self.inner.current_app()

    def launch(self, app: str = "") -> None:
        self._last = None
        self.inner.launch(app)

    def stop_app(self, package: str = "") -> None:
        self._last = None
        self.inner.stop_app(package)

    def info(self) -> DeviceInfo:
        return self.inner.info()

    # --- touches at detected boxes ---------------------------------------------------------------

    def _to_touch(self, action: Action) -> Action:
        """A widget read from pixels is found again on the current screen and touched at its box."""
        target = action.target
        assert target is not None
        screen = self._last if self._last is not None else self.snapshot()
        try:
            widget: Widget | None = locate(target, screen, serial=self.serial)
        except SelectorNotFound:
            widget = None
        if widget is not None and is_vision(widget):
            box = widget.bounds
        elif target.resource_id.startswith(VISION_PREFIX) or (widget is not None and widget in holes(screen)):
            if target.bounds is None:
                raise SelectorNotFound(f"{target.describe()} is not on the screen any more and has no recorded box; "
                                       "re-crawl the screen or edit the test", serial=self.serial)
            box = target.bounds  # not seen now: where it was seen
        else:
            return action  # the tree knows this widget: its selector is better than a box
        return Action(action.kind, Selector(bounds=box), text=action.text)


def annotate_png(png: bytes, widgets: list[Widget], *, width: int) -> bytes:
    """The screenshot with each detected widget's box drawn on it (colour by kind)."""
    from PIL import Image, ImageDraw

    img = Image.open(io.BytesIO(png)).convert("RGB")
    s = img.width / max(1, width)
    draw = ImageDraw.Draw(img)
    colours = {"Button": (230, 40, 40), "TextView": (40, 110, 230), "ImageButton": (160, 40, 200),
               "Switch": (20, 160, 60), "CheckBox": (20, 160, 60), "EditText": (230, 140, 0),
               "LinearLayout": (120, 120, 120)}
    for w in widgets:
        b = w.bounds
        colour = colours.get(w.class_name.rsplit(".", 1)[-1], (230, 40, 40))
        draw.rectangle((b.x1 * s, b.y1 * s, b.x2 * s - 1, b.y2 * s - 1), outline=colour, width=2)
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()
