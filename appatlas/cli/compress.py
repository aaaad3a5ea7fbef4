"""CLI commands of the compression module: ``compress``, ``eval-lm`` and ``bench compress``.

Thin layer: parse options, call one function, print. ``register`` wires them into the main app.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()


def compress_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="'smollm2-135m' or a Hugging Face folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the compressed model to.")],
    calib: Annotated[Path | None, typer.Option("--calib", help="Calibration text file (UTF-8).")] = None,
    bits: Annotated[float | None, typer.Option("--bits", help="2/3/4/8, or an average for appatlas-mp.")] = None,
    method: Annotated[str, typer.Option("--method", help="rtn | gptq | appatlas-mp")] = "gptq",
    group_size: Annotated[int, typer.Option("--group-size", help="Columns per quantization group.")] = 32,
    sparsity: Annotated[float, typer.Option("--sparsity", help="Fraction of weights to prune (0 = none).")] = 0.0,
    pattern: Annotated[str, typer.Option("--pattern", help="unstructured | 2:4")] = "unstructured",
    prune_method: Annotated[str, typer.Option("--prune-method", help="magnitude | wanda | sparsegpt | appatlas-prune")] = "sparsegpt",
    head_bits: Annotated[int | None, typer.Option(
        "--head-bits", help="Also quantize lm_head (faster decode): 8 per channel, 4 in --group-size groups.")] = None,
    samples: Annotated[int, typer.Option("--samples", help="Calibration windows.")] = 32,
    seq_len: Annotated[int, typer.Option("--seq-len", help="Tokens per calibration window.")] = 512,
) -> None:
    """Quantize and/or prune a causal LM and save it as safetensors + JSON manifest.

    Example: appatlas compress --model smollm2-135m --bits 3 --method gptq --calib book.txt --out smol-w3
    """
    from appatlas.compression.api import compress_to_folder
    from appatlas.compression.errors import CompressionError
    from appatlas.compression.pipeline import CompressSpec

    if bits is None and sparsity <= 0:
        raise typer.BadParameter("pass --bits and/or --sparsity")
    spec = CompressSpec(method=method, bits=bits, group_size=group_size, sparsity=sparsity, pattern=pattern,
                        prune_method=prune_method, head_bits=head_bits)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("loading model", total=None)

        def on_layer(name: str, result) -> None:
            progress.update(task, advance=1, description=f"{name} ({result.bits}b, err {result.error:.3g})")

        try:
            manifest = compress_to_folder(
                model, out, spec, calib_path=calib, n_samples=samples, seq_len=seq_len,
                on_start=lambda total: progress.update(task, total=total, description="calibrating"),
                on_layer=on_layer,
            )
        except CompressionError as exc:
            console.print(f"[red]{type(exc).__name__}: {exc}")
            raise typer.Exit(1) from exc
    console.print(f"wrote {out}  bits/weight {manifest['bits_per_weight']:.2f}  in {manifest['compress_s']:.0f}s")


def eval_lm_cmd(
    model: Annotated[str, typer.Argument(help="Compressed folder, Hugging Face folder or 'smollm2-135m'.")],
    text: Annotated[Path, typer.Option("--text", help="Evaluation text file (UTF-8).")],
    max_windows: Annotated[int | None, typer.Option("--max-windows", help="Limit the 512-token windows.")] = None,
    decode_tokens: Annotated[int, typer.Option("--decode-tokens", help="Greedy tokens for the speed test.")] = 64,
    threads: Annotated[int, typer.Option("--threads", help="CPU threads.")] = 2,
) -> None:
    """Measure perplexity (512-token windows) and greedy decode tokens/s of a model.

    Example: appatlas eval-lm smol-w3 --text book.txt
    """
    from appatlas.compression.api import evaluate_lm
    from appatlas.compression.errors import CompressionError

    try:
        result = evaluate_lm(model, text, max_windows=max_windows, decode_tokens=decode_tokens, threads=threads)
    except CompressionError as exc:
        console.print(f"[red]{type(exc).__name__}: {exc}")
        raise typer.Exit(1) from exc
    table = Table("metric", "value")
    for key, value in result.items():
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    console.print(table)


def bench_compress_cmd(
    model: Annotated[str, typer.Option("--model", help="'smollm2-135m' or a Hugging Face folder.")] = "smollm2-135m",
    text: Annotated[Path, typer.Option("--text", help="Text split into calibration and evaluation parts.")] = Path(
        "/work/shared/data/text/botchan.txt"),
    out: Annotated[Path, typer.Option("--out", help="JSON file for the results.")] = Path("bench-compress.json"),
    rows: Annotated[str | None, typer.Option("--rows", help="Comma-separated row labels to run (default all).")] = None,
    max_eval_windows: Annotated[int | None, typer.Option("--max-eval-windows",
                                                         help="Evaluate on the first N 512-token windows only.")] = None,
    compile: Annotated[bool, typer.Option("--compile/--no-compile",
                                          help="torch.compile the decoders of the packed speed check.")] = True,
    tasks_data: Annotated[Path | None, typer.Option(
        "--tasks-data", help="DroidTask app folders: also run the tasks benchmark with each --tasks-rows model.")] = None,
    tasks_apps: Annotated[str | None, typer.Option("--tasks-apps", help="Only these apps (comma-separated).")] = None,
    tasks_rows: Annotated[str | None, typer.Option(
        "--tasks-rows", help="Rows whose model runs the tasks benchmark (default: fp32, gptq-w3, appatlas-mp, "
                             "appatlas-prune, packed-int4).")] = None,
) -> None:
    """Benchmark every compression method on one text: ppl, bits/weight, size, decode tok/s, time.

    With --tasks-data a second table gives the agent's action_accuracy with the fp32 and compressed models.
    Example: appatlas bench compress --model smollm2-135m --text botchan.txt --out bench.json
    """
    from appatlas.bench.compress import AGENT_ROWS, run_compress_bench, tasks_agent_eval

    agent_eval = None
    if tasks_data is not None:
        try:
            agent_eval = tasks_agent_eval(tasks_data, apps=tasks_apps.split(",") if tasks_apps else ())
        except FileNotFoundError as exc:
            raise typer.BadParameter(str(exc), param_hint="--tasks-data") from exc
    summary = run_compress_bench(model=model, text_path=text, out_path=out, rows=rows.split(",") if rows else None,
                                 max_eval_windows=max_eval_windows, compile=compile, agent_eval=agent_eval,
                                 agent_rows=tasks_rows.split(",") if tasks_rows else AGENT_ROWS, console=console)
    console.print(f"wrote {out} ({len(summary['summary']['rows'])} rows)")
    console.print_json(json.dumps(summary["summary"].get("checks", {})))


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add ``compress`` and ``eval-lm`` to ``app`` and ``compress`` to ``bench``."""
    app.command("compress", help=compress_cmd.__doc__)(compress_cmd)
    app.command("eval-lm", help=eval_lm_cmd.__doc__)(eval_lm_cmd)
    bench.command("compress", help=bench_compress_cmd.__doc__)(bench_compress_cmd)
