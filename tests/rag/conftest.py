"""Fixtures for retrieval tests: the real MiniLM embedder (loaded once) and a generated notes app atlas.

The generated app is small but shaped like a real one: a main list, an "Add a new note" dialog
(label field, text/checklist choice, OK), an overflow menu, a settings screen with toggles and a
font-size dialog, and two recorded tasks to serve as experience.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from appatlas.graph.atlas import Atlas, RecordedStep, RecordedTask, State
from appatlas.types import Action, ActionKind, Bounds, Screen, Selector, Widget

PKG = "com.example.notes"
W, H = 1080, 2280


def _w(cls: str, box: tuple[int, int, int, int], *, rid: str = "", text: str = "", desc: str = "",
       children: tuple[Widget, ...] = (), **flags: bool) -> Widget:
    return Widget(class_name=f"android.widget.{cls}", bounds=Bounds(*box), resource_id=f"{PKG}:id/{rid}" if rid else "",
                  text=text, content_desc=desc, package=PKG, children=children, **flags)


def screen(activity: str, *widgets: Widget, dialog: bool = False) -> Screen:
    box = (60, 700, 1020, 1600) if dialog else (0, 0, W, H)
    window = _w("FrameLayout", box, children=widgets)
    root = Widget(class_name="hierarchy", bounds=Bounds(0, 0, W, H), children=(window,))
    return Screen(package=PKG, activity=f"{PKG}.{activity}", root=root, width=W, height=H)


def toolbar(title: str) -> Widget:
    return _w("ViewGroup", (0, 100, W, 250), rid="main_toolbar", children=(
        _w("TextView", (40, 130, 500, 220), text=title),
        _w("Button", (700, 120, 840, 230), rid="new_note", desc="Create a new note", clickable=True),
        _w("ImageView", (900, 120, 1040, 230), desc="More options", clickable=True)))


def main_screen(*notes: str) -> Screen:
    rows = tuple(_w("LinearLayout", (0, 300 + 150 * i, W, 440 + 150 * i), rid="note_row", clickable=True,
                    children=(_w("TextView", (40, 320 + 150 * i, 900, 420 + 150 * i), rid="note_title", text=n),))
                 for i, n in enumerate(notes))
    return screen("MainActivity", toolbar("Notes"),
                  _w("RecyclerView", (0, 300, W, 2200), rid="notes_list", scrollable=True, children=rows))


def add_dialog(label: str = "") -> Screen:
    return screen("MainActivity",
                  _w("TextView", (100, 720, 980, 800), rid="dialog_title", text="Add a new note"),
                  _w("EditText", (100, 820, 980, 950), rid="note_title", text=label or "Label", editable=True,
                     clickable=True),
                  _w("RadioButton", (100, 980, 980, 1100), rid="type_text_note", text="Text note", checkable=True,
                     checked=True, clickable=True),
                  _w("RadioButton", (100, 1100, 980, 1220), rid="type_checklist", text="Checklist", checkable=True,
                     clickable=True),
                  _w("Button", (500, 1450, 700, 1580), rid="cancel", text="Cancel", clickable=True),
                  _w("Button", (750, 1450, 1000, 1580), rid="ok", text="OK", clickable=True), dialog=True)


def menu() -> Screen:
    items = ("Rename note", "Delete note", "Settings", "About")
    return screen("MainActivity", *(
        _w("LinearLayout", (500, 200 + 130 * i, 1060, 330 + 130 * i), clickable=True, children=(
            _w("TextView", (540, 230 + 130 * i, 1000, 300 + 130 * i), rid="title", text=t),)) for i, t in
        enumerate(items)), dialog=True)


def settings(*, autosave: bool = True) -> Screen:
    def toggle(i: int, rid: str, text: str, checked: bool) -> Widget:
        return _w("RelativeLayout", (0, 400 + 180 * i, W, 580 + 180 * i), rid=f"{rid}_holder", clickable=True,
                  children=(_w("CheckBox", (60, 420 + 180 * i, 1000, 560 + 180 * i), rid=rid, text=text,
                               checkable=True, checked=checked),))
    return screen("SettingsActivity",
                  _w("ViewGroup", (0, 100, W, 250), rid="settings_toolbar", children=(
                      _w("TextView", (160, 130, 500, 220), text="Settings"),)),
                  _w("ScrollView", (0, 260, W, 2200), rid="settings_scroll", scrollable=True, children=(
                      _w("RelativeLayout", (0, 260, W, 400), rid="font_size_holder", clickable=True, children=(
                          _w("TextView", (60, 280, 600, 340), rid="font_size_label", text="Font size"),
                          _w("TextView", (60, 340, 600, 390), rid="font_size", text="100%"))),
                      toggle(0, "autosave", "Autosave notes", autosave),
                      toggle(1, "word_count", "Show word count", False))))


def font_dialog() -> Screen:
    return screen("SettingsActivity", *(
        _w("RadioButton", (100, 760 + 120 * i, 980, 870 + 120 * i), text=t, checkable=True, clickable=True,
           checked=t == "100%") for i, t in enumerate(("75%", "100%", "125%", "150%"))), dialog=True)


def about_screen() -> Screen:
    return screen("AboutActivity", toolbar("About"), _w("TextView", (40, 400, 1000, 500), text="Notes 1.0"))


def launcher() -> Screen:
    root = Widget(class_name="hierarchy", bounds=Bounds(0, 0, W, H), children=(
        Widget(class_name="android.widget.FrameLayout", bounds=Bounds(0, 0, W, H), package="com.android.launcher3",
               children=(Widget(class_name="android.widget.TextView", bounds=Bounds(100, 100, 300, 300), text="Notes",
                                package="com.android.launcher3", clickable=True),)),))
    return Screen(package="com.android.launcher3", activity="com.android.launcher3.Launcher", root=root, width=W,
                  height=H)


def sel(rid: str = "", text: str = "", desc: str = "", cls: str = "") -> Selector:
    return Selector(resource_id=f"{PKG}:id/{rid}" if rid else "", text=text, content_desc=desc,
                    class_name=f"android.widget.{cls}" if cls else "")


def tap(**kw: str) -> Action:
    return Action(ActionKind.TAP, target=sel(**kw))


def build_notes_atlas(folder: Path) -> Path:
    """A small notes app atlas with its transitions and two recorded tasks."""
    with Atlas.create(folder, app="notes") as atlas:
        atlas.set_meta("package", PKG)
        s: dict[str, State] = {
            "home": atlas.add_state(launcher()),
            "main": atlas.add_state(main_screen("Diary", "Shopping")),
            "add": atlas.add_state(add_dialog()),
            "add_typed": atlas.add_state(add_dialog("Groceries")),
            "main_new": atlas.add_state(main_screen("Diary", "Shopping", "Groceries")),
            "menu": atlas.add_state(menu()),
            "settings": atlas.add_state(settings()),
            "settings_off": atlas.add_state(settings(autosave=False)),
            "font": atlas.add_state(font_dialog()),
        }
        typed = Action(ActionKind.TYPE, target=sel("note_title", cls="EditText"), text="Groceries")
        edges = [
            ("home", Action(ActionKind.LAUNCH, app=PKG), "main"),
            ("main", tap(rid="new_note", desc="Create a new note"), "add"),
            ("add", typed, "add_typed"),
            ("add_typed", tap(rid="ok", text="OK"), "main_new"),
            ("add", tap(rid="cancel", text="Cancel"), "main"),
            ("add", tap(rid="type_checklist", text="Checklist"), "add"),
            ("main", tap(desc="More options"), "menu"),
            ("menu", tap(rid="title", text="Settings"), "settings"),
            ("menu", tap(rid="title", text="Delete note"), "main"),
            ("settings", tap(rid="autosave", text="Autosave notes"), "settings_off"),
            ("settings", tap(rid="word_count", text="Show word count"), "settings"),
            ("settings", tap(rid="font_size_holder"), "font"),
            ("font", Action(ActionKind.TAP, target=Selector(text="125%", class_name="android.widget.RadioButton")),
             "settings"),
            ("settings", Action(ActionKind.BACK), "main"),
        ]
        for a, action, b in edges:
            atlas.add_transition(s[a], action, s[b], origin="test")
        atlas.add_task(RecordedTask("task1", "Create a note called 'Groceries'", (
            RecordedStep(s["main"].id, edges[1][1]), RecordedStep(s["add"].id, typed),
            RecordedStep(s["add_typed"].id, edges[3][1]), RecordedStep(s["main_new"].id, None)), origin="test"))
        atlas.add_task(RecordedTask("task2", "Turn off autosave", (
            RecordedStep(s["main"].id, edges[6][1]), RecordedStep(s["menu"].id, edges[7][1]),
            RecordedStep(s["settings"].id, edges[9][1]), RecordedStep(s["settings_off"].id, None)), origin="test"))
    return folder


@pytest.fixture(scope="session")
def embedder():
    """The real all-MiniLM-L6-v2, loaded once per test session."""
    from appatlas.rag.embed import text_embedder

    return text_embedder()


@pytest.fixture(scope="session")
def _notes_template(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    from appatlas.rag.store import build_index

    folder = build_notes_atlas(tmp_path_factory.mktemp("template") / "notes.atlas")
    with Atlas.open(folder) as atlas:
        build_index(atlas, screenshots="render", embedder=embedder)
    return folder


@pytest.fixture
def notes_atlas(_notes_template: Path, tmp_path: Path) -> Path:
    """A fresh, captioned and indexed copy of the generated notes atlas (tests may change it)."""
    dest = tmp_path / "notes.atlas"
    shutil.copytree(_notes_template, dest)
    return dest


@pytest.fixture
def open_atlas(notes_atlas: Path) -> Callable[[], Atlas]:
    opened: list[Atlas] = []

    def get() -> Atlas:
        opened.append(Atlas.open(notes_atlas))
        return opened[-1]

    yield get
    for a in opened:
        a.close()
