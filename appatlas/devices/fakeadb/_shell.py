"""The slice of Android's `sh` that adbutils and uiautomator2 use, answered from a Phone.

A command line is split on unquoted `;` (enough for the `; echo X4EXIT:$?` that shell2 appends);
a command with a pipe, redirection or substitution is refused with a message and exit status 2,
and the rest of the line still runs.
"""

from __future__ import annotations

import base64
import binascii
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from appatlas.devices.fakeadb._phone import Phone, png_of

UI_MAIN = "com.wetest.uia2.Main"
ADB_KEYBOARD = "com.github.uiautomator/.AdbKeyboard"
LATIN_IME = "com.android.inputmethod.latin/.LatinIME"
MAX_SEGMENTS = 16


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command line printed and its exit status; `ui_port` asks for the long-lived UI server."""

    output: bytes
    rc: int = 0
    ui_port: int | None = None


def split_script(line: str) -> list[str]:
    """Split a command line on unquoted `;`; ValueError for an unterminated quote."""
    parts, cur, quote, i = [], [], "", 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and quote != "'" and i + 1 < len(line):
            cur.append(line[i:i + 2])
            i += 2
            continue
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == ";":
            parts.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    if quote:
        raise ValueError("unterminated quote")
    parts.append("".join(cur))
    if len(parts) > MAX_SEGMENTS:
        raise ValueError(f"more than {MAX_SEGMENTS} commands in one line")
    return [p for p in parts if p.strip()]


def _unsupported(segment: str) -> str:
    """The first shell operator outside quotes that the fake does not run, or ""."""
    quote = ""
    for i, ch in enumerate(segment):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "|&<>`" or segment.startswith("$(", i):
            return ch
    return ""


def run(phone: Phone, line: str) -> Outcome:
    """Run a command line on the phone."""
    try:
        segments = split_script(line)
    except ValueError as exc:
        return Outcome(f"/system/bin/sh: syntax error: {exc}\n".encode(), 2)
    out, rc = bytearray(), 0
    for seg in segments:
        op = _unsupported(seg)
        if op:
            out += f"/system/bin/sh: {op!r}: pipes, redirections and substitutions are not supported here\n".encode()
            rc = 2
            continue
        try:
            argv = [a.replace("$?", str(rc)) for a in shlex.split(seg)]
        except ValueError as exc:
            out += f"/system/bin/sh: syntax error: {exc}\n".encode()
            rc = 2
            continue
        env: dict[str, str] = {}
        while argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):
            key, _, value = argv.pop(0).partition("=")
            env[key] = value
        if not argv:
            continue
        if argv[0] == "app_process":
            result = _app_process(phone, argv, env)
            out += result.output
            if result.ui_port is not None:
                return Outcome(bytes(out), 0, result.ui_port)
            rc = result.rc
            continue
        text, rc = _command(phone, argv)
        out += text if isinstance(text, bytes) else text.encode("utf-8")
    return Outcome(bytes(out), rc)


def _command(phone: Phone, argv: list[str]) -> tuple[str | bytes, int]:
    if argv[0] == "toybox" and len(argv) > 1:
        argv = argv[1:]
    handler = _COMMANDS.get(argv[0])
    if handler is None:
        return f"/system/bin/sh: {argv[0]}: inaccessible or not found\n", 127
    return handler(phone, argv[1:])


def _app_process(phone: Phone, argv: list[str], env: dict[str, str]) -> Outcome:
    if UI_MAIN not in argv:
        return Outcome(b"Error: no main class given (the fake runs only the uiautomator2 server)\n", 1)
    classpath = env.get("CLASSPATH", "")
    if classpath not in phone.files:
        return Outcome(f"Error: Could not find class '{UI_MAIN}' (CLASSPATH {classpath!r} is missing)\n".encode(), 1)
    port = 9008
    if "-p" in argv:
        i = argv.index("-p")
        if i + 1 >= len(argv) or not argv[i + 1].isdigit() or not 0 < int(argv[i + 1]) < 65536:
            return Outcome(b"Error: -p needs a port number\n", 1)
        port = int(argv[i + 1])
    if phone.faults.relaunch_fails:
        return Outcome(b"[server] INFO: [UiAutomator2Server] Starting Server\n"
                       b"java.lang.IllegalStateException: UiAutomation not connected, "
                       b"UiAutomation@1d2f4c0[id=-1, flags=0]\n", 1)
    return Outcome(b"[server] INFO: [UiAutomator2Server] Starting Server\n", 0, port)


def _echo(phone: Phone, args: list[str]) -> tuple[str, int]:
    return " ".join(args) + "\n", 0


def _md5sum(phone: Phone, args: list[str]) -> tuple[str, int]:
    out, rc = [], 0
    for path in args:
        f = phone.files.get(path)
        if f is None:
            out.append(f"md5sum: {path}: No such file or directory")
            rc = 1
        else:
            out.append(f"{f.md5}  {path}")
    return "\n".join(out) + "\n", rc


def _rm(phone: Phone, args: list[str]) -> tuple[str, int]:
    for path in (a for a in args if not a.startswith("-")):
        phone.files.pop(path, None)
    return "", 0


def _getprop(phone: Phone, args: list[str]) -> tuple[str, int]:
    props = phone.props()
    if args:
        return props.get(args[0], "") + "\n", 0
    return "".join(f"[{k}]: [{v}]\n" for k, v in sorted(props.items())), 0


def _focus_line(phone: Phone) -> str:
    pkg, act = phone.focus()
    name = act if phone.crash is not None else f"{pkg}/{act}"
    return f"Window{{5f3a2c1 u0 {name}}}"


def _dumpsys(phone: Phone, args: list[str]) -> tuple[str, int]:
    what = args[0] if args else ""
    pkg, act = phone.focus()
    if what == "window":
        focus = _focus_line(phone)
        return (f"WINDOW MANAGER WINDOWS (dumpsys window windows)\n  Window #0 {focus}:\n"
                f"    mDisplayId=0 rootTaskId=1 mSession=Session{{7c1 1234:u0a10}}\n"
                f"  mCurrentFocus={focus}\n"
                f"  mFocusedApp=ActivityRecord{{9e2 u0 {pkg}/{act} t7}}\n"), 0
    if what == "activity":
        if phone.crash is not None:
            return "ACTIVITY MANAGER ACTIVITIES (dumpsys activity activities)\n", 0
        sub = args[1] if len(args) > 1 else "activities"
        if sub == "top":
            return f"TASK 7:{pkg} id=7\n  ACTIVITY {pkg}/{act} 9e2 pid={phone.pid(pkg)}\n", 0
        return f"  mResumedActivity: ActivityRecord{{9e2 u0 {pkg}/{act} t7}}\n", 0
    if what == "display":
        return (f"DISPLAY MANAGER (dumpsys display)\n  mDefaultViewport=DisplayViewport{{orientation=0, "
                f"deviceWidth={phone.width}, deviceHeight={phone.height}}}\n"), 0
    if what == "power":
        return "mWakefulness=Awake\nmHoldingDisplaySuspendBlocker=true\n", 0
    if what == "package" and len(args) > 1:
        if args[1] not in phone.packages():
            return f"Unable to find package: {args[1]}\n", 0
        return f"Packages:\n  Package [{args[1]}] (1a2b):\n    versionCode=1 targetSdk={phone.sdk}\n" \
               f"    versionName=1.0\n", 0
    return f"Can't find service: {what}\n" if what else "Currently running services:\n", 0


def _wm(phone: Phone, args: list[str]) -> tuple[str, int]:
    if args[:1] == ["size"]:
        return f"Physical size: {phone.width}x{phone.height}\n", 0
    if args[:1] == ["density"]:
        return "Physical density: 420\n", 0
    return "usage: wm [size|density]\n", 255


def _launch(phone: Phone, component: str) -> tuple[str, int]:
    package = component.split("/", 1)[0]
    if package not in phone.packages():
        return f"Error: Activity class {{{component}}} does not exist.\n", 1
    phone.launch(component)
    return f"Starting: Intent {{ cmp={component} }}\n", 0


def _am(phone: Phone, args: list[str]) -> tuple[str, int]:
    sub = args[0] if args else ""
    if sub in ("start", "start-activity"):
        if "-n" not in args or args.index("-n") + 1 >= len(args):
            return "Error: am start needs -n package/activity here\n", 1
        return _launch(phone, args[args.index("-n") + 1])
    if sub == "force-stop" and len(args) > 1:
        phone.stop(args[1])
        return "", 0
    if sub == "broadcast":
        return _broadcast(phone, args[1:])
    return f"Unknown command: {sub}\n", 255


def _broadcast(phone: Phone, args: list[str]) -> tuple[str, int]:
    action = args[args.index("-a") + 1] if "-a" in args and args.index("-a") + 1 < len(args) else ""
    extras = {args[i + 1]: args[i + 2] for i in range(len(args) - 2) if args[i] in ("--es", "--ei")}
    if action == "ADB_KEYBOARD_INPUT_TEXT":
        try:
            text = base64.b64decode(extras.get("text", ""), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return 'Broadcast completed: result=0, data="bad base64 text"\n', 0
        phone.device.type_text(text)
    elif action == "ADB_KEYBOARD_CLEAR_TEXT":
        phone.device.type_text("")
    elif not action.startswith("ADB_KEYBOARD_"):
        return f"Broadcasting: Intent {{ act={action} }}\nBroadcast completed: result=0\n", 0
    return f'Broadcasting: Intent {{ act={action} }}\nBroadcast completed: result=-1, data="success"\n', 0


def _monkey(phone: Phone, args: list[str]) -> tuple[str, int]:
    if "-p" not in args or args.index("-p") + 1 >= len(args):
        return "** Error: monkey needs -p package here\n", 1
    package = args[args.index("-p") + 1]
    if package not in phone.packages():
        return "** No activities found to run, monkey aborted.\n", 252
    phone.launch(package)
    return "  bash arg: -p\nEvents injected: 1\n## Network stats: elapsed time=12ms\n", 0


def _pm(phone: Phone, args: list[str]) -> tuple[str, int]:
    sub = args[0] if args else ""
    if sub == "list" and args[1:2] == ["packages"]:
        words = [a for a in args[2:] if not a.startswith("-")]
        pkgs = [p for p in phone.packages() if not words or words[0] in p]
        if "-3" in args:
            pkgs = [p for p in pkgs if p == phone.package]
        return "".join(f"package:{p}\n" for p in pkgs), 0
    if sub == "path" and len(args) > 1:
        if args[1] not in phone.packages():
            return "", 1
        return f"package:/data/app/{args[1]}-1/base.apk\n", 0
    if sub == "clear" and len(args) > 1:
        phone.stop(args[1])
        return "Success\n", 0
    return f"Unknown command: {sub}\n", 255


def _settings(phone: Phone, args: list[str]) -> tuple[str, int]:
    if args[:3] == ["get", "secure", "default_input_method"]:
        return LATIN_IME + "\n", 0
    if args[:1] == ["get"]:
        return "null\n", 0
    return "", 0


def _ime(phone: Phone, args: list[str]) -> tuple[str, int]:
    if args[:1] == ["list"]:
        return LATIN_IME + "\n", 0
    if len(args) > 1 and args[1] == ADB_KEYBOARD:
        return f"Unknown input method {ADB_KEYBOARD} cannot be selected for user #0\n", 255
    return "", 0


def _ps(phone: Phone, args: list[str]) -> tuple[str, int]:
    head = "USER           PID  PPID     VSZ    RSS WCHAN            ADDR S NAME\n"
    rows = [f"u0_a{100 + i:<8}{phone.pid(p):>6} {700:>5} 1234567  89012 SyS_epoll_ 0 S {p}\n"
            for i, p in enumerate(phone.running())]
    return head + "".join(rows), 0


def _pidof(phone: Phone, args: list[str]) -> tuple[str, int]:
    pids = [str(phone.pid(p)) for p in args if p in phone.running()]
    return (" ".join(pids) + "\n", 0) if pids else ("", 1)


def _screencap(phone: Phone, args: list[str]) -> tuple[bytes, int]:
    return png_of(phone.screen()), 0


def _input(phone: Phone, args: list[str]) -> tuple[str, int]:
    sub = args[0] if args else ""
    try:
        if sub == "tap" and len(args) >= 3:
            phone.tap(int(float(args[1])), int(float(args[2])))
        elif sub == "keyevent" and len(args) >= 2:
            if args[-1] in ("4", "KEYCODE_BACK", "BACK"):
                phone.back()
        elif sub == "text" and len(args) >= 2:
            phone.device.type_text(" ".join(args[1:]).replace("%s", " "))
        else:
            return f"Error: unknown or incomplete input command {sub!r}\n", 1
    except ValueError:
        return "Error: input coordinates must be numbers\n", 1
    return "", 0


_COMMANDS: dict[str, Callable[[Phone, list[str]], tuple[str | bytes, int]]] = {
    "echo": _echo, "md5sum": _md5sum, "md5": _md5sum, "rm": _rm, "getprop": _getprop,
    "dumpsys": _dumpsys, "wm": _wm, "am": _am, "monkey": _monkey, "pm": _pm, "settings": _settings,
    "ime": _ime, "ps": _ps, "pidof": _pidof, "screencap": _screencap, "input": _input,
}
