"""The tasks benchmark on one recorded app: the JSON interface of BENCHMARKS.md §1, and honest leave-out."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from appatlas.bench.tasks import (
    RUN_KEYS,
    SUMMARY_KEYS,
    knows_every_screen,
    prepare_app,
    read_tasks,
    run_tasks_bench,
    with_task_steps,
)

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def doc(droidtask: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "tasks.json"
    result = run_tasks_bench(data=droidtask, out=out, llm="none", apps=("applauncher",))
    assert json.loads(out.read_text()) == result
    return result


def test_the_summary_has_exactly_the_specified_fields(doc) -> None:
    assert set(doc["summary"]) == set(SUMMARY_KEYS) | set(RUN_KEYS)
    assert set(doc["apps"]["applauncher"]) == set(SUMMARY_KEYS)
    assert doc["summary"]["setting"] == "explore"  # the headline is the default


def test_every_task_carries_its_evidence(doc) -> None:
    for task in doc["tasks"]:
        assert set(task) == {"app", "task", "text", "steps", "run", "known"}
        assert set(task["run"]) == {"visited", "actions", "said_done", "reached", "decisive", "unrecorded_taps",
                                    "success", "verdict", "verdict_reason", "verdict_checks"}
        assert task["run"]["verdict"] in ("PASS", "FAIL", "inconclusive") and task["run"]["verdict_reason"]
        for step in task["steps"]:
            assert set(step) - {"first_state"} == {"state", "expected", "predicted", "correct"}
            assert step["predicted"] == "done" or set(step["predicted"]) == {"kind", "signature", "label", "text"}
        assert task["steps"][-1]["expected"] == "done"


def test_the_ceiling_counts_the_tasks_whose_every_screen_the_knowledge_holds(doc) -> None:
    stepped = [t for t in doc["tasks"] if t["steps"]]
    inside = [t for t in stepped if t["known"]]
    ceiling = doc["summary"]["ceiling"]
    assert (ceiling["known_tasks"], ceiling["of"]) == (len(inside), len(stepped))
    assert ceiling["successes_unknown"] == sum(t["run"]["success"] for t in stepped if not t["known"])
    if inside:
        assert ceiling["goal_success_known"] == pytest.approx(sum(t["run"]["success"] for t in inside) / len(inside))


@pytest.fixture(scope="module")
def applauncher(droidtask: Path):
    full, _, tasks = prepare_app(droidtask / "applauncher")
    return full, next(t for t in tasks if len(t.steps) > 1)


def _without(full, keys: set[str]):  # noqa: ANN001, ANN202 - a Knowledge
    return replace(full, screens={k: v for k, v in full.screens.items() if k not in keys})


def test_the_recording_knows_every_screen_of_its_tasks(applauncher) -> None:
    full, task = applauncher
    assert knows_every_screen(task, full, full)


def test_a_task_is_not_known_without_its_final_screen(applauncher) -> None:
    full, task = applauncher
    assert not knows_every_screen(task, full, _without(full, {full.state_key[s] for s in task.steps[-1].states}))


def test_a_task_is_not_known_without_the_screen_a_step_acts_on(applauncher) -> None:
    full, task = applauncher
    assert not knows_every_screen(task, full, _without(full, {full.state_key[task.steps[0].state]}))


def test_accuracy_is_the_share_of_correct_steps(doc) -> None:
    steps = [s for t in doc["tasks"] for s in t["steps"]]
    assert doc["summary"]["steps"] == len(steps)
    assert doc["summary"]["action_accuracy"] == pytest.approx(sum(s["correct"] for s in steps) / len(steps))


def test_a_task_is_evaluated_without_its_own_demonstration(droidtask: Path, imported) -> None:
    from appatlas.agent.knowledge import Knowledge
    from appatlas.graph.atlas import Atlas

    _, folder = imported("applauncher")
    with Atlas.open(folder) as atlas:
        full = Knowledge.from_atlas(atlas)
    task = read_tasks(droidtask / "applauncher", full)[0]
    left = full.without(task.name, records=task.records, actions=[s.action for s in task.steps])
    hops = {(a, b) for x, y in zip(task.records, task.records[1:], strict=False) for a in x for b in y}
    before = sum(t.count for t in full.transitions if (t.source, t.target) in hops)
    after = sum(t.count for t in left.transitions if (t.source, t.target) in hops)
    assert task.name not in [t.name for t in left.tasks] and after <= before - (len(task.records) - 1)


def test_a_recorded_step_that_logged_no_event_is_replayed_by_the_phone(droidtask: Path, imported) -> None:
    from appatlas.agent.knowledge import Knowledge
    from appatlas.devices.replay import ReplayDevice
    from appatlas.graph.atlas import Atlas
    from appatlas.graph.replay import recorded_app

    _, folder = imported("gallery")
    with Atlas.open(folder) as atlas:
        full, replay = Knowledge.from_atlas(atlas), recorded_app(atlas)
    tasks = read_tasks(droidtask / "gallery", full)
    unlogged = [(step, after) for t in tasks for step, after in zip(t.steps, t.steps[1:], strict=False)
                if step.action is not None
                and not any(e.target in after.states for s in step.states for e in replay.edges_from(s))]
    assert unlogged  # gallery task8 taps 'DCIM' in the folder picker, and DroidBot logged no event
    phone = with_task_steps(replay, tasks)
    for step, after in unlogged:
        device = ReplayDevice(phone, screenshots=False, start=step.state)
        device.perform(step.action)
        assert device.state in after.states


def test_a_step_is_the_chosen_element_not_another_recordings_event_between_the_same_screens(
        droidtask: Path, imported) -> None:
    from appatlas.agent.knowledge import Knowledge
    from appatlas.graph.atlas import Atlas

    _, folder = imported("calendar")
    with Atlas.open(folder) as atlas:
        full = Knowledge.from_atlas(atlas)
    task = next(t for t in read_tasks(droidtask / "calendar", full) if t.name == "task5")
    # The list of countries was left by tapping 'United States' in another recording; this one chose South Africa.
    pick = task.steps[2].action
    assert pick is not None and pick.target is not None and pick.target.text == "South Africa"
