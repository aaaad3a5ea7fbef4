"""GGUF export: llama.cpp block layouts read back by the gguf package, exact types exact, the CLI end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from appatlas.compression.kquants import K_QUANTS, q4_1_from_codes, q8_0_from_codes
from appatlas.compression.quant.grid import QuantizedWeight, assemble, find_params, quantize_codes


def _gguf_dequantize(blocks: np.ndarray, name: str, shape) -> np.ndarray:
    import gguf

    return gguf.quants.dequantize(blocks, getattr(gguf.GGMLQuantizationType, name)).reshape(shape)


@pytest.mark.parametrize(("name", "rmse"), [("Q4_K", 0.09), ("Q3_K", 0.18), ("Q2_K", 0.36)])
def test_k_quants_are_read_back_by_the_gguf_dequantizer(name, rmse):
    """A wrong byte layout scrambles weights (error ~1.4); a right one leaves the grid's rounding only."""
    quantize, bpw = K_QUANTS[name]
    x = np.random.default_rng(0).standard_normal((6, 512)).astype(np.float32)
    blocks = quantize(x)
    assert blocks.shape == (6, int(512 * bpw / 8))
    y = _gguf_dequantize(blocks, name, x.shape)
    assert np.sqrt(((y - x) ** 2).mean()) < rmse
    # weights already on the grid stay there: quantizing the read-back weights gives them back
    np.testing.assert_allclose(_gguf_dequantize(quantize(y), name, x.shape), y, rtol=0, atol=1e-6)


def test_q4_1_and_q8_0_hold_our_codes_exactly():
    w = torch.randn(32, 128)
    params = [find_params(w[:, i : i + 32], 3) for i in range(0, 128, 32)]
    codes = torch.cat([quantize_codes(w[:, i : i + 32], p, 3) for i, p in zip(range(0, 128, 32), params, strict=True)], 1)
    q = assemble(codes, params, bits=3, group_size=32)  # 3-bit codes fit the 4-bit grid
    assert np.array_equal(_gguf_dequantize(q4_1_from_codes(q), "Q4_1", (32, 128)), q.dequantize().numpy())
    scales = (w.abs().reshape(32, 4, 32).amax(-1) / 127).half()
    sym = torch.clamp(torch.round(w / scales.float().repeat_interleave(32, 1)), -127, 127) + 128
    q8 = QuantizedWeight(sym.to(torch.uint8), scales, (-128.0 * scales.float()).half(), None, 8, 32)
    assert np.array_equal(_gguf_dequantize(q8_0_from_codes(q8), "Q8_0", (32, 128)), q8.dequantize().numpy())
    with pytest.raises(ValueError):
        q8_0_from_codes(QuantizedWeight(q8.codes, scales, scales, None, 8, 32))  # asymmetric: not Q8_0


def _wide_model():
    """A tiny Llama whose down_proj rows (256 inputs) can take K-quants."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=256, max_position_embeddings=256, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2 and "embed" not in name:
                p.normal_(0, 0.1)
    return model.eval()


@pytest.fixture
def compressed(tmp_path, tiny_tokenizer):
    from appatlas.compression.api import save_report
    from appatlas.compression.pipeline import compress

    def make(spec, name):
        model = _wide_model()
        report = compress(model, torch.randint(0, 256, (4, 64)), spec)
        save_report(model, tiny_tokenizer, report, tmp_path / name, base_model="tiny")
        return tmp_path / name

    return make


def test_export_round_trips_exactly_and_the_allocator_mix_keeps_low_widths(compressed, tmp_path):
    from appatlas.compression.export_gguf import export_gguf, load_gguf_model, verify_gguf
    from appatlas.compression.packed.format import load_compressed
    from appatlas.compression.pipeline import CompressSpec

    folder = compressed(CompressSpec("rtn", 2, head_bits=4), "w2")
    reference = load_compressed(folder).model
    ids = torch.randint(0, 256, (2, 48))
    exact = export_gguf(folder, tmp_path / "exact.gguf")
    assert exact.type_counts() == {"F32": 5, "Q4_1": 15}  # q/k (permuted), v, o, gate, up, down x2 + tied head
    check = verify_gguf(tmp_path / "exact.gguf", reference, ids)
    assert check["max_abs_logit_diff"] <= 1e-3
    mix = export_gguf(folder, tmp_path / "mix.gguf", types="allocator")
    assert mix.types["blk.0.ffn_down.weight"] == "Q2_K" and mix.types["blk.0.attn_q.weight"] == "Q4_1"
    assert mix.bytes < exact.bytes
    with torch.no_grad():  # the 2-bit down_proj requantized to Q2_K: close to the model, not equal
        diff = (load_gguf_model(tmp_path / "mix.gguf")(ids).logits - reference(ids).logits).abs().max()
    assert 0 < float(diff) < 0.5


def test_export_gguf_command_verifies_what_it_wrote(compressed, tmp_path):
    from appatlas.cli import app
    from appatlas.compression.pipeline import CompressSpec

    folder = compressed(CompressSpec("rtn", 4), "w4")
    out = tmp_path / "m.gguf"
    result = CliRunner().invoke(app, ["export", "gguf", str(folder), "--out", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "max |logit difference| 0 " in result.output and out.stat().st_size > 0
    result = CliRunner().invoke(app, ["export", "gguf", str(folder), "--out", str(out), "--types", "Q5"])
    assert result.exit_code == 1 and "ConfigError" in result.output
