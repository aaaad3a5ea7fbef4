"""`appatlas bench bugs`: does appatlas find real functional bugs? Seeded mutants of the demo app.

1. The correct demo app is crawled into an atlas, captioned and indexed; a suite is planned from it
   alone: the demo's intents, intents generated from the atlas's captions (one per switch: "turn on
   sound"; one per form titled New/Add/Create: "create a new task named 'Bench value 2'"; one per
   list whose rows lead to a Delete: "delete Book list"), and the coverage suite (the fewest tests that
   visit every screen, plus one per button no test taps, each expecting its route; a route that
   deletes a row also expects that row gone). Nothing in it knows any mutant.
2. Calibration, as mutation testing does (a suite must be green on the original): the suite runs on
   the correct app and the cases that fail there are excluded (listed with why). The kept suite then
   runs again on a fresh correct app: every failure there is a *false alarm* (must be 0).
3. Each mutant (a spec variant: built in, or every `*.yaml` of `--mutants DIR`) runs the suite on a
   fresh virtual phone. A mutant is *killed* when a case fails and the failing run went through a
   screen or dialog where the mutant's spec differs from the correct one (the evidence points at it).
4. Baseline, same action budget per mutant: a crash-only tester (random taps, Monkey style, failure
   = the app crashed) kills a mutant when it crashes the app on a screen the mutant changed.

The built-in mutants are made by operators applied to every place of the demo spec they fit (a
save that does not save, a value saved truncated, delete removing the wrong row or none, a switch
that does not persist, a validation that always fails, a wrong screen after a button, a crash on
one path, a dialog that never closes).
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

__all__ = ["builtin_mutants", "plan_suite", "run_bugs_bench", "run_suite"]

Mutant = tuple[str, str, dict[str, Any]]  # (name, what it breaks, spec dict)


def _effects(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], str, Any]]:
    """(owner id, the widget or item holding it, the key, the effect) for every tap effect of the spec."""
    for group in ("screens", "dialogs"):
        for owner in spec.get(group, []):
            for w in owner.get("widgets", []):
                for key in ("tap", "long_tap", "row_tap", "row_long_tap"):
                    if key in w:
                        yield owner["id"], w, key, w[key]
                for it in w.get("items", []) or []:
                    if isinstance(it, dict) and "tap" in it:
                        yield owner["id"], it, "tap", it["tap"]


def builtin_mutants(spec: dict[str, Any]) -> list[Mutant]:
    """Every mutant the operators make of `spec` (a parsed app spec), each one change."""
    out: list[Mutant] = []

    def variant(name: str, what: str, change: Callable[[dict[str, Any]], bool]) -> None:
        s = copy.deepcopy(spec)
        if change(s):
            out.append((name, what, s))

    sites = list(_effects(spec))
    for i, (owner, holder, _key, eff) in enumerate(sites):
        label = holder.get("button") or holder.get("icon") or holder.get("title") or holder.get("id", "")
        where = f"{owner}/{label}"

        def at(s: dict[str, Any], i: int = i) -> tuple[dict[str, Any], str, Any]:
            _, h, k, e = list(_effects(s))[i]
            return h, k, e

        if isinstance(eff, dict) and "save" in eff:
            variant(f"save_lost@{where}", f"{where}: Save does not save",
                    lambda s, at=at: bool(at(s)[2].pop("save")))
            variant(f"save_truncated@{where}", f"{where}: the value is saved truncated to 4 characters",
                    lambda s, at=at: bool(at(s)[2]["save"].update(truncate=4)) or True)
        if isinstance(eff, dict) and "remove" in eff:
            variant(f"delete_wrong_row@{where}", f"{where}: delete removes the last row, not this one",
                    lambda s, at=at: bool(at(s)[2].update(remove_row="last")) or True)
            variant(f"delete_nothing@{where}", f"{where}: delete removes nothing",
                    lambda s, at=at: bool(at(s)[2].pop("remove")))
        if isinstance(eff, dict) and "when" in eff:
            variant(f"validation_fails@{where}", f"{where}: the validation always fails",
                    lambda s, at=at: bool(at(s)[2].update(when={"field": at(s)[2]["when"]["field"],
                                                                  "match": "(?!)"})) or True)
        if isinstance(eff, dict) and "go" in eff and holder.get("button"):
            variant(f"crash@{where}", f"{where}: the app crashes", lambda s, at=at: _set(at(s), "crash"))
            variant(f"wrong_screen@{where}", f"{where}: opens the launch screen instead",
                    lambda s, at=at: _set(at(s), {"go": s["app"]["launch"]}))
        if eff == "close" and holder.get("button"):
            variant(f"dialog_stuck@{where}", f"{where}: the dialog never closes", lambda s, at=at: _set(at(s), "none"))
    for owner in spec.get("screens", []):
        for w in owner.get("widgets", []):
            if "switch" in w:
                where = f"{owner['id']}/{w['switch']}"
                oid, wid = owner["id"], w.get("id", "")
                variant(f"switch_forgets@{where}", f"{where}: the switch does not persist",
                        lambda s, oid=oid, wid=wid: _forget(s, oid, wid))
    return out


def _set(found: tuple[dict[str, Any], str, Any], value: Any) -> bool:
    holder, key, _ = found
    holder[key] = value
    return True


def _forget(spec: dict[str, Any], owner: str, wid: str) -> bool:
    for sc in spec["screens"]:
        if sc["id"] == owner:
            for w in sc["widgets"]:
                if w.get("id") == wid:
                    w["persist"] = False
                    return True
    return False


def _changed_places(base: Any, mutant: Any) -> set[str]:
    """Screen and dialog ids whose spec differs between the correct app and a mutant."""
    out = set()
    for group in ("screens", "dialogs"):
        a = {s.id: s for s in getattr(base, group).values()}
        b = {s.id: s for s in getattr(mutant, group).values()}
        out |= {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    return out


def _form_intents(views: Any) -> list[str]:
    """One intent per form the atlas titles New/Add/Create: create one with a fresh name."""
    out = []
    for v in views.screens.values():
        title = v.facts.title.strip()
        if v.facts.kind == "form" and title.split(" ", 1)[0].lower() in ("new", "add", "create") and \
                len(title.split()) > 1 and f"create a {title.lower()}" not in " ".join(out):
            out.append(f"create a {title.lower()} named 'Bench value {len(out) + 1}'")
    return out


def _delete_intents(views: Any) -> list[str]:
    """One intent per list whose rows open a screen with a Delete action: delete its second row."""
    import re

    from appatlas.rag.expect import _rows

    g = views.plan_graph
    deleting = {u for u, _, d in g.edges(data=True) if (t := views.transitions.get(d.get("transition")))
                and re.search(r"\b(delete|remove)\b", t.facts.label, re.I)}
    out = []
    for key, v in views.screens.items():
        if v.facts.transient:
            continue
        rows = _rows(v.example)
        opens = {t for _, t, d in g.out_edges(key, data=True) if d["action"].target is not None
                 and d["action"].target.resource_id and any(d["action"].target.resource_id == r.resource_id
                                                            for r, _ in rows)}
        if len(rows) >= 2 and opens & deleting:
            out.append(f"delete {rows[1][1][0]}")
    return sorted(set(out))


def _switch_intents(views: Any) -> list[str]:
    """One intent per switch the atlas shows: to its other state ("turn on 'Sound'")."""
    seen: dict[str, bool] = {}
    for t in views.transitions.values():
        if t.facts.widget == "switch" and t.facts.label and t.facts.checked is not None:
            seen.setdefault(t.facts.label, bool(t.facts.checked))
    return [f"turn {'off' if on else 'on'} {label.lower()}" for label, on in sorted(seen.items())]


def plan_suite(work: Path, *, budget: int = 600, say: Callable[[str], None] = lambda _: None) -> tuple[
        list[Any], list[dict[str, str]], Any]:
    """Crawl the correct demo app into `work`, and plan the suite from that atlas alone (module doc, 1):
    (test cases, intents that could not be planned with why, the agent's knowledge)."""
    from appatlas.agent.knowledge import Knowledge
    from appatlas.agent.rehearse import rehearser
    from appatlas.demo import DEMO_INTENTS
    from appatlas.devices.apps import builtin_apps
    from appatlas.devices.spec import load_spec
    from appatlas.devices.virtual import open_app
    from appatlas.errors import AppatlasError
    from appatlas.graph.atlas import Atlas
    from appatlas.graph.crawler import CrawlConfig, crawl
    from appatlas.rag.captioner import HeuristicCaptioner, caption_atlas
    from appatlas.rag.expect import route_effects
    from appatlas.rag.plan import coverage_tests, plan_from_retrieval
    from appatlas.rag.retrieve import Retriever
    from appatlas.rag.store import RagStore, build_index
    from appatlas.rag.views import atlas_views

    base = load_spec(builtin_apps()["demo"])
    say(f"crawling the correct app ({budget} actions)")
    phone = open_app(base, screenshots=False)
    with Atlas.create(work / "demo.atlas", app=base.package) as atlas:
        crawl(phone, atlas, package=base.package, config=CrawlConfig(budget=budget))
    suite, unplanned = [], []
    with Atlas.open(work / "demo.atlas") as atlas:
        caption_atlas(atlas, HeuristicCaptioner())
        build_index(atlas, screenshots="off")
        views = atlas_views(atlas)  # planned as `appatlas plan` plans: the agent's rehearsal first
        retriever = Retriever(atlas, RagStore.open(atlas), views=views, rehearse=rehearser(atlas, views))
        intents = list(DEMO_INTENTS) + _switch_intents(views) + _form_intents(views) + _delete_intents(views)
        say(f"planning {len(intents)} intents and the coverage suite")
        for intent in intents:
            try:
                suite.append(plan_from_retrieval(retriever.views, retriever.retrieve(intent), check=True).test)
            except AppatlasError as exc:
                unplanned.append({"intent": intent, "why": str(exc)})
        # a coverage route that deletes a row also expects it gone (rag.expect.route_effects)
        suite += [route_effects(views, t) for t in coverage_tests(atlas, views=views, dialogs=True, buttons=True)]
        knowledge = Knowledge.from_atlas(atlas)
    return suite, unplanned, knowledge


def run_suite(agent: Any, spec: Any, cases: list[Any], *, max_steps: int = 20) -> list[dict[str, Any]]:
    """Each case on a fresh virtual phone of `spec`: its verdict, and the spec places (screens and dialogs)
    the run went through, checking included."""
    from appatlas.agent.loop import RunConfig
    from appatlas.devices.virtual import open_app

    rows = []
    for case in cases:
        device = open_app(spec, screenshots=False)
        places: set[str] = set()

        def track(_: dict[str, Any], device: Any = device, places: set[str] = places) -> None:
            places.update(x for x in device.location if x)
        res = agent.run(device, case.intent, plan=case, on_step=track,
                        config=RunConfig(max_steps=max(max_steps, 2 * len(case.steps))))
        places.update(device.state()["visited"])
        places.update(x for x in device.location if x)
        rows.append({"case": case.name, "passed": res.verdict.passed, "reason": res.verdict.reason,
                     "crashed": res.verdict.reason.startswith("the app crashed") or device.crashed,
                     "places": sorted(places), "actions": len(res.actions)})
    return rows


def run_bugs_bench(out: Path, *, mutants_dir: Path | None = None, budget: int = 600, max_steps: int = 20,
                   say: Callable[[str], None] = lambda _: None, limit: int = 0) -> dict[str, Any]:
    """Run the benchmark (module docstring); write the JSON result to `out` and return it."""
    from appatlas.agent.loop import Agent
    from appatlas.devices.apps import builtin_apps
    from appatlas.devices.spec import load_spec, spec_from_dict

    began = time.perf_counter()
    base_path = builtin_apps()["demo"]
    base = load_spec(base_path)
    work = out.parent / (out.stem + ".work")
    if work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir(parents=True)
    suite, unplanned, knowledge = plan_suite(work, budget=budget, say=say)
    agent = Agent(knowledge)

    say(f"calibrating: {len(suite)} cases on the correct app")
    calibration = run_suite(agent, base, suite, max_steps=max_steps)
    kept = [c for c, r in zip(suite, calibration, strict=True) if r["passed"]]
    excluded = [{"case": r["case"], "intent": c.intent, "reason": r["reason"]}
                for c, r in zip(suite, calibration, strict=True) if not r["passed"]]
    say(f"the kept {len(kept)} cases on a fresh correct app (false alarms)")
    correct = run_suite(agent, base, kept, max_steps=max_steps)
    false_alarms = [r for r in correct if not r["passed"]]
    budget_actions = max(1, sum(r["actions"] for r in correct))

    mutants: list[Mutant] = []
    if mutants_dir is not None:
        for f in sorted(Path(mutants_dir).glob("*.y*ml")):
            mutants.append((f.stem, f"spec variant {f.name}", yaml.safe_load(f.read_text(encoding="utf-8"))))
    else:
        mutants = builtin_mutants(yaml.safe_load(Path(base_path).read_text(encoding="utf-8")))
    if limit:
        mutants = mutants[:limit]
    rows = []
    for i, (name, what, data) in enumerate(mutants):
        say(f"mutant {i + 1}/{len(mutants)}: {what}")
        spec = spec_from_dict(data, source=name)
        changed = _changed_places(base, spec)
        runs = run_suite(agent, spec, kept, max_steps=max_steps)
        evidence = [r for r in runs if not r["passed"] and changed & set(r["places"])]
        base_kill = _monkey(spec, changed, budget_actions, seed=i)
        row = {"mutant": name, "what": what, "changed": sorted(changed), "killed": bool(evidence),
               "by": [{"case": r["case"], "reason": r["reason"]} for r in evidence[:3]],
               "baseline_killed": base_kill}
        if not evidence:  # why it survived: no case went there, or the cases that did passed
            row["reached_by"] = [r["case"] for r in runs if changed & set(r["places"])]
        rows.append(row)
    n = len(rows)
    summary = {"mutants": n, "killed": sum(r["killed"] for r in rows),
               "kill_rate": round(sum(r["killed"] for r in rows) / n, 3) if n else 0.0,
               "baseline_kill_rate": round(sum(r["baseline_killed"] for r in rows) / n, 3) if n else 0.0,
               "false_alarms": len(false_alarms), "suite": len(kept), "planned": len(suite),
               "excluded_by_calibration": len(excluded),
               "intent_cases_excluded": sum(not e["case"].startswith("coverage_") for e in excluded),
               "unplanned": len(unplanned), "baseline_actions_per_mutant": budget_actions,
               "seconds": round(time.perf_counter() - began, 1)}
    doc = {"summary": summary, "mutants": rows, "false_alarms": false_alarms, "unplanned": unplanned,
           "suite": [{"case": c.name, "intent": c.intent} for c in kept], "excluded": excluded}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))
    return doc


def _monkey(spec: Any, changed: set[str], budget: int, *, seed: int) -> bool:
    """A crash-only tester (Monkey style): random taps and backs; killed = a crash on a changed screen."""
    from appatlas.devices.virtual import VirtualDevice
    from appatlas.errors import AppatlasError
    from appatlas.types import Action, ActionKind

    rng = random.Random(seed)
    device = VirtualDevice(spec, screenshots=False)
    for _ in range(budget):
        before = device.location
        if device.crashed or before == ("", ""):
            device.launch()
            continue
        screen = device.snapshot()
        targets = [w for w in screen.widgets() if w.clickable and w.enabled]
        try:
            if not targets or rng.random() < 0.1:
                device.perform(Action(ActionKind.BACK))
            else:
                w = rng.choice(targets)
                device.tap(*w.bounds.center)
        except AppatlasError:
            continue
        if device.crashed and changed & {x for x in before if x}:
            return True
    return False
