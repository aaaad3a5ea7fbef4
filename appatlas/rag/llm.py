"""The `llm` captioner: captions from any OpenAI-compatible endpoint through the `openai` client.

Options (keyword) or environment:
    base_url  APPATLAS_LLM_BASE_URL, else OPENAI_BASE_URL (e.g. http://127.0.0.1:8000/v1 for a local server)
    api_key   APPATLAS_LLM_API_KEY, else OPENAI_API_KEY (local servers accept any value)
    model     APPATLAS_LLM_MODEL, else "gpt-4o-mini"
    images    send screenshots as image parts (for models that take images)

Foreign errors (timeouts, refused connections, HTTP errors) are turned into `CaptionerError`
at one place, `_complete`. With `fallback=True` (the default) a failed caption becomes the
heuristic one, with a warning, so an indexing run never dies of a flaky endpoint; after
`max_failures` failures in a row the endpoint is not asked again during this run.
"""

from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from appatlas.errors import CaptionerError
from appatlas.rag.captioner import Caption, screen_caption, transition_caption
from appatlas.rag.views import AtlasViews, ScreenView, TransitionView

__all__ = ["LLMCaptioner"]

log = logging.getLogger(__name__)

SYSTEM = ("You caption mobile app UI for a test-planning index. Answer with one sentence of at most 35 words "
          "saying what the screen is for, or what the action does and where it leads. No preamble.")


@dataclass
class LLMCaptioner:
    model: str = ""
    base_url: str = ""
    api_key: str = ""
    images: bool = False
    timeout: float = 30.0
    fallback: bool = True
    max_failures: int = 3
    max_tokens: int = 96
    _client: Any = field(default=None, init=False, repr=False)
    _failures: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self.model = self.model or os.environ.get("APPATLAS_LLM_MODEL", "gpt-4o-mini")
        self.base_url = self.base_url or os.environ.get("APPATLAS_LLM_BASE_URL", "") or \
            os.environ.get("OPENAI_BASE_URL", "")
        self.api_key = self.api_key or os.environ.get("APPATLAS_LLM_API_KEY", "") or \
            os.environ.get("OPENAI_API_KEY", "")
        if not self.base_url and not self.api_key:
            raise CaptionerError("the llm captioner needs an endpoint: pass --llm-base-url (or set "
                                 "APPATLAS_LLM_BASE_URL) for a local server, or set OPENAI_API_KEY")

    @property
    def name(self) -> str:
        return f"llm:{self.model}"

    # --- Captioner ---------------------------------------------------------------------------

    def caption_screen(self, view: ScreenView, views: AtlasViews) -> Caption:
        hint = screen_caption(view.facts)
        prompt = (f"Screen of an Android app (activity {view.facts.activity}). What its widgets say: {hint}\n"
                  "Caption this screen: what is it for, and what can a user do here?")
        image = view.example.screenshot if self.images else None
        return self._caption(prompt, hint, image)

    def caption_transition(self, view: TransitionView, views: AtlasViews) -> Caption:
        hint = transition_caption(view, views)
        source = views.screens.get(view.source)
        target = views.screens.get(view.target)
        prompt = (f"Action: {hint}\nOn screen: {screen_caption(source.facts) if source else '?'}\n"
                  f"Leads to: {screen_caption(target.facts) if target else '?'}\n"
                  "Caption this action: what does it do for the user, and where does it lead?")
        return self._caption(prompt, hint, None)

    # --- talking to the endpoint --------------------------------------------------------------

    def _caption(self, prompt: str, fallback_text: str, image: bytes | None) -> Caption:
        if self._failures >= self.max_failures:
            return Caption(fallback_text, "heuristic")  # the endpoint is down: stop paying its timeout
        try:
            text = self._complete(prompt, image)
        except CaptionerError as exc:
            self._failures += 1
            if not self.fallback:
                raise
            log.warning("llm captioner fell back to the heuristic caption: %s", exc)
            return Caption(fallback_text, "heuristic")
        self._failures = 0
        return Caption(text, self.name)

    def _client_(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.OpenAI(base_url=self.base_url or None, api_key=self.api_key or "not-needed",
                                         timeout=self.timeout, max_retries=0)
        return self._client

    def _complete(self, prompt: str, image: bytes | None) -> str:
        """One chat completion; every failure of the endpoint becomes a CaptionerError."""
        import openai

        content: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
        if image is not None:
            mime = "image/jpeg" if image[:3] == b"\xff\xd8\xff" else "image/png"
            url = f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}"
            content.append({"type": "image_url", "image_url": {"url": url}})
        where = self.base_url or "the OpenAI API"
        try:
            reply = self._client_().chat.completions.create(
                model=self.model, max_tokens=self.max_tokens, temperature=0.0,
                messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}])
        except openai.APITimeoutError as exc:
            raise CaptionerError(f"{where} did not answer within {self.timeout:g}s; raise --llm-timeout or use "
                                 "--captioner heuristic") from exc
        except openai.APIConnectionError as exc:
            raise CaptionerError(f"cannot reach {where} ({exc}); start the server or check --llm-base-url") from exc
        except openai.APIStatusError as exc:
            raise CaptionerError(f"{where} answered HTTP {exc.status_code}: {_short(exc.message)}; check the model "
                                 f"name ({self.model}) and the API key") from exc
        except openai.OpenAIError as exc:
            raise CaptionerError(f"{where} failed: {_short(str(exc))}") from exc
        try:
            text = (reply.choices[0].message.content or "").strip()
        except (AttributeError, IndexError, TypeError) as exc:
            raise CaptionerError(f"{where} sent a reply without a message; is it OpenAI-compatible?") from exc
        if not text:
            raise CaptionerError(f"{where} sent an empty caption")
        return " ".join(text.split())


def _short(text: str, n: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "\u2026"
