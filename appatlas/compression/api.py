"""Task-level functions used by the CLI and the benchmark: compress a model into a folder, evaluate one."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .data import calibration_from_file, calibration_from_texts, eval_windows, read_text, tokenize
from .decode import SUPPORTED, GreedyDecoder
from .evaluate import kernel_perplexity, perplexity
from .families import family_for, get_blocks
from .models import load_causal_lm, resolve_model_path
from .packed.format import load_compressed, read_manifest, save_compressed, stored_bytes
from .pipeline import CompressionReport, CompressSpec, compress
from .sequential import ProgressFn

DEFAULT_PROMPT = "It was a fine spring morning, and the new teacher walked to the school"


def planned_layers(model: torch.nn.Module, spec: CompressSpec) -> int:
    """How many per-layer progress ticks :func:`compress` will report."""
    fam = family_for(model)
    per_stage = len(get_blocks(model, fam)) * len(fam.linear_names)
    return per_stage * (int(spec.sparsity > 0) + int(spec.bits is not None))


def compress_to_folder(
    model_name: str,
    out_dir: str | os.PathLike[str],
    spec: CompressSpec,
    *,
    calib_path: str | os.PathLike[str] | None = None,
    calib_texts: Sequence[str] | None = None,
    n_samples: int = 32,
    seq_len: int = 512,
    seed: int = 0,
    on_start: Callable[[int], None] | None = None,
    on_layer: ProgressFn | None = None,
) -> dict[str, Any]:
    """Load ``model_name``, compress it with ``spec`` and write it to ``out_dir``; returns the manifest."""
    spec.validate()
    model, tokenizer = load_causal_lm(model_name)
    calib = None
    if calib_texts is not None:
        calib = calibration_from_texts(calib_texts, tokenizer, n_samples=n_samples, seq_len=seq_len, seed=seed)
    elif calib_path is not None:
        calib = calibration_from_file(calib_path, tokenizer, n_samples=n_samples, seq_len=seq_len, seed=seed)
    if on_start is not None:
        on_start(planned_layers(model, spec))
    report = compress(model, calib, spec, on_layer=on_layer)
    return save_report(model, tokenizer, report, out_dir, base_model=str(model_name))


def save_report(model, tokenizer, report: CompressionReport, out_dir, *, base_model: str) -> dict[str, Any]:
    """Save a compressed model with its spec and figures in the manifest."""
    meta = {
        "base_model": base_model,
        "spec": asdict(report.spec),
        "compress_s": report.seconds,
        "layer_errors": {n: r.error for n, r in report.layers.items()},
        "figures": report.figures,
    }
    return save_compressed(model, tokenizer, report.layers, out_dir, meta=meta)


def measure_decode(model, *, quant=None, tokenizer=None, prompt_ids: list[int] | None = None, new_tokens: int = 64,
                   kernels: bool = True, repeats: int = 3, max_len: int = 512):
    """Best-of-``repeats`` greedy decode speed; returns ``(tokens_per_s, tokens)``."""
    if prompt_ids is None:
        prompt_ids = tokenizer(DEFAULT_PROMPT, add_special_tokens=False)["input_ids"]
    decoder = GreedyDecoder(model, quant=quant, kernels=kernels, max_len=max_len)
    best, tokens = 0.0, []
    for _ in range(repeats):
        result = decoder.generate(prompt_ids, new_tokens)
        best, tokens = max(best, result.tok_s), result.tokens
    return best, tokens


def evaluate_lm(
    name_or_path: str | os.PathLike[str],
    text_path: str | os.PathLike[str],
    *,
    seq_len: int = 512,
    max_windows: int | None = None,
    decode_tokens: int = 64,
    threads: int | None = 2,
    kernels: bool = True,
) -> dict[str, Any]:
    """Perplexity on a text file and greedy tokens/s (packed kernels when the folder has them).

    For a packed folder also ``ppl_kernels``: the perplexity measured through the int4/int8 kernels that decode.
    """
    if threads:
        torch.set_num_threads(threads)
    path = resolve_model_path(name_or_path)
    quant: dict = {}
    manifest: dict[str, Any] = {}
    if (path / "appatlas.json").exists():
        artifact = load_compressed(path)
        model, tokenizer, quant, manifest = artifact.model, artifact.tokenizer, artifact.quant, read_manifest(path)
    else:
        model, tokenizer = load_causal_lm(path)
    windows = eval_windows(tokenize(tokenizer, read_text(text_path)), seq_len=seq_len, max_windows=max_windows)
    tick = time.perf_counter()
    ppl = perplexity(model, windows)
    out: dict[str, Any] = {"model": str(name_or_path), "ppl": ppl, "windows": int(windows.shape[0]),
                           "eval_s": time.perf_counter() - tick}
    if quant and kernels and model.config.model_type in SUPPORTED:  # the same figure through the packed kernels
        decoder = GreedyDecoder(model, quant=quant, kernels=True, max_len=seq_len)
        out["ppl_kernels"] = kernel_perplexity(decoder, windows)
        out["int4_kernel"] = decoder.qkv.kind
    if model.config.model_type in SUPPORTED and decode_tokens > 1:
        out["decode_tok_s"], _ = measure_decode(model, quant=quant, tokenizer=tokenizer, new_tokens=decode_tokens,
                                                kernels=kernels)
    if manifest:
        out["bits_per_weight"] = manifest["bits_per_weight"]
        out["size_mb"] = stored_bytes(path) / 1e6
    return out


def default_out_dir(model_name: str, spec: CompressSpec) -> Path:
    """A readable folder name for a spec, e.g. ``smollm2-135m-gptq-w3``."""
    parts = [Path(str(model_name)).name]
    if spec.sparsity > 0:
        parts.append(f"{spec.prune_method}-{spec.pattern.replace(':', 'of')}-s{spec.sparsity:g}")
    if spec.bits is not None:
        parts.append(f"{spec.method}-w{spec.bits:g}")
    return Path("-".join(parts))
