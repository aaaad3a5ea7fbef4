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
from appatlas.compression.packed.kernels import (
    DenseOp,
    Int4Op,
    Int8Op,
    int4_available,
    int8_available,
    make_op,
)
from appatlas.compression.packed.vnni import KERNELS, build_kernels, cpu_kernels
from appatlas.compression.pipeline import CompressSpec, compress, quantize_head
from appatlas.compression.quant.grid import assemble, find_params, quantize_codes
from tests.compression.conftest import make_tiny_model


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
def test_torch_int4_kernel_matches_its_emulation(bits):
    qs = [_quant(48, 128, bits, 32), _quant(16, 128, bits, 32)]
    x = torch.randn(3, 128)
    got = Int4Op(qs)(x)
    # the kernel's numerics: bf16 activation, bf16 scale and zero, fp32 sums, bf16 output (one ulp apart at most)
    emulated = Int4Op(qs, emulate=True)(x)
    assert torch.all((got - emulated).abs() <= 2.0**-7 * emulated.abs() + 1e-4)
    ref = DenseOp(torch.cat([q.dequantize() for q in qs]))(x)
    assert (got - ref).abs().max() <= 0.05 * ref.abs().max()  # the bf16 scale/zero gap of 2-bit groups: ~3%


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


# What `auto` must pick: the best of ours the CPU supports (a broken build fails the test, it is no skip),
# else torch's int4 kernel (where this torch has one).
def _expected_int4_kind() -> str:
    ours = cpu_kernels()
    return f"int4-{ours[0]}" if ours else "int4"


def test_packed_decoder_uses_kernels_and_follows_reference(tiny_model, calib_ids, monkeypatch):
    monkeypatch.delenv("APPATLAS_INT4_KERNEL", raising=False)
    report = compress(tiny_model, calib_ids, CompressSpec("rtn", 4, head_bits=8))
    quant = {n: r.quant for n, r in report.layers.items() if r.quant is not None}
    fast = GreedyDecoder(tiny_model, quant=quant, kernels=True, max_len=64)
    ref = GreedyDecoder(tiny_model, quant=quant, kernels=False, max_len=64)
    if cpu_kernels() or int4_available():
        assert fast.qkv.kind == _expected_int4_kind()
    if int4_available():
        assert GreedyDecoder(tiny_model, quant=quant, kernels=True, max_len=64, int4_kernel="torch").qkv.kind == "int4"
    ids = calib_ids[0, :16]
    a, b = fast.forward(ids, 0), ref.forward(ids, 0)
    assert (a - b).abs().max() <= 0.05 * b.abs().max()


def test_quantize_head_keeps_tied_embedding(tiny_model):
    quant = quantize_head(tiny_model)
    assert quant.bits == 8 and quant.scales.shape[1] == 1
    assert tiny_model.get_input_embeddings().weight.data_ptr() == tiny_model.get_output_embeddings().weight.data_ptr()


def test_compare_greedy_reports_agreement(tiny_model, calib_ids):
    from appatlas.compression.decode import compare_greedy

    prompt = calib_ids[0, :8].tolist()
    ref = GreedyDecoder(tiny_model, kernels=False, max_len=64)
    same = compare_greedy(ref, GreedyDecoder(tiny_model, kernels=False, max_len=64), prompt, 6)
    assert same["same_free_running"] and same["first_difference"] is None
    assert same["teacher_forced_agreement"] == 1.0 and same["max_logit_diff"] == 0.0
    # a 2-bit model disagrees somewhere; the figures must be what teacher forcing gives, counted here again
    other = make_tiny_model()
    compress(other, None, CompressSpec("rtn", 2))
    cand = GreedyDecoder(other, kernels=False, max_len=64)
    result = compare_greedy(ref, cand, prompt, 6)
    ref_tokens = ref.generate(prompt, 6).tokens
    ids = torch.tensor(prompt + ref_tokens[:-1])
    with torch.no_grad():
        a = tiny_model(ids[None]).logits[0, len(prompt) - 1 :]
        b = other(ids[None]).logits[0, len(prompt) - 1 :]
    agree = (a.argmax(-1) == b.argmax(-1)).float().mean().item()
    assert agree < 1.0  # else this case cannot tell a right count from "always 1"
    assert result["teacher_forced_agreement"] == pytest.approx(agree)
    assert len(result["disagreement_margins"]) == round((1 - agree) * len(ref_tokens))
    assert result["max_logit_diff"] == pytest.approx(float((a - b).abs().max()), abs=1e-3)
    cand_tokens = cand.generate(prompt, 6).tokens
    first = next((i for i, (x, y) in enumerate(zip(ref_tokens, cand_tokens, strict=True)) if x != y), None)
    assert result["first_difference"] == first and result["same_free_running"] == (first is None)



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


def _ours(isa: str) -> None:
    """Skip only where the CPU cannot run ``isa``; where it can, a failed build fails the test."""
    if isa not in cpu_kernels():
        pytest.skip(f"this CPU lacks the instructions of the {isa} kernel")
    build_kernels()


@pytest.mark.parametrize("kind", ["int4", "int8", *KERNELS])
def test_logit_bound_bounds_the_kernel_error(kind):
    from appatlas.compression.packed.kernels import Int4VnniOp

    if kind in KERNELS:
        _ours(kind)
    elif not (int4_available() and int8_available()):
        pytest.skip("no int4/int8 CPU kernels in this torch")
    bits = 8 if kind == "int8" else 4
    q = _quant(96, 128, bits, 32 if bits == 4 else 128)
    if kind in KERNELS:
        op = Int4VnniOp([q], bound=True, isa=kind)
    else:
        op = Int4Op([q], bound=True) if bits == 4 else Int8Op(q, bound=True)
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


@pytest.mark.parametrize("kernel", ["auto", "torch"])
@pytest.mark.parametrize("rescore", [1, 16])
def test_quantized_head_choice_is_the_exact_argmax(tiny_model, calib_ids, rescore, kernel):
    import torch.nn.functional as F

    if kernel == "torch" and not int4_available():
        pytest.skip("no int4 CPU kernel in this torch")
    report = compress(tiny_model, calib_ids, CompressSpec("rtn", 4, head_bits=4))
    quant = {n: r.quant for n, r in report.layers.items() if r.quant is not None}
    dec = GreedyDecoder(tiny_model, quant=quant, kernels=True, max_len=64, rescore=rescore, int4_kernel=kernel)
    if kernel == "torch":
        assert dec.head.kind == "int4" and dec.certify
    elif cpu_kernels() or int4_available():
        assert dec.head.kind == _expected_int4_kind() and dec.certify
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



@pytest.mark.parametrize("isa", KERNELS)
@pytest.mark.parametrize(("bits", "group"), [(2, 32), (4, 32), (4, 64)])
def test_int4_kernel_is_the_stored_weight_times_the_rounded_activation(bits, group, isa):
    from appatlas.compression.packed.kernels import Int4VnniOp

    _ours(isa)
    qs = [_quant(48, 128, bits, group), _quant(16, 128, bits, group)]
    x = torch.randn(7, 128) * 4  # 7 tokens: the GEMM's tiles of 4 and 2 and a single one
    x[:, 5] = 60.0  # an outlier channel: its group's step is coarse, the others' are not
    op = Int4VnniOp(qs, isa=isa)
    assert op.kind == f"int4-{isa}"
    got = op(x)
    emulated = Int4VnniOp(qs, emulate=True)(x)  # the activation's rounding replayed in torch, fp32 matmuls
    torch.testing.assert_close(got, emulated, rtol=1e-5, atol=1e-4)
    ref = DenseOp(torch.cat([q.dequantize() for q in qs]))(x)
    assert (got - ref).abs().max() <= 1e-3 * ref.abs().max()  # two int8 digits: finer than bf16
    # a prompt (GEMM) gives each token exactly what decoding it alone (GEMV) gives
    assert torch.equal(got, torch.cat([op(x[i : i + 1]) for i in range(x.shape[0])]))


def test_every_kernel_the_cpu_supports_gives_the_same_bits():
    """The three implementations compute the same integer sums and fp32 operations in the same order."""
    from appatlas.compression.packed.kernels import Int4VnniOp

    ours = cpu_kernels()
    if not ours:
        pytest.skip("this CPU has not even AVX2: only torch's int4 kernel can run")
    build_kernels()  # a CPU that supports one of ours must build it: no skip here
    for group in (32, 64):  # AVX2 sums 4 input pairs in int16, then widens: one chunk per group, or two
        qs = [_quant(64, 256, 4, group)]
        x = torch.randn(9, 256) * 3  # a prompt: tiles of 4 tokens and a single one
        outs = {isa: Int4VnniOp(qs, isa=isa)(x) for isa in ours}
        for isa in ours:
            assert torch.equal(outs[isa], outs[ours[0]]), (isa, group)


def test_forcing_a_kernel_by_environment(monkeypatch):
    from appatlas.compression.errors import KernelError
    from appatlas.compression.packed.vnni import describe_kernel, select_kernel

    monkeypatch.setenv("APPATLAS_INT4_KERNEL", "torch")
    assert select_kernel() == "torch" and "torch's" in describe_kernel()
    monkeypatch.setenv("APPATLAS_INT4_KERNEL", "avx3")
    with pytest.raises(KernelError, match="avx512vnni"):
        select_kernel()
    ours = cpu_kernels()
    if ours:
        monkeypatch.setenv("APPATLAS_INT4_KERNEL", ours[-1])
        assert select_kernel() == ours[-1] and f"appatlas {ours[-1]}" in describe_kernel()
        q = _quant(16, 64, 4, 32)
        assert make_op([q.dequantize()], [q]).kind == f"int4-{ours[-1]}"
    # an AVX2-only CPU (a CI runner): forcing the AVX-512 kernel is an error that names what to do; auto takes avx2
    import appatlas.compression.packed.vnni as vnni

    monkeypatch.setattr(vnni, "cpu_kernels", lambda: ("avx2",))
    monkeypatch.setenv("APPATLAS_INT4_KERNEL", "avx512vnni")
    with pytest.raises(KernelError, match="cannot run the avx512vnni"):
        select_kernel()
    monkeypatch.setenv("APPATLAS_INT4_KERNEL", "auto")
    if ours:
        assert select_kernel() == "avx2"


def test_vnni_op_refuses_layers_it_cannot_take():
    from appatlas.compression.errors import ConfigError
    from appatlas.compression.packed.kernels import Int4VnniOp

    with pytest.raises(ConfigError):
        Int4VnniOp([_quant(8, 128, 4, 32)])  # 8 rows: the kernel works on blocks of 16


def test_option_scores_share_the_prompt_cache_and_equal_separate_forwards(tiny_model, calib_ids):
    """Options scored as one block-diagonal batch after the prompt = each option run after the prompt alone."""
    dec = GreedyDecoder(tiny_model, kernels=False, max_len=96)
    prompt = calib_ids[0, :40].tolist()
    options = [calib_ids[1, :5].tolist(), calib_ids[2, :8].tolist(), calib_ids[3, :1].tolist(), calib_ids[4, :3].tolist()]
    got = dec.score_options(prompt, options)
    for o, score in zip(options, got, strict=True):
        with torch.no_grad():
            logp = torch.log_softmax(tiny_model(torch.tensor([prompt + o])).logits[0].float(), -1)
        want = sum(float(logp[len(prompt) - 1 + t, o[t]]) for t in range(len(o))) / len(o)
        assert score == pytest.approx(want, abs=1e-4)
    assert len(set(got)) == len(got)  # distinct options, distinct scores (a broken mask makes them mix)


def test_kernel_perplexity_equals_the_model_forward_for_dense_ops_and_follows_the_kernels(tiny_model, calib_ids):
    from appatlas.compression.evaluate import kernel_perplexity, perplexity

    windows = calib_ids[:3]
    dense = GreedyDecoder(tiny_model, kernels=False, max_len=64)
    assert kernel_perplexity(dense, windows) == pytest.approx(perplexity(tiny_model, windows), rel=1e-5)
    report = compress(tiny_model, None, CompressSpec("rtn", 4, head_bits=4))
    quant = {n: r.quant for n, r in report.layers.items() if r.quant is not None}
    packed = GreedyDecoder(tiny_model, quant=quant, kernels=True, max_len=64)
    emulated = GreedyDecoder(tiny_model, quant=quant, kernels=True, emulate=True, max_len=64)
    through = kernel_perplexity(packed, windows)
    assert through == pytest.approx(kernel_perplexity(emulated, windows), rel=1e-4)
    assert through != perplexity(tiny_model, windows)  # the kernels' own rounding shows, however little
    assert through == pytest.approx(perplexity(tiny_model, windows), rel=0.01)
