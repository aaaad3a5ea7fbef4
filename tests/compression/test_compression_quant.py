"""Quantizers on single layers: grid round-trip, GPTQ vs RTN, mixed-precision allocator."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from appatlas.compression.errors import ConfigError
from appatlas.compression.quant.gptq import GPTQ, GPTQConfig
from appatlas.compression.quant.grid import assemble, find_params, quantize_codes
from appatlas.compression.quant.mixed import allocate_bits
from appatlas.compression.quant.rtn import RTN, RTNConfig


def _layer_and_inputs(rows=48, cols=64, n=512, seed=0):
    gen = torch.Generator().manual_seed(seed)
    layer = nn.Linear(cols, rows, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(rows, cols, generator=gen) * 0.1)
    mix = torch.randn(cols, cols, generator=gen) / cols**0.5  # correlated inputs, as in real activations
    x = torch.randn(n, cols, generator=gen) @ mix + 0.1 * torch.randn(n, cols, generator=gen)
    return layer, x


@pytest.mark.parametrize("bits", [2, 3, 4])
@pytest.mark.parametrize("act_order", [True, False])
def test_gptq_layer_error_not_above_rtn(bits, act_order):
    layer, x = _layer_and_inputs()
    rtn, gptq = RTN(layer), GPTQ(layer)
    rtn.add_batch(x)
    gptq.add_batch(x)
    e_rtn = rtn.quantize(RTNConfig(bits, 32)).error
    e_gptq = gptq.quantize(GPTQConfig(bits, 32, act_order=act_order)).error
    assert e_gptq <= e_rtn


def test_grid_is_lossless_on_its_own_grid():
    w = torch.randn(16, 64)
    params = [find_params(w[:, i : i + 32], 4) for i in (0, 32)]
    codes = torch.cat([quantize_codes(w[:, i : i + 32], p, 4) for i, p in zip((0, 32), params, strict=True)], 1)
    once = assemble(codes, params, bits=4, group_size=32).dequantize()
    params2 = [find_params(once[:, i : i + 32], 4) for i in (0, 32)]
    codes2 = torch.cat([quantize_codes(once[:, i : i + 32], p, 4) for i, p in zip((0, 32), params2, strict=True)], 1)
    twice = assemble(codes2, params2, bits=4, group_size=32).dequantize()
    torch.testing.assert_close(twice, once, rtol=0, atol=1e-6)


def test_masked_quantization_keeps_exact_zeros():
    layer, x = _layer_and_inputs()
    mask = torch.rand(layer.weight.shape) > 0.5
    g = GPTQ(layer)
    g.add_batch(x)
    res = g.quantize(GPTQConfig(3, 32), mask=mask)
    assert torch.all(res.weight[~mask] == 0)


def test_allocator_meets_budget_and_prefers_sensitive_layers():
    gen = torch.Generator().manual_seed(0)
    sizes = {f"l{i}": int(s) for i, s in enumerate(torch.randint(1, 10, (12,), generator=gen) * 1000)}
    sens = {n: float(torch.rand(1, generator=gen)) * 100 for n in sizes}
    costs = {n: {b: sens[n] * 4.0 ** (-b) for b in (2, 3, 4, 8)} for n in sizes}
    for avg in (2.0, 2.5, 3.0, 3.7, 8.0):
        alloc = allocate_bits(costs, sizes, avg)
        used = sum(sizes[n] * alloc[n] for n in sizes) / sum(sizes.values())
        assert used <= avg + 1e-9
        assert used >= min(avg, 8) - 1.0  # the greedy fill spends most of the budget
    alloc = allocate_bits(costs, sizes, 3.0)
    most, least = max(sens, key=sens.get), min(sens, key=sens.get)
    assert alloc[most] >= alloc[least]


def test_allocator_rejects_impossible_budget():
    with pytest.raises(ConfigError):
        allocate_bits({"a": {2: 1.0, 4: 0.0}}, {"a": 10}, 1.5)


def test_gptq_with_per_group_widths_keeps_each_group_on_its_grid():
    layer, x = _layer_and_inputs(cols=128)
    g = GPTQ(layer)
    g.add_batch(x)
    widths = (2, 4, 3, 2)
    res = g.quantize(GPTQConfig(4, 32, group_bits=widths))
    q = res.quant
    assert q.group_bits.tolist() == list(widths) and q.avg_bits == pytest.approx(2.75)
    for j, b in enumerate(widths):
        assert int(q.codes[:, j * 32 : (j + 1) * 32].max()) <= 2**b - 1
    # more bits in a group -> smaller error than the all-2-bit solve
    all2 = GPTQ(layer)
    all2.add_batch(x)
    assert res.error < all2.quantize(GPTQConfig(2, 32)).error
    assert q.storage_bits() == 48 * 32 * sum(widths) + 8 * 4 + q.scales.numel() * 32

