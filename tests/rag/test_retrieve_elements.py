"""End screens from the elements collection (issue 15 item 1): what an element leads to votes for an end, fused
by rank with the routes' and captions' ends."""

from __future__ import annotations

import pytest

from appatlas.rag.retrieve import Candidate, Rehearsal, Retriever, _fuse
from appatlas.rag.store import ElementDoc, RagStore, build_index


@pytest.fixture
def retriever_plain(open_atlas, embedder) -> Retriever:
    atlas = open_atlas()
    return Retriever(atlas, RagStore.open(atlas, embedder=embedder))


def _keys(retriever: Retriever, label: str) -> tuple[str, str]:
    """(source, target) of the notes atlas's transition labelled `label`."""
    t = next(t for t in retriever.views.transitions.values() if t.facts.label == label)
    return t.source, t.target


def _with_elements(open_atlas, embedder, elements) -> Retriever:
    atlas = open_atlas()
    build_index(atlas, screenshots="off", embedder=embedder, elements=elements)
    return Retriever(atlas, RagStore.open(atlas, embedder=embedder))


def _retriever_with_settings_item(open_atlas, embedder) -> tuple[Retriever, str, str]:
    atlas = open_atlas()
    menu, settings = _keys(Retriever(atlas, RagStore.open(atlas, embedder=embedder)), "Settings")
    elements = [ElementDoc(menu, "tap 'Settings'; leads to the 'Settings' screen about Autosave notes, Show word count",
                           "Settings", ("setting",), (1,)),
                ElementDoc(menu, "tap 'Delete note'", "Delete note", ("delete", "note"), (1,))]
    return _with_elements(open_atlas, embedder, elements), menu, settings


def test_an_element_votes_for_the_screen_its_action_leads_to(open_atlas, embedder) -> None:
    retriever, menu, settings = _retriever_with_settings_item(open_atlas, embedder)
    start = retriever.views.launch[0]
    acted = retriever._acted_on("open the settings", retriever.store.embed_query("open the settings"), start)
    assert acted[0].key == settings != menu  # where 'Settings' leads, not the menu that shows it
    assert "Settings" in acted[0].reason


def test_without_elements_in_the_store_nothing_is_voted(retriever_plain) -> None:
    q = "open the settings"
    assert retriever_plain._acted_on(q, retriever_plain.store.embed_query(q), retriever_plain.views.launch[0]) == []


def test_the_retrieved_ends_include_what_the_elements_say(open_atlas, embedder, monkeypatch) -> None:
    retriever, menu, settings = _retriever_with_settings_item(open_atlas, embedder)
    # the routes and captions alone would not name the settings page
    monkeypatch.setattr(retriever, "_ends", lambda *a: [Candidate(menu, 2.0, "the planned route")])
    ends = retriever.retrieve("open the settings").ends
    assert [c.key for c in ends][:2] == [menu, settings]  # fused by rank: the routes' first keeps its place on a tie
    assert "acting on 'Settings'" in ends[1].reason


def test_fusion_prefers_a_screen_both_lists_rank_high_over_one_only_one_list_ranks_first() -> None:
    ends = [Candidate("route", 5.0, "route"), Candidate("both", 1.0, "caption"), Candidate("c", 0.5, "caption")]
    acted = [Candidate("both", 0.8, "element"), Candidate("d", 0.7, "element")]
    fused = _fuse(ends, acted)
    assert [c.key for c in fused][:2] == ["both", "route"]
    assert fused[0].reason == "caption"  # the first reason given stays


def test_fusion_with_nothing_from_the_elements_keeps_the_ends_as_they_were() -> None:
    ends = [Candidate("a", 2.0, "x"), Candidate("b", 1.0, "y")]
    assert _fuse(ends, []) is ends


def test_an_element_on_a_dialog_votes_for_the_screen_under_the_dialog(open_atlas, embedder) -> None:
    atlas = open_atlas()
    plain = Retriever(atlas, RagStore.open(atlas, embedder=embedder))
    notes, dialog = _keys(plain, "Create a new note")
    assert plain.views.screens[dialog].facts.kind == "dialog"
    retriever = _with_elements(open_atlas, embedder, [
        ElementDoc(dialog, "tap 'Checklist'; switch", "Checklist", ("checklist",), (1,))])
    q = "make a checklist"
    acted = retriever._acted_on(q, retriever.store.embed_query(q), retriever.views.launch[0])
    assert [c.key for c in acted] == [notes]  # the switch leaves the dialog open; the intent ends when it closes


def test_the_end_of_a_finished_rehearsal_comes_first(open_atlas, embedder, monkeypatch) -> None:
    atlas = open_atlas()
    plain = Retriever(atlas, RagStore.open(atlas, embedder=embedder))
    g = plain.views.plan_graph
    _, notes = _keys(plain, "")  # where the launch edge goes
    more = next(e for e in g.out_edges(notes, keys=True) if plain._label(e) == "more options")
    item = next(e for e in g.out_edges(more[1], keys=True) if plain._label(e) == "delete note")
    settings = next(e for e in g.out_edges(more[1], keys=True) if plain._label(e) == "settings")[1]
    # the agent finished on the list after deleting a note, while the other evidence ranks the settings first
    retriever = Retriever(atlas, plain.store, views=plain.views,
                          rehearse=lambda intent, start: Rehearsal(start, [more, item], done=True))
    monkeypatch.setattr(retriever, "_ends", lambda *a: [Candidate(settings, 4.0, "captions"),
                                                         Candidate(notes, 3.0, "the planned route")])
    retrieval = retriever.retrieve("delete the note", start=notes)
    assert retrieval.routes[0].edges == [more, item]
    assert [c.key for c in retrieval.ends] == [notes, settings]
    # unfinished, the ends stay in their order (and the store has no elements to fuse)
    unfinished = Retriever(atlas, plain.store, views=plain.views,
                           rehearse=lambda intent, start: Rehearsal(start, [more, item], done=False))
    monkeypatch.setattr(unfinished, "_ends", lambda *a: [Candidate(settings, 4.0, "captions"),
                                                          Candidate(notes, 3.0, "the planned route")])
    assert [c.key for c in unfinished.retrieve("delete the note", start=notes).ends] == [settings, notes]


def test_an_element_shown_alike_on_several_screens_and_leading_nowhere_else_does_not_vote(open_atlas, embedder) -> None:
    atlas = open_atlas()
    plain = Retriever(atlas, RagStore.open(atlas, embedder=embedder))
    menu, settings = _keys(plain, "Settings")
    _, notes = _keys(plain, "")  # where the launch edge goes
    bar = "tap 'Autosave notes' (on); switch"  # the same element on two screens, each staying where it is
    retriever = _with_elements(open_atlas, embedder, [
        ElementDoc(settings, bar, "Autosave notes", ("autosave", "note"), (1,)),
        ElementDoc(notes, bar, "Autosave notes", ("autosave", "note"), (2,)),
        ElementDoc(menu, "tap 'Settings'; leads to the 'Settings' screen", "Settings", ("setting",), (3,))])
    q = "turn on autosave notes"
    acted = retriever._acted_on(q, retriever.store.embed_query(q), retriever.views.launch[0])
    assert [c.key for c in acted] == [settings]
    assert "acting on 'Settings'" in acted[0].reason  # the settings page is voted for by where 'Settings' leads
