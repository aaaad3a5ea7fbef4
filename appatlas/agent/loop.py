"""The on-device loop: observe -> localize -> act (on plan, replanned, or decided) -> verify -> done?

    observe     a snapshot of the device
    localize    find the screen in the atlas (appatlas.agent.localize)
    on plan     the plan's next step starts here: take it (its typed text bound from the test)
    off plan    replan from here: the shortest path over the atlas graph back to where the plan goes on
    no plan     the policy decides (graph first, the model only when the graph cannot answer;
                interruptions such as permission dialogs are handled before it)
    verify      after a plan step, the screen must be the one it expects; a miss puts the run off plan
    done        the policy's end oracle, or for a plan: every step taken and the end screen reached
    judge       a plan's expectations are checked on the device (graph.expectations.check_device, with
                read-only moves to the screens they are about): PASS only when the steps ran and every
                one holds and no error shows, quoting the evidence. When they already hold mid-run, the
                case is done: repair never undoes success. A plan with no steps and nothing to check is
                `inconclusive`, never PASS.

A step limit bounds every run. The Verdict carries, per step, the screen key, the screenshot
path, the action, who decided and why. `record_experience` writes an executed path back to the
atlas as a recorded task with origin "agent", so the next run (and retrieval) can use it.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from appatlas.agent.interrupts import interruption
from appatlas.agent.knowledge import Knowledge
from appatlas.agent.localize import Place, Retriever, localize
from appatlas.agent.policy import Decision, Policy, PolicyConfig
from appatlas.agent.progress import Taken, taken
from appatlas.devices.base import Device
from appatlas.errors import ActionRefused, AppCrashed, DeviceError, SelectorNotFound
from appatlas.graph.atlas import Atlas, RecordedStep, RecordedTask
from appatlas.graph.expectations import Check, check_device, check_screen, screen_errors
from appatlas.graph.planner import edge_cost
from appatlas.types import Action, Screen, TestCase, Verdict

__all__ = ["Agent", "RunConfig", "RunResult", "judge_run", "record_experience"]

log = logging.getLogger(__name__)
StepHook = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class RunConfig:
    max_steps: int = 30
    evidence_dir: Path | None = None  # screenshots of every step go here (None: not kept)
    launch: bool = False  # start the app before the first step


@dataclass
class RunResult:
    """A run's verdict plus what the agent went through (for experience and reports)."""

    verdict: Verdict
    screens: list[Screen] = field(default_factory=list)  # observed before each action, then the last one
    actions: list[Action] = field(default_factory=list)
    decisions_ms: list[float] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Agent:
    """Runs intents and test cases on a device, deciding from `knowledge` and, when lost, from `llm`."""

    def __init__(self, knowledge: Knowledge, *, llm: object | None = None, config: PolicyConfig | None = None,
                 retriever: Retriever | None = None) -> None:
        self.knowledge = knowledge
        self.policy = Policy(knowledge, llm=llm, config=config or PolicyConfig())
        self.retriever = retriever

    def run(self, device: Device, intent: str, *, plan: TestCase | None = None, name: str = "",
            config: RunConfig = RunConfig(), on_step: StepHook | None = None) -> RunResult:
        """Carry out `intent` (following `plan` when given) on `device`; never raises for a failing app."""
        name = name or (plan.name if plan is not None else intent)
        run = _Run(self, device, intent, plan, name, config, on_step)
        return run.go()


class _Run:
    def __init__(self, agent: Agent, device: Device, intent: str, plan: TestCase | None, name: str,
                 config: RunConfig, on_step: StepHook | None) -> None:
        self.agent, self.device, self.intent, self.plan, self.name = agent, device, intent, plan, name
        self.config, self.on_step = config, on_step
        self.history: list[Taken] = []
        self.steps: list[dict[str, Any]] = []
        self.result = RunResult(Verdict(name, False, "not run"))
        self.cursor = 0  # next plan step
        self.seen: dict[str, Screen] = {}  # each screen (structure key) as the run first saw it
        self.checks: tuple[dict[str, object], ...] = ()
        self.status = ""
        self._rescue_tried = False  # success reached off plan is looked for once (`_holds_elsewhere`)
        if config.evidence_dir is not None:
            config.evidence_dir.mkdir(parents=True, exist_ok=True)

    def go(self) -> RunResult:
        if self.config.launch:
            self.device.launch()
        reason, passed = f"gave up after {self.config.max_steps} steps without finishing", False
        try:
            for index in range(self.config.max_steps):
                screen = self.device.snapshot()
                place = localize(screen, self.agent.knowledge, retriever=self.agent.retriever)
                self._saw(screen, place)
                began = time.perf_counter()
                decision = self._decide(screen, place)
                self.result.decisions_ms.append(1000 * (time.perf_counter() - began))
                self.result.screens.append(screen)
                if decision.done:
                    passed, reason = self._judge(place, decision)
                    self._record(index, screen, place, decision, outcome="done")
                    break
                assert decision.action is not None
                self._record(index, screen, place, decision, outcome="")
                try:
                    self.device.perform(decision.action)
                except (SelectorNotFound, ActionRefused) as exc:
                    # The screen would not take it: note it and decide again from what is there now.
                    self.steps[-1]["outcome"] = f"not performed: {exc}"
                    if decision.source == "plan":
                        self.cursor += 1
                    continue
                self.result.actions.append(decision.action)
                self.history.append(taken(decision.action, screen))
                self._verify(decision)
            else:
                self.result.screens.append(self.device.snapshot())
        except AppCrashed as exc:
            reason, passed = f"the app crashed: {exc}", False
        except DeviceError:
            raise  # the device is gone: a campaign moves the case elsewhere
        self.result.warnings = list(self.agent.policy.warnings)
        status = self.status or ("passed" if passed else "failed")
        self.result.verdict = Verdict(self.name, passed, reason, tuple(self.steps), self.checks, status)
        return self.result

    def _saw(self, screen: Screen, place: Place) -> None:
        for key in (place.key, place.known_as):
            if key and key not in self.seen:
                self.seen[key] = screen

    # --- deciding -------------------------------------------------------------------------------

    def _decide(self, screen: Screen, place: Place) -> Decision:
        plan = self.plan
        if plan is not None and plan.expect and self.cursor >= len(plan.steps):
            at_end = place.known_as == plan.end or place.key == plan.end
            if self.history and not at_end and (stop := interruption(screen)) is not None:  # a popup: past it first
                return Decision(stop.option.action(screen), stop.reason, "interrupt", stop.option)
            return Decision(None, "every step of the plan was taken", "oracle")
        if plan is not None and self.cursor < len(plan.steps):
            step = plan.steps[self.cursor]
            here = plan.start if self.cursor == 0 else plan.steps[self.cursor - 1].expect
            if not here or place.known_as == here or place.key == here:
                return Decision(step.action, f"plan step {self.cursor + 1}: {step.action.describe()}"
                                + (f" ({step.note})" if step.note else ""), "plan")
            if self.history and plan.expect and self._holds_here(screen, place):
                # Off plan, but what the test expects is already true: repair would only undo it.
                return Decision(None, "off plan, but every expectation already holds here", "oracle")
            if self.history and plan.expect and self._holds_elsewhere(screen):
                # Off plan right after a step, on a screen that shows no error (a Saved page the atlas did not
                # expect): the expectations, checked read-only, already hold. Success reached is done.
                return Decision(None, "off plan, but every expectation already holds (checked read-only)",
                                "oracle")
            detour = self._replan(place, here)
            if detour is not None:
                return detour
        if plan is not None and self.cursor >= len(plan.steps) and plan.end and place.known_as != plan.end:
            detour = self._replan(place, plan.end)
            if detour is not None:
                return detour
        if plan is not None and self.cursor >= len(plan.steps):
            return Decision(None, "every step of the plan was taken and the end screen holds", "oracle")
        return self.agent.policy.decide(self.intent, screen, self.history, known_as=place.known_as or None)

    def _replan(self, place: Place, target: str) -> Decision | None:
        """The first action of the cheapest path from here to `target` over the atlas graph."""
        source = place.known_as or place.key
        graph = self.agent.knowledge.graph()
        if source not in graph or target not in graph:
            return None
        try:
            path = nx.shortest_path(graph, source, target,
                                    weight=lambda u, v, d: min(edge_cost(x) for x in d.values()))
        except nx.NetworkXNoPath:
            return None
        if len(path) < 2:
            return None
        edges = graph.get_edge_data(path[0], path[1])
        data = min(edges.values(), key=edge_cost)
        return Decision(data["action"], f"off plan: back towards {target[:8]}… in {len(path) - 1} step(s)", "replan")

    def _verify(self, decision: Decision) -> None:
        if decision.source != "plan" or self.plan is None:
            return
        expect = self.plan.steps[self.cursor].expect
        screen = self.device.snapshot()
        place = localize(screen, self.agent.knowledge, retriever=self.agent.retriever)
        ok = not expect or place.known_as == expect or place.key == expect
        self.steps[-1]["verified"] = ok
        if ok:
            self.cursor += 1
        elif (stop := interruption(screen)) is not None:
            # A permission popup or prompt over the expected screen: the step did land; what shows on top
            # is handled before the next one (the first visit of a screen that asks for a permission).
            self.steps[-1]["verified"] = "interrupted"
            self.steps[-1]["outcome"] = f"interrupted: {stop.reason}"
            self.cursor += 1
        else:
            # Off plan: the next iteration replans from wherever this is.
            self.steps[-1]["outcome"] = f"expected screen {expect[:8]}…, got {place.key[:8]}…"
            self.cursor += 1

    def _holds_here(self, screen: Screen, place: Place) -> bool:
        """Every expectation is about this screen (or the end) and holds on it, and no error shows."""
        assert self.plan is not None
        here = {place.key, place.known_as} - {""}
        if any((e.where and e.where not in here) or e.kind == "route" for e in self.plan.expect):
            return False
        return all(c.holds for c in check_screen(self.plan.expect, screen, here=here, seen=self.seen))

    def _holds_elsewhere(self, screen: Screen) -> bool:
        """Once per run, when the last plan step just landed off plan on a screen with no error: whether every
        expectation holds, checked on the device with read-only moves (a test about its route never is)."""
        assert self.plan is not None
        last = self.steps[-1] if self.steps else {}
        if self._rescue_tried or last.get("source") != "plan" or last.get("verified") is not False \
                or any(e.kind in ("route", "screen") for e in self.plan.expect) or screen_errors(screen) \
                or not getattr(self.device, "keeps_state", True):
            return False
        self._rescue_tried = True
        checks = check_device(self.plan.expect, self.device, where=self._where, route=self._route, screen=screen,
                              seen=self.seen)
        return all(c.holds for c in checks)

    def _route(self, here: object, target: str) -> list[Action]:
        """The actions of the cheapest atlas path from any of `here` to `target` (for checking)."""
        graph = self.agent.knowledge.graph()
        best: list[str] | None = None
        for source in here:  # type: ignore[attr-defined]
            if source not in graph or target not in graph:
                continue
            try:
                path = nx.shortest_path(graph, source, target,
                                        weight=lambda u, v, d: min(edge_cost(x) for x in d.values()))
            except nx.NetworkXNoPath:
                continue
            if best is None or len(path) < len(best):
                best = path
        if not best:
            return []
        return [min(graph.get_edge_data(u, v).values(), key=edge_cost)["action"] for u, v in itertools.pairwise(best)]

    def _where(self, screen: Screen) -> set[str]:
        place = localize(screen, self.agent.knowledge, retriever=self.agent.retriever)
        self._saw(screen, place)
        return {place.key, place.known_as} - {""}

    def _check(self, screen: Screen) -> tuple[bool, str]:
        """Check the plan's expectations on the device: the verdict and its reason, quoting the evidence."""
        assert self.plan is not None
        # A test about its route (coverage) may expect an error screen: landing elsewhere fails its route
        # expectation instead.
        route = any(e.kind == "route" for e in self.plan.expect)
        checks = check_device(self.plan.expect, self.device, where=self._where, route=self._route, screen=screen,
                              seen=self.seen, errors=not route,
                              keeps_state=bool(getattr(self.device, "keeps_state", True)))
        for e in self.plan.expect:
            if e.kind == "route":  # about the steps: each one landed where the test expects
                off = [s for s in self.steps if s.get("verified") is False]
                checks.append(Check(e, not off, "every step landed as expected" if not off else
                                    f"step {off[0]['index']} ({off[0]['action']}): {off[0].get('outcome', '')}"))
        self.checks = tuple(c.as_dict() for c in checks)
        failed = [c for c in checks if not c.holds and not c.unknown]
        if failed:
            return False, "; ".join(f"expected {c.what}, but {c.evidence}" for c in failed)
        unknown = [c for c in checks if c.unknown]
        if unknown:  # nothing against the run, but not everything could be seen: say so, never PASS
            self.status = "inconclusive"
            return False, "could not check everything: " + "; ".join(f"{c.what}: {c.evidence}" for c in unknown)
        ran = "the steps ran" if self.plan.steps or self.result.actions else \
            "the plan has no steps: the expectations already held"
        return True, f"{ran} and every expectation holds: " + "; ".join(
            f"{c.what} ({c.evidence})" for c in checks if c.expectation is not None)

    def _judge(self, place: Place, decision: Decision) -> tuple[bool, str]:
        screen = self.result.screens[-1] if self.result.screens else self.device.snapshot()
        if self.plan is not None and self.plan.expect:
            return self._check(screen)
        if self.plan is not None and not self.plan.steps:
            self.status = "inconclusive"
            return False, "the test has no steps and no expectations: nothing shows the intent happened"
        shown = screen_errors(screen) if self.plan is not None else []
        if shown:
            self.checks = (check_screen([], screen)[0].as_dict(),)
            return False, f"the screen shows an error: {'; '.join(repr(t) for t in shown)}"
        if self.plan is not None:
            missed = [s for s in self.steps if s.get("verified") is False]
            if self.plan.end and place.known_as != self.plan.end and place.key != self.plan.end:
                return False, f"ended on {place.key[:8]}…, not on the test's end screen {self.plan.end[:8]}…"
            if missed:
                return True, f"reached the end screen; {len(missed)} step(s) landed off plan and were repaired"
            return True, "every step landed where the test expects and the end screen holds"
        return True, decision.reason

    # --- evidence ---------------------------------------------------------------------------------

    def _record(self, index: int, screen: Screen, place: Place, decision: Decision, *, outcome: str) -> None:
        shot = ""
        if self.config.evidence_dir is not None and screen.screenshot:
            suffix = ".jpg" if screen.screenshot[:3] == b"\xff\xd8\xff" else ".png"
            path = self.config.evidence_dir / f"step-{index + 1:02d}{suffix}"
            path.write_bytes(screen.screenshot)
            shot = str(path)
        step = {"index": index + 1, "screen": place.key, "known_as": place.known_as, "localized": place.how,
                "screenshot": shot, "action": decision.action.describe() if decision.action else "done",
                "source": decision.source, "reason": decision.reason, "outcome": outcome}
        if decision.warning:
            step["warning"] = decision.warning
        self.steps.append(step)
        if self.on_step is not None:
            self.on_step(step)


def judge_run(agent: Agent, device: Device, test: TestCase, screens: list[Screen], actions: list[Action], *,
              done: bool) -> Verdict:
    """The verdict `appatlas run` gives `test` for a run driven elsewhere (a benchmark's free run) that went
    through `screens` (the last one is where it is now) taking `actions`: the same judgement (`_Run._judge`):
    its expectations checked on `device`, inconclusive when it has neither steps nor expectations, and a
    run that never said done fails as an unfinished run does."""
    run = _Run(agent, device, test.intent, test, test.name, RunConfig(max_steps=len(actions)), None)
    place = None
    for screen in screens:
        place = localize(screen, agent.knowledge, retriever=agent.retriever)
        run._saw(screen, place)
    run.result.screens, run.result.actions = list(screens), list(actions)
    run.cursor = len(test.steps)
    if not done or place is None:
        return Verdict(test.name, False, f"gave up after {len(actions)} steps without finishing", status="failed")
    passed, reason = run._judge(place, Decision(None, "the agent said done", "policy"))
    return Verdict(test.name, passed, reason, (), run.checks, run.status or ("passed" if passed else "failed"))


def record_experience(atlas: Atlas, result: RunResult, *, intent: str, name: str = "") -> None:
    """Write an executed run into `atlas`: its screens and transitions, and a recorded task (origin agent)."""
    if not result.actions:
        return
    states = [atlas.add_state(s, origin="") for s in result.screens[:len(result.actions) + 1]]
    for (a, b), action in zip(zip(states, states[1:], strict=False), result.actions, strict=False):
        atlas.add_transition(a, action, b, origin="agent")
    steps = [RecordedStep(s.id, a) for s, a in zip(states, result.actions, strict=False)]
    if result.verdict.passed and len(states) > len(result.actions):
        steps.append(RecordedStep(states[len(result.actions)].id, None))
    label = name or f"agent: {intent}"
    atlas.add_task(RecordedTask(name=label, intent=intent, steps=tuple(steps), origin="agent"))

