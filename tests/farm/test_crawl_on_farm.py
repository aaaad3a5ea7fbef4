"""Crawls on the farm: two at once on phones of two hosts, written into atlases on the driver's disk."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

from appatlas.bench.farm import PACKAGE, spec  # noqa: E402
from appatlas.devices.u2 import connect  # noqa: E402
from appatlas.farm.crawl import CrawlJob, run_farm_crawl, run_split_crawl  # noqa: E402
from appatlas.graph.atlas import Atlas  # noqa: E402
from appatlas.graph.crawler import CrawlConfig, crawl  # noqa: E402

BUDGET = 25


def test_two_crawls_run_at_once_on_two_hosts_and_commit_into_the_driver_atlases(farm, phones, tmp_path) -> None:
    jobs = [CrawlJob(PACKAGE, tmp_path / "a.atlas"), CrawlJob(PACKAGE, tmp_path / "b.atlas")]
    done = run_farm_crawl(jobs, farm.address, config=CrawlConfig(budget=BUDGET), spec=spec(phones.port),
                          serials=["virtual-1", "virtual-3"])
    assert not done["unfinished"]
    nodes = {r["node"] for r in done["jobs"].values()}
    assert len(nodes) == 2  # one crawl on each host, at the same time

    # The same crawl made here, through the same kind of phone, records the same app.
    with connect("virtual-2", adb_port=phones.port, app=PACKAGE, timeout=5.0, screenshots=False) as phone, \
            Atlas.create(tmp_path / "here.atlas", app=PACKAGE) as atlas:
        phone.launch(PACKAGE)
        crawl(phone, atlas, package=PACKAGE, config=CrawlConfig(budget=BUDGET))
        here = atlas.counts()
    for job in jobs:
        with Atlas.open(job.out) as atlas:  # on the driver's disk, readable as any atlas
            counts = atlas.counts()
        assert counts["observations"] == here["observations"] and counts["screens"] == here["screens"]
        assert done["jobs"][str(job.out)]["report"]["actions"] == BUDGET


def test_one_app_split_over_two_hosts_each_phone_crawls_on_from_its_own_start_screen(farm, phones, tmp_path) -> None:
    out = tmp_path / "split.atlas"
    done = run_split_crawl(PACKAGE, out, farm.address, config=CrawlConfig(budget=40), spec=spec(phones.port),
                           serials=["virtual-2", "virtual-4"], seed_budget=12)
    assert not done["unfinished"]
    split = [r for r in done["jobs"].values() if "start_screen" in r]
    assert len(split) == 2 and len({r["node"] for r in split}) == 2  # both hosts, at once
    assert len({r["start_screen"] for r in split}) == 2  # each from another screen
    for r in split:  # each phone walked the atlas's route and stood on its start screen when it began
        assert r["walked"] == r["route"] and r["began_at"] == r["start_screen"]
    assert sum(r["report"]["actions"] for r in done["jobs"].values()) == 40  # the budget is shared, not repeated
    with Atlas.open(out) as atlas:
        counts = atlas.counts()
        first_seen = {}
        for t in atlas.transitions():
            first_seen.setdefault(t.source_key, t.id)
    assert counts["observations"] >= 40
    assert all(s in first_seen for s in done["starts"])  # the start screens were crawled from
