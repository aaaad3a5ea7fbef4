"""The trained decider: scores the options the graph is not sure between.

Where the graph's best options are close (`PolicyConfig.ask_margin`), the policy asks a model. This
one reads what an LLM would read, only compactly and as numbers:

    what each option says and leads to   all-MiniLM-L6-v2 vectors of `Meaning.describe` (its text, content
                                         description, resource-id words, row, and "leads to …" from the atlas)
    the intent, and what is left of it   MiniLM vectors of the intent and of its words not yet acted on
    what the graph thinks of it          its value, the part its own label earns, the part memory vouches
                                         for, its rank, its kind (tap, type, scroll, back, long tap)

and scores each option with a low-rank bilinear match of the intent vectors with the option vector,
plus a small MLP over the graph's numbers and the cosines, plus λ times the option's value relative to the
graph's best (λ learned): a correction of the graph rather than a second opinion beside it. It is trained listwise (a softmax over one
decision's options) on decisions generated from explored atlases (`appatlas.agent.train`), so it
learns when the graph's order is right and when what an element means should break it.

What ships is the mean of three seeds' rankers (`Ranker.averaged`: one model of three times the hidden size and rank).
It is small (~58k weights: 227 KB as fp32; what ships is mixed precision, 40 KB: the three 384-row matrices as 4-bit
codes that the compression stack's int4 kernel multiplies, the small MLP at the widths `agent.mixed` measures; a
plain .npz, no pickle) and runs in numpy and that kernel: a decision costs the
embedding of the intent (cached per text) and a few small matrix products. `choose(context, options)`
serves the `LLM` protocol for callers that only have text (the graph's numbers are then zero);
the policy calls `rank(query)` with everything.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from appatlas.errors import LLMError, ModelMissing

__all__ = ["FP16", "FP32", "KERNEL_MATRICES", "KINDS", "MATRICES", "N_FEATURES", "SHIPPED", "Candidate", "Query", "Ranker",
           "features", "reach_cosines", "text_vectors"]

KINDS = ("tap", "long_tap", "type", "scroll", "back")
log = logging.getLogger(__name__)
SHIPPED = Path(__file__).with_name("models") / "ranker.npz"  # what `--llm local` loads (`llm.make_llm`)
N_BASE = 20  # the graph's numbers and the cosines (`features`), before the kind one-hot
N_FEATURES = N_BASE + len(KINDS)
DIM = 384  # all-MiniLM-L6-v2
MATRICES = ("w1", "w2", "aq", "al", "b")  # what `Ranker.quantized` may store as integer codes (biases stay fp32)
KERNEL_MATRICES = ("aq", "al", "b")  # the 384-row matrices: at <= 4 bits the compression stack's int4 kernel runs them
FP32, FP16 = 32, 16  # "bits" of a matrix kept as floats
_RETRAIN = "train it again with `appatlas train agent --data ../shared/data/droidtask --bits mixed`"


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
    """A trained option scorer (see the module docstring). Load with `Ranker.load(path)`.

    `kernel=False` keeps the int4 kernel out: numpy multiplies the decoded weights (the reference it is tested
    against)."""

    def __init__(self, weights: dict[str, np.ndarray], meta: dict[str, Any] | None = None, *,
                 codes: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
                 layout: dict[str, tuple[int, int]] | None = None, kernel: bool = True) -> None:
        self.w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        self.meta = dict(meta or {})
        # matrix -> (uint8 codes [inputs, outputs], fp16 scale and offset [outputs] or [outputs, groups])
        self.codes = codes or {}
        # matrix -> (bits, group): 2..8-bit codes in groups of `group` inputs (0: all inputs of a column), FP16, FP32
        width = int(self.meta["bits"]) if isinstance(self.meta.get("bits"), int) else 8
        self.layout = {k: (width, 0) if k in self.codes else (FP32, 0) for k in MATRICES} | dict(layout or {})
        self.kernel = "numpy"  # what multiplies the 384-row matrices: numpy, or the int4 kernel's op (`Int4VnniOp.kind`)
        self._op = self._int4_op() if kernel else None

    @property
    def name(self) -> str:
        """ranker:HASH, -int8 / -int4 / -mixed / -fp16 when stored so, /KERNEL when the int4 kernel runs it."""
        form = _form(self.layout)
        return (f"ranker:{self.meta.get('hash', 'untrained')[:10]}{'' if form == 'fp32' else '-' + form}"
                f"{'' if self.kernel == 'numpy' else '/' + self.kernel}")

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
        if self._op is not None:
            qa, la, o = self._kernel_products(q, left, opts)
        else:
            qa, la, o = q @ w["aq"], left @ w["al"], opts @ w["b"]  # (r,), (r,), (n, r)
        match = o @ qa + o @ la
        # The graph's say, learned: λ times the option's value relative to the best (feature 1). A file without λ
        # (trained before it) scores without it.
        graph = float(w["lam"].reshape(-1)[0]) * feats[:, 1] if "lam" in w else 0.0
        return mlp + match + graph

    def _kernel_products(self, q: np.ndarray, left: np.ndarray, opts: np.ndarray) -> tuple[np.ndarray, ...]:
        """q·aq, left·al and opts·b, each by the int4 op of its matrix (fp32 in, fp32 out)."""
        import torch

        r = self.w["aq"].shape[1]
        qa, la, o = (op(torch.from_numpy(np.atleast_2d(x).astype(np.float32, copy=False))).numpy()[:, :r]
                     for op, x in zip(self._op, (q, left, opts), strict=True))
        return qa[0], la[0], o

    def _int4_op(self) -> Any:
        """The compression stack's ops (`compression.packed.kernels.make_op`), one per 384-row matrix, when all
        three are <= 4-bit codes in one group size the int4 kernel takes; None otherwise, or when no kernel runs
        here (numpy then multiplies the decoded weights: the same weights, fp32 activations).

        One op per matrix, not one fused op of 48 rows: the kernel splits rows in blocks of 16 over threads, and a
        16-row op is one block, so no call wakes the thread pool (measured, 2 busy cores, 2 threads: fused p50
        23 us but p95 3-5 ms; one op per matrix p50 20 us, p95 26 us). Rows are padded to 16 with zero codes."""
        if not all(k in self.codes and self.layout[k][0] <= 4 and self.layout[k][1] for k in KERNEL_MATRICES):
            return None
        import torch

        from appatlas.compression.errors import CompressionError
        from appatlas.compression.packed.kernels import make_op
        from appatlas.compression.quant.grid import QuantizedWeight

        ops = []
        for k in KERNEL_MATRICES:
            codes, scale, offset = self.codes[k]
            bits, group = self.layout[k]
            dense = torch.from_numpy(self.w[k].T.copy())  # [outputs, inputs]
            quant = QuantizedWeight(torch.from_numpy(codes.T.copy()), torch.from_numpy(scale), torch.from_numpy(offset),
                                    None, bits, group)
            pad = -dense.shape[0] % 16
            if pad:  # zero codes, scale 1, offset 0: rows that decode to 0 and are sliced off
                dense = torch.cat([dense, torch.zeros(pad, dense.shape[1])])
                quant = QuantizedWeight(torch.cat([quant.codes, torch.zeros(pad, dense.shape[1], dtype=torch.uint8)]),
                                        torch.cat([quant.scales, torch.ones(pad, scale.shape[1], dtype=torch.float16)]),
                                        torch.cat([quant.offsets, torch.zeros(pad, scale.shape[1], dtype=torch.float16)]),
                                        None, bits, group)
            try:
                op = make_op([dense], [quant])
            except (CompressionError, RuntimeError) as exc:  # e.g. a kernel $APPATLAS_INT4_KERNEL forces that cannot run
                log.warning("the ranker's int4 kernel cannot run here (%s); numpy multiplies its decoded weights", exc)
                return None
            if op is None or op.kind.startswith("dense"):
                return None
            ops.append(op)
        self.kernel = ops[0].kind
        return ops

    def __getstate__(self) -> dict[str, Any]:  # the op holds a compiled kernel's call: built again where unpickled
        return {k: v for k, v in self.__dict__.items() if k != "_op"} | {"_op": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        ran, self.kernel = self.kernel, "numpy"
        self._op = self._int4_op() if ran != "numpy" else None

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

    # --- ensembles ----------------------------------------------------------------------------------

    @classmethod
    def averaged(cls, members: Sequence[Ranker], meta: dict[str, Any] | None = None) -> Ranker:
        """One ranker whose score is exactly the mean of `members`' scores (fp32 members of one feature count).

        The score is a sum of three parts, each of which averages into the same form:
            MLP     mean_m (relu(f W1_m + b1_m) w2_m + b2_m) = relu(f [W1_1 .. W1_M] + [b1_1 .. b1_M]) [w2_1; ..; w2_M]/M
                    + mean b2: the hidden layers side by side, the output weights divided by M
            match   mean_m (o B_m)(q A_m) = (o [B_1 .. B_M]) (q [A_1 .. A_M] / M): the ranks side by side
            graph   mean λ_m
        So a seed ensemble runs, compresses and is stored as one model of M times the hidden size and rank."""
        if not members:
            raise ValueError("no rankers to average")
        if any(m.codes for m in members):
            raise ValueError("average fp32 rankers, then quantize the result")
        n = len(members)
        ws = [m.w for m in members]

        def side(k: str, axis: int, scale: float = 1.0) -> np.ndarray:
            return np.concatenate([w[k] for w in ws], axis=axis) * np.float32(scale)

        weights = {"w1": side("w1", 1), "b1": side("b1", 0), "w2": side("w2", 0, 1 / n),
                   "b2": sum(w["b2"] for w in ws) / n,
                   "aq": side("aq", 1, 1 / n), "al": side("al", 1, 1 / n), "b": side("b", 1)}
        if any("lam" in w for w in ws):  # a member without λ scores without the graph's say: λ = 0 in the mean
            weights["lam"] = sum(w.get("lam", np.zeros(1, np.float32)) for w in ws) / n
        return cls(weights, dict(meta if meta is not None else members[0].meta))

    # --- compression --------------------------------------------------------------------------------

    def quantized(self, bits: int | Mapping[str, int] = 8, group: int | Mapping[str, int] = 0, *,
                  kernel: bool = True) -> Ranker:
        """This ranker with its matrices stored on the compression stack's min/max grid
        (`appatlas.compression.quant.grid`: the range clipped where that lowers the squared error, scale and
        offset in fp16, per group of inputs of each output column).

        `bits`: one width for all five matrices, or one per matrix (a matrix not named stays FP32): 2..8 (integer
        codes), FP16 or FP32. `group`: inputs per group of a coded matrix (0: one group of all its inputs), one for
        all or per matrix. When the three 384-row matrices are <= 4-bit codes in a group size of
        `compression.packed.kernels.INT4_GROUPS`, the int4 kernel multiplies them (`kernel` names it); everything
        else is numpy over the decoded weights. The layout chosen by measurement: `appatlas.agent.mixed`."""
        import torch

        from appatlas.compression.quant.grid import quantize_codes, static_groups

        widths = {k: bits for k in MATRICES} if isinstance(bits, int) else {k: int(bits.get(k, FP32)) for k in MATRICES}
        sizes = {k: group for k in MATRICES} if isinstance(group, int) else {k: int(group.get(k, 0)) for k in MATRICES}
        weights, codes, layout = dict(self.w), {}, {}
        for k in MATRICES:
            b = widths[k]
            if b in (FP32, FP16):
                layout[k] = (b, 0)
                if b == FP16:
                    weights[k] = self.w[k].astype(np.float16).astype(np.float32)
                continue
            if not 2 <= b <= 8:
                raise ValueError(f"bits must be 2..8 (codes are stored as uint8), {FP16} (fp16) or {FP32} (kept), "
                                 f"not {b} for {k}")
            rows = torch.from_numpy(self.w[k]).T.contiguous()  # [outputs, inputs]: one row per output column
            inputs = rows.shape[1]
            g = sizes[k] if 0 < sizes[k] < inputs else inputs
            if inputs % g:
                raise ValueError(f"a group of {g} does not divide the {inputs} inputs of {k}")
            grids = static_groups(rows, b, g, clip=True)
            q = torch.cat([quantize_codes(rows[:, j * g:(j + 1) * g], p, b) for j, p in enumerate(grids)], dim=1)
            scale = torch.stack([p.scale for p in grids], 1).half().numpy()
            offset = torch.stack([p.offset for p in grids], 1).half().numpy()
            if g == inputs:  # one group: the [outputs] form the int8 files have always had
                scale, offset = scale[:, 0], offset[:, 0]
            codes[k] = (q.to(torch.uint8).T.numpy().copy(), scale, offset)
            weights[k] = _decode(*codes[k])
            layout[k] = (b, 0 if g == inputs else g)
        form = _form(layout)
        meta = {k: v for k, v in self.meta.items() if k not in ("bits", "layout")}
        if form != "fp32":
            meta |= {"bits": int(form[3:]) if form.startswith("int") else form,
                     "layout": {k: _describe(*layout[k]) for k in MATRICES}}
        return Ranker(weights, meta, codes=codes, layout=layout, kernel=kernel)

    def nbytes(self) -> int:
        """Bytes of the weights as `save` writes them (codes at their width, scales, offsets, floats)."""
        total = 0
        for k, v in self.w.items():
            if k in self.codes:
                q, scale, offset = self.codes[k]
                total += -(-q.size * self.layout[k][0] // 8) + scale.nbytes + offset.nbytes
            else:
                total += v.size * (2 if self.layout.get(k, (FP32, 0))[0] == FP16 else 4)
        return total

    # --- files ------------------------------------------------------------------------------------

    def save(self, path: Path) -> Path:
        """Write the weights as plain arrays and what they were trained on (JSON beside them). No pickle.

        A coded matrix `k` is `k` (its codes; below 8 bits packed densely, flat, with `k_shape`), `k_bits`, and
        fp16 `k_scale` / `k_offset` ([outputs], or [outputs, groups] for groups of inputs); an FP16 one is float16.
        """
        from appatlas.compression.packed.bitpack import pack_bits

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {k: v.astype(np.float16) if self.layout.get(k, (FP32, 0))[0] == FP16 else v
                  for k, v in self.w.items() if k not in self.codes}
        for k, (q, scale, offset) in self.codes.items():
            bits = self.layout[k][0]
            if bits < 8:
                import torch

                arrays |= {k: pack_bits(torch.from_numpy(q), bits).numpy(), f"{k}_shape": np.array(q.shape, np.int64)}
            else:
                arrays[k] = q
            arrays |= {f"{k}_bits": np.array(bits, np.uint8), f"{k}_scale": scale, f"{k}_offset": offset}
        with open(path, "wb") as f:  # np.savez adds ".npz" to a str path without it
            np.savez(f, **arrays)
        path.with_suffix(".json").write_text(json.dumps(self.meta, indent=2))
        return path

    @classmethod
    def load(cls, path: Path, *, kernel: bool = True) -> Ranker:
        path = Path(path)
        if not path.is_file():
            raise ModelMissing(f"no trained ranker at {path}; train one with `appatlas train agent --data "
                               "../shared/data/droidtask`")
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        missing = {"w1", "b1", "w2", "b2", "aq", "al", "b"} - set(arrays)
        if missing:
            raise ModelMissing(f"{path} is not a ranker (missing {', '.join(sorted(missing))}); train it again")
        weights, codes, layout = {k: v for k, v in arrays.items() if k in ("b1", "b2", "lam")}, {}, {}
        for k in MATRICES:
            weights[k], code, layout[k] = _read_matrix(path, k, arrays, meta)
            if code is not None:
                codes[k] = code
        if weights["w1"].shape[0] != N_FEATURES:
            raise ModelMissing(f"{path} reads {weights['w1'].shape[0]} features per option, this version {N_FEATURES}: "
                               "train it again with `appatlas train agent --data ../shared/data/droidtask`")
        return cls(weights, meta, codes=codes, layout=layout, kernel=kernel)


def _decode(q: np.ndarray, scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """The fp32 weight [inputs, outputs] of codes `q` (code · scale + offset; group j holds inputs j·g .. j·g+g-1)."""
    s, o = scale.astype(np.float32), offset.astype(np.float32)
    if s.ndim == 2:
        g = q.shape[0] // s.shape[1]
        s, o = np.repeat(s.T, g, axis=0), np.repeat(o.T, g, axis=0)
    return q.astype(np.float32) * s + o


def _describe(bits: int, group: int) -> str:
    return "fp32" if bits == FP32 else "fp16" if bits == FP16 else f"int{bits}" + (f"/g{group}" if group else "")


def _form(layout: dict[str, tuple[int, int]]) -> str:
    """fp32, fp16, intN (every matrix at N bits) or mixed."""
    widths = {layout[k][0] for k in MATRICES if k in layout}
    if len(widths) != 1:
        return "mixed"
    (b,) = widths
    return "fp32" if b == FP32 else "fp16" if b == FP16 else f"int{b}"


def _read_matrix(path: Path, k: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]
                 ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray] | None, tuple[int, int]]:
    """(fp32 weight, codes or None, (bits, group)) of matrix `k` as `Ranker.save` wrote it (or the int8 files
    before per-matrix layouts: 2-D codes, [outputs] scale, the width in the JSON). ModelMissing for anything else."""
    a = arrays[k]
    bits_a, shape, scale, offset = (arrays.get(f"{k}_{x}") for x in ("bits", "shape", "scale", "offset"))

    def unknown(why: str) -> ModelMissing:
        return ModelMissing(f"{path} stores {k} in a layout this version does not read ({why}); {_RETRAIN}")

    if scale is None and offset is None and bits_a is None and shape is None:
        if a.dtype == np.float32:
            return a, None, (FP32, 0)
        if a.dtype == np.float16:
            return a.astype(np.float32), None, (FP16, 0)
        raise unknown(f"{a.dtype} weights")
    if a.dtype != np.uint8 or scale is None or offset is None or scale.dtype != np.float16 \
            or offset.shape != scale.shape or scale.ndim not in (1, 2):
        raise unknown(f"{a.dtype} codes {a.shape} with scale {None if scale is None else (scale.dtype, scale.shape)}")
    width = bits_a if bits_a is not None else meta.get("bits", 8)  # files before per-matrix layouts: one width
    if not isinstance(width, int | np.integer | np.ndarray) or not 2 <= int(width) <= 8:
        raise unknown(f"{width!r} bits")
    bits = int(width)
    if a.ndim == 1 and shape is not None and shape.shape == (2,):
        import torch

        from appatlas.compression.packed.bitpack import unpack_bits

        n = int(shape[0]) * int(shape[1])
        if a.size != -(-n * bits // 8):
            raise unknown(f"{a.size} bytes for {n} codes of {bits} bits")
        q = unpack_bits(torch.from_numpy(a), bits, n).numpy().reshape(int(shape[0]), int(shape[1]))
    elif a.ndim == 2 and shape is None:
        q = a
    else:
        raise unknown(f"codes {a.shape}")
    inputs, outputs = q.shape
    groups = 1 if scale.ndim == 1 else scale.shape[1]
    if scale.shape[0] != outputs or inputs % groups:
        raise unknown(f"scale {scale.shape} for a [{inputs}, {outputs}] matrix")
    if int(q.max(initial=0)) >= 2 ** bits:
        raise unknown(f"codes above {2 ** bits - 1} in a {bits}-bit matrix")
    group = 0 if groups == 1 else inputs // groups
    return _decode(q, scale, offset), (q, scale, offset), (bits, group)
