"""The on-device loop on the built-in app: intents, plans, replanning, the step limit, evidence, experience."""

from __future__ import annotations

import shutil

import pytest

from appatlas.agent.knowledge import Knowledge
from appatlas.agent.loop import Agent, RunConfig, record_experience
from appatlas.agent.options import options
from appatlas.devices.virtual import open_app
from appatlas.graph.atlas import Atlas
from appatlas.graph.fingerprint import structure_key
from appatlas.graph.planner import shortest_route, to_test_case

QUIET = "turn on quiet hours in the notification settings"


def _key_of(device, labels) -> str:
    """The structure key of the screen reached by tapping `labels` from the launch screen."""
    for label in labels:
        screen = device.snapshot()
        device.perform(next(o for o in options(screen) if o.label.startswith(label)).action(screen))
    return structure_key(device.snapshot())


@pytest.fixture
def plan(demo_knowledge):
    start = structure_key(open_app("demo", screenshots=False).snapshot())
    end = _key_of(open_app("demo", screenshots=False), ["Settings", "Notifications", "Quiet hours"])
    route = shortest_route(demo_knowledge.graph(), start, end)
    return to_test_case(demo_knowledge.graph(), route, name="to_quiet_hours", intent="open the quiet hours settings")


def test_an_intent_is_carried_out_to_the_toggle_and_saved(demo_knowledge) -> None:
    device = open_app("demo", screenshots=False)
    result = Agent(demo_knowledge).run(device, QUIET, config=RunConfig(max_steps=12))
    actions = [s["action"] for s in result.verdict.steps]
    assert result.verdict.passed
    assert any("pref_quiet" in a for a in actions) and any("quiet_save" in a for a in actions)


def test_a_plan_is_followed_and_every_step_verified(demo_knowledge, plan) -> None:
    result = Agent(demo_knowledge).run(open_app("demo", screenshots=False), plan.intent, plan=plan)
    taken = [s for s in result.verdict.steps if s["action"] != "done"]
    assert result.verdict.passed and len(taken) == len(plan.steps)
    assert all(s["source"] == "plan" and s["verified"] for s in taken)


def test_off_plan_the_agent_replans_back_to_it(demo_knowledge, plan) -> None:
    device = open_app("demo", screenshots=False)
    _key_of(device, ["Tasks"])  # start somewhere the plan does not
    result = Agent(demo_knowledge).run(device, plan.intent, plan=plan)
    sources = [s["source"] for s in result.verdict.steps]
    assert result.verdict.passed and sources[0] == "replan" and "plan" in sources


def test_the_step_limit_ends_a_run_as_a_failure(demo_knowledge) -> None:
    result = Agent(demo_knowledge).run(open_app("demo", screenshots=False), QUIET, config=RunConfig(max_steps=1))
    assert not result.verdict.passed and "gave up after 1 steps" in result.verdict.reason


def test_every_step_keeps_its_screenshot_as_evidence(demo_knowledge, tmp_path) -> None:
    device = open_app("demo", screenshots=True)
    result = Agent(demo_knowledge).run(device, QUIET, config=RunConfig(max_steps=12, evidence_dir=tmp_path))
    shots = [s["screenshot"] for s in result.verdict.steps]
    assert shots and all(s and (tmp_path / s.split("/")[-1]).is_file() for s in shots)


def test_a_run_goes_back_to_the_atlas_as_agent_experience(demo_knowledge, demo_atlas, tmp_path) -> None:
    copy = tmp_path / "copy.atlas"
    shutil.copytree(demo_atlas, copy)
    result = Agent(demo_knowledge).run(open_app("demo", screenshots=False), QUIET, config=RunConfig(max_steps=12))
    with Atlas.open(copy) as atlas:
        record_experience(atlas, result, intent=QUIET)
        tasks = [t for t in atlas.tasks() if t.origin == "agent"]
        assert len(tasks) == 1 and tasks[0].intent == QUIET
        assert len([s for s in tasks[0].steps if s.action is not None]) == len(result.actions)
        assert Knowledge.from_atlas(atlas).tasks[-1].origin == "agent"
