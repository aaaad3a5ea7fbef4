from __future__ import annotations

import pytest

from appatlas.errors import CaptionerError
from appatlas.graph.atlas import Atlas
from appatlas.rag.captioner import HeuristicCaptioner, caption_atlas, make_captioner, screen_caption
from appatlas.rag.describe import action_facts, screen_facts
from appatlas.rag.views import atlas_views
from tests.rag.conftest import W, _w, add_dialog, build_notes_atlas, main_screen, menu, screen, settings, tap


def test_a_dialog_caption_names_its_title_field_choices_and_buttons() -> None:
    text = screen_caption(screen_facts(add_dialog()))
    assert text.startswith("'Add a new note' dialog")
    for part in ("note title", "'Text note'", "'Checklist'", "'OK'", "'Cancel'"):
        assert part in text


def test_a_settings_caption_lists_its_toggles() -> None:
    facts = screen_facts(settings())
    assert facts.kind == "settings"
    assert "Autosave notes" in facts.toggles and "Show word count" in facts.toggles


def test_only_a_dialog_or_a_menu_is_transient() -> None:
    kinds = {s: screen_facts(s) for s in (add_dialog(), menu(), settings(), main_screen("Groceries"))}
    assert [(f.kind, f.transient) for f in kinds.values()] == [
        ("dialog", True), ("menu", True), ("settings", False), ("list", False)]


def test_a_typed_value_does_not_become_the_name_of_its_field() -> None:
    facts = screen_facts(add_dialog("Groceries"))
    assert facts.fields == ["note title"]  # the field is known by its id, not by what was typed


def test_a_tapped_number_in_a_row_is_named_by_the_row_and_a_tapped_word_by_itself() -> None:
    tracks = screen("TracksActivity", _w("RecyclerView", (0, 300, W, 2000), rid="tracks", scrollable=True, children=(
        _w("ViewGroup", (0, 300, W, 450), rid="track_frame", clickable=True, children=(
            _w("TextView", (20, 320, 120, 420), rid="track_id", text="0"),
            _w("TextView", (120, 320, 900, 420), rid="track_title", text="test1"),
            _w("TextView", (900, 320, 1060, 420), rid="track_duration", text="00:10"))),)))
    assert action_facts(tap(rid="track_id", text="0"), tracks).label == "0 test1"  # a number says which, not what
    assert action_facts(tap(rid="track_title", text="test1"), tracks).label == "test1"


def test_a_transition_caption_says_what_is_tapped_and_where_it_leads(tmp_path) -> None:
    with Atlas.open(build_notes_atlas(tmp_path / "a.atlas")) as atlas:
        views = atlas_views(atlas)
    captioner = HeuristicCaptioner()
    texts = [captioner.caption_transition(t, views).text for t in views.transitions.values()]
    assert any("tap 'Create a new note'" in t and "'Add a new note' dialog" in t for t in texts)
    assert any("'Autosave notes' checkbox (turn it off)" in t for t in texts)


def test_captions_are_stored_by_subject_with_the_captioner_that_made_them(tmp_path) -> None:
    with Atlas.open(build_notes_atlas(tmp_path / "a.atlas")) as atlas:
        report = caption_atlas(atlas, HeuristicCaptioner())
        views = atlas_views(atlas)
        stored = atlas.captions(captioner="heuristic")
    assert report.screens == len(views.screens) and report.transitions == len(views.transitions)
    assert {f"screen:{k}" for k in views.screens} <= set(stored)
    assert {f"transition:{t}" for t in views.transitions} <= set(stored)


def test_captioning_again_keeps_what_is_already_captioned(tmp_path) -> None:
    with Atlas.open(build_notes_atlas(tmp_path / "a.atlas")) as atlas:
        first = caption_atlas(atlas, HeuristicCaptioner())
        second = caption_atlas(atlas, HeuristicCaptioner())
    assert second.screens == second.transitions == 0
    assert second.kept == first.screens + first.transitions


@pytest.mark.parametrize("kind", ["local", "nonsense"])
def test_an_unavailable_captioner_kind_is_a_typed_error_naming_what_to_use(kind: str) -> None:
    with pytest.raises(CaptionerError, match="heuristic"):
        make_captioner(kind)
