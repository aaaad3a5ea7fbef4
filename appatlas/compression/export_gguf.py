"""``appatlas export gguf``: a compressed (or plain) causal LM as a GGUF file for llama.cpp.

Tensor by tensor, in the llama.cpp type that holds it exactly where one exists, else the nearest K-quant:

* ≤4-bit groups of 32 with fp16 scale and offset (every ``rtn``/``gptq``/``appatlas-mp`` layer, 2- and 3-bit
  codes included) are **Q4_1**, byte for byte; symmetric 8-bit groups of 32 are **Q8_0**.
* ``types="allocator"``: a layer the mixed-precision allocator gave fewer bits keeps its budget on disk — the
  K-quant nearest its average width (≤2.5 bits Q2_K, ≤3.5 Q3_K, else the exact Q4_1). APTQ's per-layer
  precision becomes a per-tensor GGUF type. K-quants need rows of 256 weights; narrower rows (SmolLM2's 576)
  stay in the exact Q4_1, as llama.cpp itself falls back to a legacy type there.
* ``types="Q4_K"`` / ``"Q3_K"``: the uniform llama.cpp recipes for comparison — every block linear in that
  K-quant (rows that cannot take it: Q5_0 for Q4_K, Q4_0 for Q3_K), the tied embedding in Q8_0.
* Anything else quantized (8-bit per channel, zero-on-grid pruned layers) is requantized to Q8_0 (8 bits) or
  the nearest K-quant/Q4_1 by its width; dense matrices are F16 and norms F32.

Names and the q/k row permutation follow llama.cpp's ``convert_hf_to_gguf.py`` (Llama layout), so
``transformers``' GGUF loader and llama.cpp read the file; :func:`verify_gguf` reads it back with the ``gguf``
package's reader and dequantizers and compares logits.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ConfigError, UnsupportedModel
from .kquants import K_QUANTS, is_symmetric_q8, q4_1_from_codes, q8_0_from_codes
from .quant.grid import QuantizedWeight

TYPES = ("exact", "allocator", "Q4_K", "Q3_K")
_BLOCK = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
          "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
_NORMS = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}


@dataclass
class ExportReport:
    """What was written: per GGUF tensor its type, and the file's size."""

    path: Path
    types: dict[str, str] = field(default_factory=dict)
    bytes: int = 0

    def type_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.types.values():
            out[t] = out.get(t, 0) + 1
        return dict(sorted(out.items()))


def gguf_name(hf_name: str) -> str:
    """llama.cpp's name of a Hugging Face Llama parameter (``model.layers.3.mlp.up_proj.weight`` → ``blk.3.ffn_up.weight``)."""
    if hf_name == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf_name == "model.norm.weight":
        return "output_norm.weight"
    if hf_name == "lm_head.weight":
        return "output.weight"
    parts = hf_name.split(".")
    if parts[:2] == ["model", "layers"]:
        i, leaf = parts[2], parts[-2]
        if leaf in _BLOCK:
            return f"blk.{i}.{_BLOCK[leaf]}.weight"
        if leaf in _NORMS:
            return f"blk.{i}.{_NORMS[leaf]}.weight"
    raise UnsupportedModel(f"no GGUF name for {hf_name!r}; export gguf supports Llama-layout models")


def _row_permutation(rows: int, heads: int) -> torch.Tensor:
    """llama.cpp's q/k permutation (rotary halves interleaved per head), as row indices."""
    idx = torch.arange(rows)
    return idx.reshape(heads, 2, rows // heads // 2).transpose(1, 2).reshape(rows)


def _permute_quant(q: QuantizedWeight, perm: torch.Tensor) -> QuantizedWeight:
    return QuantizedWeight(q.codes[perm], q.scales[perm], None if q.offsets is None else q.offsets[perm],
                           None if q.zeros is None else q.zeros[perm], q.bits, q.group_size, q.group_bits)


def _legacy(x: np.ndarray, name: str) -> tuple[np.ndarray, str]:
    import gguf

    qtype = getattr(gguf.GGMLQuantizationType, name)
    return gguf.quants.quantize(np.ascontiguousarray(x, dtype=np.float32), qtype), name


def _choose(weight: torch.Tensor, q: QuantizedWeight | None, types: str, *, block_linear: bool) -> tuple[np.ndarray, str]:
    """The bytes and GGUF type of one 2-D tensor."""
    cols = weight.shape[1]
    k_ok = cols % 256 == 0
    w = weight.detach().float().numpy()
    if types in ("Q4_K", "Q3_K"):
        if not block_linear:
            return _legacy(w, "Q8_0")
        if k_ok:
            return K_QUANTS[types][0](w), types
        return _legacy(w, "Q5_0" if types == "Q4_K" else "Q4_0")
    if q is None:
        return w.astype(np.float16), "F16"
    exact41 = q.bits <= 4 and q.group_size == 32 and q.offsets is not None
    if types == "allocator" and k_ok and q.avg_bits <= 3.5:
        name = "Q2_K" if q.avg_bits <= 2.5 else "Q3_K"
        return K_QUANTS[name][0](w), name
    if exact41:
        return q4_1_from_codes(q), "Q4_1"
    if is_symmetric_q8(q):
        return q8_0_from_codes(q), "Q8_0"
    if q.bits >= 8 or cols % 32:
        return _legacy(w, "Q8_0")
    if k_ok and q.avg_bits <= 3.5:
        name = "Q2_K" if q.avg_bits <= 2.5 else "Q3_K"
        return K_QUANTS[name][0](w), name
    return (K_QUANTS["Q4_K"][0](w), "Q4_K") if k_ok else _legacy(w, "Q4_1")


def _tokenizer_metadata(writer, folder: Path, vocab_size: int) -> None:
    import gguf

    tok_file = folder / "tokenizer.json"
    if not tok_file.is_file():
        raise ConfigError(f"{folder} has no tokenizer.json; export gguf needs a fast (BPE) tokenizer")
    spec = json.loads(tok_file.read_text())
    if spec.get("model", {}).get("type") != "BPE":
        raise UnsupportedModel("export gguf writes byte-level BPE tokenizers (gpt2 style) only")
    vocab: dict[str, int] = dict(spec["model"]["vocab"])
    special = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
    vocab.update(special)
    tokens = [f"[PAD{i}]" for i in range(vocab_size)]
    types = [gguf.TokenType.UNUSED] * vocab_size
    for text, i in vocab.items():
        if i < vocab_size:
            tokens[i] = text
            types[i] = gguf.TokenType.CONTROL if text in special else gguf.TokenType.NORMAL
    writer.add_tokenizer_model("gpt2")
    pre = "smollm" if "smollm" in json.dumps(json.loads((folder / "config.json").read_text())).lower() else "default"
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    gguf.SpecialVocab(folder, load_merges=True, n_vocab=vocab_size).add_to_gguf(writer)


def export_gguf(model_dir: str | os.PathLike[str], out: str | os.PathLike[str], *, types: str = "exact",
                on_tensor=None) -> ExportReport:
    """Write ``model_dir`` (an ``appatlas compress`` folder or a Hugging Face Llama folder) as GGUF to ``out``."""
    import gguf

    from .models import load_causal_lm
    from .packed.format import MANIFEST, load_compressed

    if types not in TYPES:
        raise ConfigError(f"unknown --types {types!r}; use one of {', '.join(TYPES)}")
    folder = Path(model_dir)
    quant: dict[str, QuantizedWeight] = {}
    if (folder / MANIFEST).is_file():
        art = load_compressed(folder)
        model, quant = art.model, art.quant
    else:
        model, _ = load_causal_lm(folder)
    cfg = model.config
    if cfg.model_type not in ("llama", "mistral"):
        raise UnsupportedModel(f"export gguf writes Llama-layout models, not {cfg.model_type!r}")
    n_head, n_kv = cfg.num_attention_heads, getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_head
    tied = bool(getattr(cfg, "tie_word_embeddings", False))

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_name(folder.name)
    writer.add_context_length(int(getattr(cfg, "max_position_embeddings", 2048)))
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    theta = getattr(cfg, "rope_theta", None) or (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta", 10000.0)
    writer.add_rope_freq_base(float(theta))
    writer.add_rope_dimension_count(head_dim)
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_1 if types == "exact" else gguf.LlamaFileType.GUESSED)
    _tokenizer_metadata(writer, folder if (folder / "tokenizer.json").is_file() else _source_folder(folder),
                        cfg.vocab_size)

    report = ExportReport(out)
    head_q = quant.get("lm_head")
    params = dict(model.named_parameters(remove_duplicate=False))
    for hf_name, param in params.items():
        if hf_name == "lm_head.weight" and tied:
            continue  # llama.cpp reads the tied output from token_embd
        name = gguf_name(hf_name)
        if param.dim() == 1:
            data, qtype = param.detach().float().numpy(), "F32"
        else:
            layer = hf_name.removesuffix(".weight")
            q = quant.get(layer)
            if hf_name == "model.embed_tokens.weight" and tied and head_q is not None:
                q = head_q  # the tied embedding is the quantized head
            weight = param.detach()
            if layer.endswith(("q_proj", "k_proj")):
                perm = _row_permutation(weight.shape[0], n_head if layer.endswith("q_proj") else n_kv)
                weight = weight[perm]
                q = None if q is None else _permute_quant(q, perm)
            data, qtype = _choose(weight, q, types, block_linear=layer.startswith("model.layers."))
        if qtype in ("F32", "F16"):
            writer.add_tensor(name, np.ascontiguousarray(data))
        else:
            writer.add_tensor(name, np.ascontiguousarray(data),  # [rows, bytes per row]
                              raw_dtype=getattr(gguf.GGMLQuantizationType, qtype))
        report.types[name] = qtype
        if on_tensor is not None:
            on_tensor(name, qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    report.bytes = out.stat().st_size
    return report


def _source_folder(folder: Path) -> Path:
    raise ConfigError(f"{folder} has no tokenizer.json; compress with a tokenizer so the GGUF can carry it")


@torch.no_grad()
def load_gguf_model(path: str | os.PathLike[str]) -> torch.nn.Module:
    """A ``transformers`` model with the GGUF's weights, read by the ``gguf`` package and dequantized by its
    own dequantizers (through ``transformers``' loader, which also undoes the q/k permutation)."""
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    path = Path(path)
    config = AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    tensors = load_gguf_checkpoint(str(path), return_tensors=True, model_to_load=model)["tensors"]
    missing, _ = model.load_state_dict(tensors, strict=False)
    model.tie_weights()
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing:
        raise UnsupportedModel(f"{path} lacks tensors {missing[:3]}")
    return model.eval()


@torch.no_grad()
def verify_gguf(path: str | os.PathLike[str], reference: torch.nn.Module, ids: torch.Tensor) -> dict[str, Any]:
    """Max |logit difference| between the GGUF (read back and dequantized) and ``reference`` on ``ids`` ``[n, T]``."""
    model = load_gguf_model(path)
    a, b = model(ids).logits, reference(ids).logits
    return {"max_abs_logit_diff": float((a - b).abs().max()), "reference_logit_max": float(b.abs().max())}
