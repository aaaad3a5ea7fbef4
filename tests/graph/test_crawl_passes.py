"""The crawl's later passes and ranking: views not marked clickable, rows of data, forms submitted before
they are dismissed, state-level walks, and a resume that keeps the pass it was in."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from appatlas.devices.replay import RecordedApp, RecordedEdge, ReplayDevice
from appatlas.devices.virtual import open_app
from appatlas.graph import crawler as crawler_module
from appatlas.graph.atlas import Atlas
from appatlas.graph.crawler import CrawlConfig, crawl
from appatlas.graph.model import PASSES, CrawlModel, candidates
from appatlas.graph.strategies import AtlasStrategy, button_role
from appatlas.types import Action, ActionKind, Bounds, Screen, Selector, Widget

PKG = "com.x"


def _screen(activity: str, *widgets: Widget) -> Screen:
    window = Widget(class_name="android.widget.FrameLayout", bounds=Bounds(0, 0, 1000, 2000), package=PKG,
                    children=widgets)
    return Screen(package=PKG, activity=activity, width=1000, height=2000,
                  root=Widget(class_name="hierarchy", bounds=Bounds(0, 0, 1000, 2000), children=(window,)))


def _button(text: str, y: int, *, rid: str = "", **flags: bool) -> Widget:
    return Widget(class_name="android.widget.Button", bounds=Bounds(0, y, 1000, y + 100), text=text,
                  resource_id=rid, package=PKG, clickable=flags.pop("clickable", True), **flags)


def _label(text: str, y: int) -> Widget:
    return Widget(class_name="android.widget.TextView", bounds=Bounds(0, y, 1000, y + 100), text=text, package=PKG)


# --- candidates ------------------------------------------------------------------------------------


def test_a_leaf_under_no_clickable_view_is_a_loose_candidate_and_a_label_inside_a_button_is_not() -> None:
    row = Widget(class_name="android.widget.LinearLayout", bounds=Bounds(0, 300, 1000, 400), clickable=True,
                 package=PKG, children=(_label("inside", 300),))
    decor = Widget(class_name="android.view.View", bounds=Bounds(0, 0, 1000, 50), package=PKG,
                   resource_id="android:id/statusBarBackground")
    screen = _screen("com.x.Main", _label("Groups", 100), row, decor)
    by_text = {c.action.target.text if c.action.target else "back": c for c in candidates(screen)}
    assert by_text["Groups"].loose and by_text["Groups"].action.kind is ActionKind.TAP
    assert "inside" not in by_text  # the row takes the touch
    assert not any(c.action.target and "BarBackground" in c.action.target.resource_id for c in candidates(screen))
    assert not by_text["back"].loose


def test_four_widgets_of_one_kind_are_rows_of_data_and_three_tabs_are_not() -> None:
    cells = [_button(str(d), 100 + 100 * d, rid="com.x:id/day") for d in range(1, 5)]
    tabs = [_button(t, 600 + 100 * i, rid="com.x:id/tab") for i, t in enumerate(("A", "B", "C"))]
    cands = [c for c in candidates(_screen("com.x.Main", *cells, *tabs)) if c.widget is not None]
    assert all(c.row for c in cands if c.widget.resource_id == "com.x:id/day")
    assert not any(c.row for c in cands if c.widget.resource_id == "com.x:id/tab")


def test_button_roles_follow_android_dialog_ids_and_labels() -> None:
    assert button_role(_button("Whatever", 0, rid="android:id/button1")) == "submit"
    assert button_role(_button("Save", 0)) == "submit"
    assert button_role(_button("Cancel", 0)) == "dismiss"
    assert button_role(_button("x", 0, rid="android:id/button2")) == "dismiss"
    assert button_role(_button("Checklist", 0)) == ""


# --- ranking -----------------------------------------------------------------------------------------


def test_a_filled_form_is_submitted_before_it_is_dismissed_or_changed(tmp_path: Path) -> None:
    field = Widget(class_name="android.widget.EditText", bounds=Bounds(0, 100, 1000, 200), text="Groceries",
                   resource_id="com.x:id/title", package=PKG, editable=True)
    box = _button("Checklist", 300, rid="com.x:id/type_checklist", checkable=True, checked=True)
    dialog = _screen("com.x.Main", field, box, _button("Cancel", 500, rid="android:id/button2"),
                     _button("OK", 500, rid="android:id/button1"))
    with Atlas.create(tmp_path / "f.atlas", app=PKG) as atlas:
        state = atlas.add_state(dialog)
        model, strategy = CrawlModel(), AtlasStrategy()
        model.see(state, dialog)
        first = strategy.choose(state, model)
        assert first.action.kind is ActionKind.TYPE  # fields first
        model.learn(state, Action(ActionKind.TYPE, target=first.action.target, text="Groceries"), state)
        second = strategy.choose(state, model)
        assert second.widget is not None and second.widget.text == "OK"


def _pager(tab: str, row_id: str) -> Screen:
    """One pager, two tabs: the same screen (rows of a list are data), other rows on each tab."""
    tabs = [_button(t, 1800, rid=f"com.x:id/tab_{t.lower()}") for t in ("Albums", "Artists")]
    tabs = [replace(w, bounds=Bounds(500 * i, 1800, 500 * i + 500, 1900), selected=w.text == tab)
            for i, w in enumerate(tabs)]
    row = Widget(class_name="android.widget.FrameLayout", bounds=Bounds(0, 300, 1000, 400), package=PKG,
                 resource_id=row_id, clickable=True, children=(_label(row_id, 300),))
    rows = Widget(class_name="androidx.recyclerview.widget.RecyclerView", bounds=Bounds(0, 200, 1000, 1700),
                  package=PKG, resource_id="com.x:id/list", scrollable=True, children=(row,))
    return _screen("com.x.Main", rows, *tabs)


def test_what_only_another_tab_of_the_screen_offers_is_walked_to_not_given_up(tmp_path: Path) -> None:
    with Atlas.create(tmp_path / "p.atlas", app=PKG) as atlas:
        albums, artists = _pager("Albums", "com.x:id/album_row"), _pager("Artists", "com.x:id/artist_row")
        a, b = atlas.add_state(albums), atlas.add_state(artists)
        other = atlas.add_state(_screen("com.x.Album", _label("An album", 100)))
        assert a.structure_key == b.structure_key and a.id != b.id
        model, strategy = CrawlModel(), AtlasStrategy()
        model.see(a, albums)
        model.see(b, artists)
        to_artists = next(c.action for c in model.candidates_of(a) if c.action.target is not None
                          and c.action.target.resource_id == "com.x:id/tab_artists")
        for c in model.candidates_of(a):  # everything on the Albums tab is tried...
            model.learn(a, c.action, b if c.action is to_artists else other if c.row else a)
        model.learn(b, next(c.action for c in model.candidates_of(b) if c.action.target is not None
                            and c.action.target.resource_id == "com.x:id/tab_albums"), a)
        # ... and the Artists tab's row is left: the crawl goes back to that tab for it.
        assert strategy.choose(a, model) == to_artists
        artist_row = strategy.choose(b, model)
        assert artist_row.action.target.resource_id == "com.x:id/artist_row"


# --- crawls on real devices (replay, virtual) -----------------------------------------------------


def _app_with_a_label_that_takes_a_tap() -> RecordedApp:
    """The contacts app's case: the selected tab's label is not clickable in the dump, yet a tap on it shows
    the list again with the group just created."""
    main = _screen("com.x.Main", _button("Add", 100, rid="com.x:id/add"), _label("Groups", 1800))
    added = _screen("com.x.Added", _label("Added", 100))
    groups = _screen("com.x.Main", _button("Add", 100, rid="com.x:id/add"), _label("Groups", 1800),
                     _button("Classmates", 300, rid="com.x:id/group"))
    group = _screen("com.x.Group", _label("Classmates", 100))
    edges = [
        RecordedEdge(0, Action(ActionKind.LAUNCH, app=PKG), 1, id=1),
        RecordedEdge(1, Action(ActionKind.TAP, target=Selector(resource_id="com.x:id/add")), 2, id=2),
        RecordedEdge(2, Action(ActionKind.BACK), 1, id=3),
        RecordedEdge(1, Action(ActionKind.TAP, target=Selector(text="Groups")), 3, id=4),
        RecordedEdge(3, Action(ActionKind.TAP, target=Selector(resource_id="com.x:id/group")), 4, id=5),
        RecordedEdge(4, Action(ActionKind.BACK), 3, id=6),
    ]
    return RecordedApp(package=PKG, states={1: main, 2: added, 3: groups, 4: group}, edges=edges,
                       keys={1: "main", 2: "added", 3: "groups", 4: "group"}, launch=[1])


def test_a_view_not_marked_clickable_is_tapped_in_the_second_pass_and_what_it_opens_is_explored(
        tmp_path: Path) -> None:
    device = ReplayDevice(_app_with_a_label_that_takes_a_tap(), screenshots=False)
    with Atlas.create(tmp_path / "l.atlas", app=PKG) as atlas:
        crawl(device, atlas, package=PKG, config=CrawlConfig(budget=60))
        order = [atlas.screen(t.target, with_screenshot=False).activity for t in
                 (next(x for x in atlas.transitions() if x.id == tid) for tid in atlas.observations())]
        assert atlas.get_meta("crawl_pass") in PASSES[1:] or atlas.get_meta("crawl_pass").startswith("state")
    assert "com.x.Group" in order  # behind the label, one level deeper
    assert order.index("com.x.Added") < order.index("com.x.Group")  # clickable widgets come first


def _grid_spec() -> dict:
    items = [{"title": f"Day {d}"} for d in range(1, 11)]
    items[7] = {"title": "Day 8", "tap": {"go": "secret"}}
    return {
        "app": {"package": "com.x.grid", "name": "Grid", "launch": "home"},
        "screens": [
            {"id": "home", "title": "Home", "widgets": [
                {"list": None, "id": "days", "row_tap": {"go": "day"}, "items": items},
                {"button": "Next", "id": "next", "place": "bottom", "tap": {"go": "other"}}]},
            {"id": "day", "title": "{item.title}", "widgets": [{"text": "A day"}]},
            {"id": "secret", "title": "Secret", "widgets": [{"text": "Found"}]},
            {"id": "other", "title": "Other", "widgets": [{"text": "Elsewhere"}]},
        ],
    }


def test_rows_that_did_the_same_wait_for_the_content_pass_which_still_tries_each(tmp_path: Path) -> None:
    device = open_app(_grid_spec(), screenshots=False)
    passes: list[tuple[int, int]] = []  # (transitions observed so far, pass) after each action
    with Atlas.create(tmp_path / "g.atlas", app="com.x.grid") as atlas:
        run = crawler_module._Crawl(device, atlas, "com.x.grid", CrawlConfig(budget=150), lambda _: passes.append(
            (atlas.counts()["observations"], run.model.level)), False)
        run.run()
        transitions = {t.id: t for t in atlas.transitions()}
        acts = [(transitions[tid].action, atlas.screen(transitions[tid].target, with_screenshot=False).activity)
                for tid in atlas.observations()]
    first_pass = next(n for n, level in passes if level > 0)
    rows = {action.target.bounds for action, _ in acts[:first_pass]
            if action.target is not None and action.target.resource_id.endswith("days_row")}
    assert len(rows) == 2  # two rows that both opened the day screen: the other eight are data
    assert "com.x.grid.SecretActivity" in [a for _, a in acts]  # the one row that differs is found later


def test_the_dfs_baseline_keeps_its_own_rule_and_tries_every_row_in_screen_order(tmp_path: Path) -> None:
    device = open_app(_grid_spec(), screenshots=False)
    with Atlas.create(tmp_path / "d.atlas", app="com.x.grid") as atlas:
        crawl(device, atlas, package="com.x.grid", config=CrawlConfig(strategy="dfs", budget=40))
        transitions = {t.id: t for t in atlas.transitions()}
        rows = [transitions[tid].action.target.bounds for tid in atlas.observations()
                if transitions[tid].action.target is not None
                and transitions[tid].action.target.resource_id.endswith("days_row")]
    assert len(set(rows)) > 3  # atlas's "rows that did the same wait" is not dfs's
    assert rows[:3] == sorted(rows[:3], key=lambda b: b.y1)  # top to bottom, as the screen lists them


def test_a_resumed_crawl_is_in_the_same_pass_with_the_same_state_frontier(tmp_path: Path) -> None:
    device = open_app("demo", screenshots=False)
    with Atlas.create(tmp_path / "r.atlas", app="demo") as atlas:
        run = crawler_module._Crawl(device, atlas, device.spec.package, CrawlConfig(budget=800), None, False)
        run.run()
        assert run.model.level >= 1  # the demo app's first pass ends before 800 actions
        rebuilt = CrawlModel.from_atlas(atlas, explore=run._in_app)
        assert (rebuilt.level, rebuilt.rounds) == (run.model.level, run.model.rounds)
        live = {k: v for k, v in run.model.state_frontier.items() if v}
        assert {k: v for k, v in rebuilt.state_frontier.items() if v} == live
