"""Magnitude pruning: drop the smallest ``|W|`` of each layer (the classic baseline)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..result import LayerResult
from ..stats import HessianLayer
from .masks import make_mask


@dataclass(frozen=True)
class PruneConfig:
    """Fraction of weights to remove and the pattern (``"unstructured"`` or ``"2:4"``)."""

    sparsity: float = 0.5
    pattern: str = "unstructured"


class Magnitude(HessianLayer):
    """Magnitude pruning for one layer; ``add_batch`` only serves the error figure."""

    def prune(self, config: PruneConfig) -> LayerResult:
        """Mask the smallest magnitudes layer-wide (unstructured) or per group of 4 (2:4)."""
        tick = time.perf_counter()
        W = self.weight()
        mask = make_mask(W.abs(), config.sparsity, config.pattern, per_row=False)
        Wp = W * mask
        error = self.output_error(W, Wp) if self.nsamples else float("nan")
        return LayerResult(weight=Wp, mask=mask, pattern=config.pattern, error=error, seconds=time.perf_counter() - tick)
