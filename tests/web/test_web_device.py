"""The web backend against the built-in web demo, through Playwright and the system Chromium.

Each test checks what the app really holds (the server's state for the device's session), not only
what the page shows.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from appatlas.agent.options import is_dialog
from appatlas.devices.base import Device, selector_for
from appatlas.errors import ActionRefused, AppCrashed, DeviceDisconnected, DeviceTimeout, SelectorNotFound
from appatlas.graph.fingerprint import content_key, structure_key
from appatlas.types import Action, ActionKind, Screen, Selector


def tap(dev: Device, rid: str = "", *, text: str = "") -> None:
    dev.perform(Action(ActionKind.TAP, target=Selector(resource_id=rid, text=text)))


def type_into(dev: Device, rid: str, text: str) -> None:
    dev.perform(Action(ActionKind.TYPE, target=Selector(resource_id=rid), text=text))


def back(dev: Device) -> None:
    dev.perform(Action(ActionKind.BACK))


def by_id(screen: Screen, rid: str):
    found = [w for w in screen.widgets() if w.resource_id == rid]
    assert found, f"no widget {rid!r} on {screen.activity}: {[w.resource_id for w in screen.widgets()]}"
    return found[0]


def state(dev, webapp) -> dict:
    return webapp.state(dev.cookies()["sid"])


def test_a_page_becomes_a_screen_of_widgets(web, webapp) -> None:
    dev = web("/notes/new")
    assert isinstance(dev, Device)
    from appatlas.devices.web import connect

    with connect(f"web:alice={webapp.url}", screenshots=False) as named:  # --device web:NAME=URL
        assert named.serial == "alice" and named.current_app() == ("127.0.0.1", "/")
    assert dev.serial.startswith("web-")
    screen = dev.snapshot()
    assert (screen.package, screen.activity) == ("127.0.0.1", "/notes/new") == dev.current_app()
    assert (screen.width, screen.height) == (1280, 800) == (dev.info().width, dev.info().height)
    assert [w.class_name for w in screen.root.children] == ["web.Document"]  # one window: no dialog
    title = by_id(screen, "new_title")
    assert (title.class_name, title.editable, title.content_desc, title.hint) == ("web.EditText", True, "Title", "Title")
    body = by_id(screen, "new_body")
    assert body.hint == "Start writing" and body.editable
    pin = by_id(screen, "new_pinned")
    assert (pin.class_name, pin.checkable, pin.checked, pin.text) == ("web.CheckBox", True, False, "Pin to top")
    save = by_id(screen, "new_save")
    assert (save.class_name, save.clickable, save.text) == ("web.Button", True, "Save")
    kind = by_id(screen, "new_type")
    assert kind.class_name == "web.Spinner" and kind.text == "Text note"
    assert [(o.text, o.checked) for o in kind.children] == [("Text note", True), ("Checklist note", False)]
    # boxes: inside the document, and the option cells split the select's box
    assert all(kind.bounds.x1 <= o.bounds.x1 < o.bounds.x2 <= kind.bounds.x2 for o in kind.children)
    assert save.bounds.area > 0 and screen.widget_at(*save.bounds.center) is save
    nav = [w for w in screen.widgets() if w.resource_id.startswith("nav_")]
    assert [w.text for w in nav] == ["Notes", "Tasks", "Archive", "Settings", "About"]
    assert all(w.class_name == "web.Link" and w.clickable for w in nav)


def test_screen_identity_survives_a_clock_an_ad_list_contents_and_ids(web, webapp) -> None:
    dev = web("/about")
    first = dev.snapshot()
    time.sleep(1.1)  # the "Last synced" clock ticks every second
    second = dev.snapshot()
    assert content_key(first) != content_key(second)
    assert structure_key(first) == structure_key(second)
    notes = web("/")
    before = notes.snapshot()
    ads = set()
    for _ in range(3):  # the notes list carries an ad that changes with every load, under a generated id
        notes.launch()
        again = notes.snapshot()
        ads |= {t for t in again.texts if t.startswith("Sponsored")}
        assert structure_key(again) == structure_key(before)
    assert len(ads | {t for t in before.texts if t.startswith("Sponsored")}) >= 2
    tap(notes, "new_note")
    type_into(notes, "new_title", "Lentils")
    tap(notes, "new_save")
    tap(notes, "saved_done")
    after = notes.snapshot()
    assert "Lentils" in after.texts and "Lentils" not in before.texts
    assert structure_key(after) == structure_key(before)  # one more row: the same screen
    one, two = web("/notes/1").snapshot(), web("/notes/2").snapshot()
    assert one.activity == two.activity == "/notes/{n}"
    assert structure_key(one) == structure_key(two) and content_key(one) != content_key(two)
    assert structure_key(web("/tasks").snapshot()) != structure_key(before)


def test_typing_selecting_and_checking_save_a_real_note_and_validation_stops_an_empty_one(web, webapp) -> None:
    dev = web("/notes/new")
    tap(dev, "new_save")  # no title
    screen = dev.snapshot()
    assert screen.activity == "/notes/new" and "Give the note a title" in screen.texts
    assert len(state(dev, webapp)["notes"]) == 5
    type_into(dev, "new_title", "Groceries 2")
    tap(dev, "new_type", text="Checklist note")  # an option of the <select>
    tap(dev, "new_pinned")
    screen = dev.snapshot()
    assert by_id(screen, "new_pinned").checked and by_id(screen, "new_title").text == "Groceries 2"
    assert by_id(screen, "new_type").text == "Checklist note"
    tap(dev, "new_save")
    assert dev.current_app()[1] == "/notes/saved"
    notes = state(dev, webapp)["notes"]
    assert notes[0] == {"id": 6, "title": "Groceries 2", "body": "", "kind": "checklist", "pinned": True}
    assert dev.get_json("/api/state")["notes"] == notes  # the app's API says the same for this session
    with pytest.raises(ActionRefused):
        type_into(dev, "saved_done", "not a field")


def test_a_switch_flips_and_persists(web, webapp) -> None:
    dev = web("/settings/notifications")
    assert not by_id(dev.snapshot(), "quiet_hours").checked
    tap(dev, "quiet_hours")
    assert by_id(dev.snapshot(), "quiet_hours").checked
    assert state(dev, webapp)["settings"]["quiet_hours"] is True
    other = web("/settings/notifications")  # another context is another session: untouched
    assert state(other, webapp)["settings"]["quiet_hours"] is False


def test_a_js_confirm_is_a_dialog_window_answered_by_cancel_or_ok(web, webapp) -> None:
    dev = web("/tasks")
    tap(dev, "clear_done")
    screen = dev.snapshot()
    assert is_dialog(screen) and screen.root.children[-1].class_name == "web.Dialog"
    assert "Clear 1 completed task(s)?" in screen.texts
    assert {w.text for w in screen.root.children[-1].walk() if w.clickable} == {"OK", "Cancel"}
    assert not any(w.enabled for w in screen.root.children[0].walk() if w.clickable)  # the page is blocked
    with pytest.raises(ActionRefused):
        tap(dev, "new_task")
    tap(dev, "appatlas_dialog_dismiss")
    assert not is_dialog(dev.snapshot()) and len(state(dev, webapp)["tasks"]) == 3
    tap(dev, "clear_done")
    ok = by_id(dev.snapshot(), "appatlas_dialog_accept")
    tap(dev, "appatlas_dialog_accept")
    screen = dev.snapshot()
    assert not is_dialog(screen) and screen.activity == "/tasks"
    assert [t["title"] for t in state(dev, webapp)["tasks"]] == ["Renew passport", "Pay rent"]
    tap(dev, "clear_done")
    back(dev)  # back answers a confirm with Cancel
    assert not is_dialog(dev.snapshot())
    with pytest.raises(SelectorNotFound):  # the dialog is gone: its OK is not tapped on the page beneath
        dev.perform(Action(ActionKind.TAP, target=selector_for(ok, screen)))


def test_a_modal_dialog_is_a_window_back_closes_it_and_its_button_deletes(web, webapp) -> None:
    dev = web("/notes/2")
    tap(dev, "delete_note")
    screen = dev.snapshot()
    assert is_dialog(screen) and [w.class_name for w in screen.root.children] == ["web.Document", "web.Dialog"]
    assert not by_id(screen, "edit_note").enabled  # inert behind the modal
    back(dev)
    assert not is_dialog(dev.snapshot()) and len(state(dev, webapp)["notes"]) == 5
    tap(dev, "delete_note")
    tap(dev, "confirm_delete_button")
    assert dev.current_app()[1] == "/"
    assert "Trip to Lisbon" not in [n["title"] for n in state(dev, webapp)["notes"]]


def test_the_login_gate_opens_the_archive_only_for_a_valid_email(web, webapp) -> None:
    dev = web("/")
    tap(dev, "nav_archive")
    assert dev.current_app()[1] == "/login"
    type_into(dev, "email", "tester")
    tap(dev, "unlock")
    assert "Enter a valid email address" in dev.snapshot().texts and state(dev, webapp)["unlocked_as"] == ""
    type_into(dev, "email", "tester@example.com\n")  # a trailing newline presses Enter: submits the form
    assert dev.current_app()[1] == "/archive"
    assert state(dev, webapp)["unlocked_as"] == "tester@example.com"


def test_a_new_tab_becomes_the_page_and_back_closes_it(web) -> None:
    dev = web("/about")
    tap(dev, "open_help")
    assert dev.current_app()[1] == "/help"
    back(dev)
    assert dev.current_app()[1] == "/about"
    tap(dev, "open_help")
    tap(dev, "close_help")  # window.close() from the page
    assert dev.current_app()[1] == "/about"


def test_another_origin_is_another_package_left_by_back_and_back_from_the_first_page_leaves(web, webapp) -> None:
    dev = web("/about")
    tap(dev, "project_page")
    assert dev.current_app() == (f"localhost:{webapp.port}", "/elsewhere")
    back(dev)
    assert dev.current_app() == ("127.0.0.1", "/about")
    back(dev)
    assert dev.current_app() == ("", "")  # left the app, as back from an app's first screen
    dev.launch()
    assert dev.current_app() == ("127.0.0.1", "/about")
    widened = web("/about", allow_origins=[webapp.other_origin])  # --allow-origin: that origin is the app too
    tap(widened, "project_page")
    assert widened.current_app() == ("127.0.0.1", "/elsewhere")


def test_a_download_is_saved_and_the_page_stays(web, webapp) -> None:
    dev = web("/about")
    tap(dev, "download_notes")
    assert dev.current_app()[1] == "/about"
    assert len(dev.downloads) == 1 and dev.downloads[0]["file"].endswith("notes.csv")
    assert "Groceries" in open(dev.downloads[0]["file"], encoding="utf-8").read()
    assert state(dev, webapp)["downloads"] == 1


def test_closing_the_device_removes_its_download_folder(web) -> None:
    dev = web("/about")
    tap(dev, "download_notes")
    folder = Path(dev.downloads[0]["file"]).parent
    assert folder.is_dir()
    dev.close()
    assert not folder.exists()


def test_an_uncaught_script_error_of_the_app_is_app_crashed_once(web, webapp) -> None:
    dev = web("/diagnostics")
    tap(dev, "export_diagnostics")
    with pytest.raises(AppCrashed, match="TypeError"):
        dev.snapshot()
    assert dev.snapshot().activity == "/diagnostics"  # reported once; the page is still there
    dev.launch(webapp.url)
    assert dev.current_app()[1] == "/"


def test_faults_are_typed(web, webapp) -> None:
    dev = web("/", timeout=1.0)
    with pytest.raises(DeviceTimeout, match="longer timeout"):
        dev.launch(webapp.url + "slow?ms=3000")
    with pytest.raises(SelectorNotFound):
        tap(dev, "no_such_widget")
    from appatlas.devices.web import connect

    with pytest.raises(ValueError, match="web app"):
        connect("ftp://example.org/")
    closed = WebDemoFree()
    with pytest.raises(DeviceDisconnected, match="nothing answers"):
        web(timeout=5.0).launch(f"http://127.0.0.1:{closed}/")
    dev.close()
    with pytest.raises(DeviceDisconnected):
        dev.snapshot()


def WebDemoFree() -> int:  # noqa: N802 - reads as a value
    """A port nothing listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_same_origin_iframe_is_walked_and_acted_in_a_cross_origin_one_stays_opaque(web, webapp) -> None:
    dev = web("/frames")
    screen = dev.snapshot()
    frame, other = by_id(screen, "feedback_frame"), by_id(screen, "other_frame")
    assert frame.class_name == other.class_name == "web.WebView"
    inside = {w.resource_id: w for w in frame.walk() if w.resource_id}
    assert {"feedback_text", "feedback_reply", "send_feedback"} <= set(inside)  # the iframe's form, as widgets
    assert not other.children  # another origin's document cannot be read
    field = inside["feedback_text"]
    assert field.editable and field.hint == "What should we improve?" and inside["feedback_reply"].checkable
    # boxes in page pixels: inside the iframe's content box (past its 2 px border and 6 px padding)
    for w in (field, inside["send_feedback"]):
        assert frame.bounds.x1 + 8 <= w.bounds.x1 < w.bounds.x2 <= frame.bounds.x2
        assert frame.bounds.y1 + 8 <= w.bounds.y1 < w.bounds.y2 <= frame.bounds.y2
    assert screen.widget_at(*field.bounds.center) is field
    type_into(dev, "feedback_text", "Faster sync")  # typed, ticked and sent inside the iframe
    tap(dev, "feedback_reply")
    tap(dev, "send_feedback")
    assert state(dev, webapp)["feedback"] == ["Faster sync (reply)"]
    after = dev.snapshot()
    assert by_id(after, "feedback_thanks").text == "Thanks, 1 sent" and after.activity == "/frames"


def test_an_atlas_keeps_the_allowed_origins_for_a_later_crawl_and_run(webapp, _browser, tmp_path,
                                                                     monkeypatch) -> None:
    from typer.testing import CliRunner

    from appatlas.cli import app as cli
    from appatlas.devices import web as web_backend
    from appatlas.devices.select import device_options, open_device
    from appatlas.graph.atlas import Atlas

    asked: list[tuple] = []
    real = web_backend.connect

    def spy(url, **kw):  # the real connect; notes which origins each crawl connected with
        asked.append(tuple(kw.get("allow_origins", ())))
        return real(url, **kw)

    monkeypatch.setattr(web_backend, "connect", spy)

    out = tmp_path / "site.atlas"
    made = CliRunner().invoke(cli, ["crawl", "--url", webapp.url + "about", "--allow-origin", webapp.other_origin,
                                    "--out", str(out), "--budget", "2"])
    assert made.exit_code == 0, made.output
    kept = {"allow_origins": [webapp.other_origin.rstrip("/")]}
    with Atlas.open(out) as atlas:
        assert device_options(atlas) == kept
    again = CliRunner().invoke(cli, ["crawl", "--url", webapp.url + "about", "--out", str(out), "--budget", "3",
                                     "--resume"])  # no --allow-origin: the atlas says it
    assert again.exit_code == 0, again.output
    assert [webapp.other_origin.rstrip("/") in o for o in asked] == [True, True]  # the resumed crawl has it too
    with Atlas.open(out) as atlas:
        assert device_options(atlas) == kept and atlas.counts()["observations"] == 3
        options = device_options(atlas)
    with open_device("web:" + webapp.url + "about", options=options, screenshots=False) as dev:  # run / campaign
        dev.perform(Action(ActionKind.TAP, target=Selector(resource_id="project_page")))
        assert dev.current_app() == ("127.0.0.1", "/elsewhere")  # the other origin is part of the app
