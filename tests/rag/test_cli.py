from __future__ import annotations

from typer.testing import CliRunner

from appatlas.cli import app
from appatlas.graph.testcases import load_tests


def _app():  # noqa: ANN202 - the real `appatlas` command (its entry point), not one built for the test
    return app


def test_plan_saves_a_test_that_export_turns_into_pytest(notes_atlas, tmp_path, embedder) -> None:
    runner = CliRunner()
    out = tmp_path / "milk.yaml"
    result = runner.invoke(_app(), ["plan", str(notes_atlas), "Create a note named 'Milk'", "--out", str(out)])
    assert result.exit_code == 0, result.output
    suite = load_tests(out)
    assert suite.app == "com.example.notes" and ("name", "Milk") in suite.tests[0].inputs
    result = runner.invoke(_app(), ["export", "pytest", str(out), "--out", str(tmp_path / "test_milk.py")])
    assert result.exit_code == 0, result.output
    compile((tmp_path / "test_milk.py").read_text(), "test_milk.py", "exec")


def test_plan_on_a_stale_index_says_to_run_index(notes_atlas, embedder) -> None:
    from appatlas.graph.atlas import Atlas
    from tests.rag.conftest import about_screen

    with Atlas.open(notes_atlas) as atlas:
        atlas.add_state(about_screen())
    result = CliRunner().invoke(_app(), ["plan", str(notes_atlas), "show word count"])
    assert result.exit_code == 2 and "IndexStale" in result.output and "appatlas index" in result.output
    assert CliRunner().invoke(_app(), ["index", str(notes_atlas)]).exit_code == 0
    assert CliRunner().invoke(_app(), ["plan", str(notes_atlas), "show word count"]).exit_code == 0


def test_the_coverage_suite_visits_every_screen(notes_atlas, tmp_path) -> None:
    out = tmp_path / "coverage.yaml"
    result = CliRunner().invoke(_app(), ["plan", str(notes_atlas), "--suite", "coverage", "--out", str(out)])
    assert result.exit_code == 0, result.output
    tests = load_tests(out).tests
    visited = {t.start for t in tests} | {s.expect for t in tests for s in t.steps}
    assert len(visited) == 5  # every app screen reachable from the launch screen (not the launcher)


def test_each_command_explains_itself_with_an_example() -> None:
    for command in (["caption"], ["index"], ["plan"], ["export", "pytest"], ["bench", "retrieval"]):
        result = CliRunner().invoke(_app(), [*command, "--help"])
        assert result.exit_code == 0 and "Example: appatlas" in result.output


def test_the_demo_hook_plans_and_saves_each_intent(notes_atlas, tmp_path, embedder) -> None:
    from appatlas.rag.demo import demo_retrieval

    summary = demo_retrieval(notes_atlas, tmp_path / "tests", ["Create a note named 'Milk'", "show word count"])
    assert [t["intent"] for t in summary["tests"]] == ["Create a note named 'Milk'", "show word count"]
    for row in summary["tests"]:
        assert load_tests(row["file"]).tests[0].intent == row["intent"] and row["steps"] > 0


def test_plan_by_default_rehearses_the_agent_and_says_each_step_is_the_agents(notes_atlas, tmp_path, embedder) -> None:
    out = tmp_path / "autosave.yaml"
    result = CliRunner().invoke(_app(), ["plan", str(notes_atlas), "disable autosave notes", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.count("key step: the agent, rehearsed") == 3 and out.is_file()


def test_plan_with_the_words_planner_routes_by_captions_alone(notes_atlas, embedder) -> None:
    result = CliRunner().invoke(_app(), ["plan", str(notes_atlas), "disable autosave notes", "--planner", "words"])
    assert result.exit_code == 0, result.output
    assert "key step:" in result.output and "the agent, rehearsed" not in result.output


def test_an_unknown_planner_is_refused(notes_atlas) -> None:
    result = CliRunner().invoke(_app(), ["plan", str(notes_atlas), "show word count", "--planner", "magic"])
    assert result.exit_code == 2 and "words or agent" in result.output


def test_index_holds_every_element_the_agent_decides_with(notes_atlas, embedder) -> None:
    from appatlas.graph.atlas import Atlas
    from appatlas.rag.store import RagStore

    assert CliRunner().invoke(_app(), ["index", str(notes_atlas)]).exit_code == 0
    with Atlas.open(notes_atlas) as atlas:
        store = RagStore.open(atlas, embedder=embedder)
        assert store.has_elements
        said = {d.meta["label"]: d.text for d in store.element_docs()}
    assert "leads to" in said["Settings"]  # the menu item's functional memory: where it leads
