"""Calibration and evaluation token streams from text files or lists of strings."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from .errors import CalibrationError

MIN_TOKENS = 16


def read_text(path: str | os.PathLike[str]) -> str:
    """Read a UTF-8 text file, raising ``CalibrationError`` with the next step when missing or empty."""
    p = Path(path)
    if not p.is_file():
        raise CalibrationError(f"no text file at {p}; pass --calib/--text with a plain UTF-8 file")
    text = p.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise CalibrationError(f"{p} is empty; pass a file with a few thousand words of text")
    return text


def split_text(text: str, *, eval_fraction: float = 0.3) -> tuple[str, str]:
    """Split text into disjoint (calibration, evaluation) parts at a line break.

    The evaluation part is the tail so that calibration never sees evaluated tokens.
    """
    if not 0.0 < eval_fraction < 1.0:
        raise CalibrationError(f"eval_fraction must be in (0, 1), got {eval_fraction}")
    cut = int(len(text) * (1.0 - eval_fraction))
    newline = text.find("\n", cut)
    cut = newline + 1 if newline != -1 else cut
    return text[:cut], text[cut:]


def tokenize(tokenizer, text: str) -> torch.Tensor:
    """Token ids of ``text`` as a 1-D int64 tensor (no special tokens added)."""
    ids = tokenizer(text, add_special_tokens=False, return_attention_mask=False)["input_ids"]
    return torch.tensor(ids, dtype=torch.long)


def sample_windows(stream: torch.Tensor, *, n_samples: int, seq_len: int, seed: int = 0) -> torch.Tensor:
    """``n_samples`` random windows of ``seq_len`` tokens from a 1-D stream, shape ``[n, seq_len]``.

    A stream shorter than ``seq_len`` (e.g. a handful of prompts) yields one window of its full length.
    """
    if stream.numel() < MIN_TOKENS:
        raise CalibrationError(
            f"calibration text has {stream.numel()} tokens, need at least {MIN_TOKENS}; pass more text"
        )
    if stream.numel() <= seq_len:
        return stream[None, :].clone()
    gen = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, stream.numel() - seq_len + 1, (n_samples,), generator=gen)
    return torch.stack([stream[s : s + seq_len] for s in starts.tolist()])


def calibration_from_texts(
    texts: Sequence[str], tokenizer, *, n_samples: int = 32, seq_len: int = 512, seed: int = 0
) -> torch.Tensor:
    """Calibration batch from a list of strings (e.g. prompts generated from an app atlas).

    The strings are joined with blank lines into one stream, then windows are sampled from it.
    """
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise CalibrationError("no calibration strings given; pass at least one non-empty text")
    return sample_windows(tokenize(tokenizer, "\n\n".join(texts)), n_samples=n_samples, seq_len=seq_len, seed=seed)


def calibration_from_file(
    path: str | os.PathLike[str], tokenizer, *, n_samples: int = 32, seq_len: int = 512, seed: int = 0
) -> torch.Tensor:
    """Calibration batch sampled from a text file."""
    return calibration_from_texts([read_text(path)], tokenizer, n_samples=n_samples, seq_len=seq_len, seed=seed)


def eval_windows(stream: torch.Tensor, *, seq_len: int = 512, max_windows: int | None = None) -> torch.Tensor:
    """Non-overlapping ``seq_len`` windows covering the stream (the remainder is dropped)."""
    n = stream.numel() // seq_len
    if n == 0:
        raise CalibrationError(f"evaluation text has {stream.numel()} tokens, need at least {seq_len}")
    if max_windows is not None:
        n = min(n, max_windows)
    return stream[: n * seq_len].view(n, seq_len)
