"""llama.cpp block formats written from numpy: the exact ones (Q4_1, Q8_0) from our codes, and K-quants.

The ``gguf`` package reads and dequantizes every type but quantizes only the legacy ones (Q4_0, Q4_1, Q5_x,
Q8_0), so Q2_K, Q3_K and Q4_K are written here. Each packer is the inverse of ``gguf.quants``' dequantizer
(byte layouts copied from it, checked by round trips in the tests).

* ``q4_1_from_codes``: our ≤4-bit groups of 32 (``w = q·scale + offset``, fp16 scale and offset) *are* Q4_1
  blocks (``d·q + m``), byte for byte — no rounding at all.
* ``q8_0_from_codes``: 8-bit groups of 32 stored symmetric (``offset = −128·scale``) are Q8_0 (``d·(q − 128)``).
* K-quants (super-blocks of 256 weights, so rows must be a multiple of 256): sub-block min/max grids whose
  scales are themselves quantized to 6 (Q3_K, Q4_K) or 4 (Q2_K) bits against one fp16 scale per super-block.
  The grid is the plain min/max one (llama.cpp searches a little further), so these are a conservative
  stand-in for ``llama-quantize``'s output.
"""

from __future__ import annotations

import numpy as np
import torch

from .quant.grid import QuantizedWeight

QK_K = 256


def _f16_bytes(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float16).reshape(-1, 1).view(np.uint8)


def q4_1_from_codes(q: QuantizedWeight) -> np.ndarray:
    """Q4_1 blocks ``[rows, cols/32 · 20]`` holding exactly ``q`` (≤4 bits, groups of 32, fp16 offsets)."""
    if q.bits > 4 or q.group_size != 32 or q.offsets is None:
        raise ValueError("Q4_1 holds <=4-bit groups of 32 with a float offset only")
    rows, cols = q.codes.shape
    codes = q.codes.numpy().astype(np.uint8).reshape(rows * cols // 32, 2, 16)
    nibbles = codes[:, 0] | (codes[:, 1] << 4)  # byte j: element j (low), element j + 16 (high)
    d = _f16_bytes(q.scales.numpy().reshape(-1))
    m = _f16_bytes(q.offsets.numpy().reshape(-1))
    return np.concatenate([d, m, nibbles], axis=1).reshape(rows, -1)


def is_symmetric_q8(q: QuantizedWeight) -> bool:
    """8-bit groups of 32 whose offset is ``−128·scale`` in fp16: then ``w = (q − 128)·scale`` is Q8_0."""
    if q.bits != 8 or q.group_size != 32 or q.offsets is None:
        return False
    return bool(torch.equal(q.offsets.float(), (-128.0 * q.scales.float()).half().float())) and int(q.codes.min()) >= 1


def q8_0_from_codes(q: QuantizedWeight) -> np.ndarray:
    """Q8_0 blocks ``[rows, cols/32 · 34]`` holding exactly a symmetric 8-bit ``q`` (see :func:`is_symmetric_q8`)."""
    if not is_symmetric_q8(q):
        raise ValueError("Q8_0 holds symmetric 8-bit groups of 32 only (offset = -128 * scale, codes >= 1)")
    rows, cols = q.codes.shape
    values = (q.codes.numpy().astype(np.int16) - 128).astype(np.int8).reshape(-1, 32).view(np.uint8)
    return np.concatenate([_f16_bytes(q.scales.numpy().reshape(-1)), values], axis=1).reshape(rows, -1)


def _safe_inv(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(x == 0, 0.0, 1.0 / np.where(x == 0, 1.0, x))


def _round(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5)  # llama.cpp's nearest_int rounds halves up


def _asym_grid(x: np.ndarray, levels: int, scale_bits: int):
    """Sub-block min/max grids ``x ≈ d·sc·q − dmin·m`` with ``sc``, ``m`` of ``scale_bits`` bits.

    ``x``: ``[blocks, subs, n]``. Returns fp16 ``d``, ``dmin`` ``[blocks]``, ``sc``, ``m`` ``[blocks, subs]`` and codes.
    """
    top = 2**scale_bits - 1
    lo = np.minimum(x.min(-1), 0.0)
    scale = (x.max(-1) - lo) / levels
    mins = -lo
    d = (scale.max(-1) / top).astype(np.float16)
    dmin = (mins.max(-1) / top).astype(np.float16)
    sc = np.clip(_round(scale * _safe_inv(d.astype(np.float32))[:, None]), 0, top)
    m = np.clip(_round(mins * _safe_inv(dmin.astype(np.float32))[:, None]), 0, top)
    eff = d.astype(np.float32)[:, None] * sc
    off = dmin.astype(np.float32)[:, None] * m
    q = np.clip(_round((x + off[..., None]) * _safe_inv(eff)[..., None]), 0, levels)
    return d, dmin, sc.astype(np.uint8), m.astype(np.uint8), q.astype(np.uint8)


def quantize_q4_k(x: np.ndarray) -> np.ndarray:
    """Q4_K blocks (144 bytes per 256 weights) of ``x`` ``[rows, cols]`` (``cols % 256 == 0``)."""
    rows, cols = x.shape
    xs = x.astype(np.float32).reshape(-1, 8, 32)
    d, dmin, sc, m, q = _asym_grid(xs, 15, 6)
    scales = np.zeros((xs.shape[0], 12), np.uint8)
    scales[:, 0:4] = (sc[:, 0:4] & 63) | ((sc[:, 4:8] >> 4) << 6)
    scales[:, 4:8] = (m[:, 0:4] & 63) | ((m[:, 4:8] >> 4) << 6)
    scales[:, 8:12] = (sc[:, 4:8] & 15) | ((m[:, 4:8] & 15) << 4)
    q = q.reshape(-1, 4, 2, 32)  # chunk c of 64: bytes c*32+j hold elements c*64+j (low), c*64+32+j (high)
    qs = (q[:, :, 0] | (q[:, :, 1] << 4)).reshape(-1, 128)
    blocks = np.concatenate([d.reshape(-1, 1).view(np.uint8), dmin.reshape(-1, 1).view(np.uint8), scales, qs], 1)
    return blocks.reshape(rows, -1)


def _pack2(q: np.ndarray) -> np.ndarray:
    """2-bit codes ``[blocks, 256]`` into 64 bytes: element ``h·128 + s·32 + j`` in byte ``h·32 + j``, bits ``2s``."""
    q = q.reshape(-1, 2, 4, 32).astype(np.uint8)
    return (q[:, :, 0] | (q[:, :, 1] << 2) | (q[:, :, 2] << 4) | (q[:, :, 3] << 6)).reshape(-1, 64)


def quantize_q2_k(x: np.ndarray) -> np.ndarray:
    """Q2_K blocks (84 bytes per 256 weights) of ``x`` ``[rows, cols]`` (``cols % 256 == 0``)."""
    rows, _cols = x.shape
    xs = x.astype(np.float32).reshape(-1, 16, 16)
    d, dmin, sc, m, q = _asym_grid(xs, 3, 4)
    blocks = np.concatenate([sc | (m << 4), _pack2(q.reshape(-1, 256)), d.reshape(-1, 1).view(np.uint8),
                             dmin.reshape(-1, 1).view(np.uint8)], 1)
    return blocks.reshape(rows, -1)


def quantize_q3_k(x: np.ndarray) -> np.ndarray:
    """Q3_K blocks (110 bytes per 256 weights) of ``x`` ``[rows, cols]`` (``cols % 256 == 0``): symmetric, q ∈ [−4, 3]."""
    rows, _cols = x.shape
    xs = x.astype(np.float32).reshape(-1, 16, 16)
    idx = np.abs(xs).argmax(-1)
    s = np.take_along_axis(xs, idx[..., None], -1)[..., 0] / -4.0  # the largest weight lands on -4
    big = np.take_along_axis(s, np.abs(s).argmax(-1)[:, None], -1)[:, 0]
    d = (big / -32.0).astype(np.float16)
    sc = np.clip(_round(s * _safe_inv(d.astype(np.float32))[:, None]), -32, 31)
    eff = d.astype(np.float32)[:, None] * sc
    u = (np.clip(_round(xs * _safe_inv(eff)[..., None]), -4, 3) + 4).astype(np.uint8).reshape(-1, 256)
    hmask = np.zeros((u.shape[0], 32), np.uint8)
    hb = (u >> 2).reshape(-1, 8, 32)  # element b*32 + j: bit b of byte j
    for b in range(8):
        hmask |= hb[:, b] << b
    v = (sc + 32).astype(np.uint8)
    scales = np.zeros((u.shape[0], 12), np.uint8)
    scales[:, 0:8] = (v[:, 0:8] & 15) | ((v[:, 8:16] & 15) << 4)
    high = ((v >> 4) & 3).reshape(-1, 4, 4)  # value k*4 + b: bits 2k of byte 8 + b
    for k in range(4):
        scales[:, 8:12] |= high[:, k] << (2 * k)
    blocks = np.concatenate([hmask, _pack2(u & 3), scales, d.reshape(-1, 1).view(np.uint8)], 1)
    return blocks.reshape(rows, -1)


K_QUANTS = {"Q2_K": (quantize_q2_k, 2.625), "Q3_K": (quantize_q3_k, 3.4375), "Q4_K": (quantize_q4_k, 4.5)}
