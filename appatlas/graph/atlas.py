"""The Atlas: everything appatlas knows about one app, in one folder.

    notes.atlas/
      atlas.sqlite     states, screens, transitions, recorded tasks, findings, captions (WAL)
      screenshots/     one PNG per observed state, named by its content key

A *state* is one concrete observation (content key); a *screen* is what states share when
only content differs (structure key). Transitions join states; the graph view joins screens.
Every write is its own transaction, so a process killed at any moment loses only the write
in flight. Opening never modifies a file that is not a healthy atlas of a known version.

An atlas records the platform its app runs on (`android`, `harmony`, `web`): the planner, retrieval
and agent never look at it; the pytest exporter and the commands that pick a device do. Schema 1
atlases predate the field and were all Android; opening one migrates it to schema 2 in place
(one meta row), or reads it as Android when the file cannot be written.
"""

from __future__ import annotations

import errno
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from appatlas.errors import AtlasCorrupt, AtlasFull, AtlasTooNew, NotAnAtlas
from appatlas.graph.codec import action_from_json, action_to_json, widget_from_json, widget_to_json
from appatlas.graph.fingerprint import content_key, structure_key
from appatlas.types import Action, Screen

__all__ = ["PLATFORMS", "Atlas", "RecordedStep", "RecordedTask", "State", "StoredTransition", "SCHEMA_VERSION"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: meta 'platform'
PLATFORMS = ("android", "harmony", "web")
DB_NAME = "atlas.sqlite"
JPEG_MAGIC = b"\xff\xd8\xff"
APPLICATION_ID = 0x41544C53  # "ATLS": marks the SQLite file as ours

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE states (
  id INTEGER PRIMARY KEY, content_key TEXT NOT NULL UNIQUE, structure_key TEXT NOT NULL,
  package TEXT NOT NULL, activity TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
  tree TEXT NOT NULL, screenshot TEXT, origin TEXT NOT NULL DEFAULT '', first_seen REAL NOT NULL);
CREATE INDEX states_structure ON states(structure_key);
CREATE INDEX states_origin ON states(origin);
CREATE TABLE transitions (
  id INTEGER PRIMARY KEY, source INTEGER NOT NULL REFERENCES states(id), target INTEGER NOT NULL REFERENCES states(id),
  source_key TEXT NOT NULL, target_key TEXT NOT NULL, action_key TEXT NOT NULL, action TEXT NOT NULL,
  count INTEGER NOT NULL DEFAULT 1, failures INTEGER NOT NULL DEFAULT 0, origin TEXT NOT NULL DEFAULT '',
  first_seen REAL NOT NULL, last_seen REAL NOT NULL, UNIQUE (source, action, target));
CREATE INDEX transitions_source ON transitions(source);
CREATE INDEX transitions_keys ON transitions(source_key, action_key);
CREATE TABLE observations (id INTEGER PRIMARY KEY, transition INTEGER NOT NULL REFERENCES transitions(id),
  seen REAL NOT NULL);
CREATE TABLE dropped (structure_key TEXT NOT NULL, spot TEXT NOT NULL, PRIMARY KEY (structure_key, spot));
CREATE TABLE tasks (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, intent TEXT NOT NULL, steps TEXT NOT NULL, origin TEXT NOT NULL);
CREATE TABLE findings (
  id INTEGER PRIMARY KEY, kind TEXT NOT NULL, message TEXT NOT NULL, state INTEGER, path TEXT NOT NULL, seen REAL NOT NULL);
CREATE TABLE captions (
  subject TEXT NOT NULL, captioner TEXT NOT NULL, text TEXT NOT NULL, made REAL NOT NULL,
  PRIMARY KEY (subject, captioner));
"""


@dataclass(frozen=True, slots=True)
class State:
    id: int
    content_key: str
    structure_key: str
    origin: str


@dataclass(frozen=True, slots=True)
class StoredTransition:
    id: int
    source: int
    target: int
    source_key: str
    target_key: str
    action: Action
    count: int
    failures: int
    origin: str


@dataclass(frozen=True, slots=True)
class RecordedStep:
    """One step of a recorded task: the state it was taken on and what was done (None = done here)."""

    state: int
    action: Action | None
    origin: str = ""  # the recording's own id of the state (e.g. DroidBot state_str)


@dataclass(frozen=True, slots=True)
class RecordedTask:
    name: str
    intent: str
    steps: tuple[RecordedStep, ...]
    origin: str = ""


class Atlas:
    """One app's atlas folder. Use `Atlas.create` for a new one, `Atlas.open` for an existing one."""

    def __init__(self, folder: Path, conn: sqlite3.Connection) -> None:
        self.folder = folder
        self._db = conn
        self.screenshots = folder / "screenshots"

    # --- opening ------------------------------------------------------------------------------

    @classmethod
    def create(cls, folder: str | Path, *, app: str, platform: str = "android") -> Atlas:
        """Make a new atlas folder. Refuses to touch anything that already exists there."""
        if platform not in PLATFORMS:
            raise ValueError(f"platform must be one of {', '.join(PLATFORMS)}, got {platform!r}")
        folder = Path(folder)
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise NotAnAtlas(f"{folder} already exists and is not empty; choose a new --out or delete it first")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "screenshots").mkdir()
        conn = _connect(folder / DB_NAME)
        with conn:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.executescript(_SCHEMA)
            conn.executemany("INSERT INTO meta VALUES (?, ?)", [
                ("schema_version", str(SCHEMA_VERSION)), ("app", app), ("platform", platform),
                ("created", str(time.time()))])
        return cls(folder, conn)

    @classmethod
    def open(cls, folder: str | Path) -> Atlas:
        """Open an existing atlas, checking that it is one, intact, and of a version we read."""
        folder = Path(folder)
        db = folder / DB_NAME
        if not folder.exists():
            raise NotAnAtlas(f"no atlas at {folder}; make one with `appatlas crawl` or `appatlas import`")
        if not folder.is_dir() or not db.is_file():
            raise NotAnAtlas(f"{folder} is not an atlas (an atlas is a folder holding {DB_NAME}); "
                             "check the path, or make one with `appatlas import` / `appatlas crawl`")
        with db.open("rb") as fh:
            header = fh.read(16)
        if header != b"SQLite format 3\x00":
            raise NotAnAtlas(f"{db} is not a SQLite database; it was not written by appatlas. Nothing was changed")
        try:
            # Read-only first: nothing is written until the file has proven to be ours.
            probe = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                app_id = probe.execute("PRAGMA application_id").fetchone()[0]
                if app_id != APPLICATION_ID:
                    raise NotAnAtlas(f"{db} is a SQLite database but not an appatlas atlas; nothing was changed")
                check = probe.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise AtlasCorrupt(f"{db} is damaged ({check}); restore it from a copy or re-import/re-crawl "
                                       "the app. The file was left as it is")
                version = int(probe.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])
            finally:
                probe.close()
        except sqlite3.DatabaseError as exc:
            raise AtlasCorrupt(f"{db} is damaged ({exc}); restore it from a copy or re-import/re-crawl the app. "
                               "The file was left as it is") from exc
        except (TypeError, ValueError) as exc:
            raise AtlasCorrupt(f"{db} has no valid schema version ({exc}); the file was left as it is") from exc
        if version > SCHEMA_VERSION:
            raise AtlasTooNew(f"{folder} was written by a newer appatlas (schema {version}, this one reads up to "
                              f"{SCHEMA_VERSION}); upgrade appatlas (pip install -U appatlas)")
        (folder / "screenshots").mkdir(exist_ok=True)
        conn = _connect(db)
        if version < SCHEMA_VERSION:
            _migrate(conn, version, db)
        return cls(folder, conn)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One transaction; a full disk becomes AtlasFull (what was committed before stays)."""
        try:
            with self._db:
                yield
        except sqlite3.OperationalError as exc:
            if "full" in str(exc):
                raise AtlasFull(f"the disk holding {self.folder} is full ({exc}); everything committed so far is "
                                "kept: free some space, then run the same command with --resume") from exc
            raise

    def __enter__(self) -> Atlas:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def app(self) -> str:
        return self._meta("app")

    @property
    def platform(self) -> str:
        """"android", "harmony" or "web": what the app runs on (an atlas without the field is Android's)."""
        return self._meta("platform") or "android"

    def _meta(self, key: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else ""

    def set_meta(self, key: str, value: str) -> None:
        with self._write():
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def get_meta(self, key: str, default: str = "") -> str:
        return self._meta(key) or default

    # --- writing ------------------------------------------------------------------------------

    def add_state(self, screen: Screen, *, origin: str = "") -> State:
        """Store a screen observation (idempotent by content key) and its screenshot, if any."""
        ckey = content_key(screen)
        row = self._db.execute("SELECT id, structure_key, origin FROM states WHERE content_key=?", (ckey,)).fetchone()
        if row is not None:
            if screen.screenshot and not self._db.execute("SELECT screenshot FROM states WHERE id=?",
                                                            (row[0],)).fetchone()[0]:
                name = self._write_screenshot(ckey, screen.screenshot)
                with self._write():
                    self._db.execute("UPDATE states SET screenshot=? WHERE id=?", (name, row[0]))
            return State(row[0], ckey, row[1], row[2])
        skey = structure_key(screen)
        shot = self._write_screenshot(ckey, screen.screenshot) if screen.screenshot else None
        with self._write():
            cur = self._db.execute(
                "INSERT INTO states (content_key, structure_key, package, activity, width, height, tree, screenshot,"
                " origin, first_seen) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (ckey, skey, screen.package, screen.activity, screen.width, screen.height,
                 json.dumps(widget_to_json(screen.root), separators=(",", ":")), shot, origin, time.time()))
        return State(int(cur.lastrowid or 0), ckey, skey, origin)

    def _write_screenshot(self, ckey: str, image: bytes) -> str:
        # Kept as recorded (DroidBot's "screen_*.png" are JPEG): re-encoding would only lose or bloat.
        name = ckey[:32] + (".jpg" if image[:3] == JPEG_MAGIC else ".png")
        tmp = self.screenshots / f"{name}.tmp"
        try:
            tmp.write_bytes(image)
            tmp.replace(self.screenshots / name)  # atomic: a kill never leaves half an image under the final name
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno == errno.ENOSPC:
                raise AtlasFull(f"the disk holding {self.folder} is full; everything committed so far is kept: "
                                "free some space, then run the same command with --resume") from exc
            raise
        return name

    def set_size_limit(self, max_bytes: int) -> None:
        """Cap the database's size (a quota); writes past it raise AtlasFull as a full disk would."""
        page = self._db.execute("PRAGMA page_size").fetchone()[0]
        self._db.execute(f"PRAGMA max_page_count = {max(1, int(max_bytes) // page)}")

    def add_transition(self, source: State, action: Action, target: State, *, origin: str = "crawl") -> int:
        """Record one observation of `source --action--> target`, committed at once. Returns its id."""
        now = time.time()
        blob = json.dumps(action_to_json(action), sort_keys=True, separators=(",", ":"))
        with self._write():
            cur = self._db.execute(
                "INSERT INTO transitions (source, target, source_key, target_key, action_key, action, origin,"
                " first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (source, action, target) DO UPDATE SET count = count + 1, last_seen = excluded.last_seen"
                " RETURNING id",
                (source.id, target.id, source.structure_key, target.structure_key, action.key, blob, origin, now, now))
            tid = int(cur.fetchone()[0])
            self._db.execute("INSERT INTO observations (transition, seen) VALUES (?, ?)", (tid, now))
            return tid

    def observations(self) -> list[int]:
        """Transition ids in the order they were observed (one per observation)."""
        return [r[0] for r in self._db.execute("SELECT transition FROM observations ORDER BY id")]

    def drop(self, structure_key: str, spots: list[str]) -> None:
        """Remember that a crawl gave up these actions of a screen (so a resumed crawl does too)."""
        with self._write():
            self._db.executemany("INSERT OR IGNORE INTO dropped VALUES (?, ?)", [(structure_key, s) for s in spots])

    def dropped(self) -> set[tuple[str, str]]:
        return set(self._db.execute("SELECT structure_key, spot FROM dropped").fetchall())

    def mark_failure(self, transition_id: int) -> None:
        """Count an attempt of a known transition that did not lead where it used to."""
        with self._write():
            self._db.execute("UPDATE transitions SET failures = failures + 1 WHERE id=?", (transition_id,))

    def forget(self, *, uses: Mapping[int, int], states: Iterable[int] = (), tasks: Iterable[str] = ()) -> None:
        """Take observations away (`uses`: transition id -> how many; the latest go, a transition left
        with none is deleted), then the `states` (with every transition touching them) and the recorded
        `tasks`, in one transaction. The benchmarks use it to leave a task's demonstration out."""
        with self._write():
            for tid, n in uses.items():
                rows = [r[0] for r in self._db.execute(
                    "SELECT id FROM observations WHERE transition=? ORDER BY id DESC LIMIT ?", (tid, int(n)))]
                self._db.executemany("DELETE FROM observations WHERE id=?", [(r,) for r in rows])
                self._db.execute("UPDATE transitions SET count = count - ? WHERE id=?", (int(n), tid))
            gone = [(s,) for s in states]
            self._db.executemany("DELETE FROM observations WHERE transition IN "
                                 "(SELECT id FROM transitions WHERE source=?1 OR target=?1)", gone)
            self._db.executemany("DELETE FROM transitions WHERE source=?1 OR target=?1", gone)
            self._db.execute("DELETE FROM observations WHERE transition IN (SELECT id FROM transitions WHERE count <= 0)")
            self._db.execute("DELETE FROM transitions WHERE count <= 0")
            self._db.executemany("UPDATE findings SET state=NULL WHERE state=?", gone)
            self._db.executemany("DELETE FROM states WHERE id=?", gone)
            self._db.executemany("DELETE FROM tasks WHERE name=?", [(t,) for t in tasks])

    def add_task(self, task: RecordedTask) -> None:
        steps = [{"state": s.state, "origin": s.origin,
                  "action": None if s.action is None else action_to_json(s.action)} for s in task.steps]
        with self._write():
            self._db.execute("INSERT OR REPLACE INTO tasks (name, intent, steps, origin) VALUES (?,?,?,?)",
                             (task.name, task.intent, json.dumps(steps), task.origin))

    def add_finding(self, kind: str, message: str, *, state: State | None, path: list[dict[str, Any]]) -> None:
        with self._write():
            self._db.execute("INSERT INTO findings (kind, message, state, path, seen) VALUES (?,?,?,?,?)",
                             (kind, message, None if state is None else state.id, json.dumps(path), time.time()))

    def set_caption(self, subject: str, text: str, *, captioner: str) -> None:
        with self._write():
            self._db.execute("INSERT OR REPLACE INTO captions VALUES (?,?,?,?)", (subject, captioner, text, time.time()))

    # --- reading ------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        q = self._db.execute
        return {
            "states": q("SELECT COUNT(*) FROM states").fetchone()[0],
            "screens": q("SELECT COUNT(DISTINCT structure_key) FROM states").fetchone()[0],
            "transitions": q("SELECT COUNT(*) FROM transitions").fetchone()[0],
            "observations": q("SELECT COUNT(*) FROM observations").fetchone()[0],
            "tasks": q("SELECT COUNT(*) FROM tasks").fetchone()[0],
            "screenshots": q("SELECT COUNT(*) FROM states WHERE screenshot IS NOT NULL").fetchone()[0],
            "findings": q("SELECT COUNT(*) FROM findings").fetchone()[0],
        }

    def states(self) -> Iterator[State]:
        for row in self._db.execute("SELECT id, content_key, structure_key, origin FROM states ORDER BY id"):
            yield State(*row)

    def state(self, state_id: int) -> State:
        row = self._db.execute("SELECT id, content_key, structure_key, origin FROM states WHERE id=?",
                               (state_id,)).fetchone()
        if row is None:
            raise KeyError(f"no state {state_id} in {self.folder}")
        return State(*row)

    def state_by_origin(self, origin: str) -> State | None:
        row = self._db.execute("SELECT id, content_key, structure_key, origin FROM states WHERE origin=? LIMIT 1",
                               (origin,)).fetchone()
        return None if row is None else State(*row)

    def screen(self, state_id: int, *, with_screenshot: bool = True) -> Screen:
        """Rebuild the Screen observed as `state_id` (with its screenshot, if one was stored)."""
        row = self._db.execute("SELECT package, activity, width, height, tree, screenshot FROM states WHERE id=?",
                               (state_id,)).fetchone()
        if row is None:
            raise KeyError(f"no state {state_id} in {self.folder}")
        package, activity, width, height, tree, shot = row
        png = None
        if with_screenshot and shot:
            path = self.screenshots / shot
            png = path.read_bytes() if path.is_file() else None
        return Screen(package=package, activity=activity, root=widget_from_json(json.loads(tree)),
                      width=width, height=height, screenshot=png)

    def screenshot_path(self, state_id: int) -> Path | None:
        row = self._db.execute("SELECT screenshot FROM states WHERE id=?", (state_id,)).fetchone()
        return None if row is None or row[0] is None else self.screenshots / row[0]

    def transitions(self, *, source: int | None = None) -> Iterator[StoredTransition]:
        sql = ("SELECT id, source, target, source_key, target_key, action, count, failures, origin FROM transitions")
        rows = (self._db.execute(sql + " WHERE source=? ORDER BY id", (source,)) if source is not None
                else self._db.execute(sql + " ORDER BY id"))
        for r in rows:
            yield StoredTransition(r[0], r[1], r[2], r[3], r[4], action_from_json(json.loads(r[5])), r[6], r[7], r[8])

    def tasks(self) -> Iterator[RecordedTask]:
        for name, intent, steps, origin in self._db.execute("SELECT name, intent, steps, origin FROM tasks ORDER BY id"):
            yield RecordedTask(name, intent, tuple(
                RecordedStep(s["state"], None if s["action"] is None else action_from_json(s["action"]),
                             s.get("origin", "")) for s in json.loads(steps)), origin)

    def findings(self) -> list[dict[str, Any]]:
        return [{"kind": k, "message": m, "state": s, "path": json.loads(p)}
                for k, m, s, p in self._db.execute("SELECT kind, message, state, path FROM findings ORDER BY id")]

    def captions(self, *, captioner: str | None = None) -> dict[str, str]:
        sql, args = "SELECT subject, text FROM captions", ()
        if captioner is not None:
            sql, args = sql + " WHERE captioner=?", (captioner,)
        return dict(self._db.execute(sql, args).fetchall())

    def graph(self) -> nx.MultiDiGraph:
        """The app graph: one node per screen (structure key), one edge per (action, target) seen."""
        g = nx.MultiDiGraph()
        for skey, activity, n, first in self._db.execute(
                "SELECT structure_key, activity, COUNT(*), MIN(id) FROM states GROUP BY structure_key"):
            g.add_node(skey, activity=activity, states=n, example=first)
        for t in self.transitions():
            if g.has_edge(t.source_key, t.target_key, t.action.key):
                data = g.edges[t.source_key, t.target_key, t.action.key]
                data["count"] += t.count
                data["failures"] += t.failures
            else:
                g.add_edge(t.source_key, t.target_key, key=t.action.key, action=t.action, count=t.count,
                           failures=t.failures, transition=t.id)
        for _, _, data in g.edges(data=True):
            data["reliability"] = (data["count"] + 1) / (data["count"] + data["failures"] + 2)
        return g


def _migrate(conn: sqlite3.Connection, version: int, db: Path) -> None:
    """Bring a healthy older atlas up to SCHEMA_VERSION, one transaction per step."""
    try:
        if version < 2:  # schema 1 had no platform; every atlas then came from Android (u2, DroidBot)
            with conn:
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('platform', 'android')")
                conn.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    except sqlite3.OperationalError as exc:  # a read-only copy: readable as it is, `platform` defaults
        log.info("%s stays at schema %d (%s); read as an Android atlas", db, version, exc)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a committed transaction survives the process being killed at any moment
    # (only an OS crash or power loss can roll back the last commits); FULL would fsync every action.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn
