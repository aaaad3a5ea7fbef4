"""Fixtures for the pixel tests: the OCR engine, loaded once per session (about half a second)."""

from __future__ import annotations

import pytest

from appatlas.errors import ModelMissing


@pytest.fixture(scope="session")
def ocr():  # noqa: ANN201 - appatlas.vision.ocr.Ocr
    from appatlas.vision.ocr import load_ocr

    try:
        return load_ocr()
    except ModelMissing as exc:  # the README's test line installs them; a bare install may not have them
        pytest.skip(f"OCR models not installed: {exc}")
