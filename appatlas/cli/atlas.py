"""`appatlas import …` and `appatlas info`: bring recordings in, look at what an atlas holds."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from appatlas.errors import AppatlasError

console = Console()
importer = typer.Typer(no_args_is_help=True, help="Import recordings made by other tools into an atlas.",
                       epilog="Example: appatlas import droidbot ../shared/data/droidtask/notes --out notes.atlas")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.add_typer(importer, name="import")
    app.command("info")(info)


def fail(exc: AppatlasError) -> None:
    """Print an appatlas error the way a person wants to read it, and exit 2."""
    console.print(f"[bold red]{type(exc).__name__}:[/] {exc}")
    raise typer.Exit(2)


@importer.command("droidbot")
def import_droidbot_cmd(
    folder: Path = typer.Argument(..., help="A DroidBot output folder (states/, events/, optional utg.js, task*.yaml)."),
    out: Path = typer.Option(..., "--out", "-o", help="The atlas folder to create (must not exist yet)."),
) -> None:
    """Import a DroidBot output folder: states become screens, events transitions, task*.yaml recorded tasks.

    Broken files (empty or malformed JSON) are skipped and named; the rest is imported.

    Example: appatlas import droidbot ../shared/data/droidtask/notes --out notes.atlas
    """
    from appatlas.graph.droidbot import import_droidbot

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console,
                  transient=True) as bar:
        tasks: dict[str, object] = {}

        def progress(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(f"reading {what}", total=total)
            bar.update(tasks[what], completed=done)  # type: ignore[arg-type]

        try:
            report = import_droidbot(folder, out, progress=progress)
        except AppatlasError as exc:
            fail(exc)
    for name, why in report.skipped:
        console.print(f"[yellow]skipped[/] {name}: {why}")
    for why, n in sorted(report.ignored.items()):
        console.print(f"[dim]not imported: {n} {why}[/]")
    _print_counts(f"imported {folder} → {out}", report.counts)


def info(atlas: Path = typer.Argument(..., help="An atlas folder.")) -> None:
    """Show what an atlas holds: screens, states, transitions, recorded tasks, screenshots, findings.

    Example: appatlas info notes.atlas
    """
    from appatlas.graph.atlas import Atlas

    try:
        with Atlas.open(atlas) as a:
            counts, app, platform = a.counts(), a.get_meta("package") or a.app, a.platform
    except AppatlasError as exc:
        fail(exc)
    _print_counts(f"{atlas} ({app}, {platform})", counts)


def _print_counts(title: str, counts: dict[str, int]) -> None:
    console.print(f"[bold]{title}[/]")
    table = Table(show_header=False)
    for key in ("screens", "states", "transitions", "observations", "tasks", "screenshots", "findings"):
        if key in counts:
            table.add_row(key, str(counts[key]))
    console.print(table)
