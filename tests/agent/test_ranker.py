"""The trained decider: rows from explored atlases, seeded and cached training, the numpy model equal to the
trained net, asked by the policy only where the graph is not certain, and nothing of a held-out app in it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from appatlas.agent import train
from appatlas.agent.policy import Policy, PolicyConfig
from appatlas.agent.ranker import Ranker

TINY = train.TrainConfig(epochs=3, rank=4, hidden=8, batch=32)


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
    assert trained.held_out == "a" and set(trained.margins) == {f"{m}/{b}" for m, b in train.MARGINS}
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
