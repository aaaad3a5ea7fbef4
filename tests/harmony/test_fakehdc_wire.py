"""The stand-in's wire: the `hdc` command lines hmdriver2 runs, the UI test daemon's JSON lines, and the layout
JSON both sides agree on (round trip, and nothing but HierarchyError from a bad dump)."""

from __future__ import annotations

import functools
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from harmony_apps import SERIAL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appatlas.devices._harmony_layout import EDITABLE_TYPES, parse_layout
from appatlas.devices.fakehdc import FakeHdcServer, _client
from appatlas.devices.fakehdc._dump import arkui_type, dump_layout
from appatlas.errors import HierarchyError
from appatlas.hierarchy import ROOT_CLASS
from appatlas.types import Bounds, Screen, Widget

CLIENTS = {"bash": lambda server: [str(Path(server.bin_dir) / "hdc")],  # what bin_dir holds here
           "python": lambda server: [sys.executable, "-IS", str(Path(_client.__file__))]}  # where bash lacks /dev/tcp


def hdc(server: FakeHdcServer, *args: str, client: str = "bash") -> subprocess.CompletedProcess[str]:
    cmd = [*CLIENTS[client](server), "-s", f"{server.host}:{server.port}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_hdc_command_lines(server: FakeHdcServer, tmp_path: Path, client: str) -> None:
    hdc = functools.partial(globals()["hdc"], client=client)
    assert hdc(server, "list", "targets").stdout == f"{SERIAL}\n"
    gone = hdc(server, "-t", "FMR0223", "shell", "echo hi")
    assert gone.returncode != 0 and gone.stdout.startswith("[Fail]")  # hmdriver2 looks for [Fail]
    blob = bytes(range(256)) * 3 + b"\n\x00end"
    (tmp_path / "a.bin").write_bytes(blob)
    sent = hdc(server, "-t", SERIAL, "file", "send", str(tmp_path / "a.bin"), "/data/local/tmp/a.bin")
    assert sent.returncode == 0 and "FileTransfer finish" in sent.stdout
    assert hdc(server, "-t", SERIAL, "file", "recv", "/data/local/tmp/a.bin", str(tmp_path / "b.bin")).returncode == 0
    assert (tmp_path / "b.bin").read_bytes() == blob
    check = "[ -f /data/local/tmp/a.bin ] && echo 'exists' || echo 'not exists'"
    assert hdc(server, "-t", SERIAL, "shell", check).stdout == "exists\n"
    assert hdc(server, "-t", SERIAL, "shell", check.replace("a.bin", "zz")).stdout == "not exists\n"
    assert hdc(server, "-t", SERIAL, "shell", "bm dump -a | grep -v com.ohos").stdout == "ID: 100:\n\tcom.appatlas.notes\n"
    assert "inaccessible or not found" in hdc(server, "-t", SERIAL, "shell", "reboot").stdout
    missing = hdc(server, "-t", SERIAL, "file", "recv", "/data/nothing", str(tmp_path / "c"))
    assert missing.returncode != 0 and "[Fail]" in missing.stdout
    server.drop(SERIAL)
    assert hdc(server, "list", "targets").stdout == "[Empty]\n"
    port = server.port
    server.stop()
    down = subprocess.run([*CLIENTS[client](server), "-s", f"127.0.0.1:{port}", "list", "targets"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert down.returncode == 1 and "[Fail]Connect server failed" in down.stdout


def _rpc(sock: socket.socket, api: str, this: str | None = "Driver#0", args: list | None = None) -> dict:
    msg = {"module": "com.ohos.devicetest.hypiumApiHelper", "method": "callHypiumApi",
           "params": {"api": api, "this": this, "args": args or [], "message_type": "hypium"}, "request_id": "1"}
    sock.sendall(json.dumps(msg).encode() + b"\n")
    return json.loads(sock.makefile("rb").readline())


def test_the_daemon_rpc_chains_matchers_and_survives_bad_lines(server: FakeHdcServer) -> None:
    hdc(server, "-t", SERIAL, "file", "send", __file__, "/data/local/tmp/agent.so")
    hdc(server, "-t", SERIAL, "shell", "uitest start-daemon singleness")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert hdc(server, "-t", SERIAL, "fport", f"tcp:{port}", "tcp:8012").stdout.startswith("Forwardport result:OK")
    assert f"tcp:{port} tcp:8012" in hdc(server, "fport", "ls").stdout
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"{not json\n")
        assert json.loads(sock.makefile("rb").readline())["exception"]["code"] == 401
        assert _rpc(sock, "Driver.nope")["exception"]["code"] == 401
        by_id = _rpc(sock, "On.id", "On#seed", ["notes_title"])["result"]
        rows = _rpc(sock, "Driver.findComponents", args=[by_id])["result"]
        narrowed = _rpc(sock, "On.text", by_id, ["Recipes"])["result"]  # chained: id AND text
        one = _rpc(sock, "Driver.findComponents", args=[narrowed])["result"]
        assert len(rows) > 5 and len(one) == 1
        assert _rpc(sock, "Component.getText", one[0])["result"] == "Recipes"
        assert _rpc(sock, "Component.click", one[0])["result"] is None
        assert server.device(SERIAL).location == ("note_detail", "")  # type: ignore[attr-defined]
        stale = _rpc(sock, "Component.click", rows[0])  # that row is not on this screen any more
        assert stale["exception"]["code"] == 17000004
        server.kill_agent(SERIAL)
        sock.sendall(b'{"params": {}}\n')
        assert sock.recv(100) == b""  # the daemon's connections end with it


_TYPES = st.sampled_from(["android.widget.TextView", "android.widget.Button", "android.widget.EditText",
                          "android.widget.Switch", "android.widget.LinearLayout", "android.widget.ImageView"])
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@st.composite
def _widgets(draw: st.DrawFn, depth: int = 0) -> Widget:
    x1, y1 = draw(st.integers(0, 500)), draw(st.integers(0, 900))
    kids = draw(st.lists(_widgets(depth + 1), max_size=3)) if depth < 3 else []
    return Widget(class_name=draw(_TYPES), bounds=Bounds(x1, y1, x1 + draw(st.integers(0, 500)),
                                                          y1 + draw(st.integers(0, 900))),
                  resource_id=draw(st.sampled_from(["", "com.x.y:id/title", "plain"])), text=draw(_TEXT),
                  content_desc=draw(_TEXT), package="com.x.y", hint=draw(_TEXT), clickable=draw(st.booleans()),
                  checkable=draw(st.booleans()), checked=draw(st.booleans()), enabled=draw(st.booleans()),
                  scrollable=draw(st.booleans()), long_clickable=draw(st.booleans()), children=tuple(kids))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_widgets(), min_size=1, max_size=2))
def test_a_dumped_layout_parses_back_to_the_same_widgets(windows: list[Widget]) -> None:
    root = Widget(class_name=ROOT_CLASS, bounds=Bounds(0, 0, 1080, 2280), children=tuple(windows))
    top, _ = dump_layout(Screen("com.x.y", "com.x.y.Main", root, 1080, 2280), abilities={"com.x.y": "com.x.y.Main"})
    layout = parse_layout(json.dumps(top).encode(), width=1080, height=2280)
    assert layout.foreground() == ("com.x.y", "com.x.y.Main")
    for got, want in zip(layout.root.walk(), root.walk(), strict=True):
        if want is root:
            continue
        assert got.class_name == arkui_type(want.class_name) or got.class_name in ("ListItem", "GridItem")
        assert (got.bounds, got.text, got.content_desc, got.hint, got.package) == \
            (want.bounds, want.text, want.content_desc, want.hint, want.package)
        assert (got.clickable, got.checkable, got.checked, got.enabled, got.scrollable, got.long_clickable) == \
            (want.clickable, want.checkable, want.checked, want.enabled, want.scrollable, want.long_clickable)
        assert got.resource_id == want.resource_id.split(":id/")[-1]
        assert got.editable == (got.class_name in EDITABLE_TYPES)


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                         st.sampled_from(["attributes", "children", "bounds", "type", "text", "x"]), inner, max_size=4),
                     max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(st.one_of(_JSON.map(lambda v: json.dumps(v).encode()), st.binary(max_size=40)))
def test_a_bad_dump_is_a_hierarchy_error_and_nothing_else(data: bytes) -> None:
    try:
        parse_layout(data)
    except HierarchyError:
        pass



@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300) | st.lists(st.binary(max_size=20), max_size=6).map(lambda fs: b"\0".join(fs) + b"\0"))
def test_garbage_costs_one_connection_and_never_the_server(server: FakeHdcServer, data: bytes) -> None:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    code, _, text = reply.partition(b"\n")
    assert code.isdigit() and (code != b"0" or text)  # every request gets an answer: [Fail]… for garbage
    assert hdc(server, "list", "targets").stdout == f"{SERIAL}\n"
