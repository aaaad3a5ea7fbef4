"""Any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, `appatlas serve`) through the `openai` client.

Foreign errors are translated in one place (`_translated`) into LLMError, with what to do next.
The client's own retries are bounded (one retry by default) and every call carries a timeout.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import openai

from appatlas.agent.llm import Message, numbered_choice, parse_choice
from appatlas.errors import LLMError

__all__ = ["DEFAULT_MODEL", "OpenAILM"]

DEFAULT_MODEL = "gpt-4o-mini"


class OpenAILM:
    """Chat completions from an OpenAI-compatible endpoint; choices are asked as an option number."""

    def __init__(self, *, model: str | None = None, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 20.0, max_retries: int = 1) -> None:
        self.model = model or os.environ.get("APPATLAS_LLM_MODEL") or DEFAULT_MODEL
        self.base_url = base_url or os.environ.get("APPATLAS_LLM_BASE_URL") or None
        # A local server may need no key; the client insists on one, so an unused placeholder is sent.
        key = api_key or os.environ.get("OPENAI_API_KEY") or "unused"
        self.timeout = timeout
        self.client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=timeout, max_retries=max_retries)
        self.name = f"openai:{self.model}"

    def chat(self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0) -> str:
        with self._translated():
            reply = self.client.chat.completions.create(model=self.model, messages=list(messages),  # type: ignore[arg-type]
                                                        max_tokens=max_tokens, temperature=temperature)
        if not reply.choices:
            raise LLMError(f"{self._where()} answered with no choices; check the model name {self.model!r}")
        return reply.choices[0].message.content or ""

    def choose(self, context: str, options: Sequence[str]) -> tuple[int, list[float]]:
        """Ask for an option number; the scores are 1 for the chosen option and 0 for the others."""
        if not options:
            raise LLMError("nothing to choose from: the screen offered no actions")
        index = parse_choice(self.chat(numbered_choice(context, options), max_tokens=8), len(options))
        return index, [1.0 if i == index else 0.0 for i in range(len(options))]

    def stream(self, messages: Sequence[Message], *, max_tokens: int = 256) -> Iterator[str]:
        """Text pieces of a streamed chat completion."""
        with self._translated():
            for chunk in self.client.chat.completions.create(model=self.model, messages=list(messages),  # type: ignore[arg-type]
                                                             max_tokens=max_tokens, stream=True):
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content

    def _where(self) -> str:
        return f"the LLM endpoint {self.base_url or 'api.openai.com'}"

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except openai.APITimeoutError as exc:
            raise LLMError(f"{self._where()} did not answer within {self.timeout:g} s; raise --llm-timeout or "
                           "use a local model (--llm local)") from exc
        except openai.APIConnectionError as exc:
            raise LLMError(f"cannot reach {self._where()} ({exc}); check APPATLAS_LLM_BASE_URL or start "
                           "`appatlas serve`") from exc
        except openai.AuthenticationError as exc:
            raise LLMError(f"{self._where()} refused the API key; set OPENAI_API_KEY (or --api-key)") from exc
        except openai.APIStatusError as exc:
            raise LLMError(f"{self._where()} answered HTTP {exc.status_code}: {_message(exc)}") from exc
        except openai.OpenAIError as exc:
            raise LLMError(f"{self._where()} failed: {exc}") from exc


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    err = body.get("error", body) if isinstance(body, dict) else {}
    return str(err.get("message") if isinstance(err, dict) and err.get("message") else exc.message)
