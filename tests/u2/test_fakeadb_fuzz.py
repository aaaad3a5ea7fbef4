"""Whatever a client sends, the server answers a protocol error or closes that connection, and
keeps serving everyone else."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import timedelta

import adbutils
import pytest
import uiautomator2 as u2
from hypothesis import given, settings
from hypothesis import strategies as st
from u2_apps import SERIAL, demo

from appatlas.devices.fakeadb import FakeAdbServer
from appatlas.devices.fakeadb._phone import Phone
from appatlas.devices.fakeadb._selector import SelectorInvalid, find
from appatlas.devices.fakeadb._shell import run

FUZZ = settings(max_examples=100, deadline=timedelta(seconds=15))  # past FIRST_BYTE_S: a hang fails as itself
RPC_METHODS = ["dumpWindowHierarchy", "takeScreenshot", "click", "pressKey", "pressKeyCode", "deviceInfo",
               "waitForExists", "objInfo", "exist", "getText", "setText", "count", "swipe", "setClipboard",
               "pasteClipboard", "injectInputEvent", "objInfoOfAllInstances", "noSuchMethod"]


@pytest.fixture(scope="module")
def live() -> Iterator[FakeAdbServer]:
    with FakeAdbServer([demo()]) as srv:
        d = u2.connect(adbutils.AdbClient(host=srv.host, port=srv.port).device(SERIAL))  # starts the UI server
        yield srv
        d.stop_uiautomator(wait=False)


FIRST_BYTE_S = 5.0  # a server that has not started to answer by then hangs (generous: 2 loaded cores)
IDLE_S = 0.5  # once it answered, this much silence ends a long-lived answer (track-devices)
LONG_LIVED = (b"host:track-devices", b"host:wait-for-")  # services that answer and keep the stream open


def _exchange(sock: socket.socket, data: bytes) -> tuple[bytes, str]:
    """Send `data`, half-close, read the answer: (bytes, how it ended: closed, reset or silent)."""
    sock.settimeout(FIRST_BYTE_S)
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        sock.close()
        return b"", "reset"  # the server already closed on us: an allowed answer
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
            sock.settimeout(IDLE_S)
        return out, "closed"
    except ConnectionResetError:
        return out, "reset"
    except TimeoutError:
        return out, "silent"
    finally:
        sock.close()


def _ended_well(answer: bytes, how: str, data: bytes) -> bool:
    """Closed or reset is an answer; silence is one only after OKAY from a service that streams on."""
    if how != "silent":
        return True
    return answer[:4] == b"OKAY" and any(service in data for service in LONG_LIVED)


def _framed(text: str) -> bytes:
    data = text.encode("utf-8")
    return f"{len(data):04x}".encode() + data


def _still_serving(srv: FakeAdbServer) -> None:
    sock = socket.create_connection((srv.host, srv.port))
    assert _exchange(sock, _framed("host:devices")) == (b"OKAY" + _framed(f"{SERIAL}\tdevice\n"), "closed")


def _ui_stream(srv: FakeAdbServer) -> socket.socket:
    """A raw connection to the phone's tcp:9008, as uiautomator2 opens one per request."""
    sock = socket.create_connection((srv.host, srv.port))
    sock.settimeout(2.0)
    sock.sendall(_framed(f"host:tport:serial:{SERIAL}"))
    assert sock.recv(12, socket.MSG_WAITALL)[:4] == b"OKAY"
    sock.sendall(_framed("tcp:9008"))
    assert sock.recv(4, socket.MSG_WAITALL) == b"OKAY"
    return sock


adb_requests = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=120).map(_framed),
    st.tuples(st.sampled_from(["host:", "host-serial:virtual-1:", "host:transport:virtual-1", "host:tport:any",
                               "host:track-devices", "host:wait-for-any-device", "host:kill", "sync:"]),
              st.text(max_size=60), st.binary(max_size=120))
      .map(lambda t: _framed(t[0] + t[1]) + t[2]),
    st.tuples(st.sampled_from(["shell:", "sync:", "tcp:9008", "tcp:", "exec:", "shell,v2,raw:", "nope:"]),
              st.text(max_size=60), st.binary(max_size=200))
      .map(lambda t: _framed("host:tport:serial:virtual-1") + _framed(t[0] + t[1]) + t[2]),
)


@FUZZ
@given(data=adb_requests)
def test_any_bytes_to_the_adb_port_get_okay_fail_or_a_close(live, data: bytes) -> None:
    srv = live
    answer, how = _exchange(socket.create_connection((srv.host, srv.port)), data)
    assert _ended_well(answer, how, data), f"the connection hung: {how} after {answer!r}"
    assert answer == b"" or answer[:4] in (b"OKAY", b"FAIL")
    _still_serving(srv)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                                                     max_size=4), max_leaves=12)
rpc_bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"jsonrpc": st.just("2.0"), "id": json_values, "method": st.sampled_from(RPC_METHODS),
                           "params": st.one_of(st.lists(json_values, max_size=5), json_values)})
      .map(lambda v: json.dumps(v).encode()),
)


def _post(srv: FakeAdbServer, body: bytes) -> bytes:
    sock = _ui_stream(srv)
    head = f"POST /jsonrpc/0 HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    answer, how = _exchange(sock, head.encode() + body)
    assert how != "silent", f"the request hung after {answer!r}"
    return answer


@FUZZ
@given(body=rpc_bodies)
def test_any_jsonrpc_body_gets_a_result_or_a_jsonrpc_error(live, body: bytes) -> None:
    srv = live
    answer = _post(srv, body)
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    reply = json.loads(payload)
    assert ("result" in reply) != ("error" in reply)
    _still_serving(srv)


@FUZZ
@given(raw=st.binary(max_size=400))
def test_any_bytes_to_the_ui_port_get_an_http_answer_or_a_close(live, raw: bytes) -> None:
    srv = live
    answer, how = _exchange(_ui_stream(srv), raw)
    assert how != "silent", f"the connection hung after {answer!r}"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 ")
    _still_serving(srv)


@pytest.fixture(scope="module")
def phone() -> Phone:
    return Phone(demo(), serial=SERIAL, transport_id=1)


@FUZZ
@given(line=st.text(max_size=200))
def test_any_shell_line_gets_output_and_a_status(phone: Phone, line: str) -> None:
    out = run(phone, line)
    assert isinstance(out.output, bytes) and 0 <= out.rc < 256


@FUZZ
@given(selector=json_values)
def test_any_selector_matches_or_is_refused(phone: Phone, selector: object) -> None:
    try:
        found = find(phone.screen().root, selector)
    except SelectorInvalid as exc:
        assert str(exc)
    else:
        assert all(w in list(phone.screen().widgets()) for w in found)
