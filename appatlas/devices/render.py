"""Draws a widget tree as a readable grayscale wireframe PNG.

Works on any tree (a virtual app's, or one parsed from a recorded dump): widgets are drawn by
what their class and flags say they are. Rendering happens at `scale` (half resolution by
default) in 8-bit grayscale, because PNG encoding dominates the cost and a wireframe needs no
colour; text is composed from a per-size glyph cache, which is ~6x faster than drawing each
label with FreeType, and whole lines are cached because screens repeat during a crawl. The
same tree always gives the same bytes (no metadata, no timestamps).
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from appatlas.hierarchy import ROOT_CLASS
from appatlas.types import Widget

__all__ = ["render_png"]

# gray levels
_PAPER, _INK, _SOFT, _FAINT, _LINE, _BAR, _BUTTON = 255, 30, 120, 150, 205, 236, 70
_ICON_GLYPHS = {"navigate up": "<", "back": "<", "more options": "...", "search": "?", "add": "+",
                "close": "x", "menu": "="}
_MAX_GLYPHS = 2048  # per size; arbitrary Unicode must not grow the cache without bound
_MAX_LINES = 1024  # line masks kept per size (~8 MB at most)
_DIM = [v * 11 // 20 for v in range(256)]  # what a window behind a dialog looks like


def render_png(root: Widget, *, width: int, height: int, scale: float = 0.5) -> bytes:
    """A PNG wireframe of `root` on a `width` x `height` screen, drawn at `scale` of its size."""
    if width <= 0 or height <= 0:
        raise ValueError(f"screen size must be positive, got {width}x{height}")
    if not 0.05 <= scale <= 2:
        raise ValueError(f"scale must be in 0.05..2, got {scale}")
    canvas = _Canvas(width, height, scale)
    windows = root.children if root.class_name == ROOT_CLASS else (root,)
    for i, window in enumerate(windows):
        canvas.window(window, first=i == 0)
    buf = io.BytesIO()
    # A palette PNG of the gray levels: same pixels, same size, but Pillow skips PNG row filters
    # for palette images, which halves the encoding time.
    canvas.img.convert("P").save(buf, "PNG", compress_level=1)
    return buf.getvalue()


class _Glyphs:
    """Glyph masks of the default font at one pixel size, made on first use."""

    def __init__(self, size: int) -> None:
        self.font = ImageFont.load_default(size=size)
        self.size = size
        ascent, descent = self.font.getmetrics()  # type: ignore[union-attr]
        self.height = ascent + descent
        self.cache: dict[str, tuple[float, int, int, Image.Image | None]] = {}
        self.pad = max(2, size // 3)  # room for glyphs that reach left of or above their origin
        self.lines: OrderedDict[str, Image.Image] = OrderedDict()
        self.lock = threading.Lock()

    def glyph(self, ch: str) -> tuple[float, int, int, Image.Image | None]:
        g = self.cache.get(ch)
        if g is None:
            font = self.font
            advance = float(font.getlength(ch))
            x0, y0, x1, y1 = (int(v) for v in font.getbbox(ch))
            mask = None
            if x1 > x0 and y1 > y0 and not ch.isspace():
                mask = Image.new("L", (x1 - x0, y1 - y0), 0)
                ImageDraw.Draw(mask).text((-x0, -y0), ch, font=font, fill=255)
            g = (advance, x0, y0, mask)
            if len(self.cache) < _MAX_GLYPHS:
                self.cache[ch] = g
        return g

    def length(self, text: str) -> float:
        return sum(self.glyph(c)[0] for c in text)

    def line(self, text: str) -> Image.Image:
        """A mask of a whole line, its origin at (pad, pad); recent lines are kept (screens repeat)."""
        with self.lock:  # devices may render from several threads; the LRU order must stay whole
            mask = self.lines.get(text)
            if mask is not None:
                self.lines.move_to_end(text)
                return mask
        mask = Image.new("L", (int(self.length(text)) + 2 * self.pad + 1, self.height + 2 * self.pad), 0)
        x = float(self.pad)
        for ch in text:
            advance, gx, gy, g = self.glyph(ch)
            if g is not None:
                mask.paste(255, (round(x) + gx, self.pad + gy), g)
            x += advance
        with self.lock:
            self.lines[text] = mask
            if len(self.lines) > _MAX_LINES:
                self.lines.popitem(last=False)
        return mask

    def fit(self, text: str, room: float) -> str:
        """`text` cut with an ellipsis to fit `room` pixels."""
        if self.length(text) <= room:
            return text
        out, used, dots = [], 0.0, self.length("\u2026")
        for c in text:
            adv = self.glyph(c)[0]
            if used + adv + dots > room:
                break
            out.append(c)
            used += adv
        return "".join(out) + "\u2026"

    def wrap(self, text: str, room: float, max_lines: int) -> list[str]:
        lines: list[str] = []
        for para in text.split("\n"):
            line = ""
            for word in para.split(" "):
                candidate = f"{line} {word}" if line else word
                if self.length(candidate) <= room or not line:
                    line = candidate
                else:
                    lines.append(line)
                    line = word
            lines.append(line)
        if len(lines) > max_lines:
            lines = lines[:max_lines]
            lines[-1] = lines[-1] + "\u2026"
        return [self.fit(s, room) for s in lines]


@lru_cache(maxsize=16)
def _glyphs(size: int) -> _Glyphs:
    return _Glyphs(size)


class _Canvas:
    def __init__(self, width: int, height: int, scale: float) -> None:
        self.s = scale
        self.w, self.h = max(1, round(width * scale)), max(1, round(height * scale))
        self.img = Image.new("L", (self.w, self.h), _PAPER)
        self.draw = ImageDraw.Draw(self.img)
        self.dp = width * scale / 411.0  # one Android dp, in canvas pixels
        self.body = _glyphs(max(6, round(15 * self.dp)))
        self.big = _glyphs(max(7, round(19 * self.dp)))

    def box(self, w: Widget) -> tuple[int, int, int, int]:
        b, s = w.bounds, self.s
        return round(b.x1 * s), round(b.y1 * s), round(b.x2 * s) - 1, round(b.y2 * s) - 1

    # windows -----------------------------------------------------------------------------------

    def window(self, w: Widget, *, first: bool) -> None:
        x1, y1, x2, y2 = self.box(w)
        if x2 <= x1 or y2 <= y1:
            return
        full = (x2 - x1) * (y2 - y1) >= 0.9 * self.w * self.h
        if y1 <= 0 and (y2 - y1) < 0.05 * self.h and x2 - x1 >= 0.9 * self.w:  # a status bar
            self.draw.rectangle((x1, y1, x2, y2), fill=_INK)
            self.children(w, ink=_PAPER)
            return
        if not first and not full:  # a dialog: dim what is behind, then a card
            self.img.paste(self.img.point(_DIM))
            self.draw.rounded_rectangle((x1, y1, x2, y2), radius=round(6 * self.dp), fill=_PAPER, outline=_INK)
        self.children(w, ink=_INK)

    def children(self, w: Widget, *, ink: int) -> None:
        for c in w.children:
            self.widget(c, ink=ink, parent=w)

    # widgets -----------------------------------------------------------------------------------

    def widget(self, w: Widget, *, ink: int, parent: Widget) -> None:
        x1, y1, x2, y2 = self.box(w)
        if x2 <= x1 or y2 <= y1 or x1 >= self.w or y1 >= self.h:
            return
        cls = w.class_name.rsplit(".", 1)[-1]
        if w.children:
            if w.bounds != parent.bounds:  # a wrapper of the same size adds no box
                self.container(w, cls, (x1, y1, x2, y2))
            self.children(w, ink=ink)
        elif w.editable or cls.endswith("EditText"):
            self.field(w, (x1, y1, x2, y2))
        elif w.checkable or "CheckBox" in cls or "Switch" in cls or "RadioButton" in cls:
            self.check(w, cls, (x1, y1, x2, y2))
        elif "ImageButton" in cls or "ImageView" in cls or (not w.text and w.content_desc and w.clickable):
            self.picture(w, cls, (x1, y1, x2, y2))
        elif cls.endswith("Button") or (w.clickable and w.text and cls != "TextView"):
            self.button(w, (x1, y1, x2, y2))
        elif w.label:
            self.text(w.label, (x1, y1, x2, y2), ink=ink if w.text else _SOFT)

    def container(self, w: Widget, cls: str, box: tuple[int, int, int, int]) -> None:
        rid = w.resource_id.rsplit("/", 1)[-1].lower()
        if "Toolbar" in cls or "toolbar" in rid or "action_bar" in rid:
            self.draw.rectangle(box, fill=_BAR)
        elif w.clickable or w.long_clickable:  # a row: a divider under it
            self.draw.line((box[0], box[3], box[2], box[3]), fill=_LINE)
        elif w.scrollable or box[2] - box[0] < 0.95 * self.w:  # full-width layouts need no frame
            self.draw.rectangle(box, outline=_LINE)

    def button(self, w: Widget, box: tuple[int, int, int, int]) -> None:
        r = max(1, min(round(8 * self.dp), (box[3] - box[1]) // 2))
        fill = _BUTTON if w.enabled else _LINE
        self.draw.rounded_rectangle(box, radius=r, fill=fill)
        self.text(w.label, box, ink=_PAPER, center=True)

    def field(self, w: Widget, box: tuple[int, int, int, int]) -> None:
        x1, y1, x2, y2 = box
        width = 2 if w.focused else 1
        self.draw.rectangle((x1, y2 - width, x2, y2), fill=_INK if w.focused else _SOFT)
        if w.text and w.password:  # dots, drawn: the default font has no bullet glyph
            r = max(1, round(3 * self.dp))
            step, cy = 3 * r, (y1 + y2) // 2
            for i in range(min(len(w.text), max(0, (x2 - x1 - 4) // step))):
                cx = x1 + 2 + r + i * step
                self.draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_INK)
        elif w.text:
            self.text(w.text, (x1 + 2, y1, x2, y2 - 2), ink=_INK)
        elif w.hint or w.content_desc:
            self.text(w.hint or w.content_desc, (x1 + 2, y1, x2, y2 - 2), ink=_FAINT)

    def check(self, w: Widget, cls: str, box: tuple[int, int, int, int]) -> None:
        x1, y1, x2, y2 = box
        cy = (y1 + y2) // 2
        if "Switch" in cls or "Toggle" in cls:
            tw, th = round(34 * self.dp), round(14 * self.dp)
            tx = x2 - tw
            self.draw.rounded_rectangle((tx, cy - th // 2, x2, cy + th // 2), radius=th // 2,
                                        fill=_BUTTON if w.checked else _LINE)
            kr = round(10 * self.dp)
            kx = x2 - kr if w.checked else tx + kr
            self.draw.ellipse((kx - kr, cy - kr, kx + kr, cy + kr), fill=_INK if w.checked else _PAPER, outline=_INK)
            self.text(w.label, (x1, y1, tx - 4, y2), ink=_INK)
            return
        size = round(18 * self.dp)
        bx = (x1 + 2, cy - size // 2, x1 + 2 + size, cy + size // 2)
        if w.checked:
            self.draw.rectangle(bx, fill=_INK)
            self.draw.line((bx[0] + size // 5, cy, bx[0] + size // 2 - 1, bx[3] - size // 4,
                            bx[2] - size // 6, bx[1] + size // 5), fill=_PAPER, width=max(1, size // 7))
        else:
            self.draw.rectangle(bx, outline=_INK, width=max(1, size // 9))
        self.text(w.label, (bx[2] + round(10 * self.dp), y1, x2, y2), ink=_INK)

    def picture(self, w: Widget, cls: str, box: tuple[int, int, int, int]) -> None:
        x1, y1, x2, y2 = box
        small = x2 - x1 <= 0.25 * self.w and y2 - y1 <= 0.25 * self.w
        if "ImageView" in cls and not w.clickable and not small:  # a picture placeholder: a crossed box
            self.draw.rectangle(box, outline=_SOFT)
            self.draw.line((x1, y1, x2, y2), fill=_LINE)
            self.draw.line((x1, y2, x2, y1), fill=_LINE)
            if w.label:
                self.text(w.label, box, ink=_SOFT, center=True)
            return
        # an icon: a ring with the description's first letters (or the whole short label)
        size = min(x2 - x1, y2 - y1) - 2
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        r = max(2, size // 2 - round(4 * self.dp))
        self.draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=_INK, width=max(1, round(self.dp)))
        label = _ICON_GLYPHS.get(w.label.lower(), w.label)
        if label.lower().startswith(("new ", "add ", "create ")):
            label = "+"
        if label and self.body.length(label) > 2 * r - 4:
            label = "".join(p[0] for p in label.split()[:2]).upper()
        if label:
            self.text(label, (cx - r, cy - r, cx + r, cy + r), ink=_INK, center=True)

    # text ---------------------------------------------------------------------------------------

    def text(self, text: str, box: tuple[int, int, int, int], *, ink: int, center: bool = False) -> None:
        x1, y1, x2, y2 = box
        room_w, room_h = x2 - x1 - 2, y2 - y1
        if room_w <= 4 or room_h <= 4 or not text:
            return
        glyphs = self.body
        if room_h >= 2.2 * self.big.height and self.big.length(text) <= room_w and "\n" not in text:
            glyphs = self.big  # a tall one-line label (a title) reads better larger
        max_lines = max(1, room_h // glyphs.height)
        lines = glyphs.wrap(text, room_w, max_lines) if max_lines > 1 else [glyphs.fit(text, room_w)]
        y = y1 + (room_h - len(lines) * glyphs.height) // 2
        for line in lines:
            x = x1 + 1 + ((room_w - glyphs.length(line)) / 2 if center else 0)
            self.line(glyphs, line, x, y, ink)
            y += glyphs.height

    def line(self, glyphs: _Glyphs, text: str, x: float, y: int, ink: int) -> None:
        self.img.paste(ink, (round(x) - glyphs.pad, y - glyphs.pad), glyphs.line(text))
