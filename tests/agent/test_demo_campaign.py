"""The campaign stage of `appatlas demo`: virtual phones behind the local server, an HTML report."""

from __future__ import annotations

from appatlas.agent.demo import demo_campaign


def test_the_demo_campaign_runs_on_two_phones_and_writes_its_reports(demo_atlas, tmp_path) -> None:
    summary = demo_campaign(demo_atlas, tmp_path / "no-tests", tmp_path / "out", devices=2)
    assert summary["cases"] == 2 and set(summary["devices"]) == {"virtual-1", "virtual-2"}
    assert (tmp_path / "out" / "report.html").is_file() and (tmp_path / "out" / "junit.xml").is_file()
    assert summary["passed"] and summary["counts"]["passed"] + summary["counts"]["flaky"] == 2
