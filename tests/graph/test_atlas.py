from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from appatlas.errors import AtlasCorrupt, AtlasTooNew, NotAnAtlas
from appatlas.graph.atlas import DB_NAME, Atlas, RecordedStep, RecordedTask
from appatlas.types import Action, ActionKind, Bounds, Screen, Selector, Widget


def screen(title: str, *, activity: str = "com.x.Main", button: str = "Next", png: bytes | None = None) -> Screen:
    kids = (Widget(class_name="android.widget.TextView", bounds=Bounds(0, 0, 100, 50), resource_id="com.x:id/title",
                   text=title),
            Widget(class_name="android.widget.Button", bounds=Bounds(0, 60, 100, 110), resource_id=f"com.x:id/{button}",
                   text=button, clickable=True))
    window = Widget(class_name="android.widget.FrameLayout", bounds=Bounds(0, 0, 100, 200), package="com.x",
                    children=kids)
    return Screen(package="com.x", activity=activity, width=100, height=200, screenshot=png,
                  root=Widget(class_name="hierarchy", bounds=Bounds(0, 0, 100, 200), children=(window,)))


TAP = Action(ActionKind.TAP, target=Selector(resource_id="com.x:id/Next", class_name="android.widget.Button"))


@pytest.fixture
def atlas(tmp_path: Path):
    with Atlas.create(tmp_path / "app.atlas", app="com.x") as a:
        yield a


def test_states_are_stored_once_per_content(atlas: Atlas) -> None:
    a1, a2 = atlas.add_state(screen("A")), atlas.add_state(screen("A"))
    assert a1 == a2 and atlas.counts()["states"] == 1


def test_content_variants_share_one_screen(atlas: Atlas) -> None:
    atlas.add_state(screen("Note 1"))
    atlas.add_state(screen("Note 2"))
    assert atlas.counts()["states"] == 2 and atlas.counts()["screens"] == 1


def test_a_repeated_transition_is_counted_not_duplicated(atlas: Atlas) -> None:
    a, b = atlas.add_state(screen("A")), atlas.add_state(screen("B", activity="com.x.Detail"))
    first = atlas.add_transition(a, TAP, b)
    assert atlas.add_transition(a, TAP, b) == first
    (t,) = atlas.transitions()
    assert (t.count, t.action, atlas.counts()["observations"]) == (2, TAP, 2)


def test_the_widget_tree_and_screenshot_come_back_as_stored(atlas: Atlas) -> None:
    original = screen("A", png=b"\x89PNG fake")
    state = atlas.add_state(original)
    again = atlas.screen(state.id)
    assert again == original and again.screenshot == b"\x89PNG fake"
    assert atlas.screenshot_path(state.id).parent == atlas.folder / "screenshots"


def test_graph_view_has_one_node_per_screen_and_edges_keyed_by_action(atlas: Atlas) -> None:
    a, b = atlas.add_state(screen("A")), atlas.add_state(screen("B", activity="com.x.Detail"))
    atlas.add_transition(a, TAP, b)
    atlas.add_transition(b, Action(ActionKind.BACK), a)
    g = atlas.graph()
    assert g.number_of_nodes() == 2
    assert g.has_edge(a.structure_key, b.structure_key, TAP.key)
    assert g.edges[a.structure_key, b.structure_key, TAP.key]["reliability"] == pytest.approx(2 / 3)


def test_recorded_tasks_round_trip(atlas: Atlas) -> None:
    a = atlas.add_state(screen("A"))
    task = RecordedTask("task1", "Open the next page", (RecordedStep(a.id, TAP, "s1"), RecordedStep(a.id, None, "s2")),
                        "droidtask")
    atlas.add_task(task)
    assert list(atlas.tasks()) == [task]


def test_reopening_gives_the_same_counts(tmp_path: Path) -> None:
    with Atlas.create(tmp_path / "a.atlas", app="com.x") as atlas:
        atlas.add_transition(atlas.add_state(screen("A")), TAP, atlas.add_state(screen("B", activity="com.x.D")))
        before = atlas.counts()
    with Atlas.open(tmp_path / "a.atlas") as atlas:
        assert atlas.counts() == before and atlas.app == "com.x"


def test_create_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "x.atlas").mkdir()
    (tmp_path / "x.atlas" / "keep.txt").write_text("mine")
    with pytest.raises(NotAnAtlas, match="not empty"):
        Atlas.create(tmp_path / "x.atlas", app="com.x")
    assert (tmp_path / "x.atlas" / "keep.txt").read_text() == "mine"


def test_a_plain_file_is_not_an_atlas(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(NotAnAtlas, match="not an atlas"):
        Atlas.open(path)


def test_a_foreign_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    folder = tmp_path / "other.atlas"
    folder.mkdir()
    conn = sqlite3.connect(folder / DB_NAME)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = (folder / DB_NAME).read_bytes()
    with pytest.raises(NotAnAtlas, match="not an appatlas atlas"):
        Atlas.open(folder)
    assert (folder / DB_NAME).read_bytes() == before


def test_a_garbage_file_named_like_an_atlas_is_refused_and_left_untouched(tmp_path: Path) -> None:
    folder = tmp_path / "bad.atlas"
    folder.mkdir()
    (folder / DB_NAME).write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(NotAnAtlas):
        Atlas.open(folder)
    assert (folder / DB_NAME).read_bytes() == b"not sqlite at all" * 100


def test_a_damaged_atlas_is_reported_corrupt_and_left_untouched(tmp_path: Path) -> None:
    with Atlas.create(tmp_path / "a.atlas", app="com.x") as atlas:
        for i in range(300):
            atlas.add_state(screen(f"state {i} " + "x" * 200))
    db = tmp_path / "a.atlas" / DB_NAME
    data = bytearray(db.read_bytes())
    for offset in range(4096 * 3, len(data), 4096):  # scribble over the page headers after the schema
        data[offset:offset + 16] = b"\xde\xad\xbe\xef" * 4
    db.write_bytes(bytes(data))
    with pytest.raises(AtlasCorrupt, match="damaged"):
        Atlas.open(tmp_path / "a.atlas")
    assert db.read_bytes() == bytes(data)


def test_an_atlas_from_a_newer_appatlas_is_refused(tmp_path: Path) -> None:
    with Atlas.create(tmp_path / "a.atlas", app="com.x") as atlas:
        atlas.set_meta("schema_version", "99")

    def files() -> dict[str, bytes]:
        # SQLite's -wal/-shm sidecars are left out: the read-only probe of a WAL database makes them.
        return {str(p.relative_to(tmp_path)): p.read_bytes() for p in (tmp_path / "a.atlas").rglob("*")
                if p.is_file() and not p.name.endswith(("-wal", "-shm"))}

    before = files()
    with pytest.raises(AtlasTooNew, match="upgrade"):
        Atlas.open(tmp_path / "a.atlas")
    assert files() == before  # refused before anything was written: no migration, byte for byte


def test_a_process_killed_mid_write_loses_no_committed_transition(tmp_path: Path) -> None:
    folder = tmp_path / "k.atlas"
    writer = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_atlas import screen, TAP
        from appatlas.graph.atlas import Atlas
        atlas = Atlas.create({str(folder)!r}, app="com.x")
        i = 0
        while True:
            a = atlas.add_state(screen(f"A{{i}}"))
            b = atlas.add_state(screen(f"B{{i}}", activity="com.x.D"))
            tid = atlas.add_transition(a, TAP, b)
            print(tid, flush=True)
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    committed = [int(proc.stdout.readline()) for _ in range(200)]
    proc.kill()  # SIGKILL: no cleanup, no atexit
    proc.wait()
    with Atlas.open(folder) as atlas:
        stored = {t.id for t in atlas.transitions()}
    assert set(committed) <= stored


def test_a_full_disk_raises_atlas_full_and_keeps_what_was_committed(tmp_path: Path) -> None:
    from appatlas.errors import AtlasFull

    with Atlas.create(tmp_path / "f.atlas", app="com.x") as atlas:
        kept = atlas.add_transition(atlas.add_state(screen("A")), TAP, atlas.add_state(screen("B", activity="com.x.D")))
        atlas.set_size_limit(0)
        with pytest.raises(AtlasFull, match="--resume"):
            for i in range(1000):
                atlas.add_state(screen(f"state {i} " + "x" * 500))
    with Atlas.open(tmp_path / "f.atlas") as atlas:
        assert [t.id for t in atlas.transitions()] == [kept]
