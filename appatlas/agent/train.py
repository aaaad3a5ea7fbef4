"""Training the decider (`appatlas.agent.ranker`) on decisions generated from explored atlases.

Where the data comes from (no human demonstration of an evaluated app is ever in it):

- each training app of a DroidTask-shaped data folder, *explored*: its replayed phone with every
  task's demonstration taken away (`bench.settings.exploration_phone`), crawled as the `explore`
  setting crawls (`explored_atlas`); the synthetic decisions of that crawl (`synth.synthetic_decisions`:
  paths over the graph, intents from captions), and — for the *other* apps only, never the evaluated
  one — the recorded tasks' steps (real intents), decided over that same crawl;
- without a data folder (or when asked), the built-in demo app and generated apps
  (`devices.apps.synthetic.synthetic_spec`), crawled.

Every decision is put to the policy as it would be on a device (`Policy.decide` with the margin wide
open and a recorder in the model's place), so the ranker learns from exactly what it will be asked:
the graph's top options with their values, and what each says and leads to. The answer is the option
the path (or the recording) took; decisions whose answer is not among the graph's top options are
dropped (no ranker can pick it there).

Training is listwise (softmax cross-entropy over one decision's options), seeded, on the CPU, over
cached MiniLM vectors: seconds to a few minutes. Models are cached under
`~/.cache/appatlas/models/` by a hash of their training rows and settings, so the same inputs are
trained once. `fit_margin` chooses how close the graph's best options must be for the ranker to be
asked, on decisions of apps the model was not trained on (out of fold), never the evaluated app.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from appatlas.agent.knowledge import Knowledge
from appatlas.agent.policy import Policy, PolicyConfig
from appatlas.agent.progress import Taken, taken
from appatlas.agent.ranker import DIM, N_FEATURES, Query, Ranker, features, reach_cosines, text_vectors
from appatlas.agent.valuing import same_option
from appatlas.errors import ModelMissing
from appatlas.types import Action, Screen

__all__ = ["MARGINS", "Row", "Scorer", "TrainConfig", "app_rows", "cache_dir", "extra_rows", "fit_margin", "offline_accuracy",
           "rows_hash", "train_ranker", "training_rows"]

Progress = Callable[[str], None]
# bump when rows, features or how texts are embedded change: cached models are then retrained (ranker-4: every text
# embedded alone, `rag.embed.TextEmbedder.encode`; a model cached from batched vectors differs in its last bits;
# ranker-5: the learned λ of the graph's say, and no demo or generated rows beside dev-app data; ranker-6: a mean of
# `TrainConfig.members` seeds)
VERSION = "ranker-6"
_GRAPH_COLUMNS = 7  # the leading feature columns that are the graph's numbers (value, margin, own, ahead, memory, rank)
# (ask_margin, ask_below, ask_cover) candidates, "exact ties only" first: the simpler wins a tie.
_PLAIN = ((0.0, 0.0), (0.25, 0.0), (0.5, 0.0), (1.0, 0.0), (2.0, 0.0), (4.0, 0.0), (float("inf"), 0.0), (0.0, 2.0),
          (0.5, 2.0), (1.0, 2.0), (1.0, 4.0))
MARGINS: tuple[tuple[float, float, bool], ...] = tuple((m, b, False) for m, b in _PLAIN) + tuple(
    (m, b, True) for m, b in _PLAIN[:5])


@dataclass(frozen=True)
class Row:
    """One decision as the ranker sees it, with the answer."""

    app: str
    origin: str  # synth | task
    query: Query
    answer: int  # index of the right option among query.candidates
    start: bool = False  # asked where the graph says "done" before any step (`PolicyConfig.ask_start`)


@dataclass(frozen=True)
class TrainConfig:
    rank: int = 16  # of the bilinear intent-option match
    hidden: int = 32  # of the MLP over the graph's numbers
    epochs: int = 15
    batch: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    task_weight: float = 4.0  # weight of a recorded task's decision against a synthetic one (measured: 4 > 1, out of fold)
    # The graph's say in the score starts at λ = `graph` × the option's value relative to the best and is learned: the
    # ranker is a correction of the graph (measured out of fold, seeds 0-2: 0.959 / 0.955 / 0.950 best step accuracy
    # against 0.950 / 0.946 / 0.950 without; asked on every decision it beats the graph alone, 0.946 vs 0.932).
    graph: float = 10.0
    # Seeds averaged into the model (`Ranker.averaged`: seeds seed .. seed+members-1). One seed's model varies with
    # the seed; the mean of three does not (measured out of fold, best step accuracy: single seeds 0-6 0.941-0.959,
    # three-seed means from seeds 0, 3 and 6 0.959 each).
    members: int = 3
    blind: float = 1.0  # weight of a copy of every decision with the graph's numbers hidden (0 = none): the meaning
    # part must then rank alone, so it learns more than to follow the graph (measured out of fold, inner folds of
    # each of the 7 leave-one-app-out folds: best step accuracy 94.2-96.4% with 1 vs 93.7-95.4% with 0, never lower)


def cache_dir() -> Path:
    return Path(os.environ.get("APPATLAS_CACHE", Path.home() / ".cache" / "appatlas")) / "models"


# --- decisions -> rows ------------------------------------------------------------------------------


class _Recorder:
    """Stands in for the model while collecting: remembers what it was asked, keeps the graph's order."""

    name = "recorder"

    def __init__(self) -> None:
        self.asked: Query | None = None

    def rank(self, query: Query) -> list[float]:
        self.asked = query
        return [-float(i) for i in range(len(query.candidates))]


def _collector(knowledge: Knowledge) -> tuple[Policy, _Recorder]:
    recorder = _Recorder()
    # Wide open: every decision the graph would act on is put to the model, as a margin would put it.
    config = PolicyConfig(ask_margin=float("inf"), ask_start=True, ask_cover=True)
    return Policy(knowledge, llm=recorder, config=config), recorder


def _row(policy: Policy, recorder: _Recorder, app: str, origin: str, intent: str, screen: Screen,
         history: list[Taken], answer: Action, key: str | None = None) -> Row | None:
    recorder.asked = None
    policy.llm = recorder  # a failure elsewhere never drops the recorder for good
    policy.decide(intent, screen, history, known_as=key)
    query = recorder.asked
    if query is None:
        return None
    index = next((i for i, c in enumerate(query.candidates) if same_option(answer, c.option)), None)
    # The graph acts on its best option only when it is worth taking (`Policy.decide`): otherwise the ranker was
    # asked because nothing was, at the start.
    top = query.candidates[0]
    theta = policy.config.theta
    start = not history and (top.value < theta or top.value - top.memory < theta)
    return None if index is None else Row(app, origin, query, index, start)


def synth_rows(app: str, knowledge: Knowledge, *, limit: int = 400, seed: int = 0) -> list[Row]:
    """Rows from the synthetic decisions of one explored atlas."""
    from appatlas.agent.options import BACK_OPTION
    from appatlas.agent.synth import synthetic_decisions

    policy, recorder = _collector(knowledge)
    rows = []
    for d in synthetic_decisions(knowledge, limit=limit, seed=seed):
        screen = knowledge.state_screens[d.state]
        history = [taken(a, knowledge.state_screens[s]) for s, a in d.path]
        option = [*knowledge.options_of(d.state), BACK_OPTION][d.answer]
        row = _row(policy, recorder, app, "synth", d.intent, screen, history, option.action(screen), key=d.screen)
        if row is not None:
            rows.append(row)
    return rows


def task_rows(app: str, knowledge: Knowledge, tasks: Sequence[Any], full: Knowledge) -> list[Row]:
    """Rows from recorded tasks' steps (`bench.tasks.BenchTask`), decided over `knowledge` (a crawl that
    never saw them). Only ever for apps other than the one evaluated."""
    policy, recorder = _collector(knowledge)
    rows = []
    for task in tasks:
        history: list[Taken] = []
        for step in task.steps:
            if step.done or step.action is None:
                break
            screen = full.state_screens[step.state]
            row = _row(policy, recorder, app, "task", task.intent, screen, history, step.action)
            if row is not None:
                rows.append(row)
            history.append(taken(step.action, screen))
    return rows


def explored_knowledge(folder: Path, *, budget: int = 1000) -> tuple[Knowledge, Knowledge, list[Any]]:
    """(the crawl of the app with every task's demonstration taken away, the full recording, its tasks)."""
    from appatlas.bench.settings import exploration_phone, explored_atlas
    from appatlas.bench.tasks import demonstration, prepare_app
    from appatlas.graph.atlas import Atlas

    full, replay, tasks = prepare_app(folder)
    phone = exploration_phone(replay, [demonstration(t) for t in tasks])
    with tempfile.TemporaryDirectory(prefix="appatlas-train-") as tmp:
        where = explored_atlas(phone, Path(tmp) / "explore.atlas", budget=budget)
        with Atlas.open(where) as atlas:
            knowledge = Knowledge.from_atlas(atlas)
    return knowledge, full, tasks


def app_rows(folder: Path, *, budget: int = 1000, limit: int = 400) -> list[Row]:
    """Synthetic and recorded-task rows of one DroidTask app folder (the task rows are for other apps)."""
    knowledge, full, tasks = explored_knowledge(folder, budget=budget)
    return synth_rows(folder.name, knowledge, limit=limit) + task_rows(folder.name, knowledge, tasks, full)


def extra_rows(*, generated: int = 2, limit: int = 400) -> list[Row]:
    """Rows of apps that are never evaluated: the built-in demo app and `generated` generated apps."""
    from appatlas.devices.apps.synthetic import synthetic_spec
    from appatlas.devices.virtual import open_app
    from appatlas.graph.atlas import Atlas
    from appatlas.graph.crawler import CrawlConfig, crawl

    devices = [("demo", open_app("demo", screenshots=False))]
    devices += [(f"generated{i}", open_app(synthetic_spec(40, seed=i), screenshots=False))
                for i in range(1, generated + 1)]
    rows: list[Row] = []
    for name, device in devices:
        with tempfile.TemporaryDirectory(prefix="appatlas-train-") as tmp:
            where = Path(tmp) / f"{name}.atlas"
            with Atlas.create(where, app=device.spec.package) as atlas:
                crawl(device, atlas, package=device.spec.package, config=CrawlConfig(budget=300, seed=0))
            with Atlas.open(where) as atlas:
                rows += synth_rows(name, Knowledge.from_atlas(atlas), limit=limit)
    return rows


# --- tensors ---------------------------------------------------------------------------------------


@dataclass
class _Batch:
    feats: np.ndarray  # (n, k, F)
    q: np.ndarray  # (n, D)
    left: np.ndarray  # (n, D)
    opts: np.ndarray  # (n, k, D)
    mask: np.ndarray  # (n, k) True where an option is
    answer: np.ndarray  # (n,)
    weight: np.ndarray  # (n,)


def _tensors(rows: Sequence[Row], *, task_weight: float = 1.0) -> _Batch:
    k = max((len(r.query.candidates) for r in rows), default=1)
    n = len(rows)
    texts = [t for r in rows for t in (r.query.intent, r.query.left, *(c.text for c in r.query.candidates))]
    unique = list(dict.fromkeys(texts))
    vecs = text_vectors(unique) if unique else np.zeros((0, DIM), np.float32)
    table = {t: vecs[i] for i, t in enumerate(unique)}
    b = _Batch(np.zeros((n, k, N_FEATURES), np.float32), np.zeros((n, DIM), np.float32),
               np.zeros((n, DIM), np.float32), np.zeros((n, k, DIM), np.float32), np.zeros((n, k), bool),
               np.array([r.answer for r in rows], np.int64),
               np.array([task_weight if r.origin == "task" else 1.0 for r in rows], np.float32))
    for i, r in enumerate(rows):
        m = len(r.query.candidates)
        v = np.stack([table[r.query.intent], table[r.query.left], *(table[c.text] for c in r.query.candidates)])
        nxt = text_vectors([r.query.next])[0] if r.query.next else v[1]
        b.feats[i, :m] = features(r.query, v, reach_cosines(r.query, v[1]), nxt)
        b.q[i], b.left[i], b.opts[i, :m], b.mask[i, :m] = v[0], v[1], v[2:], True
    return b


# --- training --------------------------------------------------------------------------------------


def rows_hash(rows: Sequence[Row], config: TrainConfig) -> str:
    """What a trained model depends on: its rows (texts, values, answers) and settings, and VERSION."""
    h = hashlib.sha256(f"{VERSION}|{config}".encode())
    for r in rows:
        h.update(json.dumps([r.app, r.origin, r.query.intent, r.query.left, r.query.next, r.answer,
                             [(c.text, c.kind, round(c.value, 4), round(c.own, 4), round(c.memory, 4), c.near, c.far,
                               round(c.cover, 4), round(c.first, 4))
                              for c in r.query.candidates]]).encode())
    return h.hexdigest()


def train_ranker(rows: Sequence[Row], config: TrainConfig = TrainConfig(), *, cache: Path | None = None,
                 progress: Callable[[int, int, float], None] | None = None) -> Ranker:
    """A ranker trained on `rows` (see the module docstring); read from `cache` when trained before."""
    if not rows:
        raise ValueError("no training decisions: explore at least one app (see `appatlas train agent --help`)")
    digest = rows_hash(rows, config)
    path = None if cache is None else Path(cache) / f"ranker-{digest[:16]}.npz"
    if path is not None and path.is_file():
        try:
            return Ranker.load(path)
        except ModelMissing:  # a cached model this version reads otherwise (another feature count): trained again
            pass
    if config.members < 1:
        raise ValueError(f"members must be at least 1, not {config.members}")
    b = _tensors(rows, task_weight=config.task_weight)
    if config.blind:
        hidden = replace(b, feats=b.feats.copy(), weight=b.weight * config.blind)
        hidden.feats[:, :, :_GRAPH_COLUMNS] = 0.0
        b = _Batch(*(np.concatenate([getattr(b, k), getattr(hidden, k)]) for k in
                     ("feats", "q", "left", "opts", "mask", "answer", "weight")))
    members, losses = [], []
    for m in range(config.members):  # seeds seed .. seed+members-1, averaged into one model (`Ranker.averaged`)

        def note(epoch: int, epochs: int, loss: float, m: int = m) -> None:
            if progress is not None:
                progress(m * epochs + epoch, config.members * epochs, loss)

        weights, loss_value = _train_net(b, replace(config, seed=config.seed + m), note)
        members.append(weights)
        losses.append(loss_value)
    meta = {"hash": digest, "version": VERSION, "config": config.__dict__, "rows": len(rows),
            "loss": round(float(np.mean(losses)), 4), "apps": sorted({r.app for r in rows}),
            "origins": {o: sum(r.origin == o for r in rows) for o in sorted({r.origin for r in rows})}}
    ranker = Ranker(members[0], meta) if len(members) == 1 else Ranker.averaged([Ranker(w) for w in members], meta)
    if path is not None:
        ranker.save(path)
    return ranker


def _train_net(b: _Batch, config: TrainConfig, progress: Callable[[int, int, float], None]
               ) -> tuple[dict[str, np.ndarray], float]:
    """One member's weights trained on `b` with `config.seed`, and its last epoch's mean loss."""
    import torch

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    net = _Net(config)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    t = {k: torch.from_numpy(getattr(b, k)) for k in ("feats", "q", "left", "opts", "mask", "answer", "weight")}
    n, batch = len(b.answer), config.batch
    loss_value = 0.0
    for epoch in range(config.epochs):
        order = rng.permutation(n)
        total = 0.0
        for start in range(0, n, batch):
            idx = torch.from_numpy(order[start:start + batch])
            scores = net(t["feats"][idx], t["q"][idx], t["left"][idx], t["opts"][idx])
            scores = scores.masked_fill(~t["mask"][idx], -1e9)
            loss = (torch.nn.functional.cross_entropy(scores, t["answer"][idx], reduction="none")
                    * t["weight"][idx]).sum() / t["weight"][idx].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        loss_value = total / n
        progress(epoch + 1, config.epochs, loss_value)
    return net.weights(), loss_value


class _Net:
    """The torch twin of `Ranker.scores` (same weights, same computation), built lazily to keep torch out of
    importing this module."""

    def __new__(cls, config: TrainConfig):  # noqa: ANN204 - a torch module
        import torch

        class Net(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.w1 = torch.nn.Parameter(torch.randn(N_FEATURES, config.hidden) * 0.3)
                self.b1 = torch.nn.Parameter(torch.zeros(config.hidden))
                self.w2 = torch.nn.Parameter(torch.randn(config.hidden, 1) * 0.1)
                self.b2 = torch.nn.Parameter(torch.zeros(1))
                self.aq = torch.nn.Parameter(torch.randn(DIM, config.rank) * 0.02)
                self.al = torch.nn.Parameter(torch.randn(DIM, config.rank) * 0.02)
                self.b = torch.nn.Parameter(torch.randn(DIM, config.rank) * 0.02)
                self.lam = torch.nn.Parameter(torch.tensor([config.graph]))

            def forward(self, feats, q, left, opts):  # noqa: ANN001, ANN202
                mlp = (torch.relu(feats @ self.w1 + self.b1) @ self.w2).squeeze(-1) + self.b2
                o = opts @ self.b  # (n, k, r)
                match = (o * (q @ self.aq).unsqueeze(1)).sum(-1) + (o * (left @ self.al).unsqueeze(1)).sum(-1)
                return mlp + match + self.lam * feats[..., 1]  # the graph's say: see `Ranker.scores`

            def weights(self) -> dict[str, np.ndarray]:
                return {k: v.detach().numpy().copy() for k, v in self.state_dict().items()}

        return Net()


# --- when to ask ------------------------------------------------------------------------------------


def _subset(query: Query, margin: float, below: float, cover: bool = False) -> list[int]:
    """The candidates `Policy.decide` would ask the ranker among (the graph's order is the candidates' order)."""
    values = [c.value for c in query.candidates]
    best = values[0]
    near = margin if best >= below else float("inf")
    idx = [i for i, v in enumerate(values) if best - v <= max(near, 1e-6)][:PolicyConfig.llm_top]
    if cover:  # and the option whose path names the most of the intent left (`PolicyConfig.ask_cover`)
        covers = [c.cover for c in query.candidates]
        leader = max(range(len(covers)), key=lambda i: covers[i])
        if leader not in idx and covers[leader] > max(covers[i] for i in idx) + 1e-6:
            idx.append(leader)
    return idx


class Scorer(Protocol):
    """What decides a row offline: a score per option of a query (a `Ranker`, or a language model's likelihoods in
    `appatlas.bench.deciders`)."""

    def rank(self, query: Query) -> Sequence[float]: ...


def offline_accuracy(ranker: Scorer | None, rows: Iterable[Row], margin: float, below: float, cover: bool = False,
                     *, start: bool = True) -> float:
    """Share of `rows` decided right when the ranker is asked among the options within (`margin`, `below`)
    of the graph's best (and, with `cover`, the path-coverage leader), as `Policy.decide` asks it, and the graph's
    best is taken elsewhere; where the graph says "done" before any step (`Row.start`), the ranker picks among
    all when `start`, else that "done" is wrong."""
    rows = list(rows)
    right = 0
    for r in rows:
        if r.start and not (start and ranker is not None):
            continue  # "done" before any step is never the answer
        idx = list(range(len(r.query.candidates))) if r.start else _subset(r.query, margin, below, cover)
        choice = 0
        if ranker is not None and len({r.query.candidates[i].text for i in idx}) > 1:
            sub = replace(r.query, candidates=tuple(r.query.candidates[i] for i in idx))
            scores = ranker.rank(sub)
            choice = idx[int(np.argmax(scores))]
        right += choice == r.answer
    return right / max(len(rows), 1)


def fit_margin(predict: Sequence[tuple[Scorer, Sequence[Row]]]) -> tuple[tuple[float, float, bool], dict[str, float]]:
    """The (ask_margin, ask_below, ask_cover) of MARGINS with the best accuracy over `predict` — pairs of a ranker
    and rows of apps it was *not* trained on (out of fold) — and every candidate's accuracy."""
    scored: dict[str, float] = {}
    best, best_acc = MARGINS[0], -1.0
    total = sum(len(rows) for _, rows in predict)
    for margin, below, cover in MARGINS:
        right = sum(offline_accuracy(ranker, rows, margin, below, cover) * len(rows) for ranker, rows in predict)
        acc = right / max(total, 1)
        scored[f"{margin}/{below}" + ("/cover" if cover else "")] = round(acc, 4)
        if acc > best_acc + 1e-9:
            best, best_acc = (margin, below, cover), acc
    return best, scored


# --- the whole recipe -------------------------------------------------------------------------------

@dataclass
class Trained:
    """A ranker and when to ask it, with how that was chosen."""

    ranker: Ranker
    ask_margin: float
    ask_below: float
    ask_cover: bool = False
    held_out: str | None = None  # the evaluated app nothing here was trained or tuned on
    margins: dict[str, float] | None = None  # out-of-fold accuracy of every MARGINS candidate

    def config(self, base: PolicyConfig | None = None) -> PolicyConfig:
        return replace(base or PolicyConfig(), ask_margin=self.ask_margin, ask_below=self.ask_below, ask_start=True,
                       ask_cover=self.ask_cover)


def collect_rows(data: Path | None, apps: Sequence[str] = (), *, budget: int = 1000, generated: int = 2,
                 extra: bool | None = None, progress: Progress | None = None) -> dict[str, list[Row]]:
    """Rows per app folder of `data` (all, or `apps`), and of the never-evaluated apps under "extra": the demo and
    `generated` generated apps, by default only without `data`. Beside real apps they cost the ranker: their
    "tap 'X'" decisions teach it to follow labels (measured out of fold, seeds 0-2: the ranker alone 0.914 with
    them, 0.928 without; 8 generated apps instead of 2: 0.932 against 0.950 at the chosen margin)."""
    from appatlas.bench.folders import app_folders

    out: dict[str, list[Row]] = {}
    for folder in (app_folders(data, tuple(apps)) if data is not None else []):
        if progress is not None:
            progress(f"{folder.name}: exploring and collecting decisions")
        out[folder.name] = app_rows(folder, budget=budget)
    with_extra = extra if extra is not None else data is None  # by default only where there are no real apps
    if with_extra:
        if progress is not None:
            progress("demo and generated apps: exploring and collecting decisions")
        out["extra"] = extra_rows(generated=generated)
    return out


def training_rows(rows: dict[str, list[Row]], without: Iterable[str | None]) -> list[Row]:
    """Every row of every app but `without` (apps in sorted order: the same set gives the same hash)."""
    skip = set(without)
    return [r for app in sorted(rows) if app not in skip for r in rows[app]]


def fit(rows: dict[str, list[Row]], held_out: str | None = None, config: TrainConfig = TrainConfig(), *,
        cache: Path | None = None, progress: Progress | None = None) -> Trained:
    """Train on every app but `held_out` and choose when to ask on them, out of fold: for each training
    app, a ranker trained without it (and without `held_out`) decides its recorded tasks' steps."""
    apps = [a for a in sorted(rows) if a not in ("extra", held_out)]
    predict = []
    for app in apps:
        if progress is not None:
            progress(f"{'all' if held_out is None else 'without ' + held_out}: inner model without {app}")
        task = [r for r in rows[app] if r.origin == "task"]
        if task:
            predict.append((train_ranker(training_rows(rows, (held_out, app)), config, cache=cache), task))
    if progress is not None:
        progress(f"{'all' if held_out is None else 'without ' + held_out}: the final model")
    ranker = train_ranker(training_rows(rows, (held_out,)), config, cache=cache)
    (margin, below, cover), scored = fit_margin(predict) if predict else ((0.0, 0.0, False), {})
    ranker.meta.update({"ask_margin": margin, "ask_below": below, "ask_start": True, "ask_cover": cover,
                        "held_out": held_out, "margins": scored})
    return Trained(ranker, margin, below, cover, held_out, scored)
