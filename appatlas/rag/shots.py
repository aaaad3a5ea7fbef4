"""Screenshots for retrieval: which ones an atlas has (or renders), their scrolled variants, and the
realistic changes the screenshot benchmark applies (resolution, status bar, JPEG, a scrolled list).

A screen seen again is rarely pixel-identical: the list may sit one row further. The index
therefore stores, beside each screenshot, the same image with its list shifted up and down by
one row (the widget tree says where the list is and how tall a row is).
"""

from __future__ import annotations

import io
import random
from dataclasses import replace

from PIL import Image, ImageDraw

from appatlas.types import Bounds, Screen, Widget

__all__ = ["find_list", "resized", "scroll_tree", "scrolled_pixels", "scrolled_variants", "status_bar_changed",
           "to_jpeg"]

_LISTS = ("RecyclerView", "ListView", "GridView")


def find_list(root: Widget) -> Widget | None:
    """The first scrolling container whose children look like rows (3+, each under 40% of its height)."""
    for w in root.walk():
        kids = [c for c in w.children if c.bounds.height > 0]
        if (w.scrollable or w.class_name.endswith(_LISTS)) and len(kids) >= 3 \
                and max(c.bounds.height for c in kids) <= 0.4 * max(1, w.bounds.height):
            return w
    return None


def _row_height(lst: Widget) -> int:
    heights = sorted(c.bounds.height for c in lst.children if c.bounds.height > 0)
    return heights[len(heights) // 2] if heights else 0


def _encode(img: Image.Image, fmt: str = "PNG", **kw: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _shift(img: Image.Image, box: tuple[int, int, int, int], dy: int) -> Image.Image:
    """Slide the pixels inside `box` by `dy` (negative: up); the uncovered band repeats its neighbour."""
    out = img.copy()
    x1, y1, x2, y2 = box
    if dy < 0:
        out.paste(img.crop((x1, y1 - dy, x2, y2)), (x1, y1))
        out.paste(img.crop((x1, y2 + 2 * dy, x2, y2 + dy)), (x1, y2 + dy))
    elif dy > 0:
        out.paste(img.crop((x1, y1, x2, y2 - dy)), (x1, y1 + dy))
    return out


def scrolled_variants(image: bytes, screen: Screen) -> list[bytes]:
    """`image` with the screen's list shifted up and down by one row (empty when it has no list)."""
    lst = find_list(screen.root)
    if lst is None or screen.width <= 0:
        return []
    with Image.open(io.BytesIO(image)) as opened:
        img = opened.convert("L")
    f = img.width / screen.width
    b = lst.bounds
    box = (round(b.x1 * f), max(0, round(b.y1 * f)), round(b.x2 * f), min(img.height, round(b.y2 * f)))
    dy = min(round(_row_height(lst) * f), (box[3] - box[1]) // 3)
    if dy <= 0 or box[2] <= box[0]:
        return []
    return [_encode(_shift(img, box, -dy)), _encode(_shift(img, box, dy))]


# --- the benchmark's realistic changes --------------------------------------------------------------


def resized(image: bytes, factor: float) -> bytes:
    """The same screenshot at another resolution."""
    with Image.open(io.BytesIO(image)) as img:
        out = img.convert("RGB").resize((max(1, round(img.width * factor)), max(1, round(img.height * factor))),
                                        Image.Resampling.BILINEAR)
    return _encode(out)


def status_bar_changed(image: bytes, *, seed: int = 0, band: float = 0.035) -> bytes:
    """Another status bar: a different colour, other icons and clock."""
    rnd = random.Random(seed)
    with Image.open(io.BytesIO(image)) as img:
        out = img.convert("RGB")
    draw = ImageDraw.Draw(out)
    h = max(2, round(out.height * band))
    draw.rectangle((0, 0, out.width, h), fill=(rnd.randrange(256),) * 3)
    for _ in range(6):
        x = rnd.randrange(max(1, out.width - h))
        draw.rectangle((x, h // 4, x + h // 2, 3 * h // 4), fill=(255, 255, 255))
    return _encode(out)


def to_jpeg(image: bytes, quality: int = 60) -> bytes:
    with Image.open(io.BytesIO(image)) as img:
        return _encode(img.convert("RGB"), "JPEG", quality=quality)


def scroll_tree(root: Widget) -> Widget | None:
    """The widget tree with its list scrolled by one row (new rows move in from below); None: no list."""
    lst = find_list(root)
    if lst is None:
        return None
    dy, top = _row_height(lst), lst.bounds.y1

    def moved(w: Widget) -> Widget:
        b = w.bounds
        return replace(w, bounds=Bounds(b.x1, max(top, b.y1 - dy), b.x2, max(top, b.y2 - dy)),
                       children=tuple(moved(c) for c in w.children))

    scrolled = replace(lst, children=tuple(moved(c) for c in lst.children[1:]))

    def rebuilt(w: Widget) -> Widget:
        return scrolled if w is lst else replace(w, children=tuple(rebuilt(c) for c in w.children))

    return rebuilt(root)


def scrolled_pixels(image: bytes, screen: Screen) -> bytes | None:
    """A real screenshot with its list scrolled by one row; None when the screen has no list.

    The rows slide up and the row that left at the top comes in at the bottom (a new row of the
    same kind), unlike the index's own variants, which repeat the last band: the benchmark must
    not query with exactly what was indexed.
    """
    lst = find_list(screen.root)
    if lst is None or screen.width <= 0:
        return None
    with Image.open(io.BytesIO(image)) as opened:
        img = opened.convert("RGB")
    f = img.width / screen.width
    b = lst.bounds
    x1, y1, x2, y2 = round(b.x1 * f), max(0, round(b.y1 * f)), round(b.x2 * f), min(img.height, round(b.y2 * f))
    dy = min(round(_row_height(lst) * f), (y2 - y1) // 3)
    if dy <= 0 or x2 <= x1:
        return None
    out = img.copy()
    out.paste(img.crop((x1, y1 + dy, x2, y2)), (x1, y1))
    out.paste(img.crop((x1, y1, x2, y1 + dy)), (x1, y2 - dy))
    return _encode(out)
