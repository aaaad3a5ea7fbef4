"""The benchmarks measure generalization: nothing of an evaluated task reaches its knowledge, a wrong
last pick is not success, the replayed phone does not help (BENCHMARKS.md, settings and honesty)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from appatlas.agent.knowledge import Knowledge
from appatlas.bench.settings import atlas_without, exploration_phone
from appatlas.bench.tasks import BenchStep, BenchTask, _content, _free_run, demonstration
from appatlas.devices.replay import RecordedApp, RecordedEdge, ReplayDevice
from appatlas.graph.atlas import Atlas, RecordedStep, RecordedTask
from appatlas.graph.demonstration import Demonstration, removal
from appatlas.types import Action, ActionKind, Bounds, Screen, Selector, Widget


def _screen(activity: str, *widgets: Widget) -> Screen:
    window = Widget(class_name="android.widget.FrameLayout", bounds=Bounds(0, 0, 1000, 2000), package="com.x",
                    children=widgets)
    return Screen(package="com.x", activity=activity, width=1000, height=2000,
                  root=Widget(class_name="hierarchy", bounds=Bounds(0, 0, 1000, 2000), children=(window,)))


def _button(text: str, top: int, rid: str = "") -> Widget:
    return Widget(class_name="android.widget.Button", bounds=Bounds(0, top, 1000, top + 100), text=text,
                  resource_id=rid, clickable=True)


def _tap(text: str, rid: str = "") -> Action:
    return Action(ActionKind.TAP, target=Selector(text=text, resource_id=rid, class_name="android.widget.Button"))


# A list (1) whose 'Sort' opens a dialog (2) offering 'By name' and 'By date'; either choice returns
# to the list looking exactly as before (which order is kept is hidden state). Only a demonstration
# reached 'About' (3).
LIST = _screen("com.x.Main", _button("Sort", 100), _button("About", 300))
DIALOG = _screen("com.x.Main", _button("By name", 500), _button("By date", 700))
ABOUT = _screen("com.x.About", _button("Version 1", 100))
SORT, BY_NAME, BY_DATE, ABOUT_TAP = _tap("Sort"), _tap("By name"), _tap("By date"), _tap("About")


def _app() -> RecordedApp:
    edges = [RecordedEdge(1, SORT, 2, count=2, id=1), RecordedEdge(2, BY_NAME, 1, count=1, id=2),
             RecordedEdge(2, BY_DATE, 1, count=1, id=3), RecordedEdge(1, ABOUT_TAP, 3, count=1, id=4)]
    return RecordedApp(package="com.x", states={1: LIST, 2: DIALOG, 3: ABOUT}, edges=edges,
                       keys={1: "list", 2: "dialog", 3: "about"}, launch=[1], log=[1, 2, 1, 3, 4])


def _task(*steps: tuple[int, Action | None]) -> BenchTask:
    contents = {1: _content(LIST), 2: _content(DIALOG), 3: _content(ABOUT)}
    return BenchTask("task1", "sort by date", tuple(
        BenchStep(str(sid), sid, (sid,), action, done=action is None, contents=(contents[sid],))
        for sid, action in steps))


def test_a_hop_only_the_demonstration_made_is_forgotten_with_the_state_it_reached() -> None:
    demo = Demonstration("task9", ((1,), (3,)), (ABOUT_TAP, None))
    cut = removal([demo], _app().edges)
    assert cut.uses == Counter({4: 1}) and cut.states == frozenset({3})


def test_a_hop_takes_the_observation_of_its_own_action_not_another_between_the_same_screens() -> None:
    demo = Demonstration("task1", ((1,), (2,), (1,)), (SORT, BY_DATE, None))
    cut = removal([demo], _app().edges)
    assert cut.uses == Counter({1: 1, 3: 1})  # 'By date', not 'By name' (also dialog -> list)


def test_the_phone_an_exploration_crawls_has_no_trace_of_the_evaluated_demonstration() -> None:
    phone = exploration_phone(_app(), [Demonstration("task9", ((1,), (3,)), (ABOUT_TAP, None))])
    assert 3 not in phone.states and all(e.id != 4 for e in phone.edges) and 4 not in phone.log
    device = ReplayDevice(phone, screenshots=False)
    device.perform(ABOUT_TAP)
    assert device.state == 1 and device.unrecorded_taps == 1


def test_the_agents_knowledge_in_the_import_setting_forgets_the_demonstration_only_hop(tmp_path: Path) -> None:
    with Atlas.create(tmp_path / "a.atlas", app="com.x") as atlas:
        s = {i: atlas.add_state(screen) for i, screen in ((1, LIST), (2, DIALOG), (3, ABOUT))}
        atlas.add_transition(s[1], SORT, s[2])
        atlas.add_transition(s[2], BY_NAME, s[1])
        atlas.add_transition(s[1], ABOUT_TAP, s[3])
        atlas.add_task(RecordedTask("task9", "open about", (RecordedStep(s[1].id, ABOUT_TAP),
                                                             RecordedStep(s[3].id, None))))
        full = Knowledge.from_atlas(atlas)
    left = full.without("task9")
    assert s[3].id not in left.state_screens and not any(t.action == ABOUT_TAP for t in left.transitions)
    assert any(t.action == SORT for t in left.transitions)


def test_the_retrieval_index_of_the_import_setting_is_built_without_the_demonstration(tmp_path: Path) -> None:
    with Atlas.create(tmp_path / "a.atlas", app="com.x") as atlas:
        s = {i: atlas.add_state(screen) for i, screen in ((1, LIST), (2, DIALOG), (3, ABOUT))}
        atlas.add_transition(s[1], SORT, s[2])
        atlas.add_transition(s[1], ABOUT_TAP, s[3])
        atlas.add_transition(s[1], ABOUT_TAP, s[3])  # seen twice: once by the demonstration, once before
        tid = next(t.id for t in atlas.transitions() if t.action == ABOUT_TAP)
        atlas.add_task(RecordedTask("task9", "open about", (RecordedStep(s[1].id, ABOUT_TAP),
                                                             RecordedStep(s[3].id, None))))
    demo = Demonstration("task9", ((s[1].id,), (s[3].id,)), (ABOUT_TAP, None))
    with Atlas.open(atlas_without(tmp_path / "a.atlas", tmp_path / "b.atlas", demo)) as less:
        about = [t for t in less.transitions() if t.id == tid]
        assert [t.count for t in about] == [1] and s[3].id in {st.id for st in less.states()}
        assert list(less.tasks()) == [] and less.observations().count(tid) == 1


def test_a_wrong_last_pick_that_leaves_the_screen_as_it_began_is_not_success() -> None:
    task = _task((1, SORT), (2, BY_DATE), (1, None))

    class Scripted:  # a policy that opens the dialog, picks the other option, and says done
        def __init__(self, actions: list[Action | None]) -> None:
            self.actions = actions

        def decide(self, intent, screen, history):  # noqa: ANN001, ANN201
            from appatlas.agent.policy import Decision

            return Decision(self.actions.pop(0), "scripted", "graph")

    full = Knowledge.build(package="com.x", screens={1: LIST, 2: DIALOG, 3: ABOUT},
                           state_key={1: "list", 2: "dialog", 3: "about"},
                           content={_content(x): i for i, x in ((1, LIST), (2, DIALOG), (3, ABOUT))},
                           transitions=[], tasks=[])
    wrong = _free_run(task, ReplayDevice(_app(), screenshots=False), Scripted([SORT, BY_NAME, None]), full, [],
                      Counter())
    right = _free_run(task, ReplayDevice(_app(), screenshots=False), Scripted([SORT, BY_DATE, None]), full, [],
                      Counter())
    assert wrong["said_done"] and not wrong["success"] and wrong["decisive"]["taken"] is False
    assert right["success"]


def test_a_tap_on_another_row_sharing_the_id_does_not_follow_the_recorded_rows_edge() -> None:
    row = "com.x:id/country"
    china = _screen("com.x.Pick", _button("China", 100, row), _button("Chile", 300, row))
    scrolled = _screen("com.x.Pick", _button("United States", 100, row), _button("Uruguay", 300, row))
    done = _screen("com.x.Done", _button("Saved", 100))
    # the recording tapped China at the top of the list; the same place now shows United States
    edges = [RecordedEdge(1, Action(ActionKind.TAP, target=Selector(resource_id=row, text="China",
                                                                    class_name="android.widget.Button",
                                                                    bounds=Bounds(0, 100, 1000, 200))), 3, id=1)]
    app = RecordedApp(package="com.x", states={1: china, 2: scrolled, 3: done}, edges=edges,
                      keys={1: "pick", 2: "pick", 3: "done"}, launch=[1], log=[1])
    device = ReplayDevice(app, screenshots=False, start=2)
    device.tap(500, 150)
    assert device.state == 2 and device.unrecorded_taps == 1
    device.reset(1)
    device.tap(500, 150)
    assert device.state == 3


@pytest.mark.data
def test_the_tasks_reader_maps_a_state_str_to_the_state_the_importer_gave_it(droidtask: Path, imported) -> None:
    from appatlas.bench.tasks import read_tasks

    _, folder = imported("clock")
    with Atlas.open(folder) as atlas:
        full = Knowledge.from_atlas(atlas)
        for task in read_tasks(droidtask / "clock", full):
            for step in task.steps:
                state = atlas.state_by_origin(step.origin)
                assert state is not None and step.state == state.id


@pytest.mark.data
def test_no_hop_of_a_demonstration_survives_in_its_tasks_knowledge(droidtask: Path, imported) -> None:
    from appatlas.bench.tasks import read_tasks

    _, folder = imported("calendar")
    with Atlas.open(folder) as atlas:
        full = Knowledge.from_atlas(atlas)
    for task in read_tasks(droidtask / "calendar", full):
        cut = removal([demonstration(task)], full.transitions)
        left = full.without(task.name, records=task.records, actions=[s.action for s in task.steps])
        counts = {t.id: t.count for t in left.transitions}
        for t in full.transitions:
            if cut.uses[t.id]:
                assert counts.get(t.id, 0) == t.count - cut.uses[t.id]
        assert not cut.states & set(left.state_screens)


@pytest.mark.data
def test_a_task_judged_by_its_end_state_succeeds_only_when_its_expectations_hold(droidtask: Path, tmp_path: Path
                                                                                 ) -> None:
    import shutil

    import yaml

    from appatlas.bench.tasks import run_tasks_bench

    app = tmp_path / "data" / "applauncher"
    shutil.copytree(droidtask / "applauncher" / "states", app / "states")
    shutil.copytree(droidtask / "applauncher" / "events", app / "events")
    # a recorded task's intent, judged by what its end screen shows ...
    first = yaml.safe_load((droidtask / "applauncher" / "task2.yaml").read_text(encoding="utf-8"))
    (app / "task1.yaml").write_text(yaml.safe_dump({"task_name": first["task_name"],
                                                    "expect": [{"shown": "Calculator"}]}))
    # ... and an expectation no run can meet
    (app / "task2.yaml").write_text(yaml.safe_dump({"task_name": first["task_name"],
                                                    "expect": [{"shown": "No such app anywhere"}]}))
    doc = run_tasks_bench(data=tmp_path / "data", out=tmp_path / "t.json", llm="none", atlas="import")
    runs = {t["task"]: t["run"] for t in doc["tasks"]}
    for run in runs.values():  # the goal is the expectations, checked on the final screen, and nothing else
        assert run["reached"] == all(c["holds"] for c in run["checks"])
        assert run["success"] == (run["said_done"] and run["reached"])
    assert not runs["task2.yaml"]["reached"] and "No such app anywhere" in runs["task2.yaml"]["checks"][-1]["expectation"]
    assert doc["summary"]["steps"] == 0 and doc["summary"]["goal_success_rate"] <= 0.5


def test_tapping_another_row_sharing_the_expected_rows_id_is_not_the_expected_action() -> None:
    from appatlas.bench.tasks import _correct, _shows

    row = "com.x:id/country"
    scrolled = _screen("com.x.Pick", _button("United States", 100, row), _button("Uruguay", 300, row))
    china = Action(ActionKind.TAP, target=Selector(resource_id=row, text="China", class_name="android.widget.Button",
                                                   bounds=Bounds(0, 100, 1000, 200)))
    tap_us = Action(ActionKind.TAP, target=Selector(resource_id=row, text="United States",
                                                    class_name="android.widget.Button"))
    assert not _shows(scrolled, china) and not _correct(china, tap_us, scrolled)
