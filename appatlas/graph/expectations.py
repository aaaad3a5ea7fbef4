"""Checking a test's expectations on a screen or a device: what a verdict rests on.

A verdict is evidence. `check_screen` says, for one screen, whether each expectation about it holds
and quotes what the screen shows; `screen_errors` finds what no finished test may show (a validation
error under a field, an error dialog, "has stopped"). `check_device` checks every expectation on a
live device: those about another screen are checked after read-only moves to it (the back key, or
taps that only navigate — never a tap on Save, Delete, OK or a switch), so checking cannot make
true what the run did not.

    checks = check_device(test.expect, device, where=lambda s: {key_of(s)}, route=path_to)
    passed = all(c.holds for c in checks)

The same functions judge a recorded app's final screen (`check_screen(expect, screen, here=keys)`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from appatlas.types import Action, ActionKind, Expectation, Screen, Widget

__all__ = ["Check", "check_device", "check_screen", "count_shown", "find_toggle", "read_only", "reads",
           "screen_errors"]

# What a system crash / ANR dialog says.
_CRASHED = re.compile(r"\b(has stopped|keeps stopping|isn't responding|is not responding|unfortunately,)\b",
                      re.IGNORECASE)
# Wording of errors an app shows (validation under a field, an error dialog or banner).
_ERROR_WORDS = re.compile(
    r"^(error\b|invalid\b|failed\b|something went wrong)|\b(is required|required field|not valid|went wrong|"
    r"try again|could not|couldn't|can't be empty|cannot be empty|must not be empty|is invalid|"
    r"please (enter|fill|provide|choose|select))\b", re.IGNORECASE)
# Resource ids of error views (Android's TextInputLayout shows field errors in `textinput_error`).
_ERROR_ID = re.compile(r"(^|[/_:])(textinput_)?error($|_)|_error$|error_text|errortext", re.IGNORECASE)
# Labels of taps that change the app's data or settings: never taken while checking.
_CHANGES = re.compile(r"\b(delete|remove|save|ok|okay|yes|confirm|discard|send|add|create|done|submit|clear|"
                      r"reset|sign ?out|log ?out|apply|allow|deny|restore|archive|share|export|buy|pay|install|"
                      r"uninstall|update|sync|accept|agree|close|cancel|back up|backup|unlock|call)\b",
                      re.IGNORECASE)


@dataclass(frozen=True)
class Check:
    """One expectation's outcome: whether it holds and the evidence, quoted from the screen.

    `expectation` is None for the "no error is shown" check every finished test gets. `unknown` marks a
    check that could not be made (its screen cannot be visited on this device): it does not hold, and
    it is no evidence against the run either (the verdict is then `inconclusive`).
    """

    expectation: Expectation | None
    holds: bool
    evidence: str
    unknown: bool = False

    @property
    def what(self) -> str:
        return self.expectation.describe() if self.expectation is not None else "no error is shown"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"expectation": self.what, "holds": self.holds, "evidence": self.evidence}
        if self.unknown:
            out["unknown"] = True
        return out


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def screen_errors(screen: Screen) -> list[str]:
    """The error texts a screen shows (quoted as shown), empty when it shows none."""
    out: list[str] = []
    for w in screen.widgets():
        text = (w.text or w.content_desc).strip()
        if not text or w.editable:
            continue
        if _CRASHED.search(text) or _ERROR_WORDS.search(text) or (w.resource_id and _ERROR_ID.search(w.resource_id)):
            if text not in out:
                out.append(text)
    return out


def _shown(screen: Screen) -> list[Widget]:
    """What a person reads on the screen (field contents aside: typing a value is not showing it)."""
    return [w for w in screen.widgets() if (w.text or w.content_desc) and not w.editable]


def reads(shown: str, text: str) -> bool:
    """Whether a view showing `shown` reads `text`: the same words (case and spacing aside), a word of
    `text` allowed to be the start of the shown one when only an ending differs ("5 minute" reads
    "5 minutes", "30 min" reads "30 minutes"); a shorter shown word never reads a longer one ("Gro" is
    not "Groceries")."""
    a, b = _norm(shown), _norm(text)
    if a == b:
        return True
    got, want = a.split(), b.split()
    if len(got) != len(want) or not want:
        return False
    return all(g == w or (w.isalpha() and len(w) >= 3 and g.startswith(w) and len(g) - len(w) <= 4)
               for g, w in zip(got, want, strict=True))


def count_shown(screen: Screen, text: str) -> int:
    """How many views read `text` (`reads`)."""
    return sum(1 for w in _shown(screen) if reads(w.text, text) or (not w.text and reads(w.content_desc, text)))


def _near_misses(screen: Screen, text: str, limit: int = 3) -> list[str]:
    """Texts on the screen that share a start or a word with `text`: what to quote when it is missing."""
    want = _norm(text)
    words = set(want.split())
    out = []
    for w in _shown(screen):
        t = _norm(w.text or w.content_desc)
        if t and t != want and (t.startswith(want[:4]) or want.startswith(t[:4]) or words & set(t.split())):
            out.append(w.text or w.content_desc)
    return out[:limit]


_STATE_WORD = re.compile(r"\s+(on|off)$")


def _name(label: str) -> str:
    """A switch's name: its label without a state word it may carry ("CalDAV sync OFF" -> "caldav sync")."""
    n = _norm(label)
    return _STATE_WORD.sub("", n) or n


def find_toggle(screen: Screen, label: str) -> Widget | None:
    """The switch or checkbox labelled `label`: by its own text, or the one checkable in a row saying it
    (a state word in the label, "CalDAV sync OFF", is no part of the name: it changes when it is flipped)."""
    want = _name(label)
    for w in screen.widgets():
        if w.checkable and _name(w.label) == want:
            return w
    best: Widget | None = None
    for w in screen.widgets():
        if w.checkable:
            continue
        inside = list(w.walk())
        toggles = [x for x in inside if x.checkable]
        if len(toggles) == 1 and any(_name(x.text) == want for x in inside if not x.checkable):
            if best is None or w.bounds.area < best.bounds.area:
                best = w
    if best is None:
        return None
    return next(x for x in best.walk() if x.checkable)


def _check_one(e: Expectation, screen: Screen, before: Screen | None = None) -> Check:
    if e.kind == "screen":
        return Check(e, True, f"on the screen ({_title(screen)})")
    if e.kind in ("checked", "unchecked"):
        toggle = find_toggle(screen, e.text)
        if toggle is None:
            return Check(e, False, f"no switch or checkbox labelled {e.text!r} on {_title(screen)}")
        want = e.kind == "checked"
        state = "on" if toggle.checked else "off"
        return Check(e, toggle.checked == want, f"{e.text!r} is {state}")
    n = count_shown(screen, e.text)
    was = count_shown(before, e.text) if before is not None else None
    if e.kind == "gone":
        limit = e.count if e.count is not None else (max(0, was - 1) if was else 0)
        since = f" ({was} when the run first saw it)" if was is not None else ""
        return Check(e, n <= limit, f"{n} view(s) read {e.text!r} on {_title(screen)}{since}")
    need = e.count if e.count is not None else 1
    if e.new and was is None and before is None and n >= need:
        # the run never saw this screen before it ended there: nothing shows the value was put there now
        return Check(e, False, f"{n} view(s) read {e.text!r} on {_title(screen)}, but the run first saw this "
                               "screen only now, so nothing shows it is new", unknown=True)
    if e.new and was is not None:
        need = max(need, was + 1)
    if n >= need:
        return Check(e, True, f"{n} view(s) read {e.text!r} on {_title(screen)}")
    near = _near_misses(screen, e.text)
    seen = f"; it shows {', '.join(repr(t) for t in near)}" if near else ""
    since = f" (the run first saw {was} there)" if e.new and was is not None else ""
    return Check(e, False, f"{n} view(s) read {e.text!r} on {_title(screen)}, {need} expected{since}{seen}")


def _title(screen: Screen) -> str:
    """A short name for a screen in evidence: its first text, else its activity."""
    first = next((w.text for w in screen.widgets() if w.text and not w.editable), "")
    return repr(first[:40]) if first else screen.activity.rsplit(".", 1)[-1]


def check_screen(expectations: Sequence[Expectation], screen: Screen, *, here: Collection[str] = (),
                 errors: bool = True, seen: Mapping[str, Screen] | None = None) -> list[Check]:
    """Check what can be checked on `screen` (whose structure keys are `here`).

    Expectations about another screen (`where` not in `here`) fail, saying so: use `check_device` to
    move there first. `route` expectations are about the run's steps, not a screen: left out here. With `errors`, a first check fails when the screen shows an error, quoting it.
    `seen` maps a structure key to the screen as the run first saw it (for `new` and `gone`).
    """
    seen = seen or {}
    expectations = [e for e in expectations if e.kind != "route"]
    out: list[Check] = []
    if errors:
        shown = screen_errors(screen)
        out.append(Check(None, not shown, f"the screen shows {'; '.join(repr(t) for t in shown)}" if shown
                         else "no error text on the screen"))
    for e in expectations:
        if e.where and e.where not in here:
            out.append(Check(e, False, f"the run is not on the screen {e.where[:8]}… this is about "
                                       f"(it is on {_title(screen)})"))
        else:
            out.append(_check_one(e, screen, seen.get(e.where) if e.where else None))
    return out


def read_only(action: Action) -> bool:
    """Whether an action only moves between screens: the back key, or a tap whose label changes nothing."""
    if action.kind is ActionKind.BACK:
        return True
    if action.kind is not ActionKind.TAP or action.target is None:
        return False
    t = action.target
    label = t.text or t.content_desc
    if "switch" in t.class_name.lower() or "checkbox" in t.class_name.lower() or "edittext" in t.class_name.lower():
        return False
    return not (label and _CHANGES.search(label))


def check_device(expectations: Sequence[Expectation], device: Any, *, where: Callable[[Screen], Collection[str]],
                 route: Callable[[Collection[str], str], Sequence[Action]] | None = None,
                 max_moves: int = 6, screen: Screen | None = None,
                 seen: Mapping[str, Screen] | None = None, reopen: bool = True,
                 errors: bool = True, keeps_state: bool = True) -> list[Check]:
    """Check every expectation on `device` (a Device: snapshot / perform).

    The screen the run ended on is checked first (and for errors); each expectation about another
    screen is checked after moving there: the actions `route(keys here, target key)` proposes when
    every one is `read_only`, else the back key, at most `max_moves` moves in all. `seen` maps a
    structure key to the screen as the run first saw it (what `new` and `gone` compare with). With
    `reopen`, a switch that reads right is read again after leaving its screen and coming back (a
    setting is what the app keeps), when `route` can bring the check back to it read-only.
    `route` expectations are about the run's steps, not a screen: left out here (the runner checks them).
    `errors=False` leaves out the "no error is shown" check (a test whose route expects an error screen).
    `keeps_state=False` is for a device whose other screens do not show what the run did (a replay of a
    recording shows the screens as they were recorded): an expectation about another screen is then
    `unknown` (not checked, saying why) instead of being read from a screen that cannot show it.
    """
    seen = seen or {}
    expectations = [e for e in expectations if e.kind != "route"]
    screen = screen if screen is not None else device.snapshot()
    here = set(where(screen))
    checks: list[Check | None] = [None] * len(expectations)
    first = check_screen([], screen) if errors else []
    for i, e in enumerate(expectations):
        if not e.where or e.where in here:
            checks[i] = _check_one(e, screen, seen.get(e.where))
        elif e.kind in ("checked", "unchecked") and find_toggle(screen, e.text) is not None:
            # the switch is on the screen the run ended on (the same settings, scrolled): read it there
            checks[i] = _check_one(e, screen)
    state = {"screen": screen, "here": here, "moves": 0}

    def goto(target: str) -> str:
        """Move read-only to `target`; "" when there, else why not."""
        while target not in state["here"]:
            if state["moves"] >= max_moves:
                return f"was not reached by read-only moves (last: {_title(state['screen'])})"
            plan = list(route(state["here"], target)) if route is not None else []
            action = plan[0] if plan and all(read_only(a) for a in plan) else Action(ActionKind.BACK)
            try:
                device.perform(action)
            except Exception as exc:  # noqa: BLE001 - a move that fails ends the search, it is evidence
                return f"could not be reached ({exc})"
            state["moves"] += 1
            state["screen"] = device.snapshot()
            state["here"] = set(where(state["screen"]))
        return ""

    for i, e in enumerate(expectations):
        if checks[i] is None and e.kind == "screen":
            # That a screen is open is about where the run ended: moving there to check would make it true.
            checks[i] = Check(e, False, f"the run ended on {_title(screen)}, not on the screen {e.where[:8]}… "
                                        "this is about")
    for i, e in enumerate(expectations):
        if checks[i] is None and not keeps_state:
            checks[i] = Check(e, False, f"it is about the screen {e.where[:8]}…, not the one the run ended on "
                                        f"({_title(screen)}), and this device keeps no state to go and see "
                                        "(a replay shows other screens as they were recorded)", unknown=True)
    for i, e in enumerate(expectations):
        if checks[i] is not None:
            continue
        why = goto(e.where)
        if why:
            checks[i] = Check(e, False, f"the screen {e.where[:8]}… this is about {why}")
            continue
        for j in range(i, len(expectations)):  # this one, and the others about this screen
            if checks[j] is None and expectations[j].where in state["here"]:
                checks[j] = _check_one(expectations[j], state["screen"], seen.get(expectations[j].where))
    if reopen and route is not None and keeps_state:
        # A setting is what the app keeps: leave the screen of each switch that reads right and come back.
        for i, e in enumerate(expectations):
            c = checks[i]
            if c is None or not c.holds or e.kind not in ("checked", "unchecked") or not e.where:
                continue
            if goto(e.where):
                continue
            state["moves"] = 0  # leaving and coming back get moves of their own
            try:
                device.perform(Action(ActionKind.BACK))
            except Exception:  # noqa: BLE001 - could not leave: what was seen stands
                continue
            state["screen"] = device.snapshot()
            state["here"] = set(where(state["screen"]))
            if goto(e.where):
                checks[i] = Check(e, c.holds, c.evidence + " (its screen could not be reopened read-only to see "
                                                           "it kept)")
                continue
            again = _check_one(e, state["screen"])
            checks[i] = Check(e, again.holds, again.evidence + " after leaving its screen and coming back")
    return first + [c for c in checks if c is not None]
