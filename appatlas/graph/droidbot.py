"""Import DroidBot output folders into an Atlas.

Two layouts are read the same way: DroidTask's per-app folders (states/, events/, task*.yaml)
and a DroidBot report (utg.js, states/ with screen_*.png, events/). States become atlas states
(with their screenshots), events become transitions, task*.yaml become recorded tasks.
Real recordings hold broken files; each one is skipped with its name and the reason, and the
rest is imported.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from appatlas.devices.base import selector_for
from appatlas.errors import HierarchyError, ImportFailed, UnsafePath
from appatlas.graph.atlas import Atlas, RecordedStep, RecordedTask, State
from appatlas.hierarchy import parse_droidbot_views
from appatlas.types import Action, ActionKind, Bounds, Screen, Selector, Widget, qualify_activity

__all__ = ["ImportReport", "import_droidbot", "load_droidbot_screen", "read_droidbot_event"]

Progress = Callable[[str, int, int], None]


@dataclass
class ImportReport:
    atlas: Path
    counts: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why): broken input
    ignored: Counter[str] = field(default_factory=Counter)  # reason -> how many: valid but not imported


def import_droidbot(folder: str | Path, out: str | Path, *, progress: Progress | None = None) -> ImportReport:
    """Import the DroidBot folder `folder` into a new atlas at `out`."""
    folder = Path(folder)
    if not (folder / "states").is_dir():
        raise ImportFailed(f"{folder} has no states/ folder, so it is not a DroidBot output folder; "
                           "pass the folder DroidBot wrote (the one holding states/ and events/)")
    state_files = sorted((folder / "states").glob("state_*.json"))
    if not state_files:
        raise ImportFailed(f"{folder}/states holds no state_*.json files; nothing to import")
    report = ImportReport(Path(out))
    app = _app_name(folder, state_files)
    with Atlas.create(out, app=app) as atlas:
        atlas.set_meta("source", str(folder.resolve()))
        atlas.set_meta("source_kind", "droidbot")
        by_str: dict[str, State] = {}
        packages: Counter[str] = Counter()
        for i, path in enumerate(state_files):
            _tick(progress, "states", i, len(state_files))
            try:
                raw = _read_json(path)
                screen = load_droidbot_screen(raw, source=str(path), folder=folder)
            except (HierarchyError, ValueError, KeyError, TypeError, UnsafePath) as exc:
                report.skipped.append((_rel(path, folder), _why(exc)))
                continue
            state = atlas.add_state(screen, origin=str(raw.get("state_str", path.stem)))
            by_str.setdefault(str(raw.get("state_str", path.stem)), state)
            packages[screen.package] += 1
        events = _import_events(folder, atlas, by_str, report, progress)
        launched = Counter(a.app.split("/")[0] for a in events.values() if a.kind is ActionKind.LAUNCH)
        atlas.set_meta("package", launched.most_common(1)[0][0] if launched else _app_package(folder, packages))
        _import_tasks(folder, atlas, by_str, events, report)
        report.counts = atlas.counts()
    return report


def _app_name(folder: Path, state_files: list[Path]) -> str:
    return folder.resolve().name


def _app_package(folder: Path, packages: Counter[str]) -> str:
    """The app under test when no launch was recorded: utg.js says so in a report; otherwise the
    package most screens belong to (not always right: an app launcher's recording is mostly other apps)."""
    utg = folder / "utg.js"
    if utg.is_file():
        m = re.search(r'"app_package":\s*"([\w.]+)"', utg.read_text(encoding="utf-8", errors="replace"))
        if m:
            return m.group(1)
    launcher = {p for p in packages if "launcher" in p}
    ranked = [p for p, _ in packages.most_common() if p and p not in launcher]
    return ranked[0] if ranked else ""


def _tick(progress: Progress | None, what: str, i: int, n: int) -> None:
    if progress is not None:
        progress(what, i + 1, n)


def _rel(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)


def _why(exc: Exception) -> str:
    if isinstance(exc, HierarchyError):
        return exc.problem
    if isinstance(exc, json.JSONDecodeError):
        return "empty file" if exc.doc.strip() == "" else f"not valid JSON ({exc.msg} at line {exc.lineno})"
    if isinstance(exc, KeyError):
        return f"missing field {exc}"
    return str(exc)


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, found {type(data).__name__}")
    return data


def load_droidbot_screen(raw: Mapping[str, Any], *, source: str, folder: Path | None = None) -> Screen:
    """A DroidBot state dict as a Screen (with its screenshot if the folder has one)."""
    fg = str(raw.get("foreground_activity") or "")
    package, _, activity = fg.partition("/")
    root = parse_droidbot_views(raw, source=source)
    shot = None
    if folder is not None and (tag := raw.get("tag")):
        shot_path = safe_join(folder, f"states/screen_{tag}.png")
        shot = shot_path.read_bytes() if shot_path.is_file() else None
    return Screen(package=package, activity=qualify_activity(package, activity), root=root,
                  width=root.bounds.width, height=root.bounds.height, screenshot=shot)


def safe_join(folder: Path, name: str) -> Path:
    """`folder/name`, refusing names from a recording that would escape `folder`."""
    base = folder.resolve()
    path = (base / name).resolve()
    if path != base and base not in path.parents:
        raise UnsafePath(f"{name!r} points outside {folder}; refusing to read it (the recording may be hostile)")
    return path


# --- events ---------------------------------------------------------------------------------------

_KINDS = {"click": ActionKind.TAP, "touch": ActionKind.TAP, "long_click": ActionKind.LONG_TAP,
          "long_touch": ActionKind.LONG_TAP, "set_text": ActionKind.TYPE, "scroll": ActionKind.SCROLL}


def read_droidbot_event(event: Mapping[str, Any], screen: Screen | None) -> Action | None:
    """The Action a DroidBot event stands for, aimed at its widget on `screen`; None if not an action.

    Raises ValueError for an event that is malformed.
    """
    kind = event.get("event_type")
    if kind == "key":
        return Action(ActionKind.BACK) if event.get("name") == "BACK" else None
    if kind == "intent":
        m = re.search(r"am start (?:-n )?(\S+)", str(event.get("intent", "")))
        return Action(ActionKind.LAUNCH, app=m.group(1)) if m else None
    if kind not in _KINDS:
        return None
    view = event.get("view")
    if not isinstance(view, Mapping):
        raise ValueError(f"{kind} event without a view")
    target = _selector(view, screen)
    if _KINDS[kind] is ActionKind.SCROLL:
        return Action(ActionKind.SCROLL, target=target, direction=str(event.get("direction", "down")).lower())
    if _KINDS[kind] is ActionKind.TYPE:
        return Action(ActionKind.TYPE, target=target, text=str(event.get("text") or ""))
    return Action(_KINDS[kind], target=target)


def _selector(view: Mapping[str, Any], screen: Screen | None) -> Selector:
    (x1, y1), (x2, y2) = view["bounds"]
    bounds = Bounds(int(x1), int(y1), max(int(x1), int(x2)), max(int(y1), int(y2)))
    cls, rid = str(view.get("class") or ""), str(view.get("resource_id") or "")
    if screen is not None:
        for w in screen.widgets():
            if w.bounds == bounds and w.class_name == cls and w.resource_id == rid:
                return selector_for(w, screen)
    text, desc = str(view.get("text") or ""), str(view.get("content_description") or "")
    if not (rid or text or desc or cls):
        return Selector(bounds=bounds)
    return Selector(resource_id=rid, text=text, content_desc=desc, class_name=cls, bounds=bounds)


def _import_events(folder: Path, atlas: Atlas, by_str: Mapping[str, State], report: ImportReport,
                   progress: Progress | None) -> dict[tuple[str, str], Action]:
    """Import every event as a transition; returns (start_state_str, stop_state_str) -> action."""
    files = sorted((folder / "events").glob("*.json")) if (folder / "events").is_dir() else []
    screens: dict[int, Screen] = {}
    found: dict[tuple[str, str], Action] = {}
    for i, path in enumerate(files):
        _tick(progress, "events", i, len(files))
        try:
            raw = _read_json(path)
            event, start, stop = raw["event"], str(raw["start_state"]), str(raw["stop_state"])
            if not isinstance(event, Mapping):
                raise ValueError("event is not an object")
            source = by_str.get(start)
            if source is not None and source.id not in screens:
                screens[source.id] = atlas.screen(source.id, with_screenshot=False)
            action = read_droidbot_event(event, None if source is None else screens[source.id])
        except (ValueError, KeyError, TypeError) as exc:
            report.skipped.append((_rel(path, folder), _why(exc)))
            continue
        if action is None:
            report.ignored[f"{event.get('event_type')} events (not a user action)"] += 1
            continue
        target = by_str.get(stop)
        if source is None or target is None:
            report.ignored["events between screens that were not recorded"] += 1
            continue
        atlas.add_transition(source, action, target, origin="droidbot")
        found.setdefault((start, stop), action)
    return found


# --- tasks ----------------------------------------------------------------------------------------

_ELEMENT = re.compile(r"<(\w+) id=(\d+)(?: text='([^']*)')?[^>]*>([^<]*)")


def _import_tasks(folder: Path, atlas: Atlas, by_str: Mapping[str, State],
                  events: Mapping[tuple[str, str], Action], report: ImportReport) -> None:
    for path in sorted(folder.glob("task*.yaml"), key=lambda p: (len(p.name), p.name)):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            task = _read_task(path.stem, raw, atlas, by_str, events)
        except (yaml.YAMLError, ValueError, KeyError, TypeError) as exc:
            report.skipped.append((_rel(path, folder), _why(exc)))
            continue
        atlas.add_task(task)


def _state_str(record: Mapping[str, Any]) -> str:
    s = record["state_str"]
    return str(s[0] if isinstance(s, list) else s)


def _read_task(name: str, raw: Any, atlas: Atlas, by_str: Mapping[str, State],
               events: Mapping[tuple[str, str], Action]) -> RecordedTask:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("records"), list):
        raise ValueError("not a DroidTask task file (no records list)")
    records = raw["records"]
    steps = []
    for i, rec in enumerate(records):
        sstr = _state_str(rec)
        if sstr not in by_str:
            raise ValueError(f"step {i + 1} is on state {sstr[:12]}… which the recording does not contain")
        state = by_str[sstr]
        action = None
        if int(rec.get("Choice", -1)) != -1:
            nxt = _state_str(records[i + 1]) if i + 1 < len(records) else ""
            action = events.get((sstr, nxt)) or _action_from_choice(rec, atlas.screen(state.id, with_screenshot=False))
        steps.append(RecordedStep(state.id, action, sstr))
    return RecordedTask(name=name, intent=str(raw.get("task_name", "")), steps=tuple(steps), origin="droidtask")


def _action_from_choice(rec: Mapping[str, Any], screen: Screen) -> Action | None:
    """The element `Choice` of the step's State list, found on the screen by its text."""
    elements = {int(m.group(2)): (m.group(1), (m.group(3) or m.group(4) or "").strip())
                for m in _ELEMENT.finditer(str(rec.get("State", "")))}
    tag, label = elements.get(int(rec["Choice"]), ("", ""))
    typed = str(rec.get("Input", "null"))
    if tag == "button" and label == "go back":
        return Action(ActionKind.BACK)
    if not label:
        return None
    widget = _find_by_label(screen, label)
    if widget is None:
        return None
    target = selector_for(widget, screen)
    if typed != "null":
        return Action(ActionKind.TYPE, target=target, text=typed)
    return Action(ActionKind.TAP, target=target)


def _find_by_label(screen: Screen, label: str) -> Widget | None:
    for w in screen.widgets():
        if label in (w.text, w.content_desc):
            return w
    return None
