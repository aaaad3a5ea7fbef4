"""CPU matmul paths for packed layers, with a dequantized fallback that is always correct.

* ≤4-bit layers run through torch's int4 CPU kernel (``_weight_int4pack_mm_for_cpu``). 2- and 3-bit
  codes fit the 4-bit grid, so they use the same kernel; their storage stays 2/3 bits on disk.
  The kernel computes ``(q - 8) · scale + zero`` per group, so our ``q · scale + offset`` maps to
  ``zero = offset + 8 · scale``.
* 8-bit per-channel layers run through ``_weight_int8pack_mm`` (symmetric int8): with
  ``q' = q - 128`` the offset becomes a per-row bias ``(offset + 128 · scale) · Σx``.
* Everything else (or when a kernel is missing) multiplies with the dequantized fp32 weight.

The kernels are fast with bf16 activations only; inputs are cast to bf16 and outputs back to fp32.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F

from ..quant.grid import QuantizedWeight

INT4_GROUPS = (32, 64, 128, 256)


@lru_cache(maxsize=1)
def int4_available() -> bool:
    """True if this torch build has a working int4 CPU kernel."""
    try:
        codes = torch.randint(0, 16, (64, 64), dtype=torch.int32)
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 1)
        sz = torch.ones(2, 64, 2, dtype=torch.bfloat16)
        torch.ops.aten._weight_int4pack_mm_for_cpu(torch.ones(1, 64, dtype=torch.bfloat16), packed, 32, sz)
        return True
    except (AttributeError, RuntimeError):
        return False


@lru_cache(maxsize=1)
def int8_available() -> bool:
    """True if this torch build has ``_weight_int8pack_mm``."""
    try:
        w = torch.ones(8, 16, dtype=torch.int8)
        torch.ops.aten._weight_int8pack_mm(torch.ones(1, 16, dtype=torch.bfloat16), w, torch.ones(8, dtype=torch.bfloat16))
        return True
    except (AttributeError, RuntimeError):
        return False


class DenseOp:
    """``y = x Wᵀ + b`` in fp32 (the reference and fallback path)."""

    kind = "dense"

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None):
        self.weight = weight.detach().float().contiguous()
        self.bias = None if bias is None else bias.detach().float()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class Int4Op:
    """Rows of one or more ≤4-bit layers (same group size) packed for the int4 CPU kernel."""

    kind = "int4"

    def __init__(self, quants: Sequence[QuantizedWeight], bias: torch.Tensor | None = None, *, emulate: bool = False):
        g = quants[0].group_size
        codes = torch.cat([q.codes for q in quants]).to(torch.int32)
        scale = torch.cat([q.scales for q in quants]).float()
        offset = torch.cat(
            [(-q.zeros.float() * q.scales.float()) if q.zeros is not None else q.offsets.float() for q in quants]
        )
        self.group_size = g
        self.packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes.contiguous(), 1)
        zero = offset + 8.0 * scale
        self.scales_zeros = torch.stack([scale, zero], dim=-1).transpose(0, 1).contiguous().to(torch.bfloat16)
        self.bias = None if bias is None else bias.detach().float()
        self.emulated = None
        if emulate:  # exactly the weights the kernel multiplies: (q - 8) · bf16(scale) + bf16(zero)
            sz = self.scales_zeros.float().transpose(0, 1).repeat_interleave(g, dim=1)
            self.emulated = (codes.float() - 8.0) * sz[..., 0] + sz[..., 1]
            self.kind = "int4-emulated"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).to(torch.bfloat16)
        if self.emulated is not None:  # fp32 accumulation of bf16 inputs, bf16 output: the kernel's numerics
            y = F.linear(x2.float(), self.emulated).to(torch.bfloat16).float()
        else:
            y = torch.ops.aten._weight_int4pack_mm_for_cpu(x2, self.packed, self.group_size, self.scales_zeros).float()
        y = y.reshape(*shape[:-1], y.shape[-1])
        return y if self.bias is None else y + self.bias


class Int8Op:
    """An 8-bit layer with one group per row, run through the int8 CPU kernel."""

    kind = "int8"

    def __init__(self, quant: QuantizedWeight, bias: torch.Tensor | None = None, *, emulate: bool = False):
        scale = quant.scales.float()[:, 0]
        offset = (-quant.zeros.float()[:, 0] * scale) if quant.zeros is not None else quant.offsets.float()[:, 0]
        self.weight = (quant.codes.to(torch.int16) - 128).to(torch.int8).contiguous()
        self.scale = scale.to(torch.bfloat16)
        self.scale_f32 = scale
        self.row_bias = offset + 128.0 * scale  # multiplies Σx: the asymmetric offset folded out of int8
        self.bias = None if bias is None else bias.detach().float()
        self.emulated = self.weight.float() * self.scale.float()[:, None] if emulate else None
        if emulate:
            self.kind = "int8-emulated"

    def exact_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """fp32 dequantized weight rows ``rows`` (to rescore a few outputs exactly)."""
        return self.weight[rows].float() * self.scale_f32[rows, None] + self.row_bias[rows, None]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        xb = x2.to(torch.bfloat16)
        if self.emulated is not None:
            y = F.linear(xb.float(), self.emulated).to(torch.bfloat16).float()
        else:
            y = torch.ops.aten._weight_int8pack_mm(xb, self.weight, self.scale).float()
        y = y + x2.sum(-1, keepdim=True) * self.row_bias
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], y.shape[-1])


def _int4_ok(q: QuantizedWeight) -> bool:
    cols = q.codes.shape[1]
    return q.bits <= 4 and q.group_size in INT4_GROUPS and cols % q.group_size == 0 and int4_available()


def _int8_ok(q: QuantizedWeight) -> bool:
    return q.bits == 8 and q.scales.shape[1] == 1 and int8_available()


def make_op(weights: Sequence[torch.Tensor], quants: Sequence[QuantizedWeight | None], *, kernels: bool = True,
            bias: torch.Tensor | None = None, emulate: bool = False):
    """One op computing the concatenated outputs of ``weights`` (fused along rows when possible).

    ``emulate`` builds the same ops but multiplies in fp32 with the kernel's exact weights and bf16
    activation rounding (a reference for checking the kernels). Returns ``None`` when the layers cannot
    share one op (the caller then makes one op per layer).
    """
    if kernels and all(q is not None for q in quants):
        qs = [q for q in quants if q is not None]
        if all(_int4_ok(q) for q in qs) and len({q.group_size for q in qs}) == 1:
            return Int4Op(qs, bias, emulate=emulate)
        if len(qs) == 1 and _int8_ok(qs[0]):
            return Int8Op(qs[0], bias, emulate=emulate)
    if not kernels or all(q is None for q in quants) or len(weights) == 1:
        return DenseOp(torch.cat(list(weights)), bias)
    return None


class ConcatOp:
    """Separate ops whose outputs are concatenated (when fusion is not possible)."""

    kind = "concat"

    def __init__(self, ops: Sequence):
        self.ops = list(ops)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([op(x) for op in self.ops], dim=-1)


def fused_op(weights: Sequence[torch.Tensor], quants: Sequence[QuantizedWeight | None], *, kernels: bool = True,
             biases: Sequence[torch.Tensor | None] | None = None, emulate: bool = False):
    """Op for layers reading the same input: fused when possible, else concatenated."""
    biases = list(biases) if biases is not None else [None] * len(weights)
    bias = None if all(b is None for b in biases) else torch.cat(
        [b if b is not None else torch.zeros(w.shape[0]) for w, b in zip(weights, biases, strict=True)]
    )
    op = make_op(weights, quants, kernels=kernels, bias=bias, emulate=emulate)
    if op is not None:
        return op
    return ConcatOp([make_op([w], [q], kernels=kernels, bias=b, emulate=emulate)
                     for w, q, b in zip(weights, quants, biases, strict=True)])
