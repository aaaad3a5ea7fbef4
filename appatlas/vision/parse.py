"""A screenshot into widgets: OCR lines and classical-vision controls, put together as a person reads them.

- a text in a filled box is a button (one line) or a row (several lines: the row is clickable,
  its lines stay texts);
- a pill to the right of a text is a switch, a square to its left a check box, both named by it;
- a circle with a glyph is an icon button, named by the glyph read inside it;
- a dark underline under a text (or alone) is a text field;
- while a dialog's card is shown over a dimmed screen, only what is on the card can be used: the
  texts behind it are kept disabled (they say which screen the dialog is over).

Widgets carry Android class names so the crawler, planner and agent treat them as any other
widget, bounds in screen pixels, and a `vision:` resource id made from their text with the
digits taken out, so a score or a clock that changes does not make a new screen (see
`appatlas.vision.identity`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from appatlas.types import Bounds, Widget
from appatlas.vision.controls import (
    Box,
    Pill,
    Ring,
    Square,
    _overlap,
    _shapes,
    find_modal,
    find_pills,
    find_rings,
    find_squares,
    find_underlines,
    region_around,
)
from appatlas.vision.ocr import Ocr, TextBox, load_ocr, worker_pool

__all__ = ["VISION_PREFIX", "Parsed", "decode_image", "iou", "parse_image", "parse_png", "slug"]

VISION_PREFIX = "vision:"
_CLASSES = {"button": "android.widget.Button", "text": "android.widget.TextView", "behind": "android.widget.TextView",
            "icon": "android.widget.ImageButton",
            "switch": "android.widget.Switch", "checkbox": "android.widget.CheckBox", "input": "android.widget.EditText",
            "row": "android.widget.LinearLayout"}


def slug(text: str) -> str:
    """A content-free name for a label: lower-case letters, every run of digits one '#'."""
    s = re.sub(r"\d[\d\s.,:/-]*", "#", text.lower()).replace("# ", "#")  # 9:41, 1 200, 3.5: one number
    s = re.sub(r"[^a-z#]+", "", s)  # spaces too: OCR drops some between words, and that is not another screen
    return s[:40]


@dataclass
class _Item:
    kind: str
    box: Box
    text: str = ""
    checked: bool = False
    children: list[_Item] = field(default_factory=list)


@dataclass(frozen=True)
class Parsed:
    """What was read off one screenshot: widgets (screen pixels), the dialog card if any, timings."""

    widgets: tuple[Widget, ...]
    modal: Bounds | None
    ms: float
    scale: float


def decode_image(png: bytes) -> Any:
    import cv2
    import numpy as np

    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("the screenshot is not a decodable image")
    return img


def parse_png(png: bytes, *, width: int, height: int, package: str = "", ocr: Ocr | None = None) -> Parsed:
    """Widgets on a PNG/JPEG screenshot of a `width` x `height` screen."""
    return parse_image(decode_image(png), width=width, height=height, package=package, ocr=ocr)


def parse_image(img: Any, *, width: int, height: int, package: str = "", ocr: Ocr | None = None) -> Parsed:
    ocr = ocr or load_ocr()  # loading the models (once) is not reading the screen
    started = time.perf_counter()
    # the OpenCV finders need no text: they run beside the OCR (OpenCV and onnxruntime release the GIL);
    # a few workers, so phones read at once (a campaign, the farm) do not queue behind one another
    pending = worker_pool("vision-controls", 4).submit(_controls, img)
    lines = ocr.read(img)
    items, modal = _assemble(img, lines, pending.result())
    s = width / img.shape[1]
    widgets = tuple(_widget(it, s, package) for it in items)
    mb = Bounds(*(round(v * s) for v in modal)) if modal is not None else None
    return Parsed(widgets, mb, 1000 * (time.perf_counter() - started), s)


# --- assembling --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Controls:
    """What the OpenCV finders see, before any text is known."""

    modal: Box | None
    pills: list[Pill]
    squares: list[Square]
    rings: list[Ring]
    unders: list[Box]


def _controls(img: Any) -> _Controls:
    shapes = _shapes(img)
    return _Controls(find_modal(img), find_pills(img, shapes), find_squares(img, shapes), find_rings(img, shapes),
                     find_underlines(img))


def _assemble(img: Any, lines: list[TextBox], found: _Controls | None = None) -> tuple[list[_Item], Box | None]:
    found = found if found is not None else _controls(img)
    modal = found.modal
    boxes = [(t.x1, t.y1, t.x2, t.y2) for t in lines]
    texts = [_Item("text", _tighten(img, b), t.text) for b, t in zip(boxes, lines, strict=True)]
    behind: list[_Item] = []
    if modal is not None:
        behind = [_Item("behind", t.box, t.text) for t in texts if not _inside(t.box, modal)]
        texts = [t for t in texts if _inside(t.box, modal)]
    pills = [p for p in found.pills if not _covers_text(p.box, texts)]
    # OCR reads a check box as a glyph ('□', ']'): the square wins, the glyph goes
    squares = [q for q in found.squares
               if not any(_overlap(q.box, t.box) > 0.3 and len(t.text.strip()) > 2 and not _leading_box(t, q.box)
                          for t in texts)]
    texts = [t for t in texts if not any(_inside(t.box, q.box, slack=3) for q in squares)]
    for t in texts:
        for q in squares:
            if _leading_box(t, q.box):  # "] Pin to top": the square's edge read as a letter
                t.text = t.text.lstrip("[]|□口I1l ")
                t.box = (max(t.box[0], q.box[2] + 1), t.box[1], t.box[2], t.box[3])
    # a ring is an icon only around a glyph or nothing, never across a word (the loops of 'o' and 'p')
    rings = [r for r in found.rings
             if not any(_overlap(r.box, t.box) > 0.2 and not (_inside(t.box, r.box, slack=4) and len(t.text) <= 5)
                        for t in texts)]
    unders = found.unders
    if modal is not None:
        pills = [p for p in pills if _inside(p.box, modal)]
        squares = [q for q in squares if _inside(q.box, modal)]
        rings = [r for r in rings if _inside(r.box, modal)]
        unders = [u for u in unders if _inside(u, modal)]
    items: list[_Item] = []
    used: set[int] = set()

    # round icons, named by the glyph inside them
    for r in rings:
        inside = [i for i, t in enumerate(texts) if i not in used and _inside(t.box, r.box, slack=4)]
        used.update(inside)
        items.append(_Item("icon", r.box, " ".join(texts[i].text for i in inside)))
    # switches and check boxes, named by the text on their row
    for p in pills:
        i = _label_for(texts, used, p.box, side="left")
        box = p.box if i is None else _union(p.box, texts[i].box)
        if i is not None:
            used.add(i)
        items.append(_Item("switch", box, texts[i].text if i is not None else "", p.on))
    for q in squares:
        if any(_overlap(q.box, it.box) > 0.5 for it in items):
            continue
        i = _label_for(texts, used, q.box, side="right")
        box = q.box if i is None else _union(q.box, texts[i].box)
        if i is not None:
            used.add(i)
        items.append(_Item("checkbox", box, texts[i].text if i is not None else "", q.on))
    # text fields: a dark underline, with the hint or value just above it
    for u in unders:
        if any(_overlap(u, it.box) > 0.5 for it in items):
            continue
        i = _above(texts, used, u)
        box = (u[0], texts[i].box[1] if i is not None else u[1] - 2 * (u[3] - u[1]) - 16, u[2], u[3])
        if i is not None:
            used.add(i)
        items.append(_Item("input", box, texts[i].text if i is not None else ""))
    # the rest: texts, alone or in a filled box
    groups: dict[Box, list[int]] = {}
    loose: list[int] = []
    for i, t in enumerate(texts):
        if i in used:
            continue
        region = region_around(img, t.box)
        if region is not None and modal is not None and (not _inside(region, modal, slack=2)
                                                          or iou(region, modal) > 0.8):
            region = None  # outside the card, or the card itself: the text sits on the dialog's ground
        left, right = (modal[0], modal[2]) if modal is not None else (0, img.shape[1])
        if region is not None and region[0] <= left + 2 and region[2] >= right - 2:
            region = None  # edge to edge (of the screen or the dialog): a bar, a panel, not a button
        if region is None:
            loose.append(i)
        else:
            key = next((k for k in groups if iou(k, region) > 0.7 or _inside(t.box, k)), region)
            groups.setdefault(key, []).append(i)
    for region, members in groups.items():
        if len(members) == 1 and _filled(img, region):
            items.append(_Item("button", region, texts[members[0]].text))
        else:  # a row: a box of the page's own colour (between dividers); its texts stay texts
            kids = _paragraphs([texts[i] for i in members])
            items.append(_Item("row", region, "", children=kids))
    items.extend(_paragraphs([texts[i] for i in loose]))
    items.extend(behind)
    items.sort(key=lambda it: (it.box[1] // 8, it.box[0]))
    return items, modal


def _paragraphs(texts: list[_Item]) -> list[_Item]:
    """Lines of one wrapped text become one text: left-aligned, close below each other, same height."""
    texts = sorted(texts, key=lambda t: (t.box[1], t.box[0]))
    out: list[_Item] = []
    for t in texts:
        prev = out[-1] if out else None
        if prev is not None:
            h = t.box[3] - t.box[1]
            ph = prev.box[3] - prev.box[1] if "\n" not in prev.text else h
            gap = t.box[1] - prev.box[3]
            if abs(t.box[0] - prev.box[0]) <= 0.5 * h and 0 <= gap <= 0.6 * h and abs(h - ph) <= 0.4 * max(h, ph):
                out[-1] = _Item("text", _union(prev.box, t.box), prev.text + "\n" + t.text)
                continue
        out.append(t)
    for t in out:
        t.text = t.text.replace("\n", " ")
    return out


def _label_for(texts: list[_Item], used: set[int], box: Box, *, side: str) -> int | None:
    cy = (box[1] + box[3]) / 2
    best, dist = None, 1e9
    for i, t in enumerate(texts):
        if i in used or not t.box[1] - 6 <= cy <= t.box[3] + 6:
            continue
        d = box[0] - t.box[2] if side == "left" else t.box[0] - box[2]
        if 0 <= d < dist:
            best, dist = i, d
    return best


def _above(texts: list[_Item], used: set[int], line: Box) -> int | None:
    best, dist = None, 1e9
    for i, t in enumerate(texts):
        if i in used or t.box[0] < line[0] - 4 or t.box[2] > line[2] + 4:
            continue
        d = line[1] - t.box[3]
        if 0 <= d <= 4.5 * (t.box[3] - t.box[1]) and d < dist:  # a multi-line field's text is far up
            best, dist = i, d
    return best


def _filled(img: Any, box: Box) -> bool:
    """Whether a box is painted in another colour than what is around it (a button, not a row)."""
    import numpy as np

    x1, y1, x2, y2 = box
    h, w = img.shape[:2]
    inside = img[y1 + 1:y2 - 1, x1 + 1:x2 - 1].reshape(-1, 3)
    ring = np.concatenate([img[max(0, y1 - 3), x1:x2], img[min(h - 1, y2 + 2), x1:x2],
                           img[y1:y2, max(0, x1 - 3)], img[y1:y2, min(w - 1, x2 + 2)]])
    if inside.size == 0 or ring.size == 0:
        return False
    return float(np.abs(np.median(inside, axis=0) - np.median(ring, axis=0)).sum()) > 40


def _leading_box(t: _Item, square: Box) -> bool:
    """A text whose first glyph is the square's right edge (OCR took the box into the line)."""
    return t.box[0] <= square[2] and t.box[2] > square[2] + 2 * (square[2] - square[0]) and \
        abs((t.box[1] + t.box[3]) / 2 - (square[1] + square[3]) / 2) < (square[3] - square[1])


def _covers_text(box: Box, texts: list[_Item], *, small: bool = False) -> bool:
    """A shape found around a text is the text's own box (a button's outline), not a control."""
    return any(_overlap(box, t.box) > (0.3 if small else 0.5) for t in texts)


def _tighten(img: Any, box: Box) -> Box:
    """A detector's box shrunk to the ink of the text in it."""
    import numpy as np

    x1, y1, x2, y2 = box
    crop = img[y1:y2, x1:x2].astype(np.int16)
    if crop.size == 0:
        return box
    border = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]])
    bg = np.median(border, axis=0)
    ink = np.abs(crop - bg).sum(axis=2) > 90
    rows = ink.any(axis=1)
    if not rows.any():
        return box
    # the run of inked rows around the text's middle: a box that spills over a band's edge (the
    # status bar's) must not take the band below as ink
    mid = len(rows) // 2
    if not rows[mid]:
        near = np.nonzero(rows)[0]
        mid = int(near[np.argmin(np.abs(near - mid))])
    top = bottom = mid
    while top > 0 and rows[top - 1:top].any() or top > 1 and rows[top - 2]:
        top -= 1
    while bottom < len(rows) - 1 and (rows[bottom + 1] or bottom < len(rows) - 2 and rows[bottom + 2]):
        bottom += 1
    xs = np.nonzero(ink[top:bottom + 1].any(axis=0))[0]
    return (x1 + int(xs.min()), y1 + top, x1 + int(xs.max()) + 1, y1 + bottom + 1)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def _inside(a: Box, b: Box, *, slack: int = 0) -> bool:
    return a[0] >= b[0] - slack and a[1] >= b[1] - slack and a[2] <= b[2] + slack and a[3] <= b[3] + slack


def _union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


# --- widgets -----------------------------------------------------------------------------------------


def _widget(it: _Item, s: float, package: str, *, in_row: bool = False) -> Widget:
    x1, y1, x2, y2 = it.box
    bounds = Bounds(round(x1 * s), round(y1 * s), round(x2 * s), round(y2 * s))
    name = slug(it.text)
    kind = it.kind
    text = it.text if kind not in ("icon",) else ""
    children = tuple(_widget(c, s, package, in_row=True) for c in it.children)
    if kind == "row" or in_row:
        name = "row"  # a row's texts are its data (as rows of a list are): a list scrolled is the same screen
    elif kind == "input":
        name = "field"  # what is typed in a field is not what the screen is
    rid = f"{VISION_PREFIX}{kind}_{name}" if name else f"{VISION_PREFIX}{kind}"
    return Widget(class_name=_CLASSES[kind], bounds=bounds, resource_id=rid, text=text,
                  content_desc=it.text if kind == "icon" else "", package=package,
                  clickable=kind not in ("text", "behind"), enabled=kind != "behind",
                  editable=kind == "input", checkable=kind in ("switch", "checkbox"),
                  long_clickable=kind == "row",  # list rows often answer a long press (a menu of actions)
                  checked=it.checked, children=children)
