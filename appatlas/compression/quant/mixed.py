"""appatlas mixed precision, in the spirit of APTQ (Guan et al., DAC 2024).

Each linear ``ℓ`` of each block gets a bit width from {2, 3, 4, 8} so that the parameter-weighted
average meets a budget, spending bits where the model is most sensitive.

Sensitivity is second order and attention-aware. The Hessian of the language-model loss with respect
to a layer's weight is taken in Kronecker form ``H_ℓ ⊗ F_ℓ`` (K-FAC / Gauss-Newton):
``H_ℓ = 2XXᵀ/n`` from the layer input and ``F_ℓ`` the (diagonal) Fisher of the loss with respect to the
layer's outputs, obtained by backpropagating the loss through the whole model. Because that gradient
flows back through softmax(QKᵀ)V, the q/k/v weights are scored by how their errors actually move the
attention output and everything after it — not by their own output error (APTQ's point).
For a weight error ``ΔW_b`` at ``b`` bits (GPTQ solves at 2 and 3 bits; wider ones from round-to-nearest
scaled by the layer's GPTQ/RTN ratio at 3 bits) the expected loss increase is

    Ω_ℓ(b) = Σ_r F_ℓ,r · [ΔW_b (H_ℓ/2) ΔW_bᵀ]_rr      (output-Fisher-weighted output error)

and the layer's average attention-aware Hessian trace, ``mean(F_ℓ) · tr(H_ℓ)/2 / columns``, is
reported as its sensitivity. The allocator solves the multiple-choice knapsack
``min Σ Ω_ℓ(b_ℓ)`` s.t. ``Σ n_ℓ b_ℓ ≤ avg · Σ n_ℓ`` by a Lagrangian sweep plus a greedy fill of
the remaining budget. Phase B quantizes with GPTQ at the allocated widths through the sequential loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..families import Family, block_linears, family_for, get_blocks
from ..layerwise import LayerwiseProcessor
from ..result import LayerResult
from ..sequential import sequential_compress
from .gptq import GPTQ, GPTQConfig
from .grid import assemble, quantize_codes, resolve_group_size, static_groups


@dataclass(frozen=True)
class MixedPrecisionConfig:
    """Budget and candidate widths; 8-bit layers use one group per row (the int8 kernel's layout)."""

    avg_bits: float = 3.0
    choices: tuple[int, ...] = (2, 3, 4, 8)
    group_size: int = 32
    sensitivity_chunks: int = 2  # calibration chunks backpropagated for H and F
    exact_bits: tuple[int, ...] = (2, 3)  # widths whose damage is solved exactly with GPTQ
    act_order: bool = True
    percdamp: float = 0.01

    def gptq(self, bits: int) -> GPTQConfig:
        return GPTQConfig(bits, -1 if bits == 8 else self.group_size, act_order=self.act_order, percdamp=self.percdamp)


class LayerSensitivity(GPTQ):
    """Wraps one layer: ``add_batch`` gathers ``H`` and hooks the output gradient for ``F``;
    ``damage`` solves GPTQ at a width and returns ``Ω_ℓ(b)``."""

    def __init__(self, layer: nn.Linear, *, device: str | torch.device = "cpu"):
        super().__init__(layer, device=device)
        self.F = torch.zeros(self.rows, device=self.device)
        self.tokens = 0

    def add_batch(self, inp: torch.Tensor, out: torch.Tensor | None = None) -> None:
        super().add_batch(inp, out)
        if out is not None and out.requires_grad:
            self.tokens += out.numel() // self.rows
            out.register_hook(self._add_grad)

    def _add_grad(self, grad: torch.Tensor) -> None:
        self.F += (grad.detach().float() ** 2).reshape(-1, self.rows).sum(0).to(self.device)

    def _omega(self, What: torch.Tensor) -> float:
        delta = self.weight() - What
        row_error = 0.5 * ((delta @ self.H) * delta).sum(1)  # mean squared output error per row
        return float((self.F / max(self.tokens, 1) * row_error).sum())

    def damage(self, cfg: MixedPrecisionConfig, *, mask: torch.Tensor | None = None) -> dict[int, float]:
        """``Ω_ℓ(b)`` for every width: the expected loss increase of this layer quantized at ``b`` bits.

        Widths in ``cfg.exact_bits`` (the low ones, where errors are large and GPTQ matters most) are
        solved with GPTQ. Wider ones use the cheap round-to-nearest damage on the same grids, scaled by
        the layer's GPTQ/RTN ratio at the widest exact width.
        """
        W = self.weight()
        Wm = W if mask is None else W * mask
        exact = {b: self._omega(self.quantize(cfg.gptq(b), mask=mask).weight) for b in cfg.exact_bits}
        ref = max(cfg.exact_bits)
        rtn_bits = [b for b in cfg.choices if b not in exact] + [ref]
        rtn = {b: self._omega(self._rtn(Wm, b, cfg, mask is not None)) for b in rtn_bits}
        ratio = exact[ref] / rtn[ref] if rtn[ref] > 0 else 1.0
        return {b: exact[b] if b in exact else ratio * rtn[b] for b in cfg.choices}

    def _rtn(self, W: torch.Tensor, bits: int, cfg: MixedPrecisionConfig, zero_on_grid: bool) -> torch.Tensor:
        g = resolve_group_size(cfg.gptq(bits).group_size, self.columns)
        groups = static_groups(W, bits, g, zero_on_grid=zero_on_grid, clip=True)
        codes = torch.cat([quantize_codes(W[:, i * g : (i + 1) * g], p, bits) for i, p in enumerate(groups)], 1)
        return assemble(codes, groups, bits=bits, group_size=g).dequantize()

    def trace(self) -> float:
        """Average attention-aware Hessian trace ``mean(F) · tr(H)/2 / columns``."""
        return float(self.F.mean() / max(self.tokens, 1) * torch.diag(self.H).sum() / 2 / self.columns)


def measure_sensitivity(model: nn.Module, calib: torch.Tensor, family: Family, *, batch_size: int,
                        device: torch.device) -> dict[str, LayerSensitivity]:
    """Backpropagate the LM loss over ``calib`` once, gathering ``H`` and ``F`` for every block linear."""
    sens: dict[str, LayerSensitivity] = {}
    handles = []
    for i, block in enumerate(get_blocks(model, family)):
        for name, layer in block_linears(block, family).items():
            full = f"{family.blocks}.{i}.{name}"
            sens[full] = LayerSensitivity(layer, device=device)
            handles.append(layer.register_forward_hook(lambda _m, inp, out, s=sens[full]: s.add_batch(inp[0], out)))
    embed = model.get_input_embeddings()
    saved = [p.requires_grad for p in model.parameters()]
    try:
        for p in model.parameters():  # gradients w.r.t. activations only
            p.requires_grad_(False)
        for ids in calib.split(batch_size):
            ids = ids.to(device)
            with torch.enable_grad():
                x = embed(ids).detach().requires_grad_(True)
                out = model(inputs_embeds=x, labels=ids, use_cache=False)
                (out.loss * (ids.numel() - ids.shape[0])).backward()  # summed token losses
    finally:
        for h in handles:
            h.remove()
        for p, s in zip(model.parameters(), saved, strict=True):
            p.requires_grad_(s)
    return sens


def allocate_bits(
    costs: dict[str, dict[int, float]], sizes: dict[str, int], avg_bits: float
) -> dict[str, int]:
    """Choose one width per layer minimising ``Σ Ω_ℓ(b)`` with ``Σ n_ℓ b_ℓ ≤ avg_bits · Σ n_ℓ``."""
    names = list(costs)
    budget = avg_bits * sum(sizes[n] for n in names)
    floor = sum(sizes[n] * min(costs[n]) for n in names)
    if floor > budget + 1e-6:
        raise ConfigError(f"average {avg_bits} bits is below the smallest width {min(costs[names[0]])}; raise --bits")

    def pick(lam: float) -> dict[str, int]:
        return {n: min(costs[n], key=lambda b, n=n: (costs[n][b] + lam * sizes[n] * b, b)) for n in names}

    def used(choice: dict[str, int]) -> float:
        return sum(sizes[n] * choice[n] for n in names)

    lo, hi = 0.0, 1.0
    while used(pick(hi)) > budget and hi < 1e30:
        hi *= 10.0
    if used(pick(lo)) <= budget:
        hi = lo
    for _ in range(100):  # bisection: smallest multiplier whose choice fits
        if hi - lo <= 1e-12 * max(hi, 1e-30):
            break
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if used(pick(mid)) <= budget else (mid, hi)
    choice = pick(hi)
    if used(choice) > budget:  # multiplier search ran out of range: start from the cheapest widths
        choice = {n: min(costs[n]) for n in names}
    while True:  # greedy fill: best damage reduction per extra bit that still fits
        spare = budget - used(choice)
        best, best_rate = None, 0.0
        for n in names:
            for b, c in costs[n].items():
                extra = sizes[n] * (b - choice[n])
                gain = costs[n][choice[n]] - c
                if 0 < extra <= spare + 1e-6 and gain > 0 and gain / extra > best_rate:
                    best, best_rate = (n, b), gain / extra
        if best is None:
            return choice
        choice[best[0]] = best[1]


def mixed_precision_compress(
    model: nn.Module,
    calib: torch.Tensor,
    cfg: MixedPrecisionConfig,
    *,
    masks: dict[str, torch.Tensor] | None = None,
    **loop: Any,
) -> tuple[dict[str, LayerResult], dict[str, Any]]:
    """Measure ``Ω_ℓ(b)``; allocate widths; quantize with GPTQ at those widths (sequentially).

    Returns the layer results and figures (allocation, damage table, traces, achieved average bits).
    """
    masks = masks or {}
    family = loop.get("family") or family_for(model)
    batch = loop.get("batch_size", 4)
    device = torch.device(loop.get("device", "cpu"))
    tick = time.perf_counter()
    sens = measure_sensitivity(model, calib[: cfg.sensitivity_chunks * batch], family, batch_size=batch, device=device)
    costs = {n: s.damage(cfg, mask=masks.get(n)) for n, s in sens.items()}
    sensitivity_s = time.perf_counter() - tick
    sizes = {n: s.rows * s.columns for n, s in sens.items()}
    traces = {n: s.trace() for n, s in sens.items()}
    del sens
    alloc = allocate_bits(costs, sizes, cfg.avg_bits)

    def solve(name: str, solver: GPTQ) -> LayerResult:
        return solver.quantize(cfg.gptq(alloc[name]), mask=masks.get(name))

    results = sequential_compress(model, calib, LayerwiseProcessor(GPTQ, solve), **loop)
    figures = {
        "allocation": alloc,
        "avg_bits": sum(sizes[n] * alloc[n] for n in alloc) / sum(sizes.values()),
        "damage": {n: {str(b): c for b, c in costs[n].items()} for n in costs},
        "attention_aware_trace": traces,
        "sensitivity_s": sensitivity_s,
    }
    return results, figures
