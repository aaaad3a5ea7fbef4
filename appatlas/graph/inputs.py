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
    ("date", ("date", "birthday", "day")),
    ("time", ("time", "hour", "alarm")),
    ("number", ("number", "amount", "count", "qty", "quantity", "age", "zip", "code", "price", "size")),
    ("search", ("search", "find", "filter", "query")),
    ("name", ("name", "first", "surname", "last", "title", "label", "nickname", "user")),
)

_VALUES: dict[str, tuple[str, ...]] = {
    "email": ("tester@example.com", "qa.team@example.org"),
    "password": ("Secret123!", "correct horse"),
    "phone": ("12345678900", "5551234567"),
    "url": ("https://example.com", "example.org"),
    "date": ("2024-05-17", "01/02/2025"),
    "time": ("07:30", "18:45"),
    "number": ("42", "7"),
    "search": ("test", "a"),
    "name": ("Stephen Bob", "Groceries"),
    "text": ("Hello appatlas", "Note 1"),
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
