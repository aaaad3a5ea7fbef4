"""A small greedy decoder for Llama-style models with a static KV cache.

The same loop runs the fp32 baseline (dense ops) and the packed model (int4/int8 kernels), so the
tokens/s comparison is fair: only the matmuls differ. It avoids ``generate()`` overhead: q/k/v and
gate/up are one matmul each, the cache is preallocated, and the one-token step has static shapes so
it can be compiled with ``torch.compile`` and a C++ wrapper (which removes the per-op Python overhead,
for both paths).
The same op of every block is stacked into one tensor per field (``stack_ops``), so the compiled step
is guarded on about a hundred tensors rather than four hundred (guards are checked on every call). The KV
cache stays one tensor per block: writing into a view of one stacked cache made the compiled step copy it.

A quantized ``lm_head`` returns bf16 logits (spacing 0.125 near 20), which can flip a greedy argmax.
The top ``rescore`` logits are recomputed exactly in fp32 from the stored weight, and the choice is
*certified*: with ``ε_i`` a rigorous bound on each kernel logit's error (``logit_bound``), the best
rescored logit must beat ``max_{i ∉ top} (a_i + ε_i)``; otherwise the whole head is recomputed in fp32.
So greedy output equals the dequantized head's argmax given the hidden state, always.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .errors import UnsupportedModel
from .families import block_linears, family_for, get_blocks
from .packed.kernels import fused_op, make_op, stack_ops
from .quant.grid import QuantizedWeight

SUPPORTED = ("llama", "mistral", "qwen2")


@dataclass
class DecodeResult:
    """Greedy continuation and its timing (decode excludes the prompt's prefill).

    ``fallbacks``: steps where the rescored top logits could not certify the argmax and the head was
    recomputed in fp32.
    """

    tokens: list[int]
    prefill_s: float
    decode_s: float
    fallbacks: int = 0

    @property
    def tok_s(self) -> float:
        """Decoded tokens per second after the first token."""
        return (len(self.tokens) - 1) / self.decode_s if self.decode_s > 0 and len(self.tokens) > 1 else 0.0


class GreedyDecoder:
    """Greedy decoding of a Llama-style model.

    ``kernels=False``: the dequantized fp32 reference. ``emulate=True``: the kernels' exact weights and
    activation rounding computed with fp32 matmuls (checks the kernels themselves). ``int4_kernel``: which
    ≤4-bit kernel runs (``packed/vnni.py``: ``avx512vnni``, ``avxvnni``, ``avx2`` or ``"torch"`` for torch's;
    default ``$APPATLAS_INT4_KERNEL``, else the best the CPU supports). ``dense_dtype=torch.bfloat16``: the
    unquantized matmuls in bf16 (the bf16 baseline).
    """

    def __init__(self, model: nn.Module, *, quant: dict[str, QuantizedWeight] | None = None, kernels: bool = True,
                 max_len: int = 256, compile: bool = False, rescore: int = 16, emulate: bool = False,
                 int4_kernel: str | None = None, dense_dtype: torch.dtype = torch.float32):
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
        self.head_weight = model.get_output_embeddings().weight.detach().float()  # the exact (dequantized) head
        self.head = make_op([self.head_weight], [quant.get(fam.head)], kernels=kernels, emulate=emulate, bound=True,
                            int4_kernel=int4_kernel, dense_dtype=dense_dtype)
        self.certify = hasattr(self.head, "logit_bound") and rescore > 0
        self.final_norm = model.model.norm.weight.detach().float()
        blocks = get_blocks(model, fam)
        per_block = {"qkv": ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], "o": ["self_attn.o_proj"],
                     "gate_up": ["mlp.gate_proj", "mlp.up_proj"], "down": ["mlp.down_proj"]}
        ops: dict[str, list] = {key: [] for key in per_block}
        for i, block in enumerate(blocks):
            linears = block_linears(block, fam)
            for key, names in per_block.items():
                mods = [linears[n] for n in names]
                ops[key].append(fused_op([m.weight for m in mods], [quant.get(f"{fam.blocks}.{i}.{n}") for n in names],
                                         kernels=kernels, biases=[m.bias for m in mods], emulate=emulate,
                                         int4_kernel=int4_kernel, dense_dtype=dense_dtype))
        self.qkv, self.o, self.gate_up, self.down = (stack_ops(ops[key]) for key in per_block)
        self.norm1 = torch.stack([b.input_layernorm.weight.detach().float() for b in blocks])
        self.norm2 = torch.stack([b.post_attention_layernorm.weight.detach().float() for b in blocks])
        self.n_layers = len(blocks)
        cos, sin = model.model.rotary_emb(self.embed[:1][None], torch.arange(max_len)[None])
        half = self.head_dim // 2
        self.cos = cos[0].float()[:, None, :]  # [max_len, 1, head_dim]
        # rotate_half(x) * sin == roll(x, half) * sin_signed
        self.sin = torch.cat([-sin[0, :, :half], sin[0, :, half:]], dim=-1).float()[:, None, :]
        self.k_cache = [torch.zeros(self.n_kv, max_len, self.head_dim) for _ in range(self.n_layers)]
        self.v_cache = [torch.zeros(self.n_kv, max_len, self.head_dim) for _ in range(self.n_layers)]
        self.positions = torch.arange(max_len)
        self.compiled = False
        self._step = self._next
        if compile:
            try:
                # a C++ wrapper calls the step's ~400 small kernels without Python in between
                self._step = torch.compile(self._next, dynamic=False, options={"cpp_wrapper": True})
                self.compiled = True
            except Exception:  # noqa: BLE001 - no compiler available: stay eager, still correct
                self._step = self._next

    def ops(self) -> list:
        """The matmul ops (q/k/v, o, gate/up, down, head); each has a ``kind``."""
        return [self.qkv, self.o, self.gate_up, self.down, self.head]

    def _rope(self, qk: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        return qk * cos + torch.roll(qk, self.head_dim // 2, dims=-1) * sin

    def _choose(self, x: torch.Tensor):
        """``(logits, candidate, certified, h)`` for the last hidden state ``x`` (``[1, hidden]``).

        ``candidate`` is the greedy token when ``certified``; otherwise the caller recomputes ``h``'s
        logits exactly (:meth:`_exact_choice`).
        """
        h = F.rms_norm(x, (self.hidden,), self.final_norm, self.eps)
        approx = self.head(h)[0]
        if not self.certify:
            return approx, approx.argmax(), torch.tensor(True), h
        top = torch.topk(approx, self.rescore).indices
        exact = self.head_weight[top] @ h[0]
        # any row outside the top has exact logit <= a_i + ε_i; the best rescored one must beat them all
        reach = (approx + self.head.logit_bound(h[0], approx)).index_fill(0, top, float("-inf"))
        certified = exact.max() > reach.max()
        return approx.index_put((top,), exact), top[exact.argmax(0, keepdim=True)][0], certified, h

    def _exact_choice(self, out) -> int:
        _logits, candidate, certified, h = out
        return int(candidate) if bool(certified) else int(F.linear(h, self.head_weight)[0].argmax())

    def _attend(self, q: torch.Tensor, i: int, bias: torch.Tensor) -> torch.Tensor:
        group = self.n_heads // self.n_kv
        q = q.reshape(self.n_kv, group, self.head_dim)
        scores = torch.bmm(q, self.k_cache[i].transpose(1, 2)) * self.head_dim**-0.5 + bias
        return torch.bmm(scores.softmax(-1), self.v_cache[i]).reshape(1, -1)

    @torch.inference_mode()
    def _hidden(self, ids: torch.Tensor, pos: int, *, positions: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states ``[T, hidden]`` of ``ids`` written to cache slots ``pos..pos+T`` — one GEMM per op.

        ``positions`` (rotary positions, default the slots) and ``mask`` (``[T, pos+T]``, True = attend; default
        causal) let several continuations of one prefix share its cache (:meth:`score_options`).
        """
        T = ids.numel()
        if pos + T > self.max_len:
            raise ValueError(f"sequence longer than max_len={self.max_len}; build the decoder with a larger max_len")
        x = self.embed[ids]
        if positions is None:
            cos, sin = self.cos[pos : pos + T], self.sin[pos : pos + T]
        else:
            cos, sin = self.cos[positions], self.sin[positions]
        if mask is None and T > 1 and pos > 0:  # chunk after a prefix: causal within the chunk, full over the prefix
            mask = torch.ones(T, pos + T, dtype=torch.bool).tril(diagonal=pos)
        causal = mask is None and T > 1
        for i in range(self.n_layers):
            qkv = self.qkv(F.rms_norm(x, (self.hidden,), self.norm1[i], self.eps), i).view(T, -1, self.head_dim)
            qk = self._rope(qkv[:, : self.n_heads + self.n_kv], cos, sin).transpose(0, 1)
            self.k_cache[i][:, pos : pos + T] = qk[self.n_heads :]
            self.v_cache[i][:, pos : pos + T] = qkv[:, self.n_heads + self.n_kv :].transpose(0, 1)
            att = F.scaled_dot_product_attention(
                qk[None, : self.n_heads], self.k_cache[i][None, :, : pos + T], self.v_cache[i][None, :, : pos + T],
                attn_mask=mask, is_causal=causal, enable_gqa=self.n_kv != self.n_heads)
            x = x + self.o(att[0].transpose(0, 1).reshape(T, -1), i)
            gate, up = self.gate_up(F.rms_norm(x, (self.hidden,), self.norm2[i], self.eps), i).chunk(2, dim=-1)
            x = x + self.down(F.silu(gate) * up, i)
        return x

    @torch.inference_mode()
    def _prefill(self, ids: torch.Tensor, pos: int):
        return self._choose(self._hidden(ids, pos)[-1:])

    @torch.inference_mode()
    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits ``[T, vocab]`` of every position of ``ids`` (1-D) from position 0, through the ops (kernels)."""
        h = F.rms_norm(self._hidden(ids, 0), (self.hidden,), self.final_norm, self.eps)
        return self.head(h)

    @torch.inference_mode()
    def score_options(self, prompt: list[int], options: list[list[int]]) -> list[float]:
        """Mean log-probability of each option's tokens after ``prompt`` — the agent's choice by likelihood.

        The prompt runs once (a GEMM per op); then all options run as one batch of ``Σ len(option)`` tokens in
        the cache slots after it, each at the rotary positions right after the prompt and attending to the
        prompt and to its own earlier tokens only (a block-diagonal mask), so they share the prompt's cache.
        """
        P = len(prompt)
        h = F.rms_norm(self._hidden(torch.tensor(prompt), 0)[-1:], (self.hidden,), self.final_norm, self.eps)
        first = torch.log_softmax(self.head(h)[0].float(), -1)
        flat = torch.tensor([t for o in options for t in o])
        L = flat.numel()
        positions = torch.cat([torch.arange(P, P + len(o)) for o in options])
        mask = torch.zeros(L, P + L, dtype=torch.bool)
        mask[:, :P] = True
        start = 0
        for o in options:  # each option sees itself causally, never the other options
            n = len(o)
            mask[start : start + n, P + start : P + start + n] = torch.ones(n, n, dtype=torch.bool).tril()
            start += n
        x = self._hidden(flat, P, positions=positions, mask=mask)
        logp = torch.log_softmax(self.head(F.rms_norm(x, (self.hidden,), self.final_norm, self.eps)).float(), -1)
        scores, start = [], 0
        for o in options:
            total = float(first[o[0]]) + sum(float(logp[start + t - 1, o[t]]) for t in range(1, len(o)))
            scores.append(total / len(o))
            start += len(o)
        return scores

    def forward(self, ids: torch.Tensor, pos: int) -> torch.Tensor:
        """Logits of the last of ``ids`` (1-D) appended at position ``pos`` (used for the prompt)."""
        return self._prefill(ids, pos)[0]

    def _next(self, token: torch.Tensor, pos: torch.Tensor):
        """One decode step with static shapes (``token``, ``pos``: 1-element int64 tensors); see :meth:`_choose`."""
        x = self.embed[token]  # [1, hidden]
        cos, sin = self.cos[pos], self.sin[pos]
        bias = torch.where(self.positions <= pos, 0.0, float("-inf"))  # attend to filled cache slots only
        for i in range(self.n_layers):
            qkv = self.qkv(F.rms_norm(x, (self.hidden,), self.norm1[i], self.eps), i).view(1, -1, self.head_dim)
            qk = self._rope(qkv[:, : self.n_heads + self.n_kv], cos, sin)[0]
            self.k_cache[i].index_copy_(1, pos, qk[self.n_heads :, None])
            self.v_cache[i].index_copy_(1, pos, qkv[0, self.n_heads + self.n_kv :, None])
            x = x + self.o(self._attend(qk[: self.n_heads], i, bias), i)
            gate, up = self.gate_up(F.rms_norm(x, (self.hidden,), self.norm2[i], self.eps), i).chunk(2, dim=-1)
            x = x + self.down(F.silu(gate) * up, i)
        return self._choose(x)

    @torch.inference_mode()
    def step(self, token: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Logits of one decode step (the top ones rescored exactly)."""
        return self._next(token, pos)[0]

    @torch.inference_mode()
    def generate(self, prompt: list[int], max_new_tokens: int, *, eos_token_id: int | None = None) -> DecodeResult:
        """Greedy continuation of ``prompt`` (stops early at ``eos_token_id`` if given)."""
        if len(prompt) + max_new_tokens > self.max_len:
            raise ValueError(f"prompt + new tokens exceed max_len={self.max_len}; build the decoder with a larger max_len")
        tick = time.perf_counter()
        out = self._prefill(torch.tensor(prompt), 0)
        token, fallbacks = self._exact_choice(out), int(not bool(out[2]))
        prefill = time.perf_counter() - tick
        tokens, pos = [token], len(prompt)
        tick = time.perf_counter()
        while len(tokens) < max_new_tokens and token != eos_token_id:
            out = self._step(torch.tensor([token]), torch.tensor([pos]))
            fallbacks += not bool(out[2])
            token = self._exact_choice(out)
            tokens.append(token)
            pos += 1
        return DecodeResult(tokens, prefill, time.perf_counter() - tick, fallbacks)


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
    run = candidate.generate(prompt, new_tokens)
    got = run.tokens
    first = next((i for i, (a, b) in enumerate(zip(ref, got, strict=True)) if a != b), None)
    ids = torch.tensor(prompt + ref[:-1])
    ref_out = [reference._prefill(ids[: len(prompt)], 0)]
    cand_out = [candidate._prefill(ids[: len(prompt)], 0)]
    with torch.inference_mode():
        for pos in range(len(prompt), len(ids)):
            token, p = ids[pos : pos + 1], torch.tensor([pos])
            ref_out.append(reference._next(token, p))
            cand_out.append(candidate._next(token, p))
    agree, margins = 0, []
    for r, c in zip(ref_out, cand_out, strict=True):
        top2 = torch.topk(r[0], 2).values
        if reference._exact_choice(r) == candidate._exact_choice(c):
            agree += 1
        else:
            margins.append(float(top2[0] - top2[1]))
    ref_logits, cand_logits = [r[0] for r in ref_out], [c[0] for c in cand_out]
    return {
        "same_free_running": first is None,
        "first_difference": first,
        "teacher_forced_agreement": agree / len(ref_logits),
        "disagreements_beyond_tie": sum(m >= tie_margin for m in margins),
        "disagreement_margins": margins,
        "candidate_fallbacks": run.fallbacks,
        "max_logit_diff": max(float((r - c).abs().max()) for r, c in zip(ref_logits, cand_logits, strict=True)),
    }
