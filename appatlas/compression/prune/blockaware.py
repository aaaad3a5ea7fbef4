"""appatlas block-aware pruning, in the spirit of LLM-Barber (Su et al., 2024).

1. One-shot mask per layer (SparseGPT by default), true-sequential inside the block.
2. Rebuild the mask over the whole block — attention and MLP together — from the block objective
   ``L = ‖f_block(X; Ŵ) - f_block(X; W)‖² / n`` (sparse vs dense block on the same inputs).
   The first-order Taylor term of ``L`` for weight ``w`` is ``w · ∂L/∂w`` (LLM-Barber's
   ``|W ⊙ ∇W L|``); it tells how removing a kept weight, or restoring a pruned one, moves the block
   error, including how errors in q/k pass through softmax and attention errors reach the MLP.
   A first-order term alone is blind to a weight's own contribution at a least-squares optimum, so it
   is completed with the diagonal second-order term ``½ D w²``, ``D_rc = γ_r · H_cc``: ``H_cc`` from
   the layer input, ``γ_r`` the block's gain for output row ``r`` (Hutchinson: backprop a random
   probe). Then
       cost of removing kept ``w``     = ½ D w² − w ∂L/∂w
       benefit of restoring pruned ``w`` = −(½ D w² + w ∂L/∂w)     (``w`` its dense value)
   Unstructured: the best-benefit pruned weights swap with the lowest-cost kept weights across all
   linears of the block (sparsity moves between layers, within ``max_shift`` of the target).
   2:4: every group of 4 keeps its 2 highest importances (pattern stays per layer).
3. Re-solve the kept weights for the new masks (SparseGPT with a fixed mask) and keep the rebuild
   only if the block error went down.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ..families import block_linears
from ..layerwise import LayerwiseProcessor
from ..result import LayerResult
from ..sequential import BlockInputs, LoopContext, forward_block
from .magnitude import PruneConfig
from .masks import nm_mask, parse_pattern
from .sparsegpt import SparseGPT
from .wanda import Wanda


@dataclass(frozen=True)
class BlockAwareConfig:
    """Options; ``rounds`` rebuild/re-solve cycles swapping up to ``fraction`` of kept weights each."""

    prune: PruneConfig = field(default_factory=PruneConfig)
    init: str = "sparsegpt"  # "sparsegpt" | "wanda"
    rounds: int = 2
    fraction: float = 0.05
    max_shift: float = 0.1  # unstructured: a layer's sparsity stays within target ± max_shift
    grad_chunks: int = 2  # calibration chunks used for the block objective


def block_error(block: nn.Module, inputs: BlockInputs, targets: list[torch.Tensor]) -> float:
    """``‖f(X) - Y‖² / n`` over the chunks."""
    with torch.no_grad():
        outs = forward_block(block, inputs)
    return sum(float(((o - y) ** 2).sum()) for o, y in zip(outs, targets, strict=True)) / inputs.n_tokens


def taylor_terms(block: nn.Module, linears: dict[str, nn.Linear], inputs: BlockInputs, targets: list[torch.Tensor]):
    """Per layer: gradient ``∂L/∂W`` and the diagonal curvature ``D`` (same shape as ``W``)."""
    weights = [layer.weight for layer in linears.values()]
    saved = [w.requires_grad for w in block.parameters()]
    for p in block.parameters():
        p.requires_grad_(False)
    for w in weights:
        w.requires_grad_(True)
        w.grad = None
    outs: dict[str, list[torch.Tensor]] = {n: [] for n in linears}
    sq_in = {n: torch.zeros(layer.in_features) for n, layer in linears.items()}
    handles = []
    for name, layer in linears.items():

        def hook(_m, inp, out, name=name):
            outs[name].append(out)
            sq_in[name] += (inp[0].detach().float() ** 2).reshape(-1, inp[0].shape[-1]).sum(0)

        handles.append(layer.register_forward_hook(hook))
    gamma = {n: torch.zeros(layer.out_features) for n, layer in linears.items()}
    try:
        with torch.enable_grad():
            for h, kw, y in zip(inputs.hidden, inputs.kwargs, targets, strict=True):
                for lst in outs.values():
                    lst.clear()
                out = block(h, **kw)
                out = out[0] if isinstance(out, tuple) else out
                loss = ((out - y) ** 2).sum() / inputs.n_tokens
                loss.backward(retain_graph=True)
                names = list(linears)
                probe = torch.randn_like(out)  # Hutchinson probe of JᵀJ's diagonal per output row
                grads = torch.autograd.grad(out, [outs[n][0] for n in names], grad_outputs=probe, allow_unused=True)
                for n, g in zip(names, grads, strict=True):
                    if g is not None:
                        gamma[n] += (g.float() ** 2).reshape(-1, g.shape[-1]).sum(0)
    finally:
        for handle in handles:
            handle.remove()
        for p, s in zip(block.parameters(), saved, strict=True):
            p.requires_grad_(s)
    n = inputs.n_tokens
    result = {}
    for name, layer in linears.items():
        G = layer.weight.grad.detach().float().clone()
        layer.weight.grad = None
        result[name] = (G, (gamma[name] / n)[:, None] * (sq_in[name] / n)[None, :])
    return result


def rebuild_masks(
    dense: dict[str, torch.Tensor], current: dict[str, torch.Tensor], masks: dict[str, torch.Tensor],
    terms: dict[str, tuple[torch.Tensor, torch.Tensor]], cfg: BlockAwareConfig,
) -> dict[str, torch.Tensor]:
    """New masks from the Taylor importances (see module docstring)."""
    importance = {}
    for name, mask in masks.items():
        G, D = terms[name]
        w = torch.where(mask, current[name], dense[name])
        first, second = w * G, 0.5 * D * w**2
        # kept: cost of removing; pruned: benefit of restoring -> "value of having the weight"
        importance[name] = torch.where(mask, second - first, -(second + first))
    nm = parse_pattern(cfg.prune.pattern)
    if nm is not None:
        return {name: nm_mask(importance[name], *nm) for name in masks}

    names = list(masks)
    kept_v, kept_i, pruned_v, pruned_i = [], [], [], []
    for li, name in enumerate(names):
        flat, m = importance[name].flatten(), masks[name].flatten()
        idx = torch.arange(flat.numel())
        kept_v.append(flat[m])
        kept_i.append(torch.stack([torch.full_like(idx[m], li), idx[m]], 1))
        pruned_v.append(flat[~m])
        pruned_i.append(torch.stack([torch.full_like(idx[~m], li), idx[~m]], 1))
    kv, ki = torch.cat(kept_v), torch.cat(kept_i)
    pv, pi = torch.cat(pruned_v), torch.cat(pruned_i)
    k = int(cfg.fraction * kv.numel())
    low = torch.topk(kv, min(k, kv.numel()), largest=False)
    high = torch.topk(pv, min(k, pv.numel()), largest=True)
    n_swaps = int((high.values > low.values).sum())  # both sorted: swap while restoring beats removing
    sizes = [masks[n].numel() for n in names]
    pruned_now = [int((~masks[n]).sum()) for n in names]
    lo_b = [int(s * max(cfg.prune.sparsity - cfg.max_shift, 0.0)) for s in sizes]
    hi_b = [int(s * min(cfg.prune.sparsity + cfg.max_shift, 0.99)) for s in sizes]
    new = {n: masks[n].clone().flatten() for n in names}
    drop, grow = ki[low.indices[:n_swaps]].tolist(), pi[high.indices[:n_swaps]].tolist()
    di = gi = 0
    while di < len(drop) and gi < len(grow):
        (dl, dpos), (gl, gpos) = drop[di], grow[gi]
        if pruned_now[dl] + 1 > hi_b[dl]:
            di += 1
            continue
        if pruned_now[gl] - 1 < lo_b[gl]:
            gi += 1
            continue
        new[names[dl]][dpos], new[names[gl]][gpos] = False, True
        pruned_now[dl] += 1
        pruned_now[gl] -= 1
        di += 1
        gi += 1
    return {n: new[n].view_as(masks[n]) for n in names}


@dataclass
class BlockAwareProcessor:
    """Block processor for appatlas block-aware pruning (plugs into ``sequential_compress``)."""

    cfg: BlockAwareConfig

    def __call__(self, block: nn.Module, inputs: BlockInputs | None, ctx: LoopContext) -> dict[str, LayerResult]:
        tick = time.perf_counter()
        linears = block_linears(block, ctx.family)
        dense = {n: layer.weight.detach().float().clone() for n, layer in linears.items()}
        probe_inputs = inputs.subset(self.cfg.grad_chunks)
        targets = [y.detach() for y in forward_block_no_grad(block, probe_inputs)]
        solvers: dict[str, SparseGPT | Wanda] = {}
        prefix = f"{ctx.family.blocks}.{ctx.block_index}."

        def solve(full: str, solver):
            solvers[full.removeprefix(prefix)] = solver  # keep H for the re-solve
            return solver.prune(self.cfg.prune)

        init = SparseGPT if self.cfg.init == "sparsegpt" else Wanda
        results = LayerwiseProcessor(init, solve)(block, inputs, _quiet(ctx))
        best_err = block_error(block, probe_inputs, targets)
        first_err = best_err
        for _ in range(self.cfg.rounds):
            masks = {n: r.mask for n, r in results.items()}
            current = {n: layer.weight.detach().float().clone() for n, layer in linears.items()}
            terms = taylor_terms(block, linears, probe_inputs, targets)
            new_masks = rebuild_masks(dense, current, masks, terms, self.cfg)
            trial = {}
            for name, layer in linears.items():
                with torch.no_grad():
                    layer.weight.copy_(dense[name])
                resolver = SparseGPT(layer, device=ctx.device)
                resolver.H, resolver.nsamples = solvers[name].H, solvers[name].nsamples
                trial[name] = resolver.prune(self.cfg.prune, mask=new_masks[name])
                with torch.no_grad():
                    layer.weight.copy_(trial[name].weight)
            err = block_error(block, probe_inputs, targets)
            if err < best_err:
                best_err, results = err, trial
            else:
                with torch.no_grad():
                    for name, layer in linears.items():
                        layer.weight.copy_(results[name].weight)
                break
        seconds = time.perf_counter() - tick
        for name, result in results.items():
            result.seconds = seconds / len(results)
            result.extra.update(block_error_init=first_err, block_error=best_err)
            ctx.report(name, result)
        return results


def forward_block_no_grad(block: nn.Module, inputs: BlockInputs) -> list[torch.Tensor]:
    with torch.no_grad():
        return forward_block(block, inputs)


def _quiet(ctx: LoopContext) -> LoopContext:
    return LoopContext(ctx.family, ctx.block_index, ctx.n_blocks, ctx.device, None, ctx.state)
