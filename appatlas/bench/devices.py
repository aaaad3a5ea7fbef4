"""Per-call overhead of driving a virtual device through the local adb + uiautomator2 server.

Each call is timed twice in the same loop, interleaved: once through the real uiautomator2
client and the local server, once on the virtual device directly; the overhead of a call is
the difference. Rows: the stock client (`uiautomator2.connect(adbutils.AdbClient(...).device())`)
for dump_hierarchy, screenshot and click, with the host:version round trip it pays before each
of them; and appatlas' own backend (`appatlas.devices.u2`) for snapshot and tap. With hmdriver2
installed, the HarmonyOS backend (`appatlas.devices.harmony`) through the hdc stand-in adds
snapshot, snapshot+jpeg and tap rows; with Playwright and a Chromium installed, the web backend
(`appatlas.devices.web`) on the built-in web demo adds the same three rows (client `playwright`: a
snapshot is one DOM walk, a tap flips a settings switch, which saves over the network, and waits for
the page to settle). `summary.platforms` gives each platform's snapshot and tap latency (median, p95)
as a crawler waits for it.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from appatlas.devices.base import Device
from appatlas.types import Action, ActionKind, Bounds, Screen, Selector

__all__ = ["TARGET_MS", "format_table", "run_devices_bench"]

TARGET_MS = 15.0
WARMUP = 5


@dataclass(frozen=True, slots=True)
class _Row:
    name: str  # what was called
    client: str  # "uiautomator2" (stock) or "appatlas" (appatlas.devices.u2)
    through_ms_p50: float
    through_ms_p95: float
    direct_ms_p50: float
    overhead_ms_p50: float
    overhead_ms_p95: float


def _ms(seconds: list[float], q: float) -> float:
    ordered = sorted(seconds)
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def _time(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _measure(name: str, client: str, through: Callable[[], object], direct: Callable[[], object],
             calls: int) -> _Row:
    for _ in range(WARMUP):
        through()
        direct()
    t_through, t_direct, overhead = [], [], []
    for _ in range(calls):
        d = _time(direct)
        t = _time(through)
        t_through.append(t)
        t_direct.append(d)
        overhead.append(t - d)
    return _Row(name, client, _ms(t_through, 0.5), _ms(t_through, 0.95), _ms(t_direct, 0.5), _ms(overhead, 0.5),
               _ms(overhead, 0.95))


def _quiet_point(screen: Screen) -> tuple[int, int]:
    """A point no actionable widget covers, so the tapping loop leaves the screen as it is."""
    live = [w for w in screen.widgets() if w.clickable or w.long_clickable or w.editable or w.checkable
            or w.scrollable]
    for y in range(screen.height // 40, screen.height, screen.height // 20 or 1):
        for x in range(screen.width // 40, screen.width, screen.width // 10 or 1):
            if not any(w.bounds.contains(x, y) for w in live):
                return x, y
    raise ValueError("every point of the screen is actionable; bench another app")


def _shape(screen: Screen) -> tuple[object, ...]:
    """The screen without its texts (a clock ticks with every action)."""
    return (screen.package, screen.activity,
            tuple((w.class_name, w.resource_id, str(w.bounds)) for w in screen.widgets()))


def run_devices_bench(*, calls: int = 200, out_path: str | Path | None = None,
                      app: str | Mapping[str, Any] = "demo") -> dict[str, Any]:
    """Time `calls` calls of each kind; returns (and writes to out_path) rows and a `summary`.

    `app` is anything `open_app` takes (a built-in name, a spec path, a spec dict).
    """
    import adbutils
    import uiautomator2 as u2

    from appatlas.devices.fakeadb import FakeAdbServer
    from appatlas.devices.u2 import connect
    from appatlas.devices.virtual import open_app

    if calls < 1:
        raise ValueError(f"calls must be >= 1, got {calls}")
    vdev = open_app(app, serial="bench-1")
    serial = vdev.serial
    with FakeAdbServer([vdev]) as server:
        stock_adb = adbutils.AdbClient(host=server.host, port=server.port)
        stock = u2.connect(stock_adb.device(serial))
        ours = connect(serial, adb_port=server.port, timeout=10.0, screenshots=False)
        ours_png = connect(serial, adb_port=server.port, timeout=10.0, screenshots=True)
        before = vdev.snapshot()
        x, y = _quiet_point(before)
        tap = Action(ActionKind.TAP, target=Selector(bounds=Bounds(x, y, x + 1, y + 1)))
        direct: Device = vdev
        rows = [
            # stock adbutils asks host:version (a connection, then a 10 ms pause in its close)
            # before every request: this row is that floor, paid by each of the next three
            _measure("host:version", "uiautomator2", stock_adb.server_version, lambda: None, calls),
            _measure("dump_hierarchy", "uiautomator2", stock.dump_hierarchy, vdev.snapshot, calls),
            _measure("screenshot", "uiautomator2", stock.screenshot, lambda: vdev.snapshot().screenshot, calls),
            _measure("click", "uiautomator2", lambda: stock.click(x, y), lambda: vdev.tap(x, y), calls),
            _measure("snapshot", "appatlas", ours.snapshot, direct.snapshot, calls),
            _measure("snapshot+png", "appatlas", ours_png.snapshot, direct.snapshot, calls),
            _measure("tap", "appatlas", lambda: ours.perform(tap), lambda: vdev.tap(x, y), calls),
        ]
        if _shape(vdev.snapshot()) != _shape(before):
            raise RuntimeError(f"the taps at ({x}, {y}) changed the screen; the timings are not comparable")
        for d in (ours, ours_png):
            d.close()
        stock.stop_uiautomator(wait=False)
    rows += _harmony_rows(app, calls)
    rows += _web_rows(calls)
    by = {(r.client, r.name): r for r in rows}
    summary = {
        "snapshot_ms_p50": by["uiautomator2", "dump_hierarchy"].overhead_ms_p50,
        "snapshot_ms_p95": by["uiautomator2", "dump_hierarchy"].overhead_ms_p95,
        "screenshot_ms_p50": by["uiautomator2", "screenshot"].overhead_ms_p50,
        "screenshot_ms_p95": by["uiautomator2", "screenshot"].overhead_ms_p95,
        "tap_ms_p50": by["uiautomator2", "click"].overhead_ms_p50,
        "tap_ms_p95": by["uiautomator2", "click"].overhead_ms_p95,
        "appatlas_snapshot_ms_p50": by["appatlas", "snapshot"].overhead_ms_p50,
        "appatlas_tap_ms_p50": by["appatlas", "tap"].overhead_ms_p50,
        "target_ms": TARGET_MS,
        "calls": calls,
    }
    summary["meets_target"] = all(summary[k] <= TARGET_MS for k in ("snapshot_ms_p50", "screenshot_ms_p50",
                                                                    "tap_ms_p50"))
    # what a crawler waits for per call on each platform (through the real client and local stand-in)
    summary["platforms"] = {
        name: {f"{call}_ms_{q}": getattr(by[client, call], f"through_ms_{q}")
                   for call in ("snapshot", "tap") for q in ("p50", "p95")}
        for name, client in (("android", "appatlas"), ("harmony", "hmdriver2"), ("web", "playwright"))
        if (client, "tap") in by}
    result = {
        "bench": "devices", "app": app if isinstance(app, str) else vdev.spec.package, "tap_point": [x, y], "rows": [asdict(r) for r in rows],
        "summary": summary,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
        "note": "overhead = time through the server minus time on the device directly, per interleaved call",
    }
    if out_path is not None:
        Path(out_path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def _harmony_rows(app: str | Mapping[str, Any], calls: int) -> list[_Row]:
    """snapshot, snapshot+jpeg and tap through hmdriver2 and the hdc stand-in; [] without hmdriver2."""
    import importlib.util

    if importlib.util.find_spec("hmdriver2") is None:
        return []
    from appatlas.devices.fakehdc import FakeHdcServer
    from appatlas.devices.harmony import connect
    from appatlas.devices.virtual import open_app

    vdev = open_app(app, serial="bench-hm-1")
    saved = {k: os.environ.get(k) for k in ("PATH", "HDC_SERVER_HOST", "HDC_SERVER_PORT")}
    with FakeHdcServer([vdev]) as server:
        os.environ.update(server.environ())  # hmdriver2 finds `hdc` on PATH and the server in the environment
        try:
            ours = connect(vdev.serial, timeout=10.0, screenshots=False)
            ours_jpeg = connect(vdev.serial, timeout=10.0, screenshots=True)
            ours._reconnect()  # the second connect restarted the daemon, as hmdriver2 does on every start
            before = vdev.snapshot()
            x, y = _quiet_point(before)
            tap = Action(ActionKind.TAP, target=Selector(bounds=Bounds(x, y, x + 1, y + 1)))
            rows = [
                _measure("snapshot", "hmdriver2", ours.snapshot, vdev.snapshot, calls),
                _measure("snapshot+jpeg", "hmdriver2", ours_jpeg.snapshot, vdev.snapshot, max(1, calls // 4)),
                _measure("tap", "hmdriver2", lambda: ours.perform(tap), lambda: vdev.tap(x, y), calls),
            ]
            if _shape(vdev.snapshot()) != _shape(before):
                raise RuntimeError(f"the taps at ({x}, {y}) changed the screen; the timings are not comparable")
            for d in (ours, ours_jpeg):
                d.close()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return rows


def _web_rows(calls: int) -> list[_Row]:
    """snapshot, snapshot+jpeg and tap on the built-in web app in Chromium; [] without Playwright or Chromium.

    A page has no "direct" twin to subtract: direct is 0, so overhead is the whole call."""
    import importlib.util

    from appatlas.errors import DeviceError

    if importlib.util.find_spec("playwright") is None:
        return []
    from appatlas.devices._web_host import find_chromium
    from appatlas.devices.apps.webdemo import WebDemoServer
    from appatlas.devices.web import connect

    try:
        find_chromium()
    except DeviceError:
        return []
    with WebDemoServer() as server:
        ours = connect(server.url + "settings", serial="bench-web-1", screenshots=False)
        ours_jpeg = connect(server.url + "settings", serial="bench-web-2", screenshots=True)
        try:
            before = ours.snapshot()
            tap = Action(ActionKind.TAP, target=Selector(resource_id="dark_theme"))
            rows = [
                _measure("snapshot", "playwright", ours.snapshot, lambda: None, calls),
                _measure("snapshot+jpeg", "playwright", ours_jpeg.snapshot, lambda: None, max(1, calls // 4)),
                _measure("tap", "playwright", lambda: ours.perform(tap), lambda: None, max(1, calls // 4)),
            ]
            if _shape(ours.snapshot()) != _shape(before):
                raise RuntimeError("the switch taps changed the page's layout; the timings are not comparable")
        finally:
            ours.close()
            ours_jpeg.close()
    return rows


def format_table(result: dict[str, Any]) -> str:
    """The rows as an aligned text table (ms)."""
    head = f"{'call':<16}{'client':<14}{'through p50':>12}{'p95':>9}{'direct p50':>12}{'overhead p50':>14}{'p95':>9}"
    lines = [head, "-" * len(head)]
    for r in result["rows"]:
        lines.append(f"{r['name']:<16}{r['client']:<14}{r['through_ms_p50']:>12.2f}{r['through_ms_p95']:>9.2f}"
                     f"{r['direct_ms_p50']:>12.3f}{r['overhead_ms_p50']:>14.2f}{r['overhead_ms_p95']:>9.2f}")
    s = result["summary"]
    verdict = "meets" if s["meets_target"] else "misses"
    for name, t in s.get("platforms", {}).items():
        lines.append(f"{name}: snapshot {t['snapshot_ms_p50']:.1f} ms (p95 {t['snapshot_ms_p95']:.1f}), tap "
                     f"{t['tap_ms_p50']:.1f} ms (p95 {t['tap_ms_p95']:.1f}) through the real client")
    lines.append(f"machine: {result['machine']['cpus']} CPUs, load {result['machine']['load_avg_1m']}")
    lines.append(f"median overhead per call: snapshot {s['snapshot_ms_p50']:.2f} ms, screenshot "
                 f"{s['screenshot_ms_p50']:.2f} ms, tap {s['tap_ms_p50']:.2f} ms ({verdict} the "
                 f"{s['target_ms']:g} ms target; {s['calls']} calls each)")
    return "\n".join(lines)

