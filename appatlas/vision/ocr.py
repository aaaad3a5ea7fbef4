"""Text on a screenshot and where it is: PP-OCRv4 detection + recognition on CPU with onnxruntime.

The models are the ONNX files shipped inside the `rapidocr-onnxruntime` wheel (installed with
`--no-deps`: only its model files are used, so its `opencv-python` requirement, which would
clash with `opencv-python-headless`, is not needed). Nothing is downloaded at run time.

Why not RapidOCR's own pipeline: its detector scales a phone screenshot *up* to 736 px on the
short side and its recogniser pads every crop to 320 px, together ~0.8 s a screen on 2 cores.
UI text is large and horizontal, so detection runs at 640 px on the long side and crops are
batched at their own width. Crops are padded only to the widest of their batch: padding every
crop to 320 px (as RapidOCR does) also makes this model drop spaces between words. Recognised
lines are kept by the hash of their pixels, since screens repeat during a crawl.

Where the time goes (CPU of a cold read of a 540x1140 screenshot): ~45 ms detection, ~13 ms of
recognition per text line, ~35 ms of OpenCV finders (run beside the OCR, `parse`). Both models
are loaded through `fuse`, which folds the element-wise chains of their export into the
convolutions (same outputs; recognition ~45% and detection ~30% less CPU). What did not pay:
detection at 512 or 448 px (OCR characters 99.6 -> 98.4 / 96.2%: the crops come from its boxes),
recognition at 40 or 32 px high (96.2 / 80.9%: doubled letters and spaces are lost), tighter
crops (spaces lost, no time saved), OpenCV's DNN module (as fast as onnxruntime here).
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appatlas.errors import ModelMissing

__all__ = ["INSTALL_HINT", "Ocr", "TextBox", "load_ocr", "worker_pool"]

INSTALL_HINT = ('pip install "appatlas[vision]" && pip install --no-deps rapidocr-onnxruntime==1.4.4 '
                "(the OCR models ship inside that wheel)")
_DET = "ch_PP-OCRv4_det_infer.onnx"
_REC = "ch_PP-OCRv4_rec_infer.onnx"
_REC_H = 48
_MAX_RATIO = 30  # a text line wider than 30x its height is cut (long lines of UI text are rare)


@dataclass(frozen=True, slots=True)
class TextBox:
    """One line of text found on an image: its box in image pixels, the text and a confidence."""

    x1: int
    y1: int
    x2: int
    y2: int
    text: str
    score: float


def model_dir() -> Path:
    """The folder of the ONNX models inside the installed `rapidocr_onnxruntime` wheel."""
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(f"the OCR models are not installed; {INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    if not (folder / _DET).is_file() or not (folder / _REC).is_file():
        raise ModelMissing(f"the OCR models are missing from {folder}; reinstall with {INSTALL_HINT}")
    return folder


def _runtime() -> tuple[Any, Any, Any]:
    try:
        import cv2
        import numpy as np
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelMissing(f"reading pixels needs {exc.name}; {INSTALL_HINT}") from None
    return cv2, np, ort


class Ocr:
    """Detects and reads text lines. One instance holds both ONNX sessions; calls are thread-safe
    (sessions run concurrently; the line cache has a lock)."""

    def __init__(self, *, threads: int = 2, det_side: int = 640, min_score: float = 0.5) -> None:
        cv2, np, ort = _runtime()
        self.cv2, self.np = cv2, np
        folder = model_dir()
        from appatlas.vision.fuse import fuse

        def session(name: str, intra: int) -> Any:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = intra
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.log_severity_level = 3
            # idle threads must not spin: on a shared 2-core machine spinning doubled the CPU a read
            # took (rec of 5 lines 275 -> 142 ms CPU) for no gain in wall time
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            # the export's element-wise chains folded into the convolutions (same outputs, ~40% less CPU);
            # should a protobuf runtime not take the rewrite, the model as shipped still reads the same text
            raw = (folder / name).read_bytes()
            try:
                model, self.folded[name] = fuse(raw)
                return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
            except Exception:  # noqa: BLE001 - any failure of the optional rewrite: load the original
                self.folded[name] = {}
                return ort.InferenceSession(raw, opts, providers=["CPUExecutionProvider"])

        self.folded: dict[str, dict[str, int]] = {}  # rewrites made in each model (empty: loaded as shipped)
        self.threads = max(1, threads)
        # detection is one large image: its convolutions split well over the threads. Recognition is
        # many small batches: one thread each, `threads` batches at a time, costs ~15% less CPU than
        # splitting every small convolution over two threads (measured: 20 lines 452-470 vs 506-547 ms)
        self.det = session(_DET, self.threads)
        self.rec = session(_REC, 1)
        chars = self.rec.get_modelmeta().custom_metadata_map.get("character", "").splitlines()
        if not chars:
            raise ModelMissing(f"{folder / _REC} has no character list; reinstall with {INSTALL_HINT}")
        self.chars = ["", *chars, " "]  # CTC blank first, the space last (as PaddleOCR adds them)
        self.det_side = det_side
        self.min_score = min_score
        self._lock = threading.Lock()
        self._cache: OrderedDict[bytes, tuple[str, float]] = OrderedDict()
        self.cache_size = 8192

    # --- the whole pass ---------------------------------------------------------------------------

    def read(self, image: Any) -> list[TextBox]:
        """Text lines of a BGR (or gray) uint8 image, top to bottom, left to right."""
        np = self.np
        if image.ndim == 2:
            image = self.cv2.cvtColor(image, self.cv2.COLOR_GRAY2BGR)
        boxes = self.detect(image)
        if not boxes:
            return []
        texts = self.recognize([image[y1:y2, x1:x2] for x1, y1, x2, y2 in boxes])
        out = [TextBox(x1, y1, x2, y2, t, s) for (x1, y1, x2, y2), (t, s) in zip(boxes, texts, strict=True)
               if t.strip() and s >= self.min_score]
        order = np.lexsort(([b.x1 for b in out], [b.y1 // 8 for b in out])) if out else []
        return [out[i] for i in order]

    # --- detection --------------------------------------------------------------------------------

    def detect(self, image: Any) -> list[tuple[int, int, int, int]]:
        """Axis-aligned boxes of text lines (DB post-processing: threshold, components, unclip)."""
        cv2, np = self.cv2, self.np
        h, w = image.shape[:2]
        s = min(1.0, self.det_side / max(h, w))
        dh, dw = max(32, round(h * s / 32) * 32), max(32, round(w * s / 32) * 32)
        x = cv2.resize(image, (dw, dh), interpolation=cv2.INTER_AREA).astype(np.float32)
        x = ((x / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None]
        prob = self.det.run(None, {self.det.get_inputs()[0].name: x})[0][0, 0]
        mask = (prob > 0.3).astype(np.uint8)
        mask = cv2.dilate(mask, np.ones((2, 2), np.uint8))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        fx, fy = w / dw, h / dh
        boxes = []
        for i in range(1, n):
            bx, by, bw, bh, _area = stats[i]
            if bw < 2 or bh < 2:
                continue
            inside = labels[by:by + bh, bx:bx + bw] == i
            if float(prob[by:by + bh, bx:bx + bw][inside].mean()) < 0.5:  # DB's box threshold
                continue
            # DB's unclip: the shrunk text kernel grows back by area * ratio / perimeter (1.6 in PaddleOCR;
            # 1.3 here, as the mask was dilated and a tighter crop is faster to read)
            d = bw * bh * 1.3 / (2 * (bw + bh))
            x1, y1 = max(0, int((bx - d) * fx)), max(0, int((by - d) * fy))
            x2, y2 = min(w, math.ceil((bx + bw + d) * fx)), min(h, math.ceil((by + bh + d) * fy))
            if x2 - x1 >= 4 and y2 - y1 >= 4:
                boxes.append((x1, y1, x2, y2))
        return boxes

    # --- recognition ------------------------------------------------------------------------------

    def recognize(self, crops: list[Any], *, batch: int = 8) -> list[tuple[str, float]]:
        """(text, mean confidence) of each crop, batched by width so little is padded."""
        cv2, np = self.cv2, self.np
        out: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        keys = [hashlib.blake2b(c.tobytes(), digest_size=16, key=repr(c.shape).encode()).digest() for c in crops]
        with self._lock:
            for i, k in enumerate(keys):
                if k in self._cache:
                    out[i] = self._cache[k]
                    self._cache.move_to_end(k)
        first: dict[bytes, int] = {}
        for i, k in enumerate(keys):  # a label shown twice (two "Delete" buttons) is read once
            if k not in self._cache:
                first.setdefault(k, i)
        todo = sorted(first.values())
        ratios = [c.shape[1] / max(1, c.shape[0]) for c in crops]
        batch = max(1, min(batch, math.ceil(len(todo) / self.threads)))  # at least one batch per worker
        order = sorted(todo, key=ratios.__getitem__)
        # Batches of crops of about the same width: padding a crop by much more than its own width
        # makes this model drop the spaces between words ("Level 1" read as "Level1").
        groups: list[list[int]] = []
        for i in order:
            if groups and len(groups[-1]) < batch and ratios[i] <= 1.15 * ratios[groups[-1][0]] + 0.3:
                groups[-1].append(i)
            else:
                groups.append([i])
        # the longest batches first, so the workers finish together
        groups.sort(key=lambda idx: -len(idx) * max(ratios[i] for i in idx))

        def run(idx: list[int]) -> None:
            width = min(_MAX_RATIO * _REC_H, max(_REC_H, math.ceil(_REC_H * max(ratios[i] for i in idx))))
            x = np.zeros((len(idx), 3, _REC_H, width), np.float32)
            for j, i in enumerate(idx):
                rw = min(width, max(1, math.ceil(_REC_H * ratios[i])))
                img = cv2.resize(crops[i], (rw, _REC_H)).astype(np.float32)
                x[j, :, :, :rw] = ((img / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)
            preds = self.rec.run(None, {self.rec.get_inputs()[0].name: x})[0]
            for j, i in enumerate(idx):
                rw = min(width, max(1, math.ceil(_REC_H * ratios[i])))
                columns = preds.shape[1] * rw / width
                gaps = [g / crops[i].shape[1] * columns for g in self._word_gaps(crops[i])]
                out[i] = self._decode(preds[j], columns=columns, gaps=gaps)

        if self.threads > 1 and len(groups) > 1:
            list(worker_pool("ocr-rec", self.threads).map(run, groups))
        else:
            for idx in groups:
                run(idx)
        for i, k in enumerate(keys):
            if k in first:
                out[i] = out[first[k]]
        with self._lock:
            for i in todo:
                self._cache[keys[i]] = out[i]
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return out

    def clear_cache(self) -> None:
        """Forget recognised lines (to time reading screens never seen before)."""
        with self._lock:
            self._cache.clear()

    def _word_gaps(self, crop: Any) -> list[float]:
        """x of the gaps between words in a text crop: runs of ink-free columns wider than 0.3 of the
        text's height (letters stand closer). The recogniser often drops spaces in Latin text; these
        put them back."""
        cv2, np = self.cv2, self.np
        gray = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        if gray.shape[0] < 6 or gray.shape[1] < 6:
            return []
        _, bw = cv2.threshold(gray, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        if bw.mean() > 0.5:  # ink is the minority
            bw = 1 - bw
        rows = np.nonzero(bw.any(axis=1))[0]
        cols = bw.any(axis=0)
        ink = np.nonzero(cols)[0]
        if len(rows) == 0 or len(ink) < 2:
            return []
        height = rows[-1] - rows[0] + 1
        gaps, run = [], 0
        for x in range(ink[0], ink[-1] + 1):
            if cols[x]:
                if run >= max(3, 0.3 * height):
                    gaps.append(x - run / 2)
                run = 0
            else:
                run += 1
        return gaps

    def _decode(self, pred: Any, *, columns: float, gaps: list[float] | tuple[float, ...] = ()) -> tuple[str, float]:
        """CTC greedy decoding over the columns the crop covers (the rest is batch padding); a space
        goes where a word gap of the pixels falls between two Latin characters."""
        np = self.np
        idx = pred.argmax(axis=1)
        prob = pred.max(axis=1)
        keep = np.ones(len(idx), bool)
        keep[1:] = idx[1:] != idx[:-1]
        keep &= idx != 0
        cols = np.nonzero(keep)[0]
        cols = cols[cols < columns + 1]
        if len(cols) == 0:
            return "", 0.0
        chars = [self.chars[k] for k in idx[cols]]
        text = [chars[0]]
        for k in range(1, len(chars)):
            a, b = chars[k - 1], chars[k]
            # digits keep together ('1' has wide margins) and punctuation sticks to what it follows
            if a != " " and b != " " and a.isascii() and b.isascii() and not (a.isdigit() and b.isdigit()) \
                    and b not in ".,:;!?)%" and a not in "($" and any(cols[k - 1] < g < cols[k] for g in gaps):
                text.append(" ")
            text.append(b)
        return "".join(text).strip(), float(prob[cols].mean())


_SHARED_LOCK = threading.Lock()
_POOLS: dict[tuple[str, int], tuple[int, ThreadPoolExecutor]] = {}


def worker_pool(name: str, workers: int) -> ThreadPoolExecutor:
    """A process-wide thread pool, made again in a forked child (whose copy has no threads behind it)."""
    with _SHARED_LOCK:
        pid, pool = _POOLS.get((name, workers), (-1, None))
        if pool is None or pid != os.getpid():
            pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
            _POOLS[(name, workers)] = (os.getpid(), pool)
        return pool


_SHARED: dict[tuple[int, int, int], Ocr] = {}


def load_ocr(*, threads: int = 2, det_side: int = 640) -> Ocr:
    """The process-wide OCR engine (the models load and are folded once, ~1 s). A forked child loads
    its own: onnxruntime's threads do not survive a fork."""
    with _SHARED_LOCK:
        key = (threads, det_side, os.getpid())
        if key not in _SHARED:
            _SHARED[key] = Ocr(threads=threads, det_side=det_side)
        return _SHARED[key]
