"""The one sequential loop over transformer blocks, shared by every method.

Block ``i+1`` is calibrated on the outputs of the *already compressed* block ``i``. Within a block,
each layer group (see ``families.py``) can be calibrated after the groups before it are compressed
("true sequential"); the forward pass stops right after the group's last layer so this costs little.
Methods plug in as a ``BlockProcessor``; the loop itself never changes per method.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from .families import Family, family_for, get_blocks
from .result import LayerResult

ProgressFn = Callable[[str, LayerResult], None]


class _StopForward(Exception):
    """Raised by a hook to end a forward pass once the needed inputs are captured."""


@dataclass
class BlockInputs:
    """Hidden states entering a block, in chunks, each with the keyword arguments the block needs."""

    hidden: list[torch.Tensor]
    kwargs: list[dict[str, Any]]

    @property
    def n_tokens(self) -> int:
        return sum(h.shape[0] * h.shape[1] for h in self.hidden)

    def subset(self, n_chunks: int) -> BlockInputs:
        """The first ``n_chunks`` chunks (for cheaper probes)."""
        return BlockInputs(self.hidden[:n_chunks], self.kwargs[:n_chunks])


@dataclass
class LoopContext:
    """What a processor may use besides the block: the family table and a per-layer progress hook."""

    family: Family
    block_index: int
    n_blocks: int
    device: torch.device
    on_layer: ProgressFn | None = None
    state: dict[str, Any] = field(default_factory=dict)  # scratch space shared across blocks

    def report(self, name: str, result: LayerResult) -> None:
        if self.on_layer is not None:
            self.on_layer(f"{self.family.blocks}.{self.block_index}.{name}", result)


class BlockProcessor(Protocol):
    """Compresses one block in place and returns its layer results keyed by name inside the block."""

    def __call__(self, block: nn.Module, inputs: BlockInputs | None, ctx: LoopContext) -> dict[str, LayerResult]: ...


def _first(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple | list) else out


@torch.no_grad()
def capture_block_inputs(
    model: nn.Module, family: Family, calib: torch.Tensor, *, batch_size: int, device: torch.device
) -> BlockInputs:
    """Run the model up to block 0 for each chunk of calibration ids and keep block 0's inputs."""
    block0 = get_blocks(model, family)[0]
    hidden: list[torch.Tensor] = []
    kwargs: list[dict[str, Any]] = []

    def hook(_module: nn.Module, args: tuple, kw: dict) -> None:
        hidden.append(args[0] if args else kw.pop("hidden_states"))
        kwargs.append({k: v for k, v in kw.items() if k not in ("hidden_states", "cache", "past_key_values")})
        raise _StopForward

    handle = block0.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        for chunk in calib.split(batch_size):
            try:
                model(chunk.to(device), use_cache=False)
            except _StopForward:
                pass
    finally:
        handle.remove()
    return BlockInputs(hidden, kwargs)


def forward_block(block: nn.Module, inputs: BlockInputs) -> list[torch.Tensor]:
    """Outputs of ``block`` for every input chunk (caller decides on grad mode)."""
    return [_first(block(h, **kw)) for h, kw in zip(inputs.hidden, inputs.kwargs, strict=True)]


@torch.no_grad()
def collect(block: nn.Module, layers: Mapping[str, nn.Module], sinks: Mapping[str, Any], inputs: BlockInputs) -> None:
    """Feed every layer's (input, output) to ``sinks[name].add_batch`` over all chunks.

    The forward pass stops right after the last listed layer has run.
    """
    names = list(layers)
    last = names[-1]
    handles = []
    for name in names:

        def hook(_m: nn.Module, inp: tuple, out: torch.Tensor, name: str = name) -> None:
            sinks[name].add_batch(inp[0], out)
            if name == last:
                raise _StopForward

        handles.append(layers[name].register_forward_hook(hook))
    try:
        for h, kw in zip(inputs.hidden, inputs.kwargs, strict=True):
            try:
                block(h, **kw)
            except _StopForward:
                pass
    finally:
        for handle in handles:
            handle.remove()


def sequential_compress(
    model: nn.Module,
    calib: torch.Tensor | None,
    processor: BlockProcessor,
    *,
    family: Family | None = None,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    on_layer: ProgressFn | None = None,
    blocks: Iterable[int] | None = None,
) -> dict[str, LayerResult]:
    """Compress ``model`` block by block in place; returns layer results keyed by full module name.

    ``calib`` is ``[n_samples, seq_len]`` token ids, or ``None`` for methods without calibration (the
    processor then gets ``inputs=None`` and nothing is run forward). ``blocks`` restricts which blocks
    are processed (the others are only run forward).
    """
    family = family or family_for(model)
    device = torch.device(device)
    layers = get_blocks(model, family)
    selected = set(range(len(layers))) if blocks is None else set(blocks)
    inputs = None if calib is None else capture_block_inputs(model, family, calib, batch_size=batch_size, device=device)
    results: dict[str, LayerResult] = {}
    state: dict[str, Any] = {}
    for index, block in enumerate(layers):
        if index in selected:
            ctx = LoopContext(family, index, len(layers), device, on_layer, state)
            for name, result in processor(block, inputs, ctx).items():
                results[f"{family.blocks}.{index}.{name}"] = result
        if inputs is not None:
            with torch.no_grad():
                inputs = BlockInputs(forward_block(block, inputs), inputs.kwargs)
    return results
