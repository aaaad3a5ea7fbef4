"""The `appatlas` command. Thin: each subcommand parses arguments, calls one function, prints."""

from __future__ import annotations

import typer

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Explore an app into an atlas of its screens, plan tests from intents, and run them.",
    epilog="Examples:  appatlas demo  ·  appatlas crawl --app demo --out demo.atlas  ·  "
           "appatlas import droidbot ../shared/data/droidtask/notes --out notes.atlas  ·  appatlas info notes.atlas",
)
bench = typer.Typer(no_args_is_help=True, help="Reproducible benchmarks; each prints a table and writes JSON.",
                    epilog="Example: appatlas bench crawl --data ../shared/data/droidtask --out crawl.json")
app.add_typer(bench, name="bench")


def _register_all() -> None:
    import importlib

    for name in ("demo", "atlas", "crawl", "devices", "rag", "agent", "faults", "compress"):
        try:
            module = importlib.import_module(f"appatlas.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"appatlas.cli.{name}":
                raise
            continue
        module.register(app, bench)


_register_all()


def main() -> None:
    app()
