"""The ranker's mixed-precision layout, chosen by measurement (`appatlas train agent --bits mixed`).

What is measured: over the training decisions, how often a quantized ranker's top choice among all of a decision's
options is fp32's (`agreement`), scored from the stored weights (decoded, numpy): the layout is then a property of
the weights alone, the same on every machine whichever int4 kernel runs there (ours and torch's round activations
differently: torch's bf16 moved the agreement by 2 decisions and the choice of w1). The rule, one part of the model
at a time, the smallest first:

1. the three 384-row matrices (`aq`, `al`, `b`: 18k of the ~19k weights) are 4-bit codes, the width of the
   compression stack's int4 kernel, in groups of one of `GROUPS` (its `INT4_GROUPS` that divide 384); the largest
   group whose agreement is the best of the groups is taken (the MLP kept fp32 meanwhile);
2. then `w1` (features x hidden) and then `w2` (hidden x 1) each get the fewest bits of `SMALL` (4, 8, fp16) that
   cost no agreement: as many decisions agree as with that matrix kept fp32.

No constant is fitted: "costs agreement" is one decision fewer. The biases and λ stay fp32 (34 numbers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from appatlas.agent.ranker import DIM, FP16, FP32, KERNEL_MATRICES, Ranker
from appatlas.compression.packed.kernels import INT4_GROUPS

__all__ = ["GROUPS", "SMALL", "Layout", "agreement", "choose_layout", "decisions"]

GROUPS = tuple(sorted((g for g in INT4_GROUPS if DIM % g == 0), reverse=True))  # 128, 64, 32: fewest scales first
SMALL = (4, 8, FP16)  # widths tried for w1 and w2, fewest bits first

Decision = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # (features, intent, words left, options) vectors


@dataclass
class Layout:
    """The chosen layout, and every layout measured on the way (description, bytes, agreeing decisions)."""

    bits: dict[str, int]
    group: int
    agree: int
    total: int
    tried: list[tuple[str, int, int]] = field(default_factory=list)

    def apply(self, ranker: Ranker) -> Ranker:
        return ranker.quantized(self.bits, {k: self.group for k in KERNEL_MATRICES})


def decisions(rows: Sequence) -> list[Decision]:
    """Each training row (`train.Row`) as the arrays `Ranker.scores` reads (vectors from the shared cache)."""
    from appatlas.agent.train import _tensors

    b = _tensors(rows)
    out = []
    for i in range(len(rows)):
        m = int(b.mask[i].sum())
        out.append((b.feats[i, :m], b.q[i], b.left[i], b.opts[i, :m]))
    return out


def top_choices(ranker: Ranker, items: Sequence[Decision]) -> np.ndarray:
    return np.array([int(np.argmax(ranker.scores(*d))) for d in items])


def agreement(ranker: Ranker, items: Sequence[Decision], reference: np.ndarray) -> int:
    """How many decisions `ranker` takes the option `reference` (fp32's top choices) takes."""
    return int((top_choices(ranker, items) == reference).sum())


def _describe(bits: dict[str, int], group: int) -> str:
    def one(k: str) -> str:
        b = bits.get(k, FP32)
        return "fp32" if b == FP32 else "fp16" if b == FP16 else f"int{b}"

    return f"aq/al/b int4 g{group}, w1 {one('w1')}, w2 {one('w2')}"


def choose_layout(ranker: Ranker, items: Sequence[Decision], *, progress: Callable[[str], None] | None = None
                  ) -> Layout:
    """The layout of the module docstring's rule for fp32 `ranker`, measured on its training decisions `items`
    (`decisions(rows)`)."""
    reference = top_choices(ranker, items)
    tried: list[tuple[str, int, int]] = []

    def measure(bits: dict[str, int], group: int) -> int:
        model = ranker.quantized(bits, {k: group for k in KERNEL_MATRICES}, kernel=False)
        agree = agreement(model, items, reference)
        tried.append((_describe(bits, group), model.nbytes(), agree))
        if progress is not None:
            progress(f"{tried[-1][0]}: {agree}/{len(items)} agree with fp32")
        return agree

    bits = {k: 4 for k in KERNEL_MATRICES}
    by_group = {g: measure(bits, g) for g in GROUPS}
    group = next(g for g in GROUPS if by_group[g] == max(by_group.values()))
    agree = by_group[group]
    for k in ("w1", "w2"):
        got: dict[int, int] = {}
        for width in SMALL:  # the part kept fp32 agreed on `agree`: the first width as good costs nothing
            got[width] = measure(bits | {k: width}, group)
            if got[width] >= agree:
                break
        width = next((w for w in SMALL if got.get(w, -1) >= agree), FP16)  # else fp16, the closest
        bits, agree = bits | {k: width}, got[width]
    return Layout(bits, group, agree, len(items), tried)
