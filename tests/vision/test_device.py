"""Pixels end to end: a canvas app behind the local adb + uiautomator2 server, seen by the real
client as one SurfaceView, read and driven through VisionDevice; the tree wins where it speaks."""

from __future__ import annotations

import uiautomator2 as u2
from typer.testing import CliRunner

from appatlas.cli import app as cli
from appatlas.devices.canvas import SURFACE_CLASS
from appatlas.devices.fakeadb import FakeAdbServer
from appatlas.devices.u2 import connect
from appatlas.devices.virtual import open_app
from appatlas.graph.atlas import Atlas
from appatlas.hierarchy import ROOT_CLASS
from appatlas.types import Action, ActionKind, Bounds, Screen, Selector, Widget
from appatlas.vision.device import VisionDevice, annotate_png, is_vision
from appatlas.vision.merge import holes, merge


def test_the_real_client_sees_one_surface_and_vision_taps_detected_boxes(ocr) -> None:  # noqa: ANN001
    game = open_app("canvas:game")
    with FakeAdbServer([game], port=0) as server:
        import adbutils

        stock = u2.connect(adbutils.AdbClient(host=server.host, port=server.port).device(game.serial))
        xml = stock.dump_hierarchy()
        assert SURFACE_CLASS in xml and "Play" not in xml  # nothing of the menu is in the tree
        assert not stock(text="Play").exists
        stock.stop_uiautomator(wait=False)
        with connect(game.serial, adb_port=server.port, timeout=5.0, app=game.spec.package) as phone:
            vd = VisionDevice(phone, ocr=ocr)
            menu = vd.snapshot()
            play = next(w for w in menu.widgets() if w.text == "Play")
            assert is_vision(play) and play.clickable
            vd.perform(Action(ActionKind.TAP, Selector(resource_id=play.resource_id, text="Play",
                                                       class_name=play.class_name)))
            assert game.location == ("levels", "")
            levels = vd.snapshot()
            assert sum(w.resource_id == "vision:button_level#" for w in levels.widgets()) == 3
            level2 = [w for w in levels.widgets() if w.resource_id == "vision:button_level#"][1]
            assert level2.text == "Level 2"
            vd.perform(Action(ActionKind.TAP, Selector(resource_id=level2.resource_id, class_name=level2.class_name,
                                                       index=1, bounds=level2.bounds)))
            assert game.location == ("level_2", "")


def _screen(*kids: Widget, w: int = 1000, h: int = 2000) -> Screen:
    window = Widget(class_name="android.widget.FrameLayout", bounds=Bounds(0, 0, w, h), package="p", children=kids)
    return Screen("p", "p.A", Widget(class_name=ROOT_CLASS, bounds=Bounds(0, 0, w, h), children=(window,)), w, h)


def test_merge_fills_holes_and_the_tree_wins_where_it_speaks() -> None:
    title = Widget(class_name="android.widget.TextView", bounds=Bounds(0, 0, 1000, 200), text="Shop", package="p")
    web = Widget(class_name="android.webkit.WebView", bounds=Bounds(0, 200, 1000, 2000), package="p")
    fab = Widget(class_name="android.widget.ImageButton", bounds=Bounds(800, 1800, 950, 1950), content_desc="Add",
                 package="p", clickable=True)  # a native button over the web page
    screen = _screen(title, web, fab)
    assert holes(screen) == [web]
    inside = Widget(class_name="android.widget.Button", bounds=Bounds(100, 500, 400, 600), text="Buy",
                    resource_id="vision:button_buy", clickable=True)
    over_fab = Widget(class_name="android.widget.ImageButton", bounds=Bounds(810, 1810, 940, 1940),
                      resource_id="vision:icon", clickable=True)
    merged = merge(screen, [inside, over_fab])
    hole = next(w for w in merged.widgets() if w.class_name == "android.webkit.WebView")
    assert hole.children == (inside,)  # the page's button is filled in; the FAB's pixels are the tree's FAB
    assert sum(w.clickable for w in merged.widgets()) == 2
    plain = _screen(title)
    assert merge(plain, [inside]) is plain  # no hole: the tree says everything


def test_annotated_screenshot_shows_the_boxes(ocr) -> None:  # noqa: ANN001
    import io

    from PIL import Image

    game = open_app("canvas:game")
    raw = game.snapshot().screenshot
    box = Widget(class_name="android.widget.Button", bounds=Bounds(100, 100, 500, 300))
    out = Image.open(io.BytesIO(annotate_png(raw, [box], width=1080))).convert("RGB")
    before = Image.open(io.BytesIO(raw)).convert("RGB")
    s = before.width / 1080
    assert out.getpixel((round(300 * s), round(100 * s))) != before.getpixel((round(300 * s), round(100 * s)))
    assert out.getpixel((round(300 * s), round(200 * s))) == before.getpixel((round(300 * s), round(200 * s)))


def test_crawl_vision_command_explores_the_game_from_pixels(ocr, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "game.atlas"
    result = CliRunner().invoke(cli, ["crawl", "--app", "canvas:game", "--vision", "--out", str(out),
                                      "--budget", "15"])
    assert result.exit_code == 0, result.output
    with Atlas.open(out) as atlas:
        states = atlas.states()
        keys = {s.structure_key for s in states}
        assert len(keys) >= 4  # the menu, the level select, a level or a dialog, …
        assert atlas.counts()["transitions"] >= 4


def test_switch_states_are_read_from_the_phones_jpeg_and_match_the_app(ocr) -> None:  # noqa: ANN001
    game = open_app("canvas:game")
    with FakeAdbServer([game], port=0) as server, \
            connect(game.serial, adb_port=server.port, timeout=5.0, app=game.spec.package) as phone:
        vd = VisionDevice(phone, ocr=ocr)
        menu = vd.snapshot()
        assert menu.screenshot[:2] == b"\xff\xd8"  # JPEG, as uiautomator2 sends it
        settings = next(w for w in menu.widgets() if w.text == "Settings")
        vd.perform(Action(ActionKind.TAP, Selector(resource_id=settings.resource_id, text="Settings")))
        read = lambda: {w.text: w.checked for w in vd.snapshot().widgets() if w.checkable}  # noqa: E731
        assert read() == {"Sound": True, "Music": True, "Vibration": False}
        vd.perform(Action(ActionKind.TAP, Selector(resource_id="vision:switch_vibration")))
        assert game.state()["toggles"]["settings.vibration"] is True
        assert read() == {"Sound": True, "Music": True, "Vibration": True}
