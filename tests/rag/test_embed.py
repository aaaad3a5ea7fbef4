"""The text embedder: a text's vector does not depend on what it is embedded with."""

from __future__ import annotations

import pytest

_TEXTS = ["turn off autosave notes", "OK", "Send a text message to Bob with the following content:'Goodmorning'",
          "tap 'More options' icon; leads to the 'About' screen about 'Frequently asked questions'"]


@pytest.mark.model
def test_a_text_has_the_same_vector_bits_alone_and_among_others(embedder) -> None:
    import torch

    alone = [embedder.encode([t])[0].tobytes() for t in _TEXTS]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # and whatever thread count the caller runs with
        together = embedder.encode([*_TEXTS, _TEXTS[0]])
        reversed_ = embedder.encode(["a much longer text that pads every other text of a batch " * 4,
                                     *reversed(_TEXTS)])[1:][::-1]
    finally:
        torch.set_num_threads(threads)
    assert [v.tobytes() for v in together] == [*alone, alone[0]]
    assert [v.tobytes() for v in reversed_] == alone
