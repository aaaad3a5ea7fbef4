"""The demo app served as a HarmonyOS device: the real hmdriver2 client crawls it into an atlas, and a campaign
planned from that atlas passes on two such devices; the commands take --device harmony:SERIAL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from harmony_apps import PACKAGE, SERIAL, demo, served
from typer.testing import CliRunner

from appatlas.cli import app as cli
from appatlas.devices.fakehdc import FakeHdcServer
from appatlas.devices.harmony import connect
from appatlas.graph.atlas import Atlas
from appatlas.graph.crawler import CrawlConfig, crawl
from appatlas.graph.testcases import TestSuite, save_tests
from appatlas.types import TestCase

BUDGET = 120
INTENTS = ("turn on quiet hours in the notification settings", "turn on the sound in the notification settings")


@pytest.fixture(scope="module")
def phones() -> Iterator[FakeHdcServer]:
    yield from served(demo("virtual-1"), demo("virtual-2"))


@pytest.fixture(scope="module")
def harmony_atlas(phones: FakeHdcServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("harmony") / "demo.atlas"
    with connect(SERIAL, app=PACKAGE, timeout=5.0, screenshots=False) as d, \
            Atlas.create(out, app=PACKAGE, platform=d.platform) as atlas:
        report = crawl(d, atlas, package=PACKAGE, config=CrawlConfig(budget=BUDGET))
    return out, report


def test_the_crawl_through_hmdriver2_sees_what_the_virtual_device_shows(harmony_atlas, tmp_path: Path) -> None:
    out, report = harmony_atlas
    # the same crawl on the virtual device directly. Ids and classes differ (ArkUI's), so the
    # strategy's choices may too: the crawl must reach as much, not the same path
    twin = demo("twin")
    with Atlas.create(tmp_path / "twin.atlas", app=PACKAGE) as atlas:
        direct = crawl(twin, atlas, package=PACKAGE, config=CrawlConfig(budget=BUDGET))
    assert report.actions == BUDGET
    assert report.screens >= max(20, direct.screens - 2) and report.transitions >= direct.transitions - 5
    with Atlas.open(out) as atlas:
        assert atlas.platform == "harmony"
        classes = {w.class_name for s in atlas.states() for w in atlas.screen(s.id).widgets()}
    assert {"Text", "Button", "ListItem"} <= classes and not any(c.startswith("android.") for c in classes)


def test_appatlas_campaign_on_two_harmony_devices_passes_for_real(phones: FakeHdcServer, harmony_atlas,
                                                                   tmp_path: Path) -> None:
    with Atlas.open(harmony_atlas[0]) as atlas:
        first = next(iter(atlas.states())).structure_key  # the crawl began on the app's first screen
    suite = tmp_path / "suite.yaml"  # intents only: the agent plans each step from the atlas
    save_tests(suite, TestSuite([TestCase(name=f"case{i}", intent=text, start=first, steps=())
                                 for i, text in enumerate(INTENTS)], app=PACKAGE))
    out = CliRunner().invoke(cli, ["campaign", str(suite), "--device", "harmony:virtual-1", "--device",
                                   "harmony:virtual-2", "--atlas", str(harmony_atlas[0]), "--out",
                                   str(tmp_path / "out"), "--max-steps", "12"])
    assert out.exit_code == 0, out.output
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    attempts = {c["name"]: c["attempts"][-1] for c in results["cases"]}
    # both devices joined and stayed; which ran which case is the campaign's choice (the first one connected
    # may take both while the other still connects: hmdriver2 takes ~1 s to connect)
    assert results["devices"] == {"harmony:virtual-1": "ok", "harmony:virtual-2": "ok"}
    assert {a["device"] for a in attempts.values()} <= {"harmony:virtual-1", "harmony:virtual-2"}
    # the verdicts agree with the apps' real state: the switches are on where the cases ran
    ran = {name: phones.device(a["device"].partition(":")[2]) for name, a in attempts.items()}
    assert ran["case0"].state()["toggles"]["quiet_hours.pref_quiet"] is True  # type: ignore[attr-defined]
    assert ran["case1"].state()["toggles"]["settings_notifications.pref_sound"] is True  # type: ignore[attr-defined]
    assert (tmp_path / "out" / "junit.xml").is_file() and (tmp_path / "out" / "report.html").is_file()


def test_appatlas_crawl_takes_a_harmony_device(phones: FakeHdcServer, tmp_path: Path) -> None:
    out = CliRunner().invoke(cli, ["crawl", "--device", "harmony:virtual-2", "--package", PACKAGE,
                                   "--out", str(tmp_path / "cli.atlas"), "--budget", "6"])
    assert out.exit_code == 0, out.output
    with Atlas.open(tmp_path / "cli.atlas") as atlas:
        assert atlas.counts()["states"] >= 3 and atlas.platform == "harmony"
    bad = CliRunner().invoke(cli, ["crawl", "--device", "harmony:nope", "--out", str(tmp_path / "x.atlas")])
    assert bad.exit_code == 2 and "DeviceDisconnected" in bad.output and "virtual-1" in bad.output


def test_appatlas_devices_serve_harmony_prints_how_to_point_hmdriver2_at_it() -> None:
    out = CliRunner().invoke(cli, ["devices", "serve", "--harmony", "--port", "0", "--for", "0.3"])
    assert out.exit_code == 0, out.output
    assert "HDC_SERVER_PORT=" in out.output and "virtual-1" in out.output and "--device harmony:virtual-1" in out.output
