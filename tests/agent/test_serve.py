"""`appatlas serve` through the real openai client: chat, streaming, models, errors, the safety rules."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import openai
import pytest

from appatlas.agent.serve import ServeConfig, is_loopback, make_server, serve_in_thread
from appatlas.errors import ServeRefused

MSGS = [{"role": "user", "content": "Say hi"}]


@pytest.fixture
def served(tiny_lm) -> Iterator[tuple[str, int]]:
    server, thread = serve_in_thread(tiny_lm, ServeConfig(port=0, model_name="tiny", max_tokens=16, max_body=4096))
    try:
        yield "127.0.0.1", server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def client(served) -> openai.OpenAI:
    host, port = served
    return openai.OpenAI(base_url=f"http://{host}:{port}/v1", api_key="unused", max_retries=0, timeout=30)


def _raw(served, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection(*served, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_models_lists_the_served_model(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["tiny"]


def test_chat_completion_answers_with_usage(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="tiny", messages=MSGS, max_tokens=6, temperature=0)
    assert reply.choices[0].message.role == "assistant"
    assert reply.usage.completion_tokens <= 6 and reply.usage.prompt_tokens > 0


def test_streamed_chat_is_the_same_text_as_the_plain_one(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model="tiny", messages=MSGS, max_tokens=8, temperature=0)
    stream = client.chat.completions.create(model="tiny", messages=MSGS, max_tokens=8, temperature=0, stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_generation_length_is_capped_by_the_server(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="tiny", messages=MSGS, max_tokens=10_000, temperature=0)
    assert reply.usage.completion_tokens <= 16


def test_a_malformed_request_gets_an_openai_style_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="tiny", messages=[{"role": "wizard", "content": "x"}])
    assert err.value.body["param"] == "messages[0]"


def test_invalid_json_gets_an_error_object_and_the_server_lives_on(served, client: openai.OpenAI) -> None:
    status, body = _raw(served, "POST", "/v1/chat/completions", b"{not json",
                        {"Content-Type": "application/json"})
    assert status == 400 and body["error"]["code"] == "invalid_json"
    assert [m.id for m in client.models.list()] == ["tiny"]


def test_an_oversized_body_is_refused_with_413(served) -> None:
    body = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "x" * 5000}]}).encode()
    status, err = _raw(served, "POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    assert status == 413 and err["error"]["code"] == "request_too_large"


def test_an_unknown_route_is_a_404_error_object(served) -> None:
    status, body = _raw(served, "GET", "/v2/whatever")
    assert status == 404 and "error" in body


def test_a_non_loopback_host_without_a_key_is_refused(tiny_lm) -> None:
    warnings: list[str] = []
    with pytest.raises(ServeRefused, match="--api-key"):
        make_server(tiny_lm, ServeConfig(host="0.0.0.0", port=0), warn=warnings.append)
    assert warnings and "anyone" in warnings[0]


def test_with_a_key_requests_without_it_are_unauthorised(tiny_lm) -> None:
    server, thread = serve_in_thread(tiny_lm, ServeConfig(port=0, api_key="s3cret", model_name="tiny"))
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/v1"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=base, api_key="wrong", max_retries=0).models.list()
        assert [m.id for m in openai.OpenAI(base_url=base, api_key="s3cret", max_retries=0).models.list()] == ["tiny"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("host,loop", [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                       ("0.0.0.0", False), ("192.168.1.5", False), ("example.com", False)])
def test_is_loopback(host: str, loop: bool) -> None:
    assert is_loopback(host) is loop


def test_openai_lm_gets_the_local_models_greedy_text_through_the_server(served, tiny_lm) -> None:
    from appatlas.agent.llm_openai import OpenAILM

    host, port = served
    lm = OpenAILM(model="tiny", base_url=f"http://{host}:{port}/v1", api_key="x", timeout=30)
    assert lm.chat(MSGS, max_tokens=8) == tiny_lm.chat(MSGS, max_tokens=8)


@pytest.mark.model
def test_smollm2_answers_a_chat_through_the_server(smollm2) -> None:
    server, thread = serve_in_thread(smollm2, ServeConfig(port=0, model_name="smollm2-135m", max_tokens=12))
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", api_key="x",
                               max_retries=0, timeout=60)
        reply = client.chat.completions.create(model="smollm2-135m", temperature=0, max_tokens=12,
                                               messages=[{"role": "user", "content": "What is the capital of France?"}])
        assert "Paris" in reply.choices[0].message.content
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
