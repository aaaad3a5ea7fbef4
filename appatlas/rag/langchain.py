"""A LangChain retriever over an atlas's index, so the store plugs into LangChain chains.

    retriever = AtlasRetriever(store=RagStore.open(atlas), collection="screens", k=5)
    docs = retriever.invoke("disable autosave")   # list[Document]

Each Document's `page_content` is the caption; its `metadata` carries what a chain needs to act
on the hit: `subject` ("screen:<key>" / "transition:<id>" / "task:<name>"), `score`, `dense`,
`lexical`, and the collection's own fields — for screens `key` (structure key), `states`
(state ids), `activity`; for transitions `id`, `source`, `target`, `action`.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from appatlas.rag.store import RagStore

__all__ = ["AtlasRetriever"]


class AtlasRetriever(BaseRetriever):
    """Hybrid (MiniLM cosine + BM25) retrieval of screens, transitions or recorded tasks."""

    store: Any  # RagStore (pydantic cannot validate it; it is checked in model_post_init)
    collection: str = "screens"
    k: int = 5
    alpha: float = 0.6  # weight of the dense score against the lexical one

    def model_post_init(self, __context: Any) -> None:
        if not isinstance(self.store, RagStore):
            raise TypeError("AtlasRetriever needs store=RagStore.open(atlas)")
        if self.collection not in self.store.collections:
            raise ValueError(f"no collection {self.collection!r}; choose one of {sorted(self.store.collections)}")

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = self.store.search(self.collection, query, k=self.k, alpha=self.alpha)
        return [Document(page_content=h.text,
                         metadata={"subject": h.subject, "score": h.score, "dense": h.dense, "lexical": h.lexical,
                                   "collection": self.collection, **h.meta}) for h in hits]
