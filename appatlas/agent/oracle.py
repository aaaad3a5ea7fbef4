"""The end oracle's first half: whether the steps so far have *realised* an intent.

An intent is done by its actions, never because a screen looks like the end. `realised` says so when

- every value it names was typed, picked, or is what a screen acted on shows (a prefilled file
  name, the note open by that name) — the app's own name aside;
- each clause ("…, and …") has at least `finish` of the weight of its known words covered by what
  was acted on (words no screen shows cannot be acted on; the app's name and a closing "in the list
  view" say which app and where, not what);
- the first two known words after a clause's last "to" / "by" — its target, "… to *light*",
  "sort by *year*" — are covered;
- the words saying what a named value is made as ("a new *task* called 'X'") are covered.

The policy then says "done" once the last change was committed, or confirms it first.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from appatlas.agent.knowledge import Knowledge
from appatlas.agent.options import options, shown_texts
from appatlas.agent.progress import Progress
from appatlas.rag.intent import NAMING, Intent, label_words, same_term, stem, words
from appatlas.types import Screen

__all__ = ["CLAUSES", "AppWords", "clauses", "realised"]

_PLACE = re.compile(r"\b(?:in|on|at|inside)\s+the\s+(?:(?!\b(?:in|on|at|by|to|with|for)\b)[^'\"])*$",
                    re.IGNORECASE)
_TARGET = re.compile(r"\b(?:to|by)\b", re.IGNORECASE)
CLAUSES = re.compile(r",|;|\band\b|\bthen\b", re.IGNORECASE)  # an intent's clauses: the oracle checks each, the ranker hears the next


def clauses(text: str) -> list[str]:
    """The clauses of an intent's text, in its order ("create a note called 'A', then search for 'B'"): the oracle
    checks each, the ranker hears the next one with words left, and parts of one clause are done together."""
    return [c for c in CLAUSES.split(text) if c.strip()]


class AppWords(frozenset[str]):
    """The words of the app's package, and the parts of its compound words ("music", "player" of
    "musicplayer"): the app's own name says which app, not where to go in it."""

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str):
            return False
        w = stem(word.lower())
        return frozenset.__contains__(self, w) or frozenset.__contains__(self, word) or (len(w) >= 4 and any(
            len(p) > len(w) and (p.startswith(w) or p.endswith(w)) for p in self))


def realised(intent: Intent, progress: Progress, screen: Screen, knowledge: Knowledge, *, app_words: AppWords,
             weight: Callable[[str], float], finish: float) -> str:
    """Why `intent` reads as realised by `progress` on `screen`, or "" when it does not (module docstring)."""
    opts = options(screen, scroll=False)
    shown = shown_texts(screen, fields=True)
    held = {w.text.strip().lower() for w in screen.widgets() if w.editable and w.text.strip()}
    if not progress.history or not all(
            progress.mentioned(s) or stem(s.text.lower()) in app_words
            or (s.role != "input" and s.text.lower() in shown) or s.typed.lower() in held  # a prefilled field
            for s in intent.slots):
        return ""
    # Words no screen shows cannot be acted on; those on this screen or on what was done can.
    seen = [w for o in opts for w in label_words(o.label)]
    seen += [w for t in progress.history for w in label_words(t.label)]
    # The app's own name says which app, not what to do in it.
    known = [t for t in intent.terms if t not in app_words and (
        knowledge.weight(t) < knowledge.default_idf or any(same_term(t, w) for w in seen))]
    if not known:
        return ""
    for clause in clauses(intent.text):
        # A closing "in the list view" / "on the main screen" says where, not what: it need not be acted on.
        place = _PLACE.search(clause)
        ws = set(words(clause[:place.start()] if place else clause))
        terms = [t for t in known if t in ws]
        total = sum(weight(t) for t in terms)
        if total and sum(weight(t) for t in terms if t in progress.covered) < finish * total:
            return ""
        # What follows the last "to" / "by" is the value it asks for ("… to light", "sort by year").
        target = _TARGET.split(clause)
        wanted = set(words(target[-1])[:2]) if len(target) > 1 else set()
        if any(t in wanted and t not in progress.covered for t in terms):
            return ""
    # What a named value is made as ("a new *task* called 'X'", "a *checklist* named 'X'") is made only by acting
    # on it: typing the name into another kind of thing's form makes that thing.
    made = {c for s in intent.slots if s.cue in NAMING for c in s.context}
    if any(t in made and t not in progress.covered for t in known):
        return ""
    return f"its words ({', '.join(t for t in known if t in progress.covered)}) and values were acted on"
