"""The trained decider: scores the options the graph is not sure between.

Where the graph's best options are close (`PolicyConfig.ask_margin`), the policy asks a model. This
one reads what an LLM would read, only compactly and as numbers:

    what each option says and leads to   all-MiniLM-L6-v2 vectors of `Meaning.describe` (its text, content
                                         description, resource-id words, row, and "leads to …" from the atlas)
    the intent, and what is left of it   MiniLM vectors of the intent and of its words not yet acted on
    what the graph thinks of it          its value, the part its own label earns, the part memory vouches
                                         for, its rank, its kind (tap, type, scroll, back, long tap)

and scores each option with a low-rank bilinear match of the intent vectors with the option vector
plus a small MLP over the graph's numbers and the cosines. It is trained listwise (a softmax over one
decision's options) on decisions generated from explored atlases (`appatlas.agent.train`), so it
learns when the graph's order is right and when what an element means should break it.

It is small (~19k weights: 78 KB as fp32, 23 KB as the int8 that ships; a plain .npz, no pickle) and runs in numpy: a decision costs the
embedding of the intent (cached per text) and a few small matrix products. `choose(context, options)`
serves the `LLM` protocol for callers that only have text (the graph's numbers are then zero);
the policy calls `rank(query)` with everything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from appatlas.errors import LLMError, ModelMissing

__all__ = ["KINDS", "N_FEATURES", "SHIPPED", "Candidate", "Query", "Ranker", "features", "reach_cosines", "text_vectors"]

KINDS = ("tap", "long_tap", "type", "scroll", "back")
SHIPPED = Path(__file__).with_name("models") / "ranker.npz"  # what `--llm local` loads (`llm.make_llm`)
N_BASE = 20  # the graph's numbers and the cosines (`features`), before the kind one-hot
N_FEATURES = N_BASE + len(KINDS)
DIM = 384  # all-MiniLM-L6-v2
_MATRICES = ("w1", "w2", "aq", "al", "b")  # what `Ranker.quantized` stores as integer codes


@dataclass(frozen=True)
class Candidate:
    """One option as the ranker sees it."""

    text: str  # what it says and where it leads (`Meaning.describe`)
    kind: str  # one of KINDS
    value: float = 0.0  # the graph's value of it
    own: float = 0.0  # the part of the value its own label / slot earns
    memory: float = 0.0  # the part recorded tasks vouch for
    option: Any = field(default=None, compare=False, repr=False)  # the policy's Option, for matching answers
    near: tuple[str, ...] = ()  # the labels of the screens it leads to (`Meaning.reach`)
    far: tuple[str, ...] = ()  # the labels one step further
    first: float = 1.0  # where in the intent's words left the first one its own label names stands (0 = the first
    # word, 1 = none): people name what they do in the order they do it ("sort by year in descending order")
    cover: float = 0.0  # share of the intent's words left that one path through it names (`LookAhead.coverage`)


@dataclass(frozen=True)
class Query:
    """One decision: the intent, its words not yet acted on, and the options in the graph's order."""

    intent: str
    left: str
    candidates: tuple[Candidate, ...]
    history: tuple[str, ...] = ()
    next: str = ""  # the words left of the first clause not yet done ("create a note, then search": the note)


def text_vectors(texts: Sequence[str]) -> np.ndarray:
    """MiniLM unit vectors of `texts`, through the process-wide cache `appatlas.agent.meaning` keeps."""
    from appatlas.agent.meaning import Meaning

    return Meaning(None).vectors(list(texts))  # type: ignore[arg-type] - only the shared cache is used


def reach_cosines(query: Query, left: np.ndarray) -> np.ndarray:
    """Per candidate, how well what it opens the way to matches what is left of the intent: the best cosine
    of the left words' vector `left` with a label of the screens it leads to, and one step further (0 where
    the atlas knows none). Labels are embedded one by one (short texts, cached per text)."""
    labels = list(dict.fromkeys(x for c in query.candidates for x in (*c.near, *c.far)))
    out = np.zeros((len(query.candidates), 2), dtype=np.float32)
    if not labels:
        return out
    sims = dict(zip(labels, (text_vectors(labels) @ left).tolist(), strict=True))
    for i, c in enumerate(query.candidates):
        out[i] = (max((sims[x] for x in c.near), default=0.0), max((sims[x] for x in c.far), default=0.0))
    return out


def features(query: Query, vectors: np.ndarray, reach: np.ndarray | None = None,
             nxt: np.ndarray | None = None) -> np.ndarray:
    """The graph's numbers and the cosines of each candidate, one row each (N_FEATURES columns).

    `vectors` holds the intent's, the left words' and then each candidate's unit vector; `reach` the
    candidates' `reach_cosines` (zeros when not given); `nxt` the vector of `query.next` (else the left words').
    """
    q, left, opts = vectors[0], vectors[1], vectors[2:]
    cos_n = opts @ (left if nxt is None else nxt)
    reach = np.zeros((len(query.candidates), 2), np.float32) if reach is None else reach
    values = np.array([c.value for c in query.candidates], dtype=np.float32)
    best = float(values.max()) if len(values) else 0.0
    cos_q, cos_l = opts @ q, opts @ left
    cover = np.array([c.cover for c in query.candidates], dtype=np.float32)
    first = np.array([c.first for c in query.candidates], dtype=np.float32)
    n = len(query.candidates)
    rows = np.zeros((n, N_FEATURES), dtype=np.float32)
    for i, c in enumerate(query.candidates):
        ahead = c.value - c.own - c.memory
        rows[i, :N_BASE] = (np.tanh(c.value / 4), np.tanh((c.value - best) / 2), np.tanh(c.own / 4),
                            np.tanh(ahead / 4), np.tanh(c.memory / 2), i / 5, float(i == 0), cos_q[i], cos_l[i],
                            cos_l[i] - cos_l.max(), reach[i, 0], reach[i, 1], reach[i, 0] - reach[:, 0].max(),
                            reach[i, 1] - reach[:, 1].max(), cos_n[i], cos_n[i] - cos_n.max(), cover[i],
                            cover[i] - cover.max(), first[i], first[i] - first.min())
        rows[i, N_BASE + (KINDS.index(c.kind) if c.kind in KINDS else 0)] = 1.0
    return rows


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


class Ranker:
    """A trained option scorer (see the module docstring). Load with `Ranker.load(path)`."""

    def __init__(self, weights: dict[str, np.ndarray], meta: dict[str, Any] | None = None, *,
                 codes: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None) -> None:
        self.w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        self.meta = dict(meta or {})
        self.codes = codes or {}  # matrix -> (uint8 codes, fp16 scale, fp16 offset) of a quantized ranker
        bits = f"-int{self.meta['bits']}" if self.meta.get("bits") else ""
        self.name = f"ranker:{self.meta.get('hash', 'untrained')[:10]}{bits}"

    @property
    def ask(self) -> tuple[float, float]:
        """(ask_margin, ask_below) chosen with this model when it was trained (`train.fit`)."""
        return float(self.meta.get("ask_margin", 0.0)), float(self.meta.get("ask_below", 0.0))

    # --- scoring ----------------------------------------------------------------------------------

    def scores(self, feats: np.ndarray, q: np.ndarray, left: np.ndarray, opts: np.ndarray) -> np.ndarray:
        """One score per option row (higher = take it). The same computation `train.RankerNet` learns."""
        w = self.w
        hidden = _relu(feats @ w["w1"] + w["b1"])
        mlp = (hidden @ w["w2"]).reshape(-1) + w["b2"][0]
        o = opts @ w["b"]  # (n, r)
        match = o @ (q @ w["aq"]) + o @ (left @ w["al"])
        return mlp + match

    def rank(self, query: Query) -> list[float]:
        """Scores of `query`'s candidates, in their order."""
        if not query.candidates:
            return []
        vecs = text_vectors([query.intent, query.left or query.intent, *(c.text for c in query.candidates)])
        nxt = text_vectors([query.next])[0] if query.next else vecs[1]
        feats = features(query, vecs, reach_cosines(query, vecs[1]), nxt)
        return [float(s) for s in self.scores(feats, vecs[0], vecs[1], vecs[2:])]

    # --- the LLM protocol -------------------------------------------------------------------------

    def choose(self, context: str, options: Sequence[str]) -> tuple[int, list[float]]:
        """Pick among option texts with only the prompt's text (the graph's numbers unknown: zero)."""
        if not options:
            raise LLMError("the ranker was asked to choose among no options")
        goal = re.search(r"^Goal:\s*(.*)$", context, re.MULTILINE)
        intent = goal.group(1) if goal else context
        kinds = ["back" if t == "press back" else "type" if t.startswith("type ") else
                 "scroll" if t.startswith("scroll ") else "long_tap" if t.startswith("long-press") else "tap"
                 for t in options]
        query = Query(intent, intent, tuple(Candidate(t, k) for t, k in zip(options, kinds, strict=True)))
        scores = self.rank(query)
        return int(np.argmax(scores)), scores

    def chat(self, messages: Any, *, max_tokens: int = 256, temperature: float = 0.0) -> str:
        raise LLMError("the trained ranker scores options and does not chat; use --llm local-lm for SmolLM2")

    # --- compression --------------------------------------------------------------------------------

    def quantized(self, bits: int = 8) -> Ranker:
        """This ranker with its matrices stored as `bits`-bit codes on the compression stack's min/max grid
        (`appatlas.compression.quant.grid`: one group per output column, the range clipped where that
        lowers the squared error, scale and offset in fp16). Scores are computed from the decoded weights."""
        import torch

        from appatlas.compression.quant.grid import dequantize_codes, find_params, quantize_codes

        if not 2 <= bits <= 8:
            raise ValueError(f"bits must be 2..8 (codes are stored as uint8), not {bits}")
        weights, codes = dict(self.w), {}
        for k in _MATRICES:
            rows = torch.from_numpy(self.w[k]).T.contiguous()  # one row per output column
            grid = find_params(rows, bits, clip=True)
            q = quantize_codes(rows, grid, bits)
            weights[k] = dequantize_codes(q, grid).T.numpy()
            codes[k] = (q.to(torch.uint8).T.numpy(), grid.scale.half().numpy(), grid.offset.half().numpy())
        return Ranker(weights, self.meta | {"bits": bits}, codes=codes)

    # --- files ------------------------------------------------------------------------------------

    def save(self, path: Path) -> Path:
        """Write the weights (plain arrays; a quantized ranker's matrices as uint8 codes with fp16 scale and
        offset) and what they were trained on (JSON beside them). No pickle."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {k: v for k, v in self.w.items() if k not in self.codes}
        for k, (q, scale, offset) in self.codes.items():
            arrays |= {k: q, f"{k}_scale": scale, f"{k}_offset": offset}
        with open(path, "wb") as f:  # np.savez adds ".npz" to a str path without it
            np.savez(f, **arrays)
        path.with_suffix(".json").write_text(json.dumps(self.meta, indent=2))
        return path

    @classmethod
    def load(cls, path: Path) -> Ranker:
        path = Path(path)
        if not path.is_file():
            raise ModelMissing(f"no trained ranker at {path}; train one with `appatlas train agent --data "
                               "../shared/data/droidtask`")
        with np.load(path, allow_pickle=False) as data:
            weights = {k: data[k] for k in data.files}
        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        missing = {"w1", "b1", "w2", "b2", "aq", "al", "b"} - set(weights)
        if missing:
            raise ModelMissing(f"{path} is not a ranker (missing {', '.join(sorted(missing))}); train it again")
        if weights["w1"].shape[0] != N_FEATURES:
            raise ModelMissing(f"{path} reads {weights['w1'].shape[0]} features per option, this version {N_FEATURES}: "
                               "train it again with `appatlas train agent --data ../shared/data/droidtask`")
        codes = {}
        for k in _MATRICES:
            if f"{k}_scale" in weights:  # quantized: decode as `quantized` did (code * scale + offset per column)
                q, scale, offset = weights[k], weights.pop(f"{k}_scale"), weights.pop(f"{k}_offset")
                codes[k] = (q, scale, offset)
                weights[k] = q.astype(np.float32) * scale.astype(np.float32) + offset.astype(np.float32)
        return cls(weights, meta, codes=codes)
