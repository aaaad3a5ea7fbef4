"""What an element means, compared with an intent by meaning rather than by shared words.

An element says more than its label: its text, content description, hint, the words of its resource
id, the row it sits in, and — from the atlas — where it leads ("leads to the 'About' screen about
'Frequently asked questions', …", the captioner's functional memory, `appatlas.rag.captioner.leads_to`).
All of it is one sentence, embedded with all-MiniLM-L6-v2 (`appatlas.rag.embed`, the model the rag
store uses), and compared with the intent by cosine. So "send a text message" meets a button whose
content description is 'SMS', and "see the app's version" meets the overflow menu that leads to
'About', on apps nobody wrote rules for.

The functional memory is read from the agent's `Knowledge` (the transitions it may use), so a task
removed from the knowledge (`Knowledge.without`) takes its demonstration's edges out of it too.
Vectors are cached by text across decisions and tasks; only new texts are embedded.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from appatlas.agent.knowledge import Knowledge
from appatlas.agent.options import Option, describe_option
from appatlas.agent.valuing import same_option
from appatlas.types import ActionKind

__all__ = ["Meaning", "element_text"]

_CACHE: dict[str, np.ndarray] = {}  # text -> unit vector, shared by every Meaning in the process
_CACHE_MAX = 200_000
_LOCK = threading.Lock()


def element_text(o: Option) -> str:
    """Everything an element says about itself, in one line (without where it leads)."""
    from appatlas.rag.text import id_words

    if o.kind is ActionKind.BACK:
        return "go back to the previous screen"
    parts = [describe_option(o)]
    for w in (o.widget, o.receiver):
        if w is None:
            continue
        parts += [w.content_desc.strip(), w.hint.strip(), " ".join(id_words(w.resource_id))]
    if o.checkable:
        parts.append("switch")
    return "; ".join(dict.fromkeys(p for p in parts if p))


class Meaning:
    """Semantic similarity between an intent and the options of a screen, over one app's knowledge."""

    def __init__(self, knowledge: Knowledge, *, embedder: Any = None) -> None:
        self.knowledge = knowledge
        self._embedder = embedder
        self._memory: dict[tuple[str, str], str] = {}
        self._places: dict[str, str] = {}

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from appatlas.rag.embed import text_embedder

            self._embedder = text_embedder()
        return self._embedder

    # --- what an element leads to -------------------------------------------------------------------

    def memory(self, key: str, o: Option) -> str:
        """The functional memory of `o` on the screen `key`: where the atlas says it leads ("" if nowhere)."""
        if o.widget is None and o.kind is not ActionKind.BACK or o.kind is ActionKind.BACK:
            return ""
        ident = (key, describe_option(o) + "|" + (o.widget.resource_id if o.widget else ""))
        if ident not in self._memory:
            targets = sorted({t.target_key for t in self.knowledge.out(key)
                              if t.target_key != key and same_option(t.action, o)})
            self._memory[ident] = "; ".join(self._place(k) for k in targets[:2])
        return self._memory[ident]

    def _place(self, key: str) -> str:
        if key not in self._places:
            from appatlas.rag.captioner import leads_to
            from appatlas.rag.describe import screen_facts

            info = self.knowledge.screens.get(key)
            screen = self.knowledge.state_screens.get(info.states[0]) if info else None
            self._places[key] = leads_to(screen_facts(screen)) if screen is not None else ""
        return self._places[key]

    def describe(self, key: str, o: Option) -> str:
        """The sentence embedded for `o`: what it says and where it leads."""
        lead = self.memory(key, o)
        return f"{element_text(o)}; {lead}" if lead else element_text(o)

    def prepare(self, *, per_screen: int = 2) -> int:
        """Embed, ahead of any decision, what the options of the known screens say and lead to (the first
        `per_screen` states of each): the functional memory is built offline, not while deciding.
        Returns how many texts were new."""
        texts = [self.describe(key, o) for key, info in self.knowledge.screens.items()
                 for sid in info.states[:per_screen] for o in self.knowledge.options_of(sid)]
        with _LOCK:
            new = len({t for t in texts if t not in _CACHE})
        self.vectors(texts)
        return new

    # --- comparing --------------------------------------------------------------------------------

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of `texts`, embedding only those not seen before."""
        with _LOCK:
            new = list(dict.fromkeys(t for t in texts if t not in _CACHE))
        if new:
            rows = self.embedder.encode(new)
            with _LOCK:
                if len(_CACHE) + len(new) > _CACHE_MAX:
                    _CACHE.clear()
                _CACHE.update(zip(new, np.asarray(rows, dtype=np.float32), strict=True))
        with _LOCK:
            return np.stack([_CACHE[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)

    def similarities(self, intent: str, key: str, opts: Sequence[Option]) -> list[float]:
        """Cosine between the intent and what each option says and leads to."""
        if not opts:
            return []
        vecs = self.vectors([intent, *(self.describe(key, o) for o in opts)])
        return [float(x) for x in vecs[1:] @ vecs[0]]
