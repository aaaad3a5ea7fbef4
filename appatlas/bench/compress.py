"""``appatlas bench compress``: every compression method on one text, one table.

All rows share the same calibration split and evaluation split of the text (the evaluation split is
the tail of the file; calibration windows are sampled from the head). Per row: perplexity on
512-token windows, stored bits per weight of the block linears, size on disk, greedy decode tokens/s
(batch 1, ``threads`` threads, the same decoder loop for every row) and compression time.

The ``packed-int4`` row is the deployment configuration (GPTQ 4-bit in groups of 32, int4 lm_head): its
speed is measured interleaved with fp32 in the same process, and its greedy output is compared with
the dequantized fp32 reference on a fixed prompt.

With the ``packed-int4`` row also: its perplexity measured through the kernels (``checks.packed_ppl_kernel``);
the agent's workload (``decision_ms``: a 384-token prompt then 6 options of ~8 tokens sharing its cache;
``prefill_tok_s`` at 256 and 512 tokens) for fp32, bf16, int8 and packed int4 in the same decoder loop, with
``decision_floor`` (the smallest packed/fp32 ratio a kernel could reach on this CPU: ``packed/ceiling.py``); and
(``gguf_rows``) GGUF exports — exact and allocator type mixes of the packed and mixed-precision rows, uniform
Q4_K/Q3_K of the fp32 model — read back with the ``gguf`` package: perplexity against file size.
``summary.kernel`` names the int4 kernel that ran.

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
from appatlas.compression.evaluate import kernel_perplexity, perplexity
from appatlas.compression.models import load_causal_lm, resolve_model_path
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
    decision: bool = True,
    gguf: bool = True,
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
    extra: dict[str, Any] = {"kernel": _kernel_info()}
    console.print(extra["kernel"]["line"])
    eval_ids = windows.reshape(-1).tolist()
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
                                      agent_results if agent_eval else None, complete=False, extra=extra))
            if row.label == "packed-int4":
                checks.update(_packed_checks(base, model_, quant, prompt, decode_tokens, speed_rounds, records, compile))
                checks["packed_ppl_kernel"] = _kernel_ppl(model_, quant, windows, ppl)
                console.print(f"packed-int4 ppl through the kernels {checks['packed_ppl_kernel']['kernel']:.2f} "
                              f"(dequantized {ppl:.2f})")
                if decision:
                    extra.update(_decision_bench(base, model_, quant, eval_ids, rounds=speed_rounds, console=console))
                _write(out_path, _summary(model, text_path, threads, calib, windows, records, details, checks,
                                          agent_results if agent_eval else None, complete=False, extra=extra))
            elif row.spec is not None:
                del model_
        if gguf:
            sources = {r.label: Path(tmp) / r.label for r in selected if r.label in GGUF_SOURCES}
            extra["gguf_rows"] = _gguf_rows(model, sources, {r.label: rec["ppl"] for r, rec in zip(selected, records,
                                                                                                  strict=True)},
                                            windows, Path(out_path).with_suffix(".gguf.d"), console=console)
    checks.update(_done_checks(records, selected, fp32_size))
    for key in ("decision_ms", "prefill_tok_s"):
        if key in extra and "packed-int4" in extra[key] and "fp32" in extra[key]:
            if key == "decision_ms":
                checks["decision_packed_over_fp32"] = extra[key]["packed-int4"] / extra[key]["fp32"]
    result = _summary(model, text_path, threads, calib, windows, records, details, checks,
                      agent_results if agent_eval else None, complete=True, extra=extra)
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
             complete: bool, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    summary = {"model": model, "text": str(text_path), "threads": threads, "calibration_tokens": int(calib.numel()),
               "eval_windows": int(windows.shape[0]), "complete": complete, "rows": records, "details": details,
               "checks": checks, **(extra or {})}
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
        if decoders["packed-compiled"].qkv.kind != "int4":  # what our kernel adds over torch's
            decoders["packed-torch-int4-compiled"] = GreedyDecoder(packed, quant=quant, kernels=True, max_len=size,
                                                                   compile=True, int4_kernel="torch")
    speed = _interleaved_speed(decoders, prompt, new_tokens=new_tokens, rounds=rounds)
    fp32 = max(v for k, v in speed.items() if k.startswith("fp32"))  # the faster baseline, to be conservative
    fast = max(speed["packed-eager"], speed.get("packed-compiled", 0.0))
    for rec in records:  # both rows report the interleaved numbers
        if rec["method"] == "fp32":
            rec["decode_tok_s"] = fp32
        if rec["method"] == "packed-int4":
            rec["decode_tok_s"] = fast
    kernel = decoders.get("packed-compiled", decoders["packed-eager"])  # the timed one (free-running check)
    kinds = {name: dec.qkv.kind for name, dec in decoders.items()}
    fp32_ref = GreedyDecoder(packed, quant=quant, kernels=False, max_len=size)
    emulated = GreedyDecoder(packed, quant=quant, kernels=True, emulate=True, max_len=size)
    return {
        "packed_speedup": fast / max(fp32, 1e-9),
        "decode_tok_s": speed,
        "decoder_kernels": kinds,
        "load_avg_1m": os.getloadavg()[0],
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


GGUF_SOURCES = ("packed-int4", "appatlas-mp-w3", "appatlas-mp-w2.5")  # rows exported to GGUF (gguf_rows)


def _kernel_info() -> dict[str, Any]:
    from appatlas.compression.packed.vnni import ENV, cpu_kernels, describe_kernel, select_kernel

    return {"name": select_kernel(), "line": describe_kernel(), "cpu_supports": list(cpu_kernels()),
            "forced": os.environ.get(ENV) or None,
            # an AVX2 machine emulated on a bigger one: the libraries' own ISA caps (see docs/compression.md)
            "library_isa_caps": {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA",
                                                            "MKL_ENABLE_INSTRUCTIONS") if k in os.environ}}


def _kernel_ppl(model, quant, windows, dequantized: float) -> dict[str, Any]:
    """The packed row's perplexity through the same kernels (int8 activations, int4 head) that decode."""
    dec = GreedyDecoder(model, quant=quant, kernels=True, max_len=windows.shape[1])
    tick = time.perf_counter()
    through = kernel_perplexity(dec, windows)
    return {"kernel": through, "dequantized": dequantized, "rel_diff": through / dequantized - 1,
            "within_1pct": abs(through / dequantized - 1) <= 0.01, "kernel_kind": dec.qkv.kind,
            "head_kind": dec.head.kind, "seconds": time.perf_counter() - tick}


def _best_s(fn, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        tick = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - tick)
    return best


def _decision_bench(base, packed, quant, tokens: list[int], *, rounds: int, console, prefill=(256, 512),
                    prompt_len: int = 384, option_lens=(6, 7, 8, 8, 9, 10)) -> dict[str, Any]:
    """The agent's workload per model: prefill tok/s, and ms per decision (prompt + 6 options sharing its cache).

    fp32, bf16 (dense matmuls in bf16), int8 (every linear and the head 8-bit per channel, torch's int8 kernel)
    and packed int4 (the packed row: our kernels) run in the same decoder loop, interleaved, best of ``rounds``.
    """
    from appatlas.compression.pipeline import CompressSpec, compress

    need = max(max(prefill), prompt_len + sum(option_lens))
    if len(tokens) < need + 64:
        raise ValueError(f"the evaluation text has {len(tokens)} tokens; the decision benchmark needs {need + 64}")
    int8_model = copy.deepcopy(base)
    layers = compress(int8_model, None, CompressSpec("rtn", 8, group_size=-1, head_bits=8)).layers
    int8_quant = {n: r.quant for n, r in layers.items() if r.quant is not None}
    size = need + 8
    decoders = {
        "fp32": GreedyDecoder(base, kernels=False, max_len=size),
        "bf16": GreedyDecoder(base, kernels=False, max_len=size, dense_dtype=torch.bfloat16),
        "int8": GreedyDecoder(int8_model, quant=int8_quant, kernels=True, max_len=size),
        "packed-int4": GreedyDecoder(packed, quant=quant, kernels=True, max_len=size),
    }
    prompt = tokens[:prompt_len]
    options, start = [], prompt_len + 16
    for n in option_lens:  # continuations from further in the text: plausible, different options
        options.append(tokens[start : start + n])
        start += n + 5
    prefill_tok_s: dict[str, dict[str, float]] = {name: {} for name in decoders}
    decision_ms: dict[str, float] = {}
    scores: dict[str, list[float]] = {}
    for name, dec in decoders.items():  # warm-up
        scores[name] = dec.score_options(prompt, options)
    for n in prefill:
        ids = torch.tensor(tokens[:n])
        for name, dec in decoders.items():
            prefill_tok_s[name][str(n)] = n / _best_s(lambda dec=dec, ids=ids: dec._prefill(ids, 0), rounds)
    for name, dec in decoders.items():
        decision_ms[name] = 1e3 * _best_s(lambda dec=dec: dec.score_options(prompt, options), rounds)
        console.print(f"{name:>12}: decision {decision_ms[name]:7.1f} ms  prefill "
                      + "  ".join(f"{k}: {v:6.0f} tok/s" for k, v in prefill_tok_s[name].items()))
    ref = scores["fp32"]
    best = max(range(len(ref)), key=ref.__getitem__)
    floor = _decision_floor(base, decoders["fp32"], prompt, options, decision_ms["fp32"] / 1e3,
                            threads=torch.get_num_threads(), packed_s=decision_ms["packed-int4"] / 1e3)
    console.print(floor["line"])
    return {
        "decision_floor": floor,
        "decision_ms": decision_ms,
        "prefill_tok_s": prefill_tok_s,
        "decision_setup": {"prompt_tokens": prompt_len, "option_tokens": list(option_lens), "rounds": rounds,
                           "load_avg_1m": os.getloadavg()[0],
                           "kernels": {name: dec.qkv.kind for name, dec in decoders.items()}},
        "decision_agreement": {name: {"same_choice_as_fp32": max(range(len(s)), key=s.__getitem__) == best,
                                      "max_score_diff": max(abs(a - b) for a, b in zip(s, ref, strict=True))}
                               for name, s in scores.items()},
    }


def _decision_floor(base, fp32: GreedyDecoder, prompt: list[int], options: list[list[int]], fp32_s: float, *,
                    threads: int, packed_s: float) -> dict[str, Any]:
    """The smallest packed/fp32 decision ratio any int8 kernel could reach on this CPU (``ceiling.py``).

    fp32's matmul share comes from one profiled decision: aten::mm's self time over the self time of all ops (the
    threads run inside each op; Python between ops is left out, which credits the matmuls with more than their
    share — generous to the kernel, so the floor stays a lower bound). The rest of the decision (attention, norms,
    element-wise) is the same for every model and kept. The packed matmuls are counted at the peak rate of the
    instruction the chosen kernel repeats, on all threads.
    """
    from torch.profiler import profile

    from appatlas.compression.errors import KernelError
    from appatlas.compression.packed.ceiling import KERNEL_PROBE, decision_floor, peak_rates
    from appatlas.compression.packed.vnni import select_kernel

    with profile() as prof:
        fp32.score_options(prompt, options)
    events = prof.key_averages()
    matmul = sum(e.self_cpu_time_total for e in events if e.key in ("aten::mm", "aten::addmm"))
    share = min(matmul / max(sum(e.self_cpu_time_total for e in events), 1e-9), 1.0)
    per_token = sum(p.numel() for n, p in base.named_parameters() if n.startswith("model.layers.") and p.dim() == 2)
    option_tokens = sum(len(o) for o in options)
    macs = (len(prompt) + option_tokens) * per_token + (1 + option_tokens) * base.get_output_embeddings().weight.numel()
    try:
        rates, why = peak_rates(), ""
    except KernelError as exc:  # no compiler: the decision is measured, its floor is not
        rates, why = {}, f" ({exc})"
    floors = {kernel: {f"{digits}_digit{'s' if digits > 1 else ''}": decision_floor(
                  fp32_s=fp32_s, fp32_matmul_s=share * fp32_s, macs=macs, int8_gmac_s=rates[probe], threads=threads,
                  digits=digits) for digits in (2, 1)}
              for kernel, probe in KERNEL_PROBE.items() if probe in rates}
    chosen = select_kernel()
    line = (f"decision floor: fp32 spends {share:.0%} of {fp32_s * 1e3:.0f} ms in matmuls ({macs / 1e9:.1f} GMAC at "
            f"{macs / max(share * fp32_s, 1e-9) / 1e9:.0f} GMAC/s); at peak, the {chosen} kernel could reach "
            + (f"{floors[chosen]['2_digits']:.2f} x fp32 with two activation digits, {floors[chosen]['1_digit']:.2f} "
               "with one" if chosen in floors else f"nothing measurable (no probe of an int8 kernel of ours ran{why})")
            + f"; measured {packed_s / fp32_s:.2f}")
    return {"fp32_matmul_share": share, "macs": macs, "threads": threads, "peak_gmac_s_one_thread": rates,
            "packed_over_fp32_floor": floors, "kernel": chosen, "line": line}


def _gguf_rows(model_name, sources: dict[str, Path], row_ppl: dict[str, float], windows, folder: Path, *,
               console) -> list[dict[str, Any]]:
    """Export each source row (exact and allocator type mixes) and the fp32 model (uniform Q4_K, Q3_K) to GGUF,
    read each back with the ``gguf`` package, and measure its perplexity and size."""
    from appatlas.compression.export_gguf import export_gguf, load_gguf_model, verify_gguf
    from appatlas.compression.packed.format import load_compressed

    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(label, src, t) for label, src in sources.items() for t in ("exact", "allocator")
            if t == "exact" or label.startswith("appatlas-mp")]
    base = resolve_model_path(model_name)
    jobs += [("fp32", base, "Q4_K"), ("fp32", base, "Q3_K")]
    rows = []
    probe = windows[:1, :64]
    for label, src, types in jobs:
        path = folder / f"{label}-{types}.gguf"
        report = export_gguf(src, path, types=types)
        gmodel = load_gguf_model(path)
        row = {"source": label, "types": types, "type_counts": report.type_counts(), "size_mb": report.bytes / 1e6,
               "ppl": perplexity(gmodel, windows), "source_ppl": row_ppl.get(label)}
        if types == "exact" and label in sources:  # the round trip: logits against the packed model's weights
            row.update(verify_gguf(path, load_compressed(src).model, probe))
        rows.append(row)
        console.print(f"gguf {label:>16} {types:>9}: ppl {row['ppl']:8.2f}  {row['size_mb']:6.1f} MB  "
                      f"{row['type_counts']}")
        del gmodel
    return rows


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
