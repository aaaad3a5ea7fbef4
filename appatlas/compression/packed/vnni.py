"""Our int4 × int8 CPU kernel (AVX512-VNNI) for the block linears of a packed model.

Why: at batch 1 the int4 matmuls are bound by how fast the weights stream in, and torch's
``_weight_int4pack_mm_for_cpu`` reads them at about half the rate a plain fp32 matrix-vector product
reaches on this machine (~11 vs ~21 GB/s). This kernel reads each block of 16 rows as one contiguous
record, prefetched well ahead, and multiplies in integers: about 1.9× faster over the 120 block linears.

Activations are written with two int8 digits per group of ``g`` inputs,
``x ≈ d_g · (qx + rx / 254)`` (``d_g = max|x_g| / 127``, ``qx = round(x/d)``, ``rx = round((x/d − qx)·254)``,
half to even), so ``x`` is rounded to ``d/508`` — finer than the bf16 the torch kernel uses; one digit alone
(``d/2``) moved SmolLM2's logits by up to 2 where a group holds an outlier channel. ``vpdpbusd`` multiplies
4 codes by 4 digits for 16 rows at once (exact in int32); both digits reuse each loaded weight. Per group:

    y_r = Σ_g  s_rg · d_g · (Σ_{k∈g} q_rk·qx_k + Σ_{k∈g} q_rk·rx_k / 254)  +  o_rg · Σ_{k∈g} x_k

with the stored fp16 scale ``s`` and offset ``o`` (``w = q·s + o``, exact in fp32) and the exact fp32 sum of
``x_g`` for the offset term. Layout ``[N/16, G, 64·g/8 + 64]`` bytes: for row block ``b`` and group ``j``
the codes of inputs ``8p..8p+7`` take 64 bytes per ``p`` — byte ``4·lane + t`` holds code
``(row 16b+lane, k 8p+t)`` in its low nibble and ``(row, k 8p+4+t)`` in its high one, so one load feeds
two ``vpdpbusd`` — then 16 fp16 scales and 16 fp16 offsets.

The C++ is compiled on first use (``torch.utils.cpp_extension``, cached; needs g++ and ninja, as
``torch.compile`` does) and registered as ``appatlas::int4_vnni_mm`` with a fake implementation, so a
compiled decoder calls it directly. Without AVX512-VNNI, or if the build fails, ``vnni_available()`` is
False and callers keep torch's int4 kernel.
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

// Prefetch distance in bytes: 8 KiB ahead was fastest streaming SmolLM2's 120 block linears (4 KiB:
// 1.15x slower, 32 KiB: 1.12x, none: 2.4x).
constexpr int64_t kPrefetch = 8192;

// x [M, K] fp32, w [N/16, G, 64 * group/8 + 64] uint8 -> y [M, N] fp32
at::Tensor int4_vnni_mm(const at::Tensor& x_, const at::Tensor& w, int64_t group) {
  const at::Tensor x = x_.contiguous();
  const int64_t M = x.size(0), K = x.size(1), G = K / group, pairs = group / 8, N = w.size(0) * 16;
  const int64_t rec = pairs * 64 + 64;
  TORCH_CHECK(x.scalar_type() == at::kFloat && w.dim() == 3 && K % group == 0 && group % 8 == 0 &&
              w.size(1) == G && w.size(2) == rec, "int4_vnni_mm: x, w and group disagree");
  at::Tensor y = at::empty({M, N}, x.options());
  const uint8_t* wp = w.data_ptr<uint8_t>();
  std::vector<int8_t> qx(K), rx(K);
  std::vector<float> dx(G), sx(G);
  for (int64_t m = 0; m < M; ++m) {
    const float* xp = x.data_ptr<float>() + m * K;
    for (int64_t g = 0; g < G; ++g) {  // x/d = qx + rx/254 per group
      float amax = 0.f, sum = 0.f;
      for (int64_t k = g * group; k < (g + 1) * group; ++k) { amax = std::max(amax, std::abs(xp[k])); sum += xp[k]; }
      const float d = amax / 127.f, inv = d > 0.f ? 1.f / d : 0.f;
      dx[g] = d;
      sx[g] = sum;
      for (int64_t k = g * group; k < (g + 1) * group; ++k) {
        const float t = xp[k] * inv, q = std::nearbyint(t);
        qx[k] = (int8_t)q;
        rx[k] = (int8_t)std::nearbyint((t - q) * 254.f);
      }
    }
    const int32_t* q4 = reinterpret_cast<const int32_t*>(qx.data());  // 4 digits per int32
    const int32_t* r4 = reinterpret_cast<const int32_t*>(rx.data());
    float* yp = y.data_ptr<float>() + m * N;
    at::parallel_for(0, N / 16, 1, [&](int64_t b0, int64_t b1) {
      const __m512i low = _mm512_set1_epi8(0x0F);
      for (int64_t b = b0; b < b1; ++b) {
        __m512 acc = _mm512_setzero_ps();
        for (int64_t g = 0; g < G; ++g) {
          const uint8_t* wg = wp + (b * G + g) * rec;
          for (int64_t c = 0; c < rec; c += 64) _mm_prefetch((const char*)(wg + kPrefetch + c), _MM_HINT_T0);
          __m512i hs = _mm512_setzero_si512(), ls = _mm512_setzero_si512();
          for (int64_t p = 0; p < pairs; ++p) {
            const __m512i v = _mm512_loadu_si512(wg + p * 64);
            const __m512i c0 = _mm512_and_si512(v, low), c1 = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
            const int64_t kp = 2 * (g * pairs + p);
            hs = _mm512_dpbusd_epi32(hs, c0, _mm512_set1_epi32(q4[kp]));
            hs = _mm512_dpbusd_epi32(hs, c1, _mm512_set1_epi32(q4[kp + 1]));
            ls = _mm512_dpbusd_epi32(ls, c0, _mm512_set1_epi32(r4[kp]));
            ls = _mm512_dpbusd_epi32(ls, c1, _mm512_set1_epi32(r4[kp + 1]));
          }
          const __m512 isum = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ls), _mm512_set1_ps(1.f / 254.f),
                                              _mm512_cvtepi32_ps(hs));
          const __m512 s = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(wg + pairs * 64)));
          const __m512 o = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(wg + pairs * 64 + 32)));
          acc = _mm512_fmadd_ps(_mm512_mul_ps(s, _mm512_set1_ps(dx[g])), isum, acc);
          acc = _mm512_fmadd_ps(o, _mm512_set1_ps(sx[g]), acc);
        }
        _mm512_storeu_ps(yp + b * 16, acc);
      }
    });
  }
  return y;
}

TORCH_LIBRARY(appatlas, m) { m.def("int4_vnni_mm(Tensor x, Tensor w, int group) -> Tensor"); }
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
                    extra_cflags=["-O3", "-mavx512f", "-mavx512bw", "-mavx512vnni", "-mf16c", "-mfma", "-fopenmp"],
                    extra_ldflags=["-fopenmp"])  # at::parallel_for is OpenMP: without it one thread runs
    except Exception as exc:  # noqa: BLE001 - no compiler, no ninja, ...: torch's int4 kernel still works
        log.warning("the int4 x int8 kernel could not be built (%s); using torch's int4 kernel", exc)
        return False

    @torch.library.register_fake("appatlas::int4_vnni_mm")
    def _fake(x, w, group):
        return x.new_empty(x.shape[0], w.shape[0] * 16)

    return True


def vnni_ok(quants: Sequence[QuantizedWeight]) -> bool:
    """The kernel's requirements: ≤4-bit codes, one group size (a multiple of 8), rows a multiple of 16 and
    fp16 offsets (zero-on-grid layers store ``zero``, and ``-zero·scale`` need not be fp16-exact)."""
    g = quants[0].group_size
    rows = sum(q.codes.shape[0] for q in quants)
    return (all(q.bits <= 4 and q.group_size == g and q.offsets is not None for q in quants)
            and g % 8 == 0 and rows % 16 == 0 and quants[0].codes.shape[1] % g == 0 and vnni_available())


def pack_vnni(quants: Sequence[QuantizedWeight]) -> torch.Tensor:
    """The rows of ``quants`` (stacked) in the kernel's layout (see the module docstring)."""
    g = quants[0].group_size
    codes = torch.cat([q.codes for q in quants]).to(torch.uint8)
    n, k = codes.shape
    c = codes.view(n // 16, 16, k // 8, 2, 4)  # block, lane, input pair, half, t
    nibbles = (c[:, :, :, 0] | (c[:, :, :, 1] << 4)).permute(0, 2, 1, 3).reshape(n // 16, k // g, g // 8 * 64)

    def per_block(t: torch.Tensor) -> torch.Tensor:  # [n, groups] fp16 -> [n/16, groups, 16] fp16
        return t.half().view(n // 16, 16, k // g).transpose(1, 2)

    scales = torch.cat([q.scales for q in quants])
    offsets = torch.cat([q.offsets for q in quants if q.offsets is not None])  # all are: see vnni_ok
    grid = torch.cat([per_block(scales), per_block(offsets)], dim=-1).contiguous().view(torch.uint8)
    return torch.cat([nibbles, grid], dim=-1).contiguous()


def quantize_activation(x: torch.Tensor, group: int) -> torch.Tensor:
    """``d · (qx + rx/254)``: the activation the kernel multiplies, rounded as the C++ does (for emulation)."""
    xg = x.float().reshape(*x.shape[:-1], -1, group)
    d = xg.abs().amax(-1, keepdim=True) / 127.0
    t = xg * torch.where(d > 0, 1.0 / d, torch.zeros_like(d))
    q = torch.round(t)
    return (d * (q + torch.round((t - q) * 254.0) / 254.0)).reshape(x.shape)
