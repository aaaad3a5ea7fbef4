"""A tester's intent, read for what the agent needs: its words, its slots, and what it wants toggled.

    "Change Bob's mobile number from '222222' to '12345678900'"
      terms    change, bob, mobil, number        (stemmed, stop words out)
      slots    '222222' (quoted), '12345678900' (quoted), Bob (a name)
      wants    on / off / either                 ("disable", "turn off", "do not" -> off)

Slots are the values the test binds: quoted strings, emails, phone numbers and other numbers, and
capitalised names. A slot is typed into a field or picked from a list; the screen decides which.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Intent", "Slot", "label_words", "parse_intent", "same_term", "stem", "terms_in", "words"]

STOP = frozenset("""a an the of to in on at for from by with and or but is are be it its this that these those my me i
you your we our all any some each every into onto as so then than there here please should would could can will
just also only very their them they he him his she her up down out about over under again after before while when
which what who whom how why where named called it using via following content do does not don on off""".split())
# Verbs that say what to do, not where: they match too many labels to guide navigation.
GENERIC = frozenset("""change set make use turn go open get put let take give enable disable show hide display
switch select choose want need try keep app application mode option options page screen button item""".split())
OFF_CUES = re.compile(r"\b(disable|turn off|switch off|do not|don't|dont|hide|uncheck|stop|deactivate|no longer)\b",
                      re.IGNORECASE)
ON_CUES = re.compile(r"\b(enable|turn on|switch on|show|use|check|activate|allow|display)\b", re.IGNORECASE)
_QUOTED = re.compile(r"""(?<![A-Za-z])['"‘“]([^'"’”]{1,80})['"’”](?![A-Za-z])""")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
_NUMBER = re.compile(r"(?<![\w:])\+?\d+(?:[:.,]\d+)*%?(?![\w])")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-z]+(?:\s+[A-Z][a-z]+)*|[A-Z]{3,}\d*)\b")
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split()) if i >= 2}
_NUMBER_WORD = re.compile(rf"\b({'|'.join(_NUMBER_WORDS)})\b(?=\s+\w)", re.IGNORECASE)
# Verbs right before a value are what to do with it ("call 911"), not a description of its field.
_VERBS = frozenset({"call", "send", "play", "open", "search", "find", "add", "delete", "remove", "create", "type",
                    "write", "enter", "check", "show", "display", "print", "export", "rename"})
# The word right before a slot that says it is typed ("named 'X'", "type 'X'", "number 555…").
_INPUT_CUES = ("named", "called", "titled", "title", "type", "text", "message", "content", "number", "phone",
               "mobile", "email", "mail", "write", "enter", "password", "label")
# Any short extension after a name ("backup.ics", "song.flac"): a letter first, so "1.5" is a number.
_EXTENSIONS = r"([A-Za-z][A-Za-z0-9]{1,3})"
_FILE = re.compile(rf"^([\w\- ]+)\.{_EXTENSIONS}$", re.IGNORECASE)
_FILE_NAME = re.compile(rf"(?<![\w.])[\w\-]+\.{_EXTENSIONS}\b", re.IGNORECASE)


@dataclass(frozen=True)
class Slot:
    """A value of the intent: `text` as written; `kind` quoted | email | number | name.

    `role` says how the intent uses it: "input" (to type: "named 'X'", "type 'X'", "search for 'X'",
    "number 555…"), "select" (to pick: "delete the note 'X'", "the '7:00 am' alarm") or "either"
    (a person's name: typed into name fields, else picked). `cue` is the word before it.
    """

    text: str
    kind: str
    role: str = "select"
    cue: str = ""
    context: tuple[str, ...] = ()  # stemmed words right before it ("mobile number"): done when the slot is
    kind_word: str = ""  # the stemmed word right after a name or number saying what it is ("DCIM folder", "5 minutes")

    @property
    def typed(self) -> str:
        """What goes into a field: a file name loses its extension (save dialogs add it)."""
        m = _FILE.match(self.text)
        return m.group(1) if m else self.text


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


def parse_intent(text: str) -> Intent:
    """Read an intent (see the module docstring)."""
    slots: list[Slot] = []
    taken: list[tuple[int, int]] = []

    def add(m: re.Match[str], kind: str, group: int = 0) -> None:
        if any(a <= m.start() < b for a, b in taken):
            return
        value = m.group(group).strip()
        if value and all(s.text.lower() != value.lower() for s in slots):
            before = re.findall(r"[A-Za-z]+", text[:m.start()].lower())[-3:]
            searched = "search" in re.findall(r"[A-Za-z]+", text[:m.start()].lower())[-4:]
            cue = "search" if searched else before[-1] if before else ""
            last4 = re.findall(r"[A-Za-z]+", text[:m.start()].lower())[-4:]
            written = any(w in ("type", "write", "enter") or (w == "text" and nxt in ("to", "the", "a"))
                          for w, nxt in zip(last4, [*last4[1:], ""], strict=False))
            if searched or written:
                role = "input"  # "search for the DCIM folder", "text to the group 'Hi'": typed
            elif kind == "name":
                role = "either"
            elif kind == "email" or cue in _INPUT_CUES or (cue == "to" and any(x.cue == "from" for x in slots)):
                role = "input"
            else:
                role = "select"
            # "mobile number 555…" describes the value; "a message to Bob" does not describe Bob.
            # ("… mobile number from '222222'": the words before the preposition describe it).
            near = before[:-1] if before and before[-1] == "from" else before
            context = () if before and before[-1] in ("to", "for", "with") else tuple(
                stem(w) for w in near[-2:] if w not in STOP and w not in GENERIC and w not in _VERBS)
            after = re.match(r"\s+([A-Za-z]+)", text[m.end():]) if kind in ("name", "number") else None
            kind_word = stem(after.group(1)) if after and after.group(1).lower() not in STOP else ""
            slots.append(Slot(value, kind, role, cue, context, kind_word))
        taken.append((m.start(), m.end()))

    for m in _QUOTED.finditer(text):
        add(m, "quoted", 1)
    for m in _FILE_NAME.finditer(text):
        add(m, "quoted")
    for m in _EMAIL.finditer(text):
        add(m, "email")
    for m in _NUMBER.finditer(text):
        add(m, "number")
    for m in _NAME.finditer(text):
        add(m, "name", 1)
    for m in _NUMBER_WORD.finditer(text):  # "five minutes" is 5 minutes; the word stays a term too
        if not any(a <= m.start() < b for a, b in taken):
            after = re.match(r"\s+([A-Za-z]+)", text[m.end():])
            unit = stem(after.group(1)) if after and after.group(1).lower() not in STOP else ""
            slots.append(Slot(_NUMBER_WORDS[m.group(1).lower()], "number", kind_word=unit))
    rest = text
    for a, b in sorted(taken, reverse=True):
        rest = rest[:a] + " " + rest[b:]
    # Names stay words too: 'Sunday' and 'Favorites' are also words of the labels to act on.
    names = " ".join(s.text for s in slots if s.kind == "name")
    terms = tuple(dict.fromkeys(t for t in words(rest + " " + names) if t not in GENERIC and not t.isdigit()))
    wants = "off" if OFF_CUES.search(text) else "on" if ON_CUES.search(text) else ""
    return Intent(text=text, terms=terms, slots=tuple(slots), wants=wants)
