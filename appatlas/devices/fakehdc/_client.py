"""The `hdc` command of the local HarmonyOS stand-in: the client half, standard library only.

hmdriver2 runs `hdc [-s HOST:PORT] -t SERIAL <command>` in a shell for every device call, so
this runs as a process per call. `hdc.sh` (bash, ~2 ms to start) is the one `FakeHdcServer`
puts on PATH; this Python twin is used where bash has no /dev/tcp. It is run as `python -I -S`
and imports only builtin modules (`_socket`, not `socket` + `json`, which would double its
start-up). Both relay the command line to the stand-in server, which answers as the device would:

  request   NUL-terminated fields: the field count, serial, argv..., the body's size; then the
            body (the file of `file send`; argv cannot hold a NUL, so no escaping is needed)
  reply     b"CODE\n" + payload until the server closes: the output, or the file `file recv` fetched

Output goes to stdout and the exit status is the code, as with the real `hdc`. Failures print
hdc's own `[Fail]…` lines, which hmdriver2 looks for. Without `-s`, the server is the one
`OHOS_HDC_SERVER_PORT` names on 127.0.0.1 (hdc's default port is 8710).
"""

import _socket
import os
import sys

DEFAULT_PORT = 8710
TIMEOUT = float(os.environ.get("APPATLAS_HDC_TIMEOUT", "60"))  # seconds a call may take in all


def _fail(message):
    sys.stdout.write("[Fail]" + message + "\n")
    return 1


def _parse(argv):
    """(host, port, serial, command) from hdc's global options `-s HOST:PORT`, `-t SERIAL`, `-l N`."""
    host, port, serial = "127.0.0.1", int(os.environ.get("OHOS_HDC_SERVER_PORT", DEFAULT_PORT)), ""
    i = 0
    while i < len(argv) and argv[i] in ("-s", "-t", "-l"):
        if i + 1 >= len(argv):
            raise ValueError("option " + argv[i] + " needs a value")
        flag, value = argv[i], argv[i + 1]
        if flag == "-s":
            h, sep, p = value.rpartition(":")
            if not sep or not p.isdigit():
                raise ValueError("-s wants HOST:PORT, got " + repr(value))
            host, port = h or host, int(p)
        elif flag == "-t":
            serial = value
        i += 2
    return host, port, serial, argv[i:]


def _encode(serial, argv, body):
    fields = [b"%d" % (len(argv) + 1), serial] + argv + [b"%d" % len(body)]
    return b"".join(f + b"\0" for f in fields) + body


def _exchange(host, port, request):
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    try:
        sock.settimeout(TIMEOUT)
        sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        sock.connect((host, port))
        sock.sendall(request)
        buf = bytearray()
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
        head, sep, payload = bytes(buf).partition(b"\n")
        if not sep:
            raise ValueError("the hdc server closed the connection without an answer")
        return int(head), payload
    finally:
        sock.close()


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    try:
        host, port, serial, command = _parse(args)
    except ValueError as exc:
        return _fail(str(exc))
    if not command:
        return _fail("no command; e.g. hdc list targets")
    body, local = b"", ""
    if command[:2] == ["file", "send"] and len(command) >= 4:
        local = command[-2]
        try:
            with open(local, "rb") as f:
                body = f.read()
        except OSError as exc:
            return _fail(f"Error opening file: {exc.strerror}, path:{local}")
    elif command[:2] == ["file", "recv"] and len(command) >= 4:
        local = command[-1]
    argv = [a.encode("utf-8", "surrogateescape") for a in command]
    try:
        code, out = _exchange(host, port, _encode(serial.encode("utf-8", "surrogateescape"), argv, body))
    except OSError as exc:
        return _fail(f"Connect server failed: {host}:{port} ({exc.strerror or exc})")
    except ValueError as exc:
        return _fail(f"the hdc server answered badly: {exc}")
    if command[:2] == ["file", "recv"] and code == 0 and local:
        target = os.path.join(local, os.path.basename(command[-2])) if os.path.isdir(local) else local
        try:
            with open(target, "wb") as f:
                f.write(out)
        except OSError as exc:
            return _fail(f"Error opening file: {exc.strerror}, path:{local}")
        out = b"FileTransfer finish, Size:%d, File count = 1\n" % len(out)
    if out:
        sys.stdout.buffer.write(out if out.endswith(b"\n") else out + b"\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
