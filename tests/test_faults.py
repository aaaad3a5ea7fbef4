"""Every row of the fault matrix: the run survives and loses nothing already recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from appatlas.bench.faults import SCENARIOS, run_faults_bench


@pytest.mark.parametrize("name", [name for name, _ in SCENARIOS])
def test_fault_is_survived_with_nothing_lost(name: str, tmp_path: Path) -> None:
    doc = run_faults_bench(only=(name,), out=tmp_path / "faults.json")
    (row,) = doc["rows"]
    assert row["survived"], row
    assert row["lost"] == 0, row
