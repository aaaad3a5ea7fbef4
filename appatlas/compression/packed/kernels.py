"""CPU matmul paths for packed layers, with a dequantized fallback that is always correct.

* ≤4-bit layers run through our int4 × int8 kernel (``vnni.py``: AVX512-VNNI, AVX-VNNI or AVX2, chosen by
  the CPU's features or ``$APPATLAS_INT4_KERNEL``), else through torch's int4 CPU kernel
  (``_weight_int4pack_mm_for_cpu``). 2- and 3-bit
  codes fit the 4-bit grid, so they use the same kernel; their storage stays 2/3 bits on disk.
  The kernel computes ``(q - 8) · scale + zero`` per group, so our ``q · scale + offset`` maps to
  ``zero = offset + 8 · scale``.
* 8-bit per-channel layers run through ``_weight_int8pack_mm`` (symmetric int8): with
  ``q' = q - 128`` the offset becomes a per-row bias ``(offset + 128 · scale) · Σx``.
* Everything else (or when a kernel is missing) multiplies with the dequantized fp32 weight.

The kernels are fast with bf16 activations only; inputs are cast to bf16 and outputs back to fp32.
Their scale and zero are bf16 too, so a kernel's weight differs slightly from the stored one;
``logit_bound`` turns all of this into a rigorous per-output error bound (used to certify a greedy
choice made from kernel logits).

Every op computes ``run(x, *tensors)`` from its tensors and a few static settings, so the same op of
every block can be stacked (``stack_ops``): the decoder then holds one tensor per field instead of one
per block, which keeps ``torch.compile``'s guards — evaluated on every call — few.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F

from ..errors import ConfigError, KernelError
from ..quant.grid import QuantizedWeight
from .vnni import KERNELS, kernel_fits, pack_vnni, quantize_activation, select_kernel

INT4_GROUPS = (32, 64, 128, 256)
_U_BF16 = 2.0**-8  # unit roundoff of bf16 (8 significant bits)
_U_FP32 = 2.0**-24


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


class _Op:
    """``y = x Wᵀ (+ b)``; subclasses name their tensor ``fields`` and compute ``run(x, *tensors)``."""

    kind = "?"
    fields: tuple[str, ...] = ()
    stackable = True

    def tensors(self) -> tuple[torch.Tensor | None, ...]:
        return tuple(getattr(self, f) for f in self.fields)

    def settings(self) -> tuple:
        """Everything besides the tensors that ``run`` reads (ops stack only when these agree)."""
        return (type(self),)

    def run(self, x: torch.Tensor, *tensors: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x, *self.tensors())


class DenseOp(_Op):
    """``y = x Wᵀ + b`` in fp32 (the reference and fallback path), or in bf16 (``dtype``; output fp32)."""

    kind = "dense"
    fields = ("weight", "bias")

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None, dtype: torch.dtype = torch.float32):
        self.dtype = dtype
        self.weight = weight.detach().to(dtype).contiguous()
        self.bias = None if bias is None else bias.detach().to(dtype)
        if dtype != torch.float32:
            self.kind = f"dense-{str(dtype).removeprefix('torch.')}"

    def settings(self) -> tuple:
        return (type(self), self.dtype)

    def run(self, x, weight, bias):
        if self.dtype == torch.float32:
            return F.linear(x, weight, bias)
        return F.linear(x.to(self.dtype), weight, bias).float()


def _code_gap(stored: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Largest ``|stored - kernel|`` over the code axis (last): how far the kernel's weight can be from the
    stored one for any code, per row (and group)."""
    return (stored.double() - kernel.double()).abs().amax(-1).float()


class Int4Op(_Op):
    """Rows of one or more ≤4-bit layers (same group size) packed for the int4 CPU kernel.

    ``bound=True`` also keeps what :meth:`logit_bound` needs (done for the ``lm_head`` only).
    """

    kind = "int4"
    fields = ("packed", "scales_zeros", "bias")

    def __init__(self, quants: Sequence[QuantizedWeight], bias: torch.Tensor | None = None, *, emulate: bool = False,
                 bound: bool = False):
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
        # what the kernel multiplies: (q - 8) · bf16(scale) + bf16(zero), per [row, group]
        k_scale, k_zero = self.scales_zeros.float().transpose(0, 1).unbind(-1)
        self.emulated = None
        if emulate:
            self.emulated = (codes.float() - 8.0) * k_scale.repeat_interleave(g, 1) + k_zero.repeat_interleave(g, 1)
            self.kind, self.stackable = "int4-emulated", False
        if bound:
            q = torch.arange(16.0)
            stored = q * scale[..., None] + offset[..., None]  # what dequantize() gives for each code
            # [groups, rows]: a vector-matrix product per token reads it in one pass
            self.gap = _code_gap(stored, (q - 8.0) * k_scale[..., None] + k_zero[..., None]).t().contiguous()
            self.row_norm = torch.cat([  # ‖w̃_i‖₂ of the kernel's rows, in chunks (the head is 49152 rows)
                ((codes[r : r + 4096].float() - 8.0) * k_scale[r : r + 4096].repeat_interleave(g, 1)
                 + k_zero[r : r + 4096].repeat_interleave(g, 1)).norm(dim=1)
                for r in range(0, codes.shape[0], 4096)])

    def settings(self) -> tuple:
        return (type(self), self.group_size)

    def run(self, x, packed, scales_zeros, bias):
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).to(torch.bfloat16)
        if self.emulated is not None:  # fp32 accumulation of bf16 inputs, bf16 output: the kernel's numerics
            y = F.linear(x2.float(), self.emulated).to(torch.bfloat16).float()
        else:
            y = torch.ops.aten._weight_int4pack_mm_for_cpu(x2, packed, self.group_size, scales_zeros).float()
        y = y.reshape(*shape[:-1], y.shape[-1])
        return y if bias is None else y + bias

    def logit_bound(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per output, a bound on ``|y - x Wᵀ|`` for ``y = self(x)`` (``x`` 1-D) and the stored weight ``W``.

        Four terms: bf16 rounding of ``x`` (Hölder, ``‖x̃ - x‖₂·‖w̃_i‖₂``); fp32 accumulation of ``K``
        products (``K·u·‖x̃‖₂·‖w̃_i‖₂``); the kernel's bf16 scale/zero against the stored fp16 grid
        (``Σ_g gap_ig·‖x_g‖₁``); and bf16 rounding of the output (``u/(1-u)·|y_i|``).
        """
        xb = x.to(torch.bfloat16).float()
        k = x.numel()
        err = ((xb - x).norm() + (k + 2) * _U_FP32 * xb.norm()) * self.row_norm
        err = err + x.abs().view(-1, self.group_size).sum(1) @ self.gap
        out = y if self.bias is None else y - self.bias
        return err + _U_BF16 / (1 - _U_BF16) * out.abs()


class Int8Op(_Op):
    """An 8-bit layer with one group per row, run through the int8 CPU kernel.

    ``bound=True`` also keeps what :meth:`logit_bound` needs.
    """

    kind = "int8"
    fields = ("weight", "scale", "row_bias", "bias")

    def __init__(self, quant: QuantizedWeight, bias: torch.Tensor | None = None, *, emulate: bool = False,
                 bound: bool = False):
        scale = quant.scales.float()[:, 0]
        offset = (-quant.zeros.float()[:, 0] * scale) if quant.zeros is not None else quant.offsets.float()[:, 0]
        self.weight = (quant.codes.to(torch.int16) - 128).to(torch.int8).contiguous()
        self.scale = scale.to(torch.bfloat16)
        self.row_bias = offset + 128.0 * scale  # multiplies Σx: the asymmetric offset folded out of int8
        self.bias = None if bias is None else bias.detach().float()
        self.emulated = None
        if emulate:
            self.emulated = self.weight.float() * self.scale.float()[:, None]
            self.kind, self.stackable = "int8-emulated", False
        if bound:
            q = torch.arange(-128.0, 128.0)
            stored = (q + 128.0) * scale[:, None] + offset[:, None]
            self.gap = _code_gap(stored, q * self.scale.float()[:, None] + self.row_bias[:, None])  # [rows]
            self.row_norm = torch.cat([(self.weight[r : r + 4096].float() * self.scale[r : r + 4096, None].float())
                                       .norm(dim=1) for r in range(0, self.weight.shape[0], 4096)])

    def run(self, x, weight, scale, row_bias, bias):
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        xb = x2.to(torch.bfloat16)
        if self.emulated is not None:
            y = F.linear(xb.float(), self.emulated).to(torch.bfloat16).float()
        else:
            y = torch.ops.aten._weight_int8pack_mm(xb, weight, scale).float()
        y = y + x2.sum(-1, keepdim=True) * row_bias
        if bias is not None:
            y = y + bias
        return y.reshape(*shape[:-1], y.shape[-1])

    def logit_bound(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """As :meth:`Int4Op.logit_bound`; the ``row_bias · Σx`` part is fp32 and outside the bf16 rounding."""
        xb = x.to(torch.bfloat16).float()
        k = x.numel()
        part = x.sum() * self.row_bias
        err = ((xb - x).norm() + (k + 2) * _U_FP32 * xb.norm()) * self.row_norm
        err = err + self.gap * x.abs().sum() + (k + 2) * _U_FP32 * x.abs().sum() * self.row_bias.abs()
        out = y - part if self.bias is None else y - part - self.bias
        return err + _U_BF16 / (1 - _U_BF16) * out.abs()


class Int4VnniOp(_Op):
    """Rows of one or more ≤4-bit layers (same group size) for our int4 × int8 kernel (``vnni.py``).

    ``isa``: one of ``vnni.KERNELS`` (default: :func:`select_kernel`'s choice; raises ``KernelError`` when it is
    torch's). ``kind`` names it, e.g. ``int4-avx2``. ``bound=True`` also keeps what :meth:`logit_bound` needs.
    """

    fields = ("w", "bias")

    def __init__(self, quants: Sequence[QuantizedWeight], bias: torch.Tensor | None = None, *, emulate: bool = False,
                 bound: bool = False, isa: str | None = None):
        if not kernel_fits(quants):
            raise ConfigError("these layers do not fit the int4 x int8 kernel; build the op with make_op(), which "
                              "falls back to torch's int4 kernel")
        isa = isa or ("avx512vnni" if emulate else select_kernel())
        if isa not in KERNELS:
            raise KernelError(f"no int4 x int8 kernel runs here ({isa!r} chosen); use make_op(), which takes torch's")
        if not emulate:
            select_kernel(isa)  # checks the CPU and builds
        self.isa, self.isa_id, self.kind = isa, KERNELS.index(isa), f"int4-{isa}"
        self.group_size = quants[0].group_size
        self.w = pack_vnni(quants)
        self.bias = None if bias is None else bias.detach().float()
        self.emulated = None
        if emulate:  # the stored weight; the rounded activation meets q·s, the exact one meets the offset o
            self.emulated = torch.cat([q.dequantize() for q in quants])
            offsets = torch.cat([q.offsets for q in quants if q.offsets is not None])  # all are: see vnni_ok
            self.emulated_offset = offsets.float().repeat_interleave(self.group_size, 1)
            self.kind, self.stackable = "int4-x8-emulated", False
        if bound:  # row norms of q·s and of |q·s| + |o|, in chunks (the head is 49152 rows)
            qs_norm, abs_norm = [], []
            for q in quants:
                assert q.offsets is not None  # kernel_fits checked it
                for r in range(0, q.codes.shape[0], 4096):
                    qs = q.codes[r : r + 4096].float() * q.scales[r : r + 4096].float().repeat_interleave(q.group_size, 1)
                    off = q.offsets[r : r + 4096].float().abs().repeat_interleave(q.group_size, 1)
                    qs_norm.append(qs.norm(dim=1))
                    abs_norm.append((qs.abs() + off).norm(dim=1))
            self.qs_norm, self.abs_norm = torch.cat(qs_norm), torch.cat(abs_norm)

    def settings(self) -> tuple:
        return (type(self), self.group_size, self.isa_id)

    def logit_bound(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per output, a bound on ``|y - x Wᵀ|`` for ``y = self(x)`` (``x`` 1-D) and the stored weight ``W``.

        The activation's rounding, ``|x_k − x̃_k| ≤ d_g/508 + 2u|x_k|``, by Hölder with ``‖(q·s)_i‖₂``; and
        the fp32 arithmetic — about ``2G`` chained fma per output, the group sums of ``x``, the stored
        weight's own rounding — as ``(2G + 40)·u·‖(|q·s| + |o|)_i‖₂·(‖x‖₂ + ‖x̃‖₂)``. The codes, scales,
        offsets and int32 sums are exact.
        """
        g = self.group_size
        d = x.abs().view(-1, g).amax(1) / 127.0
        dx = (g * (d / 508.0) ** 2).sum().sqrt() + 2 * _U_FP32 * x.norm()
        gamma = (2 * x.numel() // g + 40) * _U_FP32
        return dx * self.qs_norm + gamma * self.abs_norm * (2 * x.norm() + dx)

    def run(self, x, w, bias):
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).float()
        if self.emulated is not None:
            xq = quantize_activation(x2, self.group_size)
            y = F.linear(xq, self.emulated) + F.linear(x2 - xq, self.emulated_offset)
        else:
            y = torch.ops.appatlas.int4_mm(x2, w, self.group_size, self.isa_id)
        y = y.reshape(*shape[:-1], y.shape[-1])
        return y if bias is None else y + bias


def _int4_ok(q: QuantizedWeight) -> bool:
    cols = q.codes.shape[1]
    return q.bits <= 4 and q.group_size in INT4_GROUPS and cols % q.group_size == 0 and int4_available()


def _int8_ok(q: QuantizedWeight) -> bool:
    return q.bits == 8 and q.scales.shape[1] == 1 and int8_available()


def make_op(weights: Sequence[torch.Tensor], quants: Sequence[QuantizedWeight | None], *, kernels: bool = True,
            bias: torch.Tensor | None = None, emulate: bool = False, bound: bool = False,
            int4_kernel: str | None = None, dense_dtype: torch.dtype = torch.float32):
    """One op computing the concatenated outputs of ``weights`` (fused along rows when possible).

    ``emulate`` builds the same ops but multiplies in fp32 with the kernel's exact weights and
    activation rounding (a reference for checking the kernels); ``bound`` prepares ``logit_bound``;
    ``int4_kernel`` picks the ≤4-bit kernel as :func:`vnni.select_kernel` does (``"torch"`` keeps ours out).
    Returns ``None`` when the layers cannot share one op (the caller then makes one op per layer).
    """
    if kernels and all(q is not None for q in quants):
        qs = [q for q in quants if q is not None]
        isa = select_kernel(int4_kernel)
        if isa != "torch" and kernel_fits(qs):
            return Int4VnniOp(qs, bias, emulate=emulate, bound=bound, isa=isa)
        if all(_int4_ok(q) for q in qs) and len({q.group_size for q in qs}) == 1:
            return Int4Op(qs, bias, emulate=emulate, bound=bound)
        if len(qs) == 1 and _int8_ok(qs[0]):
            return Int8Op(qs[0], bias, emulate=emulate, bound=bound)
    if not kernels or all(q is None for q in quants) or len(weights) == 1:
        return DenseOp(torch.cat(list(weights)), bias, dense_dtype)
    return None


class ConcatOp(_Op):
    """Separate ops whose outputs are concatenated (when fusion is not possible)."""

    kind = "concat"
    stackable = False

    def __init__(self, ops: Sequence):
        self.ops = list(ops)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([op(x) for op in self.ops], dim=-1)


def fused_op(weights: Sequence[torch.Tensor], quants: Sequence[QuantizedWeight | None], *, kernels: bool = True,
             biases: Sequence[torch.Tensor | None] | None = None, emulate: bool = False,
             int4_kernel: str | None = None, dense_dtype: torch.dtype = torch.float32):
    """Op for layers reading the same input: fused when possible, else concatenated."""
    biases = list(biases) if biases is not None else [None] * len(weights)
    bias = None if all(b is None for b in biases) else torch.cat(
        [b if b is not None else torch.zeros(w.shape[0]) for w, b in zip(weights, biases, strict=True)]
    )
    op = make_op(weights, quants, kernels=kernels, bias=bias, emulate=emulate, int4_kernel=int4_kernel,
                 dense_dtype=dense_dtype)
    if op is not None:
        return op
    return ConcatOp([make_op([w], [q], kernels=kernels, bias=b, emulate=emulate, int4_kernel=int4_kernel,
                             dense_dtype=dense_dtype)
                     for w, q, b in zip(weights, quants, biases, strict=True)])


class StackedOp:
    """The same op of every block, each tensor field stacked along a new first axis; ``op(x, i)`` runs block ``i``."""

    def __init__(self, ops: Sequence[_Op]):
        self.template, self.kind = ops[0], ops[0].kind
        self.stacked = [None if ts[0] is None else torch.stack(ts)
                        for ts in zip(*(op.tensors() for op in ops), strict=True)]

    def __call__(self, x: torch.Tensor, i: int) -> torch.Tensor:
        return self.template.run(x, *(None if t is None else t[i] for t in self.stacked))


class PerBlock:
    """Ops that cannot be stacked (different kinds or shapes per block); ``op(x, i)`` runs block ``i``."""

    def __init__(self, ops: Sequence[_Op]):
        self.ops = list(ops)
        self.kind = "/".join(sorted({op.kind for op in self.ops}))

    def __call__(self, x: torch.Tensor, i: int) -> torch.Tensor:
        return self.ops[i](x)


def stack_ops(ops: Sequence[_Op]) -> StackedOp | PerBlock:
    """Stack ops of the same class, settings and tensor shapes; otherwise keep them per block."""
    def signature(op: _Op):
        return op.settings(), tuple(None if t is None else (t.shape, t.dtype) for t in op.tensors())

    if all(op.stackable for op in ops) and len({signature(op) for op in ops}) == 1:
        return StackedOp(ops)
    return PerBlock(ops)
