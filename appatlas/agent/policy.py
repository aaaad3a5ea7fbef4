"""One decision: which option to take on this screen for this intent, or "done".

Graph first. Each option is valued by what it adds to the intent's progress:

    own        the intent's uncovered words on its label (IDF-weighted), a slot it names or
               types, a toggle that is not yet in the wanted state
    look-ahead the best such value on the screens the atlas says it leads to, discounted per hop
    memory     what recorded tasks with a similar intent did on this screen

The best option is taken when it is worth taking (value >= theta). Then, if a change was made and
not confirmed, the confirming button; then the end oracle: nothing worth doing is left, so the
intent's key actions have happened -> done. The model is asked only when the graph cannot answer:
near ties between the best options, and screens the atlas does not know. A model that fails is
dropped with a warning and the graph decides alone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from statistics import median

from appatlas.agent.interrupts import interruption
from appatlas.agent.knowledge import Knowledge
from appatlas.agent.lookahead import VERTICAL, LookAhead
from appatlas.agent.options import DESTRUCTIVE_WORDS, Option, describe_option, is_dialog, options, shown_texts
from appatlas.agent.oracle import AppWords, clauses, realised
from appatlas.agent.progress import (
    Progress,
    Taken,
    all_texts,
    backed_out_of,
    names_slot,
    shows_value,
    wrong_turn,
)
from appatlas.agent.prompt import choice_context
from appatlas.agent.ranker import Candidate, Query
from appatlas.agent.valuing import (
    confirming,
    digit,
    field_fit,
    is_keypad,
    pick_value,
    precision,
    same_option,
    submits,
    text_for,
)
from appatlas.errors import LLMError
from appatlas.graph.fingerprint import structure_key
from appatlas.rag.intent import Intent, Slot, label_words, parse_intent, same_term, stem, terms_in, words
from appatlas.types import Action, ActionKind, Screen, view_kind

MAX_SCROLLS = 8  # scrolls in a row looking for an item the intent names

__all__ = ["Decision", "Policy", "PolicyConfig"]

log = logging.getLogger(__name__)
_OPEN_VERBS = re.compile(r"\b(open|play|select|choose|call|view|launch|start|listen|check|go to)\b", re.IGNORECASE)
DONE_TEXT = "stop: the task is complete"


@dataclass(frozen=True)
class PolicyConfig:
    gamma: float = 0.7  # look-ahead discount per hop
    depth: int = 3  # hops of look-ahead
    theta: float = 0.5  # an option worth less is not worth taking
    slot_pick: float = 6.0  # an element named by a slot
    slot_type: float = 5.0  # typing a slot into a fitting field
    memory: float = 2.0  # a similar recorded task did this here
    memory_min: float = 0.3  # similarity below which a recorded task is ignored
    tie: float = 1e-6  # options this close to the best are a tie the model breaks (measured: wider hurts)
    llm_top: int = 6  # options shown to the model
    back_toll: float = 0.5
    finish: float = 0.65  # share of each clause's known words that, once acted on and committed, realises it
    meaning: float = 0.0  # weight of the semantic similarity (above the screen's median) of what an option
    # says and leads to (`appatlas.agent.meaning`); 0 = words only
    meaning_below: float = float("inf")  # meaning is asked only when no option is worth this much by the graph
    # Where the graph is not certain, a trained ranker (`appatlas.agent.ranker`) decides: options within
    # `ask_margin` of the best value, or all of the top `llm_top` when the best is worth less than
    # `ask_below`. 0 / 0 = exact ties only (a text LLM is asked there alone). Chosen with the evaluated app
    # left out (`appatlas.agent.train.fit_margin`).
    ask_margin: float = 0.0
    ask_below: float = 0.0
    ask_start: bool = False  # a trained ranker picks where the graph would say "done" before any step was taken
    # The ranker also sees the option one path through which names the most of the intent's words left
    # (`LookAhead.coverage`) when that is none of the close options: an overflow menu whose entries lead to the
    # page that names the goal, valued below a labelled option by the discounted look-ahead.
    ask_cover: bool = False
    # Stuck after a tap that advanced nothing of the intent: back out of it once per run and take another option
    # there (the model's choice among the rest where there is a model): a tester's recovery from a wrong branch.
    recover: bool = True


@dataclass(frozen=True)
class Decision:
    """What to do next: an action (None = done), why, and who decided."""

    action: Action | None
    reason: str
    source: str  # interrupt | graph | confirm | oracle | recover | llm | fallback
    option: Option | None = None
    text: str = ""
    scores: tuple[tuple[str, float], ...] = ()  # the best options and their values, for the evidence
    warning: str = ""
    # Nothing known advances what is left of the intent: "done" for that alone, or backing out of a wrong turn
    stuck: bool = False

    @property
    def done(self) -> bool:
        return self.action is None

    @property
    def by_model(self) -> bool:
        """Whether the model made this decision (the share of these is the bench's `model_share`)."""
        return self.source == "llm"


@dataclass
class _Valued:
    option: Option
    value: float
    text: str = ""
    why: list[str] = field(default_factory=list)
    memory: float = 0.0  # the part of `value` that only recorded tasks vouch for
    own: float = 0.0  # the part of `value` the option itself earns (its label, a slot it names or types)
    cover: float | None = None  # `LookAhead.coverage`, computed only where a ranker is asked
    named: frozenset[str] = frozenset()  # the intent's words (and slots) its own label names


def _harmless_confirm(screen: Screen) -> Option | None:
    """The screen's confirming button, unless it destroys something ("Delete")."""
    confirm = confirming(options(screen, scroll=False), form=False)
    return None if confirm is None or confirm.label.strip().lower() in DESTRUCTIVE_WORDS else confirm


def _parts(among: Sequence[_Valued], theta: float, intent: Intent) -> bool:
    """Whether `among` (two or more) each earn their value by naming, on their own label, words or values of the
    intent that no other of them names, all of one clause ('Year' and 'Descending' of "sort by year in descending
    order": both are to be done, in the screen's order). Parts of different clauses ("create a note called 'A',
    then search for 'B'") are done in the intent's order: which comes first is the model's question."""
    if len(among) < 2 or any(v.own < theta or not v.named for v in among):
        return False
    seen: set[str] = set()
    for v in among:
        if seen & v.named:
            return False
        seen |= v.named
    parts = [c.lower() for c in clauses(intent.text)]
    stems = [{stem(w) for w in re.findall(r"[a-z0-9]+", c)} for c in parts]

    def where(v: _Valued) -> set[int]:  # the clauses that name any of what `v` names
        return {i for i, c in enumerate(parts) for n in v.named
                if (n[1:-1].lower() in c if n.startswith("'") and n.endswith("'")
                    else any(same_term(n, w) for w in stems[i]))}

    return bool(set.intersection(*(where(v) for v in among)))


class Policy:
    """Decides steps for intents over one app's knowledge, asking `llm` (optional) when the graph cannot."""

    def __init__(self, knowledge: Knowledge, *, llm: object | None = None, config: PolicyConfig = PolicyConfig()):
        self.knowledge = knowledge
        self.llm = llm
        if hasattr(llm, "ask") and not (config.ask_margin or config.ask_below):
            # A trained ranker carries when to ask it, chosen when it was trained (`appatlas.agent.train.fit`).
            margin, below = llm.ask  # type: ignore[union-attr]
            meta = getattr(llm, "meta", {})
            config = replace(config, ask_margin=margin, ask_below=below,
                             ask_start=config.ask_start or bool(meta.get("ask_start", False)),
                             ask_cover=config.ask_cover or bool(meta.get("ask_cover", False)))
        self.config = config
        self.warnings: list[str] = []
        app_words = {stem(w) for w in re.split(r"[._]", knowledge.package.lower()) if w}
        self._app_words = AppWords(app_words | {"app", "application"})
        self.ahead = LookAhead(knowledge, gamma=config.gamma, depth=config.depth, slot_pick=config.slot_pick,
                               weight=self._weight)
        self.meaning = knowledge.meaning  # one per knowledge: the store's element sentences were made with it
        if config.meaning or hasattr(llm, "rank"):
            # The embedder is loaded and the known options embedded when the policy is made, not while
            # deciding (measured: the first ranker decision of a fresh process took 7.6 s otherwise).
            self.meaning.prepare()

    # --- the decision -----------------------------------------------------------------------------

    def decide(self, intent: Intent | str, screen: Screen, history: Sequence[Taken], *,
               known_as: str | None = None) -> Decision:
        """The next step for `intent` on `screen`, given the steps taken so far.

        `known_as` is the known screen this one was localized to (when its own structure key is new).
        """
        intent = parse_intent(intent) if isinstance(intent, str) else intent
        key = known_as or structure_key(screen)
        progress = Progress(intent, history, current=key)
        stop = interruption(screen)
        if stop is not None:
            return Decision(stop.option.action(screen), stop.reason, "interrupt", stop.option)
        opts = [o for o in options(screen) if not o.negative]  # what may be taken here (valued, and read when stuck)
        valued = self._value_all(intent, progress, screen, key, opts)
        undone = backed_out_of(history, key) if self.config.recover else None
        # The tap this run backed out of is not taken again, nor is back pressed again (it would leave what is left).
        again = [v for v in valued if undone is not None and (v.option.kind is ActionKind.BACK or (
            v.option.kind is ActionKind.TAP and v.option.label == undone.label))]
        for v in again:
            v.value = v.own = 0.0
        ranked = sorted(valued, key=lambda v: -v.value)
        # Fill the fields first: a value the intent gives for a field here goes in before the button
        # that submits the form.
        typing = next((v for v in ranked if v.option.kind is ActionKind.TYPE and v.text
                       and v.value >= self.config.theta), None)
        ruled = False  # a rule of form-filling chose the order: no tie for the model to break
        # A form is filled before its other controls are touched (what a person types first is the value).
        if typing is not None and ranked and ranked[0] is not typing and ranked[0].option.kind is not ActionKind.TYPE:
            ranked.remove(typing)
            ranked.insert(0, typing)
            ruled = True
        # A value the intent gives, typed into the field that fits it best (the higher of two that fit as well: forms
        # are filled top to bottom), is the form-filling rule's choice too, not a near tie for a model (measured: a
        # ranker asked there typed a surname before the first name, or picked a list type before typing the name).
        ruled = ruled or (typing is not None and bool(ranked) and ranked[0] is typing)
        # Confirm last: while something else here is worth doing, OK / Save wait — on a form or a dialog;
        # elsewhere a button that reads "Delete" is the action itself.
        form = is_dialog(screen) or any(o.kind is ActionKind.TYPE for o in options(screen, scroll=False))
        if ranked and submits(ranked[0].option) and form:
            # Only for what this screen itself offers towards the intent, not for a detour the look-ahead likes.
            other = next((v for v in ranked if not submits(v.option) and v.value - v.memory >= self.config.theta
                          and v.own >= self.config.theta and v.option.kind is not ActionKind.BACK), None)
            if other is not None:
                ranked.remove(other)
                ranked.insert(0, other)
                ruled = True
        scores = tuple((describe_option(v.option, text=v.text), round(v.value, 3)) for v in ranked[:5])
        cfg = self.config
        finished = self._finished(intent, progress, screen)
        if finished:
            dialog = is_dialog(screen)
            saved = progress.last_commit(dialog_now=dialog) >= max(progress.last_change(), 0)
            # A choice made in a dialog returns to a form that still has to be saved.
            unsaved = progress.last_change() > progress.last_confirm()
            # A dialog our last step opened asks to confirm it ("Delete?"): answer it first.
            unsaved = unsaved or (dialog and progress.history[-1].screen != key)
            # Another app finishing what this one handed over (the system's file saver, an SMS confirmation)
            # waits for its button.
            elsewhere = bool(self.knowledge.package) and screen.package != self.knowledge.package
            unsaved = unsaved or elsewhere
            if saved and not (unsaved and confirming(options(screen, scroll=False), form=False) is not None):
                return Decision(None, f"the intent is realised: {finished}", "oracle", scores=scores)
            if progress.pending_change() or unsaved:
                # Another app's screen gets its positive button only, never "the only button" there.
                confirm = confirming(options(screen, scroll=False), form=progress.typed_last() and not elsewhere)
                if confirm is not None and confirm.label.strip().lower() in DESTRUCTIVE_WORDS and not any(
                        same_term(t, stem(confirm.label.strip().lower())) for t in intent.terms):
                    confirm = None  # nothing is deleted that the intent did not say to delete
                if confirm is not None:
                    return Decision(confirm.action(screen), f"confirm the change with '{confirm.label}': {finished}",
                                    "confirm", confirm, scores=scores)
        best = ranked[0] if ranked else None
        # A dialog our last step opened that already shows every value ("New timer: 05:00") is answered,
        # rather than left for a detour only the look-ahead likes (its sound picker "Add a new sound").
        opened = bool(history) and is_dialog(screen) and not history[-1].dialog
        if opened and best is not None and best.own < cfg.theta and not submits(best.option) and intent.slots \
                and all(shows_value(all_texts(screen), s.text) for s in intent.slots):
            confirm = _harmless_confirm(screen)
            if confirm is not None:
                return Decision(confirm.action(screen), f"confirm '{confirm.label}': the dialog shows every value",
                                "confirm", confirm, scores=scores)
        # Memory re-ranks what is worth doing; it cannot by itself keep a finished intent going.
        if best is not None and best.value >= cfg.theta and best.value - best.memory >= cfg.theta:
            # Not certain: options this close to the best (a tie, or within the ranker's margin), or any of
            # the top options when the best is worth little. A confirming button waits unless it is the best.
            near = max(cfg.tie, cfg.ask_margin) if best.value >= cfg.ask_below else float("inf")
            # Backed out of the graph's choice: its next best is no more certain than it was, so the model chooses.
            near = float("inf") if undone is not None else near
            tied = [v for v in ranked if best.value - v.value <= near and (v is best or not submits(v.option))
                    and v not in again]
            among = tied[:cfg.llm_top]
            # Options that each name a different part of one clause of the intent by their own label ('Year' and
            # 'Descending' for "sort by year in descending order") are all to be done: which first is no question.
            ruled = ruled or _parts(among, cfg.theta, intent)
            if cfg.ask_cover and hasattr(self.llm, "rank") and not ruled:
                among += self._cover_leader(intent, progress, ranked, among)
            # Options that read the same (two 'Create group' buttons) are not a question for a model.
            distinct = len({describe_option(v.option, text=v.text) for v in among})
            if distinct > 1 and self.llm is not None and not ruled:
                asked = self._ask(intent, progress, screen, among, allow_done=False)
                if asked is not None:
                    return asked
            return self._act(screen, best, "graph", scores)
        opened = bool(history) and is_dialog(screen) and not history[-1].dialog
        if progress.pending_change() or opened:
            confirm = confirming(options(screen, scroll=False), form=progress.typed_last())
            if confirm is not None:
                why = "confirm the change" if progress.pending_change() else "confirm what the last step asked for"
                return Decision(confirm.action(screen), f"{why} with '{confirm.label}'", "confirm", confirm,
                                scores=scores)
        # Another app's screen our steps handed the work to (the print spooler) and nothing here is known:
        # its submit button finishes what was handed over ("Save to PDF").
        if history and self.knowledge.package and screen.package != self.knowledge.package:
            confirm = _harmless_confirm(screen)
            if confirm is not None:
                return Decision(confirm.action(screen), f"finish in {screen.package} with '{confirm.label}'",
                                "confirm", confirm, scores=scores)
        look = self._scroll_for_slot(intent, progress, screen)
        if look is not None:
            return Decision(look.action(screen), f"scroll '{look.label}': a value of the intent may be further down",
                            "graph", look, scores=scores)
        # The graph cannot answer: a screen it does not know, and the intent is not done yet.
        here = [w for o in options(screen, scroll=False) for w in label_words(o.label)]
        reachable = [t for t in progress.uncovered() if not self.knowledge.screens  # knowing nothing, all is open
                     or self.knowledge.weight(t) < self.knowledge.default_idf  # a word some screen shows
                     or any(same_term(t, w) for w in here)]
        unfinished = bool(reachable) or any(s.role == "input" and not progress.done_with(s) for s in intent.slots)
        # Only where the graph sees something here, too little to act on, or knows nothing of the app: where
        # a known app offers nothing here, its "done" stands (measured: the model then always went on, wrongly).
        if key not in self.knowledge.screens and self.llm is not None and ranked and unfinished \
                and (ranked[0].value > 0 or not self.knowledge.screens):
            asked = self._ask(intent, progress, screen, ranked[:cfg.llm_top], allow_done=True)
            if asked is not None:
                return asked
        left = progress.uncovered()
        # Nothing done yet and the graph sees nothing to do: "done" before any step is never the intent's end, so a
        # trained ranker picks among what is here (the words may be on a page only its meaning reaches).
        if cfg.ask_start and not history and left and hasattr(self.llm, "rank"):
            among = [v for v in ranked if v.option.kind is not ActionKind.BACK][:cfg.llm_top]
            if cfg.ask_cover:
                among += self._cover_leader(intent, progress, ranked, among)
            if len({describe_option(v.option, text=v.text) for v in among}) > 1:
                asked = self._rank(intent, progress, screen, among)
                if asked is not None:
                    return asked
        wrong = wrong_turn(progress, self._covered(intent, progress, opts)) if cfg.recover and left else None
        if wrong is not None:
            return Decision(Action(ActionKind.BACK), f"back out of '{wrong.label}': nothing here or ahead advances "
                            f"the rest ({', '.join(left)}), and it advanced nothing", "recover", scores=scores,
                            stuck=True)
        reason = ("every part of the intent was acted on" if not left else
                  f"nothing here or ahead advances the rest ({', '.join(left)})")
        return Decision(None, reason, "oracle", scores=scores, stuck=bool(left))

    def _finished(self, intent: Intent, progress: Progress, screen: Screen) -> str:
        """Why the intent reads as realised by the steps so far, or "" (`appatlas.agent.oracle.realised`)."""
        return realised(intent, progress, screen, self.knowledge, app_words=self._app_words, weight=self._weight,
                        finish=self.config.finish)

    def _scroll_for_slot(self, intent: Intent, progress: Progress, screen: Screen) -> Option | None:
        """A list to scroll when an item the intent names is not in view: on while the list moves, as a
        person scrolls a long list of countries to the one wanted (at most `MAX_SCROLLS` in a row)."""
        scrolls = 0
        for t in reversed(progress.history):
            if t.kind is not ActionKind.SCROLL:
                break
            scrolls += 1
        if scrolls >= MAX_SCROLLS or (scrolls and progress.history[-1].texts == all_texts(screen)):
            return None  # enough, or the end of the list: the last scroll showed nothing new
        shown = " ".join(screen.texts).lower()
        wanted = [s for s in intent.slots if s.role != "input" and s.text.lower() not in self._app_words
                  and s.text not in progress.picked and s.text not in progress.typed and s.text.lower() not in shown]
        if not wanted:
            return None
        return next((o for o in options(screen) if o.kind is ActionKind.SCROLL and o.widget is not None
                     and view_kind(o.widget.class_name).endswith(VERTICAL)), None)

    def _act(self, screen: Screen, v: _Valued, source: str, scores: tuple[tuple[str, float], ...]) -> Decision:
        why = "; ".join(v.why) or "best option"
        return Decision(v.option.action(screen, text=v.text), f"{describe_option(v.option, text=v.text)}: {why}",
                        source, v.option, v.text, scores)

    # --- asking the model ---------------------------------------------------------------------------

    def _ask(self, intent: Intent, progress: Progress, screen: Screen, among: list[_Valued], *,
             allow_done: bool) -> Decision | None:
        if hasattr(self.llm, "rank"):
            # A trained ranker scores options, not "done": where done is a question, the graph answers.
            return None if allow_done else self._rank(intent, progress, screen, among)
        texts = [describe_option(v.option, text=v.text) for v in among] + ([DONE_TEXT] if allow_done else [])
        context = choice_context(intent.text, [t.describe() for t in progress.history], screen)
        try:
            index, raw = self.llm.choose(context, texts)  # type: ignore[union-attr]
        except (LLMError, RuntimeError, ValueError, OSError) as exc:  # a local model's own failures too
            warning = f"the model failed ({exc}); deciding from the graph alone from now on"
            log.warning(warning)
            self.warnings.append(warning)
            self.llm = None
            return None
        scores = tuple((t, round(float(s), 3)) for t, s in zip(texts, raw, strict=False))
        if allow_done and index == len(among):
            return Decision(None, "the model judged the task complete", "llm", scores=scores)
        v = among[index]
        return Decision(v.option.action(screen, text=v.text),
                        f"{texts[index]}: the model's choice among {len(among)} options", "llm", v.option, v.text,
                        scores)

    def _covers(self, intent: Intent, progress: Progress, valued: Sequence[_Valued]) -> None:
        """Set `cover` (`LookAhead.coverage`) of each of `valued` that has none yet. A control never pressed here
        leads where the same control led on another screen of its activity (`Meaning.targets`)."""
        todo = [v for v in valued if v.cover is None]
        if not todo:
            return
        uncovered = set(progress.uncovered())
        terms = [t for t in intent.terms if t in uncovered]
        been = {t.screen for t in progress.history}
        memo: dict[tuple[str, int], frozenset[int]] = {}
        for v in todo:
            targets = None if v.option.kind is ActionKind.BACK else self.meaning.targets(progress.current, v.option)
            v.cover = self.ahead.coverage(v.option, progress.current, terms, been=been, targets=targets, memo=memo)

    def _cover_leader(self, intent: Intent, progress: Progress, ranked: Sequence[_Valued],
                      among: Sequence[_Valued]) -> list[_Valued]:
        """[the option one path through which names the most of the intent left], when none of `among` names as
        much (`PolicyConfig.ask_cover`); else []. Taps only, not a submit, nor one taken before in this run."""
        taps = [v for v in ranked if v.option.kind in (ActionKind.TAP, ActionKind.LONG_TAP)
                and not submits(v.option) and not progress.repeats(v.option.label, v.option.kind)]
        self._covers(intent, progress, [*taps, *among])
        if not taps:
            return []
        leader = max(taps, key=lambda v: v.cover or 0.0)
        shown = max((v.cover or 0.0 for v in among), default=0.0)
        return [leader] if leader not in among and (leader.cover or 0.0) > shown + 1e-6 else []

    def query(self, intent: Intent, progress: Progress, among: Sequence[_Valued]) -> Query:
        """What the ranker reads for a choice among `among` (also what `appatlas.agent.train` learns from):
        the intent, its words not yet acted on, and each option's meaning text and graph values."""
        uncovered = set(progress.uncovered())
        left = " ".join(w for w in re.findall(r"[A-Za-z]+", intent.text) if stem(w) in uncovered)
        terms = [t for t in intent.terms if t in uncovered]
        self._covers(intent, progress, among)
        cands = []
        for v in among:
            said = self.meaning.describe(progress.current, v.option)
            if v.text:
                said = f"type '{v.text}' into {said}"
            near, far = self.meaning.reach(progress.current, v.option)
            named = set(self._matches(v.option.label, terms)) if v.option.kind is not ActionKind.BACK else set()
            first = next((i / len(terms) for i, t in enumerate(terms) if t in named), 1.0)
            cands.append(Candidate(said, v.option.kind.value, v.value, v.own, v.memory, option=v.option,
                                   near=near, far=far, cover=v.cover or 0.0, first=first))
        # The first clause with words still to act on ("create a note called 'test', …, and search for '234'":
        # the note first): what a person does next.
        nxt = next((" ".join(w for w in re.findall(r"[A-Za-z]+", c) if stem(w) in uncovered)
                    for c in clauses(intent.text) if any(stem(w) in uncovered for w in re.findall(r"[A-Za-z]+", c))), "")
        return Query(intent.text, left or intent.text, tuple(cands), tuple(t.describe() for t in progress.history),
                     next=nxt if nxt != left else "")

    def _rank(self, intent: Intent, progress: Progress, screen: Screen, among: list[_Valued]) -> Decision | None:
        try:
            raw = self.llm.rank(self.query(intent, progress, among))  # type: ignore[union-attr]
            index = max(range(len(among)), key=lambda i: raw[i])
        except (LLMError, RuntimeError, ValueError, OSError, IndexError) as exc:
            warning = f"the ranker failed ({exc}); deciding from the graph alone from now on"
            log.warning(warning)
            self.warnings.append(warning)
            self.llm = None
            return None
        texts = [describe_option(v.option, text=v.text) for v in among]
        scores = tuple((t, round(float(s), 3)) for t, s in zip(texts, raw, strict=False))
        v = among[index]
        return Decision(v.option.action(screen, text=v.text),
                        f"{texts[index]}: the ranker's choice among {len(among)} close options", "llm", v.option,
                        v.text, scores)

    # --- valuing options ----------------------------------------------------------------------------

    def _value_all(self, intent: Intent, progress: Progress, screen: Screen, key: str,
                   opts: Sequence[Option]) -> list[_Valued]:
        covered = self._covered(intent, progress, opts)
        slots = self._slots_left(intent, progress, screen, opts)
        # The unit of a number still to pick ("five *images* per row", "5 *minutes*") is sought with the
        # number, not on its own: an 'Images' filter is not five images.
        said = words(intent.text)
        units = {s.kind_word for s in slots if s.kind == "number" and s.kind_word and said.count(s.kind_word) == 1}
        uncovered = [t for t in intent.terms if t not in covered and t not in units]
        visible = {o.label for o in opts}
        names = {o.name for o in opts}
        out = [self._value(o, intent, progress, screen, key, uncovered, slots, visible, names) for o in opts]
        self._remember(out, intent, progress, key)
        if self.config.meaning and max((v.value for v in out), default=0.0) < self.config.meaning_below:
            self._mean(out, intent, progress, key, uncovered)
        return out

    def _covered(self, intent: Intent, progress: Progress, opts: Sequence[Option]) -> set[str]:
        """The intent's words done: acted on, or the words of a toggle here already in the wanted state. An intent that
        wants no switch flipped ("set the snooze time to 5 minutes") is not done by a switch that is on ("Always use
        same snooze time"); a radio button that is on is the choice made."""
        covered = set(progress.covered)
        for o in opts:
            if o.checkable and (intent.wants or o.radio) and self._satisfied(o, intent):
                covered |= set(self._matches(o.label, intent.terms))
        return covered

    def _mean(self, valued: list[_Valued], intent: Intent, progress: Progress, key: str,
              uncovered: Sequence[str]) -> None:
        """Add what the options mean for what is left of the intent: the cosine of what each says and
        leads to, above the screen's median (`appatlas.agent.meaning`). What is left is the intent's words
        not yet acted on, as written (a step done no longer pulls towards its element). Taps only; not a
        toggle already as wanted, nor an option taken before in this run; and, as memory, it re-ranks what
        the graph finds worth taking but cannot make an option worth taking by itself (measured: alone it
        turned "done" into one more tap)."""
        taps = [v for v in valued if v.option.kind in (ActionKind.TAP, ActionKind.LONG_TAP)]
        left = " ".join(w for w in re.findall(r"[A-Za-z]+", intent.text) if stem(w) in uncovered)
        if len(taps) < 2 or not left:
            return
        sims = self.meaning.similarities(left, key, [v.option for v in taps])
        middle = median(sims)
        for v, sim in zip(taps, sims, strict=True):
            o = v.option
            if sim <= middle or (o.checkable and self._satisfied(o, intent)) or progress.repeats(o.label, o.kind):
                continue
            if v.value < self.config.theta:
                continue  # meaning re-ranks what is worth taking; alone it would tap on after the goal
            bonus = self.config.meaning * (sim - middle)
            v.value += bonus
            v.why.append(f"it means what the intent asks (+{bonus:.2f})")

    def _slots_left(self, intent: Intent, progress: Progress, screen: Screen, opts: Sequence[Option]) -> list[Slot]:
        """Open slots that `screen` does not already show as itself (an item open already, a value set)."""
        shown = shown_texts(screen)
        return [s for s in self._open_slots(intent, progress, opts)
                if not (s.role in ("select", "either") and s.text.lower() in shown)]

    def _open_slots(self, intent: Intent, progress: Progress, opts: Sequence[Option]) -> list[Slot]:
        """Slots still to type or pick (not the app's own name, not one a field already holds)."""
        reopen = bool(_OPEN_VERBS.search(intent.text))
        slots = []
        for s in intent.slots:
            if s.text.lower() in self._app_words or s.text in progress.picked:
                continue
            if s.text in progress.typed and not reopen:
                continue
            slots.append(s)
        return slots

    def _known(self, text: str) -> bool:
        """Whether the app shows `text` somewhere (then a slot naming it is an item to pick, not to type)."""
        want = text.lower()
        return any(want == label.lower() for info in self.knowledge.screens.values() for label, _ in info.labels)

    def _value(self, o: Option, intent: Intent, progress: Progress, screen: Screen, key: str,
               uncovered: list[str], slots: list[Slot], visible: set[str], names: set[str]) -> _Valued:
        cfg = self.config
        v = _Valued(o, 0.0)
        if o.kind is ActionKind.TYPE:
            self._value_field(v, intent, progress, slots, uncovered, screen)
        elif o.kind in (ActionKind.TAP, ActionKind.LONG_TAP):
            # A toggle the intent wants flipped counts all its words: reaching it by a row of the same
            # name ("Quiet hours" > "Quiet hours" switch) is not turning it on.
            terms = intent.terms if o.checkable and intent.wants and not o.radio else uncovered
            # Words describing a value still to type ("mobile number 555…") name its field, not this.
            described = {c for s in slots if s.role == "input" and s.text not in progress.typed for c in s.context}
            terms = [t for t in terms if not any(same_term(t, c) for c in described)]
            matched = self._matches(o.label, terms)
            # A row's first line says what it is; the rest describes it ("Recordings" / "2 Tracks").
            titled = set(self._matches(o.title, matched)) if o.title and o.title != o.label else set(matched)
            # A value's own words there ("5 minutes" under "Max reminder duration") are its current value.
            valued = {t for t in matched if t not in titled
                      and any(self._matches(f"{s.text} {s.kind_word}", [t]) for s in slots)}
            matched = [t for t in matched if t not in valued]
            own = sum(self._weight(t) * (1.0 if t in titled else 0.5) for t in matched) * precision(o.label, matched)
            if o.checkable and self._satisfied(o, intent):
                own = 0.0
            v.named = frozenset(matched) if own else frozenset()
            if self._set_already(o, slots):
                v.why.append("it shows the wanted value already")
                return v  # a setting already as wanted, like a toggle already as wanted
            if own:
                v.why.append(f"its label has {', '.join(matched)}")
            for rank, s in enumerate(slots):
                if (s.role == "input" and s.text not in progress.typed) or s.cue == "from":
                    continue  # a value to type first (picking an existing 'Groceries' is not creating one);
                    # the old value of "from A to B" is replaced in its field, not tapped
                # A row's second line is its current value ("Max reminder duration" / "5 minutes"):
                # tapping the row opens that setting, it does not pick the value shown under it.
                second_line = (o.title and o.title != o.label and not o.in_dialog and not o.title.isdigit()
                               and not pick_value(s, o.title))  # a track number is no title
                pick = 0.0 if second_line else pick_value(s, o.label) * cfg.slot_pick * (1 - 0.05 * rank)
                # A choice already made is made, except in a list dialog: tapping it is how one answers.
                if pick and (not (o.checkable and self._satisfied(o, intent)) or (o.in_dialog and pick >= 4)):
                    v.why.append(f"it is '{s.text}'")
                    v.named |= {f"'{s.text}'"}
                    own += pick
                    break
            keypad = self._keypad_value(o, intent, progress) if is_keypad(screen) else 0.0
            if keypad:
                v.why.append("the next key of a number")
                own += keypad
            v.value = v.own = own * (0.3 if o.kind is ActionKind.LONG_TAP else 1.0)
        elif o.kind is ActionKind.SCROLL:
            hidden = self.ahead.hidden(o, key, uncovered, slots, visible, names=names,
                                       been={t.screen for t in progress.history})
            if hidden:
                v.why.append("what the intent names is further down this screen")
                v.value = v.own = cfg.gamma * hidden
        # Typing nothing leads nowhere; a toggle changes this screen, it does not go anywhere.
        # What is left after this option: the words its own name covers are not found again further on.
        rest = [t for t in uncovered if t not in self._matches(o.name, uncovered)] if o.kind is ActionKind.TAP \
            else uncovered
        ahead = 0.0 if ((o.kind is ActionKind.TYPE and not v.text) or o.checkable) else self.ahead.value(
            o, key, rest, slots, been={t.screen for t in progress.history}, here=visible)
        if ahead > 0:
            v.why.append(f"it leads towards the rest (+{ahead:.2f})")
        v.value += ahead
        if o.kind is ActionKind.BACK:
            v.value -= cfg.back_toll
        if o.kind is ActionKind.SCROLL and [t.kind for t in progress.history[-2:]] == [ActionKind.SCROLL] * 2:
            v.value = 0.0  # scrolled twice already: what was wanted is not further down
        if o.kind is ActionKind.SCROLL and progress.history and progress.history[-1].kind is ActionKind.SCROLL \
                and progress.history[-1].texts == all_texts(screen):
            v.value = 0.0  # the last scroll showed nothing new: the end of the list, or nothing that scrolls this way
        repeats = progress.repeats(o.label, o.kind)
        if o.kind is not ActionKind.BACK and repeats and not (is_keypad(screen) and self._keypad_value(o, intent,
                                                                                                       progress)):
            v.value *= 0.3 if repeats == 1 else 0.0  # done before in this run: again is usually a loop
        return v

    def _value_field(self, v: _Valued, intent: Intent, progress: Progress, slots: list[Slot],
                     uncovered: list[str], screen: Screen) -> None:
        o = v.option
        assert o.widget is not None
        held = o.widget.text.strip().lower()
        if any(held == s.typed.lower() for s in intent.slots if s.text in progress.typed):
            return  # it already holds what was typed
        # A field holding one of the intent's values is the "from" of "from A to B": B goes here.
        holds = next((i for i, s in enumerate(intent.slots) if held and held == s.text.lower()), None)
        best, best_fit = None, 0.0
        for s in slots:
            if s.text in progress.typed or s.text.lower() == held or text_for(s, o).lower() == held or s.cue == "from":
                # typed already, or already here; the "from" of "from A to B" is found, never typed
                continue
            fit = field_fit(o, s, intent)
            named = bool(s.context) and bool(self._matches(o.label, list(s.context)))
            # "… to Favorites": a name the app already shows after "to" is where it goes, not what is typed.
            elsewhere = s.role == "either" and s.cue in ("to", "into") and self._known(s.text)
            if (s.role == "select" and not (s.kind == "quoted" and not self._known(s.text)) and not named) or elsewhere:
                fit = 0.0  # an item to pick, not a value to type
            elif named:
                fit = max(fit, 1.2)  # "due in 3 days" -> the field "Due in (days)"
            if holds is not None and intent.slots.index(s) > holds and s.kind != "name":
                fit = max(fit, 1.0)
            if fit > best_fit:
                best, best_fit = s, fit
        if best is None:
            return
        # The words that describe the value ("mobile number 555…") name its field; they do not add to it.
        label_value = sum(self.knowledge.weight(t) for t in self._matches(o.label, uncovered)
                          if not any(same_term(t, c) for c in best.context))
        v.text = text_for(best, o)
        # Forms are filled top to bottom: among fitting fields the higher one goes first.
        place = 1.0 - o.widget.bounds.y1 / max(screen.height, 1)
        v.value = v.own = self.config.slot_type * min(best_fit, 1.0) + 0.2 * place + 0.5 * label_value
        v.why.append(f"type the intent's '{v.text}' here")

    def _set_already(self, o: Option, slots: Sequence[Slot]) -> bool:
        """A setting row whose current value (its second line) is the value the intent sets ("… to 5 minutes")."""
        if not o.title or o.title == o.label or o.in_dialog:
            return False
        value = o.label[len(o.title):].strip() if o.label.startswith(o.title) else ""
        return bool(value) and any(s.cue == "to" and s.kind == "number" and names_slot(s, value) >= 0.7 for s in slots)

    def _satisfied(self, o: Option, intent: Intent) -> bool:
        """Whether a toggle already is as the intent wants it (radio buttons always want on)."""
        want = "on" if o.radio or not intent.wants else intent.wants
        return o.checked == (want == "on")

    def _matches(self, label: str, terms: Sequence[str]) -> list[str]:
        return terms_in(terms, label_words(label))

    def _weight(self, term: str) -> float:
        """A word's weight; the app's own name ("clock" in the Clock app) names the app, not a place in it."""
        w = self.knowledge.weight(term)
        return 0.3 * w if term in self._app_words else w

    def _keypad_value(self, o: Option, intent: Intent, progress: Progress) -> float:
        key = digit(o.label)
        if not key:
            return 0.0
        for s in intent.slots:
            digits = s.text.replace(" ", "")
            if s.kind != "number" or not digits.isdigit() or s.text in progress.typed:
                continue
            keys = ""
            for t in reversed(progress.history):
                if t.kind is ActionKind.TAP and digit(t.label):
                    keys = digit(t.label) + keys
                else:
                    break
            if digits.startswith(keys) and len(keys) < len(digits) and digits[len(keys)] == key:
                return self.config.slot_type
        return 0.0

    # --- memory of recorded tasks ------------------------------------------------------------------------

    def _remember(self, valued: list[_Valued], intent: Intent, progress: Progress, key: str) -> None:
        cfg = self.config
        for task in self.knowledge.tasks:
            sim = self._similarity(intent, task.intent)
            if sim < cfg.memory_min:
                continue
            for step in task.steps:
                if step.action is None or self.knowledge.state_key.get(step.state) != key:
                    continue
                for v in valued:
                    if v.option.kind is ActionKind.TYPE and not v.text:
                        continue  # typing nothing is not what that task did
                    if progress.repeats(v.option.label, v.option.kind):
                        continue
                    if same_option(step.action, v.option):
                        v.value += cfg.memory * sim
                        v.memory += cfg.memory * sim
                        v.why.append(f"'{task.intent}' did this here")

    def _similarity(self, a: Intent, other: str) -> float:
        b = parse_intent(other)
        # Who or what is acted on ("Bob") is not what is done: calling Bob is not like texting Bob.
        named = {w for s in (*a.slots, *b.slots) if s.kind == "name" and s.text.lower() not in self._app_words
                 for w in words(s.text)}
        ta, tb = set(a.terms) - named, set(b.terms) - named
        if not ta or not tb:
            return 0.0
        shared = sum(self.knowledge.weight(t) for t in ta if any(same_term(t, u) for u in tb))
        total = sum(self.knowledge.weight(t) for t in ta | tb)
        return 2 * shared / (total + shared) if total else 0.0
