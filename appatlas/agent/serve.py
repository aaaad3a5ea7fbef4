"""`appatlas serve`: the local (optionally compressed) model behind an OpenAI-compatible HTTP API.

    GET  /v1/models              the one model served
    POST /v1/chat/completions    chat, plain or streamed (`"stream": true` -> server-sent events)

Safe by default: it binds 127.0.0.1; any other address prints a warning and refuses to start
without an API key (then every request must carry `Authorization: Bearer KEY`). Request bodies
and generation lengths are bounded, and a malformed request gets an OpenAI-style error object
(`{"error": {"message", "type", "param", "code"}}`), never a crash or a hanging connection.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from appatlas.agent.llm_local import Chunk, LocalLM
from appatlas.errors import LLMError, ServeRefused

__all__ = ["ServeConfig", "is_loopback", "make_server", "serve_in_thread"]

log = logging.getLogger(__name__)

_ROLES = ("system", "user", "assistant", "tool", "developer")


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str = ""
    model_name: str = "smollm2-135m"
    max_body: int = 1 << 20  # bytes of one request
    max_tokens: int = 512  # generation length cap; larger requests are clamped to it
    read_timeout: float = 30.0  # seconds a client may take to send its request


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def make_server(lm: LocalLM, config: ServeConfig = ServeConfig(), *,
                warn: Callable[[str], None] = log.warning) -> ThreadingHTTPServer:
    """A bound (not yet serving) HTTP server for `lm`; call `serve_forever()` on it.

    Raises ServeRefused for a non-loopback host without an API key, or a port that cannot be bound.
    """
    if not is_loopback(config.host):
        warn(f"serving on {config.host}: anyone who can reach this machine can use the model")
        if not config.api_key:
            raise ServeRefused(f"refusing to serve on the non-loopback address {config.host} without an API key; "
                               "pass --api-key KEY (or set APPATLAS_API_KEY), or bind 127.0.0.1")
    handler = type("Handler", (_Handler,), {"lm": lm, "config": config, "timeout": config.read_timeout})
    try:
        server = ThreadingHTTPServer((config.host, config.port), handler)
    except OSError as exc:
        raise ServeRefused(f"cannot listen on {config.host}:{config.port} ({exc.strerror or exc}); "
                           "choose another --port or stop what uses it") from exc
    server.daemon_threads = True
    return server


def serve_in_thread(lm: LocalLM, config: ServeConfig = ServeConfig()) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start serving in a background thread (for tests and embedding); stop with `server.shutdown()`."""
    server = make_server(lm, config)
    thread = threading.Thread(target=server.serve_forever, name="appatlas-serve", daemon=True)
    thread.start()
    return server, thread


class _BadRequest(Exception):
    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code


class _Handler(BaseHTTPRequestHandler):
    lm: LocalLM
    config: ServeConfig
    server_version = "appatlas-serve"

    # --- routing ------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's naming
        self._route(lambda: self._models() if self.path.rstrip("/") == "/v1/models" else self._not_found())

    def do_POST(self) -> None:  # noqa: N802
        self._route(lambda: self._chat() if self.path.rstrip("/") == "/v1/chat/completions" else self._not_found())

    def _route(self, handle: Callable[[], None]) -> None:
        try:
            self._check_key()
            handle()
        except _BadRequest as exc:
            self._error(exc)
        except Exception:  # noqa: BLE001 - one bad request must not take the server down
            log.exception("serve: request %s %s failed", self.command, self.path)
            self._error(_BadRequest(500, "the server failed to answer this request; see its log", kind="server_error"))

    def _not_found(self) -> None:
        raise _BadRequest(404, f"no route {self.command} {self.path}; this server offers GET /v1/models and "
                               "POST /v1/chat/completions", code="not_found")

    def _check_key(self) -> None:
        key = self.config.api_key
        if not key:
            return
        given = self.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
            raise _BadRequest(401, "missing or wrong API key: send 'Authorization: Bearer KEY'",
                              code="invalid_api_key")

    # --- endpoints ----------------------------------------------------------------------------

    def _models(self) -> None:
        self._json(200, {"object": "list", "data": [{"id": self.config.model_name, "object": "model",
                                                      "created": 0, "owned_by": "appatlas"}]})

    def _chat(self) -> None:
        req = self._read_json()
        messages = _messages(req.get("messages"))
        max_tokens = _int(req, ("max_completion_tokens", "max_tokens"), default=self.config.max_tokens, low=1)
        max_tokens = min(max_tokens, self.config.max_tokens)
        temperature = _number(req, "temperature", default=1.0, low=0.0, high=2.0)  # OpenAI's default
        top_p = _number(req, "top_p", default=1.0, low=0.0, high=1.0)
        if req.get("n", 1) != 1:
            raise _BadRequest(400, "only n=1 is supported", param="n")
        stop = req.get("stop") or []
        stop = [stop] if isinstance(stop, str) else stop
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop) or len(stop) > 4:
            raise _BadRequest(400, "stop must be a string or a list of up to 4 strings", param="stop")
        seed = req.get("seed")
        if seed is not None and not isinstance(seed, int):
            raise _BadRequest(400, "seed must be an integer", param="seed")
        stream = req.get("stream", False)
        if not isinstance(stream, bool):
            raise _BadRequest(400, "stream must be true or false", param="stream")
        try:
            chunks = self.lm.generate(messages, max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                                      seed=seed, stop=stop)
            first = next(chunks)  # a prompt that is too long fails here, before any byte is sent
        except LLMError as exc:
            raise _BadRequest(400, str(exc), param="messages", code="context_length_exceeded") from exc
        pieces = _chain(first, chunks)
        ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if stream:
            self._stream(pieces, ident, created)
            return
        text, last = [], Chunk("")
        for c in pieces:
            text.append(c.text)
            last = c
        self._json(200, {
            "id": ident, "object": "chat.completion", "created": created, "model": self.config.model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(text)},
                         "finish_reason": last.finish_reason or "stop", "logprobs": None}],
            "usage": {"prompt_tokens": last.prompt_tokens, "completion_tokens": last.completion_tokens,
                      "total_tokens": last.prompt_tokens + last.completion_tokens}})

    def _stream(self, pieces: Iterator[Chunk], ident: str, created: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def send(delta: dict[str, Any], finish: str | None) -> None:
            body = {"id": ident, "object": "chat.completion.chunk", "created": created,
                    "model": self.config.model_name,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
            self.wfile.write(f"data: {json.dumps(body)}\n\n".encode())
            self.wfile.flush()

        try:
            send({"role": "assistant", "content": ""}, None)
            for c in pieces:
                if c.text:
                    send({"content": c.text}, None)
                if c.finish_reason:
                    send({}, c.finish_reason)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            log.info("serve: the client went away mid-stream")

    # --- plumbing -----------------------------------------------------------------------------

    def _read_json(self) -> dict[str, Any]:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise _BadRequest(411, "send a JSON body with a Content-Length header", code="length_required")
        if int(length) > self.config.max_body:
            self.close_connection = True  # the rest of the body is not read
            raise _BadRequest(413, f"request body of {length} bytes is larger than the limit of "
                                   f"{self.config.max_body}", code="request_too_large")
        raw = self.rfile.read(int(length))
        try:
            req = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _BadRequest(400, f"the body is not valid JSON ({exc})", code="invalid_json") from exc
        if not isinstance(req, dict):
            raise _BadRequest(400, "the body must be a JSON object", code="invalid_json")
        return req

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, exc: _BadRequest) -> None:
        try:
            self._json(exc.status, {"error": {"message": exc.message, "type": exc.kind, "param": exc.param,
                                              "code": exc.code}})
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        log.info("serve: %s - %s", self.address_string(), format % args)


def _chain(first: Chunk, rest: Iterator[Chunk]) -> Iterator[Chunk]:
    yield first
    yield from rest


def _messages(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise _BadRequest(400, "messages must be a non-empty list of {role, content} objects", param="messages")
    out = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            raise _BadRequest(400, f"messages[{i}] needs a role, one of {', '.join(_ROLES)}", param=f"messages[{i}]")
        content = m.get("content")
        if isinstance(content, list):  # content parts: only text is understood
            texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
            if len(texts) != len(content) or not all(isinstance(t, str) for t in texts):
                raise _BadRequest(400, f"messages[{i}].content: only text parts are supported",
                                  param=f"messages[{i}].content")
            content = "".join(texts)  # type: ignore[arg-type]
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise _BadRequest(400, f"messages[{i}].content must be a string", param=f"messages[{i}].content")
        role = "system" if m["role"] == "developer" else m["role"]
        out.append({"role": role, "content": content})
    return out


def _int(req: dict[str, Any], names: tuple[str, ...], *, default: int, low: int) -> int:
    for name in names:
        if req.get(name) is not None:
            value = req[name]
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise _BadRequest(400, f"{name} must be an integer >= {low}", param=name)
            return value
    return default


def _number(req: dict[str, Any], name: str, *, default: float, low: float, high: float) -> float:
    value = req.get(name)
    if value is None:
        return default
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise _BadRequest(400, f"{name} must be a number in [{low:g}, {high:g}]", param=name)
    return float(value)
