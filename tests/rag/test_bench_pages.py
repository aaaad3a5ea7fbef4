"""How the retrieval benchmark reads a recorded step's screen (docs/retrieval.md, "Measured")."""

from __future__ import annotations

import pytest

from appatlas.bench.retrieval import _passes, recorded_pages
from appatlas.graph.atlas import Atlas


def test_a_plan_meets_each_page_in_order() -> None:
    pages = [frozenset({"a"}), frozenset({"b", "c"}), frozenset({"d"})]
    assert _passes(pages, ["a", "x", "c", "d"])
    assert _passes(pages, ["a", "b", "d"])
    assert not _passes(pages, ["a", "d", "c"])  # order matters
    assert not _passes(pages, ["a", "x", "d"])  # the page was skipped
    assert _passes([], ["a"])


@pytest.mark.data
def test_a_step_on_a_scrolled_page_lists_every_state_and_keeps_the_importers(imported, droidtask, tmp_path) -> None:
    _, folder = imported("contacts")
    with Atlas.open(folder) as atlas:
        keys = {s.id: s.structure_key for s in atlas.states()}
        assert recorded_pages(tmp_path, atlas) == {}  # no task files there: nothing read
        pages = recorded_pages(droidtask / "contacts", atlas)
        task = next(t for t in atlas.tasks() if t.name == "task14")
    steps = pages["task14"]
    assert len(steps) == len(task.steps)
    for step, page in zip(task.steps, steps, strict=True):
        assert keys[step.state] in page  # the importer's first state is always one of the page's
    assert len(steps[-1]) == 2  # "Show phone numbers" is on the scrolled half of the settings page
