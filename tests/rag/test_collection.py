"""One collection's search: BM25 read column by column, and the hybrid ranking over the candidate pool."""

from __future__ import annotations

import numpy as np
import pytest

from appatlas.rag.collection import Collection, Doc
from appatlas.rag.lexical import BM25
from appatlas.rag.text import tokens

WORDS = "note notes checklist sort date created settings autosave font size export print folder delete".split()


def _texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 9)))) + f" item{i}" for i in range(n)]


@pytest.mark.parametrize("query", ["sort notes by date created", "notes notes", "unknown words only", "", "item7"])
def test_bm25_scores_are_those_of_the_whole_matrix_product(query: str) -> None:
    bm25 = BM25(_texts(300, seed=1))
    q = np.zeros(len(bm25.vocab), dtype=np.float32)
    for t in set(tokens(query)):
        if t in bm25.vocab:
            q[bm25.vocab[t]] = 1.0
    assert np.allclose(bm25.scores(query), bm25.matrix.toarray() @ q, atol=1e-6)
    assert np.array_equal(bm25.scores(query), bm25.scores(tokens(query)))


def test_hybrid_search_ranks_as_scoring_every_document_would() -> None:
    rng = np.random.default_rng(3)
    texts = _texts(500, seed=2)
    vecs = rng.standard_normal((len(texts), 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    col = Collection("t", 16)
    col.sync([Doc(subject=f"d:{i}", text=f"d{i}", words=w, meta={"i": i}) for i, w in enumerate(texts)],
             lambda ds: [vecs[d.meta["i"]] for d in ds])
    for query in ("sort notes by date", "export folder", "font size"):
        qvec = rng.standard_normal(16).astype(np.float32)
        qvec /= np.linalg.norm(qvec)
        lex = col.lexical_scores(query)
        dense = col.dense_scores(qvec)
        pool = set(np.argsort(-dense)[:64]) | {i for i in np.argsort(-lex)[:64] if lex[i] > 0}
        full = {i: 0.6 * dense[i] + 0.4 * lex[i] / lex.max() for i in pool}
        want = sorted(full, key=lambda i: -full[i])[:10]
        hits = col.search(qvec, query, k=10)
        assert [h.subject for h in hits] == [f"d:{i}" for i in want]
        assert [h.score for h in hits] == pytest.approx([full[i] for i in want], abs=1e-3)
