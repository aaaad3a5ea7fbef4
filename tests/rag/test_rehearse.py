"""The agent's decisions rehearsed on the atlas become the plan (appatlas.agent.rehearse)."""

from __future__ import annotations

import pytest

from appatlas.agent.knowledge import Knowledge
from appatlas.agent.rehearse import rehearse, rehearser
from appatlas.rag.plan import plan_from_retrieval
from appatlas.rag.retrieve import Retriever
from appatlas.rag.store import RagStore
from appatlas.rag.views import atlas_views
from appatlas.types import ActionKind


@pytest.fixture
def atlas(open_atlas):
    return open_atlas()


def _retriever(atlas, embedder, *, rehearsed: bool) -> Retriever:
    views = atlas_views(atlas)
    return Retriever(atlas, RagStore.open(atlas, embedder=embedder), views=views,
                     rehearse=rehearser(atlas, views.plan_graph) if rehearsed else None)


def test_a_rehearsal_walks_atlas_edges_to_where_the_agent_is_done(atlas) -> None:
    views = atlas_views(atlas)
    main = views.launch[0]
    r = rehearse(Knowledge.from_atlas(atlas), views.plan_graph, "disable autosave notes", main)
    assert r is not None and r.done
    labels = [views.transitions[views.plan_graph.edges[e]["transition"]].facts.label for e in r.edges]
    assert labels == ["More options", "Settings", "Autosave notes"]
    assert all(views.plan_graph.has_edge(*e) for e in r.edges) and r.edges[0][0] == main


def test_the_rehearsed_route_is_the_plan_and_says_why(atlas, embedder) -> None:
    retrieval = _retriever(atlas, embedder, rehearsed=True).retrieve("Create a note named 'Milk'")
    assert all(kt.reason.startswith("the agent, rehearsed") for kt in retrieval.key_transitions)
    assert retrieval.rehearsal.startswith("finished: the intent is realised")
    test = plan_from_retrieval(atlas_views(atlas), retrieval).test
    typed = [s.action.text for s in test.steps if s.action.kind is ActionKind.TYPE]
    assert typed == ["Milk"] and test.steps[-1].action.target.text == "OK"


def test_an_unfinished_rehearsal_leaves_retrieval_its_own_routes(atlas, embedder) -> None:
    intent = "export all notes to the cloud drive"  # nothing of the atlas does it: the agent never says done
    views = atlas_views(atlas)
    r = rehearse(Knowledge.from_atlas(atlas), views.plan_graph, intent, views.launch[0])
    assert r is None or not r.done
    with_rehearsal = _retriever(atlas, embedder, rehearsed=True).retrieve(intent)
    without = _retriever(atlas, embedder, rehearsed=False).retrieve(intent)
    assert [rt.edges for rt in with_rehearsal.routes] == [rt.edges for rt in without.routes]
    assert with_rehearsal.rehearsal.startswith("unfinished: ") and not without.rehearsal
