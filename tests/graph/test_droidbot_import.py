from __future__ import annotations

import json
from pathlib import Path

import pytest

from appatlas.errors import ImportFailed, UnsafePath
from appatlas.graph.atlas import Atlas
from appatlas.graph.droidbot import import_droidbot, safe_join


def _view(tid: int, parent: int, kids: list[int], cls: str, bounds: list[list[int]], **kw: object) -> dict:
    return {"temp_id": tid, "parent": parent, "children": kids, "class": cls, "bounds": bounds, "visible": True,
            "resource_id": kw.pop("resource_id", None), "text": kw.pop("text", None), **kw}


def _state(tag: str, sstr: str, title: str) -> dict:
    views = [_view(0, -1, [1, 2], "android.widget.FrameLayout", [[0, 0], [1080, 2280]], package="com.x"),
             _view(1, 0, [], "android.widget.TextView", [[0, 0], [1080, 100]], text=title, package="com.x"),
             _view(2, 0, [], "android.widget.Button", [[0, 200], [500, 300]], text="Next", clickable=True,
                   resource_id="com.x:id/next", package="com.x")]
    return {"tag": tag, "state_str": sstr, "state_str_content_free": "cf" + sstr,
            "foreground_activity": f"com.x/.{title}Activity", "width": 1080, "height": 2280, "views": views}


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """A small DroidBot folder with one good transition and the kinds of breakage real ones have."""
    folder = tmp_path / "rec"
    (folder / "states").mkdir(parents=True)
    (folder / "events").mkdir()
    for tag, sstr, title in [("t1", "s1", "Main"), ("t2", "s2", "Detail")]:
        (folder / "states" / f"state_{tag}.json").write_text(json.dumps(_state(tag, sstr, title)))
    (folder / "states" / "state_t3.json").write_text('{"views": [ {"temp_id": ')
    event = {"tag": "e1", "start_state": "s1", "stop_state": "s2", "event_str": "TouchEvent",
             "event": {"event_type": "touch", "view": _state("t1", "s1", "Main")["views"][2]}}
    (folder / "events" / "event_e1.json").write_text(json.dumps(event))
    (folder / "events" / "event_e2.json").write_text("")
    (folder / "task1.yaml").write_text(
        "task_name: Open the detail\nstep_num: 2\nrecords:\n"
        "- {Choice: 0, Input: 'null', State: \"<button id=0>Next</button>\", state_str: [s1], new_state_str: x}\n"
        "- {Choice: -1, Input: 'null', State: '', state_str: s2, new_state_str: y}\n")
    (folder / "task2.yaml").write_text("records: [ {state_str: nowhere, Choice: 1}, ")
    return folder


def test_import_keeps_the_good_parts_and_names_each_broken_file(recording: Path, tmp_path: Path) -> None:
    report = import_droidbot(recording, tmp_path / "out.atlas")
    assert (report.counts["states"], report.counts["transitions"], report.counts["tasks"]) == (2, 1, 1)
    skipped = dict(report.skipped)
    assert skipped["events/event_e2.json"] == "empty file"
    assert "not valid JSON" in skipped["states/state_t3.json"]
    assert "task2.yaml" in skipped


def test_imported_task_steps_carry_the_recorded_actions(recording: Path, tmp_path: Path) -> None:
    import_droidbot(recording, tmp_path / "out.atlas")
    with Atlas.open(tmp_path / "out.atlas") as atlas:
        (task,) = atlas.tasks()
    assert task.intent == "Open the detail"
    assert task.steps[0].action is not None and task.steps[0].action.target.resource_id == "com.x:id/next"
    assert task.steps[-1].action is None


def test_a_folder_without_states_is_not_a_recording(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match="not a DroidBot output folder"):
        import_droidbot(tmp_path, tmp_path / "out.atlas")


def test_import_never_overwrites_an_existing_atlas(recording: Path, tmp_path: Path) -> None:
    import_droidbot(recording, tmp_path / "out.atlas")
    with pytest.raises(Exception, match="not empty"):
        import_droidbot(recording, tmp_path / "out.atlas")


def test_names_from_a_recording_cannot_escape_its_folder(tmp_path: Path) -> None:
    with pytest.raises(UnsafePath, match="outside"):
        safe_join(tmp_path, "states/../../etc/passwd")


@pytest.mark.data
def test_notes_import_prints_counts_that_survive_reopening(droidtask: Path, tmp_path: Path) -> None:
    report = import_droidbot(droidtask / "notes", tmp_path / "notes.atlas")
    assert report.skipped == []
    # What the recording holds, counted from its files: 14 task files (task1-15, no task7) and 51
    # distinct screens (state_str) among its 130 state files.
    tasks = len(list((droidtask / "notes").glob("task*.yaml")))
    states = {json.loads(p.read_text())["state_str"] for p in (droidtask / "notes" / "states").glob("*.json")}
    assert (report.counts["tasks"], report.counts["states"]) == (tasks, len(states)) == (14, 51)
    with Atlas.open(tmp_path / "notes.atlas") as atlas:
        assert atlas.counts() == report.counts


@pytest.mark.data
def test_contacts_import_skips_exactly_the_two_empty_event_files(droidtask: Path, tmp_path: Path) -> None:
    report = import_droidbot(droidtask / "contacts", tmp_path / "contacts.atlas")
    assert sorted(report.skipped) == [("events/event_2023-07-02_145315.json", "empty file"),
                                      ("events/event_2023-07-07_203807.json", "empty file")]


@pytest.mark.data
def test_yelp_report_imports_16_screens_30_transitions_with_screenshots(yelp: Path, tmp_path: Path) -> None:
    report = import_droidbot(yelp, tmp_path / "yelp.atlas")
    # The report's own graph (utg.js: 16 nodes, 30 edges) and its 16 screenshots, one per state file.
    utg = (yelp / "utg.js").read_text()
    graph = json.loads(utg[utg.index("{"):])
    recorded = (len(graph["nodes"]), len(graph["edges"]), len(list((yelp / "states").glob("screen_*.png"))))
    assert (report.counts["states"], report.counts["transitions"], report.counts["screenshots"]) == recorded
    assert recorded == (16, 30, 16)
    with Atlas.open(tmp_path / "yelp.atlas") as atlas:
        assert atlas.get_meta("package") == "com.yelp.android"
        shots = [atlas.screenshot_path(s.id) for s in atlas.states()]
        # DroidBot names them .png but writes JPEG; they are kept byte for byte.
        assert all(p is not None and p.read_bytes()[:3] == b"\xff\xd8\xff" for p in shots)
