"""Apps seen as pixels only: a virtual device whose view tree is one SurfaceView, as a game's is.

`CanvasDevice` runs an app spec like `VirtualDevice` (same screens, same touch handling) but
shows the app's windows to the outside as a single `android.view.SurfaceView`: what is on the
screen exists only in the screenshot, which is what uiautomator2 sees of a Unity, Cocos or
custom-engine game. System windows (status bar, permission popup, launcher) keep their tree.
An action aimed at a widget is a touch at the centre of its selector's bounds — there is no
tree to resolve it on. Open one with `open_app("canvas:game")` or `open_app("canvas:demo")`.

Two painters: `wireframe` (the virtual device's own renderer) and `game`, a coloured game look
with a bird flying over the ground and clouds drifting behind the widgets; both move with the
device's action counter, so the same screen never gives the same pixels twice. The painter
also says what it drew where (`CanvasDevice.drawn()`), the ground truth `bench vision` scores
a pixel parser against.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache

from appatlas.devices.render import render_png
from appatlas.devices.spec import AppSpec
from appatlas.errors import SelectorNotFound
from appatlas.hierarchy import ROOT_CLASS
from appatlas.types import Action, ActionKind, Bounds, Screen, Widget

from .virtual import VirtualDevice, _hit_path

__all__ = ["GAME_PACKAGE", "SURFACE_CLASS", "CanvasDevice", "Drawn"]

SURFACE_CLASS = "android.view.SurfaceView"
GAME_PACKAGE = "com.appatlas.skyhopper"
_SYSTEMUI = "com.android.systemui"


@dataclass(frozen=True, slots=True)
class Drawn:
    """One thing a person sees on the screen: its kind, the text drawn, its box in screen pixels."""

    kind: str  # text | button | icon | switch | checkbox | input | image
    text: str
    box: Bounds
    clickable: bool


class CanvasDevice(VirtualDevice):
    """A virtual device whose app draws itself on one surface (see the module doc)."""

    def __init__(self, spec: AppSpec, *, painter: str = "auto", **kwargs: object) -> None:
        super().__init__(spec, **kwargs)  # type: ignore[arg-type]
        if painter == "auto":
            painter = "game" if spec.package == GAME_PACKAGE else "wireframe"
        if painter not in ("game", "wireframe"):
            raise ValueError(f"painter must be 'auto', 'game' or 'wireframe', got {painter!r}")
        self.painter = painter
        self._painted: tuple[int, int, bytes, list[Drawn]] | None = None  # (id(root), tick, png, drawn)

    # --- what the outside sees ------------------------------------------------------------------

    def snapshot(self) -> Screen:
        if self.current_app()[0] != self.spec.package:
            return super().snapshot()
        view = self._current()
        png = self._paint()[0] if self.screenshots else None
        windows = view.root.children
        full = Bounds(0, 0, self.spec.width, self.spec.height)
        # not clickable, as a game engine's surface dumps (touches reach it all the same)
        surface = Widget(class_name=SURFACE_CLASS, bounds=full, package=view.package)
        app = Widget(class_name="android.widget.FrameLayout", bounds=full, package=view.package, children=(surface,))
        chrome = tuple(w for w in windows if _package(w) == _SYSTEMUI)
        root = Widget(class_name=ROOT_CLASS, bounds=full, children=(app, *chrome))
        return Screen(view.package, view.activity, root, self.spec.width, self.spec.height, png)

    def perform(self, action: Action) -> None:
        """Touches go where the selector's bounds are; nothing else can name a place on a surface."""
        if action.kind not in (ActionKind.TAP, ActionKind.LONG_TAP, ActionKind.TYPE) or \
                self.current_app()[0] != self.spec.package:
            super().perform(action)
            return
        assert action.target is not None
        b = action.target.bounds
        if b is None:
            raise SelectorNotFound(f"{action.target.describe()} has no bounds, and a canvas app has no view tree to "
                                   "find it in; parse the screenshot (appatlas.vision) and tap a detected box",
                                   serial=self.serial)
        x = min(max(b.center[0], 0), self.spec.width - 1)
        y = min(max(b.center[1], 0), self.spec.height - 1)
        if action.kind is ActionKind.TYPE:
            self.tap(x, y)
            self.type_text(action.text)
        elif action.kind is ActionKind.LONG_TAP:
            self.long_tap(x, y)
        else:
            self.tap(x, y)

    def drawn(self) -> list[Drawn]:
        """What the app draws on its surface now (the ground truth of a pixel parser); nothing while a
        system window (a permission popup, the launcher) is in front, as those keep their tree."""
        if self.current_app()[0] != self.spec.package:
            return []
        return list(self._paint()[1])

    def tree(self) -> Screen:
        """The app's real view tree, hidden from the outside (for benchmarks and tests)."""
        return super().snapshot()

    # --- painting --------------------------------------------------------------------------------

    def _paint(self) -> tuple[bytes, list[Drawn]]:
        view = self._current()
        key = (id(view.root), self.actions if self.painter == "game" else 0)
        if self._painted is not None and self._painted[:2] == key:
            return self._painted[2], self._painted[3]
        w, h, s = self.spec.width, self.spec.height, self.screenshot_scale
        windows = view.root.children
        top_dialog = _top_dialog(windows, w, h)
        if self.painter == "game":
            png, drawn = _GamePainter(w, h, s, tick=self.actions).paint(windows, top_dialog)
        else:
            png = render_png(view.root, width=w, height=h, scale=s)
            drawn = _ink_truth(windows, top_dialog, png, s, w, h)
        self._painted = (*key, png, drawn)
        return png, drawn


def _package(w: Widget) -> str:
    return w.package or next((c.package for c in w.walk() if c.package), "")


def _top_dialog(windows: tuple[Widget, ...], w: int, h: int) -> Widget | None:
    """The window of a dialog over the app, when the last window is one (not full screen, not chrome)."""
    for win in reversed(windows):
        if _package(win) == _SYSTEMUI:
            continue
        b = win.bounds
        return win if b.width * b.height < 0.9 * w * h else None
    return None


def _kind(w: Widget) -> str:
    cls = w.class_name.rsplit(".", 1)[-1]
    if w.editable or cls.endswith("EditText"):
        return "input"
    if "Switch" in cls or "Toggle" in cls:
        return "switch"
    if w.checkable or "CheckBox" in cls or "RadioButton" in cls:
        return "checkbox"
    if "ImageButton" in cls or (not w.text and w.content_desc and w.clickable):
        return "icon"
    if "ImageView" in cls:
        return "icon" if w.clickable else "image"
    if cls.endswith("Button") or (w.clickable and w.text and cls != "TextView"):
        return "button"
    return "text"


def _leaves(windows: tuple[Widget, ...], top_dialog: Widget | None) -> list[Widget]:
    """The leaf widgets a person can see and use: a dialog's only while one is open (behind it is dimmed)."""
    # system windows (the status bar) keep their tree on a canvas app: not the pixels' to explain
    shown = [top_dialog] if top_dialog is not None else [w for w in windows if _package(w) != _SYSTEMUI]
    return [x for win in shown for x in win.walk() if not x.children and (x.label or x.clickable or x.checkable
                                                                          or x.editable)]


# --- the wireframe's ground truth: the ink inside each leaf's bounds ----------------------------------


def _ink_truth(windows: tuple[Widget, ...], top_dialog: Widget | None, png: bytes, s: float, w: int,
               h: int) -> list[Drawn]:
    import numpy as np
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.int16)
    out = []
    for leaf in _leaves(windows, top_dialog):
        b = leaf.bounds
        x1, y1 = max(0, round(b.x1 * s)), max(0, round(b.y1 * s))
        x2, y2 = min(img.shape[1], round(b.x2 * s)), min(img.shape[0], round(b.y2 * s))
        if x2 - x1 < 3 or y2 - y1 < 3:
            continue
        crop = img[y1:y2, x1:x2]
        border = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]])
        bg = int(np.bincount(border.clip(0, 255).astype(np.int64)).argmax())
        ink = np.abs(crop - bg) > 40
        kind = _kind(leaf)
        if kind == "text":  # dividers and frames drawn by the row around a text are not the text
            ink[ink.mean(axis=1) > 0.8, :] = False
            ink[:, ink.mean(axis=0) > 0.8] = False
        ys, xs = np.nonzero(ink)
        if len(xs) == 0:
            continue
        if kind == "button" and bg < 128:  # a filled button: the fill is the box
            box = (x1, y1, x2, y2)
        else:
            box = (x1 + int(xs.min()), y1 + int(ys.min()), x1 + int(xs.max()) + 1, y1 + int(ys.max()) + 1)
        out.append(Drawn(kind, leaf.label, Bounds(*(round(v / s) for v in box)), leaf.clickable or leaf.checkable
                         or leaf.editable))
    return out


# --- the game's look --------------------------------------------------------------------------------

_NAVY = (22, 38, 78)
_BUTTON = (243, 133, 38)
_BUTTON_EDGE = (190, 92, 18)
_OFF = (158, 162, 176)
_ON = (62, 178, 92)


@lru_cache(maxsize=8)
def _font(size: int, bold: bool):  # noqa: ANN202 - a PIL font
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


@lru_cache(maxsize=4)
def _sky(w: int, h: int) -> bytes:
    import numpy as np

    t = np.linspace(0.0, 1.0, h)[:, None]
    top, bottom = np.array([86, 156, 222]), np.array([182, 218, 246])
    rows = (top * (1 - t) + bottom * t).astype(np.uint8)
    return np.repeat(rows[:, None, :], w, axis=1).tobytes()


class _GamePainter:
    def __init__(self, width: int, height: int, scale: float, *, tick: int) -> None:
        from PIL import Image, ImageDraw

        self.s = scale
        self.w, self.h = max(1, round(width * scale)), max(1, round(height * scale))
        self.img = Image.frombytes("RGB", (self.w, self.h), _sky(self.w, self.h))
        self.draw = ImageDraw.Draw(self.img)
        self.tick = tick
        self.dp = width * scale / 411.0
        self.drawn: list[Drawn] = []

    def px(self, b: Bounds) -> tuple[int, int, int, int]:
        s = self.s
        return round(b.x1 * s), round(b.y1 * s), round(b.x2 * s) - 1, round(b.y2 * s) - 1

    def note(self, kind: str, text: str, box: tuple[float, float, float, float], clickable: bool) -> None:
        x1, y1, x2, y2 = box
        s = self.s
        self.drawn.append(Drawn(kind, text, Bounds(round(x1 / s), round(y1 / s), round((x2 + 1) / s),
                                                   round((y2 + 1) / s)), clickable))

    def paint(self, windows: tuple[Widget, ...], top_dialog: Widget | None) -> tuple[bytes, list[Drawn]]:
        self.scenery()
        for win in windows:
            if win is top_dialog:
                self.img.paste(self.img.point(lambda v: v * 9 // 20))
                self.drawn.clear()  # what is behind a dialog cannot be used
                x1, y1, x2, y2 = self.px(win.bounds)
                self.draw.rounded_rectangle((x1, y1, x2, y2), radius=round(14 * self.dp), fill=(250, 250, 252),
                                            outline=_NAVY, width=2)
            for leaf in win.walk():
                if not leaf.children:
                    self.widget(leaf)
        self.bird()
        buf = io.BytesIO()
        self.img.save(buf, "PNG", compress_level=1)
        return buf.getvalue(), self.drawn

    def scenery(self) -> None:
        d, w, h, t = self.draw, self.w, self.h, self.tick
        for i, (y, size) in enumerate(((0.30, 1.0), (0.52, 0.8), (0.70, 1.2))):
            cx = (i * 211 + t * (17 + 6 * i)) % (w + 160) - 80
            cy, r = round(y * h), round(34 * size * self.dp)
            for dx, dy, k in ((-r, 4, 0.7), (0, 0, 1.0), (r, 6, 0.75)):
                rr = round(r * k)
                d.ellipse((cx + dx - rr, cy + dy - rr // 2, cx + dx + rr, cy + dy + rr // 2), fill=(226, 238, 250))
        ground = round(0.93 * h)
        d.rectangle((0, ground, w, h), fill=(92, 168, 78))
        for x in range(-(t * 7 % 24), w, 24):  # grass tufts that scroll with the game
            d.polygon(((x, ground), (x + 6, ground - 6), (x + 12, ground)), fill=(70, 140, 60))

    def bird(self) -> None:
        d, t = self.draw, self.tick
        r = round(9 * self.dp)
        x = (t * 41) % (self.w + 4 * r) - 2 * r
        y = round(0.88 * self.h + 0.02 * self.h * math.sin(t * 1.3))
        d.ellipse((x - r, y - r, x + r, y + r), fill=(250, 206, 48), outline=(150, 100, 20))
        d.polygon(((x + r, y - 2), (x + r + r // 2 + 2, y + 1), (x + r, y + 4)), fill=(240, 120, 30))
        d.ellipse((x + r // 3, y - r // 2, x + r // 3 + 3, y - r // 2 + 3), fill=(10, 10, 10))

    def widget(self, w: Widget) -> None:
        kind = _kind(w)
        x1, y1, x2, y2 = self.px(w.bounds)
        if x2 - x1 < 4 or y2 - y1 < 4:
            return
        if kind == "button":
            r = min(round(12 * self.dp), (y2 - y1) // 2)
            on = w.enabled
            d = self.draw
            d.rounded_rectangle((x1, y1 + 3, x2, y2), radius=r, fill=_BUTTON_EDGE if on else (120, 122, 134))
            d.rounded_rectangle((x1, y1, x2, y2 - 3), radius=r, fill=_BUTTON if on else _OFF)
            self.text(w.label, (x1, y1, x2, y2 - 3), (255, 255, 255) if on else (232, 232, 238), center=True,
                      size=18)
            self.note("button", w.label, (x1, y1, x2, y2), w.clickable)
        elif kind == "icon":
            size = min(x2 - x1, y2 - y1)
            cx, cy, r = (x1 + x2) // 2, (y1 + y2) // 2, size // 2 - round(10 * self.dp)
            self.draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 255, 255), outline=_NAVY, width=2)
            if w.label.lower().startswith(("navigate", "back")):  # a chevron
                half = r // 2
                self.draw.line((cx + half // 2, cy - half, cx - half // 2, cy, cx + half // 2, cy + half),
                               fill=_NAVY, width=max(2, r // 5))
            else:  # the pause bars
                bar_w, bar_h = max(2, r // 4), r
                for dx in (-r // 3, r // 3):
                    self.draw.rectangle((cx + dx - bar_w // 2, cy - bar_h // 2, cx + dx + bar_w // 2,
                                         cy + bar_h // 2), fill=_NAVY)
            self.note("icon", w.label, (cx - r, cy - r, cx + r, cy + r), True)
        elif kind == "switch":
            tw, th = round(46 * self.dp), round(24 * self.dp)
            cy = (y1 + y2) // 2
            tx = x2 - tw - round(8 * self.dp)
            self.draw.rounded_rectangle((tx, cy - th // 2, tx + tw, cy + th // 2), radius=th // 2,
                                        fill=_ON if w.checked else _OFF)
            kr = th // 2 - 3
            kx = tx + tw - th // 2 if w.checked else tx + th // 2
            self.draw.ellipse((kx - kr, cy - kr, kx + kr, cy + kr), fill=(255, 255, 255))
            tb = self.text(w.label, (x1, y1, tx - 4, y2), _NAVY, size=17)
            left = tb[0] if tb else tx
            self.note("switch", w.label, (left, min(cy - th // 2, tb[1] if tb else cy), tx + tw,
                                          max(cy + th // 2, tb[3] if tb else cy)), True)
        elif w.label:
            big = not w.resource_id or w.resource_id.endswith(":id/alertTitle")  # a screen's or a dialog's title
            tb = self.text(w.label, (x1, y1, x2, y2), _NAVY, size=24 if big else 18)
            if tb:
                self.note(kind if kind != "button" else "text", w.label, tb, w.clickable)

    def text(self, text: str, box: tuple[int, int, int, int], ink: tuple[int, int, int], *, size: int,
             center: bool = False) -> tuple[int, int, int, int] | None:
        """Draws one line of text in `box`; returns its ink box (None when nothing fits)."""
        x1, y1, x2, y2 = box
        font = _font(max(8, round(size * self.dp)), False)
        while text and font.getlength(text) > x2 - x1 - 4:
            text = text[:-1]
        if not text:
            return None
        bx1, by1, bx2, by2 = (round(v) for v in self.draw.textbbox((0, 0), text, font=font))
        tw, th = bx2 - bx1, by2 - by1
        x = (x1 + (x2 - x1 - tw) // 2 if center else x1 + 2) - bx1
        y = y1 + (y2 - y1 - th) // 2 - by1
        self.draw.text((x, y), text, font=font, fill=ink)
        return x + bx1, y + by1, x + bx2 - 1, y + by2 - 1


def hit(device: CanvasDevice, x: int, y: int) -> Widget | None:
    """The real widget under a point (tests: where would this touch land?)."""
    path = _hit_path(device.tree().root, x, y)
    return path[-1] if path else None
