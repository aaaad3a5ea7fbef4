"""The folded OCR models compute what the wheel's models compute, with fewer element-wise passes."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(("name", "shape"), [("ch_PP-OCRv4_rec_infer.onnx", (2, 3, 48, 160)),
                                              ("ch_PP-OCRv4_det_infer.onnx", (1, 3, 224, 128))])
def test_folded_model_gives_the_same_outputs(ocr, name, shape) -> None:  # noqa: ANN001
    import numpy as np
    import onnxruntime as ort

    from appatlas.vision.fuse import fuse
    from appatlas.vision.ocr import model_dir

    raw = (model_dir() / name).read_bytes()
    folded, counts = fuse(raw)
    assert ocr.folded[name] == counts  # the engine loaded the folded model, not the shipped one
    # every hard-swish and every affine around a convolution of PP-LCNetV3 is gone
    assert counts["hard_swish"] >= 20 and counts["affine_after_conv"] >= 20 and counts["affine_before_conv"] >= 20

    def run(model: bytes, x: object) -> object:
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]

    def ops(model: bytes) -> int:  # element-wise nodes: Mul, Add, Div, Clip, by their op-type bytes
        return sum(model.count(op) for op in (b"\x22\x03Mul", b"\x22\x03Add", b"\x22\x03Div", b"\x22\x04Clip"))

    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    want, got = run(raw, x), run(folded, x)
    assert np.abs(want - got).max() < 1e-4
    assert ops(folded) < 0.5 * ops(raw)
