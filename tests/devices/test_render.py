"""The wireframe renderer: deterministic bytes, readable differences, any tree, fast enough."""

from __future__ import annotations

import io
import struct
import time
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops

from appatlas.devices import render
from appatlas.devices.render import render_png
from appatlas.devices.virtual import VirtualDevice
from appatlas.hierarchy import ROOT_CLASS
from appatlas.types import Action, Bounds, Selector, Widget

W, H = 1080, 2280


def _widget(cls: str, box: tuple[int, int, int, int], **kw: object) -> Widget:
    return Widget(class_name=f"android.widget.{cls}", bounds=Bounds(*box), **kw)  # type: ignore[arg-type]


def _screen(*widgets: Widget) -> Widget:
    app = _widget("FrameLayout", (0, 0, W, H), children=widgets)
    return Widget(class_name=ROOT_CLASS, bounds=Bounds(0, 0, W, H), children=(app,))


LABEL = _widget("TextView", (40, 300, 1040, 380), text="Groceries")
FIELD = _widget("EditText", (40, 400, 1040, 540), hint="Title", editable=True, clickable=True)
CHECK = _widget("CheckBox", (40, 560, 1040, 686), text="Pin to top", checkable=True, clickable=True)
SWITCH = _widget("Switch", (40, 700, 1040, 826), text="Dark theme", checkable=True, clickable=True)


def _pixels(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("L")


def _differs(a: Widget, b: Widget) -> bool:
    return ImageChops.difference(_pixels(render_png(a, width=W, height=H)),
                                 _pixels(render_png(b, width=W, height=H))).getbbox() is not None


def _chunks(png: bytes) -> list[bytes]:
    out, at = [], 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at:at + 4])
        out.append(png[at + 4:at + 8])
        at += 12 + length
    return out


# --- determinism --------------------------------------------------------------------------------


def test_the_same_tree_gives_identical_bytes() -> None:
    tree = _screen(LABEL, FIELD, CHECK, SWITCH)
    assert render_png(tree, width=W, height=H) == render_png(tree, width=W, height=H)


def test_bytes_do_not_depend_on_the_glyph_cache() -> None:
    tree = _screen(LABEL, FIELD)
    warm = render_png(tree, width=W, height=H)
    render._glyphs.cache_clear()
    assert render_png(tree, width=W, height=H) == warm


def test_the_png_carries_no_metadata_chunks() -> None:
    chunks = _chunks(render_png(_screen(LABEL), width=W, height=H))
    assert set(chunks) <= {b"IHDR", b"PLTE", b"IDAT", b"IEND"} and b"IDAT" in chunks


def test_the_png_is_drawn_at_half_the_screen_size_by_default() -> None:
    assert _pixels(render_png(_screen(LABEL), width=W, height=H)).size == (540, 1140)


def test_scale_one_gives_a_full_size_png() -> None:
    assert _pixels(render_png(_screen(LABEL), width=W, height=H, scale=1.0)).size == (W, H)


def test_a_bad_size_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        render_png(_screen(LABEL), width=0, height=H)


# --- what the picture shows ---------------------------------------------------------------------


def test_a_label_change_changes_pixels() -> None:
    assert _differs(_screen(LABEL), _screen(LABEL.with_text("Groceries!")))


def test_typed_text_replaces_the_hint_in_pixels() -> None:
    assert _differs(_screen(FIELD), _screen(replace(FIELD, text="Milk")))


def test_a_password_is_drawn_as_dots_not_as_its_text() -> None:
    plain = _screen(replace(FIELD, text="secret"))
    hidden = _screen(replace(FIELD, text="secret", password=True))
    dots = _screen(replace(FIELD, text="\u2022" * 6, password=True))
    assert _differs(plain, hidden) and not _differs(hidden, dots)


def test_a_focused_field_looks_different() -> None:
    assert _differs(_screen(FIELD), _screen(replace(FIELD, focused=True)))


def test_checking_a_checkbox_changes_pixels() -> None:
    assert _differs(_screen(CHECK), _screen(replace(CHECK, checked=True)))


def test_switching_a_switch_changes_pixels() -> None:
    assert _differs(_screen(SWITCH), _screen(replace(SWITCH, checked=True)))


def test_no_status_bar_is_drawn_unless_the_tree_has_one() -> None:
    top = _pixels(render_png(_screen(LABEL), width=W, height=H)).crop((0, 0, 540, 30))
    assert top.getextrema() == (255, 255)


def test_a_status_bar_window_is_drawn_dark() -> None:
    bar = _widget("FrameLayout", (0, 0, W, 63), package="com.android.systemui",
                  children=(_widget("TextView", (42, 0, 168, 63), text="9:41"),))
    tree = _screen(LABEL)
    tree = replace(tree, children=(*tree.children, bar))
    assert _pixels(render_png(tree, width=W, height=H)).getpixel((300, 15)) < 64


def test_a_dialog_window_dims_the_screen_behind_it() -> None:
    dialog = _widget("FrameLayout", (100, 900, 980, 1300), children=(
        _widget("TextView", (140, 940, 940, 1020), text="Delete?"),))
    plain = _screen(LABEL)
    dimmed = replace(plain, children=(*plain.children, dialog))
    assert _pixels(render_png(dimmed, width=W, height=H)).getpixel((10, 900)) < 200


def test_a_virtual_screen_differs_after_typing(mini: VirtualDevice) -> None:
    mini.screenshots = True
    before = mini.snapshot().screenshot
    mini.perform(Action("type", Selector(resource_id="com.example.mini:id/email"), text="ana@example.com"))
    assert before != mini.snapshot().screenshot


# --- any tree, fast -----------------------------------------------------------------------------

_boxes = st.tuples(st.integers(-200, 1300), st.integers(-200, 2500), st.integers(0, 1200), st.integers(0, 2400))


@st.composite
def _trees(draw: st.DrawFn, depth: int = 0) -> Widget:
    x, y, w, h = draw(_boxes)
    kids = draw(st.lists(_trees(depth + 1), max_size=3)) if depth < 3 else []
    return Widget(
        class_name=draw(st.sampled_from(["android.widget.TextView", "android.widget.Button", "android.widget.EditText",
                                         "android.widget.CheckBox", "android.widget.Switch", "android.widget.ImageView",
                                         "android.widget.ImageButton", "android.view.View", "x"])),
        bounds=Bounds(x, y, x + w, y + h), text=draw(st.text(max_size=40)), content_desc=draw(st.text(max_size=8)),
        hint=draw(st.text(max_size=8)), checkable=draw(st.booleans()), checked=draw(st.booleans()),
        clickable=draw(st.booleans()), editable=draw(st.booleans()), password=draw(st.booleans()),
        children=tuple(kids))


@settings(max_examples=100)
@given(st.lists(_trees(), min_size=1, max_size=3))
def test_any_tree_renders_to_a_png(windows: list[Widget]) -> None:
    root = Widget(class_name=ROOT_CLASS, bounds=Bounds(0, 0, W, H), children=tuple(windows))
    assert render_png(root, width=W, height=H)[:4] == b"\x89PNG"


def test_a_typical_screen_renders_in_well_under_50_ms(demo: VirtualDevice) -> None:
    root = demo.snapshot().root  # the notes list: ~40 widgets
    render_png(root, width=W, height=H)
    best = min(_timed(lambda: render_png(root, width=W, height=H)) for _ in range(5))
    # CPU time of this thread, so other processes on the 2 shared cores do not count; typically ~5 ms,
    # 50 ms is 10x (the per-snapshot figure of docs/devices.md is measured by `appatlas bench devices`).
    assert best < 0.050


def _timed(fn: object) -> float:
    start = time.thread_time()
    fn()  # type: ignore[operator]
    return time.thread_time() - start
