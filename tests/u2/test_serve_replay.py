"""A recording served as a phone: the real uiautomator2 client drives a replayed app (BENCHMARKS.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from appatlas.cli import app as cli
from appatlas.devices.fakeadb import FakeAdbServer
from appatlas.devices.u2 import connect
from appatlas.graph.atlas import Atlas
from appatlas.graph.replay import open_replay
from appatlas.types import Action, ActionKind, Bounds, Screen, Selector, Widget


def _screen(activity: str, *texts: str) -> Screen:
    rows = tuple(Widget(class_name="android.widget.Button", bounds=Bounds(0, 100 + 200 * i, 1080, 250 + 200 * i),
                        text=t, resource_id=f"com.rec:id/b{i}", clickable=True, package="com.rec")
                 for i, t in enumerate(texts))
    window = Widget(class_name="android.widget.FrameLayout", bounds=Bounds(0, 0, 1080, 2280), package="com.rec",
                    children=rows)
    return Screen(package="com.rec", activity=activity, width=1080, height=2280,
                  root=Widget(class_name="hierarchy", bounds=Bounds(0, 0, 1080, 2280), children=(window,)))


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    folder = tmp_path / "rec.atlas"
    with Atlas.create(folder, app="com.rec") as atlas:
        main = atlas.add_state(_screen("com.rec.Main", "Inbox", "Archive"))
        archive = atlas.add_state(_screen("com.rec.Archive", "Old mail"))
        atlas.add_transition(main, Action(ActionKind.LAUNCH, app="com.rec"), main)
        atlas.add_transition(main, Action(ActionKind.TAP, target=Selector(resource_id="com.rec:id/b1",
                                                                          text="Archive")), archive)
        atlas.set_meta("package", "com.rec")
    return folder


def test_the_real_client_follows_a_recorded_tap_and_an_unrecorded_one_does_nothing(recording: Path) -> None:
    phone = open_replay(recording, serial="replay-1", screenshots=False)
    with FakeAdbServer([phone]) as server, connect("replay-1", adb_port=server.port, app="com.rec",
                                                   screenshots=False) as device:
        assert "Archive" in device.snapshot().texts
        device.perform(Action(ActionKind.TAP, target=Selector(text="Inbox")))
        assert "Archive" in device.snapshot().texts and phone.unrecorded_taps == 1
        device.perform(Action(ActionKind.TAP, target=Selector(text="Archive")))
        assert list(device.snapshot().texts) == ["Old mail"]


def test_devices_serve_takes_a_recording(recording: Path) -> None:
    result = CliRunner().invoke(cli, ["devices", "serve", "--replay", str(recording), "--port", "0", "--for", "0.3"])
    assert result.exit_code == 0, result.output
    assert "replay-1\tcom.rec" in result.output


def test_devices_serve_says_what_a_replay_folder_must_hold(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["devices", "serve", "--replay", str(tmp_path), "--port", "0", "--for", "0.1"])
    assert result.exit_code == 2 and "states/" in result.output
