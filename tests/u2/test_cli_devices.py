"""`appatlas devices serve|list` and `appatlas bench devices`, run through the appatlas command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner
from u2_apps import PACKAGE, SERIAL, demo

from appatlas.cli import app
from appatlas.devices.fakeadb import FakeAdbServer


@pytest.fixture
def cli() -> typer.Typer:
    return app  # the real `appatlas` command (its entry point), not one built for the test


def test_list_shows_serial_state_and_model(cli: typer.Typer, server: FakeAdbServer) -> None:
    out = CliRunner().invoke(cli, ["devices", "list", "--adb-port", str(server.port)])
    assert out.exit_code == 0
    assert SERIAL in out.stdout and "device" in out.stdout and "appatlas_virtual_device" in out.stdout


def test_list_without_a_server_fails_saying_how_to_start_one(cli: typer.Typer) -> None:
    with FakeAdbServer([demo()]) as srv:
        port = srv.port
    out = CliRunner().invoke(cli, ["devices", "list", "--adb-port", str(port)])
    assert out.exit_code == 1 and "adb start-server" in out.output


def test_serve_prints_serials_and_how_to_connect(cli: typer.Typer) -> None:
    out = CliRunner().invoke(cli, ["devices", "serve", "--app", "demo", "--app", "demo", "--port", "0",
                                   "--for", "0.2"])
    assert out.exit_code == 0, out.output
    assert "virtual-1" in out.stdout and "virtual-2" in out.stdout and PACKAGE in out.stdout
    assert "ANDROID_ADB_SERVER_PORT=" in out.stdout and "u2.connect(adbutils.AdbClient(" in out.stdout


def test_serve_on_a_public_address_warns(cli: typer.Typer) -> None:
    out = CliRunner().invoke(cli, ["devices", "serve", "--port", "0", "--host", "0.0.0.0",
                                   "--for", "0.1"])
    assert out.exit_code == 0 and "warning:" in out.output


def test_serve_of_an_unknown_app_fails_with_the_reason(cli: typer.Typer, tmp_path: Path) -> None:
    out = CliRunner().invoke(cli, ["devices", "serve", "--app", str(tmp_path / "missing.yaml"), "--for", "0.1"])
    assert out.exit_code == 2 and "not a file and not a built-in app" in out.output


@pytest.mark.parametrize("command", [["devices", "serve"], ["devices", "list"], ["bench", "devices"]])
def test_help_gives_an_example(cli: typer.Typer, command: list[str]) -> None:
    out = CliRunner().invoke(cli, [*command, "--help"])
    assert out.exit_code == 0 and "Example: appatlas" in out.stdout


def test_bench_writes_json_with_a_summary(cli: typer.Typer, tmp_path: Path) -> None:
    target = tmp_path / "bench.json"
    out = CliRunner().invoke(cli, ["bench", "devices", "--calls", "3", "--out", str(target)])
    assert out.exit_code == 0, out.output
    summary = json.loads(target.read_text())["summary"]
    assert {"snapshot_ms_p50", "screenshot_ms_p50", "tap_ms_p50", "meets_target"} <= summary.keys()
    assert "overhead p50" in out.stdout
