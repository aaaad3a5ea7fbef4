"""Sparsity masks (True = kept) from importance scores: unstructured or N:M (e.g. 2:4)."""

from __future__ import annotations

import torch

from ..errors import ConfigError

PATTERNS = ("unstructured", "2:4")


def parse_pattern(pattern: str) -> tuple[int, int] | None:
    """``"2:4"`` -> ``(2, 4)`` (keep 2 of every 4 consecutive inputs); ``"unstructured"`` -> ``None``."""
    if pattern == "unstructured":
        return None
    try:
        n, m = (int(part) for part in pattern.split(":"))
    except ValueError:
        raise ConfigError(f"unknown sparsity pattern {pattern!r}; use 'unstructured' or '2:4'") from None
    if not 0 < n < m:
        raise ConfigError(f"pattern {pattern!r} must keep 0 < N < M weights; use e.g. '2:4'")
    return n, m


def check_sparsity(sparsity: float, pattern: str) -> None:
    """Reject impossible combinations early, with the fix in the message."""
    nm = parse_pattern(pattern)
    if nm is None:
        if not 0.0 <= sparsity < 1.0:
            raise ConfigError(f"sparsity must be in [0, 1), got {sparsity}")
    elif abs(sparsity - (1 - nm[0] / nm[1])) > 1e-6:
        raise ConfigError(f"pattern {pattern} means sparsity {1 - nm[0] / nm[1]}; pass --sparsity {1 - nm[0] / nm[1]}")


def topk_mask(score: torch.Tensor, sparsity: float, *, per_row: bool) -> torch.Tensor:
    """Keep the highest scores, pruning ``sparsity`` of each row (or of the whole tensor)."""
    if per_row:
        k = int(score.shape[1] * sparsity)
        mask = torch.ones_like(score, dtype=torch.bool)
        if k:
            idx = torch.topk(score, k, dim=1, largest=False).indices
            mask.scatter_(1, idx, False)
        return mask
    k = int(score.numel() * sparsity)
    mask = torch.ones(score.numel(), dtype=torch.bool, device=score.device)
    if k:
        mask[torch.topk(score.flatten(), k, largest=False).indices] = False
    return mask.view_as(score)


def nm_mask(score: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Keep the ``n`` highest scores in every group of ``m`` consecutive input columns."""
    rows, cols = score.shape
    if cols % m:
        raise ConfigError(f"{cols} input columns are not divisible by {m}; use unstructured sparsity")
    groups = score.reshape(rows, cols // m, m)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(2, torch.topk(groups, n, dim=2).indices, True)
    return keep.reshape(rows, cols)


def make_mask(score: torch.Tensor, sparsity: float, pattern: str, *, per_row: bool = True) -> torch.Tensor:
    """Mask from scores for the given pattern."""
    nm = parse_pattern(pattern)
    if nm is None:
        return topk_mask(score, sparsity, per_row=per_row)
    return nm_mask(score, *nm)


def follows_pattern(mask: torch.Tensor, pattern: str) -> bool:
    """True if every group of M inputs keeps exactly N weights (always True for unstructured)."""
    nm = parse_pattern(pattern)
    if nm is None:
        return True
    n, m = nm
    return bool((mask.reshape(mask.shape[0], -1, m).sum(-1) == n).all())
