"""Every row of the fault matrix: the run survives, loses nothing already recorded, and the fault fired."""

from __future__ import annotations

from pathlib import Path

import pytest

from appatlas.bench import faults
from appatlas.bench.faults import SCENARIOS, run_faults_bench


# The farm rows start Ray clusters of their own (the head-restart row two, one after the other: about a minute
# of both cores together); tests/farm checks the same behaviour (a host lost mid-campaign, a killed driver
# resumed, a restarted head rejoined by the driver itself) on one shared cluster.
@pytest.mark.parametrize("name", [name for name, _ in SCENARIOS if not name.startswith("farm ")])
def test_fault_is_survived_with_nothing_lost(name: str, tmp_path: Path) -> None:
    doc = run_faults_bench(only=(name,), out=tmp_path / "faults.json")
    (row,) = doc["rows"]
    assert row["survived"], row
    assert row["lost"] == 0, row


def test_a_crawl_fault_that_never_fires_is_not_survived(tmp_path: Path) -> None:
    # A crawl finishes its budget whether or not the fault happened: the row must see its trace.
    row = faults._in_crawl("a fault that does nothing", lambda server: None, lambda trace: trace.restarts == 1,
                           tmp_path, note="")
    assert not row.survived and "did not fire" in row.note, row


def test_a_kill_before_anything_was_committed_is_not_survived(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults, "KILL_WAIT_S", 0.0)  # kill -9 the moment the process starts
    row = faults._kill_9(tmp_path)
    assert not row.survived and "nothing was committed" in row.note, row
