"""Choosing the policy's fitted parameters on some apps, to be evaluated on another (leave one app out).

Whatever the policy fits — today the weight of meaning (`PolicyConfig.meaning`) — is chosen here, by
the benchmark's own score on the *training* apps only: `fit(train_apps, score)` tries each candidate
configuration, scores it with `score(config, train_apps)` (for example the mean goal success of
`bench tasks` on those apps) and returns the best. The evaluated app never reaches `score`, so
`bench tasks --leave-app-out` can fit on six apps and evaluate the seventh, for each of the seven.
Ties go to the earlier candidate, the simpler one (words only first).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from appatlas.agent.policy import PolicyConfig

__all__ = ["CANDIDATES", "fit"]

# Candidate weights of meaning, simplest first (measured in docs/agent.md).
CANDIDATES: tuple[dict[str, float], ...] = ({"meaning": 0.0}, {"meaning": 0.5}, {"meaning": 1.0}, {"meaning": 2.0})


def fit(train_apps: Sequence[str], score: Callable[[PolicyConfig, Sequence[str]], float], *,
        base: PolicyConfig | None = None, candidates: Iterable[dict[str, float]] = CANDIDATES) -> PolicyConfig:
    """The candidate configuration with the best `score` on `train_apps` (see the module docstring)."""
    if not train_apps:
        raise ValueError("fit needs at least one training app: with one app left out, pass the others")
    base = base or PolicyConfig()
    best, best_score = base, float("-inf")
    for changes in candidates:
        config = replace(base, **changes)
        value = score(config, train_apps)
        if value > best_score:
            best, best_score = config, value
    return best
