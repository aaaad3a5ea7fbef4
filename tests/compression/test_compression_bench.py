"""`bench compress` on a tiny model: the kernel it names, ppl through the kernels, the agent's workload, GGUF rows."""

from __future__ import annotations

import json

import pytest


def test_bench_reports_kernel_decisions_kernel_ppl_and_gguf_rows(tiny_folder, text_file, tmp_path, monkeypatch):
    from appatlas.bench.compress import run_compress_bench
    from appatlas.compression.packed.vnni import select_kernel

    monkeypatch.delenv("APPATLAS_INT4_KERNEL", raising=False)
    out = tmp_path / "bench.json"
    result = run_compress_bench(model=str(tiny_folder), text_path=text_file, out_path=out,
                                rows=["fp32", "packed-int4"], n_samples=4, seq_len=64, max_eval_windows=2,
                                decode_tokens=4, speed_rounds=1, compile=False)
    s = result["summary"]
    assert json.loads(out.read_text())["summary"]["complete"] is True
    assert s["kernel"]["name"] == select_kernel() and s["kernel"]["name"] in s["kernel"]["line"]
    assert set(s["decision_ms"]) == {"fp32", "bf16", "int8", "packed-int4"}
    assert all(v > 0 for v in s["decision_ms"].values())
    assert all(set(v) == {"256", "512"} for v in s["prefill_tok_s"].values())
    kinds = s["decision_setup"]["kernels"]
    assert kinds["fp32"] == "dense" and kinds["bf16"] == "dense-bfloat16" and kinds["int8"].startswith("concat")
    assert kinds["packed-int4"] == ("int4" if select_kernel() == "torch" else f"int4-{select_kernel()}")
    assert s["checks"]["decision_packed_over_fp32"] == pytest.approx(s["decision_ms"]["packed-int4"]
                                                                     / s["decision_ms"]["fp32"])
    assert s["decision_agreement"]["fp32"] == {"same_choice_as_fp32": True, "max_score_diff": 0.0}
    assert s["decision_agreement"]["packed-int4"]["max_score_diff"] > 0  # int4 weights move the scores a little
    floor = s["decision_floor"]  # the best ratio a kernel could reach here, from fp32's profile and the peak rates
    assert 0 < floor["fp32_matmul_share"] <= 1 and floor["kernel"] == select_kernel()
    for f in floor["packed_over_fp32_floor"].values():  # one digit does half the products: a lower floor
        assert 1 - floor["fp32_matmul_share"] - 1e-9 <= f["1_digit"] < f["2_digits"]
    if floor["kernel"] != "torch":
        assert floor["kernel"] in floor["packed_over_fp32_floor"] and "decision floor" in floor["line"]
    packed_row = next(r for r in s["rows"] if r["method"] == "packed-int4")
    kp = s["checks"]["packed_ppl_kernel"]
    assert kp["dequantized"] == packed_row["ppl"] and kp["kernel"] != kp["dequantized"]
    assert kp["within_1pct"] == (abs(kp["kernel"] / kp["dequantized"] - 1) <= 0.01) and kp["within_1pct"]
    rows = {(r["source"], r["types"]): r for r in s["gguf_rows"]}
    assert set(rows) == {("packed-int4", "exact"), ("fp32", "Q4_K"), ("fp32", "Q3_K")}
    exact = rows[("packed-int4", "exact")]
    assert exact["type_counts"] == {"F32": 5, "Q4_1": 15}  # 14 block linears + the tied int4 head, all exact
    assert exact["max_abs_logit_diff"] <= 1e-3
    assert exact["ppl"] == pytest.approx(packed_row["ppl"], rel=1e-5)  # the same weights, read back by gguf
    assert rows[("fp32", "Q3_K")]["size_mb"] < rows[("fp32", "Q4_K")]["size_mb"]
