"""Fixtures: a tiny randomly initialised Llama (no downloads) with a byte-level tokenizer."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import byte_level_bpe


def _byte_tokenizer():
    from tokenizers import pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=byte_level_bpe(),
                                   eos_token=sorted(pre_tokenizers.ByteLevel.alphabet())[0])


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same random state, whatever ran before it (no order dependence)."""
    import random

    import numpy as np

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return _byte_tokenizer()


def make_tiny_model(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=256, max_position_embeddings=256, tie_word_embeddings=True, rms_norm_eps=1e-5,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # larger than the 0.02 default so that compression has visible effects
        for name, p in model.named_parameters():
            if p.dim() == 2 and "embed" not in name:
                p.normal_(0, 0.1)
    return model.eval()


@pytest.fixture
def tiny_model():
    return make_tiny_model()


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory, tiny_tokenizer):
    """A saved tiny model folder usable with ``load_causal_lm`` and the CLI."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    make_tiny_model().save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def calib_ids():
    gen = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (8, 64), generator=gen)


@pytest.fixture(scope="session")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "text.txt"
    words = "the quick brown fox jumps over the lazy dog while a small cat watches from the old wall".split()
    gen = torch.Generator().manual_seed(2)
    lines = [" ".join(words[i] for i in torch.randint(0, len(words), (12,), generator=gen).tolist()) for _ in range(200)]
    path.write_text("\n".join(lines))
    return path
