from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from appatlas.errors import CaptionerError
from appatlas.graph.atlas import Atlas
from appatlas.rag.captioner import caption_atlas
from appatlas.rag.llm import LLMCaptioner
from appatlas.rag.views import atlas_views
from tests.rag.conftest import build_notes_atlas
from tests.rag.fake_openai import FakeOpenAI, Reply


@pytest.fixture
def server():
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


@pytest.fixture
def views(tmp_path):
    with Atlas.open(build_notes_atlas(tmp_path / "a.atlas")) as atlas:
        return atlas_views(atlas, screenshots=True)


def _screen(views):
    return next(v for v in views.screens.values() if v.facts.kind == "dialog")


def test_captions_come_from_the_endpoint_and_name_the_model(server, views) -> None:
    server.default = Reply("Dialog to add a new note with a label and a type.")
    caption = LLMCaptioner(base_url=server.base_url, model="tiny").caption_screen(_screen(views), views)
    assert caption.text == "Dialog to add a new note with a label and a type."
    assert caption.by == "llm:tiny"
    assert server.requests[0]["model"] == "tiny"


def test_the_prompt_carries_what_the_widgets_say(server, views) -> None:
    LLMCaptioner(base_url=server.base_url, model="m").caption_screen(_screen(views), views)
    prompt = server.requests[0]["messages"][1]["content"][0]["text"]
    assert "Add a new note" in prompt and "Checklist" in prompt


def test_a_screenshot_is_sent_as_an_image_part_to_a_model_that_takes_images(server, views) -> None:
    view = _screen(views)
    view.example = replace(view.example, screenshot=b"\x89PNG fake")
    LLMCaptioner(base_url=server.base_url, model="m", images=True).caption_screen(view, views)
    parts = server.requests[0]["messages"][1]["content"]
    assert parts[1]["type"] == "image_url"
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_a_timeout_falls_back_to_the_heuristic_caption_with_a_warning(server, views, caplog) -> None:
    server.default = Reply(delay=1.5)
    captioner = LLMCaptioner(base_url=server.base_url, model="m", timeout=0.3)
    with caplog.at_level(logging.WARNING):
        caption = captioner.caption_screen(_screen(views), views)
    assert caption.by == "heuristic" and caption.text.startswith("'Add a new note' dialog")
    assert "did not answer" in caplog.text


def test_without_fallback_a_timeout_is_a_captioner_error(server, views) -> None:
    server.default = Reply(delay=1.5)
    with pytest.raises(CaptionerError, match="did not answer within"):
        LLMCaptioner(base_url=server.base_url, model="m", timeout=0.3, fallback=False).caption_screen(
            _screen(views), views)


def test_an_http_error_names_the_status(server, views) -> None:
    server.default = Reply(status=500)
    with pytest.raises(CaptionerError, match="HTTP 500"):
        LLMCaptioner(base_url=server.base_url, model="m", fallback=False).caption_screen(_screen(views), views)


def test_a_dead_endpoint_is_asked_only_until_it_has_failed_enough(server, views) -> None:
    server.default = Reply(status=503)
    captioner = LLMCaptioner(base_url=server.base_url, model="m", max_failures=2)
    for transition in list(views.transitions.values())[:5]:
        assert captioner.caption_transition(transition, views).by == "heuristic"
    assert len(server.requests) == 2


def test_an_indexing_run_survives_a_flaky_endpoint_and_records_who_captioned(server, tmp_path) -> None:
    server.script.extend([Reply("first"), Reply(status=500), Reply("third")])
    with Atlas.open(build_notes_atlas(tmp_path / "b.atlas")) as atlas:
        report = caption_atlas(atlas, LLMCaptioner(base_url=server.base_url, model="m", max_failures=10))
        by_llm = atlas.captions(captioner="llm:m")
        by_heuristic = atlas.captions(captioner="heuristic")
    assert report.by["heuristic"] == 1 and report.by["llm:m"] == report.screens + report.transitions - 1
    assert not set(by_llm) & set(by_heuristic)


def test_without_an_endpoint_or_key_the_error_says_how_to_give_one(monkeypatch) -> None:
    for name in ("APPATLAS_LLM_BASE_URL", "OPENAI_BASE_URL", "APPATLAS_LLM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(CaptionerError, match="--llm-base-url"):
        LLMCaptioner()
