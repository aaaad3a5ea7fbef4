"""``appatlas bench compress``: every compression method on one text, one table.

All rows share the same calibration split and evaluation split of the text (the evaluation split is
the tail of the file; calibration windows are sampled from the head). Per row: perplexity on
512-token windows, stored bits per weight of the block linears, size on disk, greedy decode tokens/s
(batch 1, ``threads`` threads, the same decoder loop for every row) and compression time.

The ``packed-int4`` row is the deployment configuration (GPTQ 4-bit in groups of 32, int4 lm_head): its
speed is measured interleaved with fp32 in the same process, and its greedy output is compared with
the dequantized fp32 reference on a fixed prompt.

The second table (``summary.agent_rows``) comes from an ``agent_eval`` hook; :func:`tasks_agent_eval`
runs the tasks benchmark (BENCHMARKS.md §1) with a row's in-memory model as the agent's LLM.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from appatlas.compression.api import DEFAULT_PROMPT, save_report
from appatlas.compression.data import eval_windows, read_text, sample_windows, split_text, tokenize
from appatlas.compression.decode import GreedyDecoder, compare_greedy
from appatlas.compression.evaluate import perplexity
from appatlas.compression.models import load_causal_lm
from appatlas.compression.packed.format import bits_per_weight, dense_bytes, load_compressed, stored_bytes
from appatlas.compression.pipeline import CompressSpec, compress

AgentEval = Callable[[torch.nn.Module, Any, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Row:
    """One benchmark row: a label for ``--rows``, the reported method name and the spec."""

    label: str
    method: str
    spec: CompressSpec | None


def _prune(method: str, pattern: str) -> CompressSpec:
    return CompressSpec(None, None, sparsity=0.5, pattern=pattern, prune_method=method)


ROWS: tuple[Row, ...] = (
    Row("fp32", "fp32", None),
    Row("rtn-w4", "rtn", CompressSpec("rtn", 4)),
    Row("rtn-w3", "rtn", CompressSpec("rtn", 3)),
    Row("rtn-w2", "rtn", CompressSpec("rtn", 2)),
    Row("gptq-w4", "gptq", CompressSpec("gptq", 4)),
    Row("gptq-w3", "gptq", CompressSpec("gptq", 3)),
    Row("appatlas-mp-w3", "appatlas-mp", CompressSpec("appatlas-mp", 3.0)),
    Row("appatlas-mp-w2.5", "appatlas-mp", CompressSpec("appatlas-mp", 2.5)),
    *(Row(f"{m}-{p}", m, _prune(m, p)) for m in ("magnitude", "wanda", "sparsegpt", "appatlas-prune")
      for p in ("unstructured", "2:4")),
    Row("packed-int4", "packed-int4", CompressSpec("gptq", 4, group_size=32, head_bits=4)),
)

AGENT_ROWS = ("fp32", "gptq-w3", "appatlas-mp-w3", "appatlas-mp-w2.5", "appatlas-prune-unstructured",
              "appatlas-prune-2:4", "packed-int4")  # the rows whose model is worth an agent run


def _decode(model, quant, prompt, *, new_tokens: int, repeats: int, compile: bool) -> float:
    """Best-of-``repeats`` tokens/s of the packed path (kernels where the layers allow)."""
    decoder = GreedyDecoder(model, quant=quant, kernels=True, max_len=len(prompt) + new_tokens + 8, compile=compile)
    decoder.generate(prompt, 4)  # warm-up (and compilation)
    return max(decoder.generate(prompt, new_tokens).tok_s for _ in range(repeats))


def _interleaved_speed(decoders: dict[str, GreedyDecoder], prompt, *, new_tokens: int, rounds: int) -> dict[str, float]:
    """Best tokens/s per decoder, alternating them so background load hits all alike."""
    for dec in decoders.values():
        dec.generate(prompt, 4)  # warm-up (and compilation)
    best = dict.fromkeys(decoders, 0.0)
    for _ in range(rounds):
        for name, dec in decoders.items():
            best[name] = max(best[name], dec.generate(prompt, new_tokens).tok_s)
    return best


def _row_record(row: Row, *, bits: float, sparsity: float, pattern: str, ppl: float, bpw: float, size: int,
                tok_s: float, seconds: float) -> dict[str, Any]:
    return {"method": row.method, "bits": bits, "sparsity": round(sparsity, 4), "pattern": pattern, "ppl": ppl,
            "bits_per_weight": bpw, "size_mb": size / 1e6, "decode_tok_s": tok_s, "compress_s": seconds}


def run_compress_bench(
    *,
    model: str = "smollm2-135m",
    text_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    rows: Sequence[str] | None = None,
    eval_fraction: float = 0.3,
    n_samples: int = 16,
    seq_len: int = 512,
    max_eval_windows: int | None = None,
    decode_tokens: int = 64,
    threads: int = 2,
    speed_rounds: int = 5,
    compile: bool = True,
    agent_eval: AgentEval | None = None,
    agent_rows: Sequence[str] = AGENT_ROWS,
    console=None,
) -> dict[str, Any]:
    """Run the benchmark, write the JSON to ``out_path`` and return it.

    ``rows`` selects row labels (see ``ROWS``); ``agent_eval(model, tokenizer, row)`` is an optional hook run on
    the rows labelled ``agent_rows`` (``row`` is the row's record plus its ``label``) whose returned metrics
    (e.g. ``action_accuracy``) go into ``summary.agent_rows``.
    """
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    torch.set_num_threads(threads)
    selected = [r for r in ROWS if rows is None or r.label in rows]
    base, tokenizer = load_causal_lm(model)
    calib_text, eval_text = split_text(read_text(text_path), eval_fraction=eval_fraction)
    calib = sample_windows(tokenize(tokenizer, calib_text), n_samples=n_samples, seq_len=seq_len, seed=0)
    windows = eval_windows(tokenize(tokenizer, eval_text), seq_len=512, max_windows=max_eval_windows)
    prompt = tokenizer(DEFAULT_PROMPT, add_special_tokens=False)["input_ids"]
    fp32_size = dense_bytes(base)
    console.print(f"calibration {tuple(calib.shape)} tokens, evaluation {windows.shape[0]} x 512 tokens")

    records: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    agent_results: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="appatlas-bench-") as tmp:
        for row in selected:
            tick = time.perf_counter()
            if row.spec is None:
                model_, quant, layers, seconds, cpu_s = base, {}, {}, 0.0, 0.0
                bits, sparsity, pattern, bpw, size = 32, 0.0, "unstructured", 32.0, fp32_size
                figures: dict[str, Any] = {}
            else:
                model_ = copy.deepcopy(base)
                report = compress(model_, calib, row.spec)
                seconds, layers, figures, cpu_s = report.seconds, report.layers, report.figures, report.cpu_seconds
                folder = Path(tmp) / row.label
                save_report(model_, tokenizer, report, folder, base_model=model)
                size, bpw = stored_bytes(folder), bits_per_weight(layers, prefix="model.layers.")
                quant = {n: r.quant for n, r in layers.items() if r.quant is not None}
                block_layers = [r for n, r in layers.items() if n.startswith("model.layers.")]
                n_weights = sum(r.weight.numel() for r in block_layers)
                bits = sum(r.avg_bits * r.weight.numel() for r in block_layers) / n_weights
                sparsity = sum(r.sparsity * r.weight.numel() for r in block_layers) / n_weights
                pattern = row.spec.pattern if row.spec.sparsity > 0 else "unstructured"
                if row.label == "packed-int4":  # the deployment path: decode from what is on disk
                    artifact = load_compressed(folder)
                    model_, quant = artifact.model, artifact.quant
            ppl = perplexity(model_, windows)
            # per-row speed eagerly (compiling every row costs minutes); the packed check below compiles
            tok_s = _decode(model_, quant, prompt, new_tokens=decode_tokens, repeats=3, compile=False)
            rec = _row_record(row, bits=bits, sparsity=sparsity, pattern=pattern, ppl=ppl, bpw=bpw, size=size,
                              tok_s=tok_s, seconds=seconds)
            records.append(rec)
            details.append({"label": row.label, "spec": None if row.spec is None else vars(row.spec),
                            "wall_s": time.perf_counter() - tick, "compress_cpu_s": cpu_s,
                            "load_avg_1m": os.getloadavg()[0],
                            "allocation_avg_bits": figures.get("avg_bits"),
                            "kernels": sorted({getattr(op, "kind", "?") for op in _ops(model_, quant)})})
            if agent_eval is not None and row.label in agent_rows:
                agent_results.append({"label": row.label, **agent_eval(model_, tokenizer, {"label": row.label, **rec})})
            console.print(f"{row.label:>28}: ppl {ppl:8.2f}  bpw {bpw:5.2f}  {size / 1e6:7.1f} MB  "
                          f"{tok_s:6.1f} tok/s  {seconds:6.1f} s")
            _write(out_path, _summary(model, text_path, threads, calib, windows, records, details, checks,
                                      agent_results if agent_eval else None, complete=False))
            if row.label == "packed-int4":
                checks.update(_packed_checks(base, model_, quant, prompt, decode_tokens, speed_rounds, records, compile))
            elif row.spec is not None:
                del model_
    checks.update(_done_checks(records, selected, fp32_size))
    result = _summary(model, text_path, threads, calib, windows, records, details, checks,
                      agent_results if agent_eval else None, complete=True)
    _write(out_path, result)

    table = Table(title=f"compression on {Path(text_path).name} ({model})")
    for col in ("method", "bits", "sparsity", "pattern", "ppl", "bits/weight", "size MB", "tok/s", "compress s"):
        table.add_column(col, justify="right")
    for r in records:
        table.add_row(r["method"], f"{r['bits']:g}", f"{r['sparsity']:g}", r["pattern"], f"{r['ppl']:.2f}",
                      f"{r['bits_per_weight']:.2f}", f"{r['size_mb']:.1f}", f"{r['decode_tok_s']:.1f}",
                      f"{r['compress_s']:.1f}")
    console.print(table)
    if agent_results:
        agent = Table(title="the agent on the tasks benchmark with each model")
        for col in ("row", "action accuracy", "goal success", "model decisions", "same choice as fp32"):
            agent.add_column(col, justify="right")
        for a in agent_results:
            same = f"{a['same_choice_as_fp32']}/{a['fp32_questions']}" if "fp32_questions" in a else "–"
            agent.add_row(a["label"], f"{a['action_accuracy']:.1%}", f"{a['goal_success_rate']:.1%}",
                          str(a["model_decisions"]), same)
        console.print(agent)
    return result


def _summary(model, text_path, threads, calib, windows, records, details, checks, agent_rows, *,
             complete: bool) -> dict[str, Any]:
    summary = {"model": model, "text": str(text_path), "threads": threads, "calibration_tokens": int(calib.numel()),
               "eval_windows": int(windows.shape[0]), "complete": complete, "rows": records, "details": details,
               "checks": checks}
    if agent_rows is not None:
        summary["agent_rows"] = agent_rows
    return {"summary": summary}


def _write(out_path, result: dict[str, Any]) -> None:
    """Write the JSON (also after every row, so an interrupted run keeps what it measured)."""
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    Path(out_path).write_text(json.dumps(result, indent=1))


def _ops(model, quant) -> list:
    try:
        dec = GreedyDecoder(model, quant=quant, kernels=True, max_len=8)
    except Exception:  # noqa: BLE001 - only used for the "kernels" detail column
        return []
    return dec.ops()


def _packed_checks(base, packed, quant, prompt, new_tokens, rounds, records, compile) -> dict[str, Any]:
    """Interleaved fp32 vs packed speed, and greedy output of the kernels vs the dequantized reference."""
    size = len(prompt) + new_tokens + 8
    decoders = {
        "fp32-eager": GreedyDecoder(base, kernels=False, max_len=size),
        "packed-eager": GreedyDecoder(packed, quant=quant, kernels=True, max_len=size),
    }
    if compile:
        decoders["fp32-compiled"] = GreedyDecoder(base, kernels=False, max_len=size, compile=True)
        decoders["packed-compiled"] = GreedyDecoder(packed, quant=quant, kernels=True, max_len=size, compile=True)
        if decoders["packed-compiled"].qkv.kind == "int4-vnni":  # what our kernel adds over torch's
            decoders["packed-torch-int4-compiled"] = GreedyDecoder(packed, quant=quant, kernels=True, max_len=size,
                                                                   compile=True, vnni=False)
    speed = _interleaved_speed(decoders, prompt, new_tokens=new_tokens, rounds=rounds)
    fp32 = max(v for k, v in speed.items() if k.startswith("fp32"))  # the faster baseline, to be conservative
    fast = max(speed["packed-eager"], speed.get("packed-compiled", 0.0))
    for rec in records:  # both rows report the interleaved numbers
        if rec["method"] == "fp32":
            rec["decode_tok_s"] = fp32
        if rec["method"] == "packed-int4":
            rec["decode_tok_s"] = fast
    kernel = decoders.get("packed-compiled", decoders["packed-eager"])  # the timed one (free-running check)
    fp32_ref = GreedyDecoder(packed, quant=quant, kernels=False, max_len=size)
    emulated = GreedyDecoder(packed, quant=quant, kernels=True, emulate=True, max_len=size)
    return {
        "packed_speedup": fast / max(fp32, 1e-9),
        "decode_tok_s": speed,
        "greedy_tokens": new_tokens,
        "greedy_vs_dequantized_fp32": compare_greedy(fp32_ref, kernel, prompt, new_tokens),
        "greedy_vs_emulated_kernels": compare_greedy(emulated, kernel, prompt, new_tokens),
    }


def _done_checks(records: list[dict[str, Any]], rows: Sequence[Row], fp32_size: int) -> dict[str, Any]:
    """The issue's acceptance figures, computed from whatever rows ran."""
    by = {r.label: rec for r, rec in zip(rows, records, strict=True)}
    out: dict[str, Any] = {}

    def ppl(label: str) -> float | None:
        return by[label]["ppl"] if label in by else None

    if all(x in by for x in ("fp32", "gptq-w3", "appatlas-mp-w3")):
        out["mp3_le_gptq3"] = ppl("appatlas-mp-w3") <= ppl("gptq-w3")
        out["mp3_over_fp32"] = ppl("appatlas-mp-w3") / ppl("fp32")
        out["mp3_size_fraction_of_fp32"] = by["appatlas-mp-w3"]["size_mb"] * 1e6 / fp32_size
    if all(x in by for x in ("rtn-w3", "appatlas-mp-w2.5")):
        out["mp25_lt_rtn3"] = ppl("appatlas-mp-w2.5") < ppl("rtn-w3")
    for pattern in ("unstructured", "2:4"):
        labels = [f"wanda-{pattern}", f"sparsegpt-{pattern}", f"appatlas-prune-{pattern}"]
        if all(x in by for x in labels):
            out[f"prune_{pattern}_le_best_baseline"] = ppl(labels[2]) <= min(ppl(labels[0]), ppl(labels[1]))
    out["max_compress_s"] = max((rec["compress_s"] for rec in records), default=0.0)
    return out


class _RecordingLM:
    """An LLM that keeps every question it answered: ``(context, options, chosen index)``."""

    def __init__(self, llm: Any):
        self.llm, self.name = llm, llm.name
        self.calls: list[tuple[str, tuple[str, ...], int]] = []

    def choose(self, context: str, options: Sequence[str]) -> tuple[int, list[float]]:
        index, scores = self.llm.choose(context, options)
        self.calls.append((context, tuple(options), index))
        return index, scores

    def chat(self, messages, **kwargs) -> str:
        return self.llm.chat(messages, **kwargs)


def tasks_agent_eval(data: str | os.PathLike[str], *, apps: Sequence[str] = ()) -> AgentEval:
    """An ``agent_eval`` hook: the tasks benchmark with the row's model as the agent's LLM.

    The recordings under ``data`` (DroidTask app folders, optionally only ``apps``) are imported once. Per
    row: step-wise ``action_accuracy``, ``goal_success_rate`` of the free runs, and ``model_decisions``
    (how often the agent asked the model). The agent asks the model rarely, so the questions the fp32
    row's model answered are put again to each compressed row's model: ``same_choice_as_fp32`` of
    ``fp32_questions``. The fp32 row must run first (it does in ``ROWS``).
    """
    from appatlas.agent.llm_local import LocalLM
    from appatlas.bench.folders import app_folders
    from appatlas.bench.tasks import prepare_app, score_app

    folders = app_folders(data, apps)
    prepared = []
    for folder in folders:  # as run_tasks_bench does with atlas="import"
        full, replay, tasks = prepare_app(folder)
        prepared.append((folder.name, tasks, replay, full))
    reference: list[tuple[str, tuple[str, ...], int]] = []

    def hook(model: torch.nn.Module, tokenizer: Any, row: dict[str, Any]) -> dict[str, Any]:
        llm = LocalLM(model, tokenizer, name=row["label"])
        recording = _RecordingLM(llm)
        tick = time.perf_counter()
        evidence: list[dict[str, Any]] = []
        for app, tasks, replay, full in prepared:
            evidence += score_app(app, tasks, replay=replay, full=full, base=full, llm=recording)[0]
        steps = [s for r in evidence for s in r["steps"]]
        out: dict[str, Any] = {
            "action_accuracy": sum(s["correct"] for s in steps) / max(len(steps), 1),  # as bench tasks' summary
            "goal_success_rate": sum(r["run"]["success"] for r in evidence) / max(len(evidence), 1),
            "steps": len(steps), "tasks": len(evidence), "model_decisions": len(recording.calls),
            "seconds": time.perf_counter() - tick,
        }
        if row["label"] == "fp32":
            reference[:] = recording.calls
        elif reference:
            out["fp32_questions"] = len(reference)
            out["same_choice_as_fp32"] = sum(llm.choose(c, list(o))[0] == i for c, o, i in reference)
        return out

    return hook
