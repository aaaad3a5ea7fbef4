"""Captioners: a sentence saying what a screen is and what a transition does.

One interface (`Captioner`), several kinds, chosen by name with `make_captioner`:

    heuristic  (default) from titles, labels, widget texts, resource ids and activity names; no model
    llm        any OpenAI-compatible endpoint through the `openai` client (appatlas.rag.llm)
    reference  captions from a file (DroidTask's reference_captions.yaml; appatlas.rag.reference)
    local      the bundled local model: a later issue registers it with `register_captioner`

`caption_atlas` captions every screen (`screen:<structure key>`) and every graph edge
(`transition:<id>`) of an atlas and stores each caption with the name of what made it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from appatlas.errors import CaptionerError
from appatlas.graph.atlas import Atlas
from appatlas.rag.describe import ScreenFacts
from appatlas.rag.text import id_words
from appatlas.rag.views import (
    AtlasViews,
    ScreenView,
    TransitionView,
    atlas_views,
    screen_subject,
    transition_subject,
)
from appatlas.types import Widget

__all__ = ["BACK_SENTENCE", "Caption", "CaptionReport", "Captioner", "HeuristicCaptioner", "caption_atlas",
           "element_sentence", "element_text", "functional_memory", "leads_to", "make_captioner",
           "register_captioner", "screen_caption", "transition_caption"]

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Caption:
    text: str
    by: str  # the captioner that actually wrote it (an llm captioner that fell back says "heuristic")


class Captioner(Protocol):
    """Writes captions. `name` is stored beside each caption in the atlas."""

    name: str

    def caption_screen(self, view: ScreenView, views: AtlasViews) -> Caption: ...

    def caption_transition(self, view: TransitionView, views: AtlasViews) -> Caption: ...


def _quote(items: list[str], limit: int) -> str:
    shown = ", ".join(f"'{x}'" for x in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def screen_caption(facts: ScreenFacts) -> str:
    """The heuristic caption of a screen: "'Add a new note' dialog: field 'locked note title'; choices …"."""
    place = facts.place
    parts = []
    if facts.fields:
        parts.append(f"fields {_quote(facts.fields, 6)}")
    if facts.choices:
        parts.append(f"choices {_quote(facts.choices, 8)}")
    if facts.toggles:
        parts.append(f"toggles {_quote(facts.toggles, 12)}")
    if facts.buttons:
        parts.append(f"{'items' if facts.kind == 'menu' else 'buttons'} {_quote(facts.buttons, 14)}")
    if facts.texts:
        parts.append(f"shows {_quote(facts.texts, 8)}")
    head = place[0].upper() + place[1:]
    return f"{head}: {'; '.join(parts)}" if parts else head


def leads_to(facts: ScreenFacts, *, limit: int = 6) -> str:
    """An element's functional memory, in AutoDroid's words: "leads to a screen about …" — the place it
    opens and the first things that place offers, so an intent naming the goal ("see the app's version")
    meets the control that names only the mechanism ('More options' -> 'About')."""
    offered = list(dict.fromkeys(x for x in (*facts.fields, *facts.toggles, *facts.choices, *facts.buttons,
                                             *facts.texts) if x))
    about = f"leads to the {facts.place}"
    return f"{about} about {', '.join(offered[:limit])}" if offered else about


def functional_memory(places: Sequence[ScreenFacts], *, limit: int = 2) -> str:
    """What an element leads to, from the facts of the screens it opens (the first `limit`): "leads to the
    'About' screen about 'Frequently asked questions', …; leads to …" ("" when it leads nowhere known)."""
    return "; ".join(leads_to(f) for f in places[:limit])


BACK_SENTENCE = "go back to the previous screen"


def element_text(said: str, widgets: Sequence[Widget | None], *, checkable: bool = False, back: bool = False) -> str:
    """Everything an element says about itself, in one line (without where it leads): `said` (how acting on it
    reads: "tap 'More options'"), then the content description, hint and resource-id words of each of
    `widgets` (the element and the view that gets the touch, e.g. the row around a label), and "switch"."""
    if back:
        return BACK_SENTENCE
    parts = [said]
    for w in widgets:
        if w is None:
            continue
        parts += [w.content_desc.strip(), w.hint.strip(), " ".join(id_words(w.resource_id))]
    if checkable:
        parts.append("switch")
    return "; ".join(dict.fromkeys(p for p in parts if p))


def element_sentence(text: str, memory: str) -> str:
    """The functional memory of an element as one sentence (what the store embeds and the agent compares with
    an intent): what it says (`element_text`) and where it leads (`functional_memory`)."""
    return f"{text}; {memory}" if memory else text


def transition_caption(view: TransitionView, views: AtlasViews) -> str:
    """The heuristic caption of a transition: "tap 'Create a new note' button on … → opens the … dialog"."""
    source, target = views.place(view.source), views.place(view.target)
    phrase = view.facts.phrase()
    if view.source == view.target:
        return f"{phrase} on the {source} (stays there)"
    return f"{phrase} on the {source} \u2192 opens the {target}"


@dataclass
class HeuristicCaptioner:
    """Captions from what the widget tree says; no model, deterministic."""

    name: str = "heuristic"

    def caption_screen(self, view: ScreenView, views: AtlasViews) -> Caption:
        return Caption(screen_caption(view.facts), self.name)

    def caption_transition(self, view: TransitionView, views: AtlasViews) -> Caption:
        return Caption(transition_caption(view, views), self.name)


_FACTORIES: dict[str, Callable[..., Captioner]] = {}


def register_captioner(kind: str, factory: Callable[..., Captioner]) -> None:
    """Make `make_captioner(kind, **options)` call `factory(**options)` (how the local model plugs in)."""
    _FACTORIES[kind] = factory


def _llm(**options: Any) -> Captioner:
    from appatlas.rag.llm import LLMCaptioner

    return LLMCaptioner(**options)


def _reference(**options: Any) -> Captioner:
    from appatlas.rag.reference import ReferenceCaptioner

    return ReferenceCaptioner.from_folder(**options)


register_captioner("heuristic", lambda **options: HeuristicCaptioner(**options))
register_captioner("llm", _llm)
register_captioner("reference", _reference)


def make_captioner(kind: str = "heuristic", **options: Any) -> Captioner:
    """A captioner by kind: heuristic, llm, reference, or one registered later (local)."""
    factory = _FACTORIES.get(kind)
    if factory is None:
        if kind == "local":
            raise CaptionerError("the local captioner is not installed yet (it arrives with the local model); "
                                 "use --captioner heuristic, or --captioner llm with an OpenAI-compatible endpoint")
        raise CaptionerError(f"no captioner named {kind!r}; choose one of {sorted(_FACTORIES)}")
    return factory(**options)


@dataclass
class CaptionReport:
    screens: int = 0
    transitions: int = 0
    kept: int = 0  # already captioned by this captioner and not redone
    by: dict[str, int] = field(default_factory=dict)  # captioner name -> captions written


def caption_atlas(atlas: Atlas, captioner: Captioner, *, redo: bool = False, progress: Progress | None = None,
                  views: AtlasViews | None = None) -> CaptionReport:
    """Caption every screen and transition of `atlas` that this captioner has not captioned yet.

    Each caption is committed as it is made, so an interrupted run keeps what it did.
    """
    views = views if views is not None else atlas_views(atlas, screenshots=_wants_images(captioner))
    have = atlas.captions(captioner=captioner.name) if not redo else {}
    report = CaptionReport()
    jobs: list[tuple[str, Callable[[], Caption]]] = []
    for key, sview in views.screens.items():
        jobs.append((screen_subject(key), lambda v=sview: captioner.caption_screen(v, views)))
    for tid, tview in views.transitions.items():
        jobs.append((transition_subject(tid), lambda v=tview: captioner.caption_transition(v, views)))
    for i, (subject, make) in enumerate(jobs):
        if progress is not None:
            progress("captions", i + 1, len(jobs))
        if subject in have:
            report.kept += 1
            continue
        caption = make()
        # Stored under who actually wrote it: a fallback is a heuristic caption, and a rerun retries it.
        atlas.set_caption(subject, caption.text, captioner=caption.by)
        report.by[caption.by] = report.by.get(caption.by, 0) + 1
        if subject.startswith("screen:"):
            report.screens += 1
        else:
            report.transitions += 1
    return report


def _wants_images(captioner: Captioner) -> bool:
    return bool(getattr(captioner, "images", False))
