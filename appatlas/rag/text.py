"""Words out of UI text: tokens for lexical matching, readable words out of resource ids and class names.

One tokenizer for documents and queries, so both sides agree on what a word is. Tokens are
lower-cased, lightly stemmed (plural and -ing/-ed endings) so "notes" meets "note" and
"sorting" meets "sort", and stop words are dropped.
"""

from __future__ import annotations

import re

__all__ = ["CONFIRM_LABELS", "CONFIRM_WORDS", "KEEP_LABELS", "KEEP_WORDS", "STOP_WORDS", "camel_words", "id_words",
           "keeps", "stem", "tokens"]

STOP_WORDS = frozenset("""
a an the and or of to in on at for from by with into onto as is are be it its this that these those
i me my we our you your he him his she her they them their please then also so do does did can
will would should just all any some only up down out over under about after before via
app application screen page
""".split())

# Buttons that keep what a screen or dialog holds (a choice stays made once one is pressed), and every button
# that confirms: those, the ones that carry out an act of their own (Delete, Send, Add) and the ones that go on
# (Next, Continue, Sign in). General UI English, no app's label. One vocabulary, read two ways: the agent
# matches a button's whole label (lower-cased) against the labels, the planner a label's stemmed words
# against `KEEP_WORDS` / `CONFIRM_WORDS`.
KEEP_LABELS = frozenset({"ok", "save", "done", "apply", "confirm"})
CONFIRM_LABELS = KEEP_LABELS | frozenset({
    "yes", "create", "add", "send", "delete", "allow", "update", "submit", "set", "select", "continue", "export",
    "print", "rename", "remove", "finish", "accept", "agree", "sign in", "log in", "next"})

# Resource-id parts that say how a view is built, not what it is for.
_ID_NOISE = frozenset({"id", "holder", "layout", "view", "wrapper", "container", "txt", "tv", "iv", "img",
                       "btn", "lbl", "ll", "rl", "fl", "rv", "android", "com", "action", "bar", "root",
                       "label", "text", "textview", "content", "main", "frame"})
_NUMBERS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
            "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "fifteen": "15", "twenty": "20",
            "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "hundred": "100"}
_SYNONYMS = {"min": "minute", "mins": "minute", "sec": "second", "secs": "second", "hr": "hour", "hrs": "hour",
             "pic": "picture", "pics": "picture", "img": "image"}
_NEGATIONS = frozenset({"not", "don't", "dont", "never", "no"})
_WORD = re.compile(r"[0-9]+(?:[.:][0-9]+)*|[^\W\d_]+(?:['\u2019][^\W\d_]+)*", re.UNICODE)
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def stem(word: str) -> str:
    """A light English stem: plural, then -ing/-ed; enough to meet "settings"/"setting", "sorted"/"sort"."""
    w = word
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith(("sses", "xes", "ches", "shes")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 3:
        w = w[:-1]
    for suffix in ("ation", "ing", "ed"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)] + ("at" if suffix == "ation" else "")
            if suffix != "ation" and len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
                w = w[:-1]  # "stopped" -> "stop"
            break
    if len(w) > 3 and w.endswith("e") and not w.endswith("ee"):
        w = w[:-1]  # "create"/"created", "name"/"named" meet at "creat", "nam"
    return w


def tokens(text: str, *, keep_stop_words: bool = False) -> list[str]:
    """Lower-cased, stemmed word tokens of `text` (numbers kept whole: '7:00', '12345678900')."""
    out = []
    for m in _WORD.finditer(text.casefold()):
        w = m.group(0).replace("\u2019", "'")
        if w.endswith("'s"):
            w = w[:-2]  # "Bob's" -> "bob"
        if not keep_stop_words and w in STOP_WORDS:
            continue
        if w in _NUMBERS:
            out.append(_NUMBERS[w])
            continue
        if w in _SYNONYMS:
            out.extend(stem(x) for x in _SYNONYMS[w].split())
            continue
        if w in _NEGATIONS:
            out.append("~not")  # kept apart from stems: "not" must never meet "note"
            continue
        out.append(stem(w) if w.isalpha() else w)
    return out


def camel_words(name: str) -> list[str]:
    """'SettingsActivity' -> ['settings', 'activity']; 'com.x.ui.MainActivity' uses only the last part."""
    last = name.rsplit(".", 1)[-1].rsplit("$", 1)[-1]
    return [w.lower() for w in _CAMEL.findall(last)]


def id_words(resource_id: str) -> list[str]:
    """Readable words of a resource id: 'com.x:id/settings_show_word_count_holder' -> settings show word count."""
    name = resource_id.rsplit("/", 1)[-1]
    words = []
    for part in re.split(r"[_\W]+", name):
        words.extend(camel_words(part) if part and not part.islower() else [part.lower()] if part else [])
    return [w for w in words if w and w not in _ID_NOISE]


KEEP_WORDS = frozenset(w for label in KEEP_LABELS for w in tokens(label))
# "set" is also the stem of "Settings": read word by word it would take a Settings button for a confirm.
CONFIRM_WORDS = frozenset(w for label in CONFIRM_LABELS for w in tokens(label)) - {stem("settings")}


def keeps(label: str) -> bool:
    """Whether a button reading `label` keeps what its screen holds (Save, OK, Done, Apply): a choice made on a
    screen that has one is made once it is pressed."""
    said = set(tokens(label))
    return bool(said) and said <= KEEP_WORDS
