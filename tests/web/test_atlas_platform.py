"""Atlases record their platform; schema 1 atlases (before the field) open as Android's."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from appatlas.graph.atlas import DB_NAME, SCHEMA_VERSION, Atlas, _migrate


def _as_schema_1(folder: Path) -> None:
    """Rewrite a fresh atlas as appatlas wrote it before the platform field existed."""
    conn = sqlite3.connect(folder / DB_NAME)
    with conn:
        conn.execute("DELETE FROM meta WHERE key='platform'")
        conn.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    conn.close()


def test_a_new_atlas_records_its_platform(tmp_path: Path) -> None:
    with Atlas.create(tmp_path / "w.atlas", app="127.0.0.1", platform="web") as atlas:
        assert atlas.platform == "web"
    with Atlas.open(tmp_path / "w.atlas") as atlas:
        assert atlas.platform == "web"
        assert atlas.get_meta("schema_version") == str(SCHEMA_VERSION)
    with Atlas.create(tmp_path / "a.atlas", app="com.x") as atlas:
        assert atlas.platform == "android"  # the default: every caller before the field was Android
    with pytest.raises(ValueError, match="platform"):
        Atlas.create(tmp_path / "x.atlas", app="com.x", platform="ios")


def test_a_schema_1_atlas_is_migrated_to_android(tmp_path: Path) -> None:
    folder = tmp_path / "old.atlas"
    Atlas.create(folder, app="com.x").close()
    _as_schema_1(folder)
    with Atlas.open(folder) as atlas:
        assert atlas.platform == "android"
        assert atlas.get_meta("schema_version") == str(SCHEMA_VERSION)
    conn = sqlite3.connect(folder / DB_NAME)
    assert dict(conn.execute("SELECT key, value FROM meta").fetchall())["platform"] == "android"
    conn.close()


def test_a_schema_1_atlas_that_cannot_be_written_is_read_as_android(tmp_path: Path) -> None:
    # As root every file is writable, so the read-only copy is a read-only connection to it.
    folder = tmp_path / "ro.atlas"
    Atlas.create(folder, app="com.x").close()
    _as_schema_1(folder)
    db = folder / DB_NAME
    before = db.read_bytes()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    _migrate(conn, 1, db)  # must not raise
    atlas = Atlas(folder, conn)
    assert atlas.platform == "android"
    assert atlas.get_meta("schema_version") == "1"
    atlas.close()
    assert db.read_bytes() == before
