"""Screen identity measured on the real recordings (skipped when ../shared/data is absent)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from appatlas.graph.droidbot import load_droidbot_screen
from appatlas.graph.fingerprint import content_key, structure_key
from appatlas.types import Screen, Widget
from tests.conftest import DEV_APP_PARAMS


def _states(folder: Path) -> dict[str, tuple[dict, Screen]]:
    out = {}
    for path in sorted((folder / "states").glob("state_*.json")):
        raw = json.loads(path.read_text())
        out[raw["state_str"]] = (raw, load_droidbot_screen(raw, source=str(path)))
    return out


def _first(s: str | list[str]) -> str:
    return s[0] if isinstance(s, list) else s


def _edits_in_place(record: dict) -> bool:
    """Typing into a field or ticking a checkbox changes the screen's content, not the screen.

    DroidBot's content-free hash can still differ (a row that a switch hides), so those steps
    stayed on one screen too.
    """
    m = re.search(rf"<(\w+) id={record['Choice']}\b", record["State"])
    return record["Input"] != "null" or (m is not None and m.group(1) in ("checkbox", "input"))


@pytest.mark.data
@pytest.mark.parametrize("app", DEV_APP_PARAMS)
def test_consecutive_task_steps_never_collapse_unless_the_task_stayed_on_one_screen(droidtask: Path, app: str) -> None:
    states = _states(droidtask / app)
    collapsed = []
    for task in sorted((droidtask / app).glob("task*.yaml")):
        records = yaml.safe_load(task.read_text())["records"]
        for a, b in zip(records, records[1:], strict=False):
            (ra, sa), (rb, sb) = states[_first(a["state_str"])], states[_first(b["state_str"])]
            stayed = ra["state_str_content_free"] == rb["state_str_content_free"] or _edits_in_place(a)
            if not stayed and structure_key(sa) == structure_key(sb):
                collapsed.append((task.name, a["Choice"]))
    assert collapsed == []


@pytest.mark.data
@pytest.mark.parametrize("app", DEV_APP_PARAMS)
def test_structure_keys_merge_content_variants_about_as_droidbot_does(droidtask: Path, app: str) -> None:
    states = _states(droidtask / app)
    ours = {structure_key(s) for _, s in states.values()}
    droidbot = {raw["state_str_content_free"] for raw, _ in states.values()}
    distinct_contents = {raw["state_str"] for raw, _ in states.values()}
    # Content variants merge (far fewer keys than recorded states), and the count stays close to
    # DroidBot's, which sees off-screen views too (figures per app in docs/screen-identity.md).
    assert len(ours) <= 0.75 * len(distinct_contents)
    assert 0.85 * len(droidbot) <= len(ours) <= 1.1 * len(droidbot)


def _swap_texts(w: Widget, suffix: str) -> Widget:
    return replace(w, text=w.text + suffix if w.text else "",
                   children=tuple(_swap_texts(c, suffix) for c in w.children))


@pytest.mark.data
def test_changed_texts_keep_the_structure_key_but_change_the_content_key(droidtask: Path) -> None:
    _, screen = next(iter(_states(droidtask / "notes").values()))
    edited = replace(screen, root=_swap_texts(screen.root, " (edited 12:03)"))
    assert structure_key(edited) == structure_key(screen)
    assert content_key(edited) != content_key(screen)


@pytest.mark.data
def test_more_rows_in_a_list_keep_the_structure_key(droidtask: Path) -> None:
    for _, screen in _states(droidtask / "notes").values():
        lists = [w for w in screen.widgets() if w.class_name.endswith("RecyclerView") and len(w.children) > 1]
        if lists:
            break
    else:
        pytest.skip("no list with rows in the notes recording")
    lst = lists[0]

    def drop_row(w: Widget) -> Widget:
        if w is lst:
            return replace(w, children=w.children[:-1])
        return replace(w, children=tuple(drop_row(c) for c in w.children))

    assert structure_key(replace(screen, root=drop_row(screen.root))) == structure_key(screen)
