"""adb smart-socket framing: 4-hex-digit length prefixed requests, OKAY / FAIL replies.

Every read is bounded in size and in time, so a hostile or broken peer can cost one
connection and never the server.
"""

from __future__ import annotations

import asyncio
import socket

MAX_REQUEST = 16 * 1024  # adb host requests are a few hundred bytes; 4 hex digits allow 64 KiB
IDLE_TIMEOUT = 120.0  # seconds a connection may sit silent before it is dropped
OKAY = b"OKAY"


class ProtocolError(Exception):
    """A peer broke the adb protocol; the message goes back to it after FAIL."""


def fail(message: str) -> bytes:
    """FAIL + a length-prefixed message, as the adb server answers a refused request."""
    data = message.encode("utf-8", "replace")[:0xFFFF]
    return b"FAIL" + f"{len(data):04x}".encode() + data


def block(text: str | bytes) -> bytes:
    """A length-prefixed string, as in the answers to host:version and host:devices."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return f"{len(data):04x}".encode() + data


async def read_exact(reader: asyncio.StreamReader, n: int, *, timeout: float = IDLE_TIMEOUT) -> bytes | None:
    """Exactly `n` bytes, or None when the peer closed first."""
    try:
        async with asyncio.timeout(timeout):  # no task per read, unlike wait_for: pushes are many small reads
            return await reader.readexactly(n)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError(f"connection closed after {len(exc.partial)} of {n} bytes") from None
        return None


async def read_request(reader: asyncio.StreamReader) -> str | None:
    """One smart-socket request (`0012host:version` -> "host:version"); None at a clean EOF."""
    head = await read_exact(reader, 4)
    if head is None:
        return None
    try:
        size = int(head.decode("ascii"), 16)
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError(f"bad request length {head!r}: expected 4 hex digits") from None
    if size == 0 or size > MAX_REQUEST:
        raise ProtocolError(f"request length {size} outside 1..{MAX_REQUEST}")
    body = await read_exact(reader, size)
    if body is None:
        raise ProtocolError("connection closed inside a request")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("request is not UTF-8") from None


def tune(writer: asyncio.StreamWriter) -> None:
    """Send small writes at once and ACK at once: without this each call pays ~40 ms of Nagle."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        quickack(writer)
    except OSError:
        pass


def quickack(writer: asyncio.StreamWriter) -> None:
    """Re-arm TCP_QUICKACK (Linux resets it after a while); a no-op elsewhere."""
    flag = getattr(socket, "TCP_QUICKACK", None)
    sock = writer.get_extra_info("socket")
    if flag is None or sock is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, flag, 1)
    except OSError:
        pass


async def close(writer: asyncio.StreamWriter) -> None:
    """Close a connection, ignoring a peer that already went away."""
    try:
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 2.0)
    except (TimeoutError, OSError, RuntimeError):
        pass
