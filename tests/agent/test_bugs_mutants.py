"""The built-in mutants of `appatlas bench bugs`: many, valid, each one change the virtual app really shows."""

from __future__ import annotations

from pathlib import Path

import yaml

from appatlas.bench.bugs import _changed_places, builtin_mutants
from appatlas.devices.apps import builtin_apps
from appatlas.devices.spec import load_spec, spec_from_dict
from appatlas.devices.virtual import open_app
from appatlas.types import Action, ActionKind, Selector


def test_every_builtin_mutant_is_a_valid_spec_that_differs_where_it_says() -> None:
    path = builtin_apps()["demo"]
    base = load_spec(path)
    mutants = builtin_mutants(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
    assert len(mutants) >= 20
    kinds = {name.split("@")[0] for name, _, _ in mutants}
    assert {"save_lost", "save_truncated", "delete_wrong_row", "validation_fails", "crash", "wrong_screen",
            "dialog_stuck", "switch_forgets"} <= kinds
    for name, _, data in mutants:
        changed = _changed_places(base, spec_from_dict(data, source=name))
        assert changed and changed <= set(base.screens) | set(base.dialogs), name


def test_a_truncating_save_really_saves_a_shorter_title() -> None:
    path = builtin_apps()["demo"]
    name, _, data = next(m for m in builtin_mutants(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
                         if m[0] == "save_truncated@new_text_note/Save")
    device = open_app(spec_from_dict(data, source=name), screenshots=False)
    pkg = "com.appatlas.notes"
    device.perform(Action(ActionKind.TAP, target=Selector(resource_id=f"{pkg}:id/fab_new")))
    device.perform(Action(ActionKind.TAP, target=Selector(text="Text note")))
    device.perform(Action(ActionKind.TYPE, target=Selector(resource_id=f"{pkg}:id/new_title"), text="Groceries"))
    device.perform(Action(ActionKind.TAP, target=Selector(resource_id=f"{pkg}:id/new_save")))
    assert device.state()["lists"]["notes"][0]["title"] == "Groc"
