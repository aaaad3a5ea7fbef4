"""The throughput probe behind the decision floor: which loops run where, what they measure, the floor's arithmetic."""

from __future__ import annotations

import pytest

from appatlas.compression.packed import ceiling
from appatlas.compression.packed.vnni import cpu_kernels


def test_decision_floor_keeps_the_shared_work_and_puts_the_matmuls_at_peak():
    # 1 s of fp32, 0.8 s of it matmuls; 100 GMAC at 50 GMAC/s per thread on 2 threads = 1 s per digit
    assert ceiling.decision_floor(fp32_s=1.0, fp32_matmul_s=0.8, macs=100e9, int8_gmac_s=50, threads=2,
                                  digits=1) == pytest.approx(0.2 + 1.0)
    assert ceiling.decision_floor(fp32_s=1.0, fp32_matmul_s=0.8, macs=100e9, int8_gmac_s=50, threads=2,
                                  digits=2) == pytest.approx(0.2 + 2.0)
    # however fast the instruction, the shared part stays: the floor never drops below it
    assert ceiling.decision_floor(fp32_s=1.0, fp32_matmul_s=0.8, macs=1e9, int8_gmac_s=1e6, threads=2,
                                  digits=1) == pytest.approx(0.2, abs=1e-5)
    with pytest.raises(ValueError):
        ceiling.decision_floor(fp32_s=1.0, fp32_matmul_s=1.5, macs=1e9, int8_gmac_s=10, threads=1, digits=1)


def test_probes_follow_the_cpu_flags(monkeypatch):
    """An AVX2-only CPU (a CI runner, AMD EPYC) runs only the 256-bit loops; AVX-VNNI and AVX-512 add theirs."""
    avx2_only = frozenset({"avx2", "fma", "f16c"})
    monkeypatch.setattr(ceiling, "cpu_flags", lambda: avx2_only)
    assert ceiling.available_probes() == ("fp32_fma_ymm", "int8_maddubs_ymm")
    monkeypatch.setattr(ceiling, "cpu_flags", lambda: avx2_only | {"avx_vnni", "avx512f", "avx512_vnni"})
    assert set(ceiling.available_probes()) == set(ceiling.PROBES)
    # every kernel of ours has the probe of the instruction it repeats
    assert set(ceiling.KERNEL_PROBE) == {"avx512vnni", "avxvnni", "avx2"}


def test_peak_rates_measure_each_loop_this_cpu_can_run():
    if not cpu_kernels():
        pytest.skip("this CPU has not even AVX2: no loop to measure")
    rates = ceiling.peak_rates(seconds=0.02, repeats=3)  # best of 3: a preempted run does not count
    assert set(rates) == set(ceiling.available_probes())
    assert all(r > 0 for r in rates.values())
    # vpmaddubsw (+ its vpaddw) carries 32 products where vfmadd231ps carries 8: more products per second on any
    # AVX2 core — the margin that lets int8 prompts beat fp32 at all (a loop timing the wrong thing breaks this)
    assert rates["int8_maddubs_ymm"] > 1.3 * rates["fp32_fma_ymm"]


def test_bench_floor_without_a_compiler_still_reports_the_decision(tiny_model, calib_ids, monkeypatch):
    """No compiler for the probe: the bench keeps the decision and says why there is no floor (it used to crash)."""
    from appatlas.bench.compress import _decision_floor
    from appatlas.compression.decode import GreedyDecoder
    from appatlas.compression.errors import KernelError

    def no_compiler(**_kw):
        raise KernelError("the throughput probe could not be built (no g++); install g++ and ninja")

    monkeypatch.setattr(ceiling, "peak_rates", no_compiler)
    dec = GreedyDecoder(tiny_model, kernels=False, max_len=64)
    prompt, options = calib_ids[0, :24].tolist(), [calib_ids[1, :4].tolist(), calib_ids[2, :6].tolist()]
    floor = _decision_floor(tiny_model, dec, prompt, options, 0.01, threads=2, packed_s=0.02)
    assert floor["packed_over_fp32_floor"] == {} and "no g++" in floor["line"] and "measured 2.00" in floor["line"]
    assert 0 < floor["fp32_matmul_share"] <= 1
    per_token = sum(p.numel() for n, p in tiny_model.named_parameters() if n.startswith("model.layers.") and p.dim() == 2)
    assert floor["macs"] == 34 * per_token + 11 * tiny_model.get_output_embeddings().weight.numel()
