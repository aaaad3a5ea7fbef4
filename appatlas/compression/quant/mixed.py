"""appatlas mixed precision, in the spirit of APTQ (Guan et al., DAC 2024) and SliM-LLM (Huang et al., 2024).

Every column group (``group_size`` inputs of one linear, all its rows) of every block linear gets a
width from {2, 3, 4} so that the weight-count average meets a budget, spending bits where the model
is most sensitive. The unit is the column group, not the layer: input channels differ in activation
energy by orders of magnitude, so within one layer some groups need 4 bits and others survive 2.
All widths share the group's scale/offset layout, so the int4 kernel runs every layer unchanged.

Sensitivity is second order and attention-aware. The Hessian of the language-model loss with respect
to a layer's weight is taken in Kronecker form ``H_ℓ ⊗ F_ℓ`` (K-FAC / Gauss-Newton):
``H_ℓ = 2XXᵀ/n`` from the layer input and ``F_ℓ`` the (diagonal) Fisher of the loss with respect to the
layer's outputs, obtained by backpropagating the loss through the whole model. Because that gradient
flows back through softmax(QKᵀ)V, the q/k/v weights are scored by how their errors actually move the
attention output and everything after it — not by their own output error (APTQ's point).
For column group ``j`` quantized at ``b`` bits (round-to-nearest error ``ΔW_b``) the expected loss
increase, keeping the Hessian block of the group (``H_jj``), is

    Ω_ℓj(b) = ρ_ℓ(b) · Σ_r F_ℓ,r · [ΔW_b,j (H_ℓ,jj/2) ΔW_b,jᵀ]_rr

where ``ρ_ℓ(b)`` is how much GPTQ's error feedback lowers the layer's damage, measured once per layer
(GPTQ solve over RTN at the widths in ``exact_bits``; wider widths use the widest ratio). The allocator
solves the multiple-choice knapsack ``min Σ Ω_ℓj(b_ℓj)`` s.t. ``Σ n_ℓj b_ℓj ≤ avg · Σ n_ℓj`` by a
Lagrangian sweep plus a greedy fill of the remaining budget. Phase B quantizes every layer with GPTQ
at its allocated per-group widths through the sequential loop.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
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
    """Budget and candidate widths (per column group of ``group_size`` inputs)."""

    avg_bits: float = 3.0
    choices: tuple[int, ...] = (2, 3, 4)
    group_size: int = 32
    sensitivity_chunks: int = 2  # calibration chunks backpropagated for H and F
    exact_bits: tuple[int, ...] = (3,)  # widths whose GPTQ/RTN damage ratio is solved per layer (others: nearest)
    act_order: bool = True
    percdamp: float = 0.01

    def gptq(self, bits: int, group_bits: tuple[int, ...] | None = None) -> GPTQConfig:
        return GPTQConfig(max(group_bits) if group_bits else bits, self.group_size, act_order=self.act_order,
                          percdamp=self.percdamp, group_bits=group_bits)


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

    def damage(self, cfg: MixedPrecisionConfig, *, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``Ω_ℓj(b)`` as a ``[n_groups, len(cfg.choices)]`` tensor: expected loss increase of column
        group ``j`` of this layer quantized at ``cfg.choices[k]`` bits."""
        W = self.weight()
        Wm = W if mask is None else W * mask
        g = resolve_group_size(cfg.group_size, self.columns)
        n = self.columns // g
        H_jj = torch.stack([self.H[j * g : (j + 1) * g, j * g : (j + 1) * g] for j in range(n)])  # [n, g, g]
        F = self.F / max(self.tokens, 1)
        rtn = {b: self._rtn(Wm, b, g, mask is not None) for b in set(cfg.choices) | set(cfg.exact_bits)}
        ratio = {}
        for b in cfg.exact_bits:  # how much GPTQ's error feedback saves over RTN, for this layer
            omega_rtn = self._omega(rtn[b])
            ratio[b] = self._omega(self.quantize(cfg.gptq(b), mask=mask).weight) / omega_rtn if omega_rtn > 0 else 1.0
        out = torch.empty(n, len(cfg.choices))
        for k, b in enumerate(cfg.choices):
            D = (W - rtn[b]).view(self.rows, n, g)
            per_group = 0.5 * torch.einsum("rng,ngh,rnh->rn", D, H_jj, D)  # [rows, n]
            rho = ratio.get(b, ratio[min(cfg.exact_bits, key=lambda e: abs(e - b))])
            out[:, k] = rho * (F[:, None] * per_group).sum(0)
        return out

    def _rtn(self, W: torch.Tensor, bits: int, g: int, zero_on_grid: bool) -> torch.Tensor:
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


def allocate_widths(costs: torch.Tensor, sizes: torch.Tensor, widths: Sequence[int], avg_bits: float) -> torch.Tensor:
    """Multiple-choice knapsack: for each item ``i`` (row of ``costs``, ``sizes[i]`` weights) the index
    ``k`` of its width ``widths[k]`` minimising ``Σ costs[i, k_i]`` with ``Σ sizes_i · widths[k_i] ≤ avg · Σ sizes``."""
    w = torch.tensor(widths, dtype=torch.float64)
    costs, sizes = costs.double(), sizes.double()
    budget = avg_bits * float(sizes.sum())
    if float(sizes.sum()) * float(w.min()) > budget + 1e-6:
        raise ConfigError(f"average {avg_bits} bits is below the smallest width {min(widths)}; raise --bits")
    order = torch.argsort(w)  # ties go to the narrower width
    costs, w = costs[:, order], w[order]

    def pick(lam: float) -> torch.Tensor:
        return torch.argmin(costs + lam * sizes[:, None] * w[None, :], dim=1)

    def used(idx: torch.Tensor) -> float:
        return float((sizes * w[idx]).sum())

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
    idx = pick(hi)
    if used(idx) > budget:  # multiplier search ran out of range: start from the narrowest widths
        idx = torch.zeros_like(idx)
    rows = torch.arange(len(idx))
    while True:  # greedy fill: best damage reduction per extra bit that still fits
        spare = budget - used(idx)
        extra = sizes[:, None] * (w[None, :] - w[idx][:, None])
        gain = costs[rows, idx][:, None] - costs
        rate = torch.where((extra > 0) & (extra <= spare + 1e-6) & (gain > 0), gain / extra, -1.0)
        best = int(torch.argmax(rate))
        if float(rate.view(-1)[best]) <= 0:
            return order[idx]
        idx[best // len(widths)] = best % len(widths)


def allocate_bits(
    costs: dict[str, dict[int, float]], sizes: dict[str, int], avg_bits: float
) -> dict[str, int]:
    """:func:`allocate_widths` on named items: one width per name from its ``costs[name]`` table."""
    names = list(costs)
    widths = sorted(costs[names[0]])
    table = torch.tensor([[costs[n][b] for b in widths] for n in names])
    idx = allocate_widths(table, torch.tensor([sizes[n] for n in names]), widths, avg_bits)
    return {n: widths[int(k)] for n, k in zip(names, idx, strict=True)}


def mixed_precision_compress(
    model: nn.Module,
    calib: torch.Tensor,
    cfg: MixedPrecisionConfig,
    *,
    masks: dict[str, torch.Tensor] | None = None,
    **loop: Any,
) -> tuple[dict[str, LayerResult], dict[str, Any]]:
    """Measure ``Ω_ℓj(b)``; allocate per-group widths; quantize with GPTQ at those widths (sequentially).

    Returns the layer results and figures (per-layer average width and width histogram, achieved
    average bits, attention-aware traces).
    """
    masks = masks or {}
    family = loop.get("family") or family_for(model)
    batch = loop.get("batch_size", 4)
    device = torch.device(loop.get("device", "cpu"))
    tick = time.perf_counter()
    sens = measure_sensitivity(model, calib[: cfg.sensitivity_chunks * batch], family, batch_size=batch, device=device)
    costs = {n: s.damage(cfg, mask=masks.get(n)) for n, s in sens.items()}
    sensitivity_s = time.perf_counter() - tick
    group_sizes = {n: s.rows * (s.columns // costs[n].shape[0]) for n, s in sens.items()}
    traces = {n: s.trace() for n, s in sens.items()}
    del sens
    names = list(costs)
    table = torch.cat([costs[n] for n in names])
    sizes = torch.cat([torch.full((costs[n].shape[0],), group_sizes[n]) for n in names])
    idx = allocate_widths(table, sizes, cfg.choices, cfg.avg_bits)
    alloc, start = {}, 0
    for n in names:
        k = costs[n].shape[0]
        alloc[n] = tuple(cfg.choices[int(i)] for i in idx[start : start + k])
        start += k

    def solve(name: str, solver: GPTQ) -> LayerResult:
        return solver.quantize(cfg.gptq(max(alloc[name]), alloc[name]), mask=masks.get(name))

    results = sequential_compress(model, calib, LayerwiseProcessor(GPTQ, solve), **loop)
    chosen = torch.tensor(cfg.choices, dtype=torch.float64)[idx]
    figures = {
        "avg_bits": float((chosen * sizes).sum() / sizes.sum()),
        "layer_avg_bits": {n: sum(a) / len(a) for n, a in alloc.items()},
        "width_share": {str(b): float(sizes[chosen == b].sum() / sizes.sum()) for b in cfg.choices},
        "predicted_damage": float(table.double()[torch.arange(len(idx)), idx].sum()),
        "attention_aware_trace": traces,
        "sensitivity_s": sensitivity_s,
    }
    return results, figures
