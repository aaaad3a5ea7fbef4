"""A causal LM in this process: choosing by likelihood, and plain (streamed) generation.

A model of 135M parameters writes unreliable JSON, but it ranks continuations well enough: the
agent asks it how likely each candidate action's text is after the prompt (mean log-probability
per token) and takes the most likely. The shared prompt is run once and its KV cache is reused
for every option, in batches, so a choice among twenty actions costs little more than one
forward pass over the prompt.
"""

from __future__ import annotations

import copy
import inspect
import os
import random
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from appatlas.agent.llm import SYSTEM_PROMPT, Message
from appatlas.errors import LLMError, ModelMissing

__all__ = ["Chunk", "LocalLM"]


_NEUTRAL = "Which action comes next?"


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of generated text; the last one carries why generation stopped and the token counts."""

    text: str
    finish_reason: str | None = None  # "stop" | "length" on the last chunk
    prompt_tokens: int = 0
    completion_tokens: int = 0


class LocalLM:
    """A Hugging Face causal LM (with its tokenizer) used in-process, one call at a time."""

    def __init__(self, model: Any, tokenizer: Any, *, name: str = "local", max_prompt_tokens: int = 1536,
                 batch: int = 16, calibrate: bool = True) -> None:
        self.model = model.eval()
        self.calibrate = calibrate
        self._prior: dict[str, float] = {}  # option text -> its score with no context (see `choose`)
        self.tokenizer = tokenizer
        self.name = name
        self.max_prompt_tokens = max_prompt_tokens
        self.batch = batch
        self._lock = threading.Lock()  # one forward pass at a time: the model is not re-entrant
        eos = getattr(tokenizer, "eos_token_id", None)
        extra = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")
                 if t in tokenizer.get_vocab()]
        self.stop_ids = {i for i in [eos, *extra] if isinstance(i, int) and i >= 0}
        self.pad_id = eos if isinstance(eos, int) else 0
        params = inspect.signature(model.forward).parameters
        # transformers 5 renamed `past_key_values` to `cache`; older releases (>= 4.45) take the old name.
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self._keep_last = "logits_to_keep" in params

    def _past(self, out: Any) -> Any:
        return getattr(out, "cache", None) if self._cache_arg == "cache" else out.past_key_values

    def _forward(self, ids: torch.Tensor, *, past: Any = None, mask: torch.Tensor | None = None,
                 last_only: bool = False) -> Any:
        kwargs: dict[str, Any] = {"input_ids": ids, "use_cache": True, self._cache_arg: past}
        if mask is not None:
            kwargs["attention_mask"] = mask
        if last_only and self._keep_last:
            kwargs["logits_to_keep"] = 1  # the vocabulary projection of every prompt token is wasted work
        return self.model(**kwargs)

    @classmethod
    def load(cls, name_or_path: str | os.PathLike[str] = "smollm2-135m", *, name: str = "") -> LocalLM:
        """Load SmolLM2-135M-Instruct ("smollm2-135m"), a causal LM folder, or a compressed folder."""
        from appatlas.compression.errors import CompressionError
        from appatlas.compression.models import load_causal_lm

        try:
            model, tokenizer = load_causal_lm(name_or_path)
        except CompressionError as exc:
            raise ModelMissing(f"cannot load the local model {str(name_or_path)!r}: {exc}") from exc
        return cls(model, tokenizer, name=name or os.path.basename(os.path.normpath(str(name_or_path))))

    # --- prompts --------------------------------------------------------------------------------

    def prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of `messages` in the model's chat format, ready for the assistant's reply."""
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
        else:  # a base model: a plain transcript
            text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
        return list(tok(text, add_special_tokens=False)["input_ids"])

    def _context_ids(self, context: str) -> list[int]:
        ids = self.prompt_ids([{"role": "system", "content": SYSTEM_PROMPT},
                               {"role": "user", "content": context}])
        # Too long: keep the end, where the screen and the question are (the goal is repeated there).
        return ids[-self.max_prompt_tokens:]

    # --- choosing by likelihood ------------------------------------------------------------------

    def choose(self, context: str, options: Sequence[str]) -> tuple[int, list[float]]:
        """The option with the highest mean token log-probability after `context`, and every option's score.

        Calibrated (the default): each score is relative to the same option's score after a prompt
        that says nothing about the task, so a short, common text ("press back") does not win just
        for being likely anywhere (domain-conditional PMI). Those priors are cached per text.
        """
        if not options:
            raise LLMError("nothing to choose from: the screen offered no actions")
        scores = self.score(self._context_ids(context), options)
        if self.calibrate:
            missing = [o for o in dict.fromkeys(options) if o not in self._prior]
            if missing:
                self._prior.update(zip(missing, self.score(self._context_ids(_NEUTRAL), missing), strict=True))
            scores = [s - self._prior[o] for s, o in zip(scores, options, strict=True)]
        return max(range(len(scores)), key=scores.__getitem__), scores

    @torch.inference_mode()
    def score(self, prefix: Sequence[int], options: Sequence[str]) -> list[float]:
        """Mean log-probability of each option's tokens following `prefix` (token ids)."""
        encoded = [list(self.tokenizer(o, add_special_tokens=False)["input_ids"]) or [self.pad_id] for o in options]
        with self._lock:
            out = self._forward(torch.tensor([list(prefix)]), last_only=True)
            first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
            scores: list[float] = []
            for start in range(0, len(encoded), self.batch):
                chunk = encoded[start:start + self.batch]
                scores += self._score_chunk(self._past(out), len(prefix), first, chunk)
        return scores

    def _score_chunk(self, past: Any, n_prefix: int, first: torch.Tensor, chunk: list[list[int]]) -> list[float]:
        width = max(len(ids) for ids in chunk)
        ids = torch.tensor([o + [self.pad_id] * (width - len(o)) for o in chunk])
        mask = torch.tensor([[1] * len(o) + [0] * (width - len(o)) for o in chunk])
        cache = copy.deepcopy(past)
        cache.batch_repeat_interleave(len(chunk))
        # Right padding: padded positions come after every real one, so causal attention keeps them out.
        out = self._forward(ids, past=cache, mask=torch.cat([torch.ones(len(chunk), n_prefix, dtype=mask.dtype), mask],
                                                           dim=1))
        logp = torch.log_softmax(out.logits.float(), dim=-1)
        result = []
        for row, option in enumerate(chunk):
            total = float(first[option[0]])
            for t in range(1, len(option)):
                total += float(logp[row, t - 1, option[t]])
            result.append(total / len(option))
        return result

    # --- generation -----------------------------------------------------------------------------

    def chat(self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0) -> str:
        return "".join(c.text for c in self.generate(messages, max_tokens=max_tokens, temperature=temperature))

    @torch.inference_mode()
    def generate(self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int | None = None, stop: Sequence[str] = ()) -> Iterator[Chunk]:
        """Stream the reply to `messages` as text pieces; the last Chunk says why it ended.

        Greedy at temperature 0, else sampled (nucleus `top_p`). Raises LLMError when the prompt is
        longer than `max_prompt_tokens`.
        """
        prompt = self.prompt_ids(messages)
        if len(prompt) > self.max_prompt_tokens:
            raise LLMError(f"the prompt has {len(prompt)} tokens, more than this model's limit of "
                           f"{self.max_prompt_tokens}; shorten the messages")
        rng = random.Random(seed)
        gen = torch.Generator().manual_seed(rng.randrange(2**31)) if temperature > 0 else None
        with self._lock:
            past, x = None, torch.tensor([prompt])
            tokens: list[int] = []
            said = ""
            finish = "length"
            for _ in range(max_tokens):
                out = self._forward(x, past=past, last_only=True)
                past = self._past(out)
                token = _pick(out.logits[0, -1].float(), temperature, top_p, gen)
                if token in self.stop_ids:
                    finish = "stop"
                    break
                tokens.append(token)
                text = self.tokenizer.decode(tokens, skip_special_tokens=True)
                cut = _stop_at(text, stop)
                if cut is not None:
                    if cut > len(said):
                        yield Chunk(text[len(said):cut])
                    said, finish = text[:cut], "stop"
                    break
                if not text.endswith("\ufffd") and len(text) > len(said):  # an incomplete UTF-8 character waits
                    yield Chunk(text[len(said):])
                    said = text
                x = torch.tensor([[token]])
            yield Chunk("", finish_reason=finish, prompt_tokens=len(prompt), completion_tokens=len(tokens))


def _pick(logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator | None) -> int:
    if temperature <= 0 or gen is None:
        return int(logits.argmax())
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(descending=True)
        keep = sorted_p.cumsum(0) - sorted_p < top_p
        probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
    return int(torch.multinomial(probs / probs.sum(), 1, generator=gen))


def _stop_at(text: str, stop: Sequence[str]) -> int | None:
    hits = [text.find(s) for s in stop if s and s in text]
    return min(hits) if hits else None
