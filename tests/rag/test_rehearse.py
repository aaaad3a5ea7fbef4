"""The agent's decisions rehearsed on the atlas become the plan (appatlas.agent.rehearse)."""

from __future__ import annotations

import pytest

from appatlas.agent.knowledge import Knowledge
from appatlas.agent.rehearse import rehearse, rehearser
from appatlas.rag.plan import plan_from_retrieval
from appatlas.rag.retrieve import Retriever
from appatlas.rag.store import RagStore
from appatlas.rag.views import atlas_views
from appatlas.types import ActionKind, Screen


@pytest.fixture
def atlas(open_atlas):
    return open_atlas()


def _retriever(atlas, embedder, *, rehearsed: bool) -> Retriever:
    views = atlas_views(atlas)
    return Retriever(atlas, RagStore.open(atlas, embedder=embedder), views=views,
                     rehearse=rehearser(atlas, views) if rehearsed else None)


def test_a_rehearsal_walks_atlas_edges_to_where_the_agent_is_done(atlas) -> None:
    views = atlas_views(atlas)
    main = views.launch[0]
    r = rehearse(Knowledge.from_atlas(atlas), views, "disable autosave notes", main)
    assert r is not None and r.done
    labels = [views.transitions[views.plan_graph.edges[e]["transition"]].facts.label for e in r.edges]
    assert labels == ["More options", "Settings", "Autosave notes"]
    assert all(views.plan_graph.has_edge(*e) for e in r.edges) and r.edges[0][0] == main


def test_the_rehearsed_route_is_the_plan_and_says_why(atlas, embedder) -> None:
    retrieval = _retriever(atlas, embedder, rehearsed=True).retrieve("Create a note named 'Milk'")
    assert all(kt.reason.startswith("the agent, rehearsed") for kt in retrieval.key_transitions)
    assert retrieval.rehearsal.startswith("finished: the intent is realised")
    test = plan_from_retrieval(atlas_views(atlas), retrieval).test
    typed = [s.action.text for s in test.steps if s.action.kind is ActionKind.TYPE]
    assert typed == ["Milk"] and test.steps[-1].action.target.text == "OK"


def test_an_unfinished_rehearsal_leaves_retrieval_its_own_routes(atlas, embedder) -> None:
    intent = "export all notes to the cloud drive"  # nothing of the atlas does it: the agent never says done
    views = atlas_views(atlas)
    r = rehearse(Knowledge.from_atlas(atlas), views, intent, views.launch[0])
    assert r is None or not r.done
    with_rehearsal = _retriever(atlas, embedder, rehearsed=True).retrieve(intent)
    without = _retriever(atlas, embedder, rehearsed=False).retrieve(intent)
    assert [rt.edges for rt in with_rehearsal.routes] == [rt.edges for rt in without.routes]
    assert with_rehearsal.rehearsal.startswith("unfinished: ") and not without.rehearsal


class _Scripted:
    """A policy that taps the given labels in order, then says done; it records the screens it was shown."""

    def __init__(self, *labels: str) -> None:
        self.labels, self.shown = list(labels), []

    def decide(self, intent, screen, history, *, known_as=""):
        from appatlas.agent.options import Option
        from appatlas.agent.policy import Decision
        from appatlas.types import Action, Selector

        self.shown.append(known_as)
        if not self.labels:
            return Decision(None, "done", "graph")
        label = self.labels.pop(0)
        w = next((w for w in screen.widgets() if label in (w.text, w.content_desc)), None)
        if w is None:
            return Decision(None, f"no {label!r} here", "graph", stuck=True)
        action = Action(ActionKind.TAP, target=Selector(resource_id=w.resource_id, text=w.text,
                                                        content_desc=w.content_desc, class_name=w.class_name))
        return Decision(action, f"tap {label!r}", "graph", option=Option(ActionKind.TAP, w, label))


class _BacksOut(_Scripted):
    """Taps the given labels, then backs out of the last as the agent does after a wrong turn."""

    def decide(self, intent, screen, history, *, known_as=""):
        from appatlas.agent.policy import Decision
        from appatlas.types import Action

        if not self.labels:
            return Decision(Action(ActionKind.BACK), "back out of the last tap: it advanced nothing", "recover",
                            stuck=True)
        return super().decide(intent, screen, history, known_as=known_as)


def test_a_rehearsal_the_agent_would_back_out_of_ends_stuck_with_its_reason(atlas) -> None:
    views = atlas_views(atlas)
    r = rehearse(Knowledge.from_atlas(atlas), views, "sort the notes", views.launch[0],
                 policy=_BacksOut("More options"))
    assert r is not None and not r.done and r.reason.startswith("back out of the last tap")
    assert len(r.edges) == 1


def test_a_rehearsal_goes_on_from_the_opener_after_an_ok_the_crawl_saw_do_nothing(tmp_path) -> None:
    from appatlas.graph.atlas import Atlas
    from tests.rag.test_plan_graph import _dialog_atlas

    views, k = _dialog_atlas(tmp_path)
    with Atlas.open(tmp_path / "d.atlas") as atlas:
        policy = _Scripted("Create a new note", "Checklist", "OK", "More options")
        r = rehearse(Knowledge.from_atlas(atlas), views, "a checklist, then the menu", k["main"],
                     policy=policy)
    assert r is not None and r.done, r and r.reason
    assert policy.shown == [k["main"], k["dialog"], k["dialog"], k["main"], k["menu"]]
    assert views.expected_screens(k["main"], r.edges) == [k["dialog"], k["dialog"], k["main"], k["menu"]]


def test_a_switch_the_crawl_left_as_the_intent_wants_is_still_flipped(tmp_path) -> None:
    # The crawl turned autosave off while exploring and last reached Settings that way: a run finds it as the app
    # keeps it (on), so "disable autosave" is not done by opening Settings; the rehearsal flips it from a state
    # where it is on.
    from appatlas.graph.atlas import Atlas
    from tests.rag.conftest import main_screen, menu, settings, tap

    with Atlas.create(tmp_path / "s.atlas", app="s") as atlas:
        main, opts = atlas.add_state(main_screen("Diary")), atlas.add_state(menu())
        off, on = atlas.add_state(settings(autosave=False)), atlas.add_state(settings(autosave=True))
        atlas.add_transition(main, tap(desc="More options"), opts)
        atlas.add_transition(opts, tap(rid="title", text="Settings"), off)
        atlas.add_transition(off, tap(rid="autosave", text="Autosave notes"), on)
        atlas.add_transition(on, tap(rid="autosave", text="Autosave notes"), off)
    with Atlas.open(tmp_path / "s.atlas") as atlas:
        views = atlas_views(atlas)
        r = rehearse(Knowledge.from_atlas(atlas), views, "disable autosave notes", main.structure_key)
    assert r is not None and r.done, r and r.reason
    labels = [views.transitions[views.plan_graph.edges[e]["transition"]].facts.label for e in r.edges]
    assert labels == ["More options", "Settings", "Autosave notes"]


def test_the_demo_plans_with_the_agents_rehearsal_when_given_it(notes_atlas, tmp_path, embedder) -> None:
    from appatlas.rag.demo import demo_retrieval

    summary = demo_retrieval(notes_atlas, tmp_path / "tests", ["disable autosave notes"], rehearse_with=rehearser)
    steps = summary["tests"][0]["key_steps"]
    assert steps and all(s.startswith("the agent, rehearsed") for s in steps)


class _TypesThenReads:
    """Taps 'Create a new note', types `text` into the dialog's field, then reads what the field holds and is done."""

    def __init__(self, text: str) -> None:
        self.text, self.read, self.steps = text, None, 0

    def decide(self, intent, screen, history, *, known_as=""):
        from appatlas.agent.options import Option
        from appatlas.agent.policy import Decision
        from appatlas.types import Action, Selector

        self.steps += 1
        field = next((w for w in screen.widgets() if w.editable), None)
        if self.steps == 1:
            w = next(w for w in screen.widgets() if w.content_desc == "Create a new note")
            return Decision(Action(ActionKind.TAP, target=Selector(resource_id=w.resource_id, content_desc=w.content_desc)),
                            "tap", "graph", option=Option(ActionKind.TAP, w, "Create a new note"))
        if self.steps == 2:
            return Decision(Action(ActionKind.TYPE, target=Selector(resource_id=field.resource_id), text=self.text),
                            "type", "graph", option=Option(ActionKind.TYPE, field, field.text), text=self.text)
        self.read = field.text if field is not None else None
        return Decision(None, "done", "graph")


def test_after_typing_the_rehearsal_shows_the_field_holding_what_the_agent_typed(tmp_path) -> None:
    # The crawl typed its own value ('qwerty') into the field; the atlas keeps the screen after that. A rehearsal
    # that showed it would have the agent type its next value there again ("called 'Milk' and type 'oat milk'").
    from appatlas.graph.atlas import Atlas
    from appatlas.types import Action
    from tests.rag.conftest import add_dialog, main_screen, sel, tap

    with Atlas.create(tmp_path / "t.atlas", app="t") as atlas:
        main, dialog, typed = (atlas.add_state(main_screen("Shopping")), atlas.add_state(add_dialog()),
                               atlas.add_state(add_dialog("qwerty")))
        atlas.add_transition(main, tap(rid="new_note", desc="Create a new note"), dialog)
        atlas.add_transition(dialog, Action(ActionKind.TYPE, target=sel(rid="note_title"), text="qwerty"), typed)
    with Atlas.open(tmp_path / "t.atlas") as atlas:
        views = atlas_views(atlas)
        policy = _TypesThenReads("Milk")
        r = rehearse(Knowledge.from_atlas(atlas), views, "create a note called 'Milk'", main.structure_key,
                     policy=policy)
    assert r is not None and r.done and list(r.typed.values()) == ["Milk"]
    assert policy.read == "Milk"


def _editor(*, saved: bool, hint: bool = False) -> Screen:
    """A customize screen: its rows, and a Save that shows only once something changed (`saved`)."""
    from tests.rag.conftest import _w, screen

    rows = (_w("TextView", (40, 320, 900, 420), rid="theme", text="Theme Dark", clickable=True),
            _w("TextView", (40, 480, 900, 580), rid="color", text="Text color", clickable=True))
    save = (_w("ImageView", (900, 120, 1040, 230), rid="save", desc="Save", clickable=True),) if saved else ()
    note = (_w("TextView", (40, 700, 900, 800), rid="hint", text="Unsaved changes"),) if hint else ()
    return screen("CustomizeActivity", *save, *rows, *note)


def _themes() -> Screen:
    from tests.rag.conftest import _w, screen

    return screen("CustomizeActivity", *(_w("TextView", (100, 760 + 120 * i, 980, 870 + 120 * i), text=t,
                                            clickable=True) for i, t in enumerate(("Light", "Dark"))), dialog=True)


def _customize_atlas(folder, *, twins: int = 1):
    """editor -(theme)-> themes list, whose 'Light' the crawl saw do nothing; editor -(color)-> a color dialog whose
    OK led to the changed editor (with Save), whose Save leads to Settings. `twins` = 2 adds a second changed editor."""
    from appatlas.graph.atlas import Atlas
    from tests.rag.conftest import _w, screen, settings, tap

    with Atlas.create(folder, app="c") as atlas:
        editor, themes, changed = (atlas.add_state(_editor(saved=False)), atlas.add_state(_themes()),
                                   atlas.add_state(_editor(saved=True)))
        colors = atlas.add_state(screen("CustomizeActivity", _w("TextView", (100, 720, 980, 800), text="Pick a color"),
                                        _w("Button", (500, 1450, 700, 1580), rid="cancel", text="Cancel", clickable=True),
                                        _w("Button", (750, 1450, 1000, 1580), rid="ok", text="OK", clickable=True),
                                        dialog=True))
        prefs = atlas.add_state(settings())
        atlas.add_transition(editor, tap(rid="theme", text="Theme Dark"), themes)
        atlas.add_transition(themes, tap(text="Light"), themes)
        atlas.add_transition(editor, tap(rid="color", text="Text color"), colors)
        atlas.add_transition(colors, tap(rid="ok", text="OK"), changed)
        atlas.add_transition(changed, tap(rid="save", desc="Save"), prefs)
        if twins == 2:
            atlas.add_state(_editor(saved=True, hint=True))
        return {n: s.structure_key for n, s in (("editor", editor), ("themes", themes), ("changed", changed),
                                                ("settings", prefs))}


def test_a_choice_the_crawl_saw_do_nothing_closes_onto_the_opener_as_changed(tmp_path) -> None:
    from appatlas.graph.atlas import Atlas
    from tests.rag.test_plan_graph import _edge

    k = _customize_atlas(tmp_path / "c.atlas")
    with Atlas.open(tmp_path / "c.atlas") as atlas:
        views = atlas_views(atlas)
        route = [_edge(views, k["editor"], "Theme Dark"), _edge(views, k["themes"], "Light")]
        assert views.expected_screens(k["editor"], route) == [k["themes"], k["changed"]]
        policy = _Scripted("Theme Dark", "Light", "Save")
        r = rehearse(Knowledge.from_atlas(atlas), views, "set the theme to light", k["editor"],
                     policy=policy)
    assert r is not None and r.done, r and r.reason
    assert policy.shown == [k["editor"], k["themes"], k["changed"], k["settings"]]
    assert r.edges[-1][:2] == (k["changed"], k["settings"])


def test_the_opener_is_kept_when_its_changed_screen_is_not_one(tmp_path) -> None:
    from appatlas.graph.atlas import Atlas
    from tests.rag.test_plan_graph import _edge

    k = _customize_atlas(tmp_path / "c.atlas", twins=2)
    with Atlas.open(tmp_path / "c.atlas") as atlas:
        views = atlas_views(atlas)
        route = [_edge(views, k["editor"], "Theme Dark"), _edge(views, k["themes"], "Light")]
        assert views.expected_screens(k["editor"], route) == [k["themes"], k["editor"]]
