"""Perplexity over fixed token windows, computed with the model's own (always-correct) forward."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def perplexity(
    model: nn.Module,
    windows: torch.Tensor,
    *,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    on_batch: Callable[[int, int], None] | None = None,
) -> float:
    """Token perplexity of ``windows`` (``[n, seq_len]``), each window scored independently.

    Every window contributes ``seq_len - 1`` next-token predictions; the result is
    ``exp(mean negative log-likelihood)``.
    """
    model.eval()
    nll, count = 0.0, 0
    for start in range(0, windows.shape[0], batch_size):
        ids = windows[start : start + batch_size].to(device)
        logits = model(ids, use_cache=False).logits.float()
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="sum")
        nll += float(loss)
        count += ids[:, 1:].numel()
        if on_batch is not None:
            on_batch(min(start + batch_size, windows.shape[0]), windows.shape[0])
    return math.exp(nll / count)


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    """Run ``fn`` and return ``(result, seconds)``."""
    tick = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - tick


@torch.no_grad()
def kernel_perplexity(decoder, windows: torch.Tensor, *, on_window: Callable[[int, int], None] | None = None) -> float:
    """:func:`perplexity` computed through a ``GreedyDecoder``'s ops — for a packed model, the same int4 kernels
    (with their int8 activations) and int4 head that decode, run as one GEMM per op over each window."""
    nll, count = 0.0, 0
    for n, ids in enumerate(windows):
        logits = decoder.logits(ids).float()
        nll += float(F.cross_entropy(logits[:-1], ids[1:], reduction="sum"))
        count += ids.numel() - 1
        if on_window is not None:
            on_window(n + 1, windows.shape[0])
    return math.exp(nll / count)
