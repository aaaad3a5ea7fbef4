from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from appatlas.errors import TestCaseInvalid
from appatlas.graph.testcases import TestSuite, dump_tests, load_tests, parse_tests, save_tests
from appatlas.types import Action, ActionKind, Bounds, Selector, Step, TestCase

SAMPLE = TestCase(
    name="create_note", intent="Create a note named 'Milk'", start="aaa", end="ccc",
    inputs=(("name", "Milk"),),
    steps=(Step(Action(ActionKind.TAP, target=Selector(resource_id="x:id/new", class_name="android.widget.Button",
                                                       bounds=Bounds(1, 2, 30, 40))), expect="bbb", note="opens it"),
           Step(Action(ActionKind.TYPE, target=Selector(resource_id="x:id/title", index=1), text="Milk"),
                expect="bbb"),
           Step(Action(ActionKind.SCROLL, direction="down"), expect="bbb"),
           Step(Action(ActionKind.BACK), expect="ccc"),
           Step(Action(ActionKind.LAUNCH, app="x/.Main"), expect="ccc")))


def test_a_suite_survives_a_round_trip_through_yaml(tmp_path) -> None:
    path = save_tests(tmp_path / "t.yaml", TestSuite([SAMPLE], app="x"))
    suite = load_tests(path)
    assert suite.tests == [SAMPLE] and suite.app == "x"


def test_the_yaml_reads_like_a_test(tmp_path) -> None:
    text = dump_tests([SAMPLE])
    assert "action: type" in text and "text: Milk" in text and "bounds: [1, 2, 30, 40]" in text


def test_a_single_test_at_the_top_level_loads() -> None:
    text = yaml.safe_dump({"name": "t", "start": "a", "steps": [{"action": "back", "expect": "b"}]})
    assert parse_tests(text).tests[0].steps[0].action.kind is ActionKind.BACK


def test_two_inputs_with_one_name_stay_apart() -> None:
    test = TestCase(name="t", intent="", start="a", steps=(), inputs=(("name", "a"), ("name", "b")))
    assert parse_tests(dump_tests([test])).tests == [test]


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d["tests"][0]["steps"][1].pop("target"), "tests[0].steps[1].target"),
    (lambda d: d["tests"][0]["steps"][0].update(action="swipe"), "tests[0].steps[0].action"),
    (lambda d: d["tests"][0]["steps"][0]["target"].update(bounds=[1, 2]), "tests[0].steps[0].target.bounds"),
    (lambda d: d["tests"][0]["steps"][2].update(direction="sideways"), "tests[0].steps[2].direction"),
    (lambda d: d["tests"][0].pop("name"), "tests[0].name"),
    (lambda d: d["tests"][0].update(colour="red"), "tests[0].colour"),
    (lambda d: d["tests"][0]["steps"][0]["target"].update(index=-1), "tests[0].steps[0].target.index"),
])
def test_a_mistake_is_named_by_its_field(change, field: str) -> None:
    doc = yaml.safe_load(dump_tests([SAMPLE]))
    change(doc)
    with pytest.raises(TestCaseInvalid) as err:
        parse_tests(yaml.safe_dump(doc), source="t.yaml")
    assert err.value.field == field and field in str(err.value) and "t.yaml" in str(err.value)


def test_a_file_from_a_newer_appatlas_is_refused_with_advice() -> None:
    with pytest.raises(TestCaseInvalid, match="upgrade"):
        parse_tests("appatlas_tests: 99\ntests: []\n")


def test_broken_yaml_names_the_line() -> None:
    with pytest.raises(TestCaseInvalid, match="line"):
        parse_tests("tests:\n  - name: [unclosed\n")


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12))
documents = st.recursive(scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.one_of(st.text(max_size=10), st.sampled_from(
        ["tests", "name", "start", "steps", "action", "target", "text", "expect", "bounds", "inputs", "index",
         "direction", "app", "appatlas_tests"])), kids, max_size=5)), max_leaves=25)


@settings(max_examples=300)
@given(documents)
def test_any_yaml_document_is_a_suite_or_a_typed_error(doc) -> None:
    try:
        suite = parse_tests(yaml.safe_dump(doc))
    except TestCaseInvalid as exc:
        assert exc.field
        return
    assert all(isinstance(t, TestCase) for t in suite.tests)


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_any_text_is_a_suite_or_a_typed_error(text: str) -> None:
    try:
        parse_tests(text)
    except TestCaseInvalid:
        pass


@settings(max_examples=100)
@given(st.text(min_size=1, max_size=20), st.text(max_size=30), st.text(max_size=20),
       st.sampled_from(["tap", "type", "back", "long_tap"]))
def test_any_valid_test_round_trips(name: str, intent: str, typed: str, kind: str) -> None:
    target = None if kind == "back" else Selector(resource_id="x:id/f", text=typed or "t")
    step = Step(Action(ActionKind(kind), target=target, text=typed if kind == "type" else ""), expect="k")
    test = TestCase(name=name, intent=intent, start="s", steps=(step,), inputs=(("v", typed),))
    if not name.strip():
        with pytest.raises(TestCaseInvalid):
            parse_tests(dump_tests([test]))
        return
    assert parse_tests(dump_tests([test])).tests == [test]
