"""Wanda (Sun et al., 2023): prune by ``|W_ij| · ‖X_j‖₂``, compared within each output row."""

from __future__ import annotations

import time

import torch

from ..result import LayerResult
from ..stats import HessianLayer
from .magnitude import PruneConfig
from .masks import make_mask


class Wanda(HessianLayer):
    """Wanda for one layer. ``‖X_j‖₂`` comes from ``diag(H) = 2/n Σ x_j²`` gathered by ``add_batch``."""

    def scores(self) -> torch.Tensor:
        """``|W| · ‖X_j‖`` (up to a constant per layer, which does not change the ranking)."""
        return self.weight().abs() * torch.sqrt(torch.diag(self.H)).unsqueeze(0)

    def prune(self, config: PruneConfig) -> LayerResult:
        """Mask the lowest scores per output row (unstructured) or per group of 4 inputs (2:4)."""
        tick = time.perf_counter()
        W = self.weight()
        mask = make_mask(self.scores(), config.sparsity, config.pattern, per_row=True)
        Wp = W * mask
        return LayerResult(
            weight=Wp, mask=mask, pattern=config.pattern, error=self.output_error(W, Wp), seconds=time.perf_counter() - tick
        )
