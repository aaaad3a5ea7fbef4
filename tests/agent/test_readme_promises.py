"""What the README promises of `run`, `campaign` and `export pytest`, checked through the appatlas command
against phones of the built-in app behind the local adb + uiautomator2 server.

A phone whose app lacks a widget the test needs is the demo app with that widget taken out of its spec.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from appatlas.cli import app
from appatlas.devices.apps import builtin_apps
from appatlas.devices.fakeadb import FakeAdbServer
from appatlas.devices.virtual import open_app

runner = CliRunner()
PACKAGE = "com.appatlas.notes"
SETTINGS = "action_settings"  # the toolbar icon of the notes screen: the only way into the settings


def _demo_without(widget_id: str) -> dict:
    """The demo app's spec with the widget `widget_id` taken out of every screen."""
    spec = yaml.safe_load(builtin_apps()["demo"].read_text())
    for screen in spec["screens"]:
        screen["widgets"] = [w for w in screen.get("widgets", []) if w.get("id") != widget_id]
    return spec


def _phones(*specs: object) -> FakeAdbServer:
    return FakeAdbServer([open_app(spec, serial=f"virtual-{i}", screenshots=False)
                          for i, spec in enumerate(specs, start=1)])


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory, demo_knowledge) -> Path:
    """Planned tests (YAML) that walk from the notes list to the notification settings, one per name."""
    from appatlas.agent.options import options
    from appatlas.graph.fingerprint import structure_key
    from appatlas.graph.planner import shortest_route, to_test_case
    from appatlas.graph.testcases import save_tests

    device = open_app("demo", screenshots=False)
    start = structure_key(device.snapshot())
    for label in ("Settings", "Notifications"):
        screen = device.snapshot()
        device.perform(next(o for o in options(screen) if o.label.startswith(label)).action(screen))
    graph = demo_knowledge.graph()
    route = shortest_route(graph, start, structure_key(device.snapshot()))
    folder = tmp_path_factory.mktemp("suites")
    for count in (1, 6):
        save_tests(folder / f"notifications-{count}.yaml",
                   [to_test_case(graph, route, name=f"notifications{i}", intent="open the notification settings")
                    for i in range(count)])
    return folder


def _campaign(suite_file: Path, server: FakeAdbServer, atlas: Path, out: Path):  # noqa: ANN202 - click Result
    return runner.invoke(app, ["campaign", str(suite_file), *(a for s in server.serials for a in ("--device", s)),
                               "--atlas", str(atlas), "--out", str(out), "--adb-port", str(server.port),
                               "--max-steps", "12"])


def _cases(out: Path) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads((out / "results.json").read_text())["cases"]}


def test_run_exits_1_on_a_failed_verdict_and_0_when_it_passed(demo_atlas: Path) -> None:
    intent = "turn on the sound in the notification settings"

    def run(spec: object) -> tuple[int, str, BaseException | None]:
        with _phones(spec) as server:
            result = runner.invoke(app, ["run", "--device", "virtual-1", "--atlas", str(demo_atlas), "--adb-port",
                                         str(server.port), "--max-steps", "8", intent])
        return result.exit_code, result.output, result.exception

    code, output, exc = run(_demo_without(SETTINGS))  # the settings cannot be reached on this phone
    assert not isinstance(exc, Exception), exc  # a verdict, not a crash (which would exit 1 too)
    assert code == 1 and "FAIL" in output, output
    code, output, exc = run("demo")
    assert code == 0 and "PASS" in output, output


def test_campaign_exits_1_with_a_broken_case(suite: Path, demo_atlas: Path, tmp_path: Path) -> None:
    with _phones(_demo_without(SETTINGS), _demo_without(SETTINGS)) as server:
        result = _campaign(suite / "notifications-1.yaml", server, demo_atlas, tmp_path)
    assert not isinstance(result.exception, Exception), result.exception
    case = _cases(tmp_path)["notifications0"]
    assert result.exit_code == 1 and case["status"] == "failed", result.output
    assert {a["device"] for a in case["attempts"]} == {"virtual-1", "virtual-2"}  # broken: failed on both


def test_campaign_exits_0_with_a_flaky_case(suite: Path, demo_atlas: Path, tmp_path: Path) -> None:
    from appatlas.devices.fakeadb._phone import Faults

    with _phones("demo", "demo") as server:
        # One crash for the two phones together: the first launch, on whichever phone runs the case
        # first, crashes the app; the retry on the other phone runs clean.
        shared = Faults(crashing_launches=1)
        for serial in server.serials:
            server._set(server._phone(serial), faults=shared)
        result = _campaign(suite / "notifications-1.yaml", server, demo_atlas, tmp_path)
    assert not isinstance(result.exception, Exception), result.exception
    case = _cases(tmp_path)["notifications0"]
    assert shared.crashing_launches == 0  # the fault fired
    assert case["status"] == "flaky" and [a["passed"] for a in case["attempts"]] == [False, True], case
    assert result.exit_code == 0, result.output


def test_the_exported_pytest_file_passes_on_the_app_and_fails_when_a_widget_is_missing(
        suite: Path, tmp_path: Path) -> None:
    exported = tmp_path / "test_notifications.py"
    result = runner.invoke(app, ["export", "pytest", str(suite / "notifications-1.yaml"), "--out", str(exported)])
    assert result.exit_code == 0, result.output
    # The file waits 10 s for each widget (real phones are slow to draw); the virtual one answers at once.
    code = exported.read_text()
    assert "TIMEOUT = 10.0" in code
    exported.write_text(code.replace("TIMEOUT = 10.0", "TIMEOUT = 1.0"))

    def pytest_on(spec: object) -> subprocess.CompletedProcess[str]:
        with _phones(spec) as server:
            env = {**os.environ, "ANDROID_SERIAL": "virtual-1", "ANDROID_ADB_SERVER_PORT": str(server.port)}
            return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(exported)],
                                  cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    ran = pytest_on("demo")
    assert ran.returncode == 0 and "1 passed" in ran.stdout, ran.stdout + ran.stderr
    ran = pytest_on(_demo_without(SETTINGS))
    assert ran.returncode == 1 and "1 failed" in ran.stdout, ran.stdout + ran.stderr
    assert "no widget matches" in ran.stdout or "no longer in the foreground" in ran.stdout, ran.stdout


@pytest.mark.timeout(180)
def test_a_campaign_killed_mid_run_resumes_without_running_finished_cases_again(
        suite: Path, demo_atlas: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with _phones("demo", "demo") as server:
        cmd = [sys.executable, "-m", "appatlas.cli", "campaign", str(suite / "notifications-6.yaml"),
               "--device", "virtual-1", "--device", "virtual-2", "--atlas", str(demo_atlas), "--out", str(out),
               "--adb-port", str(server.port), "--max-steps", "12"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "COLUMNS": "200"})
        finished: dict[str, list] = {}
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not finished and proc.poll() is None:
                time.sleep(0.02)
                try:
                    state = json.loads((out / "campaign-state.json").read_text())
                except (OSError, ValueError):
                    continue  # not written yet (it is replaced atomically, never seen half-written)
                finished = {c["name"]: c["attempts"] for c in state["cases"]
                            if c["status"] in ("passed", "flaky", "failed")}
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=10)
        assert finished, "no case finished before the kill: nothing was tested"
        assert proc.returncode == -signal.SIGKILL and len(finished) < 6, "the campaign ended before the kill"
        result = runner.invoke(app, cmd[3:])  # the same command again: it resumes by default
    assert result.exit_code == 0, result.output
    ran_again = set(re.findall(r"running (notifications\d)", result.output)) & set(finished)
    assert not ran_again, f"finished before the kill, run again: {ran_again}"
    cases = _cases(out)
    assert all(cases[name]["attempts"] == attempts for name, attempts in finished.items())
    assert {c["status"] for c in cases.values()} <= {"passed", "flaky"} and len(cases) == 6
