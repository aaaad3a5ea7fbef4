"""The crawl benchmark's baselines are real: DFS restarts and walks as DroidBot's does, every action counts."""

from __future__ import annotations

from appatlas.bench.crawl import _measure
from appatlas.devices.replay import RecordedApp, RecordedEdge
from appatlas.types import Action, ActionKind, Bounds, Screen, Selector, Widget


def _screen(activity: str, *texts: str) -> Screen:
    rows = tuple(Widget(class_name="android.widget.Button", bounds=Bounds(0, 100 + 200 * i, 1080, 250 + 200 * i),
                        text=t, clickable=True, package="com.x") for i, t in enumerate(texts))
    window = Widget(class_name="android.widget.FrameLayout", bounds=Bounds(0, 0, 1080, 2280), package="com.x",
                    children=rows)
    return Screen(package="com.x", activity=activity, width=1080, height=2280,
                  root=Widget(class_name="hierarchy", bounds=Bounds(0, 0, 1080, 2280), children=(window,)))


def _tap(text: str) -> Action:
    return Action(ActionKind.TAP, target=Selector(text=text, class_name="android.widget.Button"))


def _app() -> RecordedApp:
    """main -Open-> lists; lists -First-> first, whose only way out ("Home") goes back to main, where back
    leaves the app; lists -Second-> second. A depth-first crawler that presses back when a screen is
    exhausted leaves the app from main, relaunches on main, and never sees 'second' again."""
    home = _screen("Launcher", "Apps")
    home = Screen(package="com.android.launcher3", activity="Launcher", root=home.root, width=1080, height=2280)
    states = {1: _screen("Main", "Open"), 2: _screen("Lists", "First", "Second"), 3: _screen("First", "Home"),
              4: _screen("Second", "Done"), 5: home}
    edges = [RecordedEdge(1, _tap("Open"), 2, id=1), RecordedEdge(2, _tap("First"), 3, id=2),
             RecordedEdge(3, _tap("Home"), 1, id=3), RecordedEdge(2, _tap("Second"), 4, id=4),
             RecordedEdge(1, Action(ActionKind.BACK), 5, id=5),  # back on the main screen leaves the app
             RecordedEdge(5, Action(ActionKind.BACK), 5, id=7),  # and the launcher stays the launcher
             RecordedEdge(5, Action(ActionKind.LAUNCH, app="com.x"), 1, id=6)]
    return RecordedApp(package="com.x", states=states, edges=edges,
                       keys={1: "main", 2: "lists", 3: "first", 4: "second", 5: "home"}, launch=[1],
                       log=[6, 1, 2, 3, 5, 6, 4])


def test_dfs_walks_to_a_screen_with_untried_actions_instead_of_pressing_back_forever() -> None:
    row = _measure(_app(), "dfs", 80, 0)
    assert row["screens_found"] == row["screens_reachable"] == 4


def test_every_action_counts_against_the_budget_back_and_relaunch_included() -> None:
    row = _measure(_app(), "random", 50, 0)
    assert row["actions"] == 50 and row["stopped"].startswith("budget of 50")
