"""``compress``: one entry point that prunes and/or quantizes a causal LM in place.

Pruning (if ``sparsity > 0``) runs first; quantization then keeps the masks (pruned weights stay exact
zeros on the grid). The embedding and ``lm_head`` stay in floating point unless ``head_bits`` is set.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from .errors import ConfigError
from .families import Family, family_for
from .layerwise import LayerwiseProcessor
from .prune.blockaware import BlockAwareConfig, BlockAwareProcessor
from .prune.magnitude import Magnitude, PruneConfig
from .prune.masks import check_sparsity
from .prune.sparsegpt import SparseGPT
from .prune.wanda import Wanda
from .quant.gptq import GPTQ, GPTQConfig
from .quant.grid import QuantizedWeight, assemble, quantize_codes, resolve_group_size, static_groups
from .quant.mixed import MixedPrecisionConfig, mixed_precision_compress
from .quant.rtn import RTN, RTNConfig
from .result import LayerResult
from .sequential import ProgressFn, sequential_compress

QUANT_METHODS = ("rtn", "gptq", "appatlas-mp")
PRUNE_METHODS = ("magnitude", "wanda", "sparsegpt", "appatlas-prune")
FIXED_BITS = (2, 3, 4, 8)


@dataclass(frozen=True)
class CompressSpec:
    """What to do. ``bits=None`` skips quantization; ``sparsity=0`` skips pruning.

    For ``appatlas-mp`` ``bits`` is the average budget over {2, 3, 4, 8}; for ``rtn``/``gptq`` it must
    be one of those. ``head_bits`` also quantizes ``lm_head`` (tied with the embedding): 8 per channel,
    4 in groups of ``group_size`` (faster to decode, a little worse); the head is the largest matrix of a
    small model, so this is what makes the packed path fast on CPU.
    """

    method: str | None = "gptq"
    bits: float | None = 4
    group_size: int = 32
    sparsity: float = 0.0
    pattern: str = "unstructured"
    prune_method: str = "sparsegpt"
    act_order: bool = True
    true_sequential: bool = True
    head_bits: int | None = None
    batch_size: int = 4

    def validate(self) -> None:
        """Raise ``ConfigError`` with the fix for impossible combinations."""
        if self.bits is not None:
            if self.method not in QUANT_METHODS:
                raise ConfigError(f"unknown quantization method {self.method!r}; use one of {QUANT_METHODS}")
            if self.method == "appatlas-mp":
                if not 2 <= self.bits <= 8:
                    raise ConfigError(f"appatlas-mp needs an average of 2..8 bits, got {self.bits}")
            elif self.bits not in FIXED_BITS:
                raise ConfigError(f"{self.method} supports bits {FIXED_BITS}, got {self.bits}; use appatlas-mp for averages")
        if self.sparsity > 0:
            if self.prune_method not in PRUNE_METHODS:
                raise ConfigError(f"unknown pruning method {self.prune_method!r}; use one of {PRUNE_METHODS}")
            check_sparsity(self.sparsity, self.pattern)
        if self.head_bits not in (None, 4, 8):
            raise ConfigError(f"head_bits must be 8 (int8 per channel), 4 (int4 groups) or unset, got {self.head_bits}")

    @property
    def needs_calibration(self) -> bool:
        quant = self.bits is not None and self.method != "rtn"
        prune = self.sparsity > 0 and self.prune_method != "magnitude"
        return quant or prune


@dataclass
class CompressionReport:
    """Result of :func:`compress`: per-layer results (keyed by module name) and figures."""

    spec: CompressSpec
    layers: dict[str, LayerResult]
    seconds: float
    figures: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: float = 0.0  # process CPU time (all threads): comparable across machine loads

    def spec_dict(self) -> dict[str, Any]:
        return asdict(self.spec)


def _prune(model: nn.Module, calib: torch.Tensor | None, spec: CompressSpec, fam: Family, on_layer: ProgressFn | None, device):
    cfg = PruneConfig(spec.sparsity, spec.pattern)
    kw = dict(family=fam, batch_size=spec.batch_size, device=device, on_layer=on_layer)
    if spec.prune_method == "appatlas-prune":
        return sequential_compress(model, calib, BlockAwareProcessor(BlockAwareConfig(cfg)), **kw)
    solver = {"magnitude": Magnitude, "wanda": Wanda, "sparsegpt": SparseGPT}[spec.prune_method]
    proc = LayerwiseProcessor(solver, lambda _n, s: s.prune(cfg), needs_stats=solver is not Magnitude,
                              true_sequential=spec.true_sequential)
    return sequential_compress(model, calib if proc.needs_stats else None, proc, **kw)


def _quantize(model, calib, spec: CompressSpec, fam: Family, masks: dict[str, torch.Tensor], on_layer, device):
    kw = dict(family=fam, batch_size=spec.batch_size, device=device, on_layer=on_layer)
    if spec.method == "appatlas-mp":
        cfg = MixedPrecisionConfig(avg_bits=float(spec.bits), group_size=spec.group_size, act_order=spec.act_order)
        return mixed_precision_compress(model, calib, cfg, masks=masks, **kw)
    bits = int(spec.bits)
    if spec.method == "rtn":
        rcfg = RTNConfig(bits, spec.group_size)
        proc = LayerwiseProcessor(RTN, lambda n, s: s.quantize(rcfg, mask=masks.get(n)), needs_stats=False)
        return sequential_compress(model, None, proc, **kw), {}
    gcfg = GPTQConfig(bits, spec.group_size, act_order=spec.act_order)
    proc = LayerwiseProcessor(GPTQ, lambda n, s: s.quantize(gcfg, mask=masks.get(n)), true_sequential=spec.true_sequential)
    return sequential_compress(model, calib, proc, **kw), {}


@torch.no_grad()
def quantize_head(model: nn.Module, *, bits: int = 8, group_size: int = 32) -> QuantizedWeight:
    """Round ``lm_head`` to nearest in place (the tied embedding follows): 8 bits per output channel,
    4 bits per group of ``group_size`` columns."""
    head = model.get_output_embeddings()
    W = head.weight.detach().float()
    g = W.shape[1] if bits == 8 else resolve_group_size(group_size, W.shape[1])
    groups = static_groups(W, bits, g)
    codes = torch.cat([quantize_codes(W[:, j * g : (j + 1) * g], p, bits) for j, p in enumerate(groups)], dim=1)
    quant = assemble(codes, groups, bits=bits, group_size=g)
    head.weight.copy_(quant.dequantize())
    return quant


@torch.no_grad()
def round_dense_params(model: nn.Module, skip: set[str]) -> None:
    """Round the floating-point matrices that are stored in fp16 (embedding, untied head) in place,
    so the in-memory model equals the saved one bit for bit."""
    for name, param in model.named_parameters():
        module = name.rsplit(".", 1)[0]
        if param.dim() >= 2 and module not in skip:
            param.copy_(param.half().float())


def compress(
    model: nn.Module,
    calib: torch.Tensor | None,
    spec: CompressSpec,
    *,
    on_layer: ProgressFn | None = None,
    device: str | torch.device = "cpu",
) -> CompressionReport:
    """Compress ``model`` in place according to ``spec``; ``calib`` is ``[n, seq_len]`` token ids."""
    spec.validate()
    if spec.needs_calibration and calib is None:
        raise ConfigError("this method needs calibration text; pass --calib FILE")
    tick, cpu_tick = time.perf_counter(), time.process_time()
    fam = family_for(model)
    model.eval()
    layers: dict[str, LayerResult] = {}
    figures: dict[str, Any] = {}
    if spec.sparsity > 0:
        layers = _prune(model, calib, spec, fam, on_layer, device)
    if spec.bits is not None:
        masks = {n: r.mask for n, r in layers.items() if r.mask is not None}
        quantized, figures = _quantize(model, calib, spec, fam, masks, on_layer, device)
        for name, result in quantized.items():
            if name in layers:
                result.pattern = layers[name].pattern
            layers[name] = result
    skip = set(layers)
    if spec.head_bits:
        head_name = fam.head
        head_quant = quantize_head(model, bits=spec.head_bits, group_size=spec.group_size)
        layers[head_name] = LayerResult(weight=model.get_output_embeddings().weight.detach(), quant=head_quant)
        skip.add(head_name)
        if getattr(model.config, "tie_word_embeddings", False):
            skip.add(fam.embed)
    round_dense_params(model, skip)
    return CompressionReport(spec, layers, time.perf_counter() - tick, figures, time.process_time() - cpu_tick)
