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


COMMAND_MODULES = ("demo", "atlas", "crawl", "devices", "rag", "agent", "faults", "compress", "bugs", "vision",
                   "farm", "train")


def _register_all(app: typer.Typer, bench: typer.Typer) -> None:
    """Each command module adds its commands. One that cannot be imported is an error, not a command
    that quietly disappears (their optional dependencies are imported inside the commands)."""
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"appatlas.cli.{name}").register(app, bench)


_register_all(app, bench)


def main() -> None:
    app()
