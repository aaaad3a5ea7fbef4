"""App specs: loading from YAML and dicts, errors that name the problem, robustness, the synthetic generator."""

from __future__ import annotations

import copy
from collections import deque
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appatlas.devices.apps import builtin_apps
from appatlas.devices.apps.synthetic import synthetic_spec
from appatlas.devices.spec import EffectKind, Rule, WidgetKind, load_spec, spec_from_dict, spec_from_yaml
from appatlas.devices.virtual import VirtualDevice
from appatlas.errors import SpecError

# --- loading ------------------------------------------------------------------------------------


def test_builtin_apps_include_the_demo() -> None:
    assert builtin_apps()["demo"].name == "demo.yaml"


def test_a_dict_and_its_yaml_file_give_the_same_spec(mini_dict: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "mini.yaml"
    path.write_text(yaml.safe_dump(mini_dict), encoding="utf-8")
    from_file, from_dict = load_spec(path), load_spec(mini_dict)
    assert (from_file.screens, from_file.dialogs) == (from_dict.screens, from_dict.dialogs)


def test_widgets_read_their_kind_label_and_effect(mini_dict: dict[str, Any]) -> None:
    button = spec_from_dict(mini_dict).screens["home"].widgets[3]
    assert (button.kind, button.label, button.tap.kind, button.tap.target) == (
        WidgetKind.BUTTON, "Sign in", EffectKind.GO, "inbox")


def test_checkboxes_toggle_when_no_tap_is_given(mini_dict: dict[str, Any]) -> None:
    remember = spec_from_dict(mini_dict).screens["home"].widgets[4]
    assert remember.tap is not None and remember.tap.kind is EffectKind.TOGGLE


def test_relative_activity_names_expand_with_the_package(mini_dict: dict[str, Any]) -> None:
    mini_dict["screens"][0]["activity"] = ".ui.Start"
    assert spec_from_dict(mini_dict).activity_name("home") == "com.example.mini.ui.Start"


def test_a_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "absent.yaml")


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(SpecError, match="line 2"):
        spec_from_yaml("app:\n\tpackage: com.x.y\n")


def test_non_utf8_file_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"app: {name: \xe9}\n")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_spec(path)


# --- validation errors name the place and the problem -------------------------------------------


def _set(path: str, value: Any) -> Any:
    def change(spec: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = spec
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if isinstance(node, list) and int(last) == len(node):
            node.append(value)
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return change


def _drop(path: str) -> Any:
    def change(spec: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = spec
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        del node[last]
    return change


ERRORS = {
    "unknown target screen": (_set("screens/0/widgets/7/tap", {"go": "nowhere"}),
                              ["screen 'home'", "unknown screen 'nowhere'"]),
    "dialog opened with go": (_set("screens/0/widgets/6/tap", {"go": "confirm"}), ["it is a dialog"]),
    "unknown dialog": (_set("screens/0/widgets/6/tap", {"dialog": "gone"}), ["unknown dialog 'gone'"]),
    "duplicate screen ids": (_set("screens/1/id", "home"), ["screen 'home'", "duplicate screen id"]),
    "duplicate widget ids": (_set("screens/0/widgets/5/id", "remember"), ["widget id 'remember' is used twice"]),
    "missing package": (_drop("app/package"), ["app", "missing 'package'"]),
    "bad package": (_set("app/package", "notapackage"), ["not an Android package name"]),
    "unknown launch screen": (_set("app/launch", "splash"), ["launch screen 'splash'"]),
    "typo in a key": (_set("screens/0/widgets/3/tpa", "back"), ["unknown key 'tpa'", "known keys"]),
    "widget without kind": (_set("screens/0/widgets/0", {"id": "lonely"}), ["needs exactly one kind key"]),
    "widget with two kinds": (_set("screens/0/widgets/0", {"text": "a", "button": "b"}), ["got text, button"]),
    "gate on a non-input": (_set("screens/0/widgets/3/tap/when/field", "sign_in"),
                            ["gate field 'sign_in' is not an input"]),
    "unknown gate rule": (_set("screens/0/widgets/3/tap/when", {"field": "email", "rule": "url"}),
                          ["rule 'url' must be one of"]),
    "bad regex": (_set("screens/0/widgets/3/tap/when", {"field": "email", "match": "(["}),
                  ["not a regular expression"]),
    "unknown placeholder": (_set("screens/0/widgets/0/text", "It is {weather}"), ["unknown placeholder {weather}"]),
    "back to unknown screen": (_set("screens/1/back", "attic"), ["screen 'inbox'", "'attic', which is not a screen"]),
    "input without id": (_drop("screens/0/widgets/1/id"), ["an input needs an 'id'"]),
    "two lists": (_set("screens/1/widgets/1", {"list": None, "id": "more"}), ["more than one list"]),
    "bad input type": (_set("screens/0/widgets/1/input_type", "date"), ["input_type 'date'"]),
    "bad effect word": (_set("screens/0/widgets/9/tap", "explode"), ["'explode' is not an effect"]),
    "text where a flag goes": (_set("screens/0/widgets/5/checked", "yes"), ["'checked' must be true or false"]),
    "no screens": (_set("screens", []), ["non-empty list of screens"]),
    "toggle on a button": (_set("screens/0/widgets/9/tap", "toggle"), ["toggle works on a checkbox or a switch"]),
    "permission on_deny": (_set("screens/3/permission/on_deny", "explode"), ["on_deny 'explode'"]),
    "error without a gate": (_set("screens/0/widgets/6/tap", {"dialog": "confirm", "error": "x"}),
                             ["'error' needs a 'when'"]),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_validation_error_names_the_problem(case: str, mini_dict: dict[str, Any]) -> None:
    change, expected = ERRORS[case]
    change(mini_dict)
    with pytest.raises(SpecError) as info:
        spec_from_dict(mini_dict, source="mini.yaml")
    for fragment in expected:
        assert fragment in str(info.value)
    assert info.value.source == "mini.yaml"


def test_a_list_without_room_is_a_spec_error_when_the_device_starts(mini_dict: dict[str, Any]) -> None:
    mini_dict["screens"][1]["widgets"] += [{"text": f"Line {i}"} for i in range(30)]
    with pytest.raises(SpecError, match="less than two rows"):
        VirtualDevice(spec_from_dict(mini_dict), screenshots=False)


# --- rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, ok", [("ana@example.com", True), ("a.b+c@mail.co.uk", True), ("ana@", False),
                                       ("ana@example", False), ("", False), ("ana @example.com", False)])
def test_email_rule(value: str, ok: bool) -> None:
    assert Rule("email").accepts(value) is ok


@pytest.mark.parametrize("value, ok", [("42", True), ("-3.5", True), ("4x", False), ("", False)])
def test_number_rule(value: str, ok: bool) -> None:
    assert Rule("number").accepts(value) is ok


def test_match_rule_needs_the_whole_value() -> None:
    assert Rule("match", r"\d{4}").accepts("1234") and not Rule("match", r"\d{4}").accepts("12345")


# --- robustness: nothing but SpecError ----------------------------------------------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12))
_trees = st.recursive(_scalars, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                     st.dictionaries(st.one_of(st.text(max_size=8), st.integers()),
                                                                     kids, max_size=4)), max_leaves=30)
_KEYS = ["app", "screens", "dialogs", "package", "launch", "id", "widgets", "text", "button", "input", "list",
         "items", "tap", "go", "dialog", "when", "field", "rule", "back", "permission", "title", "checkbox"]


def _assert_only_spec_error(call: Any) -> None:
    try:
        call()
    except SpecError:
        pass


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_arbitrary_yaml_text_raises_only_spec_error(text: str) -> None:
    _assert_only_spec_error(lambda: spec_from_yaml(text))


@settings(max_examples=200)
@given(_trees)
def test_arbitrary_yaml_documents_raise_only_spec_error(tree: Any) -> None:
    _assert_only_spec_error(lambda: spec_from_yaml(yaml.safe_dump(tree)))


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(_KEYS), _trees, max_size=4))
def test_arbitrary_dicts_raise_only_spec_error(data: dict[str, Any]) -> None:
    _assert_only_spec_error(lambda: spec_from_dict(data))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        out += _paths(v, (*prefix, k))
    return out


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_a_valid_spec_with_one_part_replaced_raises_only_spec_error(mini_dict: dict[str, Any], data: Any) -> None:
    spec = copy.deepcopy(mini_dict)
    paths = _paths(spec)[1:]
    path = data.draw(st.sampled_from(paths))
    node: Any = spec
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = data.draw(_trees)

    def load() -> None:
        VirtualDevice(spec_from_dict(spec), screenshots=False).snapshot()

    _assert_only_spec_error(load)


@settings(max_examples=60)
@given(st.integers(min_value=0, max_value=10_000), st.text(max_size=20))
def test_the_demo_text_with_a_slice_replaced_raises_only_spec_error(at: int, junk: str) -> None:
    text = builtin_apps()["demo"].read_text(encoding="utf-8")
    at %= len(text)
    _assert_only_spec_error(lambda: spec_from_yaml(text[:at] + junk + text[at + len(junk):]))


def test_aliases_that_multiply_a_spec_hit_the_size_limit() -> None:
    rows = "[" + ", ".join("{title: x}" for _ in range(1000)) + "]"
    text = f"app: {{package: com.x.y, launch: s0}}\nscreens:\n  - {{id: s0, widgets: [{{list: , id: l, items: &rows {rows}}}]}}\n"
    text += "".join(f"  - {{id: s{i}, widgets: [{{list: , id: l, items: *rows}}]}}\n" for i in range(1, 600))
    with pytest.raises(SpecError, match="more than 400000 values"):
        spec_from_yaml(text)


# --- the synthetic app --------------------------------------------------------------------------


def test_synthetic_spec_has_exactly_the_asked_screens() -> None:
    assert len(spec_from_dict(synthetic_spec(120)).screens) == 120


def test_synthetic_spec_is_the_same_for_the_same_seed() -> None:
    assert synthetic_spec(80, seed=3) == synthetic_spec(80, seed=3)


def test_synthetic_spec_differs_between_seeds() -> None:
    assert synthetic_spec(80, seed=1) != synthetic_spec(80, seed=2)


def test_every_synthetic_screen_is_reachable_from_launch() -> None:
    spec = spec_from_dict(synthetic_spec(300, seed=5))
    seen, queue = {spec.launch}, deque([spec.launch])
    while queue:
        for w in spec.screens[queue.popleft()].widgets:
            for e in (w.tap, w.row_tap):
                if e is not None and e.kind is EffectKind.GO and e.target not in seen:
                    seen.add(e.target)
                    queue.append(e.target)
    assert seen == set(spec.screens)


def test_a_thousand_screen_synthetic_app_runs_on_the_virtual_device() -> None:
    device = VirtualDevice(spec_from_dict(synthetic_spec(1000)), screenshots=False)
    assert device.snapshot().activity.startswith("com.appatlas.synthetic.")


def test_synthetic_spec_refuses_a_non_positive_size() -> None:
    with pytest.raises(ValueError, match="positive"):
        synthetic_spec(0)


def test_the_example_in_the_format_document_runs() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "app-spec.md").read_text(encoding="utf-8")
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    device = VirtualDevice(spec_from_yaml(example, source="docs/app-spec.md"), screenshots=False)
    assert device.snapshot().activity == "com.example.mail.MainActivity"
