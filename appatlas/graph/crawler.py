"""The crawl loop: observe → structure key → record at once → choose → act.

It notices when it left the app (back, else relaunch), when the app crashed (a finding with the
path that led there, then relaunch), when it is stuck (relaunch), and when nothing new has
appeared for a while (saturation: stop). Every transition is committed to the atlas as it is
observed; `resume=True` rebuilds the model from the atlas and goes on with the same frontier.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from appatlas.devices.base import Device
from appatlas.errors import ActionRefused, AppCrashed, DeviceTimeout, SelectorNotFound
from appatlas.graph.atlas import Atlas, State
from appatlas.graph.inputs import InputBook
from appatlas.graph.model import DEFAULT_DENY, Candidate, CrawlModel
from appatlas.graph.strategies import make_strategy
from appatlas.types import Action, ActionKind, Screen

__all__ = ["CrawlConfig", "CrawlProgress", "CrawlReport", "crawl"]

log = logging.getLogger(__name__)

PERMISSION_PACKAGES = ("com.android.permissioncontroller", "com.google.android.permissioncontroller",
                       "com.android.packageinstaller")
CRASH_WORDS = ("has stopped", "keeps stopping", "isn't responding", "is not responding")


@dataclass(frozen=True)
class CrawlConfig:
    strategy: str = "atlas"
    budget: int = 1000  # actions, over all runs of a resumed crawl
    seconds: float | None = None
    saturation: int = 400  # stop after this many actions without a new screen or transition
    stuck: int = 25  # relaunch after this many actions without leaving the current state
    deny: tuple[str, ...] = DEFAULT_DENY
    seed: int = 0


@dataclass(frozen=True)
class CrawlProgress:
    actions: int
    screens: int
    transitions: int
    frontier: int
    actions_per_s: float


@dataclass
class CrawlReport:
    actions: int = 0
    screens: int = 0
    states: int = 0
    transitions: int = 0
    findings: int = 0
    stopped: str = ""
    seconds: float = 0.0
    device_seconds: float = 0.0
    timeline: list[tuple[int, int, int]] = field(default_factory=list)  # (actions, screens, transitions)
    refused: list[str] = field(default_factory=list)  # actions the device would not perform
    retries: int = 0  # snapshots looked at again after a timeout

    @property
    def overhead_ms_per_action(self) -> float:
        """Time the crawler spent per action outside the device."""
        return 1000 * (self.seconds - self.device_seconds) / max(self.actions, 1)


def crawl(device: Device, atlas: Atlas, *, package: str, config: CrawlConfig = CrawlConfig(),
          progress: Callable[[CrawlProgress], None] | None = None, resume: bool = False) -> CrawlReport:
    """Explore the app `package` on `device` into `atlas` until the budget, time or saturation stops it."""
    return _Crawl(device, atlas, package, config, progress, resume).run()


class _Crawl:
    SNAPSHOT_TRIES = 3

    def __init__(self, device: Device, atlas: Atlas, package: str, config: CrawlConfig,
                 progress: Callable[[CrawlProgress], None] | None, resume: bool) -> None:
        self.device, self.atlas, self.package, self.config = device, atlas, package, config
        self.progress = progress
        if resume:
            self.model = CrawlModel.from_atlas(atlas, explore=self._in_app, deny=config.deny)
        else:
            self.model = CrawlModel(deny=config.deny, on_drop=atlas.drop)
            self.model.on_pass = lambda name: atlas.set_meta("crawl_pass", name)
        self.strategy = make_strategy(config.strategy, seed=config.seed + (atlas.counts()["observations"]
                                                                            if resume else 0))
        self.inputs = InputBook()
        self.report = CrawlReport(actions=self._spent() if resume else 0)
        self.screens: set[str] = {s.structure_key for s in atlas.states()} if resume else set()
        self.path: deque[dict[str, str]] = deque(maxlen=20)
        self._typed: dict[str, str] = {}  # field key -> value typed on the current screen

    def _spent(self) -> int:
        """Actions a stopped crawl spent: its observations, less the back presses recorded after it
        had left the app (`_return_to_app`), which the run that made them did not count either."""
        outside = {s.id for s in self.atlas.states() if not self._in_app(self.atlas.screen(s.id, with_screenshot=False))}
        source = {t.id: t.source for t in self.atlas.transitions()}
        return sum(source[tid] not in outside for tid in self.atlas.observations())

    # --- device calls, timed so the crawler's own overhead can be reported -----------------------

    def _observe(self) -> tuple[Screen, State]:
        t = time.perf_counter()
        for attempt in range(1, self.SNAPSHOT_TRIES + 1):
            try:
                screen = self.device.snapshot()
                break
            except DeviceTimeout as exc:
                # Busy screens (animations) dump slowly; a second look usually answers.
                if attempt == self.SNAPSHOT_TRIES:
                    raise
                log.warning("snapshot %d of %d timed out (%s); looking again", attempt, self.SNAPSHOT_TRIES, exc)
                self.report.retries += 1
        self.report.device_seconds += time.perf_counter() - t
        state = self.atlas.add_state(screen)
        self.model.see(state, screen, explore=self._in_app(screen))
        return screen, state

    def _do(self, action: Action) -> None:
        t = time.perf_counter()
        try:
            self.device.perform(action)
        finally:
            self.report.device_seconds += time.perf_counter() - t

    # --- the loop ---------------------------------------------------------------------------------

    def run(self) -> CrawlReport:
        start = time.perf_counter()
        self.atlas.set_meta("crawl_strategy", self.config.strategy)
        self.atlas.set_meta("package", self.package)
        screen, state = self._observe()
        if not self._in_app(screen):
            self._do(Action(ActionKind.LAUNCH, app=self.package))
            screen, state = self._observe()
        restarted = False
        quiet = 0  # actions since something new appeared
        same = 0  # actions without leaving the current state
        while True:
            stop = self._should_stop(start, quiet)
            if stop:
                self.report.stopped = stop
                break
            choice = self.strategy.choose(state, self.model)
            if choice is None:
                if restarted or self.model.open_screens() == 0:
                    if self.model.deepen():
                        restarted = False
                        continue
                    self.report.stopped = "saturated: no reachable state has untried actions"
                    break
                choice = Action(ActionKind.LAUNCH, app=self.package)  # lost or stuck: start over
            restarted = isinstance(choice, Action) and choice.kind is ActionKind.LAUNCH
            action = self._concrete(choice)
            try:
                self._do(action)
            except (SelectorNotFound, ActionRefused) as exc:
                # The screen would not take this action (widget gone, not a field): never try it here again.
                self.model.refuse(state, action)
                self.report.refused.append(f"{action.describe()}: {exc}")
                continue
            self.report.actions += 1
            try:
                new_screen, new_state = self._observe()
            except AppCrashed as exc:  # a backend that reports crashes as errors (uiautomator2)
                self.atlas.add_finding("crash", f"{self.package} crashed after {action.describe()}: {exc}",
                                       state=state, path=[*self.path, {"action": action.describe(),
                                                                       "screen": state.structure_key}])
                self.model.refuse(state, action)  # it is known now; do not crash the app on purpose again
                self._do(Action(ActionKind.LAUNCH, app=self.package))
                screen, state = self._observe()
                self._tick(start)
                continue
            before = self.model.transitions
            self._record(state, screen, action, new_state)
            novel = new_state.structure_key not in self.screens or self.model.transitions > before
            self.screens.add(new_state.structure_key)
            quiet = 0 if novel else quiet + 1
            same = same + 1 if new_state.id == state.id else 0
            screen, state = new_screen, new_state
            if not self._in_app(screen):
                screen, state = self._return_to_app(screen, state)
            elif same > self.config.stuck:
                self._do(Action(ActionKind.LAUNCH, app=self.package))
                screen, state = self._observe()
                same = 0
            self._tick(start)
        self.report.seconds = time.perf_counter() - start
        counts = self.atlas.counts()
        self.report.screens, self.report.states = len(self.screens), counts["states"]
        self.report.transitions, self.report.findings = counts["transitions"], counts["findings"]
        return self.report

    def _should_stop(self, start: float, quiet: int) -> str:
        if self.report.actions >= self.config.budget:
            return f"budget of {self.config.budget} actions used"
        if self.config.seconds is not None and time.perf_counter() - start >= self.config.seconds:
            return f"time budget of {self.config.seconds:g} s used"
        if quiet >= self.config.saturation:
            return f"saturated: nothing new in the last {quiet} actions"
        return ""

    def _concrete(self, choice: Candidate | Action) -> Action:
        """A candidate as an action to perform; text fields get a value of the right kind."""
        if isinstance(choice, Action):
            return choice
        action = choice.action
        if action.kind is ActionKind.TYPE and choice.widget is not None:
            field = f"{choice.widget.resource_id}|{choice.widget.bounds}"
            value = self.inputs.value_for(field, choice.widget)
            self._typed[field] = value
            return Action(ActionKind.TYPE, target=action.target, text=value)
        return action

    def _record(self, source: State, screen: Screen, action: Action, target: State) -> None:
        self.atlas.add_transition(source, action, target, origin="crawl")
        self.model.learn(source, action, target)
        self.path.append({"action": action.describe(), "screen": source.structure_key})
        if target.structure_key != source.structure_key:
            for fld, value in self._typed.items():  # the values typed here opened a new screen: keep them
                self.inputs.worked(fld, value)
            self._typed.clear()

    def _in_app(self, screen: Screen) -> bool:
        return screen.package == self.package or screen.package in PERMISSION_PACKAGES

    def _return_to_app(self, screen: Screen, state: State) -> tuple[Screen, State]:
        if _crashed(screen):
            self.atlas.add_finding("crash", f"{self.package} crashed: " + "; ".join(t for t in screen.texts[:3]),
                                   state=state, path=list(self.path))
        else:
            back = Action(ActionKind.BACK)
            self._do(back)
            new_screen, new_state = self._observe()
            self._record(state, screen, back, new_state)
            if self._in_app(new_screen):
                return new_screen, new_state
            state = new_state
        self._do(Action(ActionKind.LAUNCH, app=self.package))
        self.path.clear()
        return self._observe()

    def _tick(self, start: float) -> None:
        self.report.timeline.append((self.report.actions, len(self.screens), self.model.transitions))
        if self.progress is None:
            return
        elapsed = max(time.perf_counter() - start, 1e-9)
        self.progress(CrawlProgress(self.report.actions, len(self.screens), self.model.transitions,
                                    sum(len(v) for v in self.model.frontier.values()),
                                    self.report.actions / elapsed))


def _crashed(screen: Screen) -> bool:
    return screen.package == "android" and any(w in t for t in screen.texts for w in CRASH_WORDS)
