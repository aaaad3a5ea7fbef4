"""Activation statistics shared by the layer solvers.

``H = 2/n · Σ x xᵀ`` is the Hessian of the layer reconstruction error ``‖W X − Ŵ X‖²/n``
with respect to each row of ``Ŵ`` (the GPTQ / SparseGPT convention).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def single_thread() -> Iterator[None]:
    """Run column-by-column solver loops on one thread.

    Their ops are small (a few hundred thousand elements); with 2 threads on a busy machine each op
    can wait milliseconds at an OpenMP barrier, 10-100x slower than one thread.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class HessianLayer:
    """Wraps one linear layer and accumulates ``H`` from its inputs (via a forward hook)."""

    def __init__(self, layer: nn.Linear, *, device: str | torch.device = "cpu"):
        self.layer = layer
        self.device = torch.device(device)
        self.rows, self.columns = layer.weight.shape
        self.H = torch.zeros(self.columns, self.columns, device=self.device)
        self.nsamples = 0

    def add_batch(self, inp: torch.Tensor, out: torch.Tensor | None = None) -> None:
        """Fold one batch of layer inputs (``[..., columns]``) into ``H`` as a running mean."""
        x = inp.detach().reshape(-1, self.columns).to(self.device, torch.float32)
        n = x.shape[0]
        self.H *= self.nsamples / (self.nsamples + n)
        self.nsamples += n
        x = x * (2.0 / self.nsamples) ** 0.5
        self.H += x.t() @ x

    def weight(self) -> torch.Tensor:
        """A float32 copy of the layer's current weight ``W``."""
        return self.layer.weight.detach().to(self.device, torch.float32).clone()

    def output_error(self, W: torch.Tensor, What: torch.Tensor) -> float:
        """Mean squared output error per token, ``‖(W - Ŵ) X‖² / n = ½ tr(ΔW H ΔWᵀ)``."""
        delta = (W - What).to(self.device, torch.float32)
        return float(0.5 * torch.sum((delta @ self.H) * delta))


def damped_inverse_cholesky(H: torch.Tensor, *, percdamp: float) -> torch.Tensor:
    """Upper Cholesky factor of ``(H + λI)⁻¹`` with ``λ = percdamp · mean(diag H)``.

    Raises ``torch.linalg.LinAlgError`` only if even a 10x larger damping fails.
    """
    H = H.clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    diag = torch.arange(H.shape[0], device=H.device)
    damp = percdamp * torch.mean(torch.diag(H))
    for attempt in range(4):
        try:
            Hd = H.clone()
            Hd[diag, diag] += damp * (10**attempt)
            L = torch.linalg.cholesky(Hd)
            Hinv = torch.cholesky_inverse(L)
            return torch.linalg.cholesky(Hinv, upper=True)
        except torch.linalg.LinAlgError:
            if attempt == 3:
                raise
    raise AssertionError("unreachable")
