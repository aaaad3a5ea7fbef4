"""The language models the agent may ask, behind one small interface.

    LLM                the protocol: `choose(context, options) -> (index, scores)` and `chat(messages)`
    Ranker             the trained decider (appatlas.agent.ranker): scores options from their meaning and the
                       graph's values; what `--llm local` loads (trained by `appatlas train agent`)
    LocalLM            a causal LM in this process (SmolLM2-135M, any HF folder, a compressed folder);
                       it chooses by scoring each option's likelihood (appatlas.agent.llm_local)
    OpenAILM           any OpenAI-compatible endpoint through the `openai` client (appatlas.agent.llm_openai)
    make_llm(kind)     "none" | "local" | "local-lm" | "local-compressed" | "openai" -> an LLM, or None

Every failure to answer is an `appatlas.errors.LLMError`; the agent turns it into a warning and
decides from the graph alone, so a model that is down never stops a run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from appatlas.errors import LLMError, ModelMissing

__all__ = ["KINDS", "LLM", "Message", "SYSTEM_PROMPT", "make_llm", "numbered_choice", "parse_choice"]

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}
KINDS = ("none", "local", "local-lm", "local-compressed", "openai")
SYSTEM_PROMPT = ("You operate an Android app for a software tester. Given the tester's goal, the steps taken "
                 "so far and the screen, you pick the next action.")


@runtime_checkable
class LLM(Protocol):
    """What the agent needs from a model. Implementations raise LLMError when they cannot answer."""

    name: str

    def choose(self, context: str, options: Sequence[str]) -> tuple[int, list[float]]:
        """Pick one of `options` for `context`; returns its index and one score per option (higher = better)."""
        ...

    def chat(self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0) -> str:
        """A plain chat completion."""
        ...


def numbered_choice(context: str, options: Sequence[str]) -> list[Message]:
    """The chat messages that ask a model to answer one option number (for models we cannot score)."""
    listing = "\n".join(f"{i}. {text}" for i, text in enumerate(options))
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"{context}\n\nOptions:\n{listing}\n\nAnswer with the option number only."}]


def parse_choice(reply: str, n: int) -> int:
    """The first option number in `reply` that is in range; raises LLMError when there is none."""
    for m in re.finditer(r"\d+", reply):
        if 0 <= int(m.group()) < n:
            return int(m.group())
    raise LLMError(f"the model answered {reply[:80]!r}, which names none of the {n} options; "
                   "use a stronger model or run graph-only (--llm none)")


def make_llm(kind: str = "local", *, model: str | None = None, base_url: str | None = None,
             api_key: str | None = None, timeout: float = 20.0) -> Any:
    """An LLM of `kind` (see KINDS), or None for "none" (graph-only decisions).

    - local: the shipped trained ranker (`appatlas.agent.ranker.SHIPPED`), or `model` = a ranker .npz written
      by `appatlas train agent`, or any causal LM folder (then as local-lm);
    - local-lm: SmolLM2-135M-Instruct by default, or `model` = "gemma3-270m" or any causal LM folder, choosing by
      likelihood;
    - local-compressed: `model` (or $APPATLAS_COMPRESSED_MODEL) = a folder written by `appatlas compress`;
    - openai: `model` at `base_url` (or $APPATLAS_LLM_BASE_URL), key `api_key` (or $OPENAI_API_KEY).
    """
    if kind == "none":
        return None
    if kind == "local" and (model is None or model.endswith(".npz")):
        from pathlib import Path

        from appatlas.agent.ranker import SHIPPED, Ranker

        return Ranker.load(Path(model) if model else SHIPPED)
    if kind in ("local", "local-lm"):
        from appatlas.agent.llm_local import LocalLM

        return LocalLM.load(model or "smollm2-135m")
    if kind == "local-compressed":
        from appatlas.agent.llm_local import LocalLM

        folder = model or os.environ.get("APPATLAS_COMPRESSED_MODEL", "")
        if not folder:
            raise ModelMissing("--llm local-compressed needs a compressed model folder: pass --model FOLDER (written "
                               "by `appatlas compress`) or set APPATLAS_COMPRESSED_MODEL")
        return LocalLM.load(folder, name=f"compressed:{os.path.basename(os.path.normpath(folder))}")
    if kind == "openai":
        from appatlas.agent.llm_openai import OpenAILM

        return OpenAILM(model=model, base_url=base_url, api_key=api_key, timeout=timeout)
    raise ValueError(f"unknown LLM kind {kind!r}; use one of {', '.join(KINDS)}")
