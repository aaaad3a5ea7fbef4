"""The retrieval store: FAISS indexes beside an Atlas, in `ATLAS/index/`.

    index/
      manifest.json        what the index was built from (atlas signature, embedders, captioner)
      screens.faiss/.json  one document per screen (structure key): caption + every word it shows
      transitions.faiss/.json  one per graph edge: caption of what the action does
      tasks.faiss/.json    recorded tasks and executed tests: intent -> path (experience)
      elements.faiss/.json one per element of a screen: its functional memory (what it says and where it
                           leads, `rag.captioner.element_sentence`) and the words of its label
      shots.faiss/.json    screenshots of states (with scrolled variants), when the atlas has or renders them
      cache/               embeddings by content key (.npy + .json)

`build_index` creates or incrementally updates it; `RagStore.open` refuses an index the atlas
has outgrown (`IndexStale`, with the command that fixes it). Search is hybrid: cosine of
all-MiniLM-L6-v2 embeddings and BM25 over captions and screen texts.

The elements are what the agent decides with (`appatlas.agent.knowledge`): which elements a screen offers
and what each leads to is read by the agent's own option reader, which rag may not import, so whoever
builds the index passes them (`ElementDoc`; `appatlas index` and `Knowledge.from_atlas` do). Their vectors
are kept exact (float32), and the agent's word weights are the inverse document frequencies of their
labels (`RagStore.word_weights`): the store is the one lexical and semantic index of the app.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from appatlas.devices.render import render_png
from appatlas.errors import IndexMissing, IndexStale
from appatlas.graph.atlas import Atlas
from appatlas.rag.captioner import HeuristicCaptioner, caption_atlas
from appatlas.rag.collection import Collection, Doc, Hit
from appatlas.rag.embed import EmbeddingCache, ScreenshotEmbedder, TextEmbedder, content_id, text_embedder
from appatlas.rag.shots import scrolled_variants
from appatlas.rag.text import camel_words
from appatlas.rag.views import AtlasViews, atlas_views, screen_subject, transition_subject

__all__ = ["ELEMENTS", "INDEX_DIR", "ElementDoc", "RagStore", "atlas_signature", "build_index", "element_subject",
           "word_weights"]

INDEX_DIR = "index"
VERSION = 1
Progress = Callable[[str, int, int], None]
TEXT_COLLECTIONS = ("screens", "transitions", "tasks")
ELEMENTS = "elements"


@dataclass(frozen=True)
class ElementDoc:
    """One element of one screen, as the store keeps it."""

    key: str  # the screen (structure key)
    sentence: str  # what it says and where it leads (`rag.captioner.element_sentence`): what is embedded
    label: str  # what a person reads on it
    words: tuple[str, ...]  # the words of its label, as the agent reads them: the terms of the word weights
    states: tuple[int, ...]  # the states of the screen that show it


def element_subject(key: str, sentence: str) -> str:
    return f"element:{key}:{content_id(sentence)[:16]}"


def word_weights(labels: Iterable[tuple[str, Sequence[str]]]) -> tuple[dict[str, float], float]:
    """Inverse document frequency of words over distinct labels, BM25's idf (log((n + 1) / (df + 0.5)), n
    labels), so rare words ("autosave") steer more than common ones ("note"); and the weight of a word no
    label has (log(n + 1))."""
    df: Counter[str] = Counter()
    seen: set[str] = set()
    for label, ws in labels:
        if label not in seen:
            seen.add(label)
            df.update(set(ws))
    n = max(len(seen), 1)
    return {w: math.log((n + 1) / (c + 0.5)) for w, c in df.items()}, math.log(n + 1)


def atlas_signature(atlas: Atlas, captioner: str = "heuristic") -> dict[str, Any]:
    """What an index depends on: the atlas's identity, its size, and a digest of captions and tasks."""
    counts = atlas.counts()
    captions = sorted(atlas.captions(captioner="heuristic").items())
    if captioner != "heuristic":
        captions += sorted(atlas.captions(captioner=captioner).items())
    tasks = [(t.name, t.intent, len(t.steps)) for t in atlas.tasks()]
    return {"created": atlas.get_meta("created"), "states": counts["states"],
            "transitions": counts["transitions"], "observations": counts["observations"],
            "tasks": counts["tasks"], "screenshots": counts["screenshots"],
            "captions": content_id(json.dumps(captions)), "tasks_digest": content_id(json.dumps(tasks))}


def _stale_reason(built: dict[str, Any], now: dict[str, Any]) -> str:
    if built.get("created") != now.get("created"):
        return "the atlas was re-created"
    grown = [f"{k} {built.get(k)}\u2192{now.get(k)}" for k in ("states", "transitions", "observations", "tasks",
                                                                 "screenshots") if built.get(k) != now.get(k)]
    if grown:
        return "the atlas changed (" + ", ".join(grown) + ")"
    if built.get("captions") != now.get("captions"):
        return "its captions changed"
    return "its recorded tasks changed"


@dataclass
class RagStore:
    """The open index of one atlas. Use `build_index` to make it, `RagStore.open` to use it."""

    folder: Path
    collections: dict[str, Collection]
    manifest: dict[str, Any]
    embedder: TextEmbedder
    shots: ScreenshotEmbedder = field(default_factory=ScreenshotEmbedder)

    @classmethod
    def open(cls, atlas: Atlas, *, embedder: TextEmbedder | None = None, check: bool = True) -> RagStore:
        """Open `atlas`'s index; raises IndexMissing or IndexStale with the command that fixes it."""
        folder = atlas.folder / INDEX_DIR
        manifest_path = folder / "manifest.json"
        if not manifest_path.is_file():
            raise IndexMissing(f"{atlas.folder} has no retrieval index yet; run `appatlas index {atlas.folder}`")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise IndexStale(f"the index of {atlas.folder} is damaged ({exc}); run "
                             f"`appatlas index {atlas.folder} --rebuild`") from exc
        if manifest.get("version") != VERSION:
            raise IndexStale(f"the index of {atlas.folder} was built by another appatlas version; run "
                             f"`appatlas index {atlas.folder} --rebuild`")
        if check:
            now = atlas_signature(atlas, manifest.get("captioner", "heuristic"))
            if manifest.get("atlas") != now:
                raise IndexStale(f"the index of {atlas.folder} is stale: {_stale_reason(manifest['atlas'], now)} "
                                 f"since it was built; run `appatlas index {atlas.folder}` to update it "
                                 f"(or `appatlas index {atlas.folder} --rebuild` to start over)")
        emb = embedder or text_embedder()
        cols = {}
        try:
            for name in TEXT_COLLECTIONS:
                cols[name] = Collection.load(folder, name, emb.dim)
            if (folder / "shots.faiss").is_file():
                cols["shots"] = Collection.load(folder, "shots", ScreenshotEmbedder().dim)
            # elements made from another state of the atlas (an index updated without them) are not its own
            if (folder / f"{ELEMENTS}.faiss").is_file() and manifest.get(ELEMENTS) == manifest.get("atlas"):
                cols[ELEMENTS] = Collection.load(folder, ELEMENTS, emb.dim)
        except (OSError, RuntimeError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise IndexStale(f"the index of {atlas.folder} is incomplete or damaged ({exc}); run "
                             f"`appatlas index {atlas.folder} --rebuild`") from exc
        return cls(folder=folder, collections=cols, manifest=manifest, embedder=emb)

    def __post_init__(self) -> None:
        self._by_sentence: dict[str, int] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Sent to other processes with the agent's knowledge (a Ray farm's phone actors): the embedder is a
        # loaded model behind a lock, so each process loads its own when it first embeds something.
        state = dict(self.__dict__)
        state["embedder"] = _LazyEmbedder(self.embedder.name, self.embedder.dim)
        state["_by_sentence"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # --- the elements (what the agent reads) ----------------------------------------------------------

    @property
    def has_elements(self) -> bool:
        return ELEMENTS in self.collections

    def element_docs(self, states: Container[int] | None = None) -> list[Doc]:
        """The element documents, only those shown by one of `states` when given (knowledge less a task)."""
        col = self.collections.get(ELEMENTS)
        if col is None:
            return []
        if states is None:
            return list(col.docs)
        return [d for d in col.docs if any(s in states for s in d.meta.get("states", ()))]

    def word_weights(self, states: Container[int] | None = None) -> tuple[dict[str, float], float]:
        """`word_weights` over the labels of the elements (of `states` only, when given)."""
        return word_weights((d.meta.get("label", ""), d.words.split()) for d in self.element_docs(states))

    def element_vectors(self, sentences: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of those `sentences` the elements collection holds (embedded when indexed)."""
        col = self.collections.get(ELEMENTS)
        if col is None:
            return {}
        if self._by_sentence is None:
            self._by_sentence = {d.text: i for i, d in enumerate(col.docs)}
        found = list(dict.fromkeys(t for t in sentences if t in self._by_sentence))
        vecs = col.vectors_of([col.docs[self._by_sentence[t]] for t in found])
        return dict(zip(found, vecs, strict=True))

    # --- searching ---------------------------------------------------------------------------

    def embed_query(self, text: str) -> np.ndarray:
        return self.embedder.encode([text])[0]

    def search(self, collection: str, query: str, *, k: int = 10, alpha: float = 0.6,
               qvec: np.ndarray | None = None, exclude: Sequence[str] = ()) -> list[Hit]:
        """Hybrid search of one collection (screens, transitions, tasks); `exclude` drops subjects."""
        col = self.collections[collection]
        vec = qvec if qvec is not None else self.embed_query(query)
        hits = col.search(vec, query, k=k + len(exclude), alpha=alpha)
        return [h for h in hits if h.subject not in set(exclude)][:k]

    def search_screenshot(self, image: bytes, *, k: int = 5) -> list[Hit]:
        """Screens whose screenshots look most like `image` (one hit per screen, best state first)."""
        col = self.collections.get("shots")
        if col is None or not len(col):
            raise IndexMissing(f"the index in {self.folder} has no screenshots; run `appatlas index "
                               f"{self.folder.parent} --screenshots render` to render them")
        dense = col.dense_scores(self.shots.describe(image))
        best: dict[str, tuple[float, int]] = {}
        for i in np.argsort(-dense):
            key = col.docs[i].meta["key"]
            if key not in best:
                best[key] = (float(dense[i]), int(i))
            if len(best) >= k:
                break
        return [Hit(screen_subject(key), s, s, 0.0, col.docs[i].meta, col.docs[i].text) for key, (s, i) in
                best.items()]


class _LazyEmbedder:
    """The process-wide text embedder, loaded on the first `encode` (an unpickled store's)."""

    def __init__(self, name: str, dim: int) -> None:
        self.name, self.dim = name, dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return text_embedder().encode(texts)


# --- building -------------------------------------------------------------------------------------


def _captions(atlas: Atlas, views: AtlasViews, captioner: str) -> dict[str, str]:
    """Captions by `captioner`, the heuristic ones where it has none (made now if missing)."""
    heuristic = atlas.captions(captioner="heuristic")
    subjects = [screen_subject(k) for k in views.screens] + [transition_subject(t) for t in views.transitions]
    if any(s not in heuristic for s in subjects):
        caption_atlas(atlas, HeuristicCaptioner(), views=views)
        heuristic = atlas.captions(captioner="heuristic")
    preferred = atlas.captions(captioner=captioner) if captioner != "heuristic" else {}
    return {s: preferred.get(s) or heuristic.get(s, "") for s in subjects}


def _screen_docs(views: AtlasViews, captions: dict[str, str]) -> list[Doc]:
    docs = []
    for key, v in views.screens.items():
        caption = captions[screen_subject(key)]
        docs.append(Doc(subject=screen_subject(key), text=caption, words=f"{caption} {v.facts.words()}",
                        meta={"key": key, "activity": v.facts.activity, "place": v.facts.place, "kind": v.facts.kind,
                              "states": v.states[:50], "launch": key in views.launch}))
    return docs


def _transition_docs(views: AtlasViews, captions: dict[str, str]) -> list[Doc]:
    docs = []
    for tid, t in views.transitions.items():
        caption = captions[transition_subject(tid)]
        target = views.screens.get(t.target)
        words = " ".join([caption, t.facts.label, t.facts.widget, " ".join(camel_words(t.action.kind.value)),
                          target.facts.title if target else ""])
        docs.append(Doc(subject=transition_subject(tid), text=caption, words=words,
                        meta={"id": tid, "source": t.source, "target": t.target, "action": t.action.key,
                              "kind": t.action.kind.value, "label": t.facts.label, "widget": t.facts.widget,
                              "reliability": t.reliability}))
    return docs


def _task_docs(atlas: Atlas) -> list[Doc]:
    keys = {s.id: s.structure_key for s in atlas.states()}
    docs = []
    for task in atlas.tasks():
        screens = [keys.get(s.state, "") for s in task.steps]
        docs.append(Doc(subject=f"task:{task.name}", text=task.intent, words=task.intent,
                        meta={"name": task.name, "origin": task.origin, "screens": screens}))
    return docs


def _shot_docs(atlas: Atlas, views: AtlasViews, render: bool) -> tuple[list[Doc], dict[str, list[bytes]]]:
    docs, images = [], {}
    for key, v in views.screens.items():
        for sid in v.states:
            screen = atlas.screen(sid, with_screenshot=True)
            image = screen.screenshot
            if image is None and render:
                image = render_png(screen.root, width=screen.width, height=screen.height)
            if image is None:
                continue
            subject = f"state:{sid}"
            images[subject] = [image, *scrolled_variants(image, screen)]
            docs.append(Doc(subject=subject, text=content_id(b"".join(images[subject])), meta={"key": key, "state": sid}))
    return docs, images


def _element_docs(elements: Iterable[ElementDoc]) -> list[Doc]:
    docs: dict[str, Doc] = {}
    for e in elements:
        subject = element_subject(e.key, e.sentence)
        if subject in docs:  # the same element on several states of the screen
            states = docs[subject].meta["states"]
            states += [s for s in e.states if s not in states]
            continue
        docs[subject] = Doc(subject=subject, text=e.sentence, words=" ".join(e.words),
                            meta={"key": e.key, "label": e.label, "states": list(e.states)})
    return list(docs.values())


def build_index(atlas: Atlas, *, captioner: str = "heuristic", screenshots: str = "auto", rebuild: bool = False,
                embedder: TextEmbedder | None = None, progress: Progress | None = None,
                elements: Iterable[ElementDoc] | None = None, cache: Path | None = None) -> dict[str, Any]:
    """Create or update `atlas`'s index; only what changed is embedded again.

    `screenshots`: "auto" indexes the screenshots the atlas has, "render" also renders wireframes
    for states without one, "off" skips them. `elements`: the elements of its screens (module
    docstring); None leaves the elements collection as it was (it is then not opened once the atlas
    has changed). `cache`: the embedding cache folder (default `index/cache`; one folder may serve
    many atlases). Returns per-collection counts.
    """
    folder = atlas.folder / INDEX_DIR
    emb = embedder or text_embedder()
    if rebuild and folder.exists():
        for path in folder.glob("*"):
            if path.is_file():
                path.unlink()
    previous: dict[str, Any] = {}
    if (folder / "manifest.json").is_file() and not rebuild:
        try:
            previous = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            previous = {}
    views = atlas_views(atlas)
    captions = _captions(atlas, views, captioner)
    cache_store = EmbeddingCache(cache if cache is not None else folder / "cache", f"text-{emb.name}", emb.dim)

    def encode_text(docs: list[Doc]) -> list[np.ndarray]:
        vecs = cache_store.embed([d.text for d in docs], emb.encode)
        return [v[None, :] for v in vecs]

    wanted = {"screens": _screen_docs(views, captions), "transitions": _transition_docs(views, captions),
              "tasks": _task_docs(atlas)}
    if elements is not None:
        wanted[ELEMENTS] = _element_docs(elements)
    report: dict[str, Any] = {}
    manifest_ok = (folder / "manifest.json").is_file() and not rebuild
    for i, (name, docs) in enumerate(wanted.items()):
        if progress is not None:
            progress("index", i + 1, len(wanted) + 1)
        col = _load_or_new(folder, name, emb.dim, manifest_ok, exact=name == ELEMENTS)
        report[name] = col.sync(docs, encode_text)
        col.save(folder)
    cache_store.save()
    if screenshots != "off":
        shots = ScreenshotEmbedder()
        docs, images = _shot_docs(atlas, views, render=screenshots == "render")
        col = _load_or_new(folder, "shots", shots.dim, manifest_ok)
        report["shots"] = col.sync(docs, lambda ds: [shots.encode(images[d.subject]) for d in ds])
        col.save(folder)
    if progress is not None:
        progress("index", len(wanted) + 1, len(wanted) + 1)
    signature = atlas_signature(atlas, captioner)
    manifest = {"version": VERSION, "embedder": emb.name, "screenshot_embedder": ScreenshotEmbedder.name,
                "captioner": captioner, "atlas": signature, "launch": views.launch,
                # the atlas the elements were made from: opened only while it is the atlas indexed
                ELEMENTS: signature if elements is not None else previous.get(ELEMENTS)}
    tmp = folder / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    tmp.replace(folder / "manifest.json")  # written last: a half-built index is never taken for a whole one
    return report


def _load_or_new(folder: Path, name: str, dim: int, existing: bool, *, exact: bool = False) -> Collection:
    if existing and (folder / f"{name}.faiss").is_file():
        try:
            return Collection.load(folder, name, dim)
        except (OSError, RuntimeError, ValueError, KeyError, json.JSONDecodeError):
            pass  # damaged: start this collection over
    return Collection(name, dim, exact=exact)
