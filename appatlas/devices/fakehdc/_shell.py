"""The device shell behind `hdc shell`: the commands hmdriver2 sends, answered from the virtual device.

Supported: `cmd && cmd`, `cmd || cmd`, `cmd ; cmd`, a pipe into `grep [-v] PATTERN`, and
`[ -f PATH ]`. Commands: uitest (start-daemon, dumpLayout, screenCap, uiInput), snapshot_display,
aa (start, force-stop, dump -l), bm dump, param get, hidumper (RenderService screen,
PowerManagerService), power-shell, ps -ef, kill, md5sum, chmod, rm, mkdir, ls, echo, ifconfig.
Anything else answers as a missing command does. `hdc shell` itself does not carry the remote
exit status (hmdriver2 reads the output), so every answer is (text, 0).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable

from appatlas.devices.fakehdc._device import HarmonyDevice
from appatlas.errors import AppatlasError
from appatlas.types import Action, ActionKind

# OpenHarmony key codes the stand-in acts on (hmdriver2.proto.KeyCode)
KEY_HOME, KEY_BACK = 1, 2
LAUNCHER = "com.android.launcher3"  # the virtual device's home screen


class _Exit(Exception):
    """A command's failure status inside a && / || chain."""


def run(dev: HarmonyDevice, line: str) -> str:
    """The output of `line` on the device."""
    try:
        words = shlex.split(line, posix=True)
    except ValueError as exc:
        return f"/bin/sh: syntax error: {exc}\n"
    out: list[str] = []
    ok = True
    op = ";"
    for chunk, nxt in _chunks(words):
        if (op == "&&" and not ok) or (op == "||" and ok):
            op = nxt
            continue
        text, ok = _pipeline(dev, chunk)
        out.append(text)
        op = nxt
    return "".join(out)


def _chunks(words: list[str]) -> list[tuple[list[str], str]]:
    """Split on && || ; into (command words, the operator after it)."""
    parts: list[tuple[list[str], str]] = []
    cur: list[str] = []
    for w in words:
        if w in ("&&", "||", ";"):
            parts.append((cur, w))
            cur = []
        else:
            cur.append(w)
    parts.append((cur, ";"))
    return [(c, o) for c, o in parts if c]


def _pipeline(dev: HarmonyDevice, words: list[str]) -> tuple[str, bool]:
    stages: list[list[str]] = [[]]
    for w in words:
        if w == "|":
            stages.append([])
        else:
            stages[-1].append(w)
    text, ok = _one(dev, stages[0])
    for stage in stages[1:]:
        if not stage or stage[0] != "grep":
            return f"/bin/sh: only `| grep` is supported here, got `| {' '.join(stage)}`\n", False
        invert = "-v" in stage[1:]
        pattern = next((s for s in stage[1:] if not s.startswith("-")), "")
        kept = [ln for ln in text.splitlines() if (pattern in ln) != invert]
        text, ok = "".join(f"{ln}\n" for ln in kept), bool(kept)
    return text, ok


def _one(dev: HarmonyDevice, argv: list[str]) -> tuple[str, bool]:
    if argv[0] in ("[", "test"):
        args = argv[1:-1] if argv[0] == "[" and argv[-1] == "]" else argv[1:]
        if len(args) == 2 and args[0] in ("-f", "-e"):
            return "", args[1] in dev.files
        return "", False
    handler = _COMMANDS.get(argv[0])
    if handler is None:
        return f"/bin/sh: {argv[0]}: inaccessible or not found\n", False
    try:
        return handler(dev, argv[1:]), True
    except _Exit as exc:
        return str(exc), False
    except AppatlasError as exc:
        return f"error: {exc}\n", False


# --- commands ------------------------------------------------------------------------------------

def _echo(dev: HarmonyDevice, args: list[str]) -> str:
    return " ".join(args) + "\n"


def _md5sum(dev: HarmonyDevice, args: list[str]) -> str:
    lines = []
    for path in args:
        digest = dev.md5(path)
        if digest is None:
            raise _Exit(f"md5sum: {path}: No such file or directory\n")
        lines.append(f"{digest}  {path}\n")
    return "".join(lines)


def _rm(dev: HarmonyDevice, args: list[str]) -> str:
    force = any(a.startswith("-") and "f" in a for a in args)
    for path in (a for a in args if not a.startswith("-")):
        if dev.files.pop(path, None) is None and not force:
            raise _Exit(f"rm: {path}: No such file or directory\n")
    return ""


def _quiet(dev: HarmonyDevice, args: list[str]) -> str:
    return ""


def _ls(dev: HarmonyDevice, args: list[str]) -> str:
    where = next((a for a in args if not a.startswith("-")), "/data/local/tmp").rstrip("/") + "/"
    return "".join(f"{p[len(where):]}\n" for p in sorted(dev.files) if p.startswith(where))


def _ps(dev: HarmonyDevice, args: list[str]) -> str:
    rows = ["UID            PID  PPID C STIME TTY          TIME CMD",
            "root             1     0 0 10:00:00 ?     00:00:02 init",
            "shell        " + f"{dev.pid('hdcd'):>5}" + "     1 0 10:00:00 ?     00:00:00 hdcd"]
    if dev.agent is not None:
        rows.append(f"shell        {dev.agent.pid:>5}     1 2 10:00:01 ?     00:00:01 uitest start-daemon singleness")
    return "\n".join(rows) + "\n"


def _kill(dev: HarmonyDevice, args: list[str]) -> str:
    for pid in (a for a in args if not a.startswith("-")):
        if dev.agent is not None and pid == str(dev.agent.pid):
            dev.stop_agent()
        elif not pid.isdigit():
            raise _Exit(f"kill: {pid}: invalid pid\n")
    return ""


def _param(dev: HarmonyDevice, args: list[str]) -> str:
    if len(args) == 2 and args[0] == "get":
        value = dev.params().get(args[1])
        if value is None:
            raise _Exit(f"Get parameter \"{args[1]}\" fail! errNum is:106!\n")
        return value + "\n"
    raise _Exit("Command list:\n    param get KEY\n")


def _hidumper(dev: HarmonyDevice, args: list[str]) -> str:
    joined = " ".join(args)
    if "RenderService" in joined and "screen" in joined:
        return (f"-- ScreenInfo\nscreen[0]: id=0, powerstatus=POWER_STATUS_ON, backlight=255, screenType=EXTERNAL_TYPE,"
                f" render size: {dev.width}x{dev.height}, physical screen resolution: {dev.width}x{dev.height}, "
                f"isvirtual=false\n  supportedMode[0]: {dev.width}x{dev.height}, refreshrate=60\n"
                f"  activeMode: {dev.width}x{dev.height}, refreshrate=60\n")
    if "PowerManagerService" in joined:
        return "POWER STATE DUMP:\nCurrent State: AWAKE  Reason: 0  Time: 0\n"
    raise _Exit(f"hidumper: no such ability or option: {joined}\n")


def _ifconfig(dev: HarmonyDevice, args: list[str]) -> str:
    return "lo        Link encap:Local Loopback\n          inet addr:127.0.0.1  Mask:255.0.0.0\n"


def _snapshot_display(dev: HarmonyDevice, args: list[str]) -> str:
    path = _opt(args, "-f") or f"/data/local/tmp/snapshot_{dev.pid('snap')}.jpeg"
    _keep(dev, path, dev.jpeg())
    return f"success: snapshot display 0 , write to {path} as jpeg, width {dev.width}, height {dev.height}\n"


def _uitest(dev: HarmonyDevice, args: list[str]) -> str:
    if not args:
        raise _Exit("usage: uitest start-daemon|dumpLayout|screenCap|uiInput ...\n")
    sub, rest = args[0], args[1:]
    if sub == "start-daemon":
        dev.start_agent()  # the real daemon detaches and prints nothing; hmdriver2 then just connects
        return ""
    if sub == "dumpLayout":
        path = _opt(rest, "-p") or "/data/local/tmp/layout.json"
        top, _ = dev.layout()
        _keep(dev, path, json.dumps(top, ensure_ascii=False).encode("utf-8"))
        return f"DumpLayout saved to:{path}\n"
    if sub == "screenCap":
        path = _opt(rest, "-p") or "/data/local/tmp/screenCap.png"
        _keep(dev, path, dev.png())
        return f"ScreenCap saved to {path}\n"
    if sub == "uiInput":
        return _ui_input(dev, rest)
    raise _Exit(f"uitest: unknown command {sub}\n")


def _ui_input(dev: HarmonyDevice, args: list[str]) -> str:
    if not args:
        raise _Exit("usage: uitest uiInput click|doubleClick|longClick|swipe|keyEvent|inputText|text ...\n")
    kind, rest = args[0], args[1:]
    device = dev.device
    if kind in ("click", "doubleClick", "longClick") and len(rest) >= 2:
        x, y = _ints(rest[:2])
        for _ in range(2 if kind == "doubleClick" else 1):
            (device.long_tap if kind == "longClick" else device.tap)(x, y)
    elif kind in ("swipe", "fling", "drag") and len(rest) >= 4:
        gesture(dev, *_ints(rest[:4]))
    elif kind == "keyEvent" and rest:
        key(dev, int(rest[0]) if rest[0].isdigit() else {"Back": KEY_BACK, "Home": KEY_HOME}.get(rest[0], -1))
    elif kind == "inputText" and len(rest) >= 3:
        x, y = _ints(rest[:2])
        device.tap(x, y)
        device.type_text(" ".join(rest[2:]))
    elif kind == "text" and rest:
        device.type_text(" ".join(rest))
    else:
        raise _Exit(f"uiInput: bad arguments: {' '.join(args)}\n")
    return "No Error\n"


def gesture(dev: HarmonyDevice, fx: int, fy: int, tx: int, ty: int) -> None:
    """A finger moving from (fx, fy) to (tx, ty): a tap when it barely moves, else a scroll against it."""
    dx, dy = tx - fx, ty - fy
    if max(abs(dx), abs(dy)) < 10:
        dev.device.tap(fx, fy)
        return
    direction = ("down" if dy < 0 else "up") if abs(dy) >= abs(dx) else ("right" if dx < 0 else "left")
    dev.device.perform(Action(ActionKind.SCROLL, direction=direction))


def key(dev: HarmonyDevice, code: int) -> None:
    if code == KEY_BACK:
        dev.device.press_back()
    elif code == KEY_HOME:
        dev.device.launch(LAUNCHER)


def _aa(dev: HarmonyDevice, args: list[str]) -> str:
    if not args:
        raise _Exit("usage: aa start|force-stop|dump ...\n")
    sub, rest = args[0], args[1:]
    if sub == "start":
        bundle, ability = _opt(rest, "-b"), _opt(rest, "-a")
        if not bundle:
            raise _Exit("error: missing -b BUNDLE.\n")
        if bundle not in (dev.bundle(), LAUNCHER):
            raise _Exit(f"error: failed to start ability.\nError Code:10104001  Error Message:The specified "
                        f"ability does not exist ({bundle}).\n")
        dev.device.launch(f"{bundle}/{ability}" if ability else bundle)
        return "start ability successfully.\n"
    if sub == "force-stop" and rest:
        dev.device.stop_app(rest[0])
        return "force stop process successfully.\n"
    if sub == "dump" and "-l" in rest:
        return _missions(dev)
    raise _Exit(f"error: unknown aa command: {' '.join(args)}\n")


def _missions(dev: HarmonyDevice) -> str:
    """`aa dump -l`: one block per mission; the one in front says `state #FOREGROUND`."""
    package, ability = dev.device.current_app()
    blocks = [("com.ohos.launcher", "com.ohos.launcher.MainAbility", package == LAUNCHER)]
    if package != LAUNCHER:
        blocks.append((package, ability, True))
    out = ["User ID #100", "  current mission lists:{"]
    for i, (bundle, main, front) in enumerate(blocks, 1):
        out += [f"    Mission ID #{i}  mission name #[#{bundle}:entry:{main}]  lockedState #0  mission affinity #[]",
                f"      AbilityRecord ID #{i}", f"        app name [{bundle}]", f"        main name [{main}]",
                f"        bundle name [{bundle}]", "        ability type [PAGE]",
                f"        state #{'FOREGROUND' if front else 'BACKGROUND'}  start time [0]",
                "        app state #FOREGROUND" if front else "        app state #BACKGROUND",
                "        callee connections:", "        isKeepAlive: false", "     }"]
    out.append(" }")
    return "\n".join(out) + "\n"


def _bm(dev: HarmonyDevice, args: list[str]) -> str:
    bundle = dev.bundle()
    if args[:1] == ["dump"] and "-a" in args:
        return "ID: 100:\n" + "".join(f"\t{b}\n" for b in sorted({bundle, "com.ohos.launcher", "com.ohos.settings"}))
    if args[:1] == ["dump"] and "-n" in args:
        name = _opt(args, "-n")
        if name != bundle:
            raise _Exit(f"error: failed to get information and the parameters may be wrong ({name}).\n")
        ability = dev.main_ability()
        info = {"name": bundle, "versionCode": 1, "versionName": "1.0.0", "mainEntry": "entry",
                "hapModuleInfos": [{"name": "entry", "mainAbility": ability, "abilityInfos": [
                    {"name": ability, "moduleName": "entry",
                     "skills": [{"actions": ["ohos.want.action.home"], "entities": ["entity.system.home"]}]}]}]}
        return f"{bundle}:\n{json.dumps(info, indent=2)}\n"
    raise _Exit(f"error: unknown bm command: {' '.join(args)}\n")


def _power_shell(dev: HarmonyDevice, args: list[str]) -> str:
    return "WakeupDevice is called\n" if args[:1] == ["wakeup"] else ""


# --- pieces --------------------------------------------------------------------------------------

def _opt(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1] if flag in args and args.index(flag) + 1 < len(args) else ""


def _ints(values: list[str]) -> list[int]:
    try:
        return [int(float(v)) for v in values]
    except ValueError:
        raise _Exit(f"expected numbers, got {' '.join(values)}\n") from None


def _keep(dev: HarmonyDevice, path: str, data: bytes) -> None:
    problem = dev.store(path, data)
    if problem is not None:
        raise _Exit(f"error: cannot write {path}: {problem}\n")


_COMMANDS: dict[str, Callable[[HarmonyDevice, list[str]], str]] = {
    "echo": _echo, "md5sum": _md5sum, "rm": _rm, "chmod": _quiet, "mkdir": _quiet, "ls": _ls, "ps": _ps,
    "kill": _kill, "param": _param, "hidumper": _hidumper, "ifconfig": _ifconfig, "uitest": _uitest,
    "snapshot_display": _snapshot_display, "aa": _aa, "bm": _bm, "power-shell": _power_shell,
}
