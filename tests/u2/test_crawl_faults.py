"""A crawl through the real uiautomator2 client survives the faults phones have, and loses nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from u2_apps import PACKAGE, SERIAL

from appatlas.devices.fakeadb import FakeAdbServer
from appatlas.devices.u2 import connect
from appatlas.errors import DeviceDisconnected
from appatlas.graph.atlas import Atlas
from appatlas.graph.crawler import CrawlConfig, CrawlProgress, crawl


def _transitions(folder: Path) -> set[int]:
    with Atlas.open(folder) as atlas:
        return {t.id for t in atlas.transitions()}


def test_a_phone_unplugged_mid_crawl_loses_no_transition_and_the_crawl_resumes(server: FakeAdbServer,
                                                                              tmp_path: Path) -> None:
    out = tmp_path / "u.atlas"
    seen_before_drop: set[int] = set()

    with connect(SERIAL, adb_port=server.port, timeout=3.0, app=PACKAGE, screenshots=False) as phone, \
            Atlas.create(out, app=PACKAGE) as atlas:

        def unplug_at_40(p: CrawlProgress) -> None:
            if p.actions == 40:
                seen_before_drop.update(t.id for t in atlas.transitions())
                server.drop(SERIAL)

        with pytest.raises(DeviceDisconnected, match=SERIAL):
            crawl(phone, atlas, package=PACKAGE, config=CrawlConfig(budget=200), progress=unplug_at_40)
    assert seen_before_drop and seen_before_drop <= _transitions(out)

    server.reconnect(SERIAL)
    with connect(SERIAL, adb_port=server.port, timeout=3.0, app=PACKAGE, screenshots=False) as phone, \
            Atlas.open(out) as atlas:
        report = crawl(phone, atlas, package=PACKAGE, config=CrawlConfig(budget=80), resume=True)
    assert report.actions == 80  # the budget counts the actions before the drop too
    assert seen_before_drop < _transitions(out)


def test_a_ui_server_killed_mid_crawl_is_restarted_and_the_crawl_goes_on(server: FakeAdbServer,
                                                                        tmp_path: Path) -> None:
    with connect(SERIAL, adb_port=server.port, timeout=3.0, app=PACKAGE, screenshots=False) as phone, \
            Atlas.create(tmp_path / "k.atlas", app=PACKAGE) as atlas:

        def kill_at_20(p: CrawlProgress) -> None:
            if p.actions == 20:
                server.kill_ui_server(SERIAL)

        report = crawl(phone, atlas, package=PACKAGE, config=CrawlConfig(budget=60), progress=kill_at_20)
        assert report.actions == 60 and phone.restarts == 1
