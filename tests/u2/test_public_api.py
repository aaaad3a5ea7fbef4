"""The device modules export exactly their public names."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

import appatlas.bench.devices
import appatlas.devices.fakeadb
import appatlas.devices.u2


def _public(module: ModuleType) -> set[str]:
    return {name for name, obj in vars(module).items()
            if not name.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj))
            and obj.__module__.startswith(module.__name__)}


@pytest.mark.parametrize("module", [appatlas.devices.u2, appatlas.bench.devices])
def test_all_lists_every_public_class_and_function(module: ModuleType) -> None:
    constants = {n for n in module.__all__ if n.isupper()}
    assert set(module.__all__) - constants == _public(module)
    assert all(hasattr(module, n) for n in module.__all__)


def test_fakeadb_exports_only_the_server() -> None:
    assert appatlas.devices.fakeadb.__all__ == ["FakeAdbServer"]
