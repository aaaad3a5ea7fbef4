"""What the screen does not show: a choice made in a dialog decides where its OK leads, and a route
that stops on a dialog the atlas never saw left has only asked for what opened it."""

from __future__ import annotations

import pytest

from appatlas.graph.atlas import Atlas, RecordedStep, RecordedTask
from appatlas.rag.keys import Evidence, KeyPicker
from appatlas.rag.views import AtlasViews, atlas_views
from appatlas.rag.walk import latest_choice
from appatlas.types import Action, ActionKind, Screen
from tests.rag.conftest import W, _w, add_dialog, main_screen, menu, screen, sel, tap

OK = tap(rid="ok", text="OK")
CHECKLIST = tap(rid="type_checklist", text="Checklist")
TYPED = Action(ActionKind.TYPE, target=sel("note_title", cls="EditText"), text="Groceries")


def checklist_screen() -> Screen:
    return screen("MainActivity", _w("ViewGroup", (0, 100, W, 250), rid="main_toolbar", children=(
        _w("ImageView", (900, 120, 1040, 230), desc="More options", clickable=True),)),
        _w("CheckBox", (40, 400, 1000, 520), rid="checklist_item", text="Milk", checkable=True),
        _w("Button", (40, 2000, 1000, 2150), rid="add_items", text="Add new checklist items", clickable=True))


def items_dialog() -> Screen:
    return screen("MainActivity", _w("TextView", (100, 720, 980, 800), rid="dialog_title",
                                     text="Add new checklist items"),
                  _w("EditText", (100, 820, 980, 950), rid="item_title", editable=True, clickable=True), dialog=True)


def _atlas(tmp_path, *, items_closed: bool = False) -> tuple[AtlasViews, dict[str, str], list[int]]:
    """A notes app whose new-note dialog's OK opens the text note, or the checklist once 'Checklist' was
    chosen (observed in that order); the checklist's 'Add new checklist items' dialog was only ever
    opened (or, with `items_closed`, also closed by OK)."""
    with Atlas.create(tmp_path / "n.atlas", app="notes") as atlas:
        s = {"main": atlas.add_state(main_screen("Diary")), "add": atlas.add_state(add_dialog()),
             "typed": atlas.add_state(add_dialog("Groceries")), "note": atlas.add_state(main_screen("Diary", "X")),
             "list": atlas.add_state(checklist_screen()), "menu": atlas.add_state(menu()),
             "items": atlas.add_state(items_dialog())}
        new = tap(rid="new_note", desc="Create a new note")
        more = tap(desc="More options")
        walk = [("main", new, "add"), ("add", TYPED, "typed"), ("typed", OK, "note"),  # a text note
                ("note", more, "menu"), ("main", more, "menu"), ("main", more, "menu"),
                ("main", new, "add"), ("add", CHECKLIST, "add"), ("add", OK, "list"),  # a checklist
                ("list", more, "menu"), ("list", tap(rid="add_items", text="Add new checklist items"), "items")]
        if items_closed:
            walk.append(("items", OK, "list"))
        for a, action, b in walk:
            atlas.add_transition(s[a], action, s[b], origin="test")
        atlas.add_task(RecordedTask("checklist", "Create a checklist", (
            RecordedStep(s["main"].id, new), RecordedStep(s["add"].id, CHECKLIST), RecordedStep(s["add"].id, OK),
            RecordedStep(s["list"].id, None)), origin="test"))
        keys = {name: st.structure_key for name, st in s.items()}
        views = atlas_views(atlas)
        return views, keys, [s["main"].id, s["add"].id, s["add"].id, s["list"].id]


def _edge(views: AtlasViews, source: str, label: str, target: str | None = None) -> tuple[str, str, str]:
    return next((u, v, k) for u, v, k, d in views.graph.edges(keys=True, data=True)
                if u == source and (target is None or v == target)
                and views.transitions[d["transition"]].facts.label == label)


def test_a_choice_decides_the_outcome_of_the_action_that_leaves_its_dialog(tmp_path) -> None:
    views, keys, _ = _atlas(tmp_path)
    assert keys["add"] == keys["typed"], "one dialog, typed into or not"
    choice = _edge(views, keys["add"], "Checklist")
    decided = views.consequences(views.followed_without())
    assert set(decided) == {choice}, "only a choice decides; typing a title does not"
    assert decided[choice] == {(keys["add"], OK.key): _edge(views, keys["add"], "OK", keys["list"])}


def test_a_left_out_recording_decides_nothing(tmp_path) -> None:
    views, _, walk = _atlas(tmp_path)
    assert views.consequences(views.followed_without([walk])) == {}


def test_a_route_after_a_choice_expects_the_outcome_it_decided_and_takes_it_as_a_waypoint(tmp_path) -> None:
    views, keys, _ = _atlas(tmp_path)
    picker = KeyPicker(views)
    choice = _edge(views, keys["add"], "Checklist")
    more_from_list = _edge(views, keys["list"], "More options")
    after = views.consequences(views.followed_without())
    # plain shortest paths would leave the dialog by the OK that opens the text note
    blind = picker.route(keys["main"], [choice, _edge(views, keys["note"], "More options")])
    assert blind is not None and (keys["add"], keys["note"], OK.key) in blind[0]
    informed = picker.route(keys["main"], [choice, _edge(views, keys["note"], "More options")], after)
    assert informed is None, "after 'Checklist', OK does not open the text note"
    walked = picker.walker.walk(keys["main"], [choice, more_from_list], after)
    assert walked is not None
    ok_to_list = (keys["add"], keys["list"], OK.key)
    assert walked[0][walked[0].index(choice) + 1] == ok_to_list
    assert walked[2] == [choice, ok_to_list, more_from_list]


def test_a_choice_stays_with_its_dialog_while_text_is_typed_there_and_not_after_it_is_left(tmp_path) -> None:
    views, keys, _ = _atlas(tmp_path)
    after = views.consequences(views.followed_without())
    choice = _edge(views, keys["add"], "Checklist")
    typed = _edge(views, keys["add"], "note title")
    opened = _edge(views, keys["main"], "Create a new note")
    assert latest_choice([opened, choice, typed], after) == choice
    assert latest_choice([choice, (keys["add"], keys["list"], OK.key)], after) is None


def _stop_value(tmp_path, *, items_closed: bool) -> float:
    views, keys, _ = _atlas(tmp_path / str(items_closed), items_closed=items_closed)
    picker = KeyPicker(views)
    add_items = _edge(views, keys["list"], "Add new checklist items")
    ev = Evidence(weights={"item": 1.0}, edges={picker.tid[add_items]: 1.0}, screens={})
    edges, cost = picker.route(keys["list"], [add_items])
    return picker.value(keys["list"], edges, cost, ev, {})


def test_stopping_on_a_dialog_never_seen_left_earns_a_fifth_of_what_opened_it(tmp_path) -> None:
    from appatlas.rag.keys import END_OFFERS

    never_left = _stop_value(tmp_path, items_closed=False)
    closed_once = _stop_value(tmp_path, items_closed=True)
    assert closed_once - never_left == pytest.approx(1 - END_OFFERS)
