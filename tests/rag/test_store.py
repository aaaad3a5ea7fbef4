from __future__ import annotations

import json

import pytest

from appatlas.devices.render import render_png
from appatlas.errors import IndexMissing, IndexStale
from appatlas.graph.atlas import Atlas
from appatlas.rag.shots import resized, status_bar_changed, to_jpeg
from appatlas.rag.store import INDEX_DIR, RagStore, build_index
from appatlas.types import Action, ActionKind
from tests.rag.conftest import about_screen, build_notes_atlas, main_screen, tap


def test_the_index_is_saved_beside_the_atlas_as_faiss_and_json(notes_atlas) -> None:
    folder = notes_atlas / INDEX_DIR
    for name in ("screens", "transitions", "tasks", "shots"):
        assert (folder / f"{name}.faiss").is_file()
        json.loads((folder / f"{name}.json").read_text())
    assert not list(folder.rglob("*.pkl")) and not list(folder.rglob("*.pickle"))


def test_an_atlas_without_an_index_says_how_to_make_one(tmp_path, embedder) -> None:
    with Atlas.open(build_notes_atlas(tmp_path / "bare.atlas")) as atlas, pytest.raises(IndexMissing,
                                                                                         match="appatlas index"):
        RagStore.open(atlas, embedder=embedder)


def test_a_reopened_index_finds_the_screen_a_caption_names(open_atlas, embedder) -> None:
    store = RagStore.open(open_atlas(), embedder=embedder)
    hit = store.search("screens", "settings autosave word count", k=1)[0]
    assert hit.meta["activity"].endswith("SettingsActivity")


def test_a_grown_atlas_makes_the_index_stale_with_the_command_that_fixes_it(open_atlas, embedder) -> None:
    atlas = open_atlas()
    state = atlas.add_state(main_screen("Diary", "Shopping", "Books"))
    atlas.add_transition(state, Action(ActionKind.BACK), state)
    with pytest.raises(IndexStale, match=r"appatlas index .*--rebuild"):
        RagStore.open(atlas, embedder=embedder)


def test_updating_embeds_only_what_the_atlas_added(open_atlas, embedder) -> None:
    atlas = open_atlas()
    before = {k: len(v) for k, v in RagStore.open(atlas, embedder=embedder).collections.items()}
    menu = next(s for s in atlas.states() if "About" in atlas.screen(s.id).texts)
    about = atlas.add_state(about_screen())
    atlas.add_transition(menu, tap(rid="title", text="About"), about)
    report = build_index(atlas, screenshots="render", embedder=embedder)
    assert report["screens"]["added"] == 1 and report["screens"]["kept"] == before["screens"]
    assert report["transitions"]["added"] == 1 and report["transitions"]["kept"] == before["transitions"]
    assert report["tasks"] == {"added": 0, "changed": 0, "removed": 0, "kept": before["tasks"]}
    RagStore.open(atlas, embedder=embedder)  # fresh again: no IndexStale


def test_a_rebuild_embeds_everything_again(open_atlas, embedder) -> None:
    report = build_index(open_atlas(), rebuild=True, screenshots="off", embedder=embedder)
    assert report["screens"]["kept"] == 0 and report["screens"]["added"] > 0


def test_new_captions_are_re_embedded_and_nothing_else(open_atlas, embedder) -> None:
    atlas = open_atlas()
    subject = next(s for s in atlas.captions(captioner="heuristic") if s.startswith("screen:"))
    atlas.set_caption(subject, "the screen where notes are listed", captioner="heuristic")
    report = build_index(atlas, screenshots="off", embedder=embedder)
    assert report["screens"]["changed"] == 1 and report["transitions"]["changed"] == 0


CHANGES = {"resolution": lambda shot: resized(shot, 0.6), "status_bar": lambda shot: status_bar_changed(shot, seed=1),
           "jpeg": lambda shot: to_jpeg(shot, 50)}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_changed_screenshot_finds_its_screen(open_atlas, embedder, change: str) -> None:
    atlas = open_atlas()
    store = RagStore.open(atlas, embedder=embedder)
    for state in atlas.states():
        screen = atlas.screen(state.id)
        query = CHANGES[change](render_png(screen.root, width=screen.width, height=screen.height))
        assert store.search_screenshot(query, k=1)[0].meta["key"] == state.structure_key


def _elements() -> list:
    from appatlas.rag.store import ElementDoc

    return [ElementDoc("main", "tap 'Autosave notes' (on); switch", "Autosave notes", ("autosave", "note"), (1,)),
            ElementDoc("main", "tap 'Settings'; leads to the 'Settings' screen about 'Autosave notes'", "Settings",
                       ("setting",), (1,)),
            ElementDoc("menu", "tap 'New note'", "New note", ("new", "note"), (2,))]


def test_elements_are_indexed_with_exact_vectors_and_word_weights(open_atlas, embedder) -> None:
    atlas = open_atlas()
    report = build_index(atlas, screenshots="off", embedder=embedder, elements=_elements())
    assert report["elements"]["added"] == 3
    store = RagStore.open(atlas, embedder=embedder)
    sentence = _elements()[1].sentence
    stored = store.element_vectors([sentence, "a sentence no element says"])
    assert list(stored) == [sentence]  # only what was indexed is read back
    # float32, the embedder's own vector: the agent's cosines are the same whether it reads or embeds
    assert abs(stored[sentence] - embedder.encode([sentence])[0]).max() < 1e-6
    idf, default = store.word_weights()
    assert idf["autosave"] > idf["note"] and default > idf["autosave"]  # a word of one label of three vs two
    assert store.word_weights(states={2})[0].keys() == {"new", "note"}  # only the elements those states show
    assert store.search("elements", "write a new note", k=1)[0].meta["label"] == "New note"  # searchable too


def test_elements_made_for_an_atlas_that_has_since_changed_are_not_read(open_atlas, embedder) -> None:
    atlas = open_atlas()
    build_index(atlas, screenshots="off", embedder=embedder, elements=_elements())
    build_index(atlas, screenshots="off", embedder=embedder)  # unchanged atlas: the elements stay its own
    assert RagStore.open(atlas, embedder=embedder).has_elements
    state = atlas.add_state(main_screen("Diary", "Shopping", "Books"))
    atlas.add_transition(state, Action(ActionKind.BACK), state)
    build_index(atlas, screenshots="off", embedder=embedder)  # updated without them (as `bench retrieval` does)
    assert not RagStore.open(atlas, embedder=embedder).has_elements
