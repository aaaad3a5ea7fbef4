"""Untrusted data must stay data: no pickle, no shell=True, no unsafe YAML, no unrestricted torch.load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "appatlas"
FORBIDDEN = {
    "pickle": re.compile(r"^\s*(import|from)\s+(c?pickle|dill|joblib)\b"),
    "shell=True": re.compile(r"shell\s*=\s*True"),
    "unsafe YAML": re.compile(r"yaml\.(unsafe_)?load\((?![^)]*SafeLoader)|yaml\.full_load|yaml\.Loader\b"),
    "torch.load without weights_only": re.compile(r"torch\.load\((?![^)]*weights_only\s*=\s*True)"),
}


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_package_has_sources_to_check() -> None:
    assert len(_sources()) > 10


@pytest.mark.parametrize("rule", sorted(FORBIDDEN))
def test_no_unsafe_construct_in_the_package(rule: str) -> None:
    pattern = FORBIDDEN[rule]
    hits = [f"{p.relative_to(PACKAGE.parent)}:{n}: {line.strip()}"
            for p in _sources() for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if pattern.search(line)]
    assert hits == []
