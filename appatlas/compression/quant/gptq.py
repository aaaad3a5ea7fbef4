"""GPTQ (Frantar et al., 2022): quantize columns one by one, pushing each column's error onto the
not-yet-quantized columns through the inverse Hessian, with lazy batch updates (blocks of columns),
act-order (columns with the largest ``diag(H)`` first) and per-group grids.

Notation follows the paper / IST-DASLab code: ``W`` weight, ``H = 2XXᵀ/n``, ``Hinv`` the upper
Cholesky factor of ``H⁻¹``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..result import LayerResult
from ..stats import HessianLayer, damped_inverse_cholesky, single_thread
from .grid import (
    GroupParams,
    assemble,
    dequantize_codes,
    find_params,
    mixed_static_groups,
    quantize_codes,
    resolve_group_size,
)


@dataclass(frozen=True)
class GPTQConfig:
    """GPTQ options. With ``act_order`` the group grids are fixed up front ("static groups") so the
    stored groups stay contiguous in the original column order."""

    bits: int = 4
    group_size: int = 32
    blocksize: int = 128
    percdamp: float = 0.01
    act_order: bool = True
    clip: bool = True  # MSE-searched group ranges (GPTQ's `--mse` option)
    group_bits: tuple[int, ...] | None = None  # per column group widths (mixed precision); overrides ``bits``


class GPTQ(HessianLayer):
    """GPTQ for one layer: ``add_batch`` gathers ``H``; ``quantize`` solves (callable repeatedly)."""

    _cache: tuple[tuple[bool, float], torch.Tensor, torch.Tensor] | None = None

    def _factor(self, config: GPTQConfig) -> tuple[torch.Tensor, torch.Tensor]:
        """Column order ``perm`` and ``Hinv`` in that order (cached across bit widths)."""
        key = (config.act_order, config.percdamp)
        if self._cache is None or self._cache[0] != key:
            H = self.H
            perm = torch.argsort(torch.diag(H), descending=True) if config.act_order else torch.arange(self.columns)
            Hinv = damped_inverse_cholesky(H[perm][:, perm], percdamp=config.percdamp)
            self._cache = (key, perm, Hinv)
        return self._cache[1], self._cache[2]

    @torch.no_grad()
    def quantize(self, config: GPTQConfig, *, mask: torch.Tensor | None = None) -> LayerResult:
        """Quantize ``W``; with ``mask`` (True = kept) pruned weights become exact zeros and their
        removal error is compensated like quantization error (joint sparse + quantized)."""
        tick = time.perf_counter()
        W0 = self.weight()
        W = W0.clone()
        W[:, torch.diag(self.H) == 0] = 0  # columns never activated carry no information
        if mask is not None:
            W = W * mask
        bits, zog = config.bits, mask is not None
        g = resolve_group_size(config.group_size, self.columns)
        widths = list(config.group_bits) if config.group_bits is not None else [bits] * (self.columns // g)
        static = config.act_order or g == self.columns or config.group_bits is not None
        groups: list[GroupParams | None] = [None] * (self.columns // g)
        if static:
            groups = mixed_static_groups(W, widths, g, zero_on_grid=zog, clip=config.clip)
        blocksize = config.blocksize if static else max(g, config.blocksize // g * g)

        perm, Hinv = self._factor(config)
        W = W[:, perm]
        keep = mask[:, perm] if mask is not None else None
        group_of = perm // g
        codes = torch.zeros_like(W)
        with single_thread():  # many small ops: one thread avoids OpenMP stalls
            for i1 in range(0, self.columns, blocksize):
                i2 = min(i1 + blocksize, self.columns)
                W1 = W[:, i1:i2].clone()
                Err1 = torch.zeros_like(W1)
                Hinv1 = Hinv[i1:i2, i1:i2]
                for i in range(i2 - i1):
                    col = i1 + i
                    if not static and col % g == 0:  # dynamic group grid from the already-updated weights
                        groups[col // g] = find_params(W1[:, i : i + g], bits, zero_on_grid=zog, clip=config.clip)
                    j = int(group_of[col])
                    params = groups[j]
                    w = W1[:, i] if keep is None else W1[:, i] * keep[:, col]
                    q = quantize_codes(w, params, widths[j])
                    codes[:, col] = q
                    err = (W1[:, i] - dequantize_codes(q, params)).div_(Hinv1[i, i])
                    W1[:, i:].addr_(err, Hinv1[i, i:], alpha=-1.0)  # rank-1 update of the block's later columns
                    Err1[:, i] = err
                W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]  # lazy batch update of the remaining columns
        codes = codes[:, torch.argsort(perm)]
        quant = assemble(codes, groups, bits=bits, group_size=g, group_bits=widths)  # type: ignore[arg-type]
        Q = quant.dequantize()
        return LayerResult(
            weight=Q, quant=quant, mask=mask, error=self.output_error(W0, Q), seconds=time.perf_counter() - tick
        )
