"""The trained decider: rows from explored atlases, seeded and cached training, the numpy model equal to the
trained net, asked by the policy only where the graph is not certain, and nothing of a held-out app in it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from appatlas.agent import train
from appatlas.agent.policy import Policy, PolicyConfig
from appatlas.agent.ranker import N_FEATURES, Ranker

TINY = train.TrainConfig(epochs=3, rank=4, hidden=8, batch=32, members=1)


@pytest.fixture(scope="module")
def rows(demo_knowledge) -> list[train.Row]:
    return train.synth_rows("demo", demo_knowledge, limit=80)


def test_rows_are_the_policys_own_choices_with_the_path_taken_among_them(rows) -> None:
    assert len(rows) >= 30
    for r in rows:
        assert 2 <= len(r.query.candidates) <= PolicyConfig().llm_top
        assert 0 <= r.answer < len(r.query.candidates)
        values = [c.value for c in r.query.candidates]
        assert values[0] == max(values)  # the graph's order: its own choice first
    assert any(r.answer != 0 for r in rows)  # there is something to learn beyond the graph's order


def test_training_is_seeded_and_cached(rows, tmp_path) -> None:
    a, b = train.train_ranker(rows, TINY), train.train_ranker(rows, TINY)
    assert all(np.array_equal(a.w[k], b.w[k]) for k in a.w)
    other = train.train_ranker(rows, replace(TINY, seed=1))
    assert not np.array_equal(a.w["aq"], other.w["aq"])
    cached = train.train_ranker(rows, TINY, cache=tmp_path)
    files = list(tmp_path.glob("ranker-*.npz"))
    assert len(files) == 1 and files[0].stem == f"ranker-{cached.meta['hash'][:16]}"
    files[0].with_suffix(".json").write_text('{"hash": "from the cache"}')
    assert train.train_ranker(rows, TINY, cache=tmp_path).meta["hash"] == "from the cache"  # not trained again


def test_a_cached_model_of_another_feature_count_is_trained_again(rows, tmp_path) -> None:
    cached = train.train_ranker(rows, TINY, cache=tmp_path)
    (path,) = tmp_path.glob("ranker-*.npz")
    np.savez(path, **(cached.w | {"w1": np.zeros((N_FEATURES + 2, TINY.hidden), np.float32)}))  # an older version's
    again = train.train_ranker(rows, TINY, cache=tmp_path)
    assert again.w["w1"].shape[0] == N_FEATURES and np.array_equal(again.w["aq"], cached.w["aq"])


def test_the_numpy_ranker_scores_as_the_trained_net_does(rows, tmp_path) -> None:
    import torch

    ranker = Ranker.load(train.train_ranker(rows, TINY).save(tmp_path / "r.npz"))
    net = train._Net(TINY)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in ranker.w.items()})
    batch = train._tensors(rows[:10])
    with torch.no_grad():
        want = net(*(torch.from_numpy(getattr(batch, k)) for k in ("feats", "q", "left", "opts"))).numpy()
    for i, r in enumerate(rows[:10]):
        got = ranker.rank(r.query)
        assert np.allclose(got, want[i, :len(got)], atol=1e-4)


def test_a_model_of_several_seeds_scores_the_mean_of_one_seed_models(rows) -> None:
    members = [train.train_ranker(rows, replace(TINY, seed=s)) for s in (5, 6)]
    both = train.train_ranker(rows, replace(TINY, seed=5, members=2))
    assert both.w["aq"].shape[1] == 2 * TINY.rank and both.w["w1"].shape[1] == 2 * TINY.hidden
    for r in rows[:10]:
        mean = np.mean([m.rank(r.query) for m in members], axis=0)
        assert np.allclose(both.rank(r.query), mean, atol=1e-4)


def test_only_float_rankers_are_averaged(rows) -> None:
    ranker = train.train_ranker(rows, TINY)
    with pytest.raises(ValueError, match="quantize the result"):
        Ranker.averaged([ranker, ranker.quantized(8)])
    with pytest.raises(ValueError, match="at least 1"):
        train.train_ranker(rows, replace(TINY, members=0))


def test_the_policy_asks_the_ranker_only_within_its_margin(demo_knowledge) -> None:
    from appatlas.agent.synth import synthetic_decisions

    asked = {}
    for margin in (0.0, 0.5, float("inf")):
        recorder = train._Recorder()
        policy = Policy(demo_knowledge, llm=recorder, config=PolicyConfig(ask_margin=margin))
        n = 0
        for d in synthetic_decisions(demo_knowledge, limit=80):
            if d.path:
                continue
            recorder.asked = None
            decision = policy.decide(d.intent, demo_knowledge.state_screens[d.state], [])
            query = recorder.asked
            assert decision.by_model == (query is not None)  # the model's decisions are counted as its own
            if query is not None:
                n += 1
                best = query.candidates[0].value
                assert len({c.text for c in query.candidates}) > 1
                assert all(best - c.value <= max(margin, 1e-6) for c in query.candidates)
        asked[margin] = n
    assert asked[0.0] <= asked[0.5] < asked[float("inf")]


def test_nothing_of_the_held_out_app_is_trained_or_tuned_on(rows) -> None:
    by_app = {app: [replace(r, app=app, origin="task" if i % 3 == 0 else "synth") for i, r in enumerate(rows)]
              for app in ("a", "b", "c")}
    trained = train.fit(by_app, held_out="a", config=TINY)
    assert trained.ranker.meta["apps"] == ["b", "c"]
    assert trained.held_out == "a"
    assert set(trained.margins) == {f"{m}/{b}" + ("/cover" if c else "") for m, b, c in train.MARGINS}
    assert trained.config().ask_margin == trained.ask_margin


def test_local_is_the_shipped_ranker_and_the_policy_takes_its_margin(demo_knowledge) -> None:
    from appatlas.agent.llm import make_llm

    ranker = make_llm("local")
    assert isinstance(ranker, Ranker) and ranker.meta["rows"] > 0
    assert Policy(demo_knowledge, llm=ranker).config.ask_margin == ranker.ask[0]
    context = "Goal: open the settings\nSteps so far: nothing yet\nScreen: main"
    index, scores = ranker.choose(context, ["tap 'Settings'", "press back"])
    assert index in (0, 1) and len(scores) == 2


def test_the_int8_ranker_stores_codes_and_decides_as_fp32_does(rows, tmp_path) -> None:
    ranker = train.train_ranker(rows, TINY)
    small = ranker.quantized(8)
    path = small.save(tmp_path / "r8.npz")
    with np.load(path, allow_pickle=False) as data:
        assert data["aq"].dtype == np.uint8 and data["aq_scale"].dtype == np.float16
    loaded = Ranker.load(path)
    assert all(np.array_equal(loaded.w[k], small.w[k]) for k in small.w)  # decoded as it was quantized
    assert loaded.meta["bits"] == 8 and loaded.name.endswith("-int8")
    same = sum(int(np.argmax(ranker.rank(r.query))) == int(np.argmax(loaded.rank(r.query))) for r in rows)
    assert same >= 0.95 * len(rows)
    assert path.stat().st_size < ranker.save(tmp_path / "r32.npz").stat().st_size / 2


def _option(knowledge, key: str, label: str):
    info = knowledge.screens[key]
    return next(o for sid in info.states for o in knowledge.options_of(sid) if o.label == label)


def test_a_control_never_taken_on_a_screen_leads_where_it_led_on_another_of_its_activity(demo_knowledge) -> None:
    from appatlas.agent.knowledge import Knowledge
    from appatlas.agent.meaning import Meaning
    from appatlas.agent.options import is_dialog

    k = demo_knowledge
    taken = next(t for t in k.transitions if t.action.target is not None and t.action.target.content_desc == "Settings"
                 and t.target_key != t.source_key and not is_dialog(k.state_screens[t.source]))
    main, settings = taken.source_key, taken.target_key
    # Another screen of the same activity (here a second tab showing the same toolbar): the crawl pressed
    # 'Settings' there, never here.
    other, sid = "another-tab", max(k.state_screens) + 1
    moved = [replace(t, source_key=other, source=sid) if t == taken else t for t in k.transitions
             if not (t.source_key == main and t.action.key == taken.action.key and t != taken)]
    elsewhere = Knowledge.build(package=k.package, screens=k.state_screens | {sid: k.state_screens[taken.source]},
                                state_key=k.state_key | {sid: other}, content=k.content, transitions=moved, tasks=[],
                                origins=k.origins)
    option = _option(k, main, "Settings")
    assert Meaning(k).targets(main, option) == [settings]
    assert Meaning(elsewhere).targets(main, option) == [settings]  # inferred from the other screen
    assert "leads to" in Meaning(elsewhere).describe(main, option)
    # Nothing is inferred for a control that says nothing of itself (a plain row is content, not a control).
    without = Knowledge.build(package=k.package, screens=k.state_screens, state_key=k.state_key, content=k.content,
                              transitions=[t for t in k.transitions if t != taken and not (
                                  t.source_key == main and t.action.key == taken.action.key)],
                              tasks=[], origins=k.origins)
    assert Meaning(without).targets(main, option) == []


def test_reach_is_what_an_option_opens_the_way_to_and_the_ranker_reads_it(demo_knowledge) -> None:
    from appatlas.agent.meaning import Meaning
    from appatlas.agent.ranker import Candidate, Query, reach_cosines, text_vectors

    k = demo_knowledge
    t = next(t for t in k.transitions if t.action.target is not None and t.action.target.content_desc == "Settings"
             and t.target_key != t.source_key)
    near, far = Meaning(k).reach(t.source_key, _option(k, t.source_key, "Settings"))
    assert set(near) == {label for label, ws in k.screens[t.target_key].labels if ws}
    beyond = {x.target_key for x in k.out(t.target_key)} - {t.source_key, t.target_key}
    assert far and not set(far) & set(near)
    assert set(far) <= {label for key in beyond for label, _ in k.screens[key].labels}
    # The goal two screens away, not on the control: the candidate that opens the way to it reads closest.
    goal = far[0]
    query = Query(goal, goal, (Candidate("tap 'Search'", "tap", near=("Search notes",)),
                               Candidate("tap 'Settings'", "tap", near=near, far=far), Candidate("press back", "back")))
    cos = reach_cosines(query, text_vectors([goal])[0])
    assert cos[1, 1] > 0.99 and cos[1, 1] > cos[0, 1] and cos[2].tolist() == [0.0, 0.0]


def test_the_ranker_is_told_the_first_clause_still_to_do(demo_knowledge) -> None:
    from appatlas.agent.policy import _Valued
    from appatlas.agent.progress import Progress

    policy = Policy(demo_knowledge)
    key = next(iter(demo_knowledge.screens))
    opts = demo_knowledge.options_of(demo_knowledge.screens[key].states[0])[:2]
    from appatlas.rag.intent import parse_intent

    intent = parse_intent("create a text note called 'test', and search for 'trip'")
    query = policy.query(intent, Progress(intent, [], current=key), [_Valued(o, 1.0) for o in opts])
    assert query.next == "create text note" and "search" in query.left
    single = parse_intent("search for 'trip'")
    assert policy.query(single, Progress(single, [], current=key), [_Valued(o, 1.0) for o in opts]).next == ""


def test_where_the_graph_would_say_done_before_any_step_a_ranker_picks(demo_knowledge) -> None:
    from appatlas.agent.progress import taken

    key = demo_knowledge.state_key[min(demo_knowledge.state_key)]
    screen = demo_knowledge.state_screens[demo_knowledge.screens[key].states[0]]
    intent = "see the frequently asked questions"  # no word of it on any screen: the graph sees nothing to do
    graph = Policy(demo_knowledge).decide(intent, screen, [])
    assert graph.done and graph.stuck
    recorder = train._Recorder()
    assert Policy(demo_knowledge, llm=recorder).decide(intent, screen, []).done  # off unless asked for
    asking = Policy(demo_knowledge, llm=recorder, config=PolicyConfig(ask_start=True))
    decision = asking.decide(intent, screen, [])
    assert decision.by_model and decision.action is not None and recorder.asked is not None
    assert all(c.kind != "back" for c in recorder.asked.candidates)
    # Once a step was taken, "done" is the graph's again.
    recorder.asked = None
    assert asking.decide(intent, screen, [taken(decision.action, screen)]).done and recorder.asked is None
    # Rows collected there say so: offline, the graph's "done" is wrong and the ranker is asked among all.
    policy, rec = train._collector(demo_knowledge)
    row = train._row(policy, rec, "demo", "task", intent, screen, [], decision.action)
    assert row is not None and row.start
    assert train.offline_accuracy(None, [row], 0.0, 0.0) == 0.0


def _menu_app():
    """main: 'More options' -> menu: 'Settings' -> settings: 'Autosave'; main: 'Notes' -> notes: 'Note settings'."""
    from appatlas.agent.knowledge import Knowledge
    from appatlas.graph.atlas import StoredTransition
    from appatlas.types import Action, ActionKind, Bounds, Screen, Selector, Widget

    def screen(activity: str, *labels: str) -> Screen:
        rows = tuple(Widget("android.widget.TextView", Bounds(0, 100 * i, 1080, 100 * i + 90), text=t, clickable=True,
                            package="com.x", resource_id=f"com.x:id/{t.lower().replace(' ', '_')}")
                     for i, t in enumerate(labels))
        frame = Widget("android.widget.FrameLayout", Bounds(0, 0, 1080, 2280), package="com.x", children=rows)
        return Screen("com.x", activity, Widget("hierarchy", Bounds(0, 0, 1080, 2280), children=(frame,)), 1080, 2280)

    def tap(label: str) -> Action:
        return Action(ActionKind.TAP, target=Selector(resource_id=f"com.x:id/{label.lower().replace(' ', '_')}",
                                                      text=label))

    screens = {1: screen("Main", "More options", "Notes"), 2: screen("Menu", "Settings", "About"),
               3: screen("Settings", "Autosave"), 4: screen("Notes", "Note settings")}
    keys = {1: "main", 2: "menu", 3: "settings", 4: "notes"}
    edges = [(1, "More options", 2), (2, "Settings", 3), (1, "Notes", 4)]
    transitions = [StoredTransition(i, a, b, keys[a], keys[b], tap(label), 1, 0, "crawl")
                   for i, (a, label, b) in enumerate(edges)]
    return Knowledge.build(package="com.x", screens=screens, state_key=keys, content={}, tasks=[],
                           transitions=transitions), screens[1]


def test_the_ranker_also_sees_the_option_whose_path_names_most_of_the_intent() -> None:
    knowledge, main = _menu_app()
    intent = "change the autosave setting of notes"
    asked = {}
    for cover in (False, True):
        recorder = train._Recorder()
        policy = Policy(knowledge, llm=recorder, config=PolicyConfig(ask_margin=1e-6, ask_cover=cover))
        decision = policy.decide(intent, main, [], known_as="main")
        asked[cover] = recorder.asked
        assert decision.option.label == "Notes"  # the graph's best: its label and the page after it
    assert asked[False] is None  # no close option: the graph decides alone
    cands = asked[True].candidates
    assert [c.option.label for c in cands] == ["Notes", "More options"]  # 'Settings' -> 'Autosave' beyond it
    assert cands[1].value < cands[0].value and cands[1].cover > cands[0].cover
    # and offline the same candidate is added to those a margin asks about
    query = replace(asked[True], candidates=cands)
    assert train._subset(query, 0.0, 0.0, cover=True) == [0, 1] and train._subset(query, 0.0, 0.0) == [0]


def test_the_graphs_say_is_learned_and_kept_in_the_file(rows, tmp_path) -> None:
    ranker = train.train_ranker(rows, TINY)
    lam = float(ranker.w["lam"][0])
    assert lam != TINY.graph  # learned, not fixed
    loaded = Ranker.load(ranker.save(tmp_path / "r.npz"))
    assert float(loaded.w["lam"][0]) == lam
    without = Ranker({k: v for k, v in loaded.w.items() if k != "lam"}, loaded.meta)  # a file from before it
    query = next(r.query for r in rows if len({c.value for c in r.query.candidates}) > 1)
    assert not np.allclose(loaded.rank(query), without.rank(query))


def test_demo_and_generated_rows_are_learned_from_only_without_real_apps(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(train, "extra_rows", lambda **kw: ["a generated app's decision"])
    monkeypatch.setattr(train, "app_rows", lambda folder, budget: [f"{folder.name}'s decision"])
    monkeypatch.setattr("appatlas.bench.folders.app_folders", lambda data, apps: [tmp_path / "notes"])
    assert set(train.collect_rows(None)) == {"extra"}
    assert set(train.collect_rows(tmp_path)) == {"notes"}
    assert set(train.collect_rows(tmp_path, extra=True)) == {"notes", "extra"}
