"""The local adb server answers the real adbutils client: host services, shell, sync, tcp."""

from __future__ import annotations

import hashlib
import io
import socket

import adbutils
import pytest
from u2_apps import PACKAGE, SERIAL, demo

from appatlas.devices.fakeadb import FakeAdbServer


def test_server_version_is_one_that_uses_tport(adb: adbutils.AdbClient) -> None:
    assert adb.server_version() >= 41


def test_devices_long_listing_names_serial_and_model(adb: adbutils.AdbClient) -> None:
    [info] = adb.list(extended=True)
    assert (info.serial, info.state) == (SERIAL, "device")
    assert info.tags["model"] == "appatlas_virtual_device"


def test_several_serials_are_separate_devices() -> None:
    with FakeAdbServer([demo("a-1"), demo("b-2")]) as srv:
        adb = adbutils.AdbClient(host=srv.host, port=srv.port)
        assert sorted(d.serial for d in adb.device_list()) == ["a-1", "b-2"]
        adb.device("a-1").shell(["am", "force-stop", PACKAGE])
        assert srv.device("a-1").current_app()[0] != PACKAGE
        assert srv.device("b-2").current_app()[0] == PACKAGE


def test_shell_v1_reports_exit_status_through_x4exit(adb: adbutils.AdbClient) -> None:
    ok = adb.device(SERIAL).shell2(["getprop", "ro.serialno"])
    missing = adb.device(SERIAL).shell2(["no-such-command"])
    assert (ok.returncode, ok.output.strip()) == (0, SERIAL)
    assert missing.returncode == 127 and "not found" in missing.output


def test_shell_v2_splits_output_and_exit_code(adb: adbutils.AdbClient) -> None:
    ret = adb.device(SERIAL).shell2("wm size", v2=True)
    assert ret.returncode == 0
    assert ret.stdout.strip() == "Physical size: 1080x2280"


def test_pipes_are_refused_with_a_message_not_run(adb: adbutils.AdbClient) -> None:
    ret = adb.device(SERIAL).shell2("ps | grep notes")
    assert ret.returncode == 2 and "not supported" in ret.output


def test_pushed_file_answers_toybox_md5sum(adb: adbutils.AdbClient) -> None:
    data = b"u2.jar stand-in " * 10_000
    dev = adb.device(SERIAL)
    dev.sync.push(io.BytesIO(data), "/data/local/tmp/x.jar", check=True)
    assert dev.shell(["toybox", "md5sum", "/data/local/tmp/x.jar"]).split()[0] == hashlib.md5(data).hexdigest()


def test_pushed_file_reads_back_unchanged(adb: adbutils.AdbClient) -> None:
    dev = adb.device(SERIAL)
    data = bytes(range(256)) * 700  # > 64 KiB: several DATA chunks each way
    dev.sync.push(io.BytesIO(data), "/data/local/tmp/blob", check=True)
    assert dev.sync.read_bytes("/data/local/tmp/blob") == data


def test_stat_of_a_missing_file_is_empty(adb: adbutils.AdbClient) -> None:
    assert not adb.device(SERIAL).sync.exists("/data/local/tmp/none")


def test_unknown_service_gets_fail_with_a_message(adb: adbutils.AdbClient) -> None:
    conn = adb.device(SERIAL).open_transport()
    conn.send_command("framebuffer:")
    with pytest.raises(adbutils.AdbError, match="unknown device service"):
        conn.check_okay()


def test_ui_port_refuses_before_the_server_is_launched(adb: adbutils.AdbClient) -> None:
    with pytest.raises(adbutils.AdbError, match="Connection refused"):
        adb.device(SERIAL).create_connection(adbutils.Network.TCP, 9008)


def test_unknown_serial_is_not_found(adb: adbutils.AdbClient) -> None:
    with pytest.raises(adbutils.AdbError, match="device 'nope' not found"):
        adb.device("nope").shell("echo hi")


def test_dropped_device_leaves_the_listing(server: FakeAdbServer, adb: adbutils.AdbClient) -> None:
    server.drop(SERIAL)
    assert adb.device_list() == []
    server.reconnect(SERIAL)
    assert [d.serial for d in adb.device_list()] == [SERIAL]


def _raw(server: FakeAdbServer, data: bytes) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=2) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(4096):
            out += chunk
        return out


def test_request_without_hex_length_gets_fail_naming_the_problem(server: FakeAdbServer) -> None:
    answer = _raw(server, b"zzzzhost:version")
    assert answer.startswith(b"FAIL") and b"expected 4 hex digits" in answer


def test_request_longer_than_the_limit_gets_fail(server: FakeAdbServer) -> None:
    assert _raw(server, b"ffff" + b"x" * 100).startswith(b"FAIL")


def test_request_cut_short_closes_only_that_connection(server: FakeAdbServer, adb: adbutils.AdbClient) -> None:
    assert _raw(server, b"0040host:ver").startswith(b"FAIL")
    assert adb.server_version() >= 41
