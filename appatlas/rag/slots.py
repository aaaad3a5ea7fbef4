"""Slots a planned test binds: the values of an intent (`appatlas.rag.intent`) that name a field or a row.

"Create a new contact Stephen Bob, mobile number 12345678900" carries first name Stephen,
surname Bob and a phone number. Each slot says whether it is *typed* (goes into a field) or
*names* something on screen ("disable 'start week on Sunday'"), and which words hint at its
field ("mobile number" -> a phone field). Typed values are masked out of the retrieval query:
they say what to type, not where to go.

The intent is read once, by `appatlas.rag.intent.read_slots`; a test binds the values written as values
(quoted, an email, a file name, a phone number, what is searched for) and a person's name after "contact",
"named", …; a bare number or a capitalised word the agent also reads ("24 hour", "Sunday") is a word of
the intent here, which retrieval matches as any other.
"""

from __future__ import annotations

import re
from dataclasses import replace

from appatlas.rag.intent import Slot, read_slots
from appatlas.rag.text import tokens

__all__ = ["FIELD_WORDS", "Slot", "extract_slots", "field_affinity", "masked_query"]

# Words that describe the field a typed value goes into ("mobile number 123…"): typing explains them.
FIELD_WORDS = frozenset(tokens("name named called title label number mobile phone text content message type "
                               "email file query search"))


def _binds(s: Slot) -> bool:
    return s.kind in ("quoted", "email") or s.name in ("phone", "file", "query", "person")


def extract_slots(intent: str) -> list[Slot]:
    """The values of `intent` a test binds, in order of appearance; a person being created is a first name
    and a surname ("a new contact Stephen Bob")."""
    out: list[Slot] = []
    for s in read_slots(intent):
        if not _binds(s):
            continue
        parts = s.text.split()
        if s.name == "person" and s.is_typed and len(parts) == 2:
            b = s.start + len(parts[0]) + 1
            out += [replace(s, text=parts[0], name="first_name", end=s.start + len(parts[0])),
                    replace(s, text=parts[1], name="last_name", start=b)]
        else:
            out.append(replace(s, name="name") if s.name == "person" else s)
    return out


def masked_query(intent: str, slots: list[Slot]) -> str:
    """`intent` without its typed values (they say what to type, not where to go).

    Search terms stay: what is searched for is usually on screen afterwards, to be opened.
    """
    out, last = [], 0
    for s in sorted((s for s in slots if s.is_typed and s.name != "query"), key=lambda s: s.start):
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
