"""Round-to-nearest (RTN): each group of weights snapped to its own min/max grid, no calibration needed."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..result import LayerResult
from ..stats import HessianLayer
from .grid import assemble, find_params, quantize_codes, resolve_group_size


@dataclass(frozen=True)
class RTNConfig:
    """Bits per weight and columns per group (``-1``: one group per row)."""

    bits: int = 4
    group_size: int = 32


class RTN(HessianLayer):
    """Round-to-nearest for one layer.

    ``add_batch`` is optional: with calibration inputs the returned ``error`` is the output error,
    without it the error is NaN.
    """

    def quantize(self, config: RTNConfig, *, mask: torch.Tensor | None = None) -> LayerResult:
        """Quantize ``W`` group by group; ``mask`` (True = kept) forces pruned weights to exact zeros."""
        tick = time.perf_counter()
        W = self.weight()
        W0 = W.clone()
        if mask is not None:
            W = W * mask
        g = resolve_group_size(config.group_size, self.columns)
        groups = [find_params(W[:, i : i + g], config.bits, zero_on_grid=mask is not None) for i in range(0, self.columns, g)]
        codes = torch.cat(
            [quantize_codes(W[:, i : i + g], p, config.bits) for i, p in zip(range(0, self.columns, g), groups, strict=True)],
            dim=1,
        )
        quant = assemble(codes, groups, bits=config.bits, group_size=g)
        Q = quant.dequantize()
        error = self.output_error(W0, Q) if self.nsamples else float("nan")
        return LayerResult(weight=Q, quant=quant, mask=mask, error=error, seconds=time.perf_counter() - tick)
