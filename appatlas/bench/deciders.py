"""`appatlas bench deciders`: which model should decide where the graph is not certain, measured out of fold.

Every candidate decides the same decisions: the recorded tasks' steps of each dev app, as the policy puts them
to a model over that app's crawl (`appatlas.agent.train` rows: the graph's top options, what each says and leads
to). Nothing a candidate is scored on was used to fit it:

- `graph`: the graph's best option (a "done" before any step is wrong);
- `ranker`: the trained ranker of `appatlas train agent`, trained and its margin chosen without the app
  (`train.fit(held_out=app)`, as `bench tasks --leave-app-out`);
- `meaning`: all-MiniLM-L6-v2 alone, untrained: the cosine of the intent's words left with what each option says
  and leads to (the sentence the ranker reads), its margin chosen on the other apps;
- `lm:NAME`: a causal LM choosing by likelihood (`LocalLM.choose`: mean log-probability, calibrated by the
  option's score after a neutral prompt), asked where the ranker would be; it is not trained, and its margin
  is chosen on the other apps;
- `ranker+lm:NAME`: the ranker's score plus beta times the LM's scores standardised over the options asked;
  beta and the margin chosen on the other apps with their inner rankers (trained without both apps).

The LM reads the goal, the steps so far and each option as the policy names it ("tap 'More options'"); a row
keeps what its options say, not the screen, so the screen line of the prompt is left out.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appatlas.agent import train
from appatlas.agent.prompt import choice_context
from appatlas.agent.ranker import Query, text_vectors

__all__ = ["BETAS", "LMScorer", "MeaningScorer", "Sum", "compare"]

BETAS = (0.25, 0.5, 1.0, 2.0)  # the LM's weight beside the ranker: candidates, the smaller wins a tie
Progress = Callable[[str], None]


def option_text(candidate_text: str) -> str:
    """What an option is, as the policy names it to a language model: the first part of what the ranker reads
    (`Meaning.describe`: "tap 'More options'; More options; leads to the main menu about …")."""
    return candidate_text.split(";", 1)[0].strip()


class LMScorer:
    """A causal LM as a ranker: `rank(query)` is each option's calibrated likelihood after the goal and the steps
    so far (`LocalLM.choose`), memoised per decision and option, with the time each new decision took."""

    def __init__(self, lm: Any, name: str) -> None:
        self.lm, self.name = lm, name
        self._memo: dict[tuple[str, str], float] = {}
        self.ms: list[float] = []

    def rank(self, query: Query) -> list[float]:
        context = choice_context(query.intent, query.history, None)
        texts = [option_text(c.text) for c in query.candidates]
        todo = [t for t in dict.fromkeys(texts) if (context, t) not in self._memo]
        if todo:
            began = time.perf_counter()
            _, scores = self.lm.choose(context, todo)
            self.ms.append(1000 * (time.perf_counter() - began))
            self._memo.update({(context, t): float(s) for t, s in zip(todo, scores, strict=True)})
        return [self._memo[(context, t)] for t in texts]


class MeaningScorer:
    """all-MiniLM-L6-v2 as a ranker, untrained: the cosine of the intent's words left with each option's sentence."""

    def rank(self, query: Query) -> list[float]:
        vectors = text_vectors([query.left or query.intent, *(c.text for c in query.candidates)])
        return (vectors[1:] @ vectors[0]).tolist()


@dataclass
class Sum:
    """`ranker`'s score plus `beta` times `lm`'s scores standardised over the options asked."""

    ranker: Any
    lm: LMScorer
    beta: float

    def rank(self, query: Query) -> list[float]:
        r = np.asarray(self.ranker.rank(query), dtype=np.float64)
        lm = np.asarray(self.lm.rank(query), dtype=np.float64)
        z = (lm - lm.mean()) / (lm.std() + 1e-6) if len(lm) > 1 else lm * 0.0
        return (r + self.beta * z).tolist()


def _tasks(rows: dict[str, list[train.Row]], app: str) -> list[train.Row]:
    return [r for r in rows[app] if r.origin == "task"]


def _decided(scorer: train.Scorer | None, rows: list[train.Row], choice: tuple[float, float, bool]) -> dict[str, Any]:
    """How many of `rows` `scorer` decides right when asked as `choice` (margin, below, cover) says."""
    acc = train.offline_accuracy(scorer, rows, *choice)
    return {"right": round(acc * len(rows)), "n": len(rows), "margin": _margin_name(choice)}


def _entry(per_app: dict[str, dict[str, Any]]) -> dict[str, Any]:
    right, n = sum(v["right"] for v in per_app.values()), sum(v["n"] for v in per_app.values())
    return {"step_accuracy": round(right / max(n, 1), 4), "right": right, "decisions": n, "apps": per_app}


def compare(rows: dict[str, list[train.Row]], lms: Sequence[tuple[str, Any]] = (), *,
            config: train.TrainConfig | None = None, cache: Path | None = None,
            progress: Progress | None = None) -> dict[str, Any]:
    """Out-of-fold step accuracy of the graph, the ranker, MiniLM's cosine alone, each LM of `lms` ((name, LocalLM)
    pairs) and each LM beside the ranker, over the recorded-task rows of every app of `rows` (see the module docstring)."""
    apps = [a for a in sorted(rows) if a != "extra" and _tasks(rows, a)]
    if len(apps) < 3:
        raise ValueError(f"comparing deciders out of fold needs recorded tasks of at least 3 apps, not {len(apps)}: "
                         f"pass --data with more app folders")
    say = progress or (lambda _msg: None)
    config = config or train.TrainConfig()
    fits: dict[str, train.Trained] = {}
    for app in apps:
        say(f"the ranker without {app}")
        fits[app] = train.fit(rows, held_out=app, config=config, cache=cache)
    graph = {a: _decided(None, _tasks(rows, a), (0.0, 0.0, False)) for a in apps}
    for entry in graph.values():
        del entry["margin"]  # the graph is asked nothing
    ranker = {a: _decided(fits[a].ranker, _tasks(rows, a), (fits[a].ask_margin, fits[a].ask_below, fits[a].ask_cover))
              for a in apps}
    meaning = MeaningScorer()
    out: dict[str, Any] = {"graph": _entry(graph), "ranker": _entry(ranker),
                           "meaning": _entry({a: _untrained(meaning, rows, apps, a) for a in apps})}
    for name, lm in lms:
        scorer = LMScorer(lm, name)
        alone, beside = {}, {}
        for a in apps:
            say(f"{name}: deciding {a}'s steps")
            alone[a] = _untrained(scorer, rows, apps, a)
            beta, choice = _beta(rows, apps, a, scorer, config, cache)
            beside[a] = {**_decided(Sum(fits[a].ranker, scorer, beta), _tasks(rows, a), choice), "beta": beta}
        # descriptive, not out of fold: the LM's accuracy over every app at each fixed margin
        _, margins = train.fit_margin([(scorer, _tasks(rows, a)) for a in apps])
        out[f"lm:{name}"] = {**_entry(alone), "ms_per_decision_p50": _p50(scorer.ms), "at_each_margin": margins}
        out[f"ranker+lm:{name}"] = _entry(beside)
    return out


def _untrained(scorer: train.Scorer, rows: dict[str, list[train.Row]], apps: Sequence[str], app: str) -> dict[str, Any]:
    """`_decided` for `app`, with the margin that decides the other apps' steps best."""
    choice, _ = train.fit_margin([(scorer, _tasks(rows, b)) for b in apps if b != app])
    return _decided(scorer, _tasks(rows, app), choice)


def _beta(rows: dict[str, list[train.Row]], apps: Sequence[str], held_out: str, scorer: LMScorer,
          config: train.TrainConfig, cache: Path | None) -> tuple[float, tuple[float, float, bool]]:
    """The LM's weight and the margin for `held_out`, chosen on the other apps with rankers trained without both."""
    inner = [(train.train_ranker(train.training_rows(rows, (held_out, b)), config, cache=cache), _tasks(rows, b))
             for b in apps if b != held_out]
    best: tuple[float, float, tuple[float, float, bool]] | None = None
    for beta in BETAS:
        choice, scored = train.fit_margin([(Sum(r, scorer, beta), t) for r, t in inner])
        acc = scored[_margin_name(choice)]
        if best is None or acc > best[0] + 1e-9:
            best = (acc, beta, choice)
    assert best is not None
    return best[1], best[2]


def _margin_name(choice: tuple[float, float, bool]) -> str:
    margin, below, cover = choice
    return f"{margin}/{below}" + ("/cover" if cover else "")


def _p50(ms: list[float]) -> float | None:
    return round(statistics.median(ms), 1) if ms else None
