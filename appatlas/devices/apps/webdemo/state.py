"""The web demo's data: one `AppState` per session (browser context), as a phone has its own app data."""

from __future__ import annotations

import copy
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["AppState", "Note", "Sessions", "Task"]

_NOTES = (
    ("Groceries", "Milk, eggs, bread, coffee beans and two lemons."),
    ("Trip to Lisbon", "Flight TP1337 on Friday. Hotel near Alfama, 3 nights."),
    ("Book list", "The Dispossessed; Piranesi; The Left Hand of Darkness."),
    ("Meeting notes", "Ship the atlas viewer. Hire one more tester."),
    ("Recipes", "Lentil soup, pasta al limone, shakshuka."),
)
_TASKS = (("Renew passport", 3, False), ("Pay rent", 1, False), ("Water the plants", 0, True))
_ARCHIVE = ("Old ideas", "Tax return 2024", "Moving checklist")
SETTINGS = {  # key: (label, default)
    "sync_wifi_only": ("Sync over Wi-Fi only", False),
    "dark_theme": ("Dark theme", False),
    "quiet_hours": ("Quiet hours", False),
    "sound": ("Notification sound", True),
    "badges": ("App icon badges", True),
}
NOTE_TYPES = ("text", "checklist")


@dataclass
class Note:
    id: int
    title: str
    body: str = ""
    kind: str = "text"
    pinned: bool = False


@dataclass
class Task:
    title: str
    due_days: int
    done: bool = False


@dataclass
class AppState:
    notes: list[Note] = field(default_factory=lambda: [Note(i + 1, t, b) for i, (t, b) in enumerate(_NOTES)])
    tasks: list[Task] = field(default_factory=lambda: [Task(*t) for t in _TASKS])
    settings: dict[str, bool] = field(default_factory=lambda: {k: d for k, (_, d) in SETTINGS.items()})
    default_type: str = "text"
    archive: list[str] = field(default_factory=lambda: list(_ARCHIVE))
    unlocked_as: str = ""  # the email that unlocked the archive ("" while locked)
    downloads: int = 0
    feedback: list[str] = field(default_factory=list)  # sent from the form inside /frames' iframe
    visited: list[str] = field(default_factory=list)  # page routes served to this session, first visits in order

    def note(self, note_id: int) -> Note | None:
        return next((n for n in self.notes if n.id == note_id), None)

    def add_note(self, title: str, body: str, kind: str, pinned: bool) -> Note:
        note = Note(max((n.id for n in self.notes), default=0) + 1, title, body, kind, pinned)
        self.notes.insert(0, note) if pinned else self.notes.append(note)
        return note

    def to_json(self) -> dict[str, Any]:
        return copy.deepcopy({"notes": [asdict(n) for n in self.notes], "tasks": [asdict(t) for t in self.tasks],
                              "settings": dict(self.settings), "default_type": self.default_type,
                              "archive": list(self.archive), "unlocked_as": self.unlocked_as,
                              "downloads": self.downloads, "feedback": list(self.feedback),
                              "visited": list(self.visited)})


class Sessions:
    """Session id -> AppState, made on first use; one lock guards every read and write."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._states: dict[str, AppState] = {}

    def get(self, sid: str) -> AppState:
        state = self._states.get(sid)
        if state is None:
            state = self._states[sid] = AppState()
        return state

    def ids(self) -> list[str]:
        with self.lock:
            return list(self._states)

    def snapshot(self, sid: str) -> dict[str, Any]:
        with self.lock:
            return self.get(sid).to_json()
