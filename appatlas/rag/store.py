"""The retrieval store: FAISS indexes beside an Atlas, in `ATLAS/index/`.

    index/
      manifest.json        what the index was built from (atlas signature, embedders, captioner)
      screens.faiss/.json  one document per screen (structure key): caption + every word it shows
      transitions.faiss/.json  one per graph edge: caption of what the action does
      tasks.faiss/.json    recorded tasks and executed tests: intent -> path (experience)
      shots.faiss/.json    screenshots of states (with scrolled variants), when the atlas has or renders them
      cache/               embeddings by content key (.npy + .json)

`build_index` creates or incrementally updates it; `RagStore.open` refuses an index the atlas
has outgrown (`IndexStale`, with the command that fixes it). Search is hybrid: cosine of
all-MiniLM-L6-v2 embeddings and BM25 over captions and screen texts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
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

__all__ = ["INDEX_DIR", "RagStore", "atlas_signature", "build_index"]

INDEX_DIR = "index"
VERSION = 1
Progress = Callable[[str, int, int], None]
TEXT_COLLECTIONS = ("screens", "transitions", "tasks")


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
        except (OSError, RuntimeError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise IndexStale(f"the index of {atlas.folder} is incomplete or damaged ({exc}); run "
                             f"`appatlas index {atlas.folder} --rebuild`") from exc
        return cls(folder=folder, collections=cols, manifest=manifest, embedder=emb)

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


def build_index(atlas: Atlas, *, captioner: str = "heuristic", screenshots: str = "auto", rebuild: bool = False,
                embedder: TextEmbedder | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Create or update `atlas`'s index; only what changed is embedded again.

    `screenshots`: "auto" indexes the screenshots the atlas has, "render" also renders wireframes
    for states without one, "off" skips them. Returns per-collection counts.
    """
    folder = atlas.folder / INDEX_DIR
    emb = embedder or text_embedder()
    if rebuild and folder.exists():
        for path in folder.glob("*"):
            if path.is_file():
                path.unlink()
    views = atlas_views(atlas)
    captions = _captions(atlas, views, captioner)
    cache = EmbeddingCache(folder / "cache", f"text-{emb.name}", emb.dim)

    def encode_text(docs: list[Doc]) -> list[np.ndarray]:
        vecs = cache.embed([d.text for d in docs], emb.encode)
        return [v[None, :] for v in vecs]

    wanted = {"screens": _screen_docs(views, captions), "transitions": _transition_docs(views, captions),
              "tasks": _task_docs(atlas)}
    report: dict[str, Any] = {}
    manifest_ok = (folder / "manifest.json").is_file() and not rebuild
    for i, (name, docs) in enumerate(wanted.items()):
        if progress is not None:
            progress("index", i + 1, len(wanted) + 1)
        col = _load_or_new(folder, name, emb.dim, manifest_ok)
        report[name] = col.sync(docs, encode_text)
        col.save(folder)
    cache.save()
    if screenshots != "off":
        shots = ScreenshotEmbedder()
        docs, images = _shot_docs(atlas, views, render=screenshots == "render")
        col = _load_or_new(folder, "shots", shots.dim, manifest_ok)
        report["shots"] = col.sync(docs, lambda ds: [shots.encode(images[d.subject]) for d in ds])
        col.save(folder)
    if progress is not None:
        progress("index", len(wanted) + 1, len(wanted) + 1)
    manifest = {"version": VERSION, "embedder": emb.name, "screenshot_embedder": ScreenshotEmbedder.name,
                "captioner": captioner, "atlas": atlas_signature(atlas, captioner), "launch": views.launch}
    tmp = folder / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    tmp.replace(folder / "manifest.json")  # written last: a half-built index is never taken for a whole one
    return report


def _load_or_new(folder: Path, name: str, dim: int, existing: bool) -> Collection:
    if existing and (folder / f"{name}.faiss").is_file():
        try:
            return Collection.load(folder, name, dim)
        except (OSError, RuntimeError, ValueError, KeyError, json.JSONDecodeError):
            pass  # damaged: start this collection over
    return Collection(name, dim)
