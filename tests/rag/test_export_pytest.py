from __future__ import annotations

import ast
import os
import subprocess
import sys

from appatlas.graph.export_pytest import export_pytest, render_pytest
from appatlas.graph.testcases import TestSuite
from appatlas.types import Action, ActionKind, Bounds, Selector, Step, TestCase

HOSTILE = 'x"""\nimport os; os.system("echo pwned")  # \\'
SUITE = TestSuite(app="com.example.notes", tests=[
    TestCase(name="create note", intent="Create a note named 'Milk'", start="a", end="a", steps=(
        Step(Action(ActionKind.TAP, target=Selector(resource_id="com.example.notes:id/new", bounds=Bounds(1, 2, 3, 4))),
             expect="b", note=HOSTILE),
        Step(Action(ActionKind.TYPE, target=Selector(resource_id="com.example.notes:id/title"), text=HOSTILE),
             expect="b"),
        Step(Action(ActionKind.SCROLL, direction="down"), expect="b"),
        Step(Action(ActionKind.LONG_TAP, target=Selector(text="Milk")), expect="b"),
        Step(Action(ActionKind.BACK), expect="a"),
        Step(Action(ActionKind.LAUNCH, app="com.example.notes/.Main"), expect="a"))),
    TestCase(name=HOSTILE, intent=HOSTILE, start="a", steps=()),
    TestCase(name="create note", intent="same name twice", start="a", steps=()),
])


def test_the_exported_file_is_valid_python_with_one_test_per_case(tmp_path) -> None:
    path = export_pytest(SUITE, tmp_path / "test_app.py", source=HOSTILE)
    tree = ast.parse(path.read_text())
    tests = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    assert len(tests) == len(set(tests)) == 3


def test_the_exported_file_imports_only_pytest_and_uiautomator2() -> None:
    tree = ast.parse(render_pytest(SUITE))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)
                for alias in node.names} | {node.module for node in ast.walk(tree)
                                            if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"os", "pytest", "uiautomator2"}
    assert "appatlas" not in render_pytest(SUITE).split('"""', 2)[2]


def test_test_texts_cannot_inject_code() -> None:
    tree = ast.parse(render_pytest(SUITE))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr == "system"]
    assert not calls  # the hostile text stays inside string literals and comments


def test_without_a_phone_the_exported_tests_skip(tmp_path) -> None:
    path = export_pytest(SUITE, tmp_path / "test_app.py")
    env = {k: v for k, v in os.environ.items() if k != "ANDROID_SERIAL"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 skipped" in run.stdout
