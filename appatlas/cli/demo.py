"""`appatlas demo`: run the pipeline on the built-in demo app, no phone, no network, no arguments."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from appatlas.errors import AppatlasError

console = Console()


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    out: Path = typer.Option(Path("appatlas-demo"), "--out", help="Result folder (an earlier demo result is replaced)."),
    budget: int = typer.Option(None, "--budget", help="Actions the crawl may spend (default 600; 300 with --web)."),
    direct: bool = typer.Option(False, "--direct", help="Drive the virtual phone directly instead of through the "
                                                        "local adb + uiautomator2 server."),
    web: bool = typer.Option(False, "--web", help="The built-in web app instead, served on 127.0.0.1 and driven "
                                                  "in the system Chromium through Playwright."),
) -> None:
    """Run appatlas end to end on its built-in demo app and write a result folder with a summary.

    Example: appatlas demo        (Android: a virtual phone behind the local adb + uiautomator2 server)

    Example: appatlas demo --web  (the web app in Chromium; needs `pip install 'appatlas[web]'` and chromium)
    """
    from appatlas.demo import run_demo

    budget = budget if budget is not None else 300 if web else 600
    with Progress(TextColumn("[bold]crawl[/]"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[line]}"), console=console, transient=True) as bar:
        task = bar.add_task("crawl", total=budget, line="")

        def progress(p) -> None:  # noqa: ANN001 - CrawlProgress
            bar.update(task, completed=p.actions, line=f"screens {p.screens}  transitions {p.transitions}")

        try:
            summary = run_demo(out, budget=budget, through_u2=not direct, progress=progress,
                               say=lambda m: console.print(f"[dim]{m}[/]"), web=web)
        except AppatlasError as exc:
            console.print(f"[bold red]{type(exc).__name__}:[/] {exc}")
            raise typer.Exit(2) from None
    console.print((out / "summary.md").read_text())
    console.print(f"[bold green]demo done[/]: {out}/summary.md, {out}/summary.json, {out}/demo.atlas")
    if summary["spec_screens"]["missing"]:
        raise typer.Exit(1)
