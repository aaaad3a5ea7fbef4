"""The `appatlas` command as a user runs it (typer's runner, the real functions behind it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from appatlas.cli import app
from appatlas.graph.atlas import Atlas
from tests.conftest import REPO, crawl_ledger

runner = CliRunner()


def _readme_commands() -> list[list[str]]:
    """The commands the README's table lists, as argument lists (`bench crawl · devices` -> two)."""
    commands: list[list[str]] = []
    for line in (REPO / "README.md").read_text().splitlines():
        if not line.startswith("| `appatlas"):
            continue
        cell = re.split(r"(?<!\\)\|", line)[1]  # the first column; `\|` inside it is not a column break
        for segment in re.findall(r"`([^`]*)`", cell):
            segment = segment.removeprefix("appatlas ")
            if "·" in segment:
                group, _, rest = segment.partition(" ")
                commands += [[group, name.strip()] for name in rest.split("·")]
                continue
            words = []
            for token in segment.split():
                if not re.fullmatch(r"[a-z][a-z-]*", token):
                    break
                words.append(token)
            if words:
                commands.append(words)
    return commands


def test_every_command_of_the_readme_has_help_with_an_example() -> None:
    commands = _readme_commands()
    assert len(commands) >= 20, commands  # 21 today; a parse that finds few has lost the table
    for args in commands:
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0 and "Example" in result.output, (args, result.output)


def test_the_installed_appatlas_command_offers_every_top_level_command() -> None:
    # The console script of pyproject.toml, as a user runs it, not typer's runner on the object.
    exe = shutil.which("appatlas", path=str(Path(sys.executable).parent)) or shutil.which("appatlas")
    assert exe is not None, "the appatlas console script is not installed (pip install -e .)"
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    listed = set(re.findall(r"^│ (\S+)", result.stdout, re.MULTILINE))
    assert {args[0] for args in _readme_commands()} <= listed, listed


def test_a_command_module_that_cannot_be_imported_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from appatlas import cli

    monkeypatch.setitem(sys.modules, "appatlas.cli.rag", None)  # importing it now raises ModuleNotFoundError
    with pytest.raises(ModuleNotFoundError, match="appatlas.cli.rag"):
        cli._register_all(typer.Typer(), typer.Typer())


def test_every_command_module_is_registered() -> None:
    from appatlas import cli

    modules = {p.stem for p in (REPO / "appatlas" / "cli").glob("*.py")} - {"__init__", "__main__"}
    assert modules == set(cli.COMMAND_MODULES)


def test_info_on_something_that_is_not_an_atlas_says_what_to_do(tmp_path: Path) -> None:
    result = runner.invoke(app, ["info", str(tmp_path)])
    assert result.exit_code == 2 and "NotAnAtlas" in result.output and "appatlas import" in result.output


@pytest.mark.data
def test_import_prints_what_it_skipped_and_the_counts(droidtask: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["import", "droidbot", str(droidtask / "contacts"), "--out", str(tmp_path / "c.atlas")])
    assert result.exit_code == 0, result.output
    assert "skipped events/event_2023-07-02_145315.json: empty file" in result.output
    printed = re.search(r"transitions\s*│\s*(\d+)", result.output)
    with Atlas.open(tmp_path / "c.atlas") as atlas:
        assert printed is not None and int(printed.group(1)) == atlas.counts()["transitions"]


def _model_counters(output: str) -> tuple[int, int]:
    """The crawl model's own (screens, transitions) from the last progress line the command printed."""
    *_, last = re.findall(r"screens (\d+)\s+transitions (\d+)", output)
    return int(last[0]), int(last[1])


def _actions_printed(output: str) -> int:
    match = re.search(r"actions\s*│\s*(\d+)", output)
    assert match is not None, output
    return int(match.group(1))


def test_crawl_writes_an_atlas_and_resume_continues_it(tmp_path: Path) -> None:
    out = tmp_path / "d.atlas"
    first = runner.invoke(app, ["crawl", "--app", "demo", "--out", str(out), "--budget", "40"])
    assert first.exit_code == 0, first.output
    assert _actions_printed(first.output) == 40
    before = crawl_ledger(out, "com.appatlas.notes")
    again = runner.invoke(app, ["crawl", "--app", "demo", "--out", str(out), "--budget", "70", "--resume"])
    assert again.exit_code == 0, again.output
    after = crawl_ledger(out, "com.appatlas.notes")
    # --budget counts over all runs: the resumed run spent exactly what the first left (a restart
    # from scratch would spend 70 more).
    assert _actions_printed(again.output) == 70
    spent = (after["observations"] - before["observations"]) - (after["returns"] - before["returns"])
    assert spent == 70 - (before["observations"] - before["returns"])
    # The resumed model knew all the first run saw: its counters are the atlas's, not only what this
    # run saw again (a fresh model would count the screens it walked through anew, and fewer).
    assert _model_counters(again.output) == (after["screens"], after["effects"])
    assert after["effects"] > before["effects"]  # and it went on to something new


def test_crawl_refuses_to_overwrite_an_existing_atlas(tmp_path: Path) -> None:
    out = tmp_path / "d.atlas"
    runner.invoke(app, ["crawl", "--app", "demo", "--out", str(out), "--budget", "5"])
    result = runner.invoke(app, ["crawl", "--app", "demo", "--out", str(out), "--budget", "5"])
    assert result.exit_code == 2 and "not empty" in result.output


def test_demo_through_the_local_u2_server_writes_a_summary(tmp_path: Path) -> None:
    from appatlas.demo import run_demo

    summary = run_demo(tmp_path / "demo", budget=30)
    assert summary["backend"].startswith("u2")
    assert json.loads((tmp_path / "demo" / "summary.json").read_text())["crawl"]["actions"] == 30
    assert (tmp_path / "demo" / "summary.md").read_text().startswith("# appatlas demo")


def test_the_demo_reaches_every_screen_of_the_built_in_app(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--direct"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["spec_screens"]["missing"] == [] and summary["spec_screens"]["found"] >= 30


def test_the_demo_will_not_replace_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "mine"), "--direct"])
    assert result.exit_code == 2 and (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
