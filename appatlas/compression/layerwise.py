"""Generic block processor for methods that solve each linear on its own (RTN, GPTQ, magnitude, Wanda,
SparseGPT, and the second phase of mixed precision)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .families import block_linears
from .result import LayerResult
from .sequential import BlockInputs, LoopContext, collect
from .stats import HessianLayer

SolveFn = Callable[[str, HessianLayer], LayerResult]  # (full layer name, solver) -> result


@dataclass
class LayerwiseProcessor:
    """Wrap each linear in ``solver``, gather statistics, call ``solve`` and write the new weight back.

    With ``true_sequential`` each layer group is calibrated after the previous groups of the block were
    compressed. Layers of one group read the same input, so they share one ``H``.
    """

    solver: type[HessianLayer]
    solve: SolveFn
    needs_stats: bool = True
    true_sequential: bool = True

    def __call__(self, block: nn.Module, inputs: BlockInputs | None, ctx: LoopContext) -> dict[str, LayerResult]:
        linears = block_linears(block, ctx.family)
        groups = ctx.family.groups
        passes = [[group] for group in groups] if self.true_sequential else [list(groups)]
        results: dict[str, LayerResult] = {}
        for pass_groups in passes:
            solvers = {name: self.solver(linears[name], device=ctx.device) for g in pass_groups for name in g}
            if self.needs_stats and inputs is not None:
                collect(block, {g[0]: linears[g[0]] for g in pass_groups}, solvers, inputs)
                for g in pass_groups:
                    for name in g[1:]:
                        solvers[name].H, solvers[name].nsamples = solvers[g[0]].H, solvers[g[0]].nsamples
            for g in pass_groups:
                for name in g:
                    result = self.solve(f"{ctx.family.blocks}.{ctx.block_index}.{name}", solvers[name])
                    with torch.no_grad():
                        linears[name].weight.copy_(result.weight.to(linears[name].weight))
                    results[name] = result
                    ctx.report(name, result)
        return results
