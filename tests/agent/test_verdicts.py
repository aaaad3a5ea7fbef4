"""Verdicts a tester can trust: planned tests carry expectations, a verdict is checked on the device and
agrees with the virtual app's real state, nonsense is refused, repair never undoes success."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from appatlas.agent.demo import truth_holds
from appatlas.agent.knowledge import Knowledge
from appatlas.agent.loop import Agent, RunConfig
from appatlas.demo import DEMO_INTENTS, DEMO_TRUTHS
from appatlas.devices.apps import builtin_apps
from appatlas.devices.spec import spec_from_dict
from appatlas.devices.virtual import open_app
from appatlas.errors import IntentNotGrounded
from appatlas.types import Action, ActionKind, Expectation, Selector, Step, TestCase


@pytest.fixture(scope="module")
def planned(crawled_demo) -> dict:  # noqa: ANN001 - the conftest's copier
    """The demo app crawled, captioned and indexed; the demo's intents planned from it (checked plans)."""
    from appatlas.graph.atlas import Atlas
    from appatlas.rag.plan import plan_from_retrieval
    from appatlas.rag.retrieve import Retriever
    from appatlas.rag.store import RagStore, build_index

    folder = crawled_demo("verdicts")
    with Atlas.open(folder) as atlas:
        build_index(atlas, screenshots="off")
        retriever = Retriever(atlas, RagStore.open(atlas))
        tests = {i: plan_from_retrieval(retriever.views, retriever.retrieve(i), check=True).test for i in DEMO_INTENTS}
        knowledge = Knowledge.from_atlas(atlas)
        return {"tests": tests, "knowledge": knowledge, "retriever": retriever, "views": retriever.views,
                "folder": folder}


def _demo_spec(change=None):  # noqa: ANN001, ANN202
    data = yaml.safe_load(Path(builtin_apps()["demo"]).read_text(encoding="utf-8"))
    if change is not None:
        data = copy.deepcopy(data)
        change(data)
    return spec_from_dict(data, source="demo-variant")


def _run(planned: dict, test: TestCase, spec=None):  # noqa: ANN001, ANN202
    device = open_app(spec if spec is not None else "demo", screenshots=False)
    result = Agent(planned["knowledge"]).run(device, test.intent, plan=test, config=RunConfig(max_steps=20))
    return result.verdict, device.state()


def test_every_demo_intent_is_planned_with_expectations_and_passes_for_real(planned: dict) -> None:
    for intent in DEMO_INTENTS:
        test = planned["tests"][intent]
        assert test.expect, f"{intent}: no expectations"
        verdict, state = _run(planned, test)
        assert verdict.passed, f"{intent}: {verdict.reason}"
        assert truth_holds(state, DEMO_TRUTHS[intent]), f"{intent}: PASS but the app's state says otherwise"
        assert verdict.checks and all(c["holds"] for c in verdict.checks)


def test_a_save_that_does_not_save_fails_quoting_what_the_list_shows(planned: dict) -> None:
    def drop_save(data: dict) -> None:
        note = next(s for s in data["screens"] if s["id"] == "new_text_note")
        next(w for w in note["widgets"] if w.get("id") == "new_save")["tap"].pop("save")

    intent = DEMO_INTENTS[0]
    verdict, state = _run(planned, planned["tests"][intent], _demo_spec(drop_save))
    assert not truth_holds(state, DEMO_TRUTHS[intent])
    assert not verdict.passed and verdict.status == "failed"
    assert "'Groceries'" in verdict.reason and "first saw 1" in verdict.reason


def test_a_switch_that_does_not_persist_fails(planned: dict) -> None:
    def forget(data: dict) -> None:
        quiet = next(s for s in data["screens"] if s["id"] == "quiet_hours")
        next(w for w in quiet["widgets"] if w.get("id") == "pref_quiet")["persist"] = False

    intent = DEMO_INTENTS[1]
    test = planned["tests"][intent]
    # the plan presses Save, which leaves the screen; checking comes back to it read-only
    assert test.steps[-1].action.target is not None and test.steps[-1].action.target.text == "Save"
    verdict, state = _run(planned, test, _demo_spec(forget))
    assert not truth_holds(state, DEMO_TRUTHS[intent])
    assert not verdict.passed, verdict.reason
    assert "'Quiet hours' is off" in verdict.reason
    # a plan that ends on the switch's screen: the check leaves it and comes back to see it kept
    stay = replace(test, steps=test.steps[:-1], end=test.steps[-2].expect)
    verdict, _ = _run(planned, stay, _demo_spec(forget))
    assert not verdict.passed and "after leaving its screen and coming back" in verdict.reason, verdict.reason
    good, _ = _run(planned, test)
    assert good.passed, good.reason


def test_an_intent_nothing_relates_to_is_refused_naming_the_closest_screens(planned: dict) -> None:
    from appatlas.rag.plan import plan_from_retrieval

    retriever = planned["retriever"]
    with pytest.raises(IntentNotGrounded) as err:
        plan_from_retrieval(retriever.views, retriever.retrieve("purple monkey dishwasher"), check=True)
    assert err.value.closest and "closest screens" in str(err.value)


def test_an_empty_plan_is_never_a_pass_unless_its_expectations_already_hold(planned: dict) -> None:
    start = planned["tests"][DEMO_INTENTS[0]].start
    empty = TestCase(name="nothing", intent="purple monkey dishwasher", start=start, steps=())
    verdict, _ = _run(planned, empty)
    assert not verdict.passed and verdict.status == "inconclusive"
    already = replace(empty, expect=(Expectation("screen", where=start, note="the notes list is open"),))
    verdict, _ = _run(planned, already)
    assert verdict.passed and "already held" in verdict.reason


def _off_plan(test: TestCase, believed: int, button: str) -> TestCase:
    """`test` as an atlas that got one outcome wrong plans it: its last step is expected to stay on the screen
    of step `believed`, and the plan goes on to press `button` again, expecting the real end then."""
    again = Step(Action(ActionKind.TAP, target=Selector(resource_id=f"com.appatlas.notes:id/{button}")),
                 expect=test.steps[-1].expect)
    return replace(test, steps=(*test.steps[:-1], replace(test.steps[-1], expect=test.steps[believed].expect), again))


def test_repair_never_undoes_success(planned: dict) -> None:
    """The atlas believes 'Add task' stays on the form and the plan goes on to submit it again; the app
    really went back to the list with the new task. Repairing towards the plan would open a new form and
    submit it empty (an error); the expectations already hold, so the case is done."""
    test = planned["tests"][DEMO_INTENTS[3]]  # add a task: ends on the tasks list with the new row
    verdict, state = _run(planned, _off_plan(test, 1, "task_add"))
    assert verdict.passed, verdict.reason
    assert "already holds" in " ".join(str(s.get("reason")) for s in verdict.steps)
    assert [r["title"] for r in state["lists"]["tasks"]].count("Call the bank") == 1
    assert state["screen"] == "tasks"  # it did not go on to open another task form


def test_a_row_named_by_text_is_picked_by_its_text_and_a_positional_pick_is_rejected(planned: dict) -> None:
    from appatlas.rag.expect import plan_problems, rows_by_text

    views = planned["views"]
    start = planned["tests"][DEMO_INTENTS[0]].start
    row = Step(Action(ActionKind.TAP, target=Selector(resource_id="com.appatlas.notes:id/notes_row", index=0)),
               expect=next(k for k, v in views.screens.items() if v.facts.activity.endswith("NoteActivity")))
    test = TestCase(name="t", intent="open the note called Book list", start=start, steps=(row,))
    problems = plan_problems(views, test, test.intent)
    assert any("by position" in p and "'Book list'" in p for p in problems)
    fixed = rows_by_text(views, test, test.intent)
    assert fixed.steps[0].action.target == Selector(text="Book list")
    assert not any("by position" in p for p in plan_problems(views, fixed, fixed.intent))


def test_plan_and_run_refuse_a_nonsense_intent_with_exit_code_2(planned: dict, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from appatlas.cli import app
    from appatlas.devices.fakeadb import FakeAdbServer

    runner = CliRunner()
    out = tmp_path / "nonsense.yaml"
    result = runner.invoke(app, ["plan", str(planned["folder"]), "purple monkey dishwasher", "--out", str(out)])
    assert result.exit_code == 2 and "IntentNotGrounded" in result.output, result.output
    assert not out.exists()  # nothing saved
    with FakeAdbServer([open_app("demo", serial="virtual-1", screenshots=False)]) as server:
        result = runner.invoke(app, ["run", "--device", "virtual-1", "--atlas", str(planned["folder"]), "--adb-port",
                                     str(server.port), "purple monkey dishwasher"])
    assert result.exit_code == 2 and "IntentNotGrounded" in result.output and "PASS" not in result.output, \
        result.output


def test_the_type_picker_row_is_chosen_by_its_text_and_a_route_through_another_choice_is_rejected(
        planned: dict) -> None:
    """Every row a plan taps is named by its text in the test ("Text note", not the first `note_types_row`);
    and where the intent names a row whose choice opens another screen than the route's row, the route is
    the wrong one: it is rejected, never re-aimed at the named row with the other form's steps after it."""
    from appatlas.rag.expect import plan_problems, rows_by_text

    test = planned["tests"][DEMO_INTENTS[0]]
    rows = [s.action.target for s in test.steps if s.action.target is not None and "note_types" in
            (s.action.target.resource_id + s.action.target.text + (s.note or ""))]
    assert any(t.text == "Text note" for t in [s.action.target for s in test.steps if s.action.target is not None])
    assert not any(t.resource_id.endswith("note_types_row") and not t.text for t in rows)
    views = planned["views"]
    picker = next(k for k, v in views.screens.items() if {"Text note", "Checklist"} <= set(v.facts.buttons))
    checklist = next(k for k, v in views.screens.items() if v.facts.title == "New checklist")
    row = next(d["action"] for _, t, d in views.plan_graph.out_edges(picker, data=True) if t == checklist)
    assert not row.target.text  # the atlas's own tap on the Checklist row: by id and position
    via_checklist = TestCase(name="t", intent=DEMO_INTENTS[0], start=test.start, steps=(
        Step(Action(ActionKind.TAP, target=Selector(resource_id="com.appatlas.notes:id/fab_new")), picker),
        Step(row, checklist)))
    fixed = rows_by_text(views, via_checklist, DEMO_INTENTS[0])
    assert fixed.steps[1].action.target.text == "Checklist"
    assert any("'Checklist' where the intent names 'Text note'" in p for p in plan_problems(views, fixed, DEMO_INTENTS[0]))


def test_a_delete_intent_naming_a_row_is_planned_through_delete_and_really_deletes_it(planned: dict) -> None:
    from appatlas.rag.plan import plan_from_retrieval

    intent = "delete the note called Trip to Lisbon"
    test = plan_from_retrieval(planned["views"], planned["retriever"].retrieve(intent), check=True).test
    assert any(s.action.target is not None and "delete" in (s.action.target.resource_id + s.action.target.text).lower()
               for s in test.steps)
    verdict, state = _run(planned, test)
    assert verdict.passed, verdict.reason
    assert "Trip to Lisbon" not in [n["title"] for n in state["lists"]["notes"]]


def test_success_reached_off_plan_on_a_page_the_atlas_did_not_expect_is_done(planned: dict) -> None:
    """The atlas believes Save stays on the form (an error) and the plan goes on to fix and save again; the
    app really saved and shows a 'Saved' page. Checked read-only, the new note is in the list: the case is
    done there, and no second note is made by repairing towards the plan."""
    test = planned["tests"][DEMO_INTENTS[0]]  # create a text note 'Groceries': ... Save -> Saved page
    verdict, state = _run(planned, _off_plan(test, -2, "new_save"))
    assert verdict.passed, verdict.reason
    assert "checked read-only" in " ".join(str(s.get("reason")) for s in verdict.steps)
    assert [r["title"] for r in state["lists"]["notes"]].count("Groceries") == 2  # the old one and one new
