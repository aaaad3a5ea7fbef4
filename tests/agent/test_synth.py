"""Synthetic decisions from a crawled atlas: paths over the graph, intents from captions, no recorded task."""

from __future__ import annotations

from appatlas.agent.options import BACK_OPTION
from appatlas.agent.synth import synthetic_decisions
from appatlas.agent.valuing import same_option


def test_decisions_follow_paths_of_the_atlas_and_read_no_recorded_task(demo_knowledge) -> None:
    decisions = synthetic_decisions(demo_knowledge, limit=60)
    assert len(decisions) >= 20
    tasks = {t.intent for t in demo_knowledge.tasks}
    assert not tasks & {d.intent for d in decisions}
    for d in decisions:
        # the answer is an option of the screen that the atlas says leads where the path goes next
        first = demo_knowledge.screens[d.screen].states[0]
        answer = [*demo_knowledge.options_of(first), BACK_OPTION][d.answer]
        assert any(same_option(t.action, answer) and t.target_key == d.target for t in demo_knowledge.out(d.screen))
    first = {d.intent: d for d in reversed(decisions)}  # the first decision of each intent
    assert all(d.history == () for d in first.values())
    # The last decision of an intent that names a control takes that control.
    last = [d for d in decisions if d.last and d.intent.startswith(("tap '", "turn on '"))]
    assert last and all(f"tap '{d.intent.split(chr(39))[1]}'" in d.options[d.answer] for d in last)
    assert synthetic_decisions(demo_knowledge, limit=60) == decisions  # seeded: the same data twice
