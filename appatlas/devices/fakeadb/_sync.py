"""adb's `sync:` file service (STAT, SEND, RECV, LIST, QUIT): how u2.jar reaches the phone.

Each request is a 4-byte id plus a little-endian length; paths are bounded, DATA chunks are at
most 64 KiB as in adbd, and a file may not pass the phone's size limit.
"""

from __future__ import annotations

import asyncio
import posixpath
import stat
import struct
import time

from appatlas.devices.fakeadb._phone import MAX_FILE, Phone
from appatlas.devices.fakeadb._wire import ProtocolError, read_exact

MAX_PATH = 1024
MAX_CHUNK = 64 * 1024
DIRS = ("/", "/data", "/data/local", "/data/local/tmp", "/sdcard", "/storage", "/storage/emulated/0")


def _fail(message: str) -> bytes:
    data = message.encode("utf-8", "replace")
    return b"FAIL" + struct.pack("<I", len(data)) + data


async def _header(reader: asyncio.StreamReader) -> tuple[bytes, int] | None:
    head = await read_exact(reader, 8)
    if head is None:
        return None
    return head[:4], struct.unpack("<I", head[4:])[0]


async def serve_sync(phone: Phone, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer sync requests until the client quits or breaks the protocol."""
    while True:
        head = await _header(reader)
        if head is None:
            return
        cmd, size = head
        if cmd == b"QUIT":
            return
        if cmd not in (b"STAT", b"SEND", b"RECV", b"LIST"):
            writer.write(_fail(f"unknown sync command {cmd!r}"))
            return
        if size > MAX_PATH:
            writer.write(_fail(f"path longer than {MAX_PATH} bytes"))
            return
        raw = await read_exact(reader, size)
        if raw is None:
            raise ProtocolError("connection closed inside a sync request")
        path = raw.decode("utf-8", "replace")
        if cmd == b"STAT":
            writer.write(b"STAT" + _stat(phone, path))
        elif cmd == b"SEND":
            if not await _send(phone, path, reader, writer):
                return
        elif cmd == b"RECV":
            _recv(phone, path, writer)
        else:
            _list(phone, path, writer)
        await writer.drain()


def _stat(phone: Phone, path: str) -> bytes:
    path = posixpath.normpath(path) if path else path
    if path in DIRS:
        return struct.pack("<III", stat.S_IFDIR | 0o771, 4096, int(time.time()))
    f = phone.files.get(path)
    if f is None:
        return struct.pack("<III", 0, 0, 0)
    return struct.pack("<III", stat.S_IFREG | (f.mode & 0o7777), len(f.data), f.mtime)


async def _send(phone: Phone, spec: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    path, _, mode_text = spec.rpartition(",")
    if not path or not mode_text.isdigit():
        path, mode_text = spec, "33188"  # 0o100644
    if not path.startswith("/"):
        writer.write(_fail(f"remote path {path!r} must be absolute"))
        return False
    data = bytearray()
    while True:
        head = await _header(reader)
        if head is None:
            raise ProtocolError("connection closed inside a SEND")
        cmd, size = head
        if cmd == b"DONE":
            error = phone.store(path, bytes(data), mode=int(mode_text) & 0o7777, mtime=size)
            writer.write(_fail(error) if error else b"OKAY\x00\x00\x00\x00")
            return error is None
        if cmd != b"DATA":
            writer.write(_fail(f"expected DATA or DONE in a SEND, got {cmd!r}"))
            return False
        if size > MAX_CHUNK:
            writer.write(_fail(f"DATA chunk of {size} bytes (at most {MAX_CHUNK})"))
            return False
        chunk = await read_exact(reader, size)
        if chunk is None:
            raise ProtocolError("connection closed inside a DATA chunk")
        data += chunk
        if len(data) > MAX_FILE:
            writer.write(_fail("file too large"))
            return False


def _recv(phone: Phone, path: str, writer: asyncio.StreamWriter) -> None:
    f = phone.files.get(path)
    if f is None:
        writer.write(_fail(f"remote object '{path}' does not exist"))
        return
    for i in range(0, len(f.data), MAX_CHUNK):
        chunk = f.data[i:i + MAX_CHUNK]
        writer.write(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
    writer.write(b"DONE" + struct.pack("<I", 0))


def _list(phone: Phone, path: str, writer: asyncio.StreamWriter) -> None:
    folder = posixpath.normpath(path)
    for name, f in sorted(phone.files.items()):
        if posixpath.dirname(name) == folder:
            base = posixpath.basename(name).encode()
            writer.write(b"DENT" + struct.pack("<IIII", stat.S_IFREG | f.mode, len(f.data), f.mtime, len(base))
                         + base)
    writer.write(b"DONE" + b"\x00" * 16)
