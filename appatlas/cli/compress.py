"""CLI commands of the compression module: ``compress``, ``eval-lm``, ``export gguf`` and ``bench compress``.

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

KERNEL_HELP = ("int4 kernel: auto (the best this CPU supports: avx512vnni > avxvnni > avx2 > torch's), or force one "
               "of avx512vnni, avxvnni, avx2, torch (same as APPATLAS_INT4_KERNEL).")


def _use_kernel(kernel: str | None) -> None:
    """Apply --kernel (through the environment, which every decoder reads) and print the line naming it."""
    import os

    from appatlas.compression.errors import KernelError
    from appatlas.compression.packed.vnni import ENV, describe_kernel, select_kernel

    if kernel:
        os.environ[ENV] = kernel
    try:
        select_kernel()
    except KernelError as exc:
        console.print(f"[red]KernelError: {exc}")
        raise typer.Exit(1) from exc
    console.print(describe_kernel())


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
    kernel: Annotated[str | None, typer.Option("--kernel", help=KERNEL_HELP)] = None,
) -> None:
    """Measure perplexity (512-token windows) and greedy decode tokens/s of a model.

    Example: appatlas eval-lm smol-w3 --text book.txt
    """
    from appatlas.compression.api import evaluate_lm
    from appatlas.compression.errors import CompressionError

    _use_kernel(kernel)
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
    kernel: Annotated[str | None, typer.Option("--kernel", help=KERNEL_HELP)] = None,
    threads: Annotated[int, typer.Option("--threads", help="CPU threads for every measurement.")] = 2,
    decision: Annotated[bool, typer.Option("--decision/--no-decision",
                                           help="Prefill tok/s and ms per decision for fp32, bf16, int8 and packed "
                                                "int4 (with the packed-int4 row).")] = True,
    gguf: Annotated[bool, typer.Option("--gguf/--no-gguf", help="GGUF exports of the packed and mixed-precision "
                                       "rows and uniform Q4_K/Q3_K: ppl vs size.")] = True,
) -> None:
    """Benchmark every compression method on one text: ppl, bits/weight, size, decode tok/s, time.

    With --tasks-data a second table gives the agent's action_accuracy with the fp32 and compressed models.
    Example: appatlas bench compress --model smollm2-135m --text botchan.txt --out bench.json
    """
    from appatlas.bench.compress import AGENT_ROWS, run_compress_bench, tasks_agent_eval

    _use_kernel(kernel)
    agent_eval = None
    if tasks_data is not None:
        try:
            agent_eval = tasks_agent_eval(tasks_data, apps=tasks_apps.split(",") if tasks_apps else ())
        except FileNotFoundError as exc:
            raise typer.BadParameter(str(exc), param_hint="--tasks-data") from exc
    summary = run_compress_bench(model=model, text_path=text, out_path=out, rows=rows.split(",") if rows else None,
                                 max_eval_windows=max_eval_windows, compile=compile, agent_eval=agent_eval,
                                 agent_rows=tasks_rows.split(",") if tasks_rows else AGENT_ROWS, console=console,
                                 decision=decision, gguf=gguf, threads=threads)
    console.print(f"wrote {out} ({len(summary['summary']['rows'])} rows)")
    console.print_json(json.dumps(summary["summary"].get("checks", {})))


def export_gguf_cmd(
    model_dir: Annotated[Path, typer.Argument(help="A folder from `appatlas compress` (or a Hugging Face Llama folder).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The .gguf file to write.")],
    types: Annotated[str, typer.Option("--types", help="exact: Q4_1/Q8_0 where they hold the codes exactly; "
                                       "allocator: layers with <=3.5 allocated bits as Q3_K/Q2_K; Q4_K or Q3_K: "
                                       "uniform llama.cpp recipes.")] = "exact",
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Read the file back with the gguf package "
                                         "and compare logits with the model folder's.")] = True,
) -> None:
    """Write a compressed model as GGUF for llama.cpp, tensor by tensor in the type that holds it.

    Example: appatlas export gguf smol-int4 --out smol-int4.gguf
    """
    from appatlas.compression.errors import CompressionError
    from appatlas.compression.export_gguf import export_gguf, verify_gguf

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("writing tensors", total=None)
            report = export_gguf(model_dir, out, types=types,
                                 on_tensor=lambda name, t: progress.update(task, advance=1, description=f"{name} {t}"))
        console.print(f"wrote {out}  {report.bytes / 1e6:.1f} MB  types {report.type_counts()}")
        if verify:
            import torch

            from appatlas.compression.models import load_causal_lm
            from appatlas.compression.packed.format import MANIFEST, load_compressed

            model = load_compressed(model_dir).model if (model_dir / MANIFEST).is_file() else load_causal_lm(model_dir)[0]
            ids = torch.randint(0, model.config.vocab_size, (1, 64), generator=torch.Generator().manual_seed(0))
            check = verify_gguf(out, model, ids)
            console.print(f"read back with gguf: max |logit difference| {check['max_abs_logit_diff']:.3g} "
                          f"(largest logit {check['reference_logit_max']:.3g})")
    except CompressionError as exc:
        console.print(f"[red]{type(exc).__name__}: {exc}")
        raise typer.Exit(1) from exc


def _export_group(app: typer.Typer) -> typer.Typer:
    """The ``export`` group (``rag`` adds it for test cases); created here if it is missing."""
    for group in app.registered_groups:
        if group.name == "export" and group.typer_instance is not None:
            return group.typer_instance
    exporter = typer.Typer(no_args_is_help=True, help="Export to formats that run without appatlas.")
    app.add_typer(exporter, name="export")
    return exporter


def _with_kernel_line(doc: str | None) -> str:
    """Help text that names the int4 kernel `auto` picks on this CPU (read from its flags; nothing is built)."""
    from appatlas.compression.packed.vnni import ENV, cpu_kernels

    ours = cpu_kernels()
    line = (f"On this CPU the int4 kernel is appatlas {ours[0]} (auto); " if ours else
            "On this CPU torch's int4 kernel runs (no AVX2); ")
    return f"{doc or ''}\n\n{line}force one with --kernel or {ENV}."


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add ``compress``, ``eval-lm`` and ``export gguf`` to ``app`` and ``compress`` to ``bench``."""
    app.command("compress", help=compress_cmd.__doc__)(compress_cmd)
    app.command("eval-lm", help=_with_kernel_line(eval_lm_cmd.__doc__))(eval_lm_cmd)
    _export_group(app).command("gguf", help=export_gguf_cmd.__doc__)(export_gguf_cmd)
    bench.command("compress", help=_with_kernel_line(bench_compress_cmd.__doc__))(bench_compress_cmd)
