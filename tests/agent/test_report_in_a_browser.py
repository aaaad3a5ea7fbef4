"""The HTML report opened in a real headless Chromium: what an app shows renders as text, never runs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from appatlas.agent.campaign import CampaignResult, CaseResult
from appatlas.agent.report_html import html_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
EVIL = ("<script>document.documentElement.setAttribute('data-pwned','yes')</script>"
        "<img src=x onerror=\"document.documentElement.setAttribute('data-pwned','yes')\">")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium; .ci/run installs it)")
def test_a_widget_text_with_a_script_renders_as_text_and_does_not_run(demo_knowledge, tmp_path: Path) -> None:
    step = {"index": 1, "screen": "k", "action": f"tap '{EVIL}'", "source": "graph", "reason": EVIL, "outcome": EVIL}
    case = CaseResult(name=EVIL, intent=EVIL, status="failed",
                      attempts=[{"device": EVIL, "passed": False, "reason": EVIL, "steps": [step]}])
    page = tmp_path / "report.html"
    page.write_text(html_report(CampaignResult([case], {EVIL: "ok"}), knowledge=demo_knowledge))
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=2000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=90).stdout
    assert "<html" in dom  # the page was rendered
    assert 'data-pwned="yes"' not in dom  # no script or handler ran (it would have marked <html>)
    assert "&lt;script&gt;document.documentElement" in dom  # shown to the reader as text
