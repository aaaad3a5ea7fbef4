"""What a layer solver returns: the new weight plus how it is stored, and its figures."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .quant.grid import QuantizedWeight


@dataclass
class LayerResult:
    """Outcome of compressing one linear layer.

    ``weight`` is the fp32 weight the model now computes with (dequantized and/or masked);
    ``quant`` and ``mask`` say how it is stored. Figures are returned, never printed.
    """

    weight: torch.Tensor
    quant: QuantizedWeight | None = None
    mask: torch.Tensor | None = None  # bool, True = kept
    pattern: str | None = None  # "unstructured" | "2:4" when pruned
    error: float = 0.0  # mean squared output error per token on calibration inputs
    seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def bits(self) -> int:
        """Weight bits (32 when kept in floating point)."""
        return self.quant.bits if self.quant is not None else 32

    @property
    def avg_bits(self) -> float:
        """Code bits per weight (the average when column groups have different widths)."""
        return self.quant.avg_bits if self.quant is not None else 32.0

    @property
    def sparsity(self) -> float:
        """Fraction of weights pruned."""
        if self.mask is None:
            return 0.0
        return 1.0 - float(self.mask.float().mean())
