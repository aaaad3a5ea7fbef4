"""A small greedy decoder for Llama-style models with a static KV cache.

The same loop runs the fp32 baseline (dense ops) and the packed model (int4/int8 kernels), so the
tokens/s comparison is fair: only the matmuls differ. It avoids ``generate()`` overhead: q/k/v and
gate/up are one matmul each, the cache is preallocated, and the one-token step has static shapes so
it can be compiled with ``torch.compile`` (which removes most per-op Python overhead, for both paths).

The int8 ``lm_head`` kernel returns bf16 logits (spacing 0.125 near 20), which can flip a greedy
argmax; the top ``rescore`` logits are therefore recomputed exactly in fp32 from the dequantized rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .errors import UnsupportedModel
from .families import block_linears, family_for, get_blocks
from .packed.kernels import fused_op
from .quant.grid import QuantizedWeight

SUPPORTED = ("llama", "mistral", "qwen2")


@dataclass
class DecodeResult:
    """Greedy continuation and its timing (decode excludes the prompt's prefill)."""

    tokens: list[int]
    prefill_s: float
    decode_s: float

    @property
    def tok_s(self) -> float:
        """Decoded tokens per second after the first token."""
        return (len(self.tokens) - 1) / self.decode_s if self.decode_s > 0 and len(self.tokens) > 1 else 0.0


class _Layer:
    def __init__(self, block: nn.Module, names: dict[str, nn.Linear], quant: dict[str, QuantizedWeight], prefix: str,
                 kernels: bool, emulate: bool):
        def op(keys: list[str]):
            mods = [names[k] for k in keys]
            return fused_op([m.weight for m in mods], [quant.get(f"{prefix}.{k}") for k in keys], kernels=kernels,
                            biases=[m.bias for m in mods], emulate=emulate)

        self.qkv = op(["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"])
        self.o = op(["self_attn.o_proj"])
        self.gate_up = op(["mlp.gate_proj", "mlp.up_proj"])
        self.down = op(["mlp.down_proj"])
        self.norm1 = block.input_layernorm.weight.detach().float()
        self.norm2 = block.post_attention_layernorm.weight.detach().float()


class GreedyDecoder:
    """Greedy decoding of a Llama-style model.

    ``kernels=False``: the dequantized fp32 reference. ``emulate=True``: the kernels' exact weights and
    bf16 activation rounding computed with fp32 matmuls (checks the kernels themselves).
    """

    def __init__(self, model: nn.Module, *, quant: dict[str, QuantizedWeight] | None = None, kernels: bool = True,
                 max_len: int = 256, compile: bool = False, rescore: int = 16, emulate: bool = False):
        cfg = model.config
        if cfg.model_type not in SUPPORTED:
            raise UnsupportedModel(f"fast decoder supports {SUPPORTED}, not {cfg.model_type!r}; use perplexity() only")
        fam = family_for(model)
        quant = quant or {}
        self.n_heads = cfg.num_attention_heads
        self.n_kv = getattr(cfg, "num_key_value_heads", None) or self.n_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads
        self.eps, self.hidden, self.max_len, self.rescore = cfg.rms_norm_eps, cfg.hidden_size, max_len, rescore
        self.embed = model.get_input_embeddings().weight.detach().float()
        self.head = fused_op([model.get_output_embeddings().weight], [quant.get(fam.head)], kernels=kernels,
                             emulate=emulate)
        self.final_norm = model.model.norm.weight.detach().float()
        self.layers = [
            _Layer(block, block_linears(block, fam), quant, f"{fam.blocks}.{i}", kernels, emulate)
            for i, block in enumerate(get_blocks(model, fam))
        ]
        cos, sin = model.model.rotary_emb(self.embed[:1][None], torch.arange(max_len)[None])
        half = self.head_dim // 2
        self.cos = cos[0].float()[:, None, :]  # [max_len, 1, head_dim]
        # rotate_half(x) * sin == roll(x, half) * sin_signed
        self.sin = torch.cat([-sin[0, :, :half], sin[0, :, half:]], dim=-1).float()[:, None, :]
        self.k_cache = [torch.zeros(self.n_kv, max_len, self.head_dim) for _ in self.layers]
        self.v_cache = [torch.zeros(self.n_kv, max_len, self.head_dim) for _ in self.layers]
        self.positions = torch.arange(max_len)
        self.compiled = False
        self._step = self.step
        if compile:
            try:
                self._step = torch.compile(self.step, dynamic=False)
                self.compiled = True
            except Exception:  # noqa: BLE001 - no compiler available: stay eager, still correct
                self._step = self.step

    def _rope(self, qk: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        return qk * cos + torch.roll(qk, self.head_dim // 2, dims=-1) * sin

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        h = F.rms_norm(x, (self.hidden,), self.final_norm, self.eps)
        logits = self.head(h)[0]
        if hasattr(self.head, "exact_rows") and self.rescore:  # exact fp32 for the top candidates
            top = torch.topk(logits, self.rescore).indices
            logits = logits.index_put((top,), self.head.exact_rows(top) @ h[0])
        return logits

    @torch.inference_mode()
    def forward(self, ids: torch.Tensor, pos: int) -> torch.Tensor:
        """Logits of the last of ``ids`` (1-D) appended at position ``pos`` (used for the prompt)."""
        T = ids.numel()
        if pos + T > self.max_len:
            raise ValueError(f"sequence longer than max_len={self.max_len}; build the decoder with a larger max_len")
        x = self.embed[ids]
        cos, sin = self.cos[pos : pos + T], self.sin[pos : pos + T]
        mask = None
        if T > 1 and pos > 0:  # chunk after a prefix: causal within the chunk, full over the prefix
            mask = torch.ones(T, pos + T, dtype=torch.bool).tril(diagonal=pos)
        for i, layer in enumerate(self.layers):
            qkv = layer.qkv(F.rms_norm(x, (self.hidden,), layer.norm1, self.eps)).view(T, -1, self.head_dim)
            qk = self._rope(qkv[:, : self.n_heads + self.n_kv], cos, sin).transpose(0, 1)
            self.k_cache[i][:, pos : pos + T] = qk[self.n_heads :]
            self.v_cache[i][:, pos : pos + T] = qkv[:, self.n_heads + self.n_kv :].transpose(0, 1)
            att = F.scaled_dot_product_attention(
                qk[None, : self.n_heads], self.k_cache[i][None, :, : pos + T], self.v_cache[i][None, :, : pos + T],
                attn_mask=mask, is_causal=T > 1 and pos == 0, enable_gqa=self.n_kv != self.n_heads)
            x = x + layer.o(att[0].transpose(0, 1).reshape(T, -1))
            gate, up = layer.gate_up(F.rms_norm(x, (self.hidden,), layer.norm2, self.eps)).chunk(2, dim=-1)
            x = x + layer.down(F.silu(gate) * up)
        return self._logits(x[-1:])

    def step(self, token: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """One decode step with static shapes: ``token`` and ``pos`` are 1-element int64 tensors."""
        x = self.embed[token]  # [1, hidden]
        cos, sin = self.cos[pos], self.sin[pos]
        bias = torch.where(self.positions <= pos, 0.0, float("-inf"))  # attend to filled cache slots only
        group, scale = self.n_heads // self.n_kv, self.head_dim**-0.5
        for i, layer in enumerate(self.layers):
            qkv = layer.qkv(F.rms_norm(x, (self.hidden,), layer.norm1, self.eps)).view(1, -1, self.head_dim)
            qk = self._rope(qkv[:, : self.n_heads + self.n_kv], cos, sin)[0]
            self.k_cache[i].index_copy_(1, pos, qk[self.n_heads :, None])
            self.v_cache[i].index_copy_(1, pos, qkv[0, self.n_heads + self.n_kv :, None])
            q = qk[: self.n_heads].view(self.n_kv, group, self.head_dim)
            scores = torch.bmm(q, self.k_cache[i].transpose(1, 2)) * scale + bias
            att = torch.bmm(scores.softmax(-1), self.v_cache[i]).reshape(1, -1)
            x = x + layer.o(att)
            gate, up = layer.gate_up(F.rms_norm(x, (self.hidden,), layer.norm2, self.eps)).chunk(2, dim=-1)
            x = x + layer.down(F.silu(gate) * up)
        return self._logits(x)

    @torch.inference_mode()
    def generate(self, prompt: list[int], max_new_tokens: int, *, eos_token_id: int | None = None) -> DecodeResult:
        """Greedy continuation of ``prompt`` (stops early at ``eos_token_id`` if given)."""
        if len(prompt) + max_new_tokens > self.max_len:
            raise ValueError(f"prompt + new tokens exceed max_len={self.max_len}; build the decoder with a larger max_len")
        tick = time.perf_counter()
        token = int(self.forward(torch.tensor(prompt), 0).argmax())
        prefill = time.perf_counter() - tick
        tokens, pos = [token], len(prompt)
        tick = time.perf_counter()
        while len(tokens) < max_new_tokens and token != eos_token_id:
            token = int(self._step(torch.tensor([token]), torch.tensor([pos])).argmax())
            tokens.append(token)
            pos += 1
        return DecodeResult(tokens, prefill, time.perf_counter() - tick)


@torch.inference_mode()
def compare_greedy(reference: GreedyDecoder, candidate: GreedyDecoder, prompt: list[int], new_tokens: int,
                   *, tie_margin: float = 0.1) -> dict[str, object]:
    """How closely ``candidate`` follows ``reference``'s greedy output on one prompt.

    Free-running: are the two continuations identical (and where do they first differ)? Teacher-forced:
    feeding both the reference's tokens, how often do their argmaxes agree, and were the disagreements
    near-ties (reference top-2 logits closer than ``tie_margin``), where any numerical difference flips
    the choice?
    """
    ref = reference.generate(prompt, new_tokens).tokens
    got = candidate.generate(prompt, new_tokens).tokens
    first = next((i for i, (a, b) in enumerate(zip(ref, got, strict=True)) if a != b), None)
    ids = torch.tensor(prompt + ref[:-1])
    ref_logits = [reference.forward(ids[: len(prompt)], 0)]
    cand_logits = [candidate.forward(ids[: len(prompt)], 0)]
    for pos in range(len(prompt), len(ids)):
        token, p = ids[pos : pos + 1], torch.tensor([pos])
        ref_logits.append(reference.step(token, p))
        cand_logits.append(candidate.step(token, p))
    agree, margins = 0, []
    for r, c in zip(ref_logits, cand_logits, strict=True):
        top2 = torch.topk(r, 2).values
        if int(r.argmax()) == int(c.argmax()):
            agree += 1
        else:
            margins.append(float(top2[0] - top2[1]))
    return {
        "same_free_running": first is None,
        "first_difference": first,
        "teacher_forced_agreement": agree / len(ref_logits),
        "disagreements_beyond_tie": sum(m >= tie_margin for m in margins),
        "disagreement_margins": margins,
        "max_logit_diff": max(float((r - c).abs().max()) for r, c in zip(ref_logits, cand_logits, strict=True)),
    }
