"""Crawls on the farm: two at once on phones of two hosts, written into atlases on the driver's disk."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

from appatlas.bench.farm import PACKAGE, spec  # noqa: E402
from appatlas.devices.u2 import connect  # noqa: E402
from appatlas.farm.crawl import CrawlJob, run_farm_crawl  # noqa: E402
from appatlas.graph.atlas import Atlas  # noqa: E402
from appatlas.graph.crawler import CrawlConfig, crawl  # noqa: E402

BUDGET = 40


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
