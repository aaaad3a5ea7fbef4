"""`appatlas crawl` and `appatlas bench crawl`."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from appatlas.errors import AppatlasError

console = Console()


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command("crawl")(crawl_cmd)
    bench.command("crawl")(bench_crawl_cmd)


def open_device(*, app: str | None, replay: Path | None, device: str | None, adb_port: int, screenshots: bool = True,
                options: dict | None = None):
    """The device a command drives: a virtual app spec, a replayed recording, or a phone over adb."""
    chosen = [x for x in (app, replay, device) if x]
    if len(chosen) != 1:
        raise typer.BadParameter("give exactly one of --app SPEC, --replay DIR or --device SERIAL|harmony:SERIAL")
    if app:
        from appatlas.devices.virtual import open_app

        return open_app(app, screenshots=screenshots)
    if replay:
        from appatlas.graph.replay import open_replay

        return open_replay(replay, screenshots=screenshots)
    from appatlas.devices.select import open_device as connect

    return connect(device, adb_port=adb_port, screenshots=screenshots, options=options)


def crawl_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Atlas folder to write (created; with --resume, continued)."),
    app: str = typer.Option(None, "--app", help="A virtual app: built-in name (demo) or app-spec YAML."),
    replay: Path = typer.Option(None, "--replay", help="Replay a recording: an atlas or a DroidBot folder."),
    device: str = typer.Option(None, "--device", help="A phone's adb serial (see `appatlas devices list`), "
                               "harmony:SERIAL (HarmonyOS over hdc) or web:URL."),
    package: str = typer.Option("", "--package", help="App under test on a phone (default: the foreground app)."),
    budget: int = typer.Option(1000, "--budget", help="Actions to spend, in total over resumed runs."),
    seconds: float = typer.Option(0.0, "--seconds", help="Stop after this long (0: no time limit)."),
    strategy: str = typer.Option("atlas", "--strategy", help="atlas (model-based, default), dfs or random."),
    deny: list[str] = typer.Option(None, "--deny", help="Extra regex of widget labels never to touch (repeatable)."),
    resume: bool = typer.Option(False, "--resume", help="Continue a crawl that was stopped or killed."),
    adb_port: int = typer.Option(int(os.environ.get("ANDROID_ADB_SERVER_PORT", 5037)), "--adb-port",
                                 help="adb server port for --device."),
    url: str = typer.Option(None, "--url", help="A web app's start page (http/https), driven in the system "
                                                "Chromium; pages of other origins count as leaving the app."),
    allow_origin: list[str] = typer.Option(None, "--allow-origin", help="With --url: another origin that is part "
                                           "of the app, e.g. https://login.example.com (repeatable)."),
    vision: bool = typer.Option(False, "--vision", help="Also read screens from their pixels (OCR + classical "
                                "vision) where the view tree has holes (games, SurfaceView, WebView); actions on "
                                "what was read are taps at the detected boxes. Needs appatlas[vision]."),
    farm: str = typer.Option("", "--farm", help="Crawl on a Ray device farm (HOST:PORT or 'local'): --package "
                             "P1,P2,… each on its own phone at once, into OUT/P.atlas; one app is split over the phones by "
                             "start screens, into OUT; "
                             "--device S1,S2 picks phones. Needs appatlas[farm]."),
) -> None:
    """Explore an app into an atlas: every screen and transition is recorded the moment it is seen.

    A killed crawl loses nothing; run the same command with --resume to go on with the same frontier.
    Dangerous actions (delete all, factory reset, log out, uninstall, …) are never touched.

    Example: appatlas crawl --app demo --out demo.atlas --budget 500

    Example (web): appatlas crawl --url http://127.0.0.1:8000/ --out site.atlas --budget 300

    Example (a game, pixels only): appatlas crawl --app canvas:game --vision --out game.atlas --budget 150

    Example (a farm): appatlas crawl --farm 10.0.0.5:6379 --package com.a,com.b --out atlases --budget 500

    Example (one app, every phone of a farm): appatlas crawl --farm 10.0.0.5:6379 --package com.a --out a.atlas
    """
    from appatlas.graph.atlas import Atlas
    from appatlas.graph.crawler import CrawlConfig, crawl
    from appatlas.graph.model import DEFAULT_DENY

    if farm:
        from appatlas.cli.farm import crawl_on_farm

        config = CrawlConfig(strategy=strategy, budget=budget, seconds=seconds or None,
                             deny=DEFAULT_DENY + tuple(deny or ()))
        crawl_on_farm(farm, package, out, device or "", config=config, adb_port=adb_port)
        return

    try:
        if url and (app or replay or device):
            raise typer.BadParameter("--url drives a web app; give it without --app, --replay and --device")
        from appatlas.devices.select import device_options, remember_device

        kept: dict = {}
        if resume:  # connect as the crawl that made the atlas did (a web app's other origins)
            with Atlas.open(out) as prior:
                kept = device_options(prior)
        if url:
            from appatlas.devices.web import connect as connect_web

            origins = (*kept.get("allow_origins", ()), *(allow_origin or ()))
            dev = connect_web(url, allow_origins=origins, app=package)  # --package names it
        else:
            dev = open_device(app=app, replay=replay, device=device, adb_port=adb_port, options=kept)
        pkg = package or getattr(getattr(dev, "spec", None), "package", "") or getattr(getattr(dev, "app", None),
                                                                                        "package", "")
        pkg = pkg or dev.current_app()[0]
        if vision:
            from appatlas.vision.device import VisionDevice

            dev = VisionDevice(dev, annotate=True)  # the atlas keeps screenshots with the boxes seen
        # The platform the device says it is (web, harmony); phones and virtual apps are Android.
        atlas = Atlas.open(out) if resume else Atlas.create(out, app=pkg, platform=getattr(dev, "platform", "android"))
        remember_device(atlas, dev)
    except AppatlasError as exc:
        console.print(f"[bold red]{type(exc).__name__}:[/] {exc}")
        raise typer.Exit(2) from None
    config = CrawlConfig(strategy=strategy, budget=budget, seconds=seconds or None,
                         deny=DEFAULT_DENY + tuple(deny or ()))
    with atlas, Progress(TextColumn("[bold]crawl[/]"), BarColumn(), MofNCompleteColumn(),
                         TextColumn("{task.fields[line]}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("crawl", total=budget, line="")

        def progress(p) -> None:  # noqa: ANN001 - CrawlProgress
            bar.update(task, completed=p.actions, line=f"screens {p.screens}  transitions {p.transitions}  "
                                                        f"frontier {p.frontier}  {p.actions_per_s:.0f} actions/s")

        try:
            report = crawl(dev, atlas, package=pkg, config=config, progress=progress, resume=resume)
        except AppatlasError as exc:
            console.print(f"[bold red]{type(exc).__name__}:[/] {exc}\nEverything observed so far is in {out}; "
                          f"run again with --resume to continue.")
            raise typer.Exit(2) from None
        finally:
            getattr(dev, "close", lambda: None)()
    table = Table(show_header=False, title=f"crawl of {pkg} → {out}")
    for k, v in (("actions", report.actions), ("screens", report.screens), ("states", report.states),
                 ("transitions", report.transitions), ("findings (crashes)", report.findings),
                 ("stopped because", report.stopped),
                 ("crawler overhead", f"{report.overhead_ms_per_action:.2f} ms/action")):
        table.add_row(k, str(v))
    console.print(table)


def bench_crawl_cmd(
    data: Path = typer.Option(..., "--data", help="A folder of DroidBot app folders (like ../shared/data/droidtask)."),
    out: Path = typer.Option(Path("bench-crawl.json"), "--out", help="Where to write the JSON result."),
    budget: int = typer.Option(2000, "--budget", help="Actions per strategy and app."),
    strategies: str = typer.Option("random,dfs,atlas", "--strategies", help="Comma-separated strategies."),
    apps: str = typer.Option("", "--apps", help="Only these apps (comma-separated folder names)."),
    random_seeds: int = typer.Option(3, "--random-seeds", min=1, help="Seeds for random (mean and spread)."),
) -> None:
    """Explore each recorded app's replay with every strategy and the same budget; print coverage.

    Every action counts against the budget, back presses and relaunches included.

    Example: appatlas bench crawl --data ../shared/data/droidtask --out crawl.json
    """
    from appatlas.bench.crawl import CHECKPOINTS, run_crawl_bench

    names = tuple(s for s in strategies.split(",") if s)
    with console.status("crawling…") as status:
        doc = run_crawl_bench(data=data, out=out, budget=budget, strategies=names, random_seeds=random_seeds,
                              apps=tuple(a for a in apps.split(",") if a),
                              progress=lambda app, s: status.update(f"crawling {app} with {s}…"))
    table = Table(title=f"screen coverage, budget {budget} actions (JSON: {out})")
    table.add_column("app")
    table.add_column("strategy")
    for n in CHECKPOINTS:
        table.add_column(f"@{n}", justify="right")
    table.add_column("transitions", justify="right")
    table.add_column("overhead ms", justify="right")
    rows = [(a, s, m) for a, r in doc["apps"].items() for s, m in r.items()]
    rows += [("mean", s, m) for s, m in doc["summary"].items() if s != "random_seeds"]
    for a, s, m in rows:
        table.add_row(a, s, *(f"{m['checkpoints'][str(n)]:.0%}" for n in CHECKPOINTS),
                      f"{m['transition_coverage']:.0%}", f"{m['overhead_ms_per_action']:.2f}")
    console.print(table)
    spread = doc["summary"].get("random_seeds")
    if spread:
        cov = spread["screen_coverage"]
        console.print(f"random over seeds {spread['seeds']}: screen coverage mean {cov['mean']:.1%}, "
                      f"min {cov['min']:.1%}, max {cov['max']:.1%}")
