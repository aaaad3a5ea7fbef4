"""One searchable collection: documents, their FAISS index (dense) and a BM25 index (lexical).

Saved as `<name>.faiss` (FAISS's own format) and `<name>.json` (the documents). A document may
own several vectors (a screenshot and its scrolled variants); FAISS ids are `doc_id * SLOTS +
variant`, so a hit names its document without a lookup table. `sync` brings the collection in
line with a new list of documents, touching only the ones that changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from appatlas.rag.embed import content_id
from appatlas.rag.lexical import BM25

__all__ = ["Collection", "Doc", "Hit"]

SLOTS = 8  # vectors a document may own

# One query vector at a time gains nothing from FAISS's OpenMP threads, and on a busy CPU their
# spin-waiting makes a 30,000-vector search ten times slower (measured: 50 ms vs 5 ms).
faiss.omp_set_num_threads(1)


@dataclass
class Doc:
    subject: str  # "screen:<key>", "transition:<id>", "task:<name>", "state:<id>"
    text: str  # what is embedded (a caption, an intent) — for images, a content id
    words: str = ""  # what BM25 reads (caption + texts); empty: not lexically searchable
    meta: dict[str, Any] = field(default_factory=dict)
    id: int = -1
    digest: str = ""  # of what the vectors were made from
    vectors: int = 1  # how many vectors it owns in the index

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "subject": self.subject, "text": self.text, "words": self.words, "meta": self.meta,
                "digest": self.digest, "vectors": self.vectors}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Doc:
        return cls(subject=d["subject"], text=d["text"], words=d.get("words", ""), meta=d.get("meta", {}),
                   id=int(d["id"]), digest=d.get("digest", ""), vectors=int(d.get("vectors", 1)))


@dataclass
class Hit:
    subject: str
    score: float
    dense: float
    lexical: float
    meta: dict[str, Any]
    text: str


Encoder = Callable[[list[Doc]], list[np.ndarray]]  # one (n_vectors, dim) array per document


class Collection:
    def __init__(self, name: str, dim: int, *, exact: bool = False) -> None:
        self.name, self.dim = name, dim
        self.docs: list[Doc] = []
        # vectors kept as float16: a search reads half the memory (a 30,000-vector scan ~28% faster on a
        # busy machine, measured), and scores move by < 1e-4 — far below what separates two documents.
        # `exact` keeps float32: vectors read back are the embedder's own (the agent compares them itself).
        inner = faiss.IndexFlatIP(dim) if exact else faiss.IndexScalarQuantizer(
            dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        self.index = faiss.IndexIDMap2(inner)
        self._by_subject: dict[str, int] = {}
        self._by_id: dict[int, int] = {}
        self._bm25: BM25 | None = None
        self._most_vectors = 1
        self._next = 0

    def __len__(self) -> int:
        return len(self.docs)

    @property
    def bm25(self) -> BM25 | None:
        """The lexical index (None when no document has words); its idf weighs query terms."""
        return self._bm25

    # --- persistence -------------------------------------------------------------------------

    @classmethod
    def load(cls, folder: Path, name: str, dim: int) -> Collection:
        col = cls(name, dim)
        index = faiss.read_index(str(folder / f"{name}.faiss"))
        if index.d != dim:
            raise ValueError(f"{name}.faiss has dimension {index.d}, expected {dim}")
        col.index = index
        data = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        col.docs = [Doc.from_json(d) for d in data["docs"]]
        col._next = int(data.get("next", len(col.docs)))
        col._reindex()
        return col

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{self.name}.faiss.tmp"
        faiss.write_index(self.index, str(tmp))
        tmp.replace(folder / f"{self.name}.faiss")
        tmp_json = folder / f"{self.name}.json.tmp"
        tmp_json.write_text(json.dumps({"next": self._next, "docs": [d.to_json() for d in self.docs]}),
                            encoding="utf-8")
        tmp_json.replace(folder / f"{self.name}.json")

    def _reindex(self) -> None:
        self._by_subject = {d.subject: i for i, d in enumerate(self.docs)}
        self._by_id = {d.id: i for i, d in enumerate(self.docs)}
        # doc id -> position, as an array: turning FAISS ids into documents is one numpy gather
        self._pos = np.full(max((d.id for d in self.docs), default=-1) + 1, -1, dtype=np.int64)
        for i, d in enumerate(self.docs):
            self._pos[d.id] = i
        self._most_vectors = max((d.vectors for d in self.docs), default=1)
        self._bm25 = BM25([d.words for d in self.docs]) if any(d.words for d in self.docs) else None

    # --- updating ----------------------------------------------------------------------------

    def sync(self, docs: Sequence[Doc], encode: Encoder) -> dict[str, int]:
        """Make the collection hold exactly `docs`; (re-)embed only new or changed ones.

        Returns counts: added, changed, removed, kept.
        """
        counts = {"added": 0, "changed": 0, "removed": 0, "kept": 0}
        wanted = {d.subject: d for d in docs}
        gone = [d for d in self.docs if d.subject not in wanted]
        todo: list[Doc] = []
        remove_ids: list[int] = []
        for d in gone:
            remove_ids.extend(d.id * SLOTS + v for v in range(SLOTS))
            counts["removed"] += 1
        kept: list[Doc] = []
        for d in docs:
            d.digest = content_id(d.text)
            old = self.docs[self._by_subject[d.subject]] if d.subject in self._by_subject else None
            if old is not None and old.digest == d.digest:
                d.id, d.vectors = old.id, old.vectors
                kept.append(d)
                counts["kept"] += 1
                continue
            if old is not None:
                d.id = old.id
                remove_ids.extend(old.id * SLOTS + v for v in range(SLOTS))
                counts["changed"] += 1
            else:
                d.id = self._next
                self._next += 1
                counts["added"] += 1
            todo.append(d)
        if remove_ids:
            self.index.remove_ids(np.asarray(remove_ids, dtype=np.int64))
        if todo:
            vectors = encode(todo)
            for d, vecs in zip(todo, vectors, strict=True):
                vecs = np.atleast_2d(np.asarray(vecs, dtype=np.float32))[:SLOTS]
                d.vectors = len(vecs)
                ids = d.id * SLOTS + np.arange(len(vecs), dtype=np.int64)
                self.index.add_with_ids(vecs, ids)
        self.docs = list(docs)
        self._reindex()
        return counts

    # --- searching ---------------------------------------------------------------------------

    def dense_scores(self, qvec: np.ndarray) -> np.ndarray:
        """Best inner product of `qvec` with each document's vectors (-1 where a document has none)."""
        out = np.full(len(self.docs), -1.0, dtype=np.float32)
        if self.index.ntotal == 0:
            return out
        sims, ids = self.index.search(np.atleast_2d(qvec).astype(np.float32), self.index.ntotal)
        self._scatter(out, sims[0], ids[0])
        return out

    def _scatter(self, out: np.ndarray, sims: np.ndarray, ids: np.ndarray) -> None:
        keep = ids >= 0
        docs = ids[keep] // SLOTS
        docs = docs[docs < len(self._pos)]
        pos = self._pos[docs]
        ok = pos >= 0
        np.maximum.at(out, pos[ok], sims[keep][: len(pos)][ok])

    def _dense_top(self, qvec: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions and scores of the `k` documents nearest to `qvec` (FAISS does the search)."""
        n = self.index.ntotal
        if n == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        # k documents own at most k * (most vectors of one document) vectors: a text collection (one
        # vector each) asks FAISS for k, not k * SLOTS (a smaller heap: measurably faster at 30,000)
        sims, ids = self.index.search(np.atleast_2d(qvec).astype(np.float32), min(n, k * self._most_vectors))
        if self._most_vectors == 1:  # one vector per document: no document is hit twice, nothing to merge
            docs = ids[0] // SLOTS
            hit = (ids[0] >= 0) & (docs < len(self._pos))
            pos, val = self._pos[docs[hit]], sims[0][hit]
            order = np.argsort(pos[pos >= 0])
            return pos[pos >= 0][order], val[pos >= 0][order]
        best = np.full(len(self.docs), -np.inf, dtype=np.float32)
        self._scatter(best, sims[0], ids[0])
        pos = np.flatnonzero(np.isfinite(best))
        return pos, best[pos]

    def _dense_of(self, qvec: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Exact dense scores of a few documents (their vectors read back from the index)."""
        out = np.full(len(positions), -1.0, dtype=np.float32)
        owners = [(j, self.docs[int(p)]) for j, p in enumerate(positions)]
        ids = np.asarray([d.id * SLOTS + v for _, d in owners for v in range(d.vectors)], dtype=np.int64)
        if not len(ids):
            return out
        sims = self.index.reconstruct_batch(ids) @ np.asarray(qvec, dtype=np.float32)  # one call, not one per vector
        rows = np.repeat([j for j, _ in owners], [d.vectors for _, d in owners])
        np.maximum.at(out, rows, sims.astype(np.float32))
        return out

    def lexical_scores(self, query: str | Sequence[str]) -> np.ndarray:
        if self._bm25 is None:
            return np.zeros(len(self.docs), dtype=np.float32)
        return self._bm25.scores(query)

    def search(self, qvec: np.ndarray | None, query: str | Sequence[str] = "", *, k: int = 10,
               alpha: float = 0.6, pool: int = 64) -> list[Hit]:
        """The `k` best documents by `alpha * cosine + (1 - alpha) * BM25 / max BM25`.

        Candidates are the `pool` nearest by FAISS and the `pool` best by BM25; only they are
        scored both ways, so a query costs the same whether the atlas has 100 screens or 10,000.
        """
        if not self.docs:
            return []
        lex = self.lexical_scores(query) if query else np.zeros(len(self.docs), dtype=np.float32)
        top = float(lex.max()) if len(lex) else 0.0
        lex_n = lex / top if top > 0 else lex
        if qvec is None:
            order = np.argsort(-lex_n)[:k]
            return [Hit(self.docs[i].subject, float(lex_n[i]), 0.0, float(lex_n[i]), self.docs[i].meta,
                        self.docs[i].text) for i in order]
        pool = max(pool, k)
        dense_pos, dense_val = self._dense_top(qvec, pool)
        lex_pos = np.argpartition(-lex_n, min(pool, len(lex_n)) - 1)[:pool] if top > 0 else np.zeros(0, np.int64)
        lex_pos = lex_pos[lex_n[lex_pos] > 0]
        extra = np.setdiff1d(lex_pos, dense_pos)
        positions = np.concatenate([dense_pos, extra]).astype(np.int64)
        dense = np.concatenate([dense_val, self._dense_of(qvec, extra)])
        score = alpha * dense + (1 - alpha) * lex_n[positions]
        order = np.argsort(-score)[:k]
        return [Hit(self.docs[int(positions[i])].subject, float(score[i]), float(dense[i]),
                    float(lex_n[positions[i]]), self.docs[int(positions[i])].meta, self.docs[int(positions[i])].text)
                for i in order]

    def vectors_of(self, docs: Sequence[Doc]) -> np.ndarray:
        """The (first) vector of each of `docs`, read back from the index."""
        if not docs:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids = np.asarray([d.id * SLOTS for d in docs], dtype=np.int64)
        return np.asarray(self.index.reconstruct_batch(ids), dtype=np.float32)

    def doc(self, subject: str) -> Doc | None:
        i = self._by_subject.get(subject)
        return None if i is None else self.docs[i]
