"""Test cases as YAML a person can read and edit, and back; every mistake named by its field.

    appatlas_tests: 1
    app: com.simplemobiletools.notes.pro
    tests:
    - name: create_a_text_note_named_newtextnote
      intent: Create a text note named 'NewTextNote'
      start: b7592f…          # structure key of the screen the test starts on
      end: b7592f…            # the screen it must end on (final oracle)
      inputs: {name: NewTextNote}
      expect:                 # what must hold when it is done; PASS needs every one
      - shown: NewTextNote
        where: 3006f8…        # the notes list (a structure key)
        new: true             # one more than when the run first saw the list
        note: the new note 'NewTextNote' is in the notes list
      steps:
      - action: tap
        target: {resource_id: com.simplemobiletools.notes.pro:id/new_note, class_name: android.widget.Button}
        expect: a68a1c…       # the screen expected after this step
      - action: type
        target: {resource_id: com.simplemobiletools.notes.pro:id/locked_note_title}
        text: NewTextNote
        expect: a68a1c…

A file may also hold one test at the top level (no `tests:` list). Loading uses
`yaml.safe_load` only, and anything malformed raises `TestCaseInvalid` naming the field
(`tests[0].steps[2].target.bounds`) and what is wrong with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from appatlas.errors import TestCaseInvalid
from appatlas.types import (
    EXPECTATION_KINDS,
    SCROLL_DIRECTIONS,
    Action,
    ActionKind,
    Bounds,
    Expectation,
    Selector,
    Step,
    TestCase,
)

__all__ = ["FORMAT_VERSION", "TestSuite", "dump_tests", "expectation_dict", "load_tests", "parse_expectations", "parse_tests", "save_tests",
           "selector_dict"]

FORMAT_VERSION = 1
_SELECTOR_FIELDS = ("resource_id", "text", "content_desc", "class_name", "index", "bounds")
_STEP_FIELDS = ("action", "target", "text", "direction", "app", "expect", "note")
_TEST_FIELDS = ("name", "intent", "start", "end", "inputs", "expect", "steps")
_EXPECT_FIELDS = (*EXPECTATION_KINDS, "where", "count", "new", "note")


@dataclass
class TestSuite:
    """Tests of one app, as a file holds them."""

    __test__ = False  # not a pytest test class

    tests: list[TestCase]
    app: str = ""  # the package under test (exported tests launch it)
    meta: dict[str, Any] = field(default_factory=dict)


# --- writing -----------------------------------------------------------------------------------------


def selector_dict(s: Selector) -> dict[str, Any]:
    """A selector as the plain mapping test files carry (only the fields it sets)."""
    out: dict[str, Any] = {}
    for name in ("resource_id", "content_desc", "text", "class_name"):
        if value := getattr(s, name):
            out[name] = value
    if s.index:
        out["index"] = s.index
    if s.bounds is not None:
        out["bounds"] = [s.bounds.x1, s.bounds.y1, s.bounds.x2, s.bounds.y2]
    return out


def _step_dict(step: Step) -> dict[str, Any]:
    a = step.action
    out: dict[str, Any] = {"action": a.kind.value}
    if a.target is not None:
        out["target"] = selector_dict(a.target)
    for name in ("text", "direction", "app"):
        if value := getattr(a, name):
            out[name] = value
    if step.expect:
        out["expect"] = step.expect
    if step.note:
        out["note"] = step.note
    return out


def expectation_dict(e: Expectation) -> dict[str, Any]:
    """An expectation as the mapping test files carry: `{shown: Groceries, where: KEY, note: …}`."""
    out: dict[str, Any] = {e.kind: e.where if e.kind == "screen" else e.text}
    if e.kind != "screen" and e.where:
        out["where"] = e.where
    if e.count is not None:
        out["count"] = e.count
    if e.new:
        out["new"] = True
    if e.note:
        out["note"] = e.note
    return out


def _test_dict(t: TestCase) -> dict[str, Any]:
    out: dict[str, Any] = {"name": t.name, "intent": t.intent, "start": t.start}
    if t.end:
        out["end"] = t.end
    if t.inputs:
        names = [k for k, _ in t.inputs]
        # a mapping reads best; a list keeps two inputs of the same name apart
        out["inputs"] = dict(t.inputs) if len(set(names)) == len(names) else [
            {"name": k, "value": v} for k, v in t.inputs]
    if t.expect:
        out["expect"] = [expectation_dict(e) for e in t.expect]
    out["steps"] = [_step_dict(s) for s in t.steps]
    return out


class _Dumper(yaml.SafeDumper):
    """Safe YAML, with short lists of numbers (bounds) on one line."""


def _flow_numbers(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = len(data) <= 6 and all(isinstance(x, int | float) and not isinstance(x, bool) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow or None)


def _exact_text(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # Line-break look-alikes (NEL, LS, PS), control characters and edge spaces are folded away
    # in plain or block style; double quotes keep typed texts exactly as they are.
    risky = any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029\ufeff" for c in data)
    style = '"' if risky or data != data.strip() else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(list, _flow_numbers)
_Dumper.add_representer(str, _exact_text)


def dump_tests(tests: TestSuite | Sequence[TestCase], *, app: str = "") -> str:
    """The YAML text of `tests` (a suite, or a list of test cases)."""
    suite = tests if isinstance(tests, TestSuite) else TestSuite(list(tests), app=app)
    doc: dict[str, Any] = {"appatlas_tests": FORMAT_VERSION}
    if suite.app or app:
        doc["app"] = suite.app or app
    doc.update(suite.meta)
    doc["tests"] = [_test_dict(t) for t in suite.tests]
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


def save_tests(path: str | Path, tests: TestSuite | Sequence[TestCase], *, app: str = "") -> Path:
    """Write `tests` as YAML to `path` (atomically: a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dump_tests(tests, app=app), encoding="utf-8")
    tmp.replace(path)
    return path


# --- reading -----------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> TestCaseInvalid:
        return TestCaseInvalid(self.source, where, problem)

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, f"expected a mapping (key: value lines), found {_kind(value)}")
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise self.fail(where, f"keys must be text, found {bad[0]!r}")
        return value

    def text(self, value: Any, where: str, *, required: bool = False) -> str:
        if value is None:
            if required:
                raise self.fail(where, "is required")
            return ""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(where, f"expected text, found {_kind(value)}")
        text = str(value)
        if required and not text.strip():
            raise self.fail(where, "must not be empty")
        return text

    def unknown(self, m: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
        extra = [k for k in m if k not in allowed]
        if extra:
            key = extra[0] if extra[0].isidentifier() else repr(extra[0])  # an empty or odd key stays visible
            raise self.fail(f"{where}.{key}" if where else key, f"unknown field; expected one of {', '.join(allowed)}")

    def selector(self, value: Any, where: str) -> Selector:
        m = self.mapping(value, where)
        self.unknown(m, _SELECTOR_FIELDS, where)
        index = m.get("index", 0)
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise self.fail(f"{where}.index", f"expected a whole number >= 0, found {index!r}")
        bounds = None
        if m.get("bounds") is not None:
            b = m["bounds"]
            if not isinstance(b, list) or len(b) != 4 or not all(isinstance(v, int) and not isinstance(v, bool)
                                                                  for v in b):
                raise self.fail(f"{where}.bounds", "expected [x1, y1, x2, y2] (four whole numbers)")
            try:
                bounds = Bounds(*b)
            except ValueError as exc:
                raise self.fail(f"{where}.bounds", str(exc)) from None
        try:
            return Selector(resource_id=self.text(m.get("resource_id"), f"{where}.resource_id"),
                            text=self.text(m.get("text"), f"{where}.text"),
                            content_desc=self.text(m.get("content_desc"), f"{where}.content_desc"),
                            class_name=self.text(m.get("class_name"), f"{where}.class_name"),
                            index=index, bounds=bounds)
        except ValueError as exc:
            raise self.fail(where, str(exc)) from None

    def step(self, value: Any, where: str) -> Step:
        m = self.mapping(value, where)
        self.unknown(m, _STEP_FIELDS, where)
        kind_text = self.text(m.get("action"), f"{where}.action", required=True)
        try:
            kind = ActionKind(kind_text)
        except ValueError:
            raise self.fail(f"{where}.action", f"{kind_text!r} is not an action; use one of "
                            f"{', '.join(k.value for k in ActionKind)}") from None
        target = self.selector(m["target"], f"{where}.target") if m.get("target") is not None else None
        direction = self.text(m.get("direction"), f"{where}.direction")
        if kind is ActionKind.SCROLL and direction not in SCROLL_DIRECTIONS:
            raise self.fail(f"{where}.direction", f"a scroll needs a direction: one of {', '.join(SCROLL_DIRECTIONS)}")
        try:
            action = Action(kind=kind, target=target, text=self.text(m.get("text"), f"{where}.text"),
                            direction=direction, app=self.text(m.get("app"), f"{where}.app"))
        except ValueError as exc:
            field_name = "target" if "target" in str(exc) else "app" if "launch" in str(exc) else "action"
            raise self.fail(f"{where}.{field_name}", str(exc)) from None
        return Step(action=action, expect=self.text(m.get("expect"), f"{where}.expect"),
                    note=self.text(m.get("note"), f"{where}.note"))

    def test(self, value: Any, where: str) -> TestCase:
        m = self.mapping(value, where or "test")
        self.unknown(m, _TEST_FIELDS, where)
        p = f"{where}." if where else ""
        steps = m.get("steps", [])
        if not isinstance(steps, list):
            raise self.fail(f"{p}steps", f"expected a list of steps, found {_kind(steps)}")
        inputs = self.inputs(m.get("inputs") or {}, f"{p}inputs")
        return TestCase(
            name=self.text(m.get("name"), f"{p}name", required=True),
            intent=self.text(m.get("intent"), f"{p}intent"),
            start=self.text(m.get("start"), f"{p}start", required=True),
            steps=tuple(self.step(s, f"{p}steps[{i}]") for i, s in enumerate(steps)),
            end=self.text(m.get("end"), f"{p}end"),
            inputs=inputs,
            expect=self.expectations(m.get("expect"), f"{p}expect"))

    def expectations(self, value: Any, where: str) -> tuple[Expectation, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list of expectations, found {_kind(value)}")
        out = []
        for i, item in enumerate(value):
            w = f"{where}[{i}]"
            m = self.mapping(item, w)
            self.unknown(m, _EXPECT_FIELDS, w)
            kinds = [k for k in EXPECTATION_KINDS if k in m]
            if len(kinds) != 1:
                raise self.fail(w, f"needs exactly one of {', '.join(EXPECTATION_KINDS)}")
            kind = kinds[0]
            count = m.get("count")
            if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
                raise self.fail(f"{w}.count", f"expected a whole number >= 0, found {count!r}")
            subject = self.text(m.get(kind), f"{w}.{kind}", required=True)
            new = m.get("new", False)
            if not isinstance(new, bool):
                raise self.fail(f"{w}.new", f"expected true or false, found {new!r}")
            try:
                out.append(Expectation(kind, text="" if kind == "screen" else subject,
                                       where=subject if kind == "screen" else self.text(m.get("where"), f"{w}.where"),
                                       count=count, note=self.text(m.get("note"), f"{w}.note"), new=new))
            except ValueError as exc:
                raise self.fail(w, str(exc)) from None
        return tuple(out)

    def inputs(self, value: Any, where: str) -> tuple[tuple[str, str], ...]:
        if isinstance(value, list):
            out = []
            for i, item in enumerate(value):
                m = self.mapping(item, f"{where}[{i}]")
                self.unknown(m, ("name", "value"), f"{where}[{i}]")
                out.append((self.text(m.get("name"), f"{where}[{i}].name", required=True),
                            self.text(m.get("value"), f"{where}[{i}].value")))
            return tuple(out)
        m = self.mapping(value, where)
        return tuple((k, self.text(v, f"{where}.{k}")) for k, v in m.items())


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def parse_tests(text: str, *, source: str = "<yaml>") -> TestSuite:
    """Test cases from YAML text. Raises TestCaseInvalid naming the field that is wrong."""
    reader = _Reader(source)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "file"
        raise reader.fail(where, f"not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. absurd numbers or nesting
        raise reader.fail("file", f"not readable YAML ({exc})") from None
    if isinstance(doc, Mapping) and "tests" in doc:
        top = reader.mapping(doc, "file")
        reader.unknown(top, ("appatlas_tests", "app", "tests", "generated_by", "atlas"), "")
        version = top.get("appatlas_tests", FORMAT_VERSION)
        if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT_VERSION:
            raise reader.fail("appatlas_tests", f"format {version!r} is not one this appatlas reads "
                              f"(up to {FORMAT_VERSION}); upgrade appatlas")
        tests = top["tests"]
        if not isinstance(tests, list):
            raise reader.fail("tests", f"expected a list of tests, found {_kind(tests)}")
        meta = {k: top[k] for k in ("generated_by", "atlas") if k in top}
        return TestSuite([reader.test(t, f"tests[{i}]") for i, t in enumerate(tests)],
                         app=reader.text(top.get("app"), "app"), meta=meta)
    if isinstance(doc, Mapping):
        return TestSuite([reader.test(doc, "")])
    raise reader.fail("file", f"expected a test (a mapping) or a `tests:` list, found {_kind(doc)}")


def load_tests(path: str | Path) -> TestSuite:
    """Read a test-case YAML file (see the module doc for its shape)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TestCaseInvalid(str(path), "file", f"cannot be read ({exc})") from None
    return parse_tests(text, source=str(path))


def parse_expectations(value: Any, *, source: str = "<yaml>", where: str = "expect") -> tuple[Expectation, ...]:
    """Expectations from an `expect:` list as test files carry it (also read from task files of
    recorded apps). Raises TestCaseInvalid naming the field that is wrong."""
    return _Reader(source).expectations(value, where)
