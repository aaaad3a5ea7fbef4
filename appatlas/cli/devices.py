"""`appatlas devices serve|list` and `appatlas bench devices`: thin wrappers, one call each."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_SERVE_PORT = 15037  # not 5037: a real adb server may own that one


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add the `devices` commands and `bench devices` to the appatlas CLI."""
    devices = typer.Typer(no_args_is_help=True, help="Phones and virtual phones: list what adb sees, or serve "
                                                     "virtual apps over a local adb server.")
    app.add_typer(devices, name="devices")

    @devices.command("serve")
    def serve(
        apps: Annotated[list[str] | None, typer.Option("--app", help="App to run on a virtual phone: a built-in "
                        "name or a spec YAML path; repeat for several phones (virtual-1, virtual-2, …). "
                        "Default: demo.")] = None,
        port: Annotated[int, typer.Option("--port", help="TCP port of the adb server (0: any free one).")]
        = DEFAULT_SERVE_PORT,
        host: Annotated[str, typer.Option("--host", help="Address to listen on; keep it loopback.")] = "127.0.0.1",
        seconds: Annotated[float, typer.Option("--for", help="Stop after this many seconds (0: until Ctrl-C).")]
        = 0.0,
        replays: Annotated[list[Path] | None, typer.Option("--replay", help="A recorded app to serve as a phone: "
                           "a DroidBot output folder (DroidTask app folder or report) or an atlas; repeat for "
                           "several (replay-1, replay-2, …). It replays what was recorded: a tap nobody "
                           "recorded does nothing.")] = None,
        harmony: Annotated[bool, typer.Option("--harmony", help="Serve the apps as HarmonyOS devices instead: an "
                           "hdc server and `hdc` command for hmdriver2 (see docs/devices.md).")] = False,
    ) -> None:
        """Serve virtual phones over a local adb + uiautomator2 server, in the foreground.

        Example: appatlas devices serve --app demo --port 15037
        Example: appatlas devices serve --harmony --app demo --port 18710   (as HarmonyOS devices, for hmdriver2)
        Example: appatlas devices serve --replay ../shared/data/droidtask/notes   (a recording as a phone)
        """
        from appatlas.devices.fakeadb import FakeAdbServer
        from appatlas.devices.virtual import open_app
        from appatlas.errors import AppatlasError
        from appatlas.graph.replay import open_replay

        replays = replays or []
        apps = apps or ([] if replays else ["demo"])
        try:
            phones = [open_app(a, serial=f"virtual-{i + 1}") for i, a in enumerate(apps)]
            phones += [open_replay(r, serial=f"replay-{i + 1}") for i, r in enumerate(replays)]
        except AppatlasError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except (FileNotFoundError, NotADirectoryError) as exc:
            typer.echo(f"error: {exc}; --replay takes a DroidBot output folder (with states/) or an atlas folder",
                       err=True)
            raise typer.Exit(2) from None
        if not _loopback(host):
            typer.echo(f"warning: --host {host} lets anyone who reaches this address drive the virtual phones "
                       "(adb has no authentication); use 127.0.0.1 unless you mean it", err=True)
        if harmony:  # the same virtual apps behind the hdc stand-in
            from appatlas.devices.fakehdc.__main__ import main as serve_hdc

            raise typer.Exit(serve_hdc([*(f"--app={a}" for a in apps), f"--port={port}", f"--for={seconds}"]))
        server = FakeAdbServer(phones, host=host, port=port)
        try:
            server.start()
        except OSError as exc:
            typer.echo(f"error: cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port",
                       err=True)
            raise typer.Exit(1) from None
        p = server.port
        typer.echo(f"appatlas local adb server on {server.host}:{p}")
        for phone, name in zip(phones, [*apps, *map(str, replays)], strict=True):
            package = phone.spec.package if hasattr(phone, "spec") else phone.app.package
            typer.echo(f"  {phone.serial}\t{package}  ({name})")
        typer.echo("Point adb clients at it:")
        typer.echo(f"  ANDROID_ADB_SERVER_PORT={p} python -c 'import adbutils; print(adbutils.adb.device_list())'")
        typer.echo(f"  u2.connect(adbutils.AdbClient(host=\"{server.host}\", port={p}).device(\"{phones[0].serial}\"))")
        typer.echo(f"  appatlas devices list --adb-port {p}")
        typer.echo("Ctrl-C stops it.")
        deadline = time.monotonic() + seconds if seconds > 0 else None
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(min(0.2, seconds) if seconds > 0 else 0.5)
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
        typer.echo("stopped")

    @devices.command("list")
    def list_(
        adb_host: Annotated[str, typer.Option("--adb-host", help="Host of the adb server.")] = "127.0.0.1",
        adb_port: Annotated[int, typer.Option("--adb-port", help="Port of the adb server (adb's default: 5037).")]
        = 5037,
    ) -> None:
        """List the devices an adb server knows, with their state; a SERIAL goes to --device.

        Example: appatlas devices list --adb-port 15037
        """
        from appatlas.devices.u2 import list_devices
        from appatlas.errors import DeviceError

        try:
            found = list_devices(adb_host=adb_host, adb_port=adb_port)
        except DeviceError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        if not found:
            typer.echo(f"no devices at adb {adb_host}:{adb_port}: plug a phone in with USB debugging on, "
                       "or `adb connect HOST:PORT`")
            return
        typer.echo(f"{'serial':<24}{'state':<14}{'model':<28}transport")
        for d in found:
            typer.echo(f"{d.serial:<24}{d.state:<14}{d.model or '-':<28}{d.transport_id}")

    @bench.command("devices")
    def bench_devices(
        calls: Annotated[int, typer.Option("--calls", min=1, help="Calls timed per row.")] = 200,
        out: Annotated[Path | None, typer.Option("--out", help="Where to write the JSON result "
                                                 "(default: bench-devices.json).")] = None,
        app_name: Annotated[str, typer.Option("--app", help="Virtual app to drive (built-in name or spec path).")]
        = "demo",
    ) -> None:
        """Per-call overhead of the local adb + uiautomator2 server vs the virtual device directly.

        Example: appatlas bench devices --calls 200 --out bench-devices.json
        """
        from appatlas.bench.devices import format_table, run_devices_bench

        out = out or Path("bench-devices.json")
        result = run_devices_bench(calls=calls, out_path=out, app=app_name)
        typer.echo(format_table(result))
        typer.echo(f"wrote {out}")
