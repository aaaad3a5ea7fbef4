"""Packed format: bit-packing round-trips, saved models reload with identical logits, kernels agree."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from appatlas.compression.decode import GreedyDecoder
from appatlas.compression.errors import FormatError
from appatlas.compression.packed.bitpack import pack_bits, unpack_bits
from appatlas.compression.packed.format import bits_per_weight, load_compressed, save_compressed
from appatlas.compression.packed.kernels import DenseOp, Int4Op, Int8Op, int4_available, int8_available
from appatlas.compression.packed.vnni import vnni_available
from appatlas.compression.pipeline import CompressSpec, compress, quantize_head
from appatlas.compression.quant.grid import assemble, find_params, quantize_codes


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(1, 8), n=st.integers(1, 300), seed=st.integers(0, 2**16))
def test_pack_unpack_round_trips_exactly(bits, n, seed):
    values = torch.randint(0, 2**bits, (n,), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
    packed = pack_bits(values, bits)
    assert packed.numel() == (n * bits + 7) // 8
    assert torch.equal(unpack_bits(packed, bits, n), values)


SPECS = [
    CompressSpec("gptq", 3),
    CompressSpec("rtn", 2, group_size=64),
    CompressSpec("appatlas-mp", 3.0),
    CompressSpec(None, None, sparsity=0.5, prune_method="sparsegpt"),
    CompressSpec("gptq", 4, sparsity=0.5, pattern="2:4", prune_method="wanda", head_bits=8),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.method}-{s.bits}-{s.prune_method}-{s.sparsity}")
def test_saved_model_reloads_with_identical_logits(tiny_model, calib_ids, tmp_path, spec):
    report = compress(tiny_model, calib_ids, spec)
    save_compressed(tiny_model, None, report.layers, tmp_path, meta={"spec": {}})
    artifact = load_compressed(tmp_path)
    ids = calib_ids[:2]
    with torch.no_grad():
        assert torch.equal(tiny_model(ids).logits, artifact.model(ids).logits)
    manifest = json.loads((tmp_path / "appatlas.json").read_text())
    assert manifest["bits_per_weight"] == pytest.approx(bits_per_weight(report.layers))
    for name, entry in manifest["layers"].items():
        assert entry["bits"] == report.layers[name].bits


def test_bits_per_weight_reflects_storage(tiny_model, calib_ids):
    report = compress(tiny_model, calib_ids, CompressSpec("rtn", 3, group_size=32))
    # 3-bit codes + fp16 scale and offset per 32 weights = 4 bits
    assert bits_per_weight(report.layers) == pytest.approx(3 + 32 / 32)


def test_missing_manifest_raises_format_error(tmp_path):
    with pytest.raises(FormatError):
        load_compressed(tmp_path)


def _quant(rows, cols, bits, group):
    w = torch.randn(rows, cols)
    params = [find_params(w[:, i : i + group], bits) for i in range(0, cols, group)]
    codes = torch.cat([quantize_codes(w[:, i : i + group], p, bits) for i, p in zip(range(0, cols, group), params, strict=True)], 1)
    return assemble(codes, params, bits=bits, group_size=group)


@pytest.mark.skipif(not int4_available(), reason="no int4 CPU kernel in this torch")
@pytest.mark.parametrize("bits", [2, 3, 4])
def test_int4_kernel_matches_dequantized(bits):
    qs = [_quant(48, 128, bits, 32), _quant(16, 128, bits, 32)]
    x = torch.randn(3, 128)
    ref = DenseOp(torch.cat([q.dequantize() for q in qs]))(x)
    got = Int4Op(qs)(x)
    assert (got - ref).abs().max() <= 0.02 * ref.abs().max()


@pytest.mark.skipif(not int8_available(), reason="no int8 CPU kernel in this torch")
def test_int8_kernel_matches_dequantized():
    q = _quant(40, 96, 8, 96)
    x = torch.randn(2, 96)
    ref = DenseOp(q.dequantize())(x)
    assert (Int8Op(q)(x) - ref).abs().max() <= 0.02 * ref.abs().max()


def test_decoder_matches_hf_forward(tiny_model, calib_ids):
    ids = calib_ids[0, :20]
    with torch.no_grad():
        ref = tiny_model(ids[None]).logits[0, -1]
    dec = GreedyDecoder(tiny_model, kernels=False, max_len=64)
    torch.testing.assert_close(dec.forward(ids, 0), ref, rtol=1e-4, atol=1e-4)
    dec.forward(ids[:12], 0)  # prefill then one token at a time through the cache
    for pos in range(12, 19):
        dec.forward(ids[pos : pos + 1], pos)
    torch.testing.assert_close(dec.forward(ids[19:], 19), ref, rtol=1e-4, atol=1e-4)
    hf = tiny_model.generate(ids[None], max_new_tokens=8, do_sample=False)[0, 20:].tolist()
    assert dec.generate(ids.tolist(), 8).tokens == hf


def test_packed_decoder_uses_kernels_and_follows_reference(tiny_model, calib_ids):
    report = compress(tiny_model, calib_ids, CompressSpec("rtn", 4, head_bits=8))
    quant = {n: r.quant for n, r in report.layers.items() if r.quant is not None}
    fast = GreedyDecoder(tiny_model, quant=quant, kernels=True, max_len=64)
    ref = GreedyDecoder(tiny_model, quant=quant, kernels=False, max_len=64)
    if int4_available():
        assert fast.qkv.kind == ("int4-vnni" if vnni_available() else "int4")
    assert GreedyDecoder(tiny_model, quant=quant, kernels=True, max_len=64, vnni=False).qkv.kind != "int4-vnni"
    ids = calib_ids[0, :16]
    a, b = fast.forward(ids, 0), ref.forward(ids, 0)
    assert (a - b).abs().max() <= 0.05 * b.abs().max()


def test_quantize_head_keeps_tied_embedding(tiny_model):
    quant = quantize_head(tiny_model)
    assert quant.bits == 8 and quant.scales.shape[1] == 1
    assert tiny_model.get_input_embeddings().weight.data_ptr() == tiny_model.get_output_embeddings().weight.data_ptr()


def test_compare_greedy_reports_agreement(tiny_model, calib_ids):
    from appatlas.compression.decode import compare_greedy

    report = compress(tiny_model, None, CompressSpec("rtn", 4))
    quant = {n: r.quant for n, r in report.layers.items() if r.quant is not None}
    ref = GreedyDecoder(tiny_model, kernels=False, max_len=64)
    same = compare_greedy(ref, GreedyDecoder(tiny_model, kernels=False, max_len=64), calib_ids[0, :8].tolist(), 6)
    assert same["same_free_running"] and same["teacher_forced_agreement"] == 1.0
    emulated = GreedyDecoder(tiny_model, quant=quant, kernels=True, emulate=True, max_len=64)
    result = compare_greedy(ref, emulated, calib_ids[0, :8].tolist(), 6)
    assert 0.0 <= result["teacher_forced_agreement"] <= 1.0 and result["max_logit_diff"] < 1.0



def test_mixed_width_layers_round_trip_their_codes_exactly(tiny_model, calib_ids, tmp_path):
    from appatlas.compression.quant.gptq import GPTQ, GPTQConfig

    layer = tiny_model.model.layers[0].mlp.down_proj  # 128 inputs: four groups of 32
    solver = GPTQ(layer)
    solver.add_batch(torch.randn(256, 128))
    result = solver.quantize(GPTQConfig(4, 32, group_bits=(2, 4, 3, 2)))
    with torch.no_grad():
        layer.weight.copy_(result.weight)
    name = "model.layers.0.mlp.down_proj"
    save_compressed(tiny_model, None, {name: result}, tmp_path)
    loaded = load_compressed(tmp_path)
    q = loaded.quant[name]
    assert torch.equal(q.codes, result.quant.codes) and q.group_bits.tolist() == [2, 4, 3, 2]
    assert torch.equal(loaded.model.get_submodule(name).weight, result.weight)
    assert bits_per_weight({name: result}) == pytest.approx(result.quant.storage_bits() / result.weight.numel())


@pytest.mark.skipif(not (int4_available() and int8_available()), reason="no int4/int8 CPU kernels in this torch")
@pytest.mark.parametrize("kind", ["int4", "int8", "int4-vnni"])
def test_logit_bound_bounds_the_kernel_error(kind):
    from appatlas.compression.packed.kernels import Int4VnniOp

    if kind == "int4-vnni" and not vnni_available():
        pytest.skip("no AVX512-VNNI (or no compiler) for our int4 kernel")
    bits = 8 if kind == "int8" else 4
    q = _quant(96, 128, bits, 32 if bits == 4 else 128)
    op = {"int4": Int4Op, "int4-vnni": Int4VnniOp}[kind]([q], bound=True) if bits == 4 else Int8Op(q, bound=True)
    W = q.dequantize()
    gen = torch.Generator().manual_seed(bits)
    for scale in (0.1, 1.0, 30.0):
        for _ in range(8):
            x = torch.randn(128, generator=gen) * scale + torch.randn(1, generator=gen) * scale
            y = op(x[None])[0]
            assert torch.all((y - W @ x).abs() <= op.logit_bound(x, y))


def test_stacked_ops_run_each_block_exactly_and_mixed_ones_stay_per_block():
    from appatlas.compression.packed.kernels import PerBlock, StackedOp, stack_ops

    ops = [DenseOp(torch.randn(8, 16)) for _ in range(3)]
    stacked = stack_ops(ops)
    x = torch.randn(2, 16)
    assert isinstance(stacked, StackedOp)
    for i, op in enumerate(ops):
        assert torch.equal(stacked(x, i), op(x))
    assert isinstance(stack_ops([*ops, DenseOp(torch.randn(4, 16))]), PerBlock)


@pytest.mark.parametrize("vnni", [True, False])
@pytest.mark.parametrize("rescore", [1, 16])
def test_quantized_head_choice_is_the_exact_argmax(tiny_model, calib_ids, rescore, vnni):
    import torch.nn.functional as F

    report = compress(tiny_model, calib_ids, CompressSpec("rtn", 4, head_bits=4))
    quant = {n: r.quant for n, r in report.layers.items() if r.quant is not None}
    dec = GreedyDecoder(tiny_model, quant=quant, kernels=True, max_len=64, rescore=rescore, vnni=vnni)
    if int4_available():
        assert dec.head.kind == ("int4-vnni" if vnni and vnni_available() else "int4") and dec.certify
    ids = calib_ids[0, :24]
    dec._prefill(ids[:8], 0)
    fallbacks = 0
    with torch.inference_mode():
        for pos in range(8, 24):
            out = dec._next(ids[pos : pos + 1], torch.tensor([pos]))
            exact = F.linear(out[3], dec.head_weight)[0]
            assert dec._exact_choice(out) == int(exact.argmax())
            fallbacks += not bool(out[2])
    if rescore == 1 and dec.head.kind == "int4":  # one candidate and the bf16 kernel's wider bound: the fp32
        assert fallbacks > 0                       # fallback must have run (our kernel's bound is tighter)


def test_quantize_head_int4_groups_keep_tied_embedding(tiny_model):
    quant = quantize_head(tiny_model, bits=4, group_size=32)
    assert quant.bits == 4 and quant.group_size == 32 and quant.scales.shape[1] == 64 // 32
    assert torch.equal(tiny_model.get_output_embeddings().weight, quant.dequantize())
    assert tiny_model.get_input_embeddings().weight.data_ptr() == tiny_model.get_output_embeddings().weight.data_ptr()



@pytest.mark.skipif(not vnni_available(), reason="no AVX512-VNNI (or no compiler) for our int4 kernel")
@pytest.mark.parametrize(("bits", "group"), [(2, 32), (4, 32), (4, 64)])
def test_vnni_kernel_is_the_stored_weight_times_the_rounded_activation(bits, group):
    from appatlas.compression.packed.kernels import Int4VnniOp

    qs = [_quant(48, 128, bits, group), _quant(16, 128, bits, group)]
    x = torch.randn(3, 128) * 4
    x[:, 5] = 60.0  # an outlier channel: its group's step is coarse, the others' are not
    got = Int4VnniOp(qs)(x)
    emulated = Int4VnniOp(qs, emulate=True)(x)  # the activation's rounding replayed in torch, fp32 matmuls
    torch.testing.assert_close(got, emulated, rtol=1e-5, atol=1e-4)
    ref = DenseOp(torch.cat([q.dequantize() for q in qs]))(x)
    assert (got - ref).abs().max() <= 1e-3 * ref.abs().max()  # two int8 digits: finer than bf16


def test_vnni_op_refuses_layers_it_cannot_take():
    from appatlas.compression.errors import ConfigError
    from appatlas.compression.packed.kernels import Int4VnniOp

    with pytest.raises(ConfigError):
        Int4VnniOp([_quant(8, 128, 4, 32)])  # 8 rows: the kernel works on blocks of 16
