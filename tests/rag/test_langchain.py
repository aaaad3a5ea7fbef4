from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda

from appatlas.rag.langchain import AtlasRetriever
from appatlas.rag.store import RagStore


@pytest.fixture
def store(open_atlas, embedder) -> RagStore:
    return RagStore.open(open_atlas(), embedder=embedder)


def test_the_retriever_returns_documents_with_screen_ids(store) -> None:
    docs = AtlasRetriever(store=store, k=3).invoke("settings with autosave")
    assert docs and all(isinstance(d, Document) for d in docs)
    top = docs[0].metadata
    assert top["subject"] == f"screen:{top['key']}" and top["states"]
    assert top["activity"].endswith("SettingsActivity")


def test_transition_documents_name_their_source_and_target_screens(store) -> None:
    doc = AtlasRetriever(store=store, collection="transitions", k=1).invoke("turn off autosave")[0]
    assert {"id", "source", "target", "action"} <= set(doc.metadata)
    assert "Autosave" in doc.page_content


def test_the_retriever_composes_in_a_langchain_chain(store) -> None:
    chain = AtlasRetriever(store=store, k=2) | RunnableLambda(lambda docs: [d.metadata["key"] for d in docs])
    assert len(chain.invoke("add a new note dialog")) == 2


def test_an_unknown_collection_or_a_foreign_store_is_refused(store) -> None:
    with pytest.raises(ValueError, match="screens"):
        AtlasRetriever(store=store, collection="nope")
    with pytest.raises(TypeError):
        AtlasRetriever(store=object())
