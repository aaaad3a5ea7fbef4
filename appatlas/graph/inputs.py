"""Values a crawler types into text fields: the right kind for each field, and memory of what worked."""

from __future__ import annotations

import re
from collections import defaultdict

from appatlas.types import Widget

__all__ = ["InputBook", "field_kind"]

# Checked in order: the first kind whose words appear in the field's id, hint, text or description.
_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("email", ("email", "e-mail", "mail")),
    ("password", ("password", "passcode", "pin")),
    ("phone", ("phone", "mobile", "tel", "dial")),
    ("url", ("url", "website", "link", "http")),
    ("number", ("days", "number of")),  # "Due in (days)" asks for a count, not a date
    ("date", ("date", "birthday", "day")),
    ("time", ("time", "hour", "alarm")),
    ("number", ("number", "amount", "count", "qty", "quantity", "age", "zip", "code", "price", "size")),
    ("search", ("search", "find", "filter", "query")),
    ("name", ("name", "first", "surname", "last", "title", "label", "nickname", "user")),
)

# Generic values by the field's kind, never taken from a task or intent someone will evaluate: a
# crawl that typed an evaluated task's value would hand the benchmark its answer (the replayed phone
# matches typed text exactly). `tests/graph/test_inputs.py` keeps them apart from the DroidTask
# inputs and the demo's intents.
_VALUES: dict[str, tuple[str, ...]] = {
    "email": ("sample.user@example.net", "qa.crawler@example.org"),
    "password": ("Crawl-pass-7", "another pass 9"),
    "phone": ("2025550143", "3105550188"),
    "url": ("https://example.net/page", "example.org"),
    "date": ("2024-05-17", "01/02/2025"),
    "time": ("07:30", "18:45"),
    "number": ("42", "7"),
    "search": ("sample", "q"),
    "name": ("Sample Name", "Item A"),
    "text": ("Sample text", "Entry 1"),
}


def field_kind(widget: Widget) -> str:
    """What a text field asks for, guessed from its id, hint, text and description."""
    words = " ".join((widget.resource_id.rsplit("/", 1)[-1], widget.hint, widget.content_desc, widget.text)).lower()
    words = re.sub(r"[_\-:]", " ", words)
    if widget.password:
        return "password"
    for kind, cues in _KINDS:
        if any(re.search(rf"\b{re.escape(c)}", words) for c in cues):
            return kind
    return "text"


class InputBook:
    """Remembers, per field, which typed value led somewhere new, and offers it first next time."""

    def __init__(self) -> None:
        self._worked: dict[str, str] = {}
        self._tries: defaultdict[str, int] = defaultdict(int)

    def value_for(self, field_id: str, widget: Widget) -> str:
        if field_id in self._worked:
            return self._worked[field_id]
        values = _VALUES[field_kind(widget)]
        value = values[self._tries[field_id] % len(values)]
        self._tries[field_id] += 1
        return value

    def worked(self, field_id: str, value: str) -> None:
        self._worked[field_id] = value
