"""A dialog returns to the screen that opened it, even when a recording saw it land elsewhere."""

from __future__ import annotations

from appatlas.graph.atlas import Atlas
from appatlas.rag.views import atlas_views
from appatlas.types import Action, ActionKind, Selector, Widget
from tests.rag.conftest import _w, font_dialog, screen, tap


def _settings(*rows: Widget):
    return screen("SettingsActivity", _w("ViewGroup", (0, 100, 1080, 250), rid="settings_toolbar", children=(
        _w("TextView", (160, 130, 500, 220), text="Settings"),)),
        _w("ScrollView", (0, 260, 1080, 2200), rid="settings_scroll", scrollable=True, children=rows))


def _atlas(tmp_path):
    top = _settings(_w("RelativeLayout", (0, 260, 1080, 400), rid="font_size_holder", clickable=True, children=(
        _w("TextView", (60, 280, 600, 340), text="Font size"),)))
    scrolled = _settings(_w("Switch", (0, 260, 1080, 400), rid="autosave", text="Autosave", checkable=True),
                         _w("RelativeLayout", (0, 400, 1080, 560), rid="font_size_holder", clickable=True))
    other = screen("SettingsActivity", _w("TextView", (0, 100, 500, 200), rid="about_title", text="About"))
    with Atlas.create(tmp_path / "s.atlas", app="s") as atlas:
        s_top, s_scrolled, s_dialog = atlas.add_state(top), atlas.add_state(scrolled), atlas.add_state(font_dialog())
        s_other = atlas.add_state(other)
        choice = Action(ActionKind.TAP, target=Selector(text="125%", class_name="android.widget.RadioButton"))
        atlas.add_transition(s_top, tap(rid="font_size_holder"), s_dialog)
        atlas.add_transition(s_dialog, choice, s_scrolled)  # seen once, when opened from the scrolled page
        atlas.add_transition(s_dialog, tap(text="About"), s_other)
        views = atlas_views(atlas)
        keys = {name: s.structure_key for name, s in (("top", s_top), ("scrolled", s_scrolled),
                                                      ("dialog", s_dialog), ("other", s_other))}
    return views, keys, choice


def test_a_page_scrolled_elsewhere_is_a_scroll_variant_and_another_page_is_not(tmp_path) -> None:
    views, keys, _ = _atlas(tmp_path)
    assert views.scroll_variants(keys["top"], keys["scrolled"])
    assert not views.scroll_variants(keys["top"], keys["other"])


def test_a_dialog_choice_is_expected_to_return_to_the_screen_that_opened_it(tmp_path) -> None:
    views, keys, choice = _atlas(tmp_path)
    route = [(keys["top"], keys["dialog"], tap(rid="font_size_holder").key),
             (keys["dialog"], keys["scrolled"], choice.key)]
    assert views.expected_screens(keys["top"], route) == [keys["dialog"], keys["top"]]


def test_a_dialog_that_leads_to_another_page_keeps_its_target(tmp_path) -> None:
    views, keys, _ = _atlas(tmp_path)
    route = [(keys["top"], keys["dialog"], tap(rid="font_size_holder").key),
             (keys["dialog"], keys["other"], tap(text="About").key)]
    assert views.expected_screens(keys["top"], route)[-1] == keys["other"]
