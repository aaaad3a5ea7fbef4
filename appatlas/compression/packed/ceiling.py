"""How fast a prompt *could* run on this CPU: the instruction throughput each matmul path is built on.

Why: a prompt (the agent's decision: a 384-token prompt and 6 short options) is bound by arithmetic, not by
streaming weights, so how much an int4 × int8 kernel can gain over fp32 is capped by the rate of the one
instruction each inner loop repeats — ``vfmadd231ps`` for fp32 (8 products on 256 bits), ``vpmaddubsw`` plus the
``vpaddw`` that keeps its int16 sums (32 products) for our ``avx2`` kernel, ``vpdpbusd`` (32 or 64 products) for the
VNNI kernels. :func:`peak_rates` measures those rates with register-only loops (no loads, no dependencies beyond
one accumulator per register, one thread); :func:`decision_floor` turns them into the smallest packed/fp32 ratio of
a decision that any kernel built on that instruction could reach — the shared non-matmul work (attention, norms,
rotary, SiLU) counted as it is, the matmuls at the instruction's peak. ``bench compress`` reports both, so whether
a speed target is reachable on the machine it ran on is measured rather than argued.

The loops are inline assembly compiled on first use (``torch.utils.cpp_extension``, ~15 s, cached) and run only
where the CPU has the instructions.
"""

from __future__ import annotations

import time
from functools import lru_cache

import torch

from ..errors import KernelError
from .vnni import cpu_flags

# name: (C++ function, products per loop iteration (10 instructions), /proc/cpuinfo flags needed)
PROBES = {
    "fp32_fma_ymm": ("fma_ymm", 10 * 8, ("avx2", "fma")),
    "fp32_fma_zmm": ("fma_zmm", 10 * 16, ("avx512f",)),
    "int8_maddubs_ymm": ("maddubs_ymm", 10 * 32, ("avx2",)),
    "int8_vpdpbusd_ymm": ("dpbusd_ymm", 10 * 32, ("avx_vnni",)),
    "int8_vpdpbusd_zmm": ("dpbusd_zmm", 10 * 64, ("avx512_vnni",)),
}
KERNEL_PROBE = {"avx2": "int8_maddubs_ymm", "avxvnni": "int8_vpdpbusd_ymm", "avx512vnni": "int8_vpdpbusd_zmm"}


def _loop(body: str, clobbers: str) -> str:
    return f'__asm__ volatile({body} ::: {clobbers});'


def _source() -> str:
    regs = ", ".join(f'"xmm{i}"' for i in range(14))
    fma_y = "".join(f'"vfmadd231ps %%ymm14, %%ymm15, %%ymm{i}\\n\\t"' for i in range(10))
    fma_z = "".join(f'"vfmadd231ps %%zmm14, %%zmm15, %%zmm{i}\\n\\t"' for i in range(10))
    # vpmaddubsw writes int16 pair sums that must be added up: the pair is what one step of the kernel costs
    mub = "".join(f'"vpmaddubsw %%ymm14, %%ymm15, %%ymm{12 + i % 2}\\n\\tvpaddw %%ymm{12 + i % 2}, %%ymm{i}, %%ymm{i}\\n\\t"'
                  for i in range(10))
    dp_y = "".join(f'"%{{vex%}} vpdpbusd %%ymm14, %%ymm15, %%ymm{i}\\n\\t"' for i in range(10))
    dp_z = "".join(f'"vpdpbusd %%zmm14, %%zmm15, %%zmm{i}\\n\\t"' for i in range(10))
    funcs = {"fma_ymm": fma_y, "fma_zmm": fma_z, "maddubs_ymm": mub, "dpbusd_ymm": dp_y, "dpbusd_zmm": dp_z}
    body = "\n".join(f"static void {name}(int64_t n) {{ for (int64_t k = 0; k < n; ++k) {_loop(asm, regs)} }}"
                     for name, asm in funcs.items())
    table = ", ".join(funcs)
    return f"""
#include <torch/extension.h>
#include <cstdint>
{body}
static void (*const kProbes[])(int64_t) = {{{table}}};
double peak_loop(int64_t which, int64_t n) {{
  TORCH_CHECK(which >= 0 && which < {len(funcs)}, "peak_loop: no such probe");
  kProbes[which](n);
  return 0.0;
}}
TORCH_LIBRARY(appatlas_peak, m) {{ m.def("peak_loop(int which, int n) -> float"); }}
TORCH_LIBRARY_IMPL(appatlas_peak, CompositeExplicitAutograd, m) {{ m.impl("peak_loop", &peak_loop); }}
"""


@lru_cache(maxsize=1)
def _build() -> None:
    try:
        from torch.utils.cpp_extension import load_inline

        load_inline("appatlas_peak", cpp_sources=[_source()], is_python_module=False, extra_cflags=["-O2"])
    except Exception as exc:  # noqa: BLE001 - no compiler, or an assembler without these mnemonics
        raise KernelError(f"the throughput probe could not be built ({exc}); install g++ and ninja") from exc


def available_probes() -> tuple[str, ...]:
    """The probes this CPU can run (by its /proc/cpuinfo flags)."""
    return tuple(name for name, (_f, _m, needs) in PROBES.items() if all(f in cpu_flags() for f in needs))


def peak_rates(seconds: float = 0.05, repeats: int = 3) -> dict[str, float]:
    """Billions of products per second, one thread, of each instruction loop this CPU can run (best of ``repeats``
    runs of about ``seconds`` each). Raises :class:`KernelError` when the probe cannot be built."""
    _build()
    order = list(PROBES)
    rates: dict[str, float] = {}
    for name in available_probes():
        func, products, _needs = PROBES[name]
        which = order.index(name)
        n = 100_000
        torch.ops.appatlas_peak.peak_loop(which, n)  # warm the core's frequency up, and size the loop
        tick = time.perf_counter()
        torch.ops.appatlas_peak.peak_loop(which, n)
        n = max(n, int(n * seconds / max(time.perf_counter() - tick, 1e-6)))
        best = float("inf")
        for _ in range(repeats):
            tick = time.perf_counter()
            torch.ops.appatlas_peak.peak_loop(which, n)
            best = min(best, time.perf_counter() - tick)
        rates[name] = n * products / best / 1e9
    return rates


def decision_floor(*, fp32_s: float, fp32_matmul_s: float, macs: float, int8_gmac_s: float, threads: int,
                   digits: int) -> float:
    """The smallest packed/fp32 time ratio of a workload an int8 kernel could reach at the instruction's peak.

    ``fp32_s``: the fp32 workload's time, of which ``fp32_matmul_s`` in its matmuls (the rest — attention, norms,
    element-wise ops — is the same for both and kept); ``macs``: the products the matmuls need; the packed matmuls
    take ``digits`` int8 products per product at ``int8_gmac_s`` per thread on ``threads`` threads (generous: perfect
    scaling, no loads, no unpacking of int4 codes, no per-group scaling).
    """
    if not 0 <= fp32_matmul_s <= fp32_s or fp32_s <= 0 or int8_gmac_s <= 0 or threads < 1 or digits < 1:
        raise ValueError("decision_floor needs 0 <= fp32_matmul_s <= fp32_s, fp32_s > 0, positive rates and counts")
    packed_matmul_s = macs * digits / (int8_gmac_s * 1e9 * threads)
    return (fp32_s - fp32_matmul_s + packed_matmul_s) / fp32_s
