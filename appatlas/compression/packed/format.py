"""On-disk format of a compressed model: one safetensors file plus a JSON manifest (no pickle).

Folder layout::

    appatlas.json          manifest: format/version, spec, per-layer bits / group size / sparsity
    weights.safetensors    dense params (2-D in fp16, 1-D in fp32) and packed layers:
                             <layer>.qcodes   uint8, codes bit-packed at the layer's bits
                             <layer>.qcodes.<b>, <layer>.group_bits   mixed widths: the column groups
                                              of width b packed at b bits, and each group's width
                             <layer>.scales   fp16 [rows, groups]
                             <layer>.offsets  fp16 [rows, groups]   (or <layer>.zeros uint8)
                             <layer>.values   fp32 kept weights of a pruned-only layer
                             <layer>.mask     uint8, 1 bit per weight of a pruned-only layer
    config.json, tokenizer files   as written by Hugging Face

Loading dequantizes every layer (the always-correct path); kernels are built separately from the
returned ``quant`` dict (see ``kernels.py``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import FormatError
from ..quant.grid import QuantizedWeight
from ..result import LayerResult
from .bitpack import pack_bits, unpack_bits

FORMAT = "appatlas-compressed"
VERSION = 1
MANIFEST = "appatlas.json"
WEIGHTS = "weights.safetensors"


@dataclass
class CompressedArtifact:
    """A loaded compressed model: fp32 model (dequantized), tokenizer, manifest and packed layers."""

    model: nn.Module
    tokenizer: Any
    manifest: dict[str, Any]
    quant: dict[str, QuantizedWeight]
    folder: Path


def _layer_entry(result: LayerResult) -> dict[str, Any]:
    rows, cols = result.weight.shape
    entry: dict[str, Any] = {"shape": [rows, cols], "bits": result.bits, "sparsity": result.sparsity,
                             "pattern": result.pattern if result.mask is not None else None}
    if result.quant is not None:
        q = result.quant
        entry.update(group_size=q.group_size, zero_on_grid=q.zeros is not None, storage_bits=q.storage_bits(),
                     avg_bits=q.avg_bits)
    elif result.mask is not None:
        entry.update(storage_bits=int(result.mask.sum()) * 32 + result.mask.numel())
    else:
        entry.update(storage_bits=rows * cols * 32)
    return entry


def _layer_tensors(name: str, result: LayerResult) -> dict[str, torch.Tensor]:
    if result.quant is not None:
        q = result.quant
        out = {f"{name}.scales": q.scales.contiguous()}
        if q.group_bits is None:
            out[f"{name}.qcodes"] = pack_bits(q.codes, q.bits)
        else:  # one stream per width: the columns of the groups with that width, row-major
            out[f"{name}.group_bits"] = q.group_bits.contiguous()
            cols = q.group_bits.repeat_interleave(q.group_size)
            for b in sorted(set(q.group_bits.tolist())):
                out[f"{name}.qcodes.{b}"] = pack_bits(q.codes[:, cols == b], b)
        if q.zeros is not None:
            out[f"{name}.zeros"] = q.zeros.contiguous()
        else:
            out[f"{name}.offsets"] = q.offsets.contiguous()
        return out
    if result.mask is not None:
        w = result.weight.float()
        return {f"{name}.values": w[result.mask].contiguous(), f"{name}.mask": pack_bits(result.mask, 1)}
    return {f"{name}.weight": result.weight.float().contiguous()}


def bits_per_weight(layers: dict[str, LayerResult], *, prefix: str | None = None) -> float:
    """Stored bits per weight over the compressed layers (whose name starts with ``prefix``)."""
    chosen = [r for n, r in layers.items() if prefix is None or n.startswith(prefix)]
    total = sum(r.weight.numel() for r in chosen)
    if not total:
        return 32.0
    return sum(_layer_entry(r)["storage_bits"] for r in chosen) / total


def save_compressed(
    model: nn.Module,
    tokenizer: Any,
    layers: dict[str, LayerResult],
    out_dir: str | os.PathLike[str],
    *,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the compressed model to ``out_dir`` and return the manifest."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    compressed = {id(model.get_submodule(name).weight) for name in layers}
    tensors: dict[str, torch.Tensor] = {}
    for pname, param in model.named_parameters():  # tied params appear once
        if id(param) in compressed:
            continue
        t = param.detach()
        tensors[pname] = (t.half() if t.dim() >= 2 else t.float()).contiguous()
    for name, result in layers.items():
        tensors.update(_layer_tensors(name, result))
    save_file(tensors, str(out / WEIGHTS))
    model.config.save_pretrained(out)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(out)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "weights": WEIGHTS,
        "dense_dtype": "float16",
        "bits_per_weight": bits_per_weight(layers),
        "layers": {name: _layer_entry(r) for name, r in layers.items()},
        **(meta or {}),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse and check ``appatlas.json``."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FormatError(f"no {MANIFEST} in {folder}; create one with `appatlas compress --out {folder}`")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise FormatError(f"{path} is not an {FORMAT} v{VERSION} manifest; recompress with this appatlas version")
    return manifest


def _rebuild(name: str, entry: dict[str, Any], tensors: dict[str, torch.Tensor]) -> tuple[torch.Tensor, QuantizedWeight | None]:
    rows, cols = entry["shape"]
    widths = tensors.get(f"{name}.group_bits")
    if f"{name}.qcodes" in tensors or widths is not None:
        bits = entry["bits"]
        if widths is None:
            codes = unpack_bits(tensors[f"{name}.qcodes"], bits, rows * cols).view(rows, cols)
        else:
            codes = torch.zeros(rows, cols, dtype=torch.uint8)
            of_col = widths.repeat_interleave(entry["group_size"])
            for b in sorted(set(widths.tolist())):
                n = int((of_col == b).sum())
                codes[:, of_col == b] = unpack_bits(tensors[f"{name}.qcodes.{b}"], b, rows * n).view(rows, n)
        q = QuantizedWeight(codes, tensors[f"{name}.scales"], tensors.get(f"{name}.offsets"),
                            tensors.get(f"{name}.zeros"), bits, entry["group_size"], widths)
        return q.dequantize(), q
    if f"{name}.values" in tensors:
        mask = unpack_bits(tensors[f"{name}.mask"], 1, rows * cols).view(rows, cols).bool()
        w = torch.zeros(rows, cols)
        w[mask] = tensors[f"{name}.values"]
        return w, None
    if f"{name}.weight" in tensors:
        return tensors[f"{name}.weight"].float(), None
    raise FormatError(f"{name} is in the manifest but has no tensors in {WEIGHTS}; recompress")


@torch.no_grad()
def load_compressed(folder: str | os.PathLike[str]) -> CompressedArtifact:
    """Load a compressed folder; every layer is dequantized to fp32 (the always-correct path)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder = Path(folder)
    manifest = read_manifest(folder)
    weights = folder / manifest.get("weights", WEIGHTS)
    if not weights.is_file():
        raise FormatError(f"{weights} is missing; recompress into {folder}")
    tensors = load_file(str(weights))
    config = AutoConfig.from_pretrained(folder)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    params = dict(model.named_parameters())
    for pname, param in params.items():
        if pname in tensors:
            param.copy_(tensors[pname].float())
    quant: dict[str, QuantizedWeight] = {}
    for name, entry in manifest["layers"].items():
        weight, q = _rebuild(name, entry, tensors)
        model.get_submodule(name).weight.copy_(weight)
        if q is not None:
            quant[name] = q
    model.eval()
    has_tokenizer = (folder / "tokenizer.json").exists() or (folder / "tokenizer_config.json").exists()
    tokenizer = AutoTokenizer.from_pretrained(folder) if has_tokenizer else None
    return CompressedArtifact(model, tokenizer, manifest, quant, folder)


def stored_bytes(folder: str | os.PathLike[str]) -> int:
    """Bytes of the weights file plus manifest (config and tokenizer excluded)."""
    folder = Path(folder)
    return (folder / WEIGHTS).stat().st_size + (folder / MANIFEST).stat().st_size


def dense_bytes(model: nn.Module, *, bytes_per_param: int = 4) -> int:
    """What the model takes as plain fp32 safetensors (tied params counted once)."""
    return sum(p.numel() for p in model.parameters()) * bytes_per_param
