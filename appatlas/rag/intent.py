"""A tester's intent, read once for everyone who acts on it: retrieval, the planner's expectations and the agent.

    "Change Bob's mobile number from '222222' to '12345678900'"
      terms    change, bob, mobil, number        (stemmed, stop words out)
      slots    '222222' (quoted, the old value), '12345678900' (a phone number, typed), Bob (a name)
      wants    on / off / either                 ("disable", "turn off", "do not" -> off)

Slots are the values the test binds: quoted strings, file names, emails, phone numbers and other numbers,
and capitalised names. Each says how the intent uses it (`role`: typed into a field, picked on screen, or
either) and which field it suits (`name`: phone, email, file, query, text, first/last name, name). One
pass finds them all; `appatlas.rag.slots.extract_slots` is the part of them a planned test binds.

The role of a value comes from the words around it, never from a list of an app's labels: a value after a
word that says it is written ("named", "type", "mobile number", "search for") is typed; one after a place
word ("the", "in", "by") or before "to …" (the old value of a change) is picked. A value that names what the
intent makes ("create", "add", "new", "rename": "a new event, the task is 'X'"; a file name) is `made`: a test
types it where a field asks for it, though no word says which field; a measure ("5:00", "30 min") is not
made, a picker or a list offers it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from appatlas.rag.text import STOP_WORDS

__all__ = ["GENERIC", "NAMING", "OFF_CUES", "ON_CUES", "STOP", "Intent", "Slot", "label_words", "parse_intent", "read_slots",
           "same_term", "stem", "terms_in", "wants", "words"]

# Stop words of an intent: the tokenizer's, plus words that say how rather than what ("not" and "off" are
# read by `wants`; "named" by the slot roles).
STOP = STOP_WORDS | frozenset("""but there here very each every again while when than which what who whom how why
where named called using following content not don off could""".split())
# Verbs that say what to do, not where: they match too many labels to guide navigation.
GENERIC = frozenset("""change set make use turn go open get put let take give enable disable show hide display
switch select choose want need try keep app application mode option options page screen button item""".split())
# What a toggle is wanted to be: the one on/off reading of an intent (planner expectations and agent alike).
OFF_CUES = re.compile(r"\b(turn off|switch off|disable|deactivate|uncheck|untick|stop|hide|do not|don't|dont|never|"
                      r"no longer)\b", re.IGNORECASE)
ON_CUES = re.compile(r"\b(enable|turn on|switch on|show|use|check|activate|allow|display)\b", re.IGNORECASE)

_QUOTED = re.compile(r"(?<![\w])'([^']{1,80})'(?!\w)|\"([^\"]{1,80})\"|\u2018([^\u2019]{1,80})\u2019"
                     r"|\u201c([^\u201d]{1,80})\u201d")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_PHONE = re.compile(r"(?<![\w:.])\+?\d[\d -]{5,}\d(?![\w:.])")  # seven digits or more: a phone number
_NUMBER = re.compile(r"(?<![\w:])\+?\d+(?:[:.,]\d+)*%?(?![\w])")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-z]+(?:\s+[A-Z][a-z]+)*|[A-Z]{3,}\d*)\b")
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split()) if i >= 2}
_NUMBER_WORD = re.compile(rf"\b({'|'.join(_NUMBER_WORDS)})\b(?=\s+\w)", re.IGNORECASE)
# Any short extension after a name ("backup.ics", "song.flac"): a letter first, so "1.5" is a number.
_FILE = re.compile(r"^([\w\- ]+)\.([A-Za-z][A-Za-z0-9]{1,3})$", re.IGNORECASE)
_FILE_NAME = re.compile(r"(?<![\w.])[\w\-]+\.([A-Za-z][A-Za-z0-9]{1,3})\b(?![.@\w])", re.IGNORECASE)
# Verbs right before a value are what to do with it ("call 911"), not a description of its field.
_VERBS = frozenset({"call", "send", "play", "open", "search", "find", "add", "delete", "remove", "create", "type",
                    "write", "enter", "check", "show", "display", "print", "export", "rename"})
# The word right before a value that says it is written, and the field words each points to.
_INPUT_CUES = {
    "named": "name title label", "called": "name title label", "name": "name title label", "titled": "title name",
    "title": "title name", "label": "label name title", "type": "text note content body",
    "content": "text message content body", "text": "text message content", "message": "message text",
    "number": "number phone", "phone": "number phone", "mobile": "number phone mobile", "email": "email mail",
    "mail": "email mail", "write": "text", "enter": "", "input": "", "password": "password",
}
# Words that give a value as the name of what it is ("a task *called* 'X'"): the planner's expectations and the
# agent's oracle both read them.
NAMING = frozenset({"named", "called", "titled"})
_PERSON = frozenset({"contact", "person", "friend", "named", "called"})  # a name after these is a person's
_PLACE = frozenset({"the", "in", "by", "on", "at"})  # "check the 'Recordings'", "sort by 'Date'": a label on screen
_OLD_VALUE = re.compile(r"\s*(?:to|into|->)\s*['\"\u2018\u201c]", re.I)  # "from 'a' to 'b'": 'a' is the old value
_MAKING = re.compile(r"\b(create|add|new|rename|make|compose|save)\b", re.I)
_MEASURE = re.compile(r"\+?\d+([:.,]\d+)*\s*(am|pm|%|min\w*|hours?|seconds?)?", re.I)
_HINTS = {"first_name": "first name given", "last_name": "surname last family name", "phone": "number phone mobile",
          "email": "email mail", "query": "search query find", "file": "file filename"}


@dataclass(frozen=True)
class Slot:
    """A value of the intent: `text` as written; `kind` quoted | email | number | name (how it is written).

    `role` says how the intent uses it: "input" (to type: "named 'X'", "type 'X'", "search for 'X'",
    "number 555…"), "select" (to pick: "delete the note 'X'", "the '7:00 am' alarm") or "either"
    (a person's name: typed into name fields, else picked). `name` is the field it suits (phone, email,
    file, query, text, first_name, last_name, name, value). `cue` is the word before it, `clause` the words
    before it back to the start of its clause.
    """

    text: str
    kind: str
    role: str = "select"
    cue: str = ""
    context: tuple[str, ...] = ()  # stemmed words right before it ("mobile number"): done when the slot is
    kind_word: str = ""  # the stemmed word right after a name or number saying what it is ("DCIM folder", "5 minutes")
    name: str = "value"
    clause: str = ""
    start: int = 0
    end: int = 0
    replaced: bool = False  # the old value of "from 'a' to 'b'": it names what changes, not where to tap
    replaces: str = ""  # of the new value 'b' of "from 'a' to 'b'" / "rename 'a' to 'b'": 'a'
    made: bool = False  # it names what the intent makes ("a new event, the task is 'X'"): typed where a field asks

    @property
    def typed(self) -> str:
        """What goes into a field: a file name loses its extension (save dialogs add it)."""
        m = _FILE.match(self.text)
        return m.group(1) if m else self.text

    @property
    def value(self) -> str:
        """The value a test binds: what is typed, or the label picked."""
        return self.typed

    @property
    def is_typed(self) -> bool:
        """Whether a test types it: a word says so ("input"), or it names what the intent makes."""
        return self.role == "input" or self.made

    @property
    def hints(self) -> str:
        """Words a matching field's label would contain."""
        if self.name in _HINTS:  # a phone number goes into a number field, whatever words precede it
            return _HINTS[self.name]
        said = " ".join(_INPUT_CUES.get(w, "") for w in self.clause.lower().split()[-2:]).strip()
        # a value typed with no word of its field around it ("the task is 'X'") names what is made
        return said or ("name title" if self.is_typed else "")


@dataclass(frozen=True)
class Intent:
    text: str
    terms: tuple[str, ...]  # stemmed content words, slots and generic verbs excluded
    slots: tuple[Slot, ...]
    wants: str  # "on" | "off" | "" (either)

    def input_slots(self) -> tuple[Slot, ...]:
        """Slots the intent says to type."""
        return tuple(s for s in self.slots if s.role == "input")


def stem(word: str) -> str:
    """A light English stemmer: enough to make 'notes' meet 'note' and 'sorting' meet 'sort'.

    Stems are compared with `same_term`, which forgives the endings this leaves ('clos' ~ 'close').
    """
    w = word.lower()
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("ing", "ed")) and len(w) - (3 if w.endswith("ing") else 2) >= 4:
        return w[: -3 if w.endswith("ing") else -2]
    if w.endswith(("sses", "xes", "zes", "ches", "shes")):
        return w[:-2]
    if w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 3:
        return w[:-1]
    return w


_ENDINGS = frozenset({"e", "s", "es", "ed", "d", "y", "ing", "ion"})


def same_term(a: str, b: str) -> bool:
    """Whether two stems are the same word ('clos' and 'close', 'creat' and 'create')."""
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    # Only an ending that the stemmer may have cut: 'timer' is not 'time'.
    if len(short) >= 4 and long_.startswith(short) and long_[len(short):] in _ENDINGS:
        return True
    # 'vibrate' and 'vibration', 'delete' and 'deletion': the same word before its ending.
    root = short[:-1] if short.endswith("e") else ""
    return len(root) >= 5 and long_.startswith(root) and long_[len(root):] in _ENDINGS


def words(text: str) -> list[str]:
    """Stemmed content words of `text` (stop words dropped), in order."""
    return [stem(t) for t in re.findall(r"[A-Za-z]+|\d+", text) if t.lower() not in STOP and len(t) > 1
            or t.isdigit()]


def label_words(label: str) -> list[str]:
    """Words of a label, plus each pair of neighbours written as one ('Font size' also gives 'fontsize').

    Synonyms and abbreviations ('SMS' for "text message") are not listed here: they are meaning, which
    the semantic comparison (`appatlas.rag.embed`) carries for any app."""
    ws = words(label)
    return ws + [a + b for a, b in zip(ws, ws[1:], strict=False)]


def terms_in(terms: Sequence[str], ws: Sequence[str]) -> list[str]:
    """The `terms` a label (its `label_words`) names: "dial pad" in the intent is "Dialpad" on the screen."""
    hits = [t for t in terms if any(same_term(t, w) for w in ws)]
    for a, b in zip(terms, terms[1:], strict=False):
        if a + b in ws:
            hits += [x for x in (a, b) if x not in hits]
    return hits


def wants(text: str) -> str:
    """What a toggle the intent names is wanted to be: "off", "on", or "" (either)."""
    return "off" if OFF_CUES.search(text) else "on" if ON_CUES.search(text) else ""


def _clause(text: str, start: int) -> str:
    """The words just before a value, back to the start of its clause (at most six)."""
    return " ".join(re.findall(r"[\w']+", re.split(r"[,;]|\band\b", text[:start])[-1])[-6:])


def _searched(text: str, a: int) -> bool:
    return bool(re.search(r"\b(search|find|look up)\b(?:\W+\w+){0,4}\W*$", text[:a], re.I))


def _role(text: str, a: int, b: int, kind: str, name: str, value: str, person: bool,
          earlier: Sequence[Slot]) -> tuple[str, bool]:
    """How the intent uses the value at text[a:b], and whether it names what the intent makes (module docstring).

    The role is what the words right around it say (an explicit "named", "type", "search for" makes it "input");
    a value that names what the intent makes ("a new event, the task is 'X'", "export … to test.ics") is typed
    too, wherever a field asks for it, but no word says which field."""
    before = re.findall(r"[A-Za-z]+", text[:a].lower())
    last4 = before[-4:]
    last = before[-1] if before else ""
    making = bool(_MAKING.search(text))
    if "/" in value or _OLD_VALUE.match(text, b):
        return "select", False  # a location, or the old value of "from 'a' to 'b'" / "rename 'a' to 'b'"
    if _searched(text, a):
        return "input", False  # "search for the DCIM folder"
    if any(w in ("type", "write", "enter") or (w == "text" and nxt in ("to", "the", "a"))
           for w, nxt in zip(last4, [*last4[1:], ""], strict=False)):
        return "input", False  # "type '123'", "text to the group 'Hi'"
    if kind == "email" or name == "phone":
        return "input", False
    if kind == "name":  # a person's name: typed into name fields where one is made, else found on screen
        return "either", person and bool(re.search(r"\b(create|new)\b", text[:a], re.I))
    made = name == "file" or (making and kind != "number" and not _MEASURE.fullmatch(value.strip()))
    if last in _PLACE:
        return "select", False
    if last in ("to", "from"):  # "from '1' to '2'": the new value is typed; "rename 'a' to 'b'": b is made
        renamed = last == "to" and bool(re.search(r"\b(rename|change|from)\b", text[:a], re.I)) and "'" in text[:a]
        return ("input" if last == "to" and any(s.cue == "from" for s in earlier) else "select"), renamed or made
    if last in _INPUT_CUES:
        return "input", False
    return "select", made


def read_slots(text: str) -> list[Slot]:
    """Every value `text` carries, in order of appearance (module docstring)."""
    return sorted(_read(text)[0], key=lambda s: s.start)


def _read(text: str) -> tuple[list[Slot], list[tuple[int, int]]]:
    """The slots in the order they were found, and the spans of text they were read from."""
    slots: list[Slot] = []
    taken: list[tuple[int, int]] = []

    def add(a: int, b: int, value: str, kind: str, name: str = "") -> None:
        value = value.strip()
        if not value or any(x < b and a < y for x, y in taken):
            return
        taken.append((a, b))
        if any(s.text.lower() == value.lower() for s in slots):
            return
        before = re.findall(r"[A-Za-z]+", text[:a].lower())
        searched = "search" in before[-4:]
        cue = "search" if searched else before[-1] if before else ""
        person = kind == "name" and bool(before) and before[-1] in _PERSON
        if not name:
            clause_end = _clause(text, a).lower().split()[-1:]
            name = ("query" if _searched(text, a) else "text" if clause_end in (["type"], ["content"], ["text"], ["message"])
                    else "name" if kind in ("quoted", "name") else "value")
        role, made = _role(text, a, b, kind, name, value, person, slots)
        # "mobile number 555…" describes the value; "a message to Bob" does not describe Bob.
        # ("… mobile number from '222222'": the words before the preposition describe it).
        near = before[-3:-1] if before and before[-1] == "from" else before[-3:]
        context = () if before and before[-1] in ("to", "for", "with") else tuple(
            stem(w) for w in near[-2:] if w not in STOP and w not in GENERIC and w not in _VERBS)
        after = re.match(r"\s+([A-Za-z]+)", text[b:]) if kind in ("name", "number") else None
        kind_word = stem(after.group(1)) if after and after.group(1).lower() not in STOP else ""
        if person:
            name = "person"
        slots.append(Slot(value, kind, role, cue, context, kind_word, name, _clause(text, a), a, b,
                          replaced=bool(_OLD_VALUE.match(text, b)), made=made))

    for m in _QUOTED.finditer(text):
        raw = next(g for g in m.groups() if g is not None).strip().rstrip("'")
        digits = re.sub(r"\D", "", raw)
        name = "file" if _FILE.match(raw) else "phone" if _PHONE.fullmatch(raw) and len(digits) >= 7 else ""
        add(m.start(), m.end(), raw, "quoted", name)
    for m in _EMAIL.finditer(text):
        add(m.start(), m.end(), m.group(0), "email", "email")
    for m in _FILE_NAME.finditer(text):
        add(m.start(), m.end(), m.group(0), "quoted", "file")
    for m in _PHONE.finditer(text):
        if len(re.sub(r"\D", "", m.group(0))) >= 7:
            add(m.start(), m.end(), m.group(0), "number", "phone")
    for m in _NUMBER.finditer(text):
        add(m.start(), m.end(), m.group(0), "number")
    for m in _NAME.finditer(text):
        add(m.start(1), m.end(1), m.group(1), "name")
    for m in _NUMBER_WORD.finditer(text):  # "five minutes" is 5 minutes; the word stays a term too
        if not any(x <= m.start() < y for x, y in taken):
            after = re.match(r"\s+([A-Za-z]+)", text[m.end():])
            unit = stem(after.group(1)) if after and after.group(1).lower() not in STOP else ""
            slots.append(Slot(_NUMBER_WORDS[m.group(1).lower()], "number", kind_word=unit, clause=_clause(text, m.start()),
                              start=m.start(), end=m.end()))
    # The new value of "from 'a' to 'b'" knows the old one: the field that holds 'a' is where 'b' goes.
    for old in [s for s in slots if s.replaced]:
        after = _OLD_VALUE.match(text, old.end)
        slots = [replace(s, replaces=old.text) if after and s.start < after.end() <= s.end else s for s in slots]
    return slots, taken


def parse_intent(text: str) -> Intent:
    """Read an intent (see the module docstring)."""
    slots, spans = _read(text)
    rest = text
    for a, b in sorted(spans, reverse=True):  # a number word ("five") is no span: it stays a term
        rest = rest[:a] + " " + rest[b:]
    # Names stay words too: 'Sunday' and 'Favorites' are also words of the labels to act on.
    names = " ".join(s.text for s in slots if s.kind == "name")
    terms = tuple(dict.fromkeys(t for t in words(rest + " " + names) if t not in GENERIC and not t.isdigit()))
    return Intent(text=text, terms=terms, slots=tuple(slots), wants=wants(text))
