"""`appatlas farm node|status`, `appatlas bench farm`, and the `--farm` runs of `campaign` and `crawl`.

Ray is imported only when one of these runs (`pip install "appatlas[farm]"`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from appatlas.errors import AppatlasError

console = Console()
ADB_PORT = int(os.environ.get("ANDROID_ADB_SERVER_PORT", 5037))
FARM_HELP = ("Run on a Ray device farm: its head's HOST:PORT (see `appatlas farm node`), or 'local' for a "
             "one-machine farm of this host's phones. Needs `pip install \"appatlas[farm]\"`.")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    farm = typer.Typer(no_args_is_help=True, help="A device farm on Ray: phones on several hosts, one campaign.",
                       epilog="Example: appatlas farm node --head --device R58M123  ·  appatlas farm status "
                              "--address 10.0.0.5:6379")
    app.add_typer(farm, name="farm")
    farm.command("node")(node_cmd)
    farm.command("status")(status_cmd)
    farm.command("plan")(plan_cmd)
    bench.command("farm")(bench_farm_cmd)


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[bold red]{type(exc).__name__}:[/] {escape(str(exc))}")  # '[farm]' is not markup
    return typer.Exit(2)


def _attached(adb_port: int) -> list[str]:
    from appatlas.devices.u2 import list_devices

    return [d.serial for d in list_devices(adb_port=adb_port) if d.state == "device"]


def _phones(devices: Sequence[str], adb_port: int) -> list[str]:
    """The phones a node declares: those named (each must be attached), or every attached one."""
    from appatlas.errors import FarmError

    attached = _attached(adb_port)
    missing = [s for s in devices if s not in attached]
    if missing:
        raise FarmError(f"not attached to adb at 127.0.0.1:{adb_port}: {', '.join(missing)}; attached: "
                        f"{', '.join(attached) or 'none'} (see `appatlas devices list --adb-port {adb_port}`)")
    return list(devices) or attached


def node_cmd(
    head: bool = typer.Option(False, "--head", help="Start a new farm on this host (its first node)."),
    address: str = typer.Option("", "--address", help="Join the farm whose head is at HOST:PORT."),
    device: list[str] = typer.Option([], "--device", help="A phone on this host to offer (adb serial); repeat. "
                                                           "Default: every phone adb lists here."),
    adb_port: int = typer.Option(ADB_PORT, "--adb-port", help="This host's adb server port."),
    port: int = typer.Option(6379, "--port", help="With --head: the port other hosts and drivers join on."),
    node_ip: str = typer.Option("", "--node-ip-address", help="This host's address as the other hosts reach it "
                                                              "(default: Ray picks the machine's address)."),
    num_cpus: int = typer.Option(None, "--num-cpus", help="CPUs Ray may use here (phone actors need none)."),
    block: bool = typer.Option(False, "--block", help="Stay in the foreground until Ctrl-C."),
) -> None:
    """Start (--head) or join (--address) a farm, offering this host's phones as `device:SERIAL` resources.

    The phones' adb server stays on this host; the farm's work for a phone runs here. Token
    authentication stays on: the head makes ~/.ray/auth_token, other hosts need a copy of it.

    Example: appatlas farm node --head --device R58M123 --device emulator-5554
    Example: appatlas farm node --address 10.0.0.5:6379 --device 9B211FFAZ
    """
    from appatlas.farm import require_ray
    from appatlas.farm.cluster import start_node, token_hint

    if head == bool(address):
        raise _fail(ValueError("give exactly one of --head (start a farm) and --address HOST:PORT (join one)"))
    try:
        require_ray()
        serials = _phones(device, adb_port)
        if not serials:
            console.print("[yellow]warning:[/] no phone attached here; the node joins with none")
        code = start_node(head=head, address=address, serials=serials, adb_port=adb_port, port=port,
                          node_ip=node_ip, num_cpus=num_cpus, block=block)
    except AppatlasError as exc:
        raise _fail(exc) from None
    if code == 0 and not block:
        console.print(f"node up with {len(serials)} phone(s): {', '.join(serials) or 'none'}")
        if head:
            console.print(f"others join with: appatlas farm node --address THIS_HOST:{port} --device SERIAL")
            console.print(token_hint())
        console.print("stop it with: ray stop")
    raise typer.Exit(code)


def status_cmd(
    address: str = typer.Option(os.environ.get("RAY_ADDRESS", "127.0.0.1:6379"), "--address",
                                help="The farm's head, HOST:PORT (default $RAY_ADDRESS or 127.0.0.1:6379)."),
) -> None:
    """List the farm's hosts, their phones, and what each phone runs now.

    Example: appatlas farm status --address 10.0.0.5:6379
    """
    from appatlas.farm.cluster import connect, farm_status

    try:
        hosts = farm_status(connect(address))
    except AppatlasError as exc:
        raise _fail(exc) from None
    table = Table(title=f"farm at {address}: {len(hosts)} host(s), {sum(len(h['phones']) for h in hosts)} phone(s)")
    for col in ("host", "address", "node", "phone", "doing"):
        table.add_column(col)
    for h in hosts:
        name = h["host"] + (" (head)" if h["head"] else "")
        for i, p in enumerate(h["phones"] or [{"serial": "—", "doing": ""}]):
            table.add_row(name if i == 0 else "", h["address"] if i == 0 else "", h["node"] if i == 0 else "",
                          p["serial"], p["doing"])
    console.print(table)


@contextmanager
def joined(farm: str, devices: Sequence[str], adb_port: int, *, phones: bool = True
           ) -> Iterator[tuple[str, int | None]]:
    """Connected to the farm at `farm` ('local': a one-machine farm of this host's phones, on loopback;
    of none with phones=False).

    Yields (address, adb port for the phone actors: None = each host's own).
    """
    from appatlas.farm import require_ray

    require_ray()
    if farm == "local":
        from appatlas.farm.cluster import LocalFarm

        local = LocalFarm([_phones(devices, adb_port) if phones else []])
        try:
            with console.status(f"starting a local farm for {len(local.hosts[0])} phone(s)…"):
                local.start()
                local.connect()
            yield local.address, adb_port
        finally:
            local.shutdown()
        return
    from appatlas.farm.cluster import connect

    connect(farm)
    yield farm, None


def campaign_on_farm(farm: str, cases: list, devices: Sequence[str], *, knowledge: Any, out: Path, llm: str,
                     model: str | None, max_steps: int, resume: bool, adb_port: int,
                     on_event: Callable[[str], None], reconnect: float = 0.0) -> Any:
    """`appatlas campaign --farm`: the campaign on the farm's phones (all, or those named by --device)."""
    with joined(farm, devices, adb_port) as (address, port):  # says how to install Ray when it is missing
        from appatlas.farm.campaign import run_farm_campaign
        from appatlas.farm.phone import PhoneSpec

        spec = PhoneSpec(package=knowledge.package, adb_port=port, llm=llm, model=model, max_steps=max_steps)
        return run_farm_campaign(cases, address, spec=spec, knowledge=knowledge, out=out,
                                 serials=devices if farm != "local" else (), resume=resume, on_event=on_event,
                                 reconnect=reconnect if farm != "local" else 0.0)  # a local head dies with us


def crawl_on_farm(farm: str, packages: str, out: Path, devices: str, *, config: Any, adb_port: int) -> None:
    """`appatlas crawl --farm`: several apps each on its own phone at once, into atlases under `out`; one app
    split over every phone by start screens, into the atlas `out`."""
    names = [p.strip() for p in packages.split(",") if p.strip()]
    serials = [d.strip() for d in devices.split(",") if d.strip()]
    try:
        if not names:
            raise ValueError("crawl --farm needs the apps to crawl: --package com.example.a,com.example.b")
        with joined(farm, serials, adb_port) as (address, port):
            from appatlas.farm.crawl import CrawlJob, run_farm_crawl, run_split_crawl
            from appatlas.farm.phone import PhoneSpec

            spec = PhoneSpec(package=names[0], adb_port=port, screenshots=True)
            chosen = serials if farm != "local" else ()
            say = lambda m: console.print(f"[dim]{escape(m)}[/]")  # noqa: E731
            if len(names) == 1:
                done = run_split_crawl(names[0], out, address, config=config, spec=spec, serials=chosen, on_event=say)
            else:
                jobs = [CrawlJob(n, out / f"{n}.atlas") for n in names]
                done = run_farm_crawl(jobs, address, config=config, spec=spec, serials=chosen, on_event=say)
    except (AppatlasError, ValueError) as exc:
        raise _fail(exc) from None
    table = Table(title=f"farm crawl → {out}")
    for col in ("app", "atlas", "from screen", "phone", "host", "actions"):
        table.add_column(col)
    for name, r in done["jobs"].items():
        table.add_row(r["package"], name.split("#")[0], r.get("start_screen", "launch")[:10], r["device"],
                      r["address"], str(r["report"]["actions"]))
    console.print(table)
    for atlas, c in done["atlases"].items():
        console.print(f"{atlas}: {c.get('screens', 0)} screens, {c.get('states', 0)} states, "
                      f"{c.get('transitions', 0)} transitions")
    if done["unfinished"]:
        console.print(f"[yellow]unfinished:[/] {', '.join(done['unfinished'])}: what was seen is kept; run again "
                      "to continue")
        raise typer.Exit(1)


def plan_cmd(
    atlas: Path = typer.Argument(..., help="An atlas folder, indexed (`appatlas index ATLAS`)."),
    intents: Path = typer.Argument(..., help="A text file: one intent per line (# comments and blank lines skipped)."),
    farm: str = typer.Option(..., "--farm", help="The farm's head, HOST:PORT, or 'local' (this machine)."),
    out: Path = typer.Option(Path("suite.yaml"), "--out", "-o", help="Where to save the planned tests (YAML)."),
    alternatives: int = typer.Option(3, "-k", help="Alternative routes to consider per intent."),
    per_host: int = typer.Option(1, "--per-host", help="Planners on each host (each loads the text embedder)."),
    planner: str = typer.Option("agent", help="agent (default, as `appatlas plan`): the agent's own decisions "
                                "rehearsed on the atlas first; words: routes through caption-matched transitions."),
) -> None:
    """Plan a test for each of many intents, the intents handed out to planners on every host of the farm.

    Each host gets the indexed atlas once (without screenshots) and plans intents as they come; the
    suite is saved in the intents' order. An intent that cannot be planned is listed with why.

    Example: appatlas farm plan notes.atlas intents.txt --farm 10.0.0.5:6379 --out suite.yaml
    """
    from appatlas.graph.atlas import Atlas
    from appatlas.graph.testcases import TestSuite, save_tests

    lines = [ln.strip() for ln in intents.read_text(encoding="utf-8").splitlines()] if intents.is_file() else []
    wanted = [ln for ln in lines if ln and not ln.startswith("#")]
    try:
        if not wanted:
            raise ValueError(f"{intents} holds no intent: write one per line")
        if planner not in ("agent", "words"):
            raise ValueError(f"--planner is agent or words, not {planner!r}")
        with Atlas.open(atlas) as a:
            package = a.get_meta("package")
        with joined(farm, (), 0, phones=False) as (address, _):
            from appatlas.farm.plan import plan_on_farm

            with console.status(f"planning {len(wanted)} intent(s) on the farm…") as status:
                done = plan_on_farm(atlas, wanted, address, k=alternatives, per_host=per_host, planner=planner,
                                    on_event=lambda m: status.update(escape(m)))
    except (AppatlasError, ValueError, OSError) as exc:
        raise _fail(exc) from None
    table = Table(title=f"{len(wanted)} intents on {len(done['planners'])} planner(s), {done['seconds']} s")
    for col in ("intent", "steps / why not", "host", "ms"):
        table.add_column(col)
    for p in done["plans"]:
        table.add_row(p["intent"], str(len(p["test"].steps)) if "test" in p else p["error"], p["address"],
                      str(p["ms"]))
    console.print(table)
    tests = [p["test"] for p in done["plans"] if "test" in p]
    save_tests(out, TestSuite(tests, app=package))
    console.print(f"saved {len(tests)} test(s) to {out}")
    if len(tests) < len(wanted):
        raise typer.Exit(1)


def bench_farm_cmd(
    out: Path = typer.Option(Path("bench-farm.json"), "--out", help="Where to write the JSON."),
    phones: str = typer.Option("1,2,4,8", "--phones", help="Phone counts to measure, comma-separated."),
    per_phone: int = typer.Option(8, "--per-phone", help="Cases per phone at each count (8: each intent twice)."),
    action_ms: int = typer.Option(300, "--action-ms", help="How long each action takes on a virtual phone."),
    dump_ms: int = typer.Option(150, "--dump-ms", help="How long each hierarchy dump takes."),
) -> None:
    """Cases per minute on 1, 2, 4 and 8 paced virtual phones: the farm (two Ray nodes on 127.0.0.1) vs threads.

    Prints the rates, scaling efficiency and driver overhead per case. Takes a few minutes.

    Example: appatlas bench farm --out bench-farm.json
    """
    from appatlas.bench.farm import run_farm_bench
    from appatlas.farm import require_ray

    try:
        require_ray()
        counts = tuple(int(p) for p in phones.split(",") if p.strip())
        with console.status("measuring…") as status:
            doc = run_farm_bench(out=out, counts=counts, per_phone=per_phone, action_ms=action_ms, dump_ms=dump_ms,
                                 progress=lambda m: status.update(m))
    except (AppatlasError, ValueError) as exc:
        raise _fail(exc) from None
    table = Table(title=f"farm vs threads, {action_ms} ms/action, {dump_ms} ms/dump (JSON: {out})")
    for col in ("phones", "threads cases/min", "farm cases/min", "farm startup s", "driver ms/case", "verdicts"):
        table.add_column(col, justify="right")
    for r in doc["rows"]:
        same = "same" if r["farm"]["statuses"] == r["threads"]["statuses"] else "[red]differ[/]"
        table.add_row(str(r["phones"]), f"{r['threads']['cases_per_minute']:.1f}", f"{r['farm']['cases_per_minute']:.1f}",
                      f"{r['farm']['startup_s']:.1f}", str(r["driver_ms_per_case"]), same)
    console.print(table)
    s = doc["summary"]
    console.print(f"scaling efficiency 1→8: {s['scaling_efficiency_8']}  ·  farm/threads at 4: "
                  f"{s['farm_vs_threads_4']}  ·  driver ms/case: {s['driver_ms_per_case']}")
