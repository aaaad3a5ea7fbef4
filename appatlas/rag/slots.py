"""Slots: the values an intent carries (names, numbers, phone numbers, emails, file names, choices).

"Create a new contact Stephen Bob, mobile number 12345678900" carries first name Stephen,
surname Bob and a phone number. Each slot says whether it is *typed* (goes into a field) or
*names* something on screen ("disable 'start week on Sunday'"), and which words hint at its
field ("mobile number" -> a phone field). Typed values are masked out of the retrieval query:
they say what to type, not where to go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from appatlas.rag.text import tokens

__all__ = ["FIELD_WORDS", "Slot", "extract_slots", "field_affinity", "masked_query"]

_QUOTE = re.compile(r"(?<!\w)'([^']+)'(?!\w)|\"([^\"]+)\"|\u2018([^\u2019]+)\u2019|\u201c([^\u201d]+)\u201d")
_OLD_VALUE = re.compile(r"\s*(?:to|into|->)\s*['\"\u2018\u201c]", re.I)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_PHONE = re.compile(r"(?<![\w:.])\+?\d[\d -]{5,}\d(?![\w:.])")
# Any short extension after a name ("backup.ics", "song.flac"): a letter first, so "1.5" is a number, as the
# agent's intent reads it (`appatlas.agent.intent`); no list of the extensions some apps write.
_FILE = re.compile(r"(?<![\w.])([\w-]+)\.([A-Za-z][A-Za-z0-9]{1,3})\b(?![.@\w])", re.IGNORECASE)
_NAME_AFTER = re.compile(r"\b(?:contact|person|friend|named|called)\s+((?:[A-Z][a-z]+)(?:\s+[A-Z][a-z]+)?)")
_SEARCH_BARE = re.compile(r"\b(?i:search)\s+(?i:for\s+)?(?i:the\s+)?([A-Z][\w-]*)\b")

# Words before a value that say it is typed, and the field words each one points to.
_TYPED_CUES = {
    "named": "name title label", "called": "name title label", "name": "name title label",
    "title": "title name", "titled": "title name", "label": "label name title",
    "type": "text note content body", "content": "text message content body",
    "text": "text message content", "message": "message text", "search": "search query find",
    "find": "search query", "is": "title name", "of": "title name", "group": "name title group",
    "enter": "", "input": "", "write": "text", "number": "number phone", "mobile": "number phone mobile",
    "phone": "number phone", "email": "email mail", "file": "name file", "to": "name title",
}
# Words that describe the field a typed value goes into ("mobile number 123…"): typing explains them.
FIELD_WORDS = frozenset(tokens("name named called title label number mobile phone text content message type "
                               "email file query search"))
_CREATING = re.compile(r"\b(create|add|new|rename|search|type|send|text|write|enter|save|name)\b", re.I)
_RENAMING = re.compile(r"\b(rename|change|from)\b", re.I)


@dataclass(frozen=True)
class Slot:
    name: str  # first_name, last_name, phone, email, file, query, text, name, value
    value: str
    kind: str  # quoted | phone | email | file | name | search
    cue: str  # the words just before the value
    start: int
    end: int
    typed: bool  # goes into a field (else it names something on screen)
    replaced: bool = False  # the old value of "from 'a' to 'b'": it names what changes, not where to tap

    @property
    def hints(self) -> str:
        """Words a matching field's label would contain."""
        by_name = {"first_name": "first name given", "last_name": "surname last family name",
                   "phone": "number phone mobile", "email": "email mail", "query": "search query find",
                   "file": "file filename"}
        if self.name in by_name:  # a phone number goes into a number field, whatever words precede it
            return by_name[self.name]
        cue_words = " ".join(_TYPED_CUES.get(w, "") for w in self.cue.lower().split()[-2:])
        return cue_words.strip()


def _cue(intent: str, start: int) -> str:
    """The words just before a value, back to the start of its clause (at most six)."""
    clause = re.split(r"[,;]|\band\b", intent[:start])[-1]
    return " ".join(re.findall(r"[\w']+", clause)[-6:])


def _typed(intent: str, cue: str, value: str, start: int, end: int) -> bool:
    words = cue.lower().split()
    last = words[-1] if words else ""
    if "/" in value or _OLD_VALUE.match(intent, end):
        return False  # a location, or the old value of "from 'a' to 'b'" / "rename 'a' to 'b'"
    if re.search(r"\b(search|find)\b(?:\W+\w+){0,4}\W*$", intent[:start], re.I):
        return True
    if last in ("the", "in", "by", "on", "at") and not (len(words) > 1 and words[-2] in ("is", "of")):
        return False  # "check the 'Recordings'", "sort by 'Date'": a label on screen
    if last == "to" or last == "from":
        # "rename 'a' to 'b'", "from '1' to '2'": the new value is typed, the old one is not
        return last == "to" and bool(_RENAMING.search(intent[:start])) and "'" in intent[:start]
    if last in _TYPED_CUES:
        return True
    return bool(_CREATING.search(intent)) and not _label_like(value)


def _label_like(value: str) -> bool:
    return bool(re.fullmatch(r"\d+(:\d+)?\s*(am|pm|%|min\w*|hours?|seconds?)?", value.strip(), re.I))


def extract_slots(intent: str) -> list[Slot]:
    """Every value `intent` carries, in order of appearance."""
    slots: list[Slot] = []
    taken: list[tuple[int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= x or a >= y for x, y in taken)

    def add(name: str, value: str, kind: str, a: int, b: int, typed: bool) -> None:
        value = value.strip()
        if value and free(a, b):
            slots.append(Slot(name, value, kind, _cue(intent, a), a, b, typed))
            taken.append((a, b))

    for m in _QUOTE.finditer(intent):
        raw = next(g for g in m.groups() if g is not None)
        a = m.start()
        f = _FILE.fullmatch(raw.strip().rstrip("'"))
        if f:
            add("file", f.group(1), "file", a, m.end(), True)
            continue
        if _PHONE.fullmatch(raw.strip()) and len(re.sub(r"\D", "", raw)) >= 7:
            add("phone", raw, "phone", a, m.end(), _typed(intent, _cue(intent, a), raw, a, m.end()))
            continue
        cue = _cue(intent, a)
        searching = bool(re.search(r"\b(search|find|look up)\b(?:\W+\w+){0,4}\W*$", intent[:a], re.I))
        name = "text" if cue.lower().split()[-1:] in (["type"], ["content"], ["text"], ["message"]) else \
            "query" if searching else "name"
        add(name, raw, "quoted", a, m.end(), _typed(intent, cue, raw, a, m.end()))
        if _OLD_VALUE.match(intent, m.end()) and slots and slots[-1].start == a:
            slots[-1] = replace(slots[-1], replaced=True)
    for m in _EMAIL.finditer(intent):
        add("email", m.group(0), "email", m.start(), m.end(), True)
    for m in _PHONE.finditer(intent):
        digits = re.sub(r"\D", "", m.group(0))
        if len(digits) >= 7:
            add("phone", m.group(0).strip(), "phone", m.start(), m.end(), True)
    for m in _FILE.finditer(intent):
        add("file", m.group(1), "file", m.start(), m.end(), True)
    for m in _NAME_AFTER.finditer(intent):
        parts = m.group(1).split()
        creating = bool(re.search(r"\b(create|new)\b", intent[: m.start()], re.I)) and "contact" in m.group(0)
        if len(parts) == 2 and creating:
            a = m.start(1)
            b = a + len(parts[0]) + 1
            add("first_name", parts[0], "name", a, a + len(parts[0]), True)
            add("last_name", parts[1], "name", b, b + len(parts[1]), True)
        else:
            add("name", m.group(1), "name", m.start(1), m.end(1), creating)
    for m in _SEARCH_BARE.finditer(intent):
        add("query", m.group(1), "search", m.start(1), m.end(1), True)
    slots.sort(key=lambda s: s.start)
    return slots


def masked_query(intent: str, slots: list[Slot]) -> str:
    """`intent` without its typed values (they say what to type, not where to go).

    Search terms stay: what is searched for is usually on screen afterwards, to be opened.
    """
    out, last = [], 0
    for s in sorted((s for s in slots if s.typed and s.name != "query"), key=lambda s: s.start):
        out.append(intent[last:s.start])
        last = s.end
    out.append(intent[last:])
    return re.sub(r"\s+", " ", "".join(out)).strip()


def field_affinity(slot: Slot, field_words: str) -> float:
    """How well a field (its label/id words) suits a slot: 0..1, by shared hint words."""
    hints = set(slot.hints.split())
    words = set(re.findall(r"[a-z]+", field_words.lower()))
    if not hints or not words:
        return 0.0
    # "filename" starts with "file": a hint counts when a field word starts with it ("surname" is no name field)
    hit = {h for h in hints if any(h == w or (len(h) >= 4 and w.startswith(h)) for w in words)}
    return min(1.0, len(hit) / min(len(hints), 3))
