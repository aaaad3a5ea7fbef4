"""`appatlas bench retrieval`: how well intents find their screens and plans (docs/BENCHMARKS.md §3).

For every app folder in DATA (DroidTask layout): import its DroidBot recording into a temporary
atlas, caption it (heuristic, or the app's reference_captions.yaml with captions="reference"),
index it, then for every recorded task query with the task text alone, leaving the task's own
recording out of the experience (leave-one-out):

  start_top1   the recorded first screen (structure key) is the first start candidate
  end_top1/5   the recorded final screen is the first / among the first five end candidates,
               over tasks whose final screen differs in structure from their first
  plan_valid   the test planned from the retrieved start passes through the recorded screens in
               order (structure keys, consecutive repeats collapsed), ends on the final screen,
               and types every recorded input into the field it was typed into (same field,
               same text up to case and punctuation). A step DroidTask recorded on a page
               scrolled during the step lists several states; any of their keys is that step's
               screen — for start and end too (`summary.first_state` counts only the first, as the
               importer keeps it)
  screenshot_top1  a screen's screenshot, changed (another resolution, another status bar, JPEG,
               its list scrolled by a row), finds the screen first: wireframes rendered from the
               dev apps' trees, and the real screenshots of droidbot-yelp
  query_ms_p50 time to retrieve and plan one intent (the model loaded)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from appatlas.bench.folders import app_folders
from appatlas.bench.settings import anchors, atlas_without, check_setting, exploration_phone, explored_atlas
from appatlas.devices.render import render_png
from appatlas.graph.atlas import Atlas, RecordedTask
from appatlas.graph.demonstration import Demonstration, same_element
from appatlas.graph.droidbot import import_droidbot
from appatlas.graph.touch import same_touch
from appatlas.rag.captioner import HeuristicCaptioner, caption_atlas
from appatlas.rag.embed import TextEmbedder, text_embedder
from appatlas.rag.plan import plan_from_retrieval
from appatlas.rag.retrieve import Retriever
from appatlas.rag.shots import resized, scroll_tree, scrolled_pixels, status_bar_changed, to_jpeg
from appatlas.rag.store import INDEX_DIR, RagStore, build_index
from appatlas.rag.views import atlas_views
from appatlas.types import Action, ActionKind, Screen

__all__ = ["reachable", "recorded_pages", "run_retrieval_bench", "score_task", "screenshot_bench", "synthetic_query_bench"]

Progress = Callable[[str, int, int], None]
SUMMARY_KEYS = ("start_top1", "end_top1", "end_top5", "plan_valid", "screenshot_top1", "query_ms_p50", "tasks")
CHANGES = ("resolution", "status_bar", "jpeg", "scrolled")


def _norm(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.casefold())


def _collapse(keys: Sequence[str]) -> list[str]:
    return [k for i, k in enumerate(keys) if i == 0 or keys[i - 1] != k]


def _is_subsequence(needle: Sequence[str], hay: Sequence[str]) -> bool:
    it = iter(hay)
    return all(any(x == y for y in it) for x in needle)


def _passes(pages: Sequence[frozenset[str]], planned: Sequence[str]) -> bool:
    """Whether `planned` meets each page (a set of structure keys) in order."""
    it = iter(planned)
    return all(any(p in page for p in it) for page in pages)


def recorded_pages(folder: Path, atlas: Atlas) -> dict[str, list[frozenset[str]]]:
    """Per DroidTask task: for each step, the structure keys of *every* state its record lists.

    A DroidTask record names the screen of a step by a list of DroidBot states when the page was
    scrolled during the step (`state_str: [top, scrolled]`; the element chosen may be on the
    scrolled one). The importer keeps the first; the benchmark counts the page as all of them.
    """
    import yaml

    out: dict[str, list[frozenset[str]]] = {}
    for path in sorted(folder.glob("task*.yaml")):
        try:
            records = yaml.safe_load(path.read_text(encoding="utf-8"))["records"]
        except (OSError, yaml.YAMLError, KeyError, TypeError):
            continue
        pages = []
        for rec in records:
            strs = rec.get("state_str") if isinstance(rec, dict) else None
            strs = strs if isinstance(strs, list) else [strs]
            found = (atlas.state_by_origin(str(x)) for x in strs if x)
            pages.append(frozenset(st.structure_key for st in found if st is not None))
        out[path.stem] = pages
    return out


def _step_pages(recorded: Sequence[str], pages: Sequence[frozenset[str]] | None) -> list[frozenset[str]]:
    """Each recorded step's screen keys: its first state's, and every state its record lists (`recorded_pages`)."""
    steps = [frozenset({k}) for k in recorded]
    if pages is not None and len(pages) == len(recorded):
        steps = [page | step for page, step in zip(pages, steps, strict=True)]
    return steps


def score_task(task: RecordedTask, keys: dict[int, str], retriever: Retriever, *,
               pages: Sequence[frozenset[str]] | None = None,
               screens: Callable[[int], Screen] | None = None) -> dict[str, Any]:
    """Query one recorded task (its own recording left out) and score start, end and plan.

    `pages` (see `recorded_pages`) widens each recorded step to every state its record lists;
    start, end and plan are also scored against the first state alone (`*_first_state`).
    `screens` gives a recorded state's screen, to tell whether a planned tap reaches the recorded
    one's handler (`appatlas.graph.touch`); without it, taps are compared by element only.
    """
    recorded = [keys[s.state] for s in task.steps]
    steps = _step_pages(recorded, pages)
    first, last = recorded[0], recorded[-1]
    retrieval = retriever.retrieve(task.intent, exclude_tasks=[task.name], k=5)
    starts = [c.key for c in retrieval.starts]
    ends = [c.key for c in retrieval.ends]
    row: dict[str, Any] = {"task": task.name, "text": task.intent, "ms": round(retrieval.ms, 2),
                           "start": {"recorded": first, "predicted": starts[:1], "ok": starts[:1] != [] and
                                     starts[0] in steps[0], "ok_first_state": starts[:1] == [first]}}
    if first != last:  # which tasks count is decided by the first states, as the importer keeps them
        row["end"] = {"recorded": last, "predicted": ends[:5], "top1": ends[:1] != [] and ends[0] in steps[-1],
                      "top5": any(e in steps[-1] for e in ends[:5]),
                      "top1_first_state": ends[:1] == [last], "top5_first_state": last in ends[:5]}
    try:
        test = plan_from_retrieval(retriever.views, retrieval).test
        planned = [test.start] + [s.expect for s in test.steps]
        planned_actions = [s.action for s in test.steps]
        # only texts the plan took from the intent count: a TYPE step that kept the text the atlas
        # recorded would replay the task's own demonstration
        from_intent = {_norm(v) for _, v in test.inputs}
        typed = {(s.action.key, _norm(s.action.text)) for s in test.steps
                 if s.action.kind is ActionKind.TYPE and _norm(s.action.text) in from_intent}
    except Exception as exc:  # noqa: BLE001 - a task the planner cannot plan scores as invalid, with why
        planned, typed, planned_actions = [], set(), []
        row["plan_error"] = str(exc)
    needed = {(s.action.key, _norm(s.action.text)) for s in task.steps
              if s.action is not None and s.action.kind is ActionKind.TYPE and s.action.text}
    first_ok = bool(planned) and _is_subsequence(_collapse(recorded), _collapse(planned)) and planned[-1] == last
    # consecutive steps on one page (their states shared) are one screen, as repeats are collapsed
    walked = [page for i, page in enumerate(steps) if i == 0 or not steps[i - 1] & page]
    path_ok = bool(planned) and _passes(walked, _collapse(planned)) and planned[-1] in steps[-1]
    inputs_ok = needed <= typed
    # the screens alone do not show which option was picked or whether the switch was flipped: the
    # plan must take the recorded elements, in order
    taken = [(s.action, screens(s.state) if screens is not None else None) for s in task.steps
             if s.action is not None]
    elements_ok = bool(planned) and _takes_in_order(taken, planned_actions)
    row["plan"] = {"recorded": _collapse(recorded), "planned": _collapse(planned), "path_ok": path_ok,
                   "recorded_actions": [s.action.describe() for s in task.steps if s.action is not None],
                   "planned_actions": [a.describe() for a in planned_actions],
                   "inputs_ok": inputs_ok, "elements_ok": elements_ok, "valid": path_ok and inputs_ok and elements_ok,
                   "valid_first_state": first_ok and inputs_ok and elements_ok,
                   "pages": [sorted(p) for p in walked if len(p) > 1],
                   "key_transitions": [kt.reason for kt in retrieval.key_transitions]}
    if retrieval.rehearsal:
        row["plan"]["rehearsal"] = retrieval.rehearsal
    return row


def _same_target(a: Action, b: Action, screen: Screen | None = None) -> bool:
    """The same element; or one the recording and the plan name by the same label (a row and its title);
    or, on the recorded `screen`, a tap that reaches the same handler (a row and its non-clickable title)."""
    if same_element(a, b):
        return True
    ta, tb = a.target, b.target
    label = (lambda t: (t.text or t.content_desc) if t is not None else "")  # noqa: E731
    if a.kind is b.kind and bool(label(ta)) and label(ta) == label(tb):
        return True
    if screen is not None and a.kind is b.kind and ta is not None and tb is not None and ta.resource_id and \
            ta.resource_id == tb.resource_id and sum(w.resource_id == ta.resource_id for w in screen.widgets()) == 1:
        return True  # an id that names one widget of the screen: its text is only its state (a switch's ON/OFF)
    return screen is not None and same_touch(a, b, screen)


def _focus_taps(recorded: Sequence[tuple[Action, Screen | None]]) -> list[tuple[Action, Screen | None]]:
    """The recorded actions without a tap on a field right before typing into it: typing focuses the field
    itself, so a plan that types there without tapping first takes the same elements."""
    out = []
    for i, (a, screen) in enumerate(recorded):
        nxt = recorded[i + 1][0] if i + 1 < len(recorded) else None
        if a.kind is ActionKind.TAP and nxt is not None and nxt.kind is ActionKind.TYPE and a.target is not None \
                and nxt.target is not None and a.target.resource_id and a.target.resource_id == nxt.target.resource_id:
            continue
        out.append((a, screen))
    return out


def _takes_in_order(recorded: Sequence[tuple[Action, Screen | None]], planned: Sequence[Action]) -> bool:
    it = iter(planned)
    return all(any(_same_target(r, p, screen) for p in it) for r, screen in _focus_taps(recorded))


def reachable(task: RecordedTask, keys: dict[int, str], known: Atlas, *,
              pages: Sequence[frozenset[str]] | None = None,
              screens: Callable[[int], Screen] | None = None) -> dict[str, bool]:
    """What the knowledge atlas `known` could show of a recorded task at best — the ceiling of its scores:

      end   the recorded final screen (any state its record lists) is a screen of `known`: end top-1/top-5
            cannot be right otherwise
      path  every recorded step's element was taken in `known` from that step's screen, and every screen
            the task passes is in `known`: a plan cannot pass `plan_valid` otherwise (necessary, not
            sufficient: where the atlas saw the step lead is not checked)
    """
    steps = _step_pages([keys[st.state] for st in task.steps], pages)
    have = {st.structure_key for st in known.states()}
    taken: dict[str, list[Action]] = {}
    for t in known.transitions():
        taken.setdefault(t.source_key, []).append(t.action)
    path = all(page & have for page in steps)
    acted = [(st.action, screens(st.state) if screens is not None else None, page)
             for st, page in zip(task.steps, steps, strict=True) if st.action is not None]
    # the elements `plan_valid` asks the plan to take (a tap that only focuses the field typed next is not one)
    needed = {id(a) for a, _ in _focus_taps([(a, screen) for a, screen, _ in acted])}
    for action, screen, page in acted:
        if not path:
            break
        if id(action) not in needed or action.kind is ActionKind.TYPE:
            continue  # typing is the plan's own value, into a field the screen shows
        path = any(_same_target(action, a, screen) for k in page for a in taken.get(k, ()))
    return {"end": bool(steps[-1] & have), "path": path}


def _rendered(screen: Screen, *, scale: float = 0.5) -> bytes:
    return render_png(screen.root, width=screen.width, height=screen.height, scale=scale)


def _changed(shot: bytes, screen: Screen, change: str, *, real: bool, seed: int) -> bytes | None:
    if change == "resolution":
        return _rendered(screen, scale=0.35) if not real else resized(shot, 0.6)
    if change == "status_bar":
        return status_bar_changed(shot, seed=seed)
    if change == "jpeg":
        return to_jpeg(shot, quality=60)
    if real:
        return scrolled_pixels(shot, screen)
    tree = scroll_tree(screen.root)
    return None if tree is None else _rendered(replace(screen, root=tree))


def screenshot_bench(atlas: Atlas, store: RagStore, *, real: bool) -> dict[str, list[bool]]:
    """Per change, whether each screen's changed screenshot retrieves that screen first."""
    hits: dict[str, list[bool]] = {c: [] for c in CHANGES}
    seen: set[str] = set()
    for state in atlas.states():
        if state.structure_key in seen:
            continue
        seen.add(state.structure_key)
        screen = atlas.screen(state.id, with_screenshot=real)
        shot = screen.screenshot if real else _rendered(screen)
        if shot is None:
            continue
        for change in CHANGES:
            query = _changed(shot, screen, change, real=real, seed=state.id)
            if query is None:
                continue
            top = store.search_screenshot(query, k=1)
            hits[change].append(bool(top) and top[0].meta["key"] == state.structure_key)
    return hits


def _rate(flags: Sequence[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def _app_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ends = [r["end"] for r in rows if "end" in r]
    return {"tasks": len(rows), "end_tasks": len(ends),
            "start_top1": _rate([r["start"]["ok"] for r in rows]),
            "end_top1": _rate([e["top1"] for e in ends]), "end_top5": _rate([e["top5"] for e in ends]),
            "plan_valid": _rate([r["plan"]["valid"] for r in rows]),
            "first_state": {"start_top1": _rate([r["start"]["ok_first_state"] for r in rows]),
                            "end_top1": _rate([e["top1_first_state"] for e in ends]),
                            "end_top5": _rate([e["top5_first_state"] for e in ends]),
                            "plan_valid": _rate([r["plan"]["valid_first_state"] for r in rows])},
            "query_ms_p50": round(statistics.median([r["ms"] for r in rows]), 2) if rows else None,
            # the best the knowledge allows (`reachable`): end screens it holds, tasks whose every step it saw
            "ceiling": {"end_top": _rate([r["reachable"]["end"] for r in rows if "end" in r and "reachable" in r]),
                        "plan_valid": _rate([r["reachable"]["path"] for r in rows if "reachable" in r])}}


def _captioned_index(atlas: Atlas, folder: Path, captions: str, emb: TextEmbedder, *, screenshots: bool,
                     planner: str = "agent") -> Retriever:
    caption_atlas(atlas, HeuristicCaptioner())
    if captions == "reference":
        from appatlas.rag.reference import ReferenceCaptioner

        caption_atlas(atlas, ReferenceCaptioner.from_folder(folder=folder))
    build_index(atlas, captioner=captions, screenshots="render" if screenshots else "off", embedder=emb)
    return indexed_retriever(atlas, emb, planner=planner)


def indexed_retriever(atlas: Atlas, emb: TextEmbedder, *, planner: str = "agent") -> Retriever:
    """A retriever over `atlas`'s built index; with the agent planner (what `appatlas plan` plans with) the
    agent's rehearsal on the atlas is its first route."""
    views = atlas_views(atlas)
    rehearse = None
    if planner == "agent":
        from appatlas.agent.rehearse import rehearser

        rehearse = rehearser(atlas, views)
    return Retriever(atlas, RagStore.open(atlas, embedder=emb), views=views, rehearse=rehearse)


def _score_app(folder: Path, atlas: Atlas, setting: str, captions: str, emb: TextEmbedder, tmp: Path,
               crawl_budget: int, planner: str = "agent") -> list[dict[str, Any]]:
    """Every task of one app (the whole recording in `atlas`) scored in `setting`: each task against
    knowledge that holds nothing of it (`appatlas.bench.settings`)."""
    from appatlas.agent.knowledge import Knowledge
    from appatlas.bench.tasks import demonstration, read_tasks

    keys = {s.id: s.structure_key for s in atlas.states()}
    pages = recorded_pages(folder, atlas)
    demos = {t.name: demonstration(t) for t in read_tasks(folder, Knowledge.from_atlas(atlas, store=False))}
    tasks = list(atlas.tasks())
    for task in tasks:  # a task the tasks reader could not resolve is still left out, by its first states
        demos.setdefault(task.name, Demonstration(task.name, tuple((s.state,) for s in task.steps),
                                                  tuple(s.action for s in task.steps)))
    from appatlas.graph.replay import recorded_app

    recording = recorded_app(atlas) if setting == "explore" else None

    def recorded(state: int) -> Screen:
        return atlas.screen(state, with_screenshot=False)

    cache = atlas.folder / INDEX_DIR / "cache"  # embeddings by content: what one task's index embedded, the next reuses
    made: dict[tuple[frozenset[int], frozenset[tuple[int, int]]], Path] = {}  # crawls of the same phone, made once
    rows = []
    for task in tasks:
        where = tmp / f"{folder.name}-{task.name}.atlas"
        if recording is not None:
            phone = exploration_phone(recording, [demos[task.name]])
            same = (frozenset(phone.states), frozenset((e.id, e.count) for e in phone.edges))
            if same not in made:
                made[same] = explored_atlas(phone, where, budget=crawl_budget)
            known_atlas = made[same]
        else:
            known_atlas = atlas_without(atlas.folder, where, demos[task.name])
        shutil.copytree(cache, known_atlas / INDEX_DIR / "cache", dirs_exist_ok=True)
        with Atlas.open(known_atlas) as known:
            retriever = _captioned_index(known, folder, captions, emb, screenshots=False, planner=planner)
            row = score_task(task, keys, retriever, pages=pages.get(task.name), screens=recorded)
            row["reachable"] = reachable(task, keys, known, pages=pages.get(task.name), screens=recorded)
            rows.append(row | {"app": folder.name})
        shutil.copytree(known_atlas / INDEX_DIR / "cache", cache, dirs_exist_ok=True)
        if recording is None:
            shutil.rmtree(known_atlas, ignore_errors=True)
    return rows


def run_retrieval_bench(*, data: Path, out: Path, captions: str = "heuristic", apps: Sequence[str] | None = None,
                        screenshots: bool = True, real_screenshots: Path | None = None, scale: int = 0,
                        setting: str = "explore", crawl_budget: int = 1000, planner: str = "agent",
                        embedder: TextEmbedder | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Run the retrieval benchmark over every app of `data`; write the JSON to `out` and return it.

    `setting`: explore or import (`appatlas.bench.settings`). `scale` > 0 also times queries on a
    synthetic index of that many screens (`summary.scale`). `planner`: agent (`appatlas plan`'s default: the
    agent's decisions rehearsed on the atlas first), or words (caption-matched routes only).
    """
    setting = check_setting(setting)
    if planner not in ("words", "agent"):
        raise ValueError(f"planner must be 'words' or 'agent', got {planner!r}")
    if captions not in ("heuristic", "reference"):
        raise ValueError(f"captions must be 'heuristic' or 'reference', got {captions!r}")
    data = Path(data)
    emb = embedder or text_embedder()
    folders = app_folders(data, apps)
    result: dict[str, Any] = {"benchmark": "retrieval", "data": str(data), "captions": captions, "apps": {},
                              "tasks": []}
    shots: dict[str, list[bool]] = {c: [] for c in CHANGES}
    shots_real: dict[str, list[bool]] = {c: [] for c in CHANGES}
    all_rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="appatlas-bench-") as tmp:
        for n, folder in enumerate(folders):
            if progress is not None:
                progress("apps", n, len(folders))
            atlas_dir = Path(tmp) / f"{folder.name}.atlas"
            import_droidbot(folder, atlas_dir)
            with Atlas.open(atlas_dir) as atlas:
                retriever = _captioned_index(atlas, folder, captions, emb, screenshots=screenshots)
                store = retriever.store
                rows = _score_app(folder, atlas, setting, captions, emb, Path(tmp), crawl_budget, planner)
                app_row = _app_summary(rows)
                if screenshots:
                    hits = screenshot_bench(atlas, store, real=False)
                    app_row["screenshot_top1"] = _rate([h for v in hits.values() for h in v])
                    for c in CHANGES:
                        shots[c] += hits[c]
            result["apps"][folder.name] = app_row
            all_rows += rows
        if screenshots and real_screenshots is not None and (real_screenshots / "states").is_dir():
            real_dir = Path(tmp) / "real.atlas"
            import_droidbot(real_screenshots, real_dir)
            with Atlas.open(real_dir) as atlas:
                build_index(atlas, screenshots="auto", embedder=emb)
                store = RagStore.open(atlas, embedder=emb)
                shots_real = screenshot_bench(atlas, store, real=True)
    summary = _app_summary(all_rows) | {"setting": setting, "planner": planner,
                                        "crawl_budget": crawl_budget if setting == "explore" else None,
                                        "anchors": anchors(data, [f.name for f in folders])}
    rendered = [h for v in shots.values() for h in v]
    real = [h for v in shots_real.values() for h in v]
    summary["screenshot_top1"] = _rate(rendered + real)
    summary["screenshots"] = {"rendered": _rate(rendered), "real": _rate(real),
                              "by_change": {c: {"rendered": _rate(shots[c]), "real": _rate(shots_real[c])}
                                            for c in CHANGES},
                              "queries": {"rendered": len(rendered), "real": len(real)}}
    if scale > 0:
        summary["scale"] = synthetic_query_bench(scale, embedder=emb)
    result["summary"] = summary
    result["tasks"] = all_rows
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result


_WORDS = ("account orders profile inbox photos library cart settings friends events reports billing devices music "
          "maps recipes travel health files help search sort filter export import share delete rename create new "
          "note contact alarm timer theme color font size language notifications privacy backup sync").split()


def synthetic_query_bench(n_screens: int = 10_000, *, queries: int = 40, k: int = 10, seed: int = 0,
                          embedder: TextEmbedder | None = None) -> dict[str, Any]:
    """Query time of the index at scale: `n_screens` screen documents and 3x as many transitions.

    Documents get synthetic captions (BM25 reads them) and random unit vectors (the cost of a
    FAISS search does not depend on what the vectors mean); each query is embedded by the real
    all-MiniLM-L6-v2 (loaded before timing), then both collections are searched (hybrid top-k).
    """
    import time

    import numpy as np

    from appatlas.rag.collection import Collection, Doc

    emb = embedder or text_embedder()
    rng = np.random.default_rng(seed)
    cols = {}
    for name, n in (("screens", n_screens), ("transitions", 3 * n_screens)):
        docs = [Doc(subject=f"{name}:{i}", text=f"{name} {i}", meta={"i": i},
                    words=" ".join(rng.choice(_WORDS, size=12)) + f" item{i}") for i in range(n)]
        vecs = rng.standard_normal((n, emb.dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        col = Collection(name, emb.dim)
        col.sync(docs, lambda ds, v=vecs: [v[d.meta["i"]] for d in ds])
        cols[name] = col
    texts = [" ".join(rng.choice(_WORDS, size=4)) for _ in range(queries)]
    emb.encode(texts[:2])  # warm up: the model is loaded before timing
    times, embeds, cpu = [], [], []
    for text in texts:
        c0 = time.thread_time()
        t0 = time.perf_counter()
        qvec = emb.encode([text])[0]
        t1 = time.perf_counter()
        for col in cols.values():
            col.search(qvec, text, k=k)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
        embeds.append((t1 - t0) * 1000)
    searches = [t - e for t, e in zip(times, embeds, strict=True)]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"screens": n_screens, "transitions": 3 * n_screens, "queries": queries,
            "query_ms_p50": round(statistics.median(times), 2),
            "query_ms_p95": round(sorted(times)[int(0.95 * (len(times) - 1))], 2),
            "embed_ms_p50": round(statistics.median(embeds), 2), "search_ms_p50": round(statistics.median(searches), 2),
            # the CPU time the querying thread itself used: what a query costs whatever else the machine runs
            "query_cpu_ms_p50": round(statistics.median(cpu), 2),
            "load_average": round(load, 2) if load is not None else None, "cpus": os.cpu_count()}
