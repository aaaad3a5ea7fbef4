"""Dense bit-packing of small unsigned integers (codes of 1..8 bits), little-endian bit order.

``n`` codes of ``b`` bits take exactly ``ceil(n·b/8)`` bytes, so 3-bit weights really cost 3 bits.
"""

from __future__ import annotations

import numpy as np
import torch


def pack_bits(values: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack unsigned integers ``< 2**bits`` (any shape, flattened row-major) into a uint8 tensor."""
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be in 1..8, got {bits}")
    flat = values.detach().reshape(-1).to(torch.uint8).cpu().numpy()
    if bits == 8:
        return torch.from_numpy(flat.copy())
    planes = np.unpackbits(flat[:, None], axis=1, count=bits, bitorder="little")  # [n, bits]
    return torch.from_numpy(np.packbits(planes.reshape(-1), bitorder="little"))


def unpack_bits(packed: torch.Tensor, bits: int, numel: int) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: a flat uint8 tensor of ``numel`` values."""
    raw = packed.detach().cpu().numpy().astype(np.uint8, copy=False)
    if bits == 8:
        return torch.from_numpy(raw[:numel].copy())
    planes = np.unpackbits(raw, count=numel * bits, bitorder="little").reshape(numel, bits)
    return torch.from_numpy(np.packbits(planes, axis=1, bitorder="little").reshape(numel))
