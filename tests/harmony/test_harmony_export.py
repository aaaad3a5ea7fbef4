"""`export pytest` for a HarmonyOS atlas writes hmdriver2 code, and that code passes on the device it was made for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harmony_apps import PACKAGE, SERIAL

from appatlas.devices.fakehdc import FakeHdcServer
from appatlas.devices.virtual import VirtualDevice
from appatlas.graph.export_pytest import export_pytest, render_pytest
from appatlas.graph.testcases import TestSuite
from appatlas.types import Action, ActionKind, Selector, Step, TestCase

TRICKY = "it's a \"quoted\" {title}"


def _suite() -> TestSuite:
    steps = (
        # the second notes_title row: every field and the index must be honoured
        Step(Action(ActionKind.TAP, target=Selector(resource_id="notes_title", class_name="Text", index=1))),
        Step(Action(ActionKind.TAP, target=Selector(resource_id="action_edit", content_desc="Edit",
                                                    class_name="Button"))),
        Step(Action(ActionKind.TYPE, target=Selector(resource_id="edit_title", class_name="TextInput",
                                                     text="Trip to Lisbon"), text=TRICKY)),
    )
    return TestSuite([TestCase(name="rename the trip", intent="rename the trip note", start="", steps=steps)],
                     app=PACKAGE)


def test_the_harmony_dialect_drives_hmdriver2_and_android_stays_uiautomator2() -> None:
    harmony = render_pytest(_suite(), platform="harmony")
    android = render_pytest(_suite())
    assert "from hmdriver2.driver import Driver" in harmony and "import uiautomator2" not in harmony
    assert "import uiautomator2 as u2" in android and "hmdriver2" not in android
    compile(harmony, "test_x.py", "exec")


def test_exported_hmdriver2_tests_pass_on_the_device(server: FakeHdcServer, vdev: VirtualDevice,
                                                     tmp_path: Path) -> None:
    out = export_pytest(_suite(), tmp_path / "test_notes_harmony.py", platform="harmony")
    env = {**os.environ, "HARMONY_SERIAL": SERIAL}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(out)],
                         capture_output=True, text=True, env=env, timeout=180, cwd=tmp_path, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "1 passed" in run.stdout
    assert vdev.location == ("note_edit", "") or vdev.location[0].startswith("edit")
    fields = {w.resource_id.rsplit("/", 1)[-1]: w.text for w in vdev.snapshot().widgets() if w.editable}
    assert "TP1337" in fields["edit_body"]  # the second row's note (Trip to Lisbon) is the one edited
    assert fields["edit_title"] == TRICKY  # with the text exactly as written
