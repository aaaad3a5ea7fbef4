"""Ray is optional: without it everything imports and `--farm` says how to install it."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

HIDE_RAY = "import sys; sys.modules['ray'] = None\n"  # `import ray` now fails as if it were not installed


def test_without_ray_every_command_module_imports_and_farm_commands_say_how_to_install() -> None:
    code = HIDE_RAY + """
import appatlas.cli, appatlas.farm, appatlas.bench.farm, appatlas.bench.faults
from typer.testing import CliRunner
out = CliRunner().invoke(appatlas.cli.app, ["farm", "status", "--address", "127.0.0.1:1"])
print(out.exit_code)
print(out.output)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    code_line, _, text = done.stdout.partition("\n")
    assert code_line == "2" and 'pip install "appatlas[farm]"' in " ".join(text.split())


def test_campaign_on_a_farm_without_ray_says_how_to_install(monkeypatch, tmp_path) -> None:
    from appatlas.cli import app
    from appatlas.graph.atlas import Atlas
    from appatlas.graph.testcases import save_tests
    from appatlas.types import Action, ActionKind, Step, TestCase

    with Atlas.create(tmp_path / "a.atlas", app="com.appatlas.notes"):
        pass
    save_tests(tmp_path / "suite.yaml", [TestCase(name="t", intent="go back", start="k",
                                                  steps=(Step(Action(ActionKind.BACK), expect="k"),), end="k")])
    monkeypatch.setitem(sys.modules, "ray", None)
    out = CliRunner().invoke(app, ["campaign", str(tmp_path / "suite.yaml"), "--atlas", str(tmp_path / "a.atlas"),
                                   "--farm", "local", "--out", str(tmp_path / "out")])
    assert out.exit_code == 2 and 'pip install "appatlas[farm]"' in " ".join(out.output.split())
