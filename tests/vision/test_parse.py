"""The pixel parser on canvas screens whose truth is known: what the painter drew where."""

from __future__ import annotations

from appatlas.bench.vision import char_errors, match
from appatlas.devices.canvas import CanvasDevice
from appatlas.devices.virtual import open_app
from appatlas.graph.fingerprint import structure_key
from appatlas.types import Action, ActionKind, Selector
from appatlas.vision.device import VisionDevice
from appatlas.vision.parse import parse_png, slug


def _tap(dev: CanvasDevice, label: str) -> None:
    box = next(d.box for d in dev.drawn() if d.text == label)
    dev.perform(Action(ActionKind.TAP, Selector(bounds=box)))


def _parse(dev: CanvasDevice, ocr):  # noqa: ANN001, ANN202
    s = dev.snapshot()
    return parse_png(s.screenshot, width=s.width, height=s.height, package=s.package, ocr=ocr)


def test_game_menu_is_read_as_its_buttons(ocr) -> None:  # noqa: ANN001
    dev = open_app("canvas:game")
    parsed = _parse(dev, ocr)
    drawn = dev.drawn()
    pairs = match(drawn, list(parsed.widgets))
    assert len(pairs) == len(drawn) == len(parsed.widgets)  # recall and precision 1 on this screen
    for d, w in pairs:
        assert w.text == d.text
        assert w.class_name.endswith("Button") == (d.kind == "button")
        assert w.clickable == d.clickable


def test_switches_are_read_with_their_state_and_only_the_dialog_counts(ocr) -> None:  # noqa: ANN001
    dev = open_app("canvas:game")
    _tap(dev, "Settings")
    assert dev.location == ("menu", "settings")
    parsed = _parse(dev, ocr)
    assert parsed.modal is not None
    switches = {w.text: w.checked for w in parsed.widgets if w.class_name.endswith("Switch")}
    assert switches == {"Sound": True, "Music": True, "Vibration": False}
    play = next(w for w in parsed.widgets if w.text == "Play")  # dimmed behind the dialog: seen, not usable
    assert not play.enabled and not play.clickable
    _tap(dev, "Vibration")
    again = {w.text: w.checked for w in _parse(dev, ocr).widgets if w.class_name.endswith("Switch")}
    assert again["Vibration"] is True and again["Sound"] is True


def test_same_screen_keeps_its_key_while_score_clock_and_sprites_move(ocr) -> None:  # noqa: ANN001
    dev = open_app("canvas:game")
    vd = VisionDevice(dev, ocr=ocr)
    _tap(dev, "Play")
    _tap(dev, "Level 1")
    first = vd.snapshot()
    _tap(dev, "Jump")  # the score, the clock, the bird and the clouds all move
    _tap(dev, "Jump")
    second = vd.snapshot()
    assert first.screenshot != second.screenshot
    texts = lambda s: {w.text for w in s.widgets() if w.text}  # noqa: E731
    assert texts(first) != texts(second)  # "Score 3" became "Score 5"
    assert structure_key(first) == structure_key(second)
    _tap(dev, "Give up")
    assert dev.location[0] == "game_over"
    assert structure_key(vd.snapshot()) != structure_key(second)


def test_slug_leaves_numbers_out() -> None:
    assert slug("Score 1200") == slug("Score 7") == "score#"
    assert slug("Time 9:41") == slug("Time 10:02") == "time#"
    assert slug("Level 1") == slug("Level1")  # a space OCR dropped is not another screen
    assert slug("Level 4 locked") != slug("Level 4")


def test_char_errors_and_matching() -> None:
    assert char_errors("Book list", "Booklist") == (1, 9)
    assert char_errors("A very long title", "A very lo\u2026") == (0, 9)  # cut on screen: the visible part
    from appatlas.devices.canvas import Drawn
    from appatlas.types import Bounds, Widget

    drawn = [Drawn("button", "A", Bounds(0, 0, 100, 100), True), Drawn("text", "B", Bounds(200, 0, 300, 50), False)]
    near = Widget(class_name="x", bounds=Bounds(10, 10, 100, 100))  # IoU 0.81 with A
    far = Widget(class_name="x", bounds=Bounds(200, 30, 300, 100))  # IoU 0.25 with B
    assert [(d.text, w is near) for d, w in match(drawn, [far, near])] == [("A", True)]


def test_a_label_shown_twice_is_read_once_and_given_to_both(ocr) -> None:  # noqa: ANN001
    dev = open_app("canvas:game")
    s = dev.snapshot()
    from appatlas.vision.parse import decode_image

    img = decode_image(s.screenshot)
    x1, y1, x2, y2 = max(ocr.detect(img), key=lambda b: b[2] - b[0])
    crop = img[y1:y2, x1:x2]
    real, runs = ocr.rec, []

    class Counting:  # the session, counting the images it is given
        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(real, name)

        def run(self, names, feeds):  # noqa: ANN001, ANN202
            runs.append(next(iter(feeds.values())).shape[0])
            return real.run(names, feeds)

    ocr.clear_cache()
    ocr.rec = Counting()
    try:
        got = ocr.recognize([crop, crop.copy(), crop[:, : crop.shape[1] // 2].copy()])
    finally:
        ocr.rec = real
    assert got[0] == got[1] and got[0][0] and got[2][0] != got[0][0]
    assert sum(runs) == 2  # the twin is not read again; the half is
