"""`appatlas bench faults`: the fault matrix."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def register(app: typer.Typer, bench: typer.Typer) -> None:
    bench.command("faults")(bench_faults)


def bench_faults(out: Path = typer.Option(Path("bench-faults.json"), "--out", help="Where to write the JSON.")) -> None:
    """Inject each fault into a real crawl and a real campaign through the local device server.

    Prints, per fault, whether the run survived, what it lost (must be 0) and how long recovery took.
    Crawl: kill -9 then --resume, UI server killed, connection dropped, device removed, slow and empty
    dumps, an app crash loop, a full disk, a corrupt atlas at start. Campaign (two phones): kill -9 then
    resume, device removed, UI server killed, slow and empty dumps, a crash loop, the LLM endpoint down
    or timing out. Takes about a minute.

    Example: appatlas bench faults --out faults.json
    """
    from appatlas.bench.faults import run_faults_bench

    with console.status("injecting faults…") as status:
        doc = run_faults_bench(out=out, progress=lambda name: status.update(f"fault: {name}…"))
    table = Table(title=f"fault matrix (JSON: {out})")
    for col in ("fault", "run", "survived", "lost", "recovery", "what happened"):
        table.add_column(col)
    for r in doc["rows"]:
        rec = "—" if r["recover_s"] is None else f"{r['recover_s']:.2f} s"
        table.add_row(r["fault"], r["target"], "yes" if r["survived"] else "[red]no[/]", str(r["lost"]), rec, r["note"])
    console.print(table)
    if doc["summary"]["survived"] < doc["summary"]["faults"] or doc["summary"]["lost"]:
        raise typer.Exit(1)
