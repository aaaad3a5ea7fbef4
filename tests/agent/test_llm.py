"""The LLM interface: likelihood choices of the local model, generation bounds, the OpenAI client's errors."""

from __future__ import annotations

import math
import socket
import threading
import time

import pytest
import torch

from appatlas.agent.llm import make_llm, numbered_choice, parse_choice
from appatlas.agent.llm_openai import OpenAILM
from appatlas.errors import LLMError, ModelMissing

OPTIONS = ["tap 'Settings'", "tap 'New note'", "press back", "type 'Groceries' into 'Label'"]
CONTEXT = "Goal: create a note named 'Groceries'.\nScreen: Atlas Notes.\nNext action:"


def _full_scores(lm, context: str, options: list[str]) -> list[float]:
    prefix = lm._context_ids(context)
    out = []
    for o in options:
        ids = lm.tokenizer(o, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            logp = torch.log_softmax(lm.model(input_ids=torch.tensor([prefix + ids])).logits[0].float(), -1)
        out.append(sum(float(logp[len(prefix) - 1 + t, ids[t]]) for t in range(len(ids))) / len(ids))
    return out


def test_cached_prefix_scores_equal_scoring_each_full_sequence(tiny_lm) -> None:
    scores = tiny_lm.score(tiny_lm._context_ids(CONTEXT), OPTIONS)
    assert scores == pytest.approx(_full_scores(tiny_lm, CONTEXT, OPTIONS), abs=1e-4)


def test_calibrated_scores_are_relative_to_the_option_with_no_task(tiny_lm) -> None:
    from appatlas.agent.llm_local import _NEUTRAL

    _, scores = tiny_lm.choose(CONTEXT, OPTIONS)
    raw = _full_scores(tiny_lm, CONTEXT, OPTIONS)
    prior = _full_scores(tiny_lm, _NEUTRAL, OPTIONS)
    assert scores == pytest.approx([r - p for r, p in zip(raw, prior, strict=True)], abs=1e-4)


def test_choose_returns_the_index_of_the_best_score(tiny_lm) -> None:
    index, scores = tiny_lm.choose(CONTEXT, OPTIONS)
    assert len(scores) == len(OPTIONS) and scores[index] == max(scores)


def test_scores_do_not_depend_on_the_batch_size(tiny_lm) -> None:
    _, big = tiny_lm.choose(CONTEXT, OPTIONS)
    old = tiny_lm.batch
    try:
        tiny_lm.batch = 1
        _, small = tiny_lm.choose(CONTEXT, OPTIONS)
    finally:
        tiny_lm.batch = old
    assert small == pytest.approx(big, abs=1e-4)


def test_choosing_among_no_options_is_an_llm_error(tiny_lm) -> None:
    with pytest.raises(LLMError):
        tiny_lm.choose(CONTEXT, [])


def test_generation_stops_at_max_tokens_and_says_length(tiny_lm) -> None:
    chunks = list(tiny_lm.generate([{"role": "user", "content": "hi"}], max_tokens=5, temperature=0.0))
    last = chunks[-1]
    assert last.completion_tokens <= 5
    assert last.finish_reason == ("length" if last.completion_tokens == 5 else "stop")


def test_greedy_generation_is_deterministic(tiny_lm) -> None:
    msgs = [{"role": "user", "content": "hello"}]
    assert tiny_lm.chat(msgs, max_tokens=8) == tiny_lm.chat(msgs, max_tokens=8)


def test_a_prompt_over_the_limit_is_refused_with_llm_error(tiny_lm) -> None:
    with pytest.raises(LLMError, match="shorten"):
        next(tiny_lm.generate([{"role": "user", "content": "x" * (tiny_lm.max_prompt_tokens + 10)}], max_tokens=2))


def test_make_llm_none_means_graph_only() -> None:
    assert make_llm("none") is None


def test_make_llm_rejects_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="local-compressed"):
        make_llm("gpt-9")


def test_local_compressed_without_a_folder_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APPATLAS_COMPRESSED_MODEL", raising=False)
    with pytest.raises(ModelMissing, match="appatlas compress"):
        make_llm("local-compressed")


def test_a_missing_model_folder_is_model_missing(tmp_path) -> None:
    with pytest.raises(ModelMissing):
        make_llm("local", model=str(tmp_path / "nothing"))


def test_the_local_kind_loads_any_causal_lm_folder(tiny_model_dir) -> None:
    lm = make_llm("local", model=str(tiny_model_dir))
    assert lm.choose(CONTEXT, OPTIONS)[0] in range(len(OPTIONS))


def test_parse_choice_takes_the_first_number_in_range() -> None:
    assert parse_choice("I pick 7, no: option 2", 4) == 2


def test_parse_choice_without_a_number_is_an_llm_error() -> None:
    with pytest.raises(LLMError, match="none of the 3 options"):
        parse_choice("the settings button", 3)


def test_numbered_choice_lists_every_option_with_its_number() -> None:
    text = numbered_choice("goal", ["a", "b"])[-1]["content"]
    assert "0. a" in text and "1. b" in text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_endpoint_is_an_llm_error_naming_the_url() -> None:
    lm = OpenAILM(model="m", base_url=f"http://127.0.0.1:{_free_port()}/v1", api_key="k", timeout=2, max_retries=0)
    with pytest.raises(LLMError, match="cannot reach"):
        lm.chat([{"role": "user", "content": "hi"}])


def test_a_silent_endpoint_times_out_as_an_llm_error() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:  # accept and never answer
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        lm = OpenAILM(model="m", base_url=f"http://127.0.0.1:{listener.getsockname()[1]}/v1", api_key="k",
                      timeout=0.5, max_retries=0)
        began = time.perf_counter()
        with pytest.raises(LLMError, match="did not answer within"):
            lm.choose("goal", ["a", "b"])
        # Its own 0.5 s timeout, not openai's default of 600 s: 30 s is 60x, room for 2 loaded cores.
        assert time.perf_counter() - began < 30
    finally:
        stop.set()
        t.join()
        for s in accepted:
            s.close()
        listener.close()


@pytest.mark.model
def test_smollm2_scores_every_option_with_a_finite_log_probability(smollm2) -> None:
    scores = smollm2.score(smollm2._context_ids(CONTEXT), OPTIONS)
    assert all(math.isfinite(s) and s < 0 for s in scores)
