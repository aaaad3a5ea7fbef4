"""The built-in mutants of `appatlas bench bugs`: many, valid, each one change the virtual app really shows."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from appatlas.bench.bugs import _changed_places, builtin_mutants
from appatlas.devices.apps import builtin_apps
from appatlas.devices.spec import load_spec, spec_from_dict
from appatlas.devices.virtual import open_app
from appatlas.types import Action, ActionKind, Selector


def test_every_builtin_mutant_is_a_valid_spec_that_differs_where_it_says() -> None:
    path = builtin_apps()["demo"]
    base = load_spec(path)
    mutants = builtin_mutants(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
    assert len(mutants) >= 20
    kinds = {name.split("@")[0] for name, _, _ in mutants}
    assert {"save_lost", "save_truncated", "delete_wrong_row", "validation_fails", "crash", "wrong_screen",
            "dialog_stuck", "switch_forgets"} <= kinds
    for name, _, data in mutants:
        changed = _changed_places(base, spec_from_dict(data, source=name))
        assert changed and changed <= set(base.screens) | set(base.dialogs), name


def test_a_truncating_save_really_saves_a_shorter_title() -> None:
    path = builtin_apps()["demo"]
    name, _, data = next(m for m in builtin_mutants(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
                         if m[0] == "save_truncated@new_text_note/Save")
    device = open_app(spec_from_dict(data, source=name), screenshots=False)
    pkg = "com.appatlas.notes"
    device.perform(Action(ActionKind.TAP, target=Selector(resource_id=f"{pkg}:id/fab_new")))
    device.perform(Action(ActionKind.TAP, target=Selector(text="Text note")))
    device.perform(Action(ActionKind.TYPE, target=Selector(resource_id=f"{pkg}:id/new_title"), text="Groceries"))
    device.perform(Action(ActionKind.TAP, target=Selector(resource_id=f"{pkg}:id/new_save")))
    assert device.state()["lists"]["notes"][0]["title"] == "Groc"


@pytest.fixture(scope="module")
def coverage(crawled_demo) -> dict:  # noqa: ANN001 - the conftest's copier
    """The generated part of the bugs suite on a crawl of the correct demo app: coverage tests with one
    test per button no test taps, route effects added (what `bench bugs` plans; no mutant is known)."""
    from appatlas.agent.knowledge import Knowledge
    from appatlas.graph.atlas import Atlas
    from appatlas.rag.expect import route_effects
    from appatlas.rag.plan import coverage_tests
    from appatlas.rag.views import atlas_views

    with Atlas.open(crawled_demo("bugs")) as atlas:
        views = atlas_views(atlas)
        tests = [route_effects(views, t) for t in coverage_tests(atlas, views=views, dialogs=True, buttons=True)]
        return {"tests": tests, "knowledge": Knowledge.from_atlas(atlas)}


def _mutant(name: str):  # noqa: ANN202
    data = next(m for m in builtin_mutants(yaml.safe_load(Path(builtin_apps()["demo"]).read_text(encoding="utf-8")))
                if m[0] == name)[2]
    return spec_from_dict(data, source=name)


def _kills(coverage: dict, case, mutant: str) -> tuple[bool, bool]:  # noqa: ANN001
    """(passes on the correct app, fails on the mutant) for one case."""
    from appatlas.agent.loop import Agent
    from appatlas.bench.bugs import run_suite

    agent = Agent(coverage["knowledge"])
    base = load_spec(builtin_apps()["demo"])
    (good,), (bad,) = run_suite(agent, base, [case]), run_suite(agent, _mutant(mutant), [case])
    return good["passed"], not bad["passed"]


def _taps(case, what: str) -> bool:  # noqa: ANN001
    return any(s.action.target is not None and s.action.target.resource_id.endswith(what) for s in case.steps)


def test_a_save_no_screen_coverage_test_presses_gets_a_test_that_finds_a_validation_bug(coverage: dict) -> None:
    # every screen is visited without pressing the Edit note form's Save: a test of its own presses it
    case = next(t for t in coverage["tests"] if t.steps and _taps(t, "edit_save") and t.name.startswith("coverage_buttons"))
    assert _kills(coverage, case, "validation_fails@note_edit/Save") == (True, True)


def test_a_route_that_deletes_a_row_expects_that_row_gone_and_finds_a_delete_that_removes_another(
        coverage: dict) -> None:
    deleting = [t for t in coverage["tests"] if any(e.kind == "gone" for e in t.expect)]
    assert deleting, "no generated test expects the row its route deletes to be gone"
    case = next(t for t in deleting if any(s.action.kind is ActionKind.LONG_TAP for s in t.steps))
    (gone,) = [e for e in case.expect if e.kind == "gone"]
    long_tap = next(s for s in case.steps if s.action.kind is ActionKind.LONG_TAP)
    assert long_tap.action.target.text == gone.text  # the row it deletes is picked by its text
    assert _kills(coverage, case, "delete_wrong_row@note_actions/Delete") == (True, True)
    assert _kills(coverage, case, "delete_nothing@note_actions/Delete")[1]
