"""`appatlas bench bugs`: seeded functional bugs (mutants) of the demo app, found by planned tests."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from appatlas.errors import AppatlasError

console = Console()


def register(app: typer.Typer, bench: typer.Typer) -> None:
    bench.command("bugs")(bench_bugs)


def bench_bugs(
    out: Path = typer.Option(Path("bench-bugs.json"), "--out", help="Where to write the JSON result."),
    mutants: Path = typer.Option(None, "--mutants", help="A folder of spec variants (*.yaml) of the demo app to "
                                                         "use instead of the built-in mutants."),
    budget: int = typer.Option(600, "--budget", help="Actions of the crawl of the correct app."),
    limit: int = typer.Option(0, "--limit", help="Only the first N mutants (0: all)."),
) -> None:
    """Plan a suite on the correct demo app, run it on each mutant; report kill rate, false alarms and a
    crash-only baseline with the same action budget.

    Example: appatlas bench bugs --out bugs.json
    Example: appatlas bench bugs --mutants my-mutants/ --out bugs.json
    """
    from appatlas.bench.bugs import run_bugs_bench

    try:
        with console.status("bench bugs…") as status:
            doc = run_bugs_bench(out, mutants_dir=mutants, budget=budget, limit=limit,
                                 say=lambda m: status.update(m))
    except (AppatlasError, OSError) as exc:
        console.print(f"[bold red]{type(exc).__name__}:[/] {exc}")
        raise typer.Exit(2) from None
    table = Table(title=f"bench bugs (JSON: {out})")
    for col in ("mutant", "killed", "baseline", "evidence"):
        table.add_column(col)
    for r in doc["mutants"]:
        table.add_row(r["mutant"], "yes" if r["killed"] else "no", "yes" if r["baseline_killed"] else "no",
                      (r["by"][0]["reason"][:90] if r["by"] else ""))
    console.print(table)
    s = doc["summary"]
    console.print(f"kill rate {s['kill_rate']:.2f} ({s['killed']}/{s['mutants']}), crash-only baseline "
                  f"{s['baseline_kill_rate']:.2f}, false alarms {s['false_alarms']}, suite {s['suite']} cases, "
                  f"{s['seconds']} s")
