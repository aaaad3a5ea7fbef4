"""`appatlas bench tasks` (BENCHMARKS.md §1): the agent on recorded tasks, step-wise and free run.

For each app folder: import the recording into an atlas (the *phone*: a replay device over all of
it) and build the agent's knowledge in one of two settings (`appatlas.bench.settings`):
`explore` (the default, the headline) — a crawl of the phone with every task's demonstration
taken away, no recorded task known; `import` — the recording itself with the evaluated task and
its demonstration taken away (`Knowledge.without`), the app's other tasks kept as experience.
Then for every task:

- step-wise (the AutoDroid metric): the replay device is put on each recorded step's screen; the
  agent gets the task text and the recorded steps so far and names its next action, compared with
  the recorded one: the same element (the widget's content-free signature, and the same widget when
  several on the screen share it) and the same typed text (case-insensitive); "done" on the last.
  A step recorded at several scroll positions is also scored from the first (`first_state`): where
  the element is not shown there, the agent must scroll.
- free run: from the task's first screen until the agent says done or takes 2 x step_num + 5
  actions. The goal is reached when the recorded screens (by content, consecutive repeats
  collapsed) appear in order among the screens the agent was on, it ends on the recorded final
  screen, and it took the recording's decisive action on its screen (`decisive`: the last action
  that changed what the screen shows) or ended on a content new to its run — a wrong pick in a
  last dialog that leaves the screen as it began is not success. Success = reached and said done
  (`goal_success_rate`). Taps the phone has no recording for do nothing and are counted
  (`unrecorded_taps`).
- the agent's own verdict on each free run (`run.verdict`: PASS / FAIL / inconclusive, with
  `verdict_reason` and `verdict_checks`), decided as `appatlas run` decides (`task_verdicts`): the
  intent planned over the setting's knowledge atlas only, its expectations checked on the phone.
  `verdict_precision` = PASSes that reached the goal / PASSes, `verdict_recall` = PASSes among the
  runs that reached it, `verdicts` = how many of each; `done_precision` / `done_recall` are the same
  for "the agent said done" (what verdict_precision measured before).

A step that was scrolled through lists several states; the agent is put on the one where the
recorded action starts (the element is visible there), and the free run must pass all of them.
Evidence for a back action: `signature` is "" (only back has no element).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import mean, median
from typing import TYPE_CHECKING, Any

from appatlas.agent.knowledge import Knowledge
from appatlas.agent.options import options
from appatlas.agent.policy import Decision, Policy, PolicyConfig
from appatlas.agent.progress import Taken, taken
from appatlas.bench.folders import app_folders
from appatlas.bench.settings import anchors, atlas_without, check_setting, exploration_phone, explored_atlas
from appatlas.devices.base import locate
from appatlas.devices.replay import RecordedApp, RecordedEdge, ReplayDevice
from appatlas.errors import AppatlasError, SelectorNotFound
from appatlas.graph.atlas import Atlas
from appatlas.graph.demonstration import Demonstration, same_element
from appatlas.graph.droidbot import import_droidbot, load_droidbot_screen
from appatlas.graph.expectations import check_screen
from appatlas.graph.fingerprint import SYSTEM_CHROME, structure_key
from appatlas.graph.replay import recorded_app
from appatlas.graph.testcases import expectation_dict, parse_expectations
from appatlas.graph.touch import handler
from appatlas.types import Action, ActionKind, Expectation, Screen, TestCase, Widget

if TYPE_CHECKING:
    from appatlas.bench.task_verdicts import TestPlanner

__all__ = ["RUN_KEYS", "SUMMARY_KEYS", "BenchStep", "BenchTask", "read_tasks", "run_tasks_bench", "score_app"]

log = logging.getLogger(__name__)
SUMMARY_KEYS = ("action_accuracy", "completion_rate", "goal_success_rate", "mean_steps_ratio", "decision_ms_p50",
                "decision_ms_p95", "tasks", "steps", "verdict_precision", "verdict_recall", "verdicts",
                "done_precision", "done_recall", "said_done", "unrecorded_taps", "first_state", "model_share",
                "ceiling")
RUN_KEYS = ("setting", "crawl_budget", "anchors", "leave_app_out")  # the run's summary also says what it was measured in
Progress = Callable[[str, str], None]


def run_tasks_bench(*, data: Path, out: Path, llm: str = "local", atlas: str = "explore", apps: tuple[str, ...] = (),
                    crawl_budget: int = 1000, llm_model: str | None = None, leave_app_out: bool = False,
                    progress: Progress | None = None) -> dict[str, Any]:
    """Run the tasks benchmark over the app folders under `data`; write the JSON to `out` and return it.

    With `leave_app_out`, `llm` is ignored: each app is decided with a ranker trained, and its asking margin
    chosen, on every *other* app folder of `data` (`agent.train.fit`)."""
    from appatlas.agent.llm import make_llm
    from appatlas.bench.task_verdicts import TestPlanner
    from appatlas.rag.embed import text_embedder

    atlas = check_setting(atlas)
    folders = app_folders(data, apps)
    model = None if leave_app_out else make_llm(llm, model=llm_model)
    folds: dict[str, Any] = {}
    if leave_app_out:
        from appatlas.agent import train

        rows = train.collect_rows(data, budget=crawl_budget,
                                  progress=None if progress is None else lambda m: progress("training", m))
    per_app: dict[str, dict[str, Any]] = {}
    evidence: list[dict[str, Any]] = []
    all_ms: list[float] = []
    sources: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="appatlas-tasks-") as tmp:
        planner = TestPlanner(Path(tmp) / "embeddings", text_embedder())
        for folder in folders:
            if progress is not None:
                progress(folder.name, "importing")
            recording = Path(tmp) / f"{folder.name}.atlas"
            # Knowledge comes with the atlas's retrieval store (its elements); one embedding cache serves every
            # atlas of the run (crawls of one app share most texts), the planner's too.
            full, replay, tasks = prepare_app(folder, keep=recording, store=atlas == "import", cache=planner.cache)
            explore = Explorer(replay, crawl_budget, keep=Path(tmp), cache=planner.cache) \
                if atlas == "explore" else None
            test_for = _planned(planner, recording, explore)
            config = None
            if leave_app_out:
                trained = train.fit(rows, held_out=folder.name, cache=train.cache_dir(),
                                    progress=None if progress is None else lambda m: progress("training", m))
                model, config = trained.ranker, trained.config()
                folds[folder.name] = {"model": trained.ranker.name, "ask_margin": trained.ask_margin,
                                      "ask_below": trained.ask_below, "ask_start": config.ask_start,
                                      "ask_cover": trained.ask_cover,
                                      "margins": trained.margins,
                                      "trained_on": trained.ranker.meta.get("apps")}
            asked: Counter[str] = Counter()
            app_rows, ms = score_app(folder.name, tasks, replay=replay, full=full, base=full, llm=model,
                                     progress=progress, sources=asked, test_for=test_for, config=config,
                                     knowledge_for=None if explore is None else explore.knowledge)
            sources.update(asked)
            evidence += app_rows
            all_ms += ms
            per_app[folder.name] = _summary(app_rows, ms) | {"model_share": _share(asked)}
    summary = _summary(evidence, all_ms) | {"model_share": _share(sources), "leave_app_out": folds or None} | {"setting": atlas, "crawl_budget": crawl_budget if atlas == "explore"
                                             else None, "anchors": anchors(data, [f.name for f in folders])}
    doc = {"benchmark": "tasks", "data": str(data), "llm": "ranker (leave-app-out)" if leave_app_out else llm,
           "llm_name": getattr(model, "name", "none"),
           "atlas": atlas, "summary": summary, "apps": per_app, "tasks": evidence,
           "decided_by": dict(sources.most_common())}  # how many decisions each source made
    Path(out).write_text(json.dumps(doc, indent=2))
    return doc


@dataclass(frozen=True)
class BenchStep:
    origin: str  # recorded state_str of the screen the agent is put on
    state: int  # its state id
    states: tuple[int, ...]  # every state of the step (scroll positions), in order
    action: Action | None  # the recorded action; None when done or unresolved
    done: bool = False  # the last step: the right answer is "done"
    label: str = ""  # the chosen element's text, kept when no widget of the screen carries it
    contents: tuple[str, ...] = ()  # every content (`_content`) recorded under the step's state_strs


@dataclass(frozen=True)
class BenchTask:
    name: str
    intent: str
    steps: tuple[BenchStep, ...]
    expect: tuple[Expectation, ...] = ()  # a task judged by its end state (no recorded steps)

    @property
    def records(self) -> list[tuple[int, ...]]:
        return [s.states for s in self.steps]


_ELEMENT = re.compile(r"<(\w+) id=(\d+)(?: text='([^']*)')?[^>]*>(.*?)</\1>", re.DOTALL)


def read_tasks(folder: Path, full: Knowledge) -> list[BenchTask]:
    """The `task*.yaml` of a DroidTask app folder, resolved against the imported recording `full`."""
    import yaml

    ids: dict[str, int] = {}
    # state_str -> the contents recorded under it: DroidBot gives one state_str to screens whose volatile
    # texts differ (a clock's time), and any of them is that recorded screen.
    contents: dict[str, set[str]] = {}
    for path in sorted((folder / "states").glob("state_*.json")):
        try:
            raw = json.loads(path.read_text(encoding="utf-8", errors="replace"))
            screen = load_droidbot_screen(raw, source=str(path))
            sid = full.state_of(screen)
        except (ValueError, KeyError, TypeError, AppatlasError):
            continue  # the importer skipped it too
        if sid is not None:  # the first file of a state_str, as the importer maps its events
            ids.setdefault(str(raw.get("state_str", path.stem)), sid)
            contents.setdefault(str(raw.get("state_str", path.stem)), set()).add(_content(screen))
    hops: dict[tuple[int, int], list[Action]] = {}
    for t in full.transitions:
        hops.setdefault((t.source, t.target), []).append(t.action)
    out = []
    for path in sorted(folder.glob("task*.yaml"), key=lambda p: (len(p.name), p.name)):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        records = raw.get("records") if isinstance(raw, dict) else None
        if isinstance(raw, dict) and raw.get("expect") is not None and not records:
            # judged by its end state, as MobileAgentBench and AndroidWorld judge: intent + expectations
            out.append(BenchTask(path.stem, str(raw.get("task_name") or raw.get("intent") or ""), (),
                                 parse_expectations(raw["expect"], source=str(path))))
            continue
        if not isinstance(records, list) or not records:
            continue
        groups = []
        for rec in records:
            strs = rec["state_str"] if isinstance(rec["state_str"], list) else [rec["state_str"]]
            groups.append([(str(x), ids[str(x)]) for x in strs if str(x) in ids])
        if not all(groups):
            log.warning("%s/%s: a step's screen is not in the recording; task skipped", folder.name, path.name)
            continue
        steps = []
        for i, (rec, group) in enumerate(zip(records, groups, strict=True)):
            states = tuple(sid for _, sid in group)
            if int(rec.get("Choice", -1)) == -1 or i + 1 == len(records):
                origin, sid = group[-1]
                steps.append(BenchStep(origin, sid, states, None, done=True))
                continue
            following = {sid for _, sid in groups[i + 1]}
            found = [(o, s, a) for o, s in reversed(group) for t in following for a in hops.get((s, t), ())]
            label = _choice(rec)[1]
            # Several events joined these screens (a back and a tap): the one on the chosen element. When
            # none is on it, they were other recordings' (another country picked in the same list) and this
            # step's own event went unlogged: the chosen element, found by its text, is the step's action.
            event = next((e for e in found if _names_label(e[2], label)), None)
            chosen = _from_choice(rec, group, full) if event is None else None
            if event is None and found and (chosen is None or chosen.action is None):
                event = found[0]
            steps.append(BenchStep(event[0], event[1], states, event[2]) if event is not None else chosen)
        steps = [replace(step, contents=tuple(sorted(set().union(*(contents[o] for o, _ in group)))))
                 for step, group in zip(steps, groups, strict=True)]
        out.append(BenchTask(path.stem, str(raw.get("task_name", "")), tuple(steps)))
    return out


def _choice(rec: dict[str, Any]) -> tuple[str, str]:
    """(tag, text) of the step's chosen element in its State list."""
    elements = {int(m.group(2)): (m.group(1), re.sub(r"<br>", " ", m.group(3) or m.group(4) or "").strip())
                for m in _ELEMENT.finditer(str(rec.get("State", "")))}
    return elements.get(int(rec["Choice"]), ("", ""))


def _names_label(action: Action, label: str) -> bool:
    if action.kind is ActionKind.BACK:
        return label == "go back"
    t = action.target
    # The State list joins a row's lines ("Max reminder duration<br>5 minutes"): the event names one.
    return t is not None and bool(label) and any(x and (x == label or label.startswith(x + " "))
                                                 for x in (t.text, t.content_desc))


def _from_choice(rec: dict[str, Any], group: list[tuple[str, int]], full: Knowledge) -> BenchStep:
    """The step's action from its `Choice` element, found on one of its screens by its text."""
    tag, label = _choice(rec)
    typed = str(rec.get("Input", "null"))
    states = tuple(sid for _, sid in group)
    if tag == "button" and label == "go back":
        return BenchStep(group[-1][0], group[-1][1], states, Action(ActionKind.BACK))
    for origin, sid in reversed(group):
        screen = full.state_screens[sid]
        for o in options(screen, scroll=False):
            if o.widget is not None and label and o.label.replace("\n", " ") == label:
                action = o.action(screen, text=typed if typed != "null" else "")
                if typed == "null" and action.kind is ActionKind.TYPE:
                    action = Action(ActionKind.TAP, target=action.target)
                return BenchStep(origin, sid, states, action)
    log.info("the chosen element %r is on none of the step's screens", label)
    return BenchStep(group[-1][0], group[-1][1], states, None, label=label)


def prepare_app(folder: Path, *, keep: Path | None = None, store: bool = False,
                cache: Path | None = None) -> tuple[Knowledge, RecordedApp, list[BenchTask]]:
    """A DroidTask app folder imported: its full knowledge, its replayed phone (with the task steps) and tasks.
    With `keep`, the imported atlas is kept there (the `import` setting plans over it, less each task). With
    `store`, the knowledge comes with the recording's retrieval store (`Knowledge.from_atlas`; `cache`: the
    embedding cache folder), what the `import` setting decides with."""
    with tempfile.TemporaryDirectory() as tmp:
        where = keep if keep is not None else Path(tmp) / "rec.atlas"
        import_droidbot(folder, where)
        with Atlas.open(where) as rec:
            full = Knowledge.from_atlas(rec, store=store, cache=cache)
            replay = recorded_app(rec)
    tasks = read_tasks(folder, full)
    return full, with_task_steps(replay, tasks), tasks


def with_task_steps(replay: RecordedApp, tasks: list[BenchTask]) -> RecordedApp:
    """The phone as the task recordings saw it, too: what DroidBot logged no event for.

    The pages a recording scrolled through within a step become scroll pages (else a replayed list
    could never be scrolled to its lower rows), and a step whose action reached the next step's
    screen with no logged event (the `Choice` element, found by its text) becomes an edge.
    """
    pages = [s.states for t in tasks for s in t.steps if len(s.states) > 1]
    edges, next_id = list(replay.edges), max((e.id for e in replay.edges), default=0) + 1
    for task in tasks:
        for step, after in zip(task.steps, task.steps[1:], strict=False):
            if step.action is None or any(e.target in after.states and same_element(e.action, step.action)
                                          for s in step.states for e in replay.edges_from(s)):
                continue
            # From every scroll position of the step that shows the element (the same view, not the same place).
            sources = [s for s in step.states if _shows(replay.states[s], step.action)] or [step.state]
            for source in sources:
                edges.append(RecordedEdge(source, step.action, after.states[0], id=next_id))
                next_id += 1
    return replace(replay, edges=edges, scroll_pages=pages)


def _recorded_widget(action: Action, screen: Screen, *, by_place: bool = True) -> Widget:
    """The widget a recorded action names on `screen` — itself, not a row sharing its id found once the
    text is dropped (`locate`'s fallbacks): a field's text may differ (it is typed into), a label may not."""
    assert action.target is not None
    target = action.target if by_place else replace(action.target, bounds=None)
    w = locate(target, screen)
    if action.kind is not ActionKind.TYPE and ((target.text and w.text != target.text)
                                               or (target.content_desc and w.content_desc != target.content_desc)):
        raise SelectorNotFound(f"{target.describe()} is not on this screen (only widgets like it)")
    return w


def _shows(screen: Screen, action: Action) -> bool:
    if action.target is None:
        return False
    try:
        _recorded_widget(action, screen, by_place=False)
    except SelectorNotFound:
        return False
    return True


def demonstration(task: BenchTask) -> Demonstration:
    """The task's demonstration as `appatlas.graph.demonstration` reads it."""
    return Demonstration(task.name, tuple(task.records), tuple(s.action for s in task.steps))


class Explorer:
    """The knowledge of the `explore` setting, per task: a crawl of the phone with the task's own
    demonstration taken away (`exploration_phone`); no recorded task is known. Crawls of the same
    phone are made once; with `keep`, each crawl's atlas stays in that folder (`atlas`: what the
    agent's verdict is planned over). Each knowledge comes with its crawl's retrieval store, embedded
    through the embedding cache folder `cache` (shared by the crawls of the run)."""

    def __init__(self, replay: RecordedApp, budget: int, *, keep: Path | None = None,
                 cache: Path | None = None) -> None:
        self.replay, self.budget, self.keep, self.cache = replay, budget, keep, cache
        self._made: dict[tuple[frozenset[int], frozenset[int], frozenset[tuple[int, int]]], Knowledge] = {}
        self._atlases: dict[tuple[frozenset[int], frozenset[int], frozenset[tuple[int, int]]], Path] = {}

    def _key(self, task: BenchTask) -> tuple[RecordedApp, tuple[frozenset[int], frozenset[int],
                                                                 frozenset[tuple[int, int]]]]:
        phone = exploration_phone(self.replay, [demonstration(task)])
        return phone, (frozenset(phone.states), frozenset(e.id for e in phone.edges),
                       frozenset((e.id, e.count) for e in phone.edges))

    def knowledge(self, task: BenchTask) -> Knowledge:
        phone, key = self._key(task)
        if key not in self._made:
            if self.keep is not None:
                where = self.keep / f"{self.replay.package}-explore-{len(self._atlases) + 1}.atlas"
                self._atlases[key] = explored_atlas(phone, where, budget=self.budget)
                with Atlas.open(where) as atlas:
                    self._made[key] = Knowledge.from_atlas(atlas, cache=self.cache)
            else:
                with tempfile.TemporaryDirectory() as tmp, \
                        Atlas.open(explored_atlas(phone, Path(tmp) / "explore.atlas", budget=self.budget)) as atlas:
                    self._made[key] = Knowledge.from_atlas(atlas, cache=self.cache)
        return self._made[key]

    def atlas(self, task: BenchTask) -> Path:
        """The kept crawl atlas the task's knowledge came from (crawled now if it was not yet)."""
        if self.keep is None:
            raise ValueError("this Explorer keeps no atlas: make it with keep=FOLDER")
        self.knowledge(task)
        return self._atlases[self._key(task)[1]]


TestFor = Callable[[BenchTask, Screen], tuple[TestCase, str]]


def _planned(planner: TestPlanner, recording: Path, explore: Explorer | None) -> TestFor:
    """The test the agent's verdict checks for a task, planned from `start` over the setting's knowledge
    atlas only: the kept crawl (`explore`), or the recording less the task (`import`, `atlas_without`)."""

    def test_for(task: BenchTask, start: Screen) -> tuple[TestCase, str]:
        if explore is not None:
            return planner.test_case(explore.atlas(task), task.intent, start, name=task.name)
        known = atlas_without(recording, recording.with_name(f"{recording.stem}-{task.name}.atlas"),
                              demonstration(task))
        try:
            return planner.test_case(known, task.intent, start, name=task.name)
        finally:
            shutil.rmtree(known, ignore_errors=True)

    return test_for


def score_app(app: str, tasks: list[BenchTask], *, replay: RecordedApp, full: Knowledge, base: Knowledge,
              llm: object | None, progress: Progress | None = None, sources: Counter[str] | None = None,
              knowledge_for: Callable[[BenchTask], Knowledge] | None = None,
              test_for: TestFor | None = None, config: PolicyConfig | None = None,
              ) -> tuple[list[dict[str, Any]], list[float]]:
    """Evidence rows (one per task) and decision times (ms) for one app; `sources` counts who decided.

    Each task is decided with `knowledge_for(task)`, by default `base` without the task and its
    demonstration (the `import` setting). With `test_for(task, start screen)` (the test planned over
    the same knowledge), each free run also gets the agent's verdict (`_judged`)."""
    rows, ms = [], []
    sources = sources if sources is not None else Counter()
    for task in tasks:
        if progress is not None:
            progress(app, task.name)
        knowledge = knowledge_for(task) if knowledge_for is not None else \
            base.without(task.name, records=task.records, actions=[s.action for s in task.steps])
        policy = Policy(knowledge, llm=llm, config=config or PolicyConfig())
        device = ReplayDevice(replay, screenshots=False, start=task.steps[0].state if task.steps else None)
        judge = None if test_for is None else _judged(task, knowledge, device, test_for)
        if not task.steps:  # judged by its end state: a free run from the launch screen only
            row = {"app": app, "task": f"{task.name}.yaml", "text": task.intent, "steps": [], "known": None,
                   "expect": [expectation_dict(e) for e in task.expect],
                   "run": _free_run_to_expectations(task, device, policy, full, ms, sources, judge=judge)}
            rows.append(row)
            continue
        steps = _stepwise(task, device, policy, ms, sources)
        run = _free_run(task, device, policy, full, ms, sources, judge=judge)
        rows.append({"app": app, "task": f"{task.name}.yaml", "text": task.intent, "steps": steps, "run": run,
                     "known": knows_every_screen(task, full, knowledge)})
        if policy.llm is None and llm is not None:
            llm = None  # the model failed and was dropped: the rest runs graph-only, as the agent would
    return rows, ms


def knows_every_screen(task: BenchTask, full: Knowledge, knowledge: Knowledge) -> bool:
    """Whether `knowledge` holds every screen the recorded task acts on — for a step recorded at several scroll
    positions, the one its element is shown at — and its final screen (at any of its positions). Where it does
    not, the agent is asked for a screen the knowledge it decides with has never seen: the ceiling of what that
    knowledge allows (`summary.ceiling`)."""
    return all(any(full.state_key.get(sid) in knowledge.screens for sid in (step.states if step.done else [step.state]))
               for step in task.steps)


def _stepwise(task: BenchTask, device: ReplayDevice, policy: Policy, ms: list[float],
              sources: Counter[str]) -> list[dict[str, Any]]:
    out = []
    history: list[Taken] = []
    for step in task.steps:
        device.reset(step.state)
        screen = device.snapshot()
        began = time.perf_counter()
        decision = policy.decide(task.intent, screen, history)
        ms.append(1000 * (time.perf_counter() - began))
        sources[decision.source] += 1
        if step.done:
            expected: dict[str, Any] | str = "done"
        elif step.action is None:
            expected = {"signature": "?", "text": ""}  # unresolved: no widget carries the chosen text
        else:
            expected = _expected(_describe(step.action, screen))
        predicted = _describe(decision.action, screen) if decision.action is not None else "done"
        correct = decision.action is None if step.done else (
            step.action is not None and _correct(step.action, decision.action, screen))
        row = {"state": step.origin, "expected": expected, "predicted": predicted, "correct": correct}
        if step.states[0] != step.state:
            row["first_state"] = _from_first_state(task, step, device, policy, history, correct, ms, sources)
        out.append(row)
        if step.action is not None:
            history.append(taken(step.action, screen))
    return out


def decisive(task: BenchTask) -> tuple[BenchStep, Action] | None:
    """The recording's decisive step: the last one whose action changed what the screen shows (the
    option picked in the last dialog, the switch flipped); None when no action changed anything."""
    for step, after in zip(reversed(task.steps[:-1]), reversed(task.steps[1:]), strict=True):
        if step.action is not None and set(step.contents) != set(after.contents):
            return step, step.action
    return None


def _from_first_state(task: BenchTask, step: BenchStep, device: ReplayDevice, policy: Policy,
                      history: list[Taken], correct: bool, ms: list[float], sources: Counter[str]) -> dict[str, Any]:
    """The step scored from its first listed state (the page as it first appears): where the expected
    element is not shown there the right answer is a scroll (and the choice once it is shown)."""
    device.reset(step.states[0])
    screen = device.snapshot()
    began = time.perf_counter()
    decision = policy.decide(task.intent, screen, history)
    ms.append(1000 * (time.perf_counter() - began))
    sources[decision.source] += 1
    shown = step.action is not None and _shows(screen, step.action)
    if shown or step.action is None:
        ok = (decision.action is None) if step.done else (
            step.action is not None and _correct(step.action, decision.action, screen))
    else:
        ok = correct and decision.action is not None and decision.action.kind is ActionKind.SCROLL
    predicted = _describe(decision.action, screen) if decision.action is not None else "done"
    return {"needs_scroll": not shown and step.action is not None, "predicted": predicted, "correct": ok}


@dataclass
class _Run:
    """What a free run did: the screens it was on (contents), its actions, where it took them."""

    screen: Screen
    seen: list[str]
    actions: list[dict[str, Any]]
    acted: list[tuple[Screen, Action]]
    said_done: bool
    unrecorded_taps: int


Judge = Callable[[_Run], dict[str, Any]]


def _judged(task: BenchTask, knowledge: Knowledge, device: ReplayDevice, test_for: TestFor) -> Judge:
    """The agent's own verdict on a finished free run, as `appatlas run` gives it (`loop.judge_run`): the
    test planned from the run's first screen over the setting's knowledge, its expectations checked on the
    phone where the run ended. Nothing of the recorded task is used."""
    from appatlas.agent.loop import Agent, judge_run
    from appatlas.bench.task_verdicts import verdict_fields

    def judge(run: _Run) -> dict[str, Any]:
        screens = [where for where, _ in run.acted] + [run.screen]
        test, note = test_for(task, screens[0])
        verdict = judge_run(Agent(knowledge), device, test, screens, [a for _, a in run.acted], done=run.said_done)
        return verdict_fields(verdict, note)

    return judge


def _run_agent(intent: str, device: ReplayDevice, policy: Policy, limit: int, ms: list[float],
               sources: Counter[str]) -> _Run:
    """The agent from where `device` is until it says done or has taken `limit` actions."""
    taps_before = device.unrecorded_taps
    history: list[Taken] = []
    screen = device.snapshot()
    run = _Run(screen, [_content(screen)], [], [], False, 0)
    while len(run.actions) < limit:
        began = time.perf_counter()
        decision: Decision = policy.decide(intent, screen, history)
        ms.append(1000 * (time.perf_counter() - began))
        sources[decision.source] += 1
        if decision.action is None:
            run.said_done = True
            break
        run.actions.append(_describe(decision.action, screen))
        run.acted.append((screen, decision.action))
        history.append(taken(decision.action, screen))
        device.perform(decision.action)
        screen = device.snapshot()
        run.seen.append(_content(screen))
    run.screen, run.unrecorded_taps = screen, device.unrecorded_taps - taps_before
    return run


def _free_run(task: BenchTask, device: ReplayDevice, policy: Policy, full: Knowledge, ms: list[float],
              sources: Counter[str], *, judge: Judge | None = None) -> dict[str, Any]:
    # The run starts at the moment the task was recorded (the app's data as it was then), as a phone
    # restored to that moment would; the agent itself knows nothing of it.
    device.reset(task.steps[0].states[0], at=device.app.moment(task.records, [s.action for s in task.steps]))
    run = _run_agent(task.intent, device, policy, 2 * len(task.steps) + 5, ms, sources)
    seen = run.seen
    # A step scrolled through was recorded at several positions: any of them is that step's screen.
    recorded = [set(step.contents) or {_content(full.state_screens[sid]) for sid in step.states}
                for step in task.steps]
    recorded = [r for i, r in enumerate(recorded) if i == 0 or r != recorded[i - 1]]
    path_ok = seen[-1] in recorded[-1] and _in_order(recorded, _collapse(seen))
    # The screens alone do not show a choice whose effect is hidden (the last screen equals the first):
    # the decisive action must have been taken on its screen too, or the run ends on a content new to it.
    key = decisive(task)
    took = key is None or any(_content(where) in key[0].contents and _correct(key[1], action, where)
                              for where, action in run.acted)
    reached = path_ok and (took or seen[-1] not in seen[:-1])
    origins = _origins(full)
    row = {"visited": [origins.get(k) for k in seen], "actions": run.actions, "said_done": run.said_done,
           "reached": reached,
           "decisive": None if key is None else _describe(key[1], full.state_screens[key[0].state]) | {
               "state": key[0].origin, "taken": took},
           "unrecorded_taps": run.unrecorded_taps, "success": run.said_done and reached}
    return row | (judge(run) if judge is not None else {})  # judged last: checking moves the phone


EXPECT_LIMIT = 25  # actions a task judged by its end state may take (it has no recorded step count)


def _free_run_to_expectations(task: BenchTask, device: ReplayDevice, policy: Policy, full: Knowledge,
                              ms: list[float], sources: Counter[str], *, judge: Judge | None = None) -> dict[str, Any]:
    """A free run from the launch screen; the goal is reached when every expectation holds on the final
    screen (and no error shows), and success is that with "done" said."""
    device.reset(device.app.launch[0])
    run = _run_agent(task.intent, device, policy, EXPECT_LIMIT, ms, sources)
    checks = check_screen(task.expect, run.screen, here={structure_key(run.screen)})
    reached = all(c.holds for c in checks)
    origins = _origins(full)
    row = {"visited": [origins.get(k) for k in run.seen], "actions": run.actions, "said_done": run.said_done,
           "reached": reached, "decisive": None, "checks": [c.as_dict() for c in checks],
           "unrecorded_taps": run.unrecorded_taps, "success": run.said_done and reached}
    return row | (judge(run) if judge is not None else {})


def _content(screen: Screen) -> str:
    """A screen's content for comparing runs: every widget's signature, texts and checked/selected state,
    in order — positions left out, so the same screen scrolled by a few pixels is the same content."""
    h = hashlib.sha256(f"{screen.package}/{screen.activity}".encode())
    for w in screen.widgets():
        if w.package in SYSTEM_CHROME:
            continue
        h.update("\x1f".join((w.signature, w.text, w.content_desc, f"{w.checked:d}{w.selected:d}")).encode(
            "utf-8", "surrogatepass") + b"\x1e")
    return h.hexdigest()


_ORIGINS: dict[int, dict[str, str]] = {}


def _origins(full: Knowledge) -> dict[str, str]:
    """Content (as `_content`) -> the recording's state_str of the first state showing it."""
    if id(full) not in _ORIGINS:
        _ORIGINS.clear()
        table: dict[str, str] = {}
        for sid in sorted(full.state_screens):
            if sid in full.origins:
                table.setdefault(_content(full.state_screens[sid]), full.origins[sid])
        _ORIGINS[id(full)] = table
    return _ORIGINS[id(full)]


def _collapse(keys: list[str]) -> list[str]:
    return [k for i, k in enumerate(keys) if i == 0 or k != keys[i - 1]]


def _in_order(needles: list[set[str]], hay: list[str]) -> bool:
    it = iter(hay)
    return all(any(h in k for h in it) for k in needles)


def _describe(action: Action, screen: Screen) -> dict[str, Any]:
    """{kind, signature, label, text} of an action on `screen` (signature "" for back)."""
    if action.target is None:
        return {"kind": action.kind.value, "signature": "", "label": "", "text": action.text}
    try:
        w = locate(action.target, screen)
        signature, label = w.signature, _label(w, screen)
    except SelectorNotFound:
        signature, label = action.target.signature, action.target.text or action.target.content_desc
    return {"kind": action.kind.value, "signature": signature, "label": label, "text": action.text}


def _label(widget, screen: Screen) -> str:  # noqa: ANN001 - a Widget
    for o in options(screen, scroll=False):
        if o.widget is widget:
            return o.label
    return widget.label


def _expected(described: dict[str, Any] | str) -> dict[str, Any] | str:
    if isinstance(described, str):
        return described
    return {"signature": described["signature"], "text": described["text"]}


def _correct(expected: Action, predicted: Action | None, screen: Screen) -> bool:
    if predicted is None:
        return False
    if expected.kind is ActionKind.BACK or predicted.kind is ActionKind.BACK:
        return expected.kind is predicted.kind
    if expected.target is None or predicted.target is None:
        return False
    try:
        want, got = _recorded_widget(expected, screen), locate(predicted.target, screen)
    except SelectorNotFound:
        return False
    if expected.text.strip().lower() != predicted.text.strip().lower():
        return False
    # A tap on a row's non-clickable title and one on the row reach the same view (appatlas.graph.touch).
    if expected.kind in (ActionKind.TAP, ActionKind.LONG_TAP) and expected.kind is predicted.kind \
            and handler(screen, want, expected.kind) is handler(screen, got, expected.kind):
        return True
    if want.signature != got.signature:
        return False
    # Rows of a list share a signature: then only the same widget is the same element.
    twins = sum(1 for w in screen.widgets() if w.signature == want.signature)
    return twins == 1 or got is want


def _share(sources: Counter[str]) -> float:
    """The share of decisions the model made (`Decision.by_model`: source "llm")."""
    total = sum(sources.values())
    return sources["llm"] / total if total else 0.0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _ceiling(stepped: list[dict[str, Any]]) -> dict[str, Any]:
    """The tasks whose every recorded screen the knowledge holds (`known`), and the goal success within and outside
    them: what the exploration allowed, beside what the agent made of it."""
    inside = [r for r in stepped if r.get("known")]
    outside = [r for r in stepped if not r.get("known")]
    return {"known_tasks": len(inside), "of": len(stepped),
            "goal_success_known": sum(r["run"]["success"] for r in inside) / len(inside) if inside else None,
            "successes_unknown": sum(r["run"]["success"] for r in outside)}


def _summary(rows: list[dict[str, Any]], ms: list[float]) -> dict[str, Any]:
    steps = [s for r in rows for s in r["steps"]]
    stepped = [r for r in rows if r["steps"]]  # tasks judged by their end state have no steps to score
    ratios = [len(r["run"]["actions"]) / max(sum(s["expected"] != "done" for s in r["steps"]), 1)
              for r in stepped if r["run"]["success"]]
    said = [r for r in rows if r["run"]["said_done"]]
    reached = [r for r in rows if r["run"].get("reached", r["run"]["success"])]
    judged = [r for r in rows if "verdict" in r["run"]]
    passed = [r for r in judged if r["run"]["verdict"] == "PASS"]
    reached_judged = [r for r in reached if "verdict" in r["run"]]
    first = [s.get("first_state", s) for s in steps]
    return {
        "action_accuracy": sum(s["correct"] for s in steps) / max(len(steps), 1),
        "completion_rate": sum(all(s["correct"] for s in r["steps"]) for r in stepped) / max(len(stepped), 1),
        "goal_success_rate": sum(r["run"]["success"] for r in rows) / max(len(rows), 1),
        "mean_steps_ratio": mean(ratios) if ratios else 0.0,
        "decision_ms_p50": median(ms) if ms else 0.0,
        "decision_ms_p95": _percentile(ms, 0.95),
        "tasks": len(rows),
        "steps": len(steps),
        # of the runs the agent's own verdict passed, the share that reached the recorded goal; and the reverse
        "verdict_precision": sum(r["run"].get("reached", r["run"]["success"]) for r in passed) / len(passed)
        if passed else None,
        "verdict_recall": sum(r["run"]["verdict"] == "PASS" for r in reached_judged) / len(reached_judged)
        if reached_judged else None,
        "verdicts": {v: sum(r["run"]["verdict"] == v for r in judged) for v in ("PASS", "FAIL", "inconclusive")},
        # the same for "the agent said done" alone (what verdict_precision measured before verdicts)
        "done_precision": sum(r["run"]["success"] for r in said) / len(said) if said else None,
        "done_recall": sum(r["run"]["said_done"] for r in reached) / len(reached) if reached else None,
        "said_done": len(said),
        "unrecorded_taps": sum(r["run"].get("unrecorded_taps", 0) for r in rows),
        "ceiling": _ceiling(stepped),
        # every step also scored from the page as it first appears (a needed scroll is then scored)
        "first_state": {"action_accuracy": sum(s["correct"] for s in first) / max(len(first), 1),
                        "completion_rate": sum(all(s.get("first_state", s)["correct"] for s in r["steps"])
                                               for r in stepped) / max(len(stepped), 1),
                        "steps_needing_scroll": sum(bool(s.get("needs_scroll")) for s in first)},
    }
