"""Planning many intents on the farm: handed out to a planner on each host, the same plans as planning here."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

from appatlas.demo import DEMO_INTENTS  # noqa: E402
from appatlas.devices.virtual import open_app  # noqa: E402
from appatlas.errors import IndexStale  # noqa: E402
from appatlas.farm.plan import plan_on_farm  # noqa: E402
from appatlas.graph.atlas import Atlas  # noqa: E402
from appatlas.graph.crawler import CrawlConfig, crawl  # noqa: E402

NOT_GROUNDED = "order a pizza with extra cheese"
pytestmark = pytest.mark.model  # the real text embedder, here and in each host's planner


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    from appatlas.rag.captioner import HeuristicCaptioner, caption_atlas
    from appatlas.rag.plan import plan_intent
    from appatlas.rag.store import build_index

    device = open_app("demo", screenshots=False)
    folder = tmp_path_factory.mktemp("plan") / "demo.atlas"
    with Atlas.create(folder, app=device.spec.package) as atlas:
        crawl(device, atlas, package=device.spec.package, config=CrawlConfig(budget=400))
        caption_atlas(atlas, HeuristicCaptioner())
        build_index(atlas, screenshots="off")
    from appatlas.agent.rehearse import rehearser

    return folder, {i: plan_intent(folder, i, rehearse_with=rehearser).test for i in DEMO_INTENTS}


def test_many_intents_are_planned_by_planners_on_both_hosts_as_they_are_here(farm, indexed) -> None:
    folder, here = indexed
    intents = [*DEMO_INTENTS, NOT_GROUNDED]
    done = plan_on_farm(folder, intents, farm.address)
    assert len({p["node"] for p in done["planners"]}) == 2  # a planner on each host
    assert [p["intent"] for p in done["plans"]] == intents  # in the intents' order
    for plan in done["plans"][:-1]:
        assert plan["test"] == here[plan["intent"]], plan["intent"]  # the plan this machine makes
        assert plan["node"] in {p["node"] for p in done["planners"]}
    assert done["plans"][-1]["error"].startswith("IntentNotGrounded")  # an intent's failure is its answer


def test_a_stale_index_is_refused_before_anything_is_sent(farm, indexed, tmp_path) -> None:
    import shutil

    folder = tmp_path / "stale.atlas"
    shutil.copytree(indexed[0], folder)
    with Atlas.open(folder) as atlas:  # a caption changed after the atlas was indexed
        atlas.set_caption(next(iter(atlas.captions())), "changed after indexing", captioner="heuristic")
    with pytest.raises(IndexStale):
        plan_on_farm(folder, DEMO_INTENTS[:1], farm.address)
