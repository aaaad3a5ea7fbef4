"""Per-model-family table of transformer blocks and their linear-layer groups.

The sequential loop (``sequential.py``) is written once; a family only says where the blocks are and
which linears read the same input (so they share one Hessian / activation statistic), in execution
order. Adding a Llama-like family is one entry in ``FAMILIES``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .errors import UnsupportedModel


@dataclass(frozen=True)
class Family:
    """Where a model family keeps its blocks and how the block's linears are grouped."""

    name: str
    blocks: str  # dotted path of the ModuleList of transformer blocks
    groups: tuple[tuple[str, ...], ...]  # linears sharing one input, in execution order
    query: str  # attention projections, used by the attention-aware sensitivity
    key: str
    value: str
    out: str
    embed: str = "model.embed_tokens"
    head: str = "lm_head"

    @property
    def linear_names(self) -> tuple[str, ...]:
        """All compressible linears of one block, in execution order."""
        return tuple(name for group in self.groups for name in group)


LLAMA = Family(
    name="llama",
    blocks="model.layers",
    groups=(
        ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
        ("self_attn.o_proj",),
        ("mlp.gate_proj", "mlp.up_proj"),
        ("mlp.down_proj",),
    ),
    query="self_attn.q_proj",
    key="self_attn.k_proj",
    value="self_attn.v_proj",
    out="self_attn.o_proj",
)

# model_type -> family; these architectures share Llama's block layout.
FAMILIES: dict[str, Family] = {
    "llama": LLAMA,
    "mistral": LLAMA,
    "qwen2": LLAMA,
    "qwen3": LLAMA,
    "smollm3": LLAMA,
}


def family_for(model: nn.Module) -> Family:
    """The layer-group table for ``model`` (by ``config.model_type``)."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in FAMILIES:
        raise UnsupportedModel(
            f"no layer-group table for model_type {model_type!r}; add an entry to "
            f"appatlas.compression.families.FAMILIES (known: {sorted(FAMILIES)})"
        )
    return FAMILIES[model_type]


def get_blocks(model: nn.Module, family: Family) -> nn.ModuleList:
    """The ModuleList of transformer blocks."""
    return model.get_submodule(family.blocks)


def block_linears(block: nn.Module, family: Family) -> dict[str, nn.Linear]:
    """The compressible linears of one block, keyed by their name inside the block."""
    return {name: block.get_submodule(name) for name in family.linear_names}
