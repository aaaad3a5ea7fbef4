"""Our int4 × int8 CPU kernel (AVX512-VNNI), for the block linears of a packed model.

torch's ``_weight_int4pack_mm_for_cpu`` turns every 4-bit weight into fp32 and multiplies with bf16
activations: about 4 weights per cycle and core. Here the activation is quantized to int8 instead, per
group of ``g`` inputs (``x ≈ d_g · qx``, ``d_g = max|x_g| / 127``, round half to even), and one
``vpdpbusd`` multiplies 4 codes by 4 activations for 16 rows at once (64 multiply-adds, exact in int32).
Per group the integer sum is scaled back and the offset term uses the exact fp32 sum of ``x_g``:

    y_r = Σ_g  s_rg · d_g · Σ_{k∈g} q_rk · qx_k  +  o_rg · Σ_{k∈g} x_k        (w = q · s + o, as stored)

The scales and offsets are the stored fp16 values (exact in fp32), so the only approximation is the int8
rounding of ``x`` — about the size of the bf16 rounding the torch kernel makes — and 2.4–2.8× less time
per layer on this machine. Weights are stored as ``[N/16, K/8, 64]`` bytes: for 16 rows and 8 inputs
``8p..8p+7``, byte ``4·lane + t`` holds code ``(row 16b+lane, k 8p+t)`` in its low nibble and
``(row, k 8p+4+t)`` in its high nibble, so one 64-byte load feeds two ``vpdpbusd``.

The C++ source is compiled on first use (``torch.utils.cpp_extension``, cached) and registered as the
op ``appatlas::int4_vnni_mm`` with a fake implementation, so ``torch.compile`` calls it directly. Only on
CPUs with AVX512-VNNI; elsewhere, or if the build fails, ``vnni_available()`` is False and callers use
torch's int4 kernel.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch

from ..quant.grid import QuantizedWeight

log = logging.getLogger(__name__)

_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <cmath>
#include <vector>

// x [M, K] fp32, w [N/16, K/8, 64] uint8, scale/offset [K/group, N] fp16 -> y [M, N] fp32
at::Tensor int4_vnni_mm(const at::Tensor& x_, const at::Tensor& w, const at::Tensor& scale,
                        const at::Tensor& offset, int64_t group) {
  TORCH_CHECK(x_.dim() == 2 && w.dim() == 3 && w.size(2) == 64, "int4_vnni_mm: bad shapes");
  const at::Tensor x = x_.contiguous();
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0) * 16, G = K / group, pairs = group / 8;
  TORCH_CHECK(K % group == 0 && group % 8 == 0 && w.size(1) * 8 == K, "int4_vnni_mm: K, group and w disagree");
  at::Tensor y = at::empty({M, N}, x.options());
  const uint8_t* wp = w.data_ptr<uint8_t>();
  const at::Half* sp = scale.data_ptr<at::Half>();
  const at::Half* op = offset.data_ptr<at::Half>();
  std::vector<int8_t> qx(K);
  std::vector<float> dx(G), sx(G);
  for (int64_t m = 0; m < M; ++m) {
    const float* xp = x.data_ptr<float>() + m * K;
    for (int64_t g = 0; g < G; ++g) {  // int8 per group: x ~ d * qx
      float amax = 0.f, sum = 0.f;
      for (int64_t k = g * group; k < (g + 1) * group; ++k) { amax = std::max(amax, std::abs(xp[k])); sum += xp[k]; }
      const float d = amax / 127.f, inv = d > 0.f ? 1.f / d : 0.f;
      dx[g] = d;
      sx[g] = sum;
      for (int64_t k = g * group; k < (g + 1) * group; ++k) qx[k] = (int8_t)std::nearbyint(xp[k] * inv);
    }
    const int32_t* q4 = reinterpret_cast<const int32_t*>(qx.data());  // 4 activations per int32
    float* yp = y.data_ptr<float>() + m * N;
    at::parallel_for(0, N / 16, 1, [&](int64_t b0, int64_t b1) {
      const __m512i low = _mm512_set1_epi8(0x0F);
      for (int64_t b = b0; b < b1; ++b) {
        const uint8_t* wb = wp + b * (K / 8) * 64;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t g = 0; g < G; ++g) {
          __m512i isum = _mm512_setzero_si512();
          for (int64_t p = g * pairs; p < (g + 1) * pairs; ++p) {
            const __m512i v = _mm512_loadu_si512(wb + p * 64);
            isum = _mm512_dpbusd_epi32(isum, _mm512_and_si512(v, low), _mm512_set1_epi32(q4[2 * p]));
            isum = _mm512_dpbusd_epi32(isum, _mm512_and_si512(_mm512_srli_epi16(v, 4), low),
                                       _mm512_set1_epi32(q4[2 * p + 1]));
          }
          const __m512 s = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(sp + g * N + b * 16)));
          const __m512 o = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(op + g * N + b * 16)));
          acc = _mm512_fmadd_ps(_mm512_mul_ps(s, _mm512_set1_ps(dx[g])), _mm512_cvtepi32_ps(isum), acc);
          acc = _mm512_fmadd_ps(o, _mm512_set1_ps(sx[g]), acc);
        }
        _mm512_storeu_ps(yp + b * 16, acc);
      }
    });
  }
  return y;
}

TORCH_LIBRARY(appatlas, m) {
  m.def("int4_vnni_mm(Tensor x, Tensor w, Tensor scale, Tensor offset, int group) -> Tensor");
}
TORCH_LIBRARY_IMPL(appatlas, CPU, m) { m.impl("int4_vnni_mm", &int4_vnni_mm); }
"""

_FLAGS = ("avx512f", "avx512bw", "avx512_vnni", "f16c", "fma")


def _cpu_has_vnni() -> bool:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return False
    return all(f in flags.split() for f in _FLAGS)


@lru_cache(maxsize=1)
def vnni_available() -> bool:
    """True once the kernel is built and registered (compiled on the first call, ~30 s, then cached)."""
    if not _cpu_has_vnni():
        return False
    try:
        from torch.utils.cpp_extension import load_inline

        load_inline("appatlas_int4_vnni", cpp_sources=[_SOURCE], is_python_module=False,
                    extra_cflags=["-O3", "-mavx512f", "-mavx512bw", "-mavx512vnni", "-mf16c", "-mfma"])
    except Exception as exc:  # noqa: BLE001 - no compiler, no ninja, ...: torch's int4 kernel still works
        log.warning("the int4 x int8 VNNI kernel could not be built (%s); using torch's int4 kernel", exc)
        return False

    @torch.library.register_fake("appatlas::int4_vnni_mm")
    def _fake(x, w, scale, offset, group):
        return x.new_empty(x.shape[0], w.shape[0] * 16)

    return True


def pack_codes(codes: torch.Tensor) -> torch.Tensor:
    """``[N, K]`` codes (0..15) in the kernel's ``[N/16, K/8, 64]`` byte layout (see the module docstring)."""
    n, k = codes.shape
    c = codes.to(torch.uint8).view(n // 16, 16, k // 8, 2, 4)  # block, lane, pair, half, t
    return (c[:, :, :, 0] | (c[:, :, :, 1] << 4)).permute(0, 2, 1, 3).contiguous().view(n // 16, k // 8, 64)


def quantize_activation(x: torch.Tensor, group: int) -> torch.Tensor:
    """``d · qx``: the int8 activation the kernel multiplies, computed as the C++ does (for emulation)."""
    xg = x.float().reshape(*x.shape[:-1], -1, group)
    d = xg.abs().amax(-1, keepdim=True) / 127.0
    inv = torch.where(d > 0, 1.0 / d, torch.zeros_like(d))
    return (torch.round(xg * inv) * d).reshape(x.shape)


def vnni_ok(quants: Sequence[QuantizedWeight]) -> bool:
    """The kernel's requirements: ≤4-bit codes, one group size (a multiple of 8), rows a multiple of 16 and
    fp16 offsets (zero-on-grid layers store ``zero`` instead, and ``-zero·scale`` need not be fp16-exact)."""
    g = quants[0].group_size
    rows = sum(q.codes.shape[0] for q in quants)
    return (all(q.bits <= 4 and q.group_size == g and q.offsets is not None for q in quants)
            and g % 8 == 0 and rows % 16 == 0 and quants[0].codes.shape[1] % g == 0 and vnni_available())
