"""`export pytest` for a web atlas: a standalone Playwright file that passes on the app and fails without it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from appatlas.devices.base import selector_for
from appatlas.graph.export_pytest import export_pytest
from appatlas.graph.testcases import TestSuite
from appatlas.types import Action, ActionKind, Step, TestCase


def _recorded(dev, steps: list[tuple[str, str, str]]) -> tuple[Step, ...]:
    """Steps recorded on the device: (kind, resource id, text), each aimed with the selector a crawl keeps."""
    out = []
    for kind, rid, text in steps:
        screen = dev.snapshot()
        widget = next(w for w in screen.widgets() if w.resource_id == rid and (kind == "type" or not text
                                                                                or w.text == text))
        action = Action(ActionKind(kind), target=selector_for(widget, screen), text=text if kind == "type" else "")
        dev.perform(action)
        out.append(Step(action))
    return tuple(out)


def _run(folder: Path, url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "APPATLAS_URL": url, "APPATLAS_TIMEOUT_MS": "3000"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "-p", "no:randomly",
                           str(folder)], capture_output=True, text=True, env=env, timeout=180, cwd=folder)


def test_an_exported_web_test_drives_the_app_and_fails_where_an_element_is_gone(web, webapp, tmp_path) -> None:
    dev = web("/")
    note = _recorded(dev, [("tap", "new_note", ""), ("type", "new_title", "Exported note"),
                           ("tap", "new_type", "Checklist note"), ("tap", "new_save", "")])
    dev.launch()
    clear = _recorded(dev, [("tap", "nav_tasks", ""), ("tap", "clear_done", "")])
    screen = dev.snapshot()
    ok = next(w for w in screen.widgets() if w.resource_id == "appatlas_dialog_accept")
    accept = Action(ActionKind.TAP, target=selector_for(ok, screen))
    dev.perform(accept)
    assert [t["title"] for t in webapp.state(dev.cookies()["sid"])["tasks"]] == ["Renew passport", "Pay rent"]
    suite = TestSuite([TestCase("new checklist", "create a checklist named 'Exported note'", "", note),
                       TestCase("clear tasks", "clear the completed tasks", "", (*clear, Step(accept)))],
                      app=dev.app)
    path = export_pytest(suite, tmp_path / "test_site.py", platform="web")
    code = path.read_text()
    assert "sync_playwright" in code and "uiautomator2" not in code and "d.answers = [('accept', '')]" in code
    # The same file against a page without the New note button fails at that step (run in the same pytest).
    broken = tmp_path / "test_broken.py"
    broken.write_text(code.replace("'resource_id': 'new_note'", "'resource_id': 'no_such_button'"))
    before = set(webapp.session_ids())
    run = _run(tmp_path, webapp.url)
    assert "1 failed, 3 passed" in run.stdout, run.stdout + run.stderr
    assert "test_broken.py::test_new_checklist" in run.stdout and "step 1: no element matches" in run.stdout
    fresh = [webapp.state(s) for s in set(webapp.session_ids()) - before]
    assert any(n["title"] == "Exported note" and n["kind"] == "checklist" for s in fresh for n in s["notes"])
    assert sum(len(s["tasks"]) == 2 for s in fresh) == 2  # both runs of the confirm case accepted it
    # Without APPATLAS_URL every test skips and nothing is started (the module fixture asks first).
    assert code.index('pytest.skip("set APPATLAS_URL') < code.index("sync_playwright() as p")
