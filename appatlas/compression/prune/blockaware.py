"""appatlas block-aware pruning, in the spirit of LLM-Barber (Su et al., 2024).

1. One-shot mask per layer (SparseGPT), true-sequential inside the block.
2. Re-solve: for a fixed mask, the kept weights of each layer are solved exactly (masked least squares
   with the layer Hessian, below), not left at SparseGPT's one-pass OBS values.
3. Rebuild the mask over the whole block — attention and MLP together — from the block objective
   ``L = ‖f_block(X; Ŵ) − f_block(X; W)‖² / n`` (sparse vs dense block on the same inputs).
   Its first-order Taylor term ``w · ∂L/∂w`` (LLM-Barber's ``|W ⊙ ∇W L|``) says how removing a kept
   weight or restoring a pruned one moves the *block* error — through softmax for q/k, into the MLP
   for attention weights — which layer-wise criteria cannot see. It is completed with the diagonal
   Gauss-Newton term so that kept and pruned weights are comparable:

       cost of removing kept w          = D w² − w ∂L/∂w        (w its current value)
       benefit of restoring pruned w    = −(D w² + w ∂L/∂w)     (w its dense value)
       D_rc = γ_r · E[x_c²]             (γ_r: the block's gain for output row r, from backpropagating
                                          a random Hutchinson probe; E[x_c²] from the layer input)

   Single changes are predicted well, many simultaneous ones are not, so each round changes only the
   most confident few: at most one change per row and per column of a layer, none whose predicted
   effect exceeds ``trust`` × L (massive-activation channels break the quadratic model). Unstructured:
   the best restorations pair with the cheapest removals anywhere in the block, so sparsity moves
   between layers (within ``max_shift``). 2:4: the best swap inside each group of 4; the pattern stays.
   After the mask changes, the kept weights of every layer are re-solved for the new mask (step 2).
4. Keep a round (the re-solve of step 2 included) only if the measured block error went down.

Re-solve. For layer weight ``W`` (dense), Hessian ``H = 2XXᵀ/n`` of its inputs and mask ``M``:

    min_Ŵ  ½ tr((Ŵ − W) Hλ (Ŵ − W)ᵀ)   s.t.  Ŵ ⊙ ¬M = 0,      Hλ = H + λI  (SparseGPT's damping)

Rows are independent: on row ``r``'s support ``S``, ``Ŵ_S = W_S + (Hλ)_SS⁻¹ (Hλ)_S¬S W_¬S``. One
Cholesky per row is too slow, so all rows are solved together by conjugate gradients on the masked
system ``((Ŵ − W) Hλ) ⊙ M = 0`` (Jacobi preconditioner, warm start at the current weights); every CG
step lowers the objective, so re-solving never increases a layer's (damped) error.
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
from .masks import parse_pattern
from .sparsegpt import SparseGPT


@dataclass(frozen=True)
class BlockAwareConfig:
    """Options: ``rounds`` of at most ``fraction`` · (kept weights) changes each."""

    prune: PruneConfig = field(default_factory=PruneConfig)
    rounds: int = 3
    fraction: float = 0.002
    trust: float = 0.02  # ignore single changes predicted to move L by more than this fraction
    max_shift: float = 0.1  # unstructured: a layer's sparsity stays within target ± max_shift
    grad_chunks: int = 2  # calibration chunks used for the block objective
    cg_iters: int = 16  # conjugate-gradient steps of each re-solve
    percdamp: float = 0.01  # λ = percdamp · mean(diag H), as SparseGPT


@torch.no_grad()
def resolve_masked(W: torch.Tensor, start: torch.Tensor, mask: torch.Tensor, H: torch.Tensor, *,
                   percdamp: float = 0.01, iters: int = 16) -> torch.Tensor:
    """Kept weights re-solved for ``mask`` (True = kept) toward the dense ``W`` (see the module docstring).

    Preconditioned CG from ``start`` (zero outside ``mask``), one independent system per row.
    """
    Hl = H.float().clone()
    dead = torch.diag(Hl) == 0
    Hl[dead, dead] = 1.0
    Hl.diagonal().add_(percdamp * Hl.diagonal().mean())
    keep = mask.float()
    X = start.float() * keep
    R = ((W.float() - X) @ Hl) * keep  # residual = −gradient on the support
    Z = R / Hl.diagonal()
    P, rz = Z.clone(), (R * Z).sum(1)
    for _ in range(iters):
        AP = (P @ Hl) * keep
        pap = (P * AP).sum(1)
        alpha = torch.where(pap > 0, rz / pap.clamp(min=1e-30), 0.0)[:, None]  # converged rows stop
        X += alpha * P
        R -= alpha * AP
        Z = R / Hl.diagonal()
        rz_new = (R * Z).sum(1)
        P = Z + torch.where(rz > 0, rz_new / rz.clamp(min=1e-30), 0.0)[:, None] * P
        rz = rz_new
    return X * keep


def block_error(block: nn.Module, inputs: BlockInputs, targets: list[torch.Tensor]) -> float:
    """``‖f(X) − Y‖² / n`` over the chunks."""
    with torch.no_grad():
        outs = forward_block(block, inputs)
    return sum(float(((o - y) ** 2).sum()) for o, y in zip(outs, targets, strict=True)) / inputs.n_tokens


def taylor_terms(block: nn.Module, linears: dict[str, nn.Linear], inputs: BlockInputs, targets: list[torch.Tensor]):
    """Per layer: the gradient ``∂L/∂W`` and the diagonal curvature ``D`` (both shaped like ``W``)."""
    saved = [p.requires_grad for p in block.parameters()]
    for p in block.parameters():
        p.requires_grad_(False)
    for layer in linears.values():
        layer.weight.requires_grad_(True)
        layer.weight.grad = None
    outs: dict[str, torch.Tensor] = {}
    sq_in = {n: torch.zeros(layer.in_features) for n, layer in linears.items()}
    gamma = {n: torch.zeros(layer.out_features) for n, layer in linears.items()}
    handles = []
    for name, layer in linears.items():

        def hook(_m, inp, out, name=name):
            outs[name] = out
            sq_in[name] += (inp[0].detach().float() ** 2).reshape(-1, inp[0].shape[-1]).sum(0)

        handles.append(layer.register_forward_hook(hook))
    try:
        with torch.enable_grad():
            for h, kw, y in zip(inputs.hidden, inputs.kwargs, targets, strict=True):
                out = block(h, **kw)
                out = out[0] if isinstance(out, tuple) else out
                (((out - y) ** 2).sum() / inputs.n_tokens).backward(retain_graph=True)
                names = list(outs)
                probe = torch.randn_like(out)  # Hutchinson: E[(Jᵀu)_r²] = ‖J e_r‖², the gain of row r
                grads = torch.autograd.grad(out, [outs[n] for n in names], grad_outputs=probe, allow_unused=True)
                for n, g in zip(names, grads, strict=True):
                    if g is not None:
                        gamma[n] += (g.float() ** 2).reshape(-1, g.shape[-1]).sum(0)
    finally:
        for handle in handles:
            handle.remove()
        for p, s in zip(block.parameters(), saved, strict=True):
            p.requires_grad_(s)
    n = inputs.n_tokens
    terms = {}
    for name, layer in linears.items():
        terms[name] = (layer.weight.grad.detach().float().clone(), (gamma[name] / n)[:, None] * (sq_in[name] / n)[None, :])
        layer.weight.grad = None
    return terms


def _first_of_each(key: torch.Tensor) -> torch.Tensor:
    """Mask of the entries that come first among those with the same key."""
    _, inverse = torch.unique(key, return_inverse=True)
    pos = torch.arange(key.numel())
    first = torch.full((int(inverse.max()) + 1,), key.numel()).scatter_reduce(0, inverse, pos, "amin")
    return first[inverse] == pos


def _unique_picks(order: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor | None, layer: torch.Tensor, k: int,
                  used: list[torch.Tensor]) -> list[int]:
    """The first ``k`` candidates of ``order`` keeping at most one per (layer, row) and per (layer, column),
    none on a row or column in ``used`` (the keys of earlier picks; extended with these)."""
    keyers = [lambda i: layer[i] * 2**40 + rows[i]]
    if cols is not None:
        keyers.append(lambda i: layer[i] * 2**40 + 2**39 + cols[i])
    taken = torch.cat(used) if used else torch.empty(0, dtype=torch.long)
    for key in keyers:
        order = order[~torch.isin(key(order), taken)]
        order = order[_first_of_each(key(order))] if order.numel() else order
    picks = order[:k]
    used.extend(key(picks) for key in keyers)
    return picks.tolist()


def plan_changes(
    dense: dict[str, torch.Tensor], current: dict[str, torch.Tensor], masks: dict[str, torch.Tensor],
    terms: dict[str, tuple[torch.Tensor, torch.Tensor]], cfg: BlockAwareConfig, loss: float,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """New (masks, weights) for one round (see module docstring)."""
    names = list(masks)
    cost, benefit = {}, {}
    for name in names:
        G, D = terms[name]
        w, wd = current[name], dense[name]
        cost[name] = torch.where(masks[name], D * w**2 - w * G, torch.inf)
        benefit[name] = torch.where(masks[name], -torch.inf, -(D * wd**2 + wd * G))
    limit = cfg.trust * loss
    n_kept = sum(int(m.sum()) for m in masks.values())
    k = max(1, int(cfg.fraction * n_kept))
    new_masks = {n: masks[n].clone() for n in names}
    new_weights = {n: current[n].clone() for n in names}
    nm = parse_pattern(cfg.prune.pattern)
    used: list[torch.Tensor] = []
    if nm is None:
        flat = lambda d: torch.cat([d[n].flatten() for n in names])  # noqa: E731
        c, b = flat(cost), flat(benefit)
        layer = torch.cat([torch.full((masks[n].numel(),), i) for i, n in enumerate(names)])
        offsets = torch.tensor([0] + [masks[n].numel() for n in names]).cumsum(0)
        local = torch.arange(c.numel()) - offsets[layer]
        cols_of = torch.tensor([masks[n].shape[1] for n in names])[layer]
        rows, cols = local // cols_of, local % cols_of
        c = torch.where(c.abs() <= limit, c, torch.inf)
        b = torch.where(b.abs() <= limit, b, -torch.inf)
        drop = _unique_picks(torch.topk(c, min(8 * k, c.numel()), largest=False).indices, rows, cols, layer, k, used)
        grow = _unique_picks(torch.topk(b, min(8 * k, b.numel())).indices, rows, cols, layer, k, used)
        sizes = [masks[n].numel() for n in names]
        pruned = [int((~masks[n]).sum()) for n in names]
        lo = [int(s * max(cfg.prune.sparsity - cfg.max_shift, 0.0)) for s in sizes]
        hi = [int(s * min(cfg.prune.sparsity + cfg.max_shift, 0.99)) for s in sizes]
        for d, g in zip(drop, grow, strict=False):
            if not b[g] - c[d] > 0:
                break
            ld, lg = int(layer[d]), int(layer[g])
            if pruned[ld] + 1 > hi[ld] or pruned[lg] - 1 < lo[lg]:
                continue
            pruned[ld] += 1
            pruned[lg] -= 1
            dn, gn = names[ld], names[lg]
            new_masks[dn].view(-1)[local[d]] = False
            new_weights[dn].view(-1)[local[d]] = 0.0
            new_masks[gn].view(-1)[local[g]] = True
            new_weights[gn].view(-1)[local[g]] = dense[gn].view(-1)[local[g]]
        return new_masks, new_weights
    m = nm[1]
    gains, moves = [], []
    for li, name in enumerate(names):  # best swap inside every group of m: restore b, remove a
        rows_, cols_ = masks[name].shape
        cg, bg = cost[name].view(rows_, cols_ // m, m), benefit[name].view(rows_, cols_ // m, m)
        cmin, a = cg.min(-1)
        bmax, bidx = bg.max(-1)
        ok = (cmin.abs() <= limit) & (bmax.abs() <= limit)
        gains.append(torch.where(ok, bmax - cmin, -torch.inf).flatten())
        moves.append((li, a.flatten(), bidx.flatten(), cols_ // m))
    gain = torch.cat(gains)
    layer = torch.cat([torch.full((g.numel(),), i) for i, g in enumerate(gains)])
    offsets = torch.tensor([0] + [g.numel() for g in gains]).cumsum(0)
    local = torch.arange(gain.numel()) - offsets[layer]
    groups_per_row = torch.tensor([mv[3] for mv in moves])[layer]
    order = torch.topk(gain, min(8 * k, gain.numel())).indices
    order = order[gain[order] > 0]
    picks = _unique_picks(order, local // groups_per_row, None, layer, k, used)
    for i in picks:
        li, a, bidx, gpr = moves[int(layer[i])]
        name, j = names[li], int(local[i])
        r, grp = divmod(j, gpr)
        ca, cb = grp * m + int(a[j]), grp * m + int(bidx[j])
        new_masks[name][r, ca], new_weights[name][r, ca] = False, 0.0
        new_masks[name][r, cb], new_weights[name][r, cb] = True, dense[name][r, cb]
    return new_masks, new_weights


@dataclass
class BlockAwareProcessor:
    """Block processor for appatlas block-aware pruning (plugs into ``sequential_compress``)."""

    cfg: BlockAwareConfig

    def __call__(self, block: nn.Module, inputs: BlockInputs | None, ctx: LoopContext) -> dict[str, LayerResult]:
        tick = time.perf_counter()
        cfg = self.cfg
        linears = block_linears(block, ctx.family)
        dense = {n: layer.weight.detach().float().clone() for n, layer in linears.items()}
        probe_inputs = inputs.subset(cfg.grad_chunks)
        with torch.no_grad():
            targets = forward_block(block, probe_inputs)
        hessians: dict[str, torch.Tensor] = {}
        prefix = f"{ctx.family.blocks}.{ctx.block_index}."

        def sparsegpt(name: str, solver: SparseGPT) -> LayerResult:
            hessians[name.removeprefix(prefix)] = solver.H  # kept for the re-solves
            return solver.prune(cfg.prune)

        quiet = LoopContext(ctx.family, ctx.block_index, ctx.n_blocks, ctx.device, None, ctx.state)
        results = LayerwiseProcessor(SparseGPT, sparsegpt)(block, inputs, quiet)
        first = best = block_error(block, probe_inputs, targets)
        masks = {n: r.mask for n, r in results.items()}
        weights = {n: r.weight for n, r in results.items()}
        resolved, kept_rounds = False, 0
        for round_ in range(cfg.rounds + 1):
            new_masks, start = masks, weights  # round 0: SparseGPT's masks, weights re-solved
            if round_ > 0:
                terms = taylor_terms(block, linears, probe_inputs, targets)
                new_masks, start = plan_changes(dense, weights, masks, terms, cfg, best)
            iters = cfg.cg_iters if round_ == 0 else cfg.cg_iters // 2  # later: few entries moved from a solution
            new_weights = {n: resolve_masked(dense[n], start[n], new_masks[n], hessians[n], percdamp=cfg.percdamp,
                                             iters=iters) for n in linears}
            _load(linears, new_weights)
            err = block_error(block, probe_inputs, targets)
            if err >= best:  # no better than what we have: undo; stop once a mask round fails
                _load(linears, weights)
                if round_ > 0:
                    break
                continue
            best, masks, weights = err, new_masks, new_weights
            resolved, kept_rounds = resolved or round_ == 0, kept_rounds + (round_ > 0)
        seconds = time.perf_counter() - tick
        for name, result in results.items():
            result.weight, result.mask = weights[name], masks[name]
            delta = dense[name] - weights[name]
            result.error = float(0.5 * ((delta @ hessians[name]) * delta).sum())  # as HessianLayer.output_error
            result.seconds = seconds / len(results)
            result.extra.update(block_error_init=first, block_error=best, rebuild_rounds=kept_rounds,
                                resolved=float(resolved))
            ctx.report(name, result)
        return results


def _load(linears: dict[str, nn.Linear], weights: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, layer in linears.items():
            layer.weight.copy_(weights[name])
