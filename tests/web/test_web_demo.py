"""`appatlas crawl --url` and `appatlas demo --web` end to end on the built-in web app, in Chromium."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from appatlas.devices.apps.webdemo import PAGES
from appatlas.graph.atlas import Atlas


def test_crawl_url_writes_a_web_atlas(webapp, _browser, tmp_path: Path) -> None:
    from appatlas.cli import app as cli

    before = set(webapp.session_ids())
    out = CliRunner().invoke(cli, ["crawl", "--url", webapp.url + "about", "--out", str(tmp_path / "a.atlas"),
                                   "--budget", "8"])
    assert out.exit_code == 0, out.output
    with Atlas.open(tmp_path / "a.atlas") as atlas:
        assert (atlas.platform, atlas.app) == ("web", "127.0.0.1")
        assert atlas.counts()["observations"] == 8 and atlas.counts()["screenshots"] > 0
    info = CliRunner().invoke(cli, ["info", str(tmp_path / "a.atlas")])
    assert info.exit_code == 0 and "(127.0.0.1, web)" in " ".join(info.output.split())  # rich wraps long paths
    served = [r for s in set(webapp.session_ids()) - before for r in webapp.state(s)["visited"]]
    assert "/about" in served and len(set(served)) >= 3
    out = CliRunner().invoke(cli, ["crawl", "--url", webapp.url, "--app", "demo", "--out", str(tmp_path / "b")])
    assert out.exit_code != 0 and "--url" in out.output


def test_demo_web_crawls_every_page_plans_and_checks_each_verdict_with_the_app(_browser, tmp_path: Path) -> None:
    from appatlas.demo import run_demo

    out = tmp_path / "demo"
    summary = run_demo(out, budget=70, web=True)
    assert summary["platform"] == "web"
    assert summary["spec_screens"] == {"expected": len(PAGES), "found": len(PAGES), "missing": []}
    assert summary["crawl"]["crashes_found"] >= 1  # the diagnostics button throws
    with Atlas.open(out / "demo.atlas") as atlas:
        assert atlas.platform == "web"
        assert any("TypeError" in f["message"] for f in atlas.findings())
    assert json.loads((out / "summary.json").read_text())["verdicts_checked"] == summary["verdicts_checked"]
    assert (out / "summary.md").read_text().startswith("# appatlas demo — 127.0.0.1")
    camp = summary["campaign"]
    assert camp["cases"] == 4 and set(camp["devices"]) == {"web-1", "web-2"}
    assert Path(camp["report"]).is_file() and Path(camp["junit"]).is_file()
    assert summary["verdicts_checked"] == 4
    # Each verdict was compared with the session state of the browser context that gave it ("real").
    passed_for_real = {v["intent"] for v in camp["verdicts"] if v["passed"] and v["real"]}
    assert {"turn on quiet hours in the notification settings",
            "open the archive with the email tester@example.com"} <= passed_for_real
    assert not any(v["passed"] and not v["real"] for v in camp["verdicts"])  # no PASS the app contradicts
