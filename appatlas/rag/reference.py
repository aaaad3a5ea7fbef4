"""The `reference` captioner: captions written by someone else, read from a file.

DroidTask ships `reference_captions.yaml` (one LLM's description of what each element of each
recorded screen does). Its keys are the ids AutoDroid gave the screens of the task recordings
(the records' `new_state_str`), its element numbers index the record's `State` element list.
This captioner maps both onto the atlas: record -> state (`state_str`) -> structure key, and
element -> the widget with that label -> the transitions that tap it. Screens and transitions the
file does not describe keep their heuristic caption (marked as such).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from appatlas.errors import CaptionerError
from appatlas.rag.captioner import Caption, screen_caption, transition_caption
from appatlas.rag.views import AtlasViews, ScreenView, TransitionView

__all__ = ["ReferenceCaptioner"]

_ELEMENT = re.compile(r"<(\w+) id=(\d+)(?: text='([^']*)')?[^>]*>([^<]*)")


@dataclass
class ReferenceCaptioner:
    """Element descriptions by recorded state: state_str -> [(element label, description)]."""

    elements: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    name: str = "reference"

    @classmethod
    def from_folder(cls, *, folder: str | Path) -> ReferenceCaptioner:
        """Read `folder`/reference_captions.yaml and the task*.yaml records that key it."""
        folder = Path(folder)
        path = folder / "reference_captions.yaml"
        if not path.is_file():
            raise CaptionerError(f"{folder} has no reference_captions.yaml; use --captions heuristic")
        try:
            ref = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise CaptionerError(f"{path} is not valid YAML ({exc})") from None
        if not isinstance(ref, dict):
            raise CaptionerError(f"{path} should map screen ids to element descriptions")
        elements: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for task in sorted(folder.glob("task*.yaml")):
            try:
                records = (yaml.safe_load(task.read_text(encoding="utf-8")) or {}).get("records") or []
            except (yaml.YAMLError, AttributeError):
                continue  # a broken task file only costs its captions
            for rec in records:
                if not isinstance(rec, dict) or rec.get("new_state_str") not in ref:
                    continue
                described = ref[rec["new_state_str"]]
                state = rec.get("state_str")
                state = str(state[0] if isinstance(state, list) else state)
                labels = {int(m.group(2)): (m.group(3) or m.group(4) or "").strip()
                          for m in _ELEMENT.finditer(str(rec.get("State", "")))}
                for index, text in (described or {}).items():
                    label = labels.get(int(index), "") if str(index).lstrip("-").isdigit() else ""
                    if label and (label, str(text)) not in elements[state]:
                        elements[state].append((label, " ".join(str(text).split())))
        return cls(elements=dict(elements))

    def _described(self, states: list[int], views: AtlasViews) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for sid in states:
            for item in self.elements.get(views.origins.get(sid, ""), []):
                if item not in out:
                    out.append(item)
        return out

    def caption_screen(self, view: ScreenView, views: AtlasViews) -> Caption:
        described = [(label, text) for label, text in self._described(view.states, views)
                     if label.casefold() != "go back"]  # DroidTask's pseudo-element for the back key
        if not described:
            return Caption(screen_caption(view.facts), "heuristic")
        parts = "; ".join(f"'{label}': {text}" for label, text in described[:10])
        return Caption(f"{screen_caption(view.facts)}. What its elements do: {parts}", self.name)

    def caption_transition(self, view: TransitionView, views: AtlasViews) -> Caption:
        source = views.screens.get(view.source)
        label = view.facts.label.casefold()
        target = view.action.target
        names = {x.casefold() for x in (label, target.text if target else "", target.content_desc if target else "")
                 if x}
        for element, text in self._described(source.states if source else [], views):
            if element.casefold() in names or (label and element.casefold().startswith(label)):
                return Caption(f"{view.facts.phrase()}: {text}", self.name)
        return Caption(transition_caption(view, views), "heuristic")
