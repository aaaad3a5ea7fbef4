"""Non-text controls found by classical vision (OpenCV): the box around a label, switches, check
boxes, round icons, text-field underlines, and the card of a modal dialog.

Each finder works on the BGR screenshot in image pixels and knows nothing of widgets; `parse`
turns what they find into widgets. Thresholds are in pixels of a ~540 px wide image (a phone
screenshot at half size) and scale with the image width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Box", "Pill", "Ring", "Square", "find_modal", "find_pills", "find_rings", "find_squares",
           "find_underlines", "region_around"]

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 (exclusive)


@dataclass(frozen=True, slots=True)
class Pill:
    """A switch's track and knob; `on` when the knob sits at the right end."""

    box: Box
    on: bool


@dataclass(frozen=True, slots=True)
class Square:
    """A check box; `on` when it is filled."""

    box: Box
    on: bool


@dataclass(frozen=True, slots=True)
class Ring:
    """A round icon: a circle with a glyph inside."""

    box: Box


def _cv() -> Any:
    import cv2

    return cv2


def region_around(img: Any, text: Box, *, tol: int = 12) -> Box | None:
    """The filled box a text sits in (a button, a tile, a list row), or None when the text sits on the
    open background (the fill from beside it leaks over much of the screen)."""
    import numpy as np

    cv2 = _cv()
    h, w = img.shape[:2]
    x1, y1, x2, y2 = text
    best: Box | None = None
    off = max(4, (y2 - y1) // 3)  # away from the glyphs: JPEG rings around them
    for sx, sy in ((x1 - off, (y1 + y2) // 2), (x2 + off - 1, (y1 + y2) // 2), ((x1 + x2) // 2, y1 - off)):
        if not (0 <= sx < w and 0 <= sy < h):
            continue
        mask = np.zeros((h + 2, w + 2), np.uint8)
        flags = 4 | cv2.FLOODFILL_MASK_ONLY | (255 << 8)
        _, _, _, rect = cv2.floodFill(img, mask, (sx, sy), 0, (tol,) * 3, (tol,) * 3, flags)
        rx, ry, rw, rh = rect
        if rw * rh > 0.3 * w * h or rh > 0.3 * h:
            return None  # the open background
        if not (rx <= x1 and ry <= y1 and rx + rw >= x2 and ry + rh >= y2):
            continue  # a small patch beside the text, not around it
        filled = int(np.count_nonzero(mask[ry + 1:ry + rh + 1, rx + 1:rx + rw + 1]))
        holes = (x2 - x1) * (y2 - y1)
        if (filled + holes) / (rw * rh) < 0.7:
            continue
        box = (rx, ry, rx + rw, ry + rh)
        if best is None or rw * rh < (best[2] - best[0]) * (best[3] - best[1]):
            best = box
    return best


def find_modal(img: Any) -> Box | None:
    """A dialog's card: a bright rectangle in the middle of a dimmed screen."""
    import numpy as np

    cv2 = _cv()
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    h, w = gray.shape
    bright = (gray >= 232).astype(np.uint8)
    bright = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))  # across 1-2 px rules
    n, labels, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=4)
    best = None
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        if not 0.04 * w * h <= bw * bh <= 0.85 * w * h or bw < 0.5 * w or area < 0.4 * bw * bh:
            continue
        if x < 0.02 * w or x + bw > 0.98 * w:
            continue  # edge to edge: the page itself; a dialog keeps a margin
        if best is None or bw * bh > best[2] * best[3]:
            best = (x, y, bw, bh, i)
    if best is None:
        return None
    x, y, bw, bh, i = best
    outside = np.ones_like(gray, bool)
    outside[y:y + bh, x:x + bw] = False
    if float(gray[outside].mean()) > 0.62 * float(gray[labels == i].mean()):
        return None  # nothing is dimmed: a bright panel of the screen itself
    return (x, y, x + bw, y + bh)


def _edges(img: Any) -> Any:
    cv2 = _cv()
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return cv2.Canny(gray, 40, 120)


def _shapes(img: Any) -> list[tuple[Box, float, Any]]:
    """Closed outer shapes: (box, circularity, contour)."""
    import numpy as np

    cv2 = _cv()
    edges = cv2.dilate(_edges(img), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in contours:
        x, y, bw, bh = cv2.boundingRect(c)
        if bw < 6 or bh < 6:
            continue
        area = cv2.contourArea(c)
        per = cv2.arcLength(c, True)
        circ = 4 * np.pi * area / (per * per) if per else 0.0
        out.append(((x, y, x + bw, y + bh), circ, c))
    return out


def find_pills(img: Any, shapes: list[tuple[Box, float, Any]] | None = None) -> list[Pill]:
    """Switches: a rounded track about twice as wide as tall, knob at one end."""
    import numpy as np

    w = img.shape[1]
    unit = w / 540
    out: list[Pill] = []
    cv2 = _cv()
    shapes = shapes if shapes is not None else _shapes(img)
    for (x1, y1, x2, y2), _circ, _c in shapes:
        bw, bh = x2 - x1, y2 - y1
        if not (10 * unit <= bh <= 40 * unit and 1.4 <= bw / bh <= 3.0):
            continue
        crop = img[y1:y2, x1:x2].astype(np.int16)
        if cv2.contourArea(_c) < 0.65 * bw * bh:
            continue  # a stadium fills ~85% of its box; a ring crossed by a line does not
        # rounded ends: the box's corners show what is around the switch, not the track
        outside = img[max(0, y1 - 2), max(0, x1 - 2)].astype(np.int16)
        if np.abs(crop[1, 1] - outside).sum() > 60 or np.abs(crop[-2, -2] - outside).sum() > 60:
            continue
        box = (x1, y1, x2, y2)
        if any(_overlap(box, p.box) > 0.3 for p in out):
            continue
        # the knob: a round shape inside the track, at least half its height; on when it sits right
        knobs = [k for k, c, _ in shapes if c > 0.75 and k != box and _overlap(k, box) > 0.9
                 and k[3] - k[1] >= 0.5 * bh and k[2] - k[0] <= 0.7 * bw]
        if knobs:
            k = max(knobs, key=lambda k: k[3] - k[1])
            out.append(Pill(box, (k[0] + k[2]) / 2 > (x1 + x2) / 2))
            continue
        # no knob outline: the end whose columns differ from the middle of the track
        mid = crop[bh // 2, bw // 2]
        diff = np.abs(crop[bh // 4:bh - bh // 4] - mid).sum(axis=2).mean(axis=0)  # per column
        cols = np.arange(bw)
        ends = diff > 60
        if not ends.any():
            continue
        centre = float((cols[ends] * diff[ends]).sum() / diff[ends].sum())
        out.append(Pill(box, centre > bw / 2))
    return out


def find_squares(img: Any, shapes: list[tuple[Box, float, Any]] | None = None) -> list[Square]:
    """Check boxes: small squares, outlined (off) or filled (on)."""
    import numpy as np

    cv2 = _cv()
    w = img.shape[1]
    unit = w / 540
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    out: list[Square] = []
    for (x1, y1, x2, y2), circ, c in shapes if shapes is not None else _shapes(img):
        bw, bh = x2 - x1, y2 - y1
        if not (10 * unit <= bw <= 34 * unit and 0.85 <= bw / bh <= 1.18):
            continue
        fill = cv2.contourArea(c) / (bw * bh)
        if fill < 0.7 or (circ > 0.8 and fill < 0.86):
            continue  # a glyph's outline does not enclose its box; a disc (a sprite) covers pi/4 of it
        approx = cv2.approxPolyDP(c, 0.08 * cv2.arcLength(c, True), True)
        if len(approx) != 4:
            continue
        box = (x1, y1, x2, y2)
        if any(_overlap(box, s.box) > 0.3 for s in out):
            continue
        inner = gray[y1 + bh // 4:y2 - bh // 4, x1 + bw // 4:x2 - bw // 4]
        border = np.concatenate([gray[y1, x1:x2], gray[y2 - 1, x1:x2]])
        on = abs(float(np.median(inner)) - 255) > 100 and abs(float(np.median(inner)) - float(np.median(border))) < 60
        out.append(Square(box, on))
    return out


def find_rings(img: Any, shapes: list[tuple[Box, float, Any]] | None = None) -> list[Ring]:
    """Round icons: a circle 16-70 px across with a glyph inside (a bare disc is a sprite, not a control)."""
    import numpy as np

    cv2 = _cv()
    w = img.shape[1]
    unit = w / 540
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    out: list[Ring] = []
    candidates = []
    for (x1, y1, x2, y2), circ, c in shapes if shapes is not None else _shapes(img):
        bw, bh = x2 - x1, y2 - y1
        if not (16 * unit <= bw <= 70 * unit and 0.85 <= bw / bh <= 1.18 and circ > 0.8):
            continue  # a square's circularity is 0.79, a circle's ~0.9
        if cv2.contourArea(c) > 0.86 * bw * bh:
            continue  # a circle covers pi/4 of its box, a (rounded) square nearly all of it
        candidates.append((x1, y1, x2, y2))
    # circles whose outline is crossed by other lines (a floating button over a list) have no closed
    # contour: the Hough transform still finds them, kept when edges run along most of the circle
    edges = _edges(img)
    found = cv2.HoughCircles(gray, cv2.HOUGH_GRADIENT, dp=1, minDist=20 * unit, param1=120, param2=22,
                             minRadius=round(8 * unit), maxRadius=round(35 * unit))
    for cx, cy, r in (found[0] if found is not None else []):
        angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        px = np.clip(np.round(cx + r * np.cos(angles)).astype(int), 0, img.shape[1] - 1)
        py = np.clip(np.round(cy + r * np.sin(angles)).astype(int), 0, img.shape[0] - 1)
        near = cv2.dilate(edges, np.ones((3, 3), np.uint8))[py, px] > 0
        # only hollow rings (the same colour inside as around): a filled disc has a closed contour
        # already, and a filled disc found here is a sprite (the bird)
        ix, ox = int(cx - 0.6 * r), int(cx - 1.3 * r)
        inside, around = img[int(cy), ix].astype(int), img[int(cy), max(0, ox)].astype(int)
        if near.mean() >= 0.75 and 0 <= ox and int(np.abs(inside - around).sum()) < 45:
            candidates.append((int(cx - r), int(cy - r), int(cx + r) + 1, int(cy + r) + 1))
    for x1, y1, x2, y2 in candidates:
        x1, y1 = max(0, x1), max(0, y1)
        bw, bh = x2 - x1, y2 - y1
        box = (x1, y1, x2, y2)
        if any(_overlap(box, r.box) > 0.3 for r in out):
            continue
        m = bw // 4
        inner = gray[y1 + m:y2 - m, x1 + m:x2 - m].astype(np.int16)
        if inner.size == 0:
            continue
        bg = int(np.median(gray[y1 + bh // 2, x1 + 3:x1 + m]) if m > 3 else np.median(inner))
        mask = np.abs(inner - bg) > 60
        ys = np.nonzero(mask.any(axis=1))[0]
        # a glyph: some ink, standing at least a third of the inside tall (a sprite's eye is a dot)
        if len(ys) == 0 or not 0.015 <= float(mask.mean()) <= 0.6 or ys[-1] - ys[0] + 1 < 0.28 * inner.shape[0]:
            continue
        out.append(Ring(box))
    return out


def find_underlines(img: Any) -> list[Box]:
    """Text-field underlines: long, thin, dark horizontal lines (list dividers are light)."""
    import numpy as np

    cv2 = _cv()
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    h, w = gray.shape
    dark = (gray < 140).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (max(20, w // 6), 1))
    lines = cv2.morphologyEx(dark, cv2.MORPH_OPEN, kernel)
    n, _, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
    out = []
    for i in range(1, n):
        x, y, bw, bh, _ = stats[i]
        if bh > 4 or bw >= 0.99 * w or y < 3 or y + bh + 3 > h:
            continue
        # a line drawn on one background: the same colour above and below it (a button's shadow edge
        # has the button above and the screen below)
        above = img[y - 3, x + bw // 4:x + 3 * bw // 4].astype(np.int16)
        below = img[y + bh + 2, x + bw // 4:x + 3 * bw // 4].astype(np.int16)
        line = img[y + bh // 2, x + bw // 4:x + 3 * bw // 4].astype(np.int16)
        darker = float(above.mean() - line.mean()) > 40
        # the top or bottom edge of a frame (a picture's box) has sides going down or up from its ends
        ends = [cx for end in (x, x + bw - 1) for cx in range(max(0, end - 4), min(w, end + 5))]
        side = [v for cx in ends for v in (dark[max(0, y - 9):max(0, y - 1), cx], dark[y + bh + 1:y + bh + 9, cx])]
        if any(len(v) and v.mean() > 0.7 for v in side):
            continue
        if darker and float(np.abs(above - below).sum(axis=1).mean()) < 40:
            out.append((x, y, x + bw, y + bh))
    return out


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / small if small else 0.0
