"""Our int4 × int8 CPU kernel for the block linears of a packed model, in three instruction sets.

Why: at batch 1 the int4 matmuls are bound by how fast the weights stream in, and torch's
``_weight_int4pack_mm_for_cpu`` reads them at about half the rate a plain fp32 matrix-vector product
reaches (~11 vs ~21 GB/s on an AVX-512 machine). This kernel reads each block of 16 rows as one contiguous
record, prefetched well ahead, and multiplies in integers.

One layout, three implementations, chosen at run time by the CPU's features (best first):

* ``avx512vnni`` — ``vpdpbusd`` on 512-bit registers (16 rows per instruction);
* ``avxvnni``    — the same instruction on 256-bit registers (Alder Lake and later laptops without AVX-512);
* ``avx2``       — ``vpmaddubsw`` summed in int16 over 4 input pairs, then one ``vpmaddwd`` (every x86-64 CPU since
  2013; CI runners, AMD EPYC).

All three compute the same int32 sums and the same fp32 operations in the same order, so their outputs are
bit-identical (the tests check it). ``APPATLAS_INT4_KERNEL`` (``auto`` | ``avx512vnni`` | ``avxvnni`` | ``avx2``
| ``torch``) forces one, so the AVX2 path can be measured and tested on an AVX-512 machine; ``torch`` keeps
torch's int4 kernel.

Activations are written with two int8 digits per group of ``g`` inputs,
``x ≈ d_g · (qx + rx / 254)`` (``d_g = max|x_g| / 127``, ``qx = round(x/d)``, ``rx = round((x/d − qx)·254)``,
half to even), so ``x`` is rounded to ``d/508`` — finer than the bf16 the torch kernel uses; one digit alone
(``d/2``) moved SmolLM2's logits by up to 2 where a group holds an outlier channel. Per group:

    y_r = Σ_g  s_rg · d_g · (Σ_{k∈g} q_rk·qx_k + Σ_{k∈g} q_rk·rx_k / 254)  +  o_rg · Σ_{k∈g} x_k

with the stored fp16 scale ``s`` and offset ``o`` (``w = q·s + o``, exact in fp32) and the exact fp32 sum of
``x_g`` for the offset term. Layout ``[N/16, G, 64·g/8 + 64]`` bytes: for row block ``b`` and group ``j``
the codes of inputs ``8p..8p+7`` take 64 bytes per ``p`` — byte ``4·lane + t`` holds code
``(row 16b+lane, k 8p+t)`` in its low nibble and ``(row, k 8p+4+t)`` in its high one, so one load feeds
two dot products (the 256-bit kernels load the two halves: rows 0–7 and 8–15) — then 16 fp16 scales and
16 fp16 offsets.

Prompts (``M > 1`` rows of ``x``) are a GEMM, not ``M`` GEMVs: each thread takes a range of row blocks and runs
every token through a block while its record (≤ 16 KiB) sits in L1, several tokens per loaded weight (4 on
AVX-512 and AVX2 — which does rows 0–7 of the block, then 8–15 — 2 on AVX-VNNI), so the weights stream once per
call instead of once per token. The activations are rounded with AVX2 (every kernel needs it), 8 inputs at a time.

The C++ is compiled on first use (``torch.utils.cpp_extension``, cached; needs g++ and ninja, as
``torch.compile`` does); each implementation carries its own ``target`` attribute, so one build holds all
three and the generic parts run anywhere. It is registered as ``appatlas::int4_mm`` with a fake
implementation, so a compiled decoder calls it directly.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch

from ..errors import KernelError
from ..quant.grid import QuantizedWeight

log = logging.getLogger(__name__)

KERNELS = ("avx512vnni", "avxvnni", "avx2")  # ours, best first; the index is the op's ``isa`` argument
ENV = "APPATLAS_INT4_KERNEL"
CHOICES = ("auto", *KERNELS, "torch")
_NEEDS = {  # /proc/cpuinfo flags each implementation uses
    "avx512vnni": ("avx512f", "avx512bw", "avx512_vnni", "f16c", "fma"),
    "avxvnni": ("avx2", "avx_vnni", "f16c", "fma"),
    "avx2": ("avx2", "f16c", "fma"),
}

_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <algorithm>
#include <cmath>
#include <vector>

// Prefetch distance in bytes: 8 KiB ahead was fastest streaming SmolLM2's 120 block linears (4 KiB:
// 1.15x slower, 32 KiB: 1.12x, none: 2.4x).
constexpr int64_t kPrefetch = 8192;

struct Acts {  // x/d = qx + rx/254 per group of every row of x
  std::vector<int8_t> qr;   // [row][digit: qx, rx][K]: a token's two digits side by side
  std::vector<float> d, s;  // the step d and the sum of x, per (row, group)
  const int8_t* q(int64_t m, int64_t K) const { return qr.data() + 2 * m * K; }
  const int8_t* r(int64_t m, int64_t K) const { return qr.data() + (2 * m + 1) * K; }
};

#define T512 __attribute__((target("avx512f,avx512bw,avx512vnni,fma,f16c")))
#define TVNNI __attribute__((target("avx2,avxvnni,fma,f16c")))
#define TAVX2 __attribute__((target("avx2,fma,f16c")))

TAVX2 static float hsum8(__m256 v) {  // a fixed order: lanes (0+4, 1+5, 2+6, 3+7), then pairs, then the two
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Every kernel needs AVX2 (the CPU is checked first), so the activations are rounded with it: 8 inputs at a time,
// round half to even as nearbyint; the group sum of x in the fixed order of hsum8 (all kernels share it).
TAVX2 static void quantize_rows(const float* x, int64_t m0, int64_t m1, int64_t K, int64_t group, Acts& a) {
  const int64_t G = K / group;
  const __m256 sign = _mm256_set1_ps(-0.f), k254 = _mm256_set1_ps(254.f);
  for (int64_t m = m0; m < m1; ++m) {
    const float* xp = x + m * K;
    for (int64_t g = 0; g < G; ++g) {
      __m256 amax = _mm256_setzero_ps(), sum = _mm256_setzero_ps();
      for (int64_t k = g * group; k < (g + 1) * group; k += 8) {
        const __m256 v = _mm256_loadu_ps(xp + k);
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v));
        sum = _mm256_add_ps(sum, v);
      }
      __m128 mx = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
      mx = _mm_max_ps(mx, _mm_movehl_ps(mx, mx));
      mx = _mm_max_ss(mx, _mm_movehdup_ps(mx));
      const float d = _mm_cvtss_f32(mx) / 127.f, inv = d > 0.f ? 1.f / d : 0.f;
      a.d[m * G + g] = d;
      a.s[m * G + g] = hsum8(sum);
      const __m256 vinv = _mm256_set1_ps(inv);
      for (int64_t k = g * group; k < (g + 1) * group; k += 8) {
        const __m256 t = _mm256_mul_ps(_mm256_loadu_ps(xp + k), vinv);
        const __m256 q = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m256 r = _mm256_round_ps(_mm256_mul_ps(_mm256_sub_ps(t, q), k254),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        // |q|, |r| <= 127: int32 -> int16 -> int8 packs never saturate (and keep the order within 128 bits)
        const __m256i qi = _mm256_cvtps_epi32(q), ri = _mm256_cvtps_epi32(r);
        const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(qi), _mm256_extracti128_si256(qi, 1));
        const __m128i r16 = _mm_packs_epi32(_mm256_castsi256_si128(ri), _mm256_extracti128_si256(ri, 1));
        _mm_storel_epi64((__m128i*)(a.qr.data() + 2 * m * K + k), _mm_packs_epi16(q16, q16));
        _mm_storel_epi64((__m128i*)(a.qr.data() + (2 * m + 1) * K + k), _mm_packs_epi16(r16, r16));
      }
    }
  }
}

static void quantize_acts(const float* x, int64_t M, int64_t K, int64_t group, Acts& a) {
  const int64_t G = K / group;
  a.qr.resize(2 * M * K); a.d.resize(M * G); a.s.resize(M * G);
  at::parallel_for(0, M, 16, [&](int64_t m0, int64_t m1) { quantize_rows(x, m0, m1, K, group, a); });
}

struct Job {  // one row block b of the weight, tokens m0 .. m0+MT-1
  const uint8_t* wb; const Acts* a; int64_t G, K, N, pairs, rec, b; float* y; bool prefetch;
};

template <int MT> T512 static void rows_avx512vnni(const Job& j, int64_t m0) {
  const __m512i low = _mm512_set1_epi8(0x0F);
  __m512 acc[MT];
  for (int t = 0; t < MT; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t g = 0; g < j.G; ++g) {
    const uint8_t* wg = j.wb + g * j.rec;
    if (j.prefetch) for (int64_t c = 0; c < j.rec; c += 64) _mm_prefetch((const char*)(wg + kPrefetch + c), _MM_HINT_T0);
    __m512i hs[MT], ls[MT];
    for (int t = 0; t < MT; ++t) { hs[t] = _mm512_setzero_si512(); ls[t] = _mm512_setzero_si512(); }
    for (int64_t p = 0; p < j.pairs; ++p) {
      const __m512i v = _mm512_loadu_si512(wg + p * 64);
      const __m512i c0 = _mm512_and_si512(v, low), c1 = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
      const int64_t kp = 2 * (g * j.pairs + p);
      for (int t = 0; t < MT; ++t) {
        const int32_t* q4 = reinterpret_cast<const int32_t*>(j.a->q(m0 + t, j.K));
        const int32_t* r4 = reinterpret_cast<const int32_t*>(j.a->r(m0 + t, j.K));
        hs[t] = _mm512_dpbusd_epi32(hs[t], c0, _mm512_set1_epi32(q4[kp]));
        hs[t] = _mm512_dpbusd_epi32(hs[t], c1, _mm512_set1_epi32(q4[kp + 1]));
        ls[t] = _mm512_dpbusd_epi32(ls[t], c0, _mm512_set1_epi32(r4[kp]));
        ls[t] = _mm512_dpbusd_epi32(ls[t], c1, _mm512_set1_epi32(r4[kp + 1]));
      }
    }
    const __m512 s = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(wg + j.pairs * 64)));
    const __m512 o = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(wg + j.pairs * 64 + 32)));
    for (int t = 0; t < MT; ++t) {
      const __m512 isum = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ls[t]), _mm512_set1_ps(1.f / 254.f),
                                          _mm512_cvtepi32_ps(hs[t]));
      acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(s, _mm512_set1_ps(j.a->d[(m0 + t) * j.G + g])), isum, acc[t]);
      acc[t] = _mm512_fmadd_ps(o, _mm512_set1_ps(j.a->s[(m0 + t) * j.G + g]), acc[t]);
    }
  }
  for (int t = 0; t < MT; ++t) _mm512_storeu_ps(j.y + (m0 + t) * j.N + j.b * 16, acc[t]);
}

// AVX-VNNI: the same sums for rows 0-7 (h = 0) and 8-15 (h = 1) of the block, vpdpbusd on 256 bits.
template <int MT> TVNNI static void rows_avxvnni(const Job& j, int64_t m0) {
  const __m256i low = _mm256_set1_epi8(0x0F);
  __m256 acc[MT][2];
  for (int t = 0; t < MT; ++t) { acc[t][0] = _mm256_setzero_ps(); acc[t][1] = _mm256_setzero_ps(); }
  for (int64_t g = 0; g < j.G; ++g) {
    const uint8_t* wg = j.wb + g * j.rec;
    if (j.prefetch) for (int64_t c = 0; c < j.rec; c += 64) _mm_prefetch((const char*)(wg + kPrefetch + c), _MM_HINT_T0);
    __m256i hs[MT][2], ls[MT][2];
    for (int t = 0; t < MT; ++t) for (int h = 0; h < 2; ++h) { hs[t][h] = _mm256_setzero_si256(); ls[t][h] = _mm256_setzero_si256(); }
    for (int64_t p = 0; p < j.pairs; ++p) {
      __m256i c0[2], c1[2];
      for (int h = 0; h < 2; ++h) {
        const __m256i v = _mm256_loadu_si256((const __m256i*)(wg + p * 64 + 32 * h));
        c0[h] = _mm256_and_si256(v, low); c1[h] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
      }
      const int64_t kp = 2 * (g * j.pairs + p);
      for (int t = 0; t < MT; ++t) {
        const int32_t* q4 = reinterpret_cast<const int32_t*>(j.a->q(m0 + t, j.K));
        const int32_t* r4 = reinterpret_cast<const int32_t*>(j.a->r(m0 + t, j.K));
        const __m256i qa = _mm256_set1_epi32(q4[kp]), qb = _mm256_set1_epi32(q4[kp + 1]);
        const __m256i ra = _mm256_set1_epi32(r4[kp]), rb = _mm256_set1_epi32(r4[kp + 1]);
        for (int h = 0; h < 2; ++h) {
          hs[t][h] = _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(hs[t][h], c0[h], qa), c1[h], qb);
          ls[t][h] = _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(ls[t][h], c0[h], ra), c1[h], rb);
        }
      }
    }
    for (int h = 0; h < 2; ++h) {
      const __m256 s = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(wg + j.pairs * 64 + 16 * h)));
      const __m256 o = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(wg + j.pairs * 64 + 32 + 16 * h)));
      for (int t = 0; t < MT; ++t) {
        const __m256 isum = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ls[t][h]), _mm256_set1_ps(1.f / 254.f),
                                            _mm256_cvtepi32_ps(hs[t][h]));
        acc[t][h] = _mm256_fmadd_ps(_mm256_mul_ps(s, _mm256_set1_ps(j.a->d[(m0 + t) * j.G + g])), isum, acc[t][h]);
        acc[t][h] = _mm256_fmadd_ps(o, _mm256_set1_ps(j.a->s[(m0 + t) * j.G + g]), acc[t][h]);
      }
    }
  }
  for (int t = 0; t < MT; ++t) for (int h = 0; h < 2; ++h)
    _mm256_storeu_ps(j.y + (m0 + t) * j.N + j.b * 16 + 8 * h, acc[t][h]);
}

// AVX2: vpmaddubsw (u8 x s8, pairs into int16: 2*15*127 = 3810) summed in int16 over up to 4 input pairs
// (8 products: 8*3810 = 30480 < 2^15, never saturates), then one vpmaddwd by ones into int32 per 4 pairs
// (before: vpmaddwd + vpaddd after every vpmaddubsw). Rows 0-7 (h = 0), then 8-15 (h = 1): the block's record
// is in L1 for the second pass, and the registers hold 4 tokens' sums.
template <int MT> TAVX2 static void rows_avx2(const Job& j, int64_t m0) {
  const __m256i low = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  for (int h = 0; h < 2; ++h) {
    __m256 acc[MT];
    for (int t = 0; t < MT; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t g = 0; g < j.G; ++g) {
      const uint8_t* wg = j.wb + g * j.rec;
      if (j.prefetch && h == 0) for (int64_t c = 0; c < j.rec; c += 64) _mm_prefetch((const char*)(wg + kPrefetch + c), _MM_HINT_T0);
      __m256i hs[MT], ls[MT];
      for (int64_t p0 = 0; p0 < j.pairs; p0 += 4) {
        __m256i h16[MT], l16[MT];
        for (int t = 0; t < MT; ++t) { h16[t] = _mm256_setzero_si256(); l16[t] = _mm256_setzero_si256(); }
        const int64_t p1 = std::min<int64_t>(j.pairs, p0 + 4);
        for (int64_t p = p0; p < p1; ++p) {
          const __m256i v = _mm256_loadu_si256((const __m256i*)(wg + p * 64 + 32 * h));
          const __m256i c0 = _mm256_and_si256(v, low), c1 = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
          const int64_t kp = 2 * (g * j.pairs + p);
          for (int t = 0; t < MT; ++t) {
            const int32_t* q4 = reinterpret_cast<const int32_t*>(j.a->q(m0 + t, j.K));
            const int32_t* r4 = reinterpret_cast<const int32_t*>(j.a->r(m0 + t, j.K));
            h16[t] = _mm256_add_epi16(h16[t], _mm256_add_epi16(_mm256_maddubs_epi16(c0, _mm256_set1_epi32(q4[kp])),
                                                               _mm256_maddubs_epi16(c1, _mm256_set1_epi32(q4[kp + 1]))));
            l16[t] = _mm256_add_epi16(l16[t], _mm256_add_epi16(_mm256_maddubs_epi16(c0, _mm256_set1_epi32(r4[kp])),
                                                               _mm256_maddubs_epi16(c1, _mm256_set1_epi32(r4[kp + 1]))));
          }
        }
        for (int t = 0; t < MT; ++t) {
          const __m256i h32 = _mm256_madd_epi16(h16[t], ones), l32 = _mm256_madd_epi16(l16[t], ones);
          hs[t] = p0 == 0 ? h32 : _mm256_add_epi32(hs[t], h32);
          ls[t] = p0 == 0 ? l32 : _mm256_add_epi32(ls[t], l32);
        }
      }
      const __m256 s = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(wg + j.pairs * 64 + 16 * h)));
      const __m256 o = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(wg + j.pairs * 64 + 32 + 16 * h)));
      for (int t = 0; t < MT; ++t) {
        const __m256 isum = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ls[t]), _mm256_set1_ps(1.f / 254.f),
                                            _mm256_cvtepi32_ps(hs[t]));
        acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(s, _mm256_set1_ps(j.a->d[(m0 + t) * j.G + g])), isum, acc[t]);
        acc[t] = _mm256_fmadd_ps(o, _mm256_set1_ps(j.a->s[(m0 + t) * j.G + g]), acc[t]);
      }
    }
    for (int t = 0; t < MT; ++t) _mm256_storeu_ps(j.y + (m0 + t) * j.N + j.b * 16 + 8 * h, acc[t]);
  }
}


// AVX2, one token (decoding): rows 0-7 and 8-15 together, so each activation broadcast serves both halves.
TAVX2 static void rows_avx2_one(const Job& j, int64_t m0) {
  const __m256i low = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const int32_t* q4 = reinterpret_cast<const int32_t*>(j.a->q(m0, j.K));
  const int32_t* r4 = reinterpret_cast<const int32_t*>(j.a->r(m0, j.K));
  for (int64_t g = 0; g < j.G; ++g) {
    const uint8_t* wg = j.wb + g * j.rec;
    if (j.prefetch) for (int64_t c = 0; c < j.rec; c += 64) _mm_prefetch((const char*)(wg + kPrefetch + c), _MM_HINT_T0);
    __m256i hs0, hs1, ls0, ls1;
    for (int64_t p0 = 0; p0 < j.pairs; p0 += 4) {
      __m256i h0 = _mm256_setzero_si256(), h1 = h0, l0 = h0, l1 = h0;
      const int64_t p1 = std::min<int64_t>(j.pairs, p0 + 4);
      for (int64_t p = p0; p < p1; ++p) {
        const __m256i v0 = _mm256_loadu_si256((const __m256i*)(wg + p * 64));
        const __m256i v1 = _mm256_loadu_si256((const __m256i*)(wg + p * 64 + 32));
        const __m256i a0 = _mm256_and_si256(v0, low), b0 = _mm256_and_si256(_mm256_srli_epi16(v0, 4), low);
        const __m256i a1 = _mm256_and_si256(v1, low), b1 = _mm256_and_si256(_mm256_srli_epi16(v1, 4), low);
        const int64_t kp = 2 * (g * j.pairs + p);
        const __m256i qa = _mm256_set1_epi32(q4[kp]), qb = _mm256_set1_epi32(q4[kp + 1]);
        const __m256i ra = _mm256_set1_epi32(r4[kp]), rb = _mm256_set1_epi32(r4[kp + 1]);
        h0 = _mm256_add_epi16(h0, _mm256_add_epi16(_mm256_maddubs_epi16(a0, qa), _mm256_maddubs_epi16(b0, qb)));
        h1 = _mm256_add_epi16(h1, _mm256_add_epi16(_mm256_maddubs_epi16(a1, qa), _mm256_maddubs_epi16(b1, qb)));
        l0 = _mm256_add_epi16(l0, _mm256_add_epi16(_mm256_maddubs_epi16(a0, ra), _mm256_maddubs_epi16(b0, rb)));
        l1 = _mm256_add_epi16(l1, _mm256_add_epi16(_mm256_maddubs_epi16(a1, ra), _mm256_maddubs_epi16(b1, rb)));
      }
      const __m256i H0 = _mm256_madd_epi16(h0, ones), H1 = _mm256_madd_epi16(h1, ones);
      const __m256i L0 = _mm256_madd_epi16(l0, ones), L1 = _mm256_madd_epi16(l1, ones);
      hs0 = p0 == 0 ? H0 : _mm256_add_epi32(hs0, H0); hs1 = p0 == 0 ? H1 : _mm256_add_epi32(hs1, H1);
      ls0 = p0 == 0 ? L0 : _mm256_add_epi32(ls0, L0); ls1 = p0 == 0 ? L1 : _mm256_add_epi32(ls1, L1);
    }
    const __m256 d = _mm256_set1_ps(j.a->d[m0 * j.G + g]), sx = _mm256_set1_ps(j.a->s[m0 * j.G + g]);
    const __m256 s0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(wg + j.pairs * 64)));
    const __m256 s1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(wg + j.pairs * 64 + 16)));
    const __m256 o0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(wg + j.pairs * 64 + 32)));
    const __m256 o1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(wg + j.pairs * 64 + 48)));
    const __m256 k = _mm256_set1_ps(1.f / 254.f);
    acc0 = _mm256_fmadd_ps(_mm256_mul_ps(s0, d), _mm256_fmadd_ps(_mm256_cvtepi32_ps(ls0), k, _mm256_cvtepi32_ps(hs0)), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_mul_ps(s1, d), _mm256_fmadd_ps(_mm256_cvtepi32_ps(ls1), k, _mm256_cvtepi32_ps(hs1)), acc1);
    acc0 = _mm256_fmadd_ps(o0, sx, acc0);
    acc1 = _mm256_fmadd_ps(o1, sx, acc1);
  }
  _mm256_storeu_ps(j.y + m0 * j.N + j.b * 16, acc0);
  _mm256_storeu_ps(j.y + m0 * j.N + j.b * 16 + 8, acc1);
}

// isa: 0 avx512vnni, 1 avxvnni, 2 avx2
template <int MT> static void run_rows(int64_t isa, const Job& j, int64_t m0) {
  if (isa == 0) rows_avx512vnni<MT>(j, m0);
  else if (isa == 1) rows_avxvnni<MT>(j, m0);
  else if (MT == 1) rows_avx2_one(j, m0);
  else rows_avx2<MT>(j, m0);
}

static bool cpu_supports(int64_t isa) {
  __builtin_cpu_init();
  const bool base = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == 0) return base && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
  if (isa == 1) return base && __builtin_cpu_supports("avxvnni");
  return isa == 2 && base;
}

// x [M, K] fp32, w [N/16, G, 64 * group/8 + 64] uint8 -> y [M, N] fp32
at::Tensor int4_mm(const at::Tensor& x_, const at::Tensor& w, int64_t group, int64_t isa) {
  const at::Tensor x = x_.contiguous();
  const int64_t M = x.size(0), K = x.size(1), G = K / group, pairs = group / 8, N = w.size(0) * 16;
  const int64_t rec = pairs * 64 + 64;
  TORCH_CHECK(x.scalar_type() == at::kFloat && w.dim() == 3 && K % group == 0 && group % 8 == 0 &&
              w.size(1) == G && w.size(2) == rec && w.is_contiguous(), "int4_mm: x, w and group disagree");
  TORCH_CHECK(cpu_supports(isa), "int4_mm: this CPU cannot run kernel ", isa, "; use APPATLAS_INT4_KERNEL=auto");
  at::Tensor y = at::empty({M, N}, x.options());
  Acts a;
  quantize_acts(x.data_ptr<float>(), M, K, group, a);
  const uint8_t* wp = w.data_ptr<uint8_t>();
  float* yp = y.data_ptr<float>();
  // tokens per loaded weight: 4 (avx512vnni: 32 zmm registers; avx2: one half-block of rows at a time), 2 (avxvnni)
  const int tile = isa == 1 ? 2 : 4;
  at::parallel_for(0, N / 16, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const Job j{wp + b * G * rec, &a, G, K, N, pairs, rec, b, yp, true};
      int64_t m = 0;
      if (tile == 4) for (; m + 4 <= M; m += 4) run_rows<4>(isa, j, m);
      for (; m + 2 <= M; m += 2) run_rows<2>(isa, j, m);
      for (; m < M; ++m) run_rows<1>(isa, j, m);
    }
  });
  return y;
}

TORCH_LIBRARY(appatlas, m) { m.def("int4_mm(Tensor x, Tensor w, int group, int isa) -> Tensor"); }
TORCH_LIBRARY_IMPL(appatlas, CPU, m) { m.impl("int4_mm", &int4_mm); }
"""


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (from /proc/cpuinfo; empty where it cannot be read)."""
    try:
        line = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return frozenset()
    return frozenset(line.split(":", 1)[1].split())


def cpu_kernels() -> tuple[str, ...]:
    """Our implementations this CPU can run, best first."""
    return tuple(k for k in KERNELS if all(f in cpu_flags() for f in _NEEDS[k]))


@lru_cache(maxsize=1)
def build_kernels() -> None:
    """Compile and register ``appatlas::int4_mm`` (first call ~40 s, then cached). Raises :class:`KernelError`."""
    try:
        from torch.utils.cpp_extension import load_inline

        load_inline("appatlas_int4_mm", cpp_sources=[_SOURCE], is_python_module=False,
                    extra_cflags=["-O3", "-fopenmp"],  # at::parallel_for is OpenMP: without it one thread runs
                    extra_ldflags=["-fopenmp"])
    except Exception as exc:  # noqa: BLE001 - no compiler, no ninja, a compiler without these targets, ...
        raise KernelError(f"the int4 x int8 kernel could not be built ({exc}); install g++ and ninja, or set "
                          f"{ENV}=torch to use torch's int4 kernel") from exc

    @torch.library.register_fake("appatlas::int4_mm")
    def _fake(x, w, group, isa):
        return x.new_empty(x.shape[0], w.shape[0] * 16)


def select_kernel(choice: str | None = None) -> str:
    """The int4 kernel to run: one of :data:`KERNELS` (built) or ``"torch"``.

    ``choice`` (default: ``$APPATLAS_INT4_KERNEL``, else ``auto``): ``auto`` takes the best this CPU supports and
    keeps torch's kernel, with a warning, if ours cannot be built; naming one of ours forces it and raises
    :class:`KernelError` if the CPU lacks it or it does not build.
    """
    choice = (choice or os.environ.get(ENV) or "auto").strip().lower()
    if choice not in CHOICES:
        raise KernelError(f"unknown int4 kernel {choice!r} ({ENV}); use one of {', '.join(CHOICES)}")
    if choice == "torch":
        return "torch"
    if choice == "auto":
        supported = cpu_kernels()
        if not supported:
            return "torch"
        try:
            build_kernels()
        except KernelError as exc:
            log.warning("%s; using torch's int4 kernel", exc)
            return "torch"
        return supported[0]
    if choice not in cpu_kernels():
        raise KernelError(f"this CPU cannot run the {choice} int4 kernel (needs {', '.join(_NEEDS[choice])}); "
                          f"it supports {', '.join(cpu_kernels()) or 'none of ours'}: set {ENV}=auto")
    build_kernels()
    return choice


def describe_kernel(choice: str | None = None) -> str:
    """One line naming the int4 kernel that runs, and why (for logs and command output)."""
    source = "argument" if choice else (f"{ENV}" if os.environ.get(ENV) else "auto")
    try:
        chosen = select_kernel(choice)
    except KernelError as exc:
        return f"int4 kernel: none ({exc})"
    ours = ", ".join(cpu_kernels()) or "none of ours"
    what = "torch's _weight_int4pack_mm (bf16 activations)" if chosen == "torch" else f"appatlas {chosen} (int4 x int8)"
    return f"int4 kernel: {what}; chosen by {source}; this CPU supports {ours}"


def kernel_fits(quants: Sequence[QuantizedWeight]) -> bool:
    """The kernel's requirements on the layers: ≤4-bit codes, one group size (a multiple of 8), rows a multiple of
    16 and fp16 offsets (zero-on-grid layers store ``zero``, and ``-zero·scale`` need not be fp16-exact)."""
    g = quants[0].group_size
    rows = sum(q.codes.shape[0] for q in quants)
    return (all(q.bits <= 4 and q.group_size == g and q.offsets is not None for q in quants)
            and g % 8 == 0 and rows % 16 == 0 and quants[0].codes.shape[1] % g == 0)


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
    offsets = torch.cat([q.offsets for q in quants if q.offsets is not None])  # all are: see kernel_fits
    grid = torch.cat([per_block(scales), per_block(offsets)], dim=-1).contiguous().view(torch.uint8)
    return torch.cat([nibbles, grid], dim=-1).contiguous()


def quantize_activation(x: torch.Tensor, group: int) -> torch.Tensor:
    """``d · (qx + rx/254)``: the activation the kernel multiplies, rounded as the C++ does (for emulation)."""
    xg = x.float().reshape(*x.shape[:-1], -1, group)
    d = xg.abs().amax(-1, keepdim=True) / 127.0
    t = xg * torch.where(d > 0, 1.0 / d, torch.zeros_like(d))
    q = torch.round(t)
    return (d * (q + torch.round((t - q) * 254.0) / 254.0)).reshape(x.shape)
