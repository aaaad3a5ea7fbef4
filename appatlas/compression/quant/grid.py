"""Asymmetric min/max quantization grid, per group of input columns.

A group of weights ``w`` is stored as codes ``q`` in ``[0, 2**bits - 1]`` with

    w ≈ q * scale + offset,    scale = (max(w) - min(w)) / (2**bits - 1),    offset = min(w)

``scale`` and ``offset`` are rounded to fp16 *before* rounding the codes, so what is quantized against
is exactly what is stored. This float-offset form is llama.cpp's Q4_1 and what torch's int4 CPU kernel
computes, so SmolLM2's Q4_1 weights round-trip losslessly at 4 bits with groups of 32.

With ``zero_on_grid`` (used when a layer is also pruned) the range includes 0 and the offset is
``-zero * scale`` with an integer ``zero``, so pruned weights decode to exactly 0.

``bits`` may differ per column group (``group_bits``, used by mixed precision): group ``j`` then has
codes in ``[0, 2**group_bits[j] - 1]``; every width <= 4 still runs through the same int4 kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_TINY = 2.0**-24  # smallest positive fp16 (subnormal); keeps scales non-zero after rounding


@dataclass
class GroupParams:
    """Grid of one column group: ``scale``/``offset`` of shape ``[rows]``; ``zero`` set in zero-on-grid mode."""

    scale: torch.Tensor
    offset: torch.Tensor
    zero: torch.Tensor | None = None


def _grid(wmin: torch.Tensor, wmax: torch.Tensor, bits: int, zero_on_grid: bool) -> GroupParams:
    maxq = 2**bits - 1
    scale = (wmax - wmin) / maxq
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    scale = scale.half().float().clamp(min=_TINY)
    if zero_on_grid:
        zero = torch.round(-wmin / scale).clamp(0, maxq)
        return GroupParams(scale, -zero * scale, zero)
    return GroupParams(scale, wmin.half().float())


def find_params(w: torch.Tensor, bits: int, *, zero_on_grid: bool = False, clip: bool = False) -> GroupParams:
    """Min/max grid for each row of ``w`` (shape ``[rows, group]``).

    With ``clip`` the range is shrunk towards its centre where that lowers ``Σ(w - Q(w))²`` (the
    search of the GPTQ reference code, on a coarser grid of 10 steps); the unshrunk range is always a candidate,
    so weights already on a grid stay lossless.
    """
    wmin, wmax = w.min(dim=1).values, w.max(dim=1).values
    if zero_on_grid:
        wmin, wmax = wmin.clamp(max=0), wmax.clamp(min=0)
    best = _grid(wmin, wmax, bits, zero_on_grid)
    if not clip:
        return best
    best_err = _clip_error(w, best, bits)
    for shrink in CLIP_STEPS:
        cand = _grid(wmin * shrink, wmax * shrink, bits, zero_on_grid)
        err = _clip_error(w, cand, bits)
        better = err < best_err
        if better.any():
            best_err = torch.where(better, err, best_err)
            best.scale = torch.where(better, cand.scale, best.scale)
            best.offset = torch.where(better, cand.offset, best.offset)
            if best.zero is not None:
                best.zero = torch.where(better, cand.zero, best.zero)
    return best


CLIP_STEPS = tuple(1.0 - 0.05 * i for i in range(1, 11))  # shrink factors 0.95 .. 0.5


def _clip_error(w: torch.Tensor, params: GroupParams, bits: int) -> torch.Tensor:
    q = dequantize_codes(quantize_codes(w, params, bits), params)
    return ((q - w) ** 2).sum(1)


def static_groups(W: torch.Tensor, bits: int, group_size: int, *, zero_on_grid: bool = False,
                  clip: bool = False) -> list[GroupParams]:
    """Grids of every column group of ``W``, found in one vectorised pass."""
    rows, cols = W.shape
    n = cols // group_size
    flat = W.reshape(rows, n, group_size).transpose(0, 1).reshape(n * rows, group_size)
    p = find_params(flat, bits, zero_on_grid=zero_on_grid, clip=clip)
    split = [t.view(n, rows) if t is not None else None for t in (p.scale, p.offset, p.zero)]
    return [GroupParams(split[0][i], split[1][i], None if split[2] is None else split[2][i]) for i in range(n)]


def quantize_codes(w: torch.Tensor, params: GroupParams, bits: int) -> torch.Tensor:
    """Integer codes (as float) of ``w`` (``[rows]`` or ``[rows, k]``) on the grid."""
    scale, offset = params.scale, params.offset
    if w.dim() == 2:
        scale, offset = scale[:, None], offset[:, None]
    return torch.clamp(torch.round((w - offset) / scale), 0, 2 ** int(bits) - 1)


def mixed_static_groups(W: torch.Tensor, group_bits: list[int], group_size: int, *, zero_on_grid: bool = False,
                        clip: bool = False) -> list[GroupParams]:
    """:func:`static_groups` where column group ``j`` has its own width ``group_bits[j]``."""
    grids = {b: static_groups(W, b, group_size, zero_on_grid=zero_on_grid, clip=clip) for b in set(group_bits)}
    return [grids[b][j] for j, b in enumerate(group_bits)]


def dequantize_codes(q: torch.Tensor, params: GroupParams) -> torch.Tensor:
    """Inverse of :func:`quantize_codes`."""
    scale, offset = params.scale, params.offset
    if q.dim() == 2:
        scale, offset = scale[:, None], offset[:, None]
    return q * scale + offset


@dataclass
class QuantizedWeight:
    """A quantized ``[rows, cols]`` weight: codes plus per-(row, group) scale and offset (or zero)."""

    codes: torch.Tensor  # uint8 [rows, cols]
    scales: torch.Tensor  # fp16 [rows, n_groups]
    offsets: torch.Tensor | None  # fp16 [rows, n_groups], float-offset mode
    zeros: torch.Tensor | None  # uint8 [rows, n_groups], zero-on-grid mode
    bits: int  # the widest code (all codes when ``group_bits`` is None)
    group_size: int
    group_bits: torch.Tensor | None = None  # uint8 [n_groups]: width of each column group (mixed precision)

    @property
    def avg_bits(self) -> float:
        """Code bits per weight (the average width when groups differ)."""
        return float(self.group_bits.float().mean()) if self.group_bits is not None else float(self.bits)

    def dequantize(self) -> torch.Tensor:
        """fp32 weight; exact inverse of how the codes were made."""
        scale = self.scales.float().repeat_interleave(self.group_size, dim=1)
        if self.zeros is not None:
            offset = -self.zeros.float().repeat_interleave(self.group_size, dim=1) * scale
        else:
            offset = self.offsets.float().repeat_interleave(self.group_size, dim=1)
        return self.codes.float() * scale + offset

    def storage_bits(self) -> int:
        """Bits this weight takes on disk: packed codes plus fp16 scales and offsets (or uint8 zeros)."""
        extra = self.zeros.numel() * 8 if self.zeros is not None else self.offsets.numel() * 16
        if self.group_bits is not None:  # codes at their group's width, plus one byte per group for the width
            code_bits = self.codes.shape[0] * self.group_size * int(self.group_bits.sum()) + 8 * self.group_bits.numel()
        else:
            code_bits = self.codes.numel() * self.bits
        return code_bits + self.scales.numel() * 16 + extra


def assemble(codes: torch.Tensor, groups: list[GroupParams], *, bits: int, group_size: int,
             group_bits: list[int] | None = None) -> QuantizedWeight:
    """Build a :class:`QuantizedWeight` from float codes ``[rows, cols]`` and one ``GroupParams`` per group
    (``group_bits``: per-group widths, then ``bits`` is their maximum)."""
    scales = torch.stack([g.scale for g in groups], dim=1).half()
    widths = None
    if group_bits is not None and len(set(group_bits)) > 1:
        widths, bits = torch.tensor(group_bits, dtype=torch.uint8), max(group_bits)
    elif group_bits is not None:
        bits = group_bits[0]
    if groups[0].zero is not None:
        zeros = torch.stack([g.zero for g in groups], dim=1).to(torch.uint8)
        return QuantizedWeight(codes.to(torch.uint8), scales, None, zeros, bits, group_size, widths)
    offsets = torch.stack([g.offset for g in groups], dim=1).half()
    return QuantizedWeight(codes.to(torch.uint8), scales, offsets, None, bits, group_size, widths)


def resolve_group_size(group_size: int, cols: int) -> int:
    """``-1`` (or a size that does not divide ``cols``) means one group per row."""
    if group_size <= 0 or group_size >= cols or cols % group_size:
        return cols
    return group_size
