"""SparseGPT (Frantar & Alistarh, 2023): choose the mask column block by column block with the OBS
saliency ``w² / [H⁻¹]_jj²`` and update the remaining weights to compensate each removal.

Notation as in the paper / reference code: ``W``, ``H = 2XXᵀ/n``, ``Hinv`` upper Cholesky of ``H⁻¹``.
"""

from __future__ import annotations

import time

import torch

from ..result import LayerResult
from ..stats import HessianLayer, damped_inverse_cholesky, single_thread
from .magnitude import PruneConfig
from .masks import parse_pattern


class SparseGPT(HessianLayer):
    """SparseGPT for one layer: ``add_batch`` gathers ``H``; ``prune`` solves.

    With ``mask`` given (True = kept) the mask is not chosen, only the weights are re-solved for it.
    """

    @torch.no_grad()
    def prune(
        self, config: PruneConfig, *, mask: torch.Tensor | None = None, blocksize: int = 128, percdamp: float = 0.01
    ) -> LayerResult:
        """Prune ``W`` to ``config.sparsity`` with OBS weight updates."""
        tick = time.perf_counter()
        W0 = self.weight()
        W = W0.clone()
        W[:, torch.diag(self.H) == 0] = 0
        Hinv = damped_inverse_cholesky(self.H, percdamp=percdamp)
        nm = parse_pattern(config.pattern)
        prunem = nm[1] if nm else 0
        prunen = nm[1] - nm[0] if nm else 0  # weights removed per group of M
        if prunem:
            blocksize = max(prunem, blocksize // prunem * prunem)
        pruned = torch.zeros_like(W, dtype=torch.bool) if mask is None else ~mask

        with single_thread():  # many small ops: one thread avoids OpenMP stalls
            for i1 in range(0, self.columns, blocksize):
                i2 = min(i1 + blocksize, self.columns)
                W1 = W[:, i1:i2].clone()
                Err1 = torch.zeros_like(W1)
                Hinv1 = Hinv[i1:i2, i1:i2]
                d = torch.diag(Hinv1)
                if mask is None and not prunem:  # adaptive mask over this column block
                    saliency = W1**2 / d[None, :] ** 2
                    k = int(saliency.numel() * config.sparsity)
                    if k:
                        thresh = torch.kthvalue(saliency.flatten(), k).values
                        pruned[:, i1:i2] = saliency <= thresh
                for i in range(i2 - i1):
                    if mask is None and prunem and i % prunem == 0:
                        saliency = W1[:, i : i + prunem] ** 2 / d[i : i + prunem][None, :] ** 2
                        idx = torch.topk(saliency, prunen, dim=1, largest=False).indices
                        pruned[:, i1 + i : i1 + i + prunem].scatter_(1, idx, True)
                    w = W1[:, i]
                    q = w.masked_fill(pruned[:, i1 + i], 0.0)
                    err = (w - q).div_(Hinv1[i, i])
                    W1[:, i:].addr_(err, Hinv1[i, i:], alpha=-1.0)  # OBS update of the block's later columns
                    W1[:, i] = q
                    Err1[:, i] = err
                W[:, i1:i2] = W1
                W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]

        keep = ~pruned
        W = W * keep
        return LayerResult(
            weight=W, mask=keep, pattern=config.pattern, error=self.output_error(W0, W), seconds=time.perf_counter() - tick
        )
