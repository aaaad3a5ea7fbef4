"""Loaders of files appatlas does not control: any input gives a result or the project's typed error."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appatlas.errors import AppatlasError
from appatlas.graph.atlas import DB_NAME, Atlas
from appatlas.graph.droidbot import import_droidbot

_json = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-5, 5000), st.text(max_size=8)),
                     lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=10), c, max_size=5)),
                     max_leaves=25)
_state_like = st.fixed_dictionaries({"state_str": st.text(max_size=4), "tag": st.text(max_size=6),
                                     "foreground_activity": st.text(max_size=20), "views": _json})
_event_like = st.fixed_dictionaries({"start_state": st.text(max_size=4), "stop_state": st.text(max_size=4),
                                     "event": st.one_of(_json, st.fixed_dictionaries(
                                         {"event_type": st.sampled_from(["touch", "click", "key", "intent",
                                                                         "set_text", "scroll", "long_click"]),
                                          "view": _json, "text": _json, "name": _json, "intent": _json}))})


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(states=st.lists(st.one_of(_state_like, _json, st.binary(max_size=30)), min_size=1, max_size=4),
       events=st.lists(st.one_of(_event_like, _json, st.binary(max_size=30)), max_size=4),
       task=st.one_of(st.text(max_size=60), st.binary(max_size=40)))
def test_any_droidbot_folder_imports_or_raises_a_typed_error(states: list, events: list, task: object) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "rec"
        (folder / "states").mkdir(parents=True)
        (folder / "events").mkdir()
        for i, s in enumerate(states):
            data = s if isinstance(s, bytes) else json.dumps(s).encode()
            (folder / "states" / f"state_{i}.json").write_bytes(data)
        for i, e in enumerate(events):
            data = e if isinstance(e, bytes) else json.dumps(e).encode()
            (folder / "events" / f"event_{i}.json").write_bytes(data)
        (folder / "task1.yaml").write_bytes(task if isinstance(task, bytes) else str(task).encode())
        try:
            report = import_droidbot(folder, Path(tmp) / "out.atlas")
        except AppatlasError:
            return
        with Atlas.open(Path(tmp) / "out.atlas") as atlas:
            assert atlas.counts()["states"] == report.counts["states"]


@settings(max_examples=80)
@given(st.one_of(st.binary(max_size=2000), st.binary(min_size=100, max_size=100).map(
    lambda b: b"SQLite format 3\x00" + b)))
def test_any_bytes_as_an_atlas_file_give_a_typed_error_and_stay_untouched(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "x.atlas"
        folder.mkdir()
        (folder / DB_NAME).write_bytes(data)
        try:
            Atlas.open(folder).close()
        except AppatlasError:
            pass
        assert (folder / DB_NAME).read_bytes() == data
