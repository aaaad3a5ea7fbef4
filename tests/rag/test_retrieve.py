"""Retrieval and planning on the generated notes atlas: invariants, slot binding, experience."""

from __future__ import annotations

import pytest

from appatlas.errors import IndexStale
from appatlas.graph.atlas import Atlas
from appatlas.graph.planner import Waypoint, takes_in_order
from appatlas.rag.experience import add_experience
from appatlas.rag.plan import plan_from_retrieval
from appatlas.rag.retrieve import Retriever
from appatlas.rag.store import RagStore, build_index
from appatlas.types import Action, ActionKind, Bounds, Screen, Selector, Widget


@pytest.fixture
def retriever(open_atlas, embedder) -> Retriever:
    atlas = open_atlas()
    return Retriever(atlas, RagStore.open(atlas, embedder=embedder))


def _valid_path(retriever: Retriever, retrieval, test) -> bool:
    """The route is a path of the atlas graph, and the test follows it step by step."""
    g, here = retriever.views.graph, retrieval.routes[0].start
    for (u, v, key), step in zip(retrieval.routes[0].edges, test.steps, strict=True):
        # the step does the edge's action (the edge key may also name the item: see rag.views.edge_key), a row
        # picked by its text (rag.expect.rows_by_text) on the same kind of action
        action = g.edges[u, v, key]["action"] if g.has_edge(u, v, key) else None
        if u != here or action is None or (step.action.key != action.key and not (
                "by its text" in step.note and step.action.kind is action.kind and step.action.target.text)):
            return False
        if step.expect != v and "dialog returns" not in step.note:
            return False
        here = v
    return test.start == retrieval.routes[0].start and (test.end == here or "dialog returns" in test.steps[-1].note)


INTENTS = ["Create a note named 'Milk'", "disable autosave notes", "set the font size to 125%", "show word count",
           "delete the note"]


@pytest.mark.parametrize("intent", INTENTS)
def test_the_plan_is_a_path_of_the_atlas_graph_from_the_retrieved_start(retriever, intent: str) -> None:
    retrieval = retriever.retrieve(intent)
    test = plan_from_retrieval(retriever.views, retrieval).test
    assert test.start == retrieval.starts[0].key
    assert _valid_path(retriever, retrieval, test)


def test_an_unchecked_plan_taps_a_row_by_its_text_not_its_place_in_the_list(retriever) -> None:
    # what the retrieval benchmark measures (check=False) is the test `appatlas plan` writes: '125%' by its text
    retrieval = retriever.retrieve("set the font size to 125%")
    steps = plan_from_retrieval(retriever.views, retrieval).test.steps
    by_text = [s.action.target for s in steps if "by its text" in s.note]
    assert by_text and all(t.text and not t.resource_id and not t.content_desc for t in by_text)


@pytest.mark.parametrize("intent", INTENTS)
def test_the_plan_takes_the_key_transitions_in_order(retriever, intent: str) -> None:
    retrieval = retriever.retrieve(intent)
    assert takes_in_order(retrieval.routes[0], [Waypoint(edge=k.edge) for k in retrieval.key_transitions])


def test_a_typed_value_is_bound_to_the_field_that_takes_it_and_the_dialog_is_confirmed(retriever) -> None:
    test = plan_from_retrieval(retriever.views, retriever.retrieve("Create a note named 'Milk'")).test
    typed = [s for s in test.steps if s.action.kind is ActionKind.TYPE]
    assert [(s.action.target.resource_id, s.action.text) for s in typed] == [("com.example.notes:id/note_title", "Milk")]
    assert test.steps[-1].action.target.text == "OK"
    assert ("name", "Milk") in test.inputs


def test_a_setting_intent_ends_on_the_toggle_it_names(retriever) -> None:
    retrieval = retriever.retrieve("disable autosave notes")
    last = retrieval.key_transitions[-1]
    assert retriever.views.transitions[last.id].facts.label == "Autosave notes"
    assert retrieval.ends[0].key == last.edge[1]


def test_the_start_is_where_the_app_opens(retriever) -> None:
    retrieval = retriever.retrieve("show word count")
    assert retrieval.starts[0].key == retriever.views.launch[0]
    assert "opens" in retrieval.starts[0].reason


def test_every_candidate_carries_a_score_and_a_reason(retriever) -> None:
    import math

    retrieval = retriever.retrieve("set the font size to 125%")
    for ranked in (retrieval.starts, retrieval.ends):
        scores = [c.score for c in ranked]
        assert scores == sorted(scores, reverse=True) and all(math.isfinite(x) and x > 0 for x in scores)
        assert all(c.reason and c.key in retriever.views.graph for c in ranked)
    (key,) = retrieval.key_transitions  # the one choice the intent names
    assert "'125%'" in key.reason and "matches 125" in key.reason
    # The best end is where the route through that choice ends, and it says so.
    assert retrieval.ends[0].key == key.edge[1] and "route" in retrieval.ends[0].reason
    assert retrieval.ends[0].score > 2 * retrieval.ends[1].score


def test_a_task_left_out_is_not_used_as_experience(retriever) -> None:
    assert "task1" in [n for n, _ in retriever.retrieve("Create a note called 'Eggs'").experience]
    assert "task1" not in [n for n, _ in retriever.retrieve("Create a note called 'Eggs'",
                                                            exclude_tasks=["task1"]).experience]


def test_written_back_experience_is_found_after_the_index_is_updated(open_atlas, embedder) -> None:
    atlas = open_atlas()
    retriever = Retriever(atlas, RagStore.open(atlas, embedder=embedder))
    test = plan_from_retrieval(retriever.views, retriever.retrieve("show word count")).test
    task = add_experience(atlas, "show how many words a note has", test)
    with pytest.raises(IndexStale):
        RagStore.open(atlas, embedder=embedder)
    build_index(atlas, screenshots="off", embedder=embedder)
    fresh = Retriever(atlas, RagStore.open(atlas, embedder=embedder))
    assert task.name in [n for n, _ in fresh.retrieve("show the number of words").experience]


def test_a_screenshot_of_a_screen_makes_it_the_start(retriever) -> None:
    from appatlas.devices.render import render_png

    key = next(k for k, v in retriever.views.screens.items() if v.facts.kind == "settings")
    screen = retriever.views.screens[key].example
    shot = render_png(screen.root, width=screen.width, height=screen.height)
    assert retriever.retrieve("show word count", screenshot=shot).starts[0].key == key


def _permission_request() -> Screen:
    pkg = "com.android.permissioncontroller"
    allow = Widget(class_name="android.widget.Button", bounds=Bounds(600, 1400, 1000, 1500), text="Allow", package=pkg,
                   resource_id=f"{pkg}:id/permission_allow_button", clickable=True)
    ask = Widget(class_name="android.widget.TextView", bounds=Bounds(100, 1000, 1000, 1100), package=pkg,
                 text="Allow Notes to access your files?")
    window = Widget(class_name="android.widget.FrameLayout", bounds=Bounds(60, 900, 1020, 1600), package=pkg,
                    children=(ask, allow))
    root = Widget(class_name="hierarchy", bounds=Bounds(0, 0, 1080, 2280), children=(window,))
    return Screen(package=pkg, activity=f"{pkg}.GrantPermissionsActivity", root=root, width=1080, height=2280)


def test_an_app_that_opens_on_a_permission_request_starts_where_its_own_screens_begin(tmp_path, embedder) -> None:
    from tests.rag.conftest import PKG, launcher, main_screen, menu, tap

    with Atlas.create(tmp_path / "a.atlas", app="notes") as atlas:
        atlas.set_meta("package", PKG)
        home, ask = atlas.add_state(launcher()), atlas.add_state(_permission_request())
        main, more = atlas.add_state(main_screen("Diary")), atlas.add_state(menu())
        allow = Action(ActionKind.TAP, target=Selector(resource_id="com.android.permissioncontroller:id/"
                                                       "permission_allow_button", text="Allow"))
        atlas.add_transition(home, Action(ActionKind.LAUNCH, app=PKG), ask, origin="test")
        atlas.add_transition(ask, allow, main, origin="test")
        atlas.add_transition(main, tap(desc="More options"), more, origin="test")
        build_index(atlas, screenshots="off", embedder=embedder)
        retrieval = Retriever(atlas, RagStore.open(atlas, embedder=embedder)).retrieve("open the settings")
    assert retrieval.starts[0].key == main.structure_key
    assert ask.structure_key in [c.key for c in retrieval.starts]  # still a candidate, ranked below


def test_the_phrase_naming_the_app_leaves_the_query_and_a_thing_named_like_the_app_stays() -> None:
    from appatlas.rag.retrieve import _app_words, _without_app_name

    notes = _app_words("com.simplemobiletools.notes.pro")
    assert _without_app_name("Adjust the fontsize of the Notes app to 125%", notes) == "Adjust the fontsize to 125%"
    assert _without_app_name("Delete the note 'Diary'", notes) == "Delete the note 'Diary'"
    player = _app_words("com.simplemobiletools.musicplayer")
    assert _without_app_name("change the theme of the Music player app to light", player) == \
        "change the theme to light"
    # an app the intent names that is not this one (a launcher's 'Clock' app) is what the intent is about
    assert _without_app_name("search 'Clock' app and open it", _app_words("com.simplemobiletools.applauncher")) == \
        "search 'Clock' app and open it"


def test_with_no_route_the_ends_hold_the_screen_of_the_action_nearest_the_intent(retriever) -> None:
    intent = "make the font size 125%"
    query = intent
    scores = retriever._scores(query, retriever.store.embed_query(query))
    best = max(scores.edges, key=scores.edges.get)
    t = retriever.views.transitions[best]
    ends = {c.key: c.score for c in retriever._ends([], scores, [], [])}
    assert len(retriever.views.screens) <= 10  # every screen also gets its caption's share: the rest is the action's
    for key in (t.source, t.target):
        assert ends[key] >= 0.5 * scores.screens[key] + 0.4 * scores.edges[best] - 1e-6
