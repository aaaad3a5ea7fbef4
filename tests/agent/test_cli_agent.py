"""The agent's commands: help with examples, serve's safety rule, and a campaign's exit code."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

from appatlas.cli import app
from appatlas.graph.planner import shortest_route

runner = CliRunner()


@pytest.mark.parametrize("command", [["serve"], ["run"], ["campaign"], ["bench", "tasks"]])
def test_every_command_explains_itself_with_an_example(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Example" in result.output


def test_serve_refuses_a_public_address_without_an_api_key(tiny_model_dir, monkeypatch) -> None:
    monkeypatch.delenv("APPATLAS_API_KEY", raising=False)
    result = runner.invoke(app, ["serve", "--model", str(tiny_model_dir), "--host", "0.0.0.0", "--port", "0",
                                 "--api-key", ""])
    assert result.exit_code == 2 and "ServeRefused" in result.output


def test_a_campaign_exits_zero_when_every_case_passed(demo_atlas, demo_knowledge, tmp_path) -> None:
    from appatlas.agent.options import options
    from appatlas.devices.fakeadb import FakeAdbServer
    from appatlas.devices.virtual import open_app
    from appatlas.graph.fingerprint import structure_key
    from appatlas.graph.planner import to_test_case
    from appatlas.graph.testcases import save_tests

    device = open_app("demo", screenshots=False)
    start = structure_key(device.snapshot())
    for label in ("Settings", "Notifications"):
        screen = device.snapshot()
        device.perform(next(o for o in options(screen) if o.label.startswith(label)).action(screen))
    graph = demo_knowledge.graph()
    route = shortest_route(graph, start, structure_key(device.snapshot()))
    suite = save_tests(tmp_path / "suite.yaml", [to_test_case(graph, route, name="notifications",
                                                              intent="open the notification settings")])
    with FakeAdbServer([open_app("demo", serial="virtual-1", screenshots=False)]) as server:
        result = runner.invoke(app, ["campaign", str(suite), "--device", "virtual-1", "--atlas", str(demo_atlas),
                                     "--out", str(tmp_path / "out"), "--adb-port", str(server.port)])
    assert result.exit_code == 0, result.output
    assert ET.parse(tmp_path / "out" / "junit.xml").getroot().tag == "testsuites"
