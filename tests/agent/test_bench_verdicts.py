"""The agent's own verdict on `bench tasks` free runs: decided as `appatlas run` decides (expectations
checked on the phone, never "it said done"), from the setting's knowledge only, and scored against
the recorded goal (verdict precision and recall)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from appatlas.agent.knowledge import Knowledge
from appatlas.bench.tasks import BenchStep, BenchTask, _content, _free_run, _judged, _summary
from appatlas.devices.replay import RecordedApp, RecordedEdge, ReplayDevice
from appatlas.graph.atlas import Atlas, RecordedStep, RecordedTask
from appatlas.graph.fingerprint import structure_key
from appatlas.types import Action, ActionKind, Bounds, Expectation, Screen, Selector, TestCase, Widget


def _screen(activity: str, *widgets: Widget) -> Screen:
    window = Widget(class_name="android.widget.FrameLayout", bounds=Bounds(0, 0, 1000, 2000), package="com.x",
                    children=widgets)
    return Screen(package="com.x", activity=activity, width=1000, height=2000,
                  root=Widget(class_name="hierarchy", bounds=Bounds(0, 0, 1000, 2000), children=(window,)))


def _text(text: str, top: int, rid: str = "") -> Widget:
    return Widget(class_name="android.widget.TextView", bounds=Bounds(0, top, 1000, top + 100), text=text,
                  resource_id=rid)


def _button(text: str, top: int) -> Widget:
    return Widget(class_name="android.widget.Button", bounds=Bounds(0, top, 1000, top + 100), text=text,
                  clickable=True)


def _tap(text: str) -> Action:
    return Action(ActionKind.TAP, target=Selector(text=text, class_name="android.widget.Button"))


# A home screen whose 'Help' opens a help page and whose 'Gallery' opens the gallery.
HOME = _screen("com.x.Main", _text("Home", 0, "com.x:id/toolbar_title"), _button("Help", 300), _button("Gallery", 500))
HELP = _screen("com.x.Help", _text("Help", 0, "com.x:id/toolbar_title"), _text("Read the manual", 300))
GALLERY = _screen("com.x.Gallery", _text("Gallery", 0, "com.x:id/toolbar_title"), _text("Old notes", 300))
HELP_TAP, GALLERY_TAP = _tap("Help"), _tap("Gallery")
INTENT = "open the gallery"


def _phone() -> RecordedApp:
    edges = [RecordedEdge(1, HELP_TAP, 2, id=1), RecordedEdge(1, GALLERY_TAP, 3, id=2)]
    return RecordedApp(package="com.x", states={1: HOME, 2: HELP, 3: GALLERY}, edges=edges,
                       keys={1: structure_key(HOME), 2: structure_key(HELP), 3: structure_key(GALLERY)}, launch=[1],
                       log=[1, 2])


def _task() -> BenchTask:
    return BenchTask("task1", INTENT, (BenchStep("1", 1, (1,), GALLERY_TAP, contents=(_content(HOME),)),
                                       BenchStep("3", 3, (3,), None, done=True, contents=(_content(GALLERY),))))


def _knowledge(tmp_path: Path) -> Knowledge:
    with Atlas.create(tmp_path / f"k{len(list(tmp_path.iterdir()))}.atlas", app="com.x") as atlas:
        s = {i: atlas.add_state(screen) for i, screen in ((1, HOME), (2, HELP), (3, GALLERY))}
        atlas.add_transition(s[1], HELP_TAP, s[2])
        atlas.add_transition(s[1], GALLERY_TAP, s[3])
        return Knowledge.from_atlas(atlas)


class Scripted:
    """A policy that takes the given actions, then says done (None) or runs out."""

    def __init__(self, actions: list[Action | None]) -> None:
        self.actions = actions

    def decide(self, intent, screen, history):  # noqa: ANN001, ANN201
        from appatlas.agent.policy import Decision

        action = self.actions.pop(0) if self.actions else HELP_TAP
        return Decision(action, "scripted", "graph")


def _run(tmp_path: Path, actions: list[Action | None], expect: tuple[Expectation, ...]) -> dict:
    knowledge = _knowledge(tmp_path)
    test = TestCase(name="task1", intent=INTENT, start=structure_key(HOME), steps=(), expect=expect)
    device = ReplayDevice(_phone(), screenshots=False)
    judge = _judged(_task(), knowledge, device, lambda task, start: (test, ""))
    return _free_run(_task(), device, Scripted(actions), knowledge, [], Counter(), judge=judge)


GALLERY_OPEN = (Expectation("screen", where=structure_key(GALLERY), note="the gallery is open"),)


def test_a_run_that_says_done_where_its_expectations_do_not_hold_is_not_pass(tmp_path: Path) -> None:
    # done on the home page: checking must not walk to the gallery (a read-only tap away) and call it open
    wrong = _run(tmp_path, [None], GALLERY_OPEN)
    assert wrong["said_done"] and not wrong["reached"]
    assert wrong["verdict"] == "FAIL" and "gallery is open" in wrong["verdict_reason"]
    assert [c["holds"] for c in wrong["verdict_checks"]] == [True, False]
    right = _run(tmp_path, [GALLERY_TAP, None], GALLERY_OPEN)
    assert right["reached"] and right["verdict"] == "PASS" and all(c["holds"] for c in right["verdict_checks"])


def test_a_run_with_nothing_to_check_is_inconclusive_and_one_that_never_finished_fails(tmp_path: Path) -> None:
    unsure = _run(tmp_path, [GALLERY_TAP, None], ())
    assert unsure["success"] and unsure["verdict"] == "inconclusive" and "nothing shows" in unsure["verdict_reason"]
    gave_up = _run(tmp_path, [GALLERY_TAP], GALLERY_OPEN)  # never says done within the action limit
    assert not gave_up["said_done"] and gave_up["verdict"] == "FAIL" and "without finishing" in gave_up["verdict_reason"]


def _row(verdict: str, *, done: bool, reached: bool) -> dict:
    return {"steps": [], "run": {"actions": [], "said_done": done, "reached": reached, "success": done and reached,
                                 "verdict": verdict, "verdict_reason": "", "verdict_checks": []}}


def test_a_pass_whose_run_missed_the_goal_lowers_precision_and_an_unsure_reached_run_lowers_recall() -> None:
    rows = [_row("PASS", done=True, reached=True), _row("PASS", done=True, reached=False),
            _row("inconclusive", done=True, reached=True), _row("inconclusive", done=True, reached=True),
            _row("FAIL", done=True, reached=False), _row("FAIL", done=False, reached=False)]
    s = _summary(rows, [])
    assert s["verdict_precision"] == 0.5  # one of the two PASSes reached the recorded goal
    assert s["verdict_recall"] == pytest.approx(1 / 3)  # one PASS among the three runs that reached it
    assert s["verdicts"] == {"PASS": 2, "FAIL": 2, "inconclusive": 2}
    assert s["done_precision"] == 0.6 and s["goal_success_rate"] == 0.5  # "said done" is still reported
    assert _summary([_row("FAIL", done=True, reached=True)], [])["verdict_precision"] is None


@pytest.mark.model  # all-MiniLM-L6-v2 indexes the atlas the test is planned over
def test_the_verdict_of_the_import_setting_is_planned_without_the_tasks_own_demonstration(tmp_path: Path) -> None:
    """Only the task's demonstration ever reached the gallery: the test the verdict checks, planned over
    the recording less the task, cannot expect it, so a run that ends there is not PASS on that ground."""
    from appatlas.bench.task_verdicts import TestPlanner
    from appatlas.bench.tasks import _planned
    from appatlas.rag.embed import text_embedder

    recording = tmp_path / "rec.atlas"
    with Atlas.create(recording, app="com.x") as atlas:
        s = {i: atlas.add_state(screen) for i, screen in ((1, HOME), (2, HELP), (3, GALLERY))}
        atlas.add_transition(s[1], HELP_TAP, s[2])
        atlas.add_transition(s[1], GALLERY_TAP, s[3])
        atlas.add_task(RecordedTask("task1", INTENT, (RecordedStep(s[1].id, GALLERY_TAP), RecordedStep(s[3].id, None))))
    task = BenchTask("task1", INTENT, (BenchStep("1", s[1].id, (s[1].id,), GALLERY_TAP),
                                       BenchStep("3", s[3].id, (s[3].id,), None, done=True)))
    planner = TestPlanner(tmp_path / "emb", text_embedder())
    test, _ = _planned(planner, recording, None)(task, HOME)
    assert structure_key(GALLERY) not in {e.where for e in test.expect}
    # the same planner over the whole recording does expect it: the leave-out is what keeps it away
    whole, _ = planner.test_case(recording, INTENT, HOME, name="task1")
    assert structure_key(GALLERY) in {e.where for e in whole.expect}


@pytest.mark.model  # all-MiniLM-L6-v2 indexes the atlas the test is planned over
def test_every_test_planned_over_a_shared_crawl_is_planned_with_the_agents_rehearsal(tmp_path: Path, monkeypatch) -> None:
    """Tasks whose demonstration leaves the same phone share one crawl, indexed once: the second task's test
    is planned as the first's (as `appatlas plan` plans), not by the words planner alone."""
    from appatlas.bench.task_verdicts import TestPlanner
    from appatlas.rag import retrieve
    from appatlas.rag.embed import text_embedder

    recording = tmp_path / "rec.atlas"
    with Atlas.create(recording, app="com.x") as atlas:
        s = {i: atlas.add_state(screen) for i, screen in ((1, HOME), (2, HELP), (3, GALLERY))}
        atlas.add_transition(s[1], HELP_TAP, s[2])
        atlas.add_transition(s[1], GALLERY_TAP, s[3])
    rehearsed = []
    made = retrieve.Retriever.__init__

    def spy(self, *args, **kwargs) -> None:  # noqa: ANN001, ANN002, ANN003 - the real constructor's arguments
        rehearsed.append(kwargs.get("rehearse") is not None)
        made(self, *args, **kwargs)

    monkeypatch.setattr(retrieve.Retriever, "__init__", spy)
    planner = TestPlanner(tmp_path / "emb", text_embedder())
    first, _ = planner.test_case(recording, INTENT, HOME, name="task1")
    second, _ = planner.test_case(recording, INTENT, HOME, name="task1")
    assert rehearsed == [True, True]
    assert second == first


def test_on_a_replayed_phone_an_expectation_about_another_screen_is_inconclusive_not_fail(tmp_path: Path) -> None:
    """A replay shows other screens as they were recorded: what the run did cannot be seen there, so an
    expectation about a screen the run did not end on is not checked (inconclusive, saying why) — on the
    screen it ends on it is."""
    shown = (Expectation("shown", "Old notes", where=structure_key(GALLERY), note="'Old notes' is in the gallery"),)
    unsure = _run(tmp_path, [None], shown)
    assert unsure["verdict"] == "inconclusive" and "keeps no state" in unsure["verdict_reason"]
    assert unsure["verdict_checks"][-1]["unknown"] is True
    there = _run(tmp_path, [GALLERY_TAP, None], shown)
    assert there["verdict"] == "PASS"
    missing = (Expectation("shown", "New notes", where=structure_key(GALLERY), note="'New notes' is in the gallery"),)
    assert _run(tmp_path, [GALLERY_TAP, None], missing)["verdict"] == "FAIL"
