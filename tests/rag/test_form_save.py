"""A filled form's Save that the crawl saw refuse the form returns to the screen that opened it
(`AtlasViews.submits_unseen`, `AtlasViews.form_opener`, and the rehearsal that follows them)."""

from __future__ import annotations

from pathlib import Path

from appatlas.agent.knowledge import Knowledge
from appatlas.agent.rehearse import rehearse
from appatlas.graph.atlas import Atlas
from appatlas.rag.views import AtlasViews, atlas_views
from appatlas.types import Action, ActionKind, Screen
from tests.rag.conftest import _w, screen, sel, tap
from tests.rag.test_rehearse import _Scripted


def _list() -> Screen:
    return screen("MainActivity", _w("TextView", (40, 400, 900, 500), rid="name", text="Alice", clickable=True),
                  _w("ImageButton", (880, 1900, 1040, 2060), rid="fab", desc="Create new contact", clickable=True))


def _editor(name: str = "", *, activity: str = "EditActivity") -> Screen:
    return screen(activity, _w("ImageView", (900, 120, 1040, 230), rid="save", desc="Save", clickable=True),
                  _w("EditText", (40, 400, 1000, 500), rid="first_name", text=name, editable=True, clickable=True))


def _atlas(folder: Path, *, activity: str = "EditActivity", saved_to_list: bool = False) -> dict[str, str]:
    """list -(fab)-> editor -(type a name)-> typed editor, whose Save the crawl saw leave it as it was (the app refused
    the crawler's value); with `saved_to_list`, the atlas saw that Save lead to the list too."""
    with Atlas.create(folder, app="c") as atlas:
        main, editor, typed = (atlas.add_state(_list()), atlas.add_state(_editor(activity=activity)),
                               atlas.add_state(_editor("x", activity=activity)))
        atlas.add_transition(main, tap(rid="fab", desc="Create new contact"), editor)
        atlas.add_transition(editor, Action(ActionKind.TYPE, target=sel(rid="first_name"), text="x"), typed)
        atlas.add_transition(typed, tap(rid="save", desc="Save"), typed)
        if saved_to_list:
            atlas.add_transition(typed, tap(rid="save", desc="Save"), main)
        return {"list": main.structure_key, "editor": editor.structure_key}


def _route(views: AtlasViews, k: dict[str, str], *, typing: bool = True) -> list[tuple[str, str, str]]:
    def edge(kind: ActionKind, u: str, v: str) -> tuple[str, str, str]:
        return next((a, b, key) for a, b, key, d in views.graph.out_edges(u, keys=True, data=True)
                    if d["action"].kind is kind and b == v)

    fab, save = edge(ActionKind.TAP, k["list"], k["editor"]), edge(ActionKind.TAP, k["editor"], k["editor"])
    return [fab, edge(ActionKind.TYPE, k["editor"], k["editor"]), save] if typing else [fab, save]


def test_a_filled_forms_save_seen_refusing_returns_to_the_screen_that_opened_it(tmp_path) -> None:
    k = _atlas(tmp_path / "c.atlas")
    with Atlas.open(tmp_path / "c.atlas") as atlas:
        views = atlas_views(atlas)
    assert views.expected_screens(k["list"], _route(views, k)) == [k["editor"], k["editor"], k["list"]]


def test_a_save_on_a_form_the_route_never_filled_stays_where_the_atlas_saw_it(tmp_path) -> None:
    k = _atlas(tmp_path / "c.atlas")
    with Atlas.open(tmp_path / "c.atlas") as atlas:
        views = atlas_views(atlas)
    assert views.expected_screens(k["list"], _route(views, k, typing=False)) == [k["editor"], k["editor"]]


def test_a_save_seen_leading_somewhere_keeps_that_outcome(tmp_path) -> None:
    k = _atlas(tmp_path / "c.atlas", saved_to_list=True)
    with Atlas.open(tmp_path / "c.atlas") as atlas:
        views = atlas_views(atlas)
    save = _route(views, k)[-1]
    assert not views.submits_unseen(save)


def test_a_form_of_the_openers_own_activity_has_no_opener_to_return_to(tmp_path) -> None:
    k = _atlas(tmp_path / "c.atlas", activity="MainActivity")  # a fragment: saving finishes no activity
    with Atlas.open(tmp_path / "c.atlas") as atlas:
        views = atlas_views(atlas)
    assert views.form_opener([k["list"], k["editor"], k["editor"]], k["editor"]) is None
    assert views.expected_screens(k["list"], _route(views, k))[-1] == k["editor"]


class _FillsAndSaves(_Scripted):
    """Taps 'Create new contact', types a name into the form it opened, taps Save, and is done."""

    def decide(self, intent, screen, history, *, known_as=""):
        from appatlas.agent.options import Option
        from appatlas.agent.policy import Decision

        if len(self.shown) == 1 and known_as and any(w.editable for w in screen.widgets()):
            self.shown.append(known_as)
            field = next(w for w in screen.widgets() if w.editable)
            return Decision(Action(ActionKind.TYPE, target=sel(rid="first_name"), text="Ana"), "type", "graph",
                            option=Option(ActionKind.TYPE, field, field.text), text="Ana")
        return super().decide(intent, screen, history, known_as=known_as)


def test_the_rehearsal_goes_on_from_the_opener_after_saving_the_form_it_filled(tmp_path) -> None:
    k = _atlas(tmp_path / "c.atlas")
    with Atlas.open(tmp_path / "c.atlas") as atlas:
        views = atlas_views(atlas)
        policy = _FillsAndSaves("Create new contact", "Save")
        r = rehearse(Knowledge.from_atlas(atlas), views, "create a contact Ana", k["list"], policy=policy)
    assert r is not None and r.done, r and r.reason
    assert policy.shown == [k["list"], k["editor"], k["editor"], k["list"]]  # done where the saved form returned
