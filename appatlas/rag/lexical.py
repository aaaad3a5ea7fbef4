"""BM25 over documents' words: the lexical half of hybrid retrieval.

Exact words matter on app screens ("Autosave notes", "125%", "vcf") where a sentence embedding
blurs them. The index is a sparse matrix stored by column, and a query adds up only its own
terms' columns, so a query over 30,000 documents costs ~0.15 ms (a product with every row: ~0.5).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy import sparse

from appatlas.rag.text import tokens

__all__ = ["BM25"]


class BM25:
    """Okapi BM25 (k1=1.2, b=0.75) over `docs` (texts), scored for all documents at once."""

    def __init__(self, docs: Sequence[str], *, k1: float = 1.2, b: float = 0.75) -> None:
        self.vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        lengths = np.zeros(len(docs), dtype=np.float32)
        counted = []
        for i, doc in enumerate(docs):
            tf = Counter(tokens(doc))
            lengths[i] = sum(tf.values())
            counted.append(tf)
            for term in tf:
                self.vocab.setdefault(term, len(self.vocab))
        avg = float(lengths.mean()) if len(docs) else 0.0
        df = np.zeros(len(self.vocab), dtype=np.float32)
        for tf in counted:
            for term in tf:
                df[self.vocab[term]] += 1
        n = max(1, len(docs))
        self.idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        for i, tf in enumerate(counted):
            norm = k1 * (1 - b + b * lengths[i] / avg) if avg > 0 else k1
            for term, f in tf.items():
                j = self.vocab[term]
                rows.append(i)
                cols.append(j)
                vals.append(self.idf[j] * f * (k1 + 1) / (f + norm))
        # by column: a query reads only its own terms' columns, not every document's row
        self.matrix = sparse.csc_matrix((np.asarray(vals, dtype=np.float32), (rows, cols)),
                                        shape=(len(docs), len(self.vocab)))
        self.matrix.sort_indices()

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def query_terms(self, query: str | Sequence[str]) -> list[int]:
        """Column numbers of the query's distinct known terms, ascending."""
        terms = tokens(query) if isinstance(query, str) else list(query)
        return sorted({self.vocab[t] for t in terms if t in self.vocab})

    def scores(self, query: str | Sequence[str]) -> np.ndarray:
        """BM25 score of every document for `query` (a text, or already-made tokens)."""
        out = np.zeros(len(self), dtype=np.float32)
        m = self.matrix
        # the query's columns only: the sums a product with every row makes (up to the order of
        # the float32 additions), with a few thousand additions instead of one per stored entry
        for j in self.query_terms(query):
            lo, hi = m.indptr[j], m.indptr[j + 1]
            out[m.indices[lo:hi]] += m.data[lo:hi]
        return out
