"""The uiautomator2 server's HTTP side (`GET /ping`, `POST /jsonrpc/0`) over an adb `tcp:` stream.

HTTP/1.1 with Content-Length bodies and keep-alive; request lines, headers and bodies are
bounded. A request that is not HTTP gets 400 and the connection is closed; a body that is
not JSON-RPC gets a JSON-RPC error; nothing a client sends stops the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from appatlas.devices.fakeadb._phone import Phone, UiServer
from appatlas.devices.fakeadb._rpc import INTERNAL, INVALID_REQUEST, PARSE_ERROR, RpcError, UiRpc
from appatlas.devices.fakeadb._wire import IDLE_TIMEOUT, quickack

log = logging.getLogger(__name__)

MAX_LINE = 8 * 1024
MAX_HEADERS = 64
MAX_BODY = 1024 * 1024
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            413: "Payload Too Large", 431: "Request Header Fields Too Large", 501: "Not Implemented"}


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def _response(status: int, body: bytes, content_type: str, *, close: bool) -> bytes:
    head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n" + ("Connection: close\r\n" if close else "") + "\r\n")
    return head.encode("ascii") + body


async def _line(reader: asyncio.StreamReader) -> bytes | None:
    try:
        async with asyncio.timeout(IDLE_TIMEOUT):
            line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise _BadRequest(400, "connection closed inside a request line") from None
        return None
    except asyncio.LimitOverrunError:
        raise _BadRequest(431, "request line or header too long") from None
    if len(line) > MAX_LINE:
        raise _BadRequest(431, f"request line or header longer than {MAX_LINE} bytes")
    return line


async def _request(reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> tuple[str, str, bool, bytes] | None:
    """(method, path, keep-alive, body), or None when the peer closed between requests."""
    first = await _line(reader)
    if first is None:
        return None
    quickack(writer)  # clients send headers and body in two writes: ACK the first at once
    try:
        method, path, version = first.decode("ascii").split()
    except (UnicodeDecodeError, ValueError):
        raise _BadRequest(400, "malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise _BadRequest(400, f"unsupported protocol {version[:20]!r}")
    headers: dict[str, str] = {}
    while True:
        line = await _line(reader)
        if line is None:
            raise _BadRequest(400, "connection closed inside the headers")
        if line in (b"\r\n", b"\n"):
            break
        if len(headers) >= MAX_HEADERS:
            raise _BadRequest(431, f"more than {MAX_HEADERS} headers")
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise _BadRequest(400, "malformed header line")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise _BadRequest(501, "chunked bodies are not supported; send Content-Length")
    raw = headers.get("content-length", "0")
    if not raw.isdigit():
        raise _BadRequest(400, "bad Content-Length")
    size = int(raw)
    if size > MAX_BODY:
        raise _BadRequest(413, f"body of {size} bytes (at most {MAX_BODY})")
    try:
        async with asyncio.timeout(IDLE_TIMEOUT):
            body = await reader.readexactly(size) if size else b""
    except asyncio.IncompleteReadError:
        raise _BadRequest(400, "connection closed inside the body") from None
    keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    return method, path, keep, body


def _rpc_error(rid: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message, "data": message}}


async def jsonrpc(rpc: UiRpc, body: bytes) -> dict[str, Any]:
    """One JSON-RPC request body in, one response object out (errors included)."""
    try:
        req = json.loads(body)
    except (ValueError, RecursionError) as exc:
        return _rpc_error(None, PARSE_ERROR, f"Parse error: {str(exc)[:200]}")
    if not isinstance(req, dict) or not isinstance(req.get("method"), str):
        return _rpc_error(None, INVALID_REQUEST, "Invalid Request: expected an object with a string method")
    rid = req.get("id")
    if not isinstance(rid, int | str) or isinstance(rid, bool):
        rid = None
    try:
        return {"jsonrpc": "2.0", "id": rid, "result": await rpc.call(req["method"], req.get("params"))}
    except RpcError as exc:
        return _rpc_error(rid, exc.code, exc.message)
    except Exception as exc:  # a device-side bug must answer this request, not kill the server
        log.exception("jsonrpc %s failed", req["method"][:80])
        return _rpc_error(rid, INTERNAL, f"java.lang.RuntimeException: {type(exc).__name__}: {exc}")


async def serve_http(phone: Phone, ui: UiServer, rpc: UiRpc, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
    """Serve requests on one connection until it closes, breaks HTTP, or the UI server stops."""
    while phone.ui is ui:
        try:
            quickack(writer)
            request = await _request(reader, writer)
        except _BadRequest as exc:
            writer.write(_response(exc.status, str(exc).encode(), "text/plain", close=True))
            await writer.drain()
            return
        if request is None or phone.ui is not ui:
            return
        quickack(writer)
        method, path, keep, body = request
        if path == "/ping" and method == "GET":
            out = _response(200, b"pong", "text/plain", close=not keep)
        elif path == "/jsonrpc/0" and method == "POST":
            answer = await jsonrpc(rpc, body)
            if phone.ui is not ui:
                return  # the server died while this call ran: the client sees the connection drop
            data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
            out = _response(200, data, "application/json; charset=utf-8", close=not keep)
        elif path in ("/ping", "/jsonrpc/0"):
            out = _response(405, b"method not allowed", "text/plain", close=not keep)
        else:
            out = _response(404, b"not found", "text/plain", close=not keep)
        writer.write(out)
        await writer.drain()
        if not keep:
            return
