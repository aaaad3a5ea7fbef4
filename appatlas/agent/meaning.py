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
from appatlas.agent.options import Option, describe_option, is_dialog
from appatlas.agent.valuing import same_option
from appatlas.types import ActionKind

__all__ = ["Meaning", "element_text"]

_CACHE: dict[str, np.ndarray] = {}  # text -> unit vector, shared by every Meaning in the process
_CACHE_MAX = 200_000
_LOCK = threading.Lock()


def element_text(o: Option) -> str:
    """Everything an element says about itself, in one line (without where it leads): the captioner's
    recipe (`appatlas.rag.captioner.element_text`), the one the retrieval store indexes elements with."""
    from appatlas.rag.captioner import element_text as said

    return said(describe_option(o), (o.widget, o.receiver), checkable=o.checkable, back=o.kind is ActionKind.BACK)


def _identity(resource_id: str, content_desc: str, text: str) -> tuple[str, str, str] | None:
    """A control's identity across screens: its id and words; None for one that says nothing of itself."""
    if not (resource_id or content_desc):
        return None  # a plain text row ('Bob') is content, not a control that means the same everywhere
    return resource_id, content_desc.strip(), text.strip()


def _option_key(key: str, o: Option) -> tuple[str, str]:
    """An option of the screen `key` as the caches know it: what it says and its resource id."""
    return key, describe_option(o) + "|" + (o.widget.resource_id if o.widget else "")


class Meaning:
    """Semantic similarity between an intent and the options of a screen, over one app's knowledge."""

    def __init__(self, knowledge: Knowledge, *, embedder: Any = None) -> None:
        self.knowledge = knowledge
        self._embedder = embedder
        self._memory: dict[tuple[str, str], str] = {}
        self._places: dict[str, Any] = {}
        self._reach: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._by_control: dict[tuple[str, tuple[str, str, str]], set[str]] | None = None
        self._sentences: dict[int, list[str]] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Travels with its knowledge to other processes (a Ray farm's ray.put): the embedder is a loaded model
        # behind a lock, so each process loads its own when it first embeds something.
        return {**self.__dict__, "_embedder": None}

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
        ident = _option_key(key, o)
        if ident not in self._memory:
            from appatlas.rag.captioner import functional_memory

            self._memory[ident] = functional_memory([f for f in map(self._facts, self.targets(key, o)[:2]) if f])
        return self._memory[ident]

    def targets(self, key: str, o: Option) -> list[str]:
        """The screens `o` leads to from `key`. A control never taken on this screen leads where the same
        control (the same resource id, description and text) led from another screen of the same activity: a
        toolbar's overflow icon opens the same menu on every tab of it, and the crawl pressed it on some."""
        if o.kind is ActionKind.BACK or o.widget is None:
            return []
        seen = sorted({t.target_key for t in self.knowledge.out(key) if t.target_key != key
                       and same_option(t.action, o)})
        if seen:
            return seen
        ident = _identity(o.widget.resource_id, o.widget.content_desc, o.widget.text)
        info = self.knowledge.screens.get(key)
        if ident is None or info is None:
            return []
        return sorted(self._controls().get((info.activity, ident), set()) - {key})

    def _controls(self) -> dict[tuple[str, tuple[str, str, str]], set[str]]:
        """(activity, control identity) -> the screens that control was seen to open (`targets`)."""
        if self._by_control is None:
            table: dict[tuple[str, tuple[str, str, str]], set[str]] = {}
            for t in self.knowledge.transitions:
                info = self.knowledge.screens.get(t.source_key)
                sel = t.action.target
                if info is None or sel is None or t.target_key == t.source_key \
                        or t.action.kind not in (ActionKind.TAP, ActionKind.LONG_TAP):
                    continue
                ident = _identity(sel.resource_id, sel.content_desc, sel.text)
                # Behind a dialog the activity's toolbar is still in the tree, but a tap there only closes it.
                if ident is not None and not self._dialog(t.source_key):
                    table.setdefault((info.activity, ident), set()).add(t.target_key)
            self._by_control = table
        return self._by_control

    def _dialog(self, key: str) -> bool:
        info = self.knowledge.screens.get(key)
        screen = self.knowledge.state_screens.get(info.states[0]) if info else None
        return screen is not None and is_dialog(screen)

    def reach(self, key: str, o: Option, *, per_screen: int = 40) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """What `o` opens the way to: (the labels of the screens it leads to, the labels of the screens those
        lead to in one more step), so "see the frequently asked questions" meets 'More options' -> 'About' ->
        'Frequently asked questions' by meaning, where no word of the control says so."""
        ident = _option_key(key, o)
        if ident in self._reach:
            return self._reach[ident]
        first = self.targets(key, o)
        near = self._labels(first, per_screen)
        second = sorted({t.target_key for k in first for t in self.knowledge.out(k)
                         if t.target_key not in (k, key) and t.target_key not in first})
        far = tuple(x for x in self._labels(second, per_screen) if x not in near)
        self._reach[ident] = (near, far)
        return near, far

    def _labels(self, keys: Sequence[str], per_screen: int) -> tuple[str, ...]:
        out: dict[str, None] = {}
        for k in keys:
            info = self.knowledge.screens.get(k)
            if info is not None:
                out |= dict.fromkeys(label for label, ws in info.labels[:per_screen] if ws)
        return tuple(out)

    def _facts(self, key: str) -> Any:
        """What the screen `key` shows (`appatlas.rag.describe.ScreenFacts`), None when it is not known."""
        if key not in self._places:
            from appatlas.rag.describe import screen_facts

            info = self.knowledge.screens.get(key)
            screen = self.knowledge.state_screens.get(info.states[0]) if info else None
            self._places[key] = screen_facts(screen) if screen is not None else None
        return self._places[key]

    def describe(self, key: str, o: Option) -> str:
        """The sentence embedded for `o`: what it says and where it leads (`rag.captioner.element_sentence`,
        the sentence the retrieval store holds for the elements of the atlas)."""
        from appatlas.rag.captioner import element_sentence

        return element_sentence(element_text(o), self.memory(key, o))

    def state_sentences(self, key: str, sid: int) -> list[str]:
        """`describe` of each of the options of the known state `sid` of the screen `key`
        (`Knowledge.options_of`), made once: the store's elements are these sentences, and `prepare` embeds
        those of the first states of each screen."""
        if sid not in self._sentences:
            self._sentences[sid] = [self.describe(key, o) for o in self.knowledge.options_of(sid)]
        return self._sentences[sid]

    def prepare(self, *, per_screen: int = 2) -> int:
        """Embed, ahead of any decision, what the options of the known screens say and lead to (the first
        `per_screen` states of each): the functional memory is built offline, not while deciding.
        Returns how many texts were new."""
        texts = [t for key, info in self.knowledge.screens.items() for sid in info.states[:per_screen]
                 for t in self.state_sentences(key, sid)]
        # and every label a screen offers: what an option opens the way to (`reach`) is compared label by label
        texts += [label for info in self.knowledge.screens.values() for label, ws in info.labels if ws]
        with _LOCK:
            new = len({t for t in texts if t not in _CACHE})
        self.vectors(texts)
        return new

    # --- comparing --------------------------------------------------------------------------------

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of `texts`: those the knowledge's store indexed as read from it, the others embedded
        (once: only texts not seen before)."""
        with _LOCK:
            unseen = [t for t in texts if t not in _CACHE]
        stored = self.knowledge.stored_vectors(unseen) if unseen and self.knowledge is not None else {}
        with _LOCK:
            _CACHE.update(stored)
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
