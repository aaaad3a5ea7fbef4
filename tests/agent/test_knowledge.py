"""Knowledge from an atlas, and leaving a task out together with its demonstration."""

from __future__ import annotations

from dataclasses import replace

from appatlas.agent.knowledge import Knowledge
from appatlas.agent.localize import localize
from appatlas.devices.virtual import open_app
from appatlas.graph.atlas import RecordedStep, RecordedTask


def _with_demo(k: Knowledge) -> tuple[Knowledge, RecordedTask]:
    """The knowledge plus a recorded task demonstrated along one of its transitions (observed once)."""
    t = next(t for t in k.transitions if t.count == 1 and t.source_key != t.target_key)
    task = RecordedTask("task1", "do it", (RecordedStep(t.source, t.action), RecordedStep(t.target, None)), "droidtask")
    return Knowledge.build(package=k.package, screens=k.state_screens, state_key=k.state_key, content=k.content,
                           transitions=k.transitions, tasks=[task]), task


def test_leaving_a_task_out_drops_its_entry(demo_knowledge) -> None:
    k, task = _with_demo(demo_knowledge)
    assert [t.name for t in k.without("task1").tasks] == []


def test_leaving_a_task_out_drops_a_transition_only_its_demonstration_showed(demo_knowledge) -> None:
    k, task = _with_demo(demo_knowledge)
    a, b = task.steps[0].state, task.steps[1].state
    assert not any(t.source == a and t.target == b for t in k.without("task1").transitions)


def test_a_transition_seen_more_often_loses_one_observation(demo_knowledge) -> None:
    k, task = _with_demo(demo_knowledge)
    a, b = task.steps[0].state, task.steps[1].state
    seen_twice = [replace(t, count=2) if (t.source, t.target) == (a, b) else t for t in k.transitions]
    k2 = Knowledge.build(package=k.package, screens=k.state_screens, state_key=k.state_key, content=k.content,
                         transitions=seen_twice, tasks=k.tasks)
    left = [t for t in k2.without("task1").transitions if (t.source, t.target) == (a, b)]
    assert [t.count for t in left] == [1]


def test_rare_words_weigh_more_than_common_ones(demo_knowledge) -> None:
    assert demo_knowledge.weight("quiet") > demo_knowledge.weight("note")


def test_a_recorded_screen_is_localized_exactly(demo_knowledge) -> None:
    place = localize(open_app("demo", screenshots=False).snapshot(), demo_knowledge)
    assert place.how == "exact" and place.known


def test_a_screen_with_new_content_is_localized_by_structure(demo_knowledge) -> None:

    screen = open_app("demo", screenshots=False).snapshot()
    changed = replace(screen, root=_retext(screen.root, "Groceries", "Shopping"))
    assert localize(changed, demo_knowledge).how == "structure"


def _retext(w, old: str, new: str):
    kids = tuple(_retext(c, old, new) for c in w.children)
    return replace(w, text=w.text.replace(old, new), children=kids)


def test_states_of_one_scrolling_page_are_pages_of_each_other_but_not_of_another_activity() -> None:
    from appatlas.types import Bounds, Screen, Widget

    def page(activity: str, label: str) -> Screen:
        row = Widget("android.widget.TextView", Bounds(0, 100, 1080, 200), text=label, clickable=True,
                     package="com.x")
        scroll = Widget("android.widget.ScrollView", Bounds(0, 0, 1080, 2000), scrollable=True, package="com.x",
                        resource_id="com.x:id/settings_scroll", children=(row,))
        return Screen("com.x", activity, Widget("hierarchy", Bounds(0, 0, 1080, 2280), children=(scroll,)), 1080, 2280)

    screens = {1: page("Settings", "Font size"), 2: page("Settings", "Show word count"), 3: page("Main", "Notes")}
    k = Knowledge.build(package="com.x", screens=screens, state_key={1: "top", 2: "down", 3: "main"}, content={},
                        transitions=[], tasks=[])
    assert k.pages("top") == ["down"] and k.pages("down") == ["top"] and k.pages("main") == []


def test_the_agent_weighs_words_with_the_retrieval_store(demo_knowledge) -> None:
    store = demo_knowledge.store
    assert store is not None and store.has_elements  # from_atlas built it beside the atlas
    # Knowledge of fewer screens that reads the same store weighs words as the store does, not by its own labels.
    def labels(k: str) -> set[str]:
        return {label for label, _ in demo_knowledge.screens[k].labels}

    key = next(k for k in demo_knowledge.screens if labels(k) - set().union(*(labels(x) for x in demo_knowledge.screens
                                                                                if x != k)))
    sids = {s: v for s, v in demo_knowledge.state_screens.items() if demo_knowledge.state_key[s] != key}
    fewer = Knowledge.build(package="x", screens=sids, state_key={s: demo_knowledge.state_key[s] for s in sids},
                            content={}, transitions=[], tasks=[])
    fewer.store = store
    idf, default = store.word_weights()
    words = {w for _, ws in demo_knowledge.screens[key].labels for w in ws}
    assert all(fewer.weight(w) == idf.get(w, default) for w in words) and fewer.default_idf == default


def test_the_agent_reads_element_vectors_from_the_store_without_embedding_them(demo_knowledge) -> None:
    from appatlas.agent import meaning as m

    class Refuses:
        def encode(self, texts):  # noqa: ANN001, ANN202
            raise AssertionError(f"embedded {texts!r}: the store has it")

    key, info = next((k, i) for k, i in demo_knowledge.screens.items() if demo_knowledge.options_of(i.states[0]))
    meaning = m.Meaning(demo_knowledge, embedder=Refuses())
    sentences = [meaning.describe(key, o) for o in demo_knowledge.options_of(info.states[0])]
    m._CACHE.clear()
    vecs = meaning.vectors(sentences)
    assert vecs.shape == (len(sentences), 384)


def test_a_task_left_out_takes_the_words_only_its_screens_showed_out_of_the_weights(demo_knowledge) -> None:
    k = demo_knowledge
    for b in k.state_screens:  # a state the crawl entered once and left once, showing a word no other state shows
        touching = [t for t in k.transitions if b in (t.source, t.target)]
        ins = [t for t in touching if t.target == b and t.source != b]
        outs = [t for t in touching if t.source == b and t.target != b]
        if len(touching) != 2 or len(ins) != 1 or len(outs) != 1 or ins[0].count + outs[0].count != 2:
            continue
        elsewhere = {w for s in k.state_screens if s != b for _, ws in k.labels_of(s) for w in ws}
        own = sorted({w for _, ws in k.labels_of(b) for w in ws} - elsewhere)
        if own:
            break
    else:
        raise AssertionError("the demo atlas has no state only one visit shows")
    (t_in,), (t_out,) = ins, outs
    steps = (RecordedStep(t_in.source, t_in.action), RecordedStep(b, t_out.action), RecordedStep(t_out.target, None))
    task = RecordedTask("task1", "do it", steps, "droidtask")
    with_task = Knowledge.build(package=k.package, screens=k.state_screens, state_key=k.state_key,
                                content=k.content, transitions=k.transitions, tasks=[task])
    with_task.store = k.store
    less = with_task.without("task1")
    assert b not in less.state_screens and less.store is k.store
    assert with_task.weight(own[0]) < with_task.default_idf  # the store has the word
    assert less.weight(own[0]) == less.default_idf  # but not for the knowledge less the task


def test_a_policy_reads_the_element_sentences_the_store_was_built_with(demo_knowledge, monkeypatch) -> None:
    from appatlas.agent.meaning import Meaning
    from appatlas.agent.policy import Policy, PolicyConfig

    made: list[str] = []
    describe = Meaning.describe
    monkeypatch.setattr(Meaning, "describe", lambda self, key, o: made.append(key) or describe(self, key, o))
    policy = Policy(demo_knowledge, config=PolicyConfig(meaning=0.1))  # prepares: the first states' sentences
    assert policy.meaning is demo_knowledge.meaning
    assert not made  # `Knowledge.from_atlas` made them for the store


def test_the_knowledge_travels_to_another_process_with_its_store(demo_knowledge) -> None:
    from copy import deepcopy

    from appatlas.agent.policy import Policy, PolicyConfig

    Policy(demo_knowledge, config=PolicyConfig(meaning=0.1))  # its meaning holds the loaded embedder now
    copy = deepcopy(demo_knowledge)  # through __getstate__, as Ray serializes it for each phone's actor
    assert copy.store is not None and copy.store.has_elements
    assert copy.weight("quiet") == demo_knowledge.weight("quiet")
    assert copy.store.search("screens", "quiet hours", k=1)  # its embedder is loaded where it is used
