"""A device that replays a recorded app: the screens and transitions someone observed on a phone.

A tap at a point hits the top-most widget there and follows the transition recorded for that
widget on this screen — never another row's: a row sharing the recorded row's id but showing other
text is another item. An action nobody recorded leaves the screen as it is, and is counted
(`unrecorded_taps`). Typing X where
the recording typed Y leads to the recorded next screen with X in place of Y. Back follows a
recorded back transition, else returns to the previous screen, and leaves the app from its
first screen; launch starts again from the recorded launch screen. A scroll nobody recorded as an
event moves along a recorded page (`scroll_pages`: the states a recording scrolled through in one
step, as DroidTask lists them), else leaves the screen as it is.

When the exact state has no recording for an action, states of the same *structure* are
consulted (the same screen with other content), so a replay generalises as a phone would.
This module knows nothing of atlases: `appatlas.graph.replay.recorded_app` builds its input.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from appatlas.devices.base import DeviceInfo, locate
from appatlas.devices.render import render_png
from appatlas.errors import SelectorNotFound
from appatlas.types import Action, ActionKind, Bounds, Screen, Selector, Widget

__all__ = ["LAUNCHER", "RecordedApp", "RecordedEdge", "ReplayDevice", "with_field_text"]

LAUNCHER = "com.android.launcher3"
CONTEXT = 12  # recorded edges of history that decide between outcomes


@dataclass(frozen=True, slots=True)
class RecordedEdge:
    source: int
    action: Action
    target: int
    count: int = 1
    id: int = 0


@dataclass
class RecordedApp:
    """What a replay needs: states by id, the edges between them, and each state's structure key."""

    package: str
    states: Mapping[int, Screen]
    edges: Sequence[RecordedEdge]
    keys: Mapping[int, str]  # state id -> structure key
    launch: Sequence[int] = ()  # launch states, most frequent first
    log: Sequence[int] = ()  # edge ids in the order they were observed
    scroll_pages: Sequence[Sequence[int]] = ()  # states of one page, in the order a recording scrolled
    _out: dict[int, list[RecordedEdge]] = field(default_factory=dict, init=False, repr=False)
    _by_key: dict[str, list[int]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        out: dict[int, list[RecordedEdge]] = defaultdict(list)
        for e in self.edges:
            out[e.source].append(e)
        self._out = {k: sorted(v, key=lambda e: -e.count) for k, v in out.items()}
        by_key: dict[str, list[int]] = defaultdict(list)
        for sid, key in self.keys.items():
            by_key[key].append(sid)
        self._by_key = dict(by_key)
        self._hops = {e.id: (e.source, e.target) for e in self.edges}  # compared by where they went, not how
        self.edges_by_id = {e.id: e for e in self.edges}
        self._seen_at: dict[int, list[int]] = defaultdict(list)
        for pos, edge_id in enumerate(self.log):
            self._seen_at[edge_id].append(pos)
        self._scrolled: dict[tuple[int, str], int] = {}
        self._page_mates: dict[int, set[int]] = defaultdict(set)
        for page in self.scroll_pages:
            for state in page:
                self._page_mates[state].update(page)
            for above, below in zip(page, page[1:], strict=False):
                if above != below:
                    self._scrolled.setdefault((above, "down"), below)
                    self._scrolled.setdefault((below, "up"), above)
        if not self.launch:
            # The app opens on the screen it was most often launched onto: launches counted by observation (an
            # edge seen 28 times is 28 launches, not one) and per screen (structure key), then per state.
            launches: Counter[int] = Counter()
            for e in self.edges:
                if e.action.kind is ActionKind.LAUNCH:
                    launches[e.target] += max(e.count, 1)
            per_screen: Counter[str] = Counter()
            for s, n in launches.items():
                per_screen[self.keys.get(s, str(s))] += n
            self.launch = sorted(launches, key=lambda s: (-per_screen[self.keys.get(s, str(s))], -launches[s])) \
                or ([min(self.states)] if self.states else [])

    def edges_from(self, state: int) -> list[RecordedEdge]:
        return self._out.get(state, [])

    def context_match(self, edge: RecordedEdge, trail: Sequence[int], *, window: int = CONTEXT) -> float:
        """How well the history before some observation of `edge` matches `trail` (recent edges weigh more).

        Apps have hidden state (data created earlier changes where a button leads); the
        recording that continues the same history is the best guess of what happens next.
        Recordings have gaps (events to unrecorded screens), so the match is a weighted
        overlap within a window rather than an exact suffix.
        """
        recent = [self._hops[e] for e in trail[-window:]]
        best = 0.0
        for pos in self._seen_at.get(edge.id, ()):
            before = {self._hops[e] for e in self.log[max(0, pos - window):pos]}
            score = sum(1.0 / k for k, hop in enumerate(reversed(recent), start=1) if hop in before)
            best = max(best, score)
        return best

    def scrolled(self, state: int, direction: str) -> int | None:
        """The state a recorded page shows after scrolling `state` in `direction`, if one was recorded."""
        return self._scrolled.get((state, direction))

    def logged(self, edge: RecordedEdge) -> bool:
        """Whether `edge` was observed in the log (a task step DroidBot logged no event for was not)."""
        return edge.id in self._seen_at

    def same_page(self, state: int) -> set[int]:
        """`state` and the states a recording reached by scrolling its page."""
        return self._page_mates.get(state, set()) | {state}

    def moment(self, path: Sequence[Sequence[int]], actions: Sequence[Action | None] = ()) -> int | None:
        """Where in the log the recording walked `path` (steps, each a set of states): the position of
        its first hop, choosing the observation whose continuation follows `path` furthest — and of
        those, the one that took more of the recorded `actions` (step i's, when given: two menu items
        can lead to the same screen); None when the first hop was never observed.

        Where a recording was made matters: a replay reset at that moment (`ReplayDevice.reset`) has
        the hidden state the recording had — the data created before it — as a phone restored to
        that moment would.
        """
        steps = [set(states) for states in path]
        if len(steps) < 2:
            return None
        wanted = [_identity(a) if a is not None else None for a in actions]

        def took(step: int, edge_id: int) -> int:
            return int(step < len(wanted) and wanted[step] is not None
                       and _identity(self.edges_by_id[edge_id].action) == wanted[step])

        best, best_pos = (0, 0), None
        for pos, edge_id in enumerate(self.log):
            source, target = self._hops[edge_id]
            if source not in steps[0] or target not in steps[1]:
                continue
            step, same = 1, took(0, edge_id)
            for later in self.log[pos + 1:]:
                if step + 1 >= len(steps):
                    break
                a, b = self._hops[later]
                if a in steps[step] and b in steps[step + 1]:
                    same += took(step, later)
                    step += 1
                elif step + 2 < len(steps) and a in steps[step + 1] and b in steps[step + 2]:
                    same += took(step + 1, later)  # the step between went unlogged (DroidBot missed its event)
                    step += 2
                elif a not in steps[step] or b not in steps[step]:
                    break  # the recording went elsewhere
            if (step, same) > best:
                best, best_pos = (step, same), pos
        return best_pos

    def siblings(self, state: int) -> list[int]:
        """Other states of the same structure (same screen, other content)."""
        return [s for s in self._by_key.get(self.keys.get(state, ""), []) if s != state]


class ReplayDevice:
    """The Device protocol over a RecordedApp."""

    # Other screens show what was recorded, not what a run did there: a verdict cannot go and check them.
    keeps_state = False

    def __init__(self, app: RecordedApp, *, serial: str = "replay-1", screenshots: bool = True,
                 start: int | None = None) -> None:
        if not app.states:
            raise ValueError("a recorded app with no states cannot be replayed; import a recording first")
        self.app = app
        self.serial = serial
        self.screenshots = screenshots
        self._state: int | None = None  # None: the launcher (we left the app)
        self._screen: Screen | None = None
        self._stack: list[tuple[int, Screen]] = []
        self._focus: Widget | None = None
        self._trail: list[int] = []  # recorded edges followed since the last launch/reset
        self._cursor: int | None = None  # the log position being re-enacted (see `reset`)
        self._turns: Counter[tuple[int, str]] = Counter()  # unrecorded texts typed per (state, field)
        self.unrecorded_taps = 0  # taps (and long taps) nobody recorded: they did nothing
        self.reset(start if start is not None else app.launch[0])

    # --- Device protocol ----------------------------------------------------------------------

    @property
    def state(self) -> int | None:
        """The recorded state the device shows (None on the launcher)."""
        return self._state

    def reset(self, state: int, *, at: int | None = None) -> None:
        """Put the device on a recorded state, with an empty back stack.

        `at` (a log position, from `RecordedApp.moment`) restores the moment of the recording:
        while the actions taken are the ones recorded from there, the recorded outcomes follow,
        and the history before it decides between outcomes after that, as hidden state would.
        """
        if state not in self.app.states:
            raise KeyError(f"state {state} is not in the recording")
        self._go(state, push=False)
        self._stack.clear()
        self._trail[:] = [] if at is None else self.app.log[max(0, at - CONTEXT):at]
        self._cursor = at

    def snapshot(self) -> Screen:
        screen = self._screen if self._screen is not None else _launcher(self.app)
        if self.screenshots and screen.screenshot is None:
            screen = replace(screen, screenshot=render_png(screen.root, width=screen.width, height=screen.height))
        return screen

    def perform(self, action: Action) -> None:
        kind = action.kind
        if kind is ActionKind.BACK:
            self.press_back()
        elif kind is ActionKind.LAUNCH:
            self.launch(action.app)
        elif kind is ActionKind.SCROLL:
            if not self._follow(action, None) and self._state is not None:
                below = self.app.scrolled(self._state, action.direction or "down")
                if below is not None:  # the page as the recording saw it scrolled; no new back step
                    self._go(below, push=False)
        else:
            assert action.target is not None
            try:
                widget = locate(action.target, self.snapshot(), serial=self.serial)
            except SelectorNotFound:
                if kind is not ActionKind.TYPE:
                    self.unrecorded_taps += 1
                return  # a finger tapping where nothing is: nothing happens
            x, y = widget.bounds.center
            if kind is ActionKind.TYPE:
                self._focus = widget
                self.type_text(action.text)
            elif kind is ActionKind.LONG_TAP:
                self.long_tap(x, y)
            else:
                self.tap(x, y)

    def current_app(self) -> tuple[str, str]:
        screen = self.snapshot()
        return screen.package, screen.activity

    def launch(self, app: str = "") -> None:
        self._stack.clear()
        self._trail.clear()
        self._cursor = None
        self._go(self.app.launch[0], push=False)

    def stop_app(self, package: str = "") -> None:
        self._stack.clear()
        self._state, self._screen, self._focus = None, None, None

    def info(self) -> DeviceInfo:
        screen = self.snapshot()
        return DeviceInfo(serial=self.serial, model="appatlas replay", width=screen.width, height=screen.height)

    # --- low level, as a finger and keys -----------------------------------------------------------

    def tap(self, x: int, y: int) -> None:
        self._touch(x, y, ActionKind.TAP)

    def long_tap(self, x: int, y: int) -> None:
        self._touch(x, y, ActionKind.LONG_TAP)

    def type_text(self, text: str) -> None:
        """Type into the focused field (a tapped input, or the target of a type action)."""
        if self._focus is None or self._screen is None:
            return
        if self._follow(Action(ActionKind.TYPE, target=_any_target(self._focus), text=text), self._focus,
                        typed=text):
            return
        self._screen = with_field_text(self._screen, self._focus, text)  # unrecorded typing still shows on screen
        self._focus = next((w for w in self._screen.widgets() if w.bounds == self._focus.bounds
                            and w.class_name == self._focus.class_name), None)

    def press_back(self) -> None:
        if self._state is None:
            return
        if self._follow(Action(ActionKind.BACK), None):
            return
        if self._stack:
            self._state, self._screen = self._stack.pop()
            self._focus = None
        else:
            self.stop_app()

    # --- internals ---------------------------------------------------------------------------------

    def _go(self, state: int, *, push: bool, screen: Screen | None = None) -> None:
        if push and self._state is not None and self._screen is not None and state != self._state:
            self._stack.append((self._state, self._screen))
        self._state = state
        self._screen = screen if screen is not None else self.app.states[state]
        self._focus = None

    def _touch(self, x: int, y: int, kind: ActionKind) -> None:
        if self._screen is None:
            hit = _launcher(self.app).widget_at(x, y)
            if hit is not None and hit.clickable:  # the app's icon on the launcher
                self.launch()
            return
        hit = self._screen.widget_at(x, y)
        if hit is None:
            self.unrecorded_taps += 1
            return
        if self._follow(Action(kind, target=_any_target(hit)), hit):
            return
        if hit.editable:
            self._focus = hit
        else:
            self.unrecorded_taps += 1

    def _follow(self, action: Action, hit: Widget | None, *, typed: str = "") -> bool:
        """Move along the recorded edge for `action` (aimed at `hit`); False if none was recorded."""
        if self._state is None or self._screen is None:
            return False
        states = [(self._state, True)] + [(s, True) for s in self.app.siblings(self._state)]
        # The same page at another scroll position has the same views (found by ids and text): the
        # same outcome, whichever position the recording tapped it from.
        states += [(s, False) for s in sorted(self.app.same_page(self._state) - {self._state})]
        recorded = self._recorded_next()
        if recorded is not None and recorded.source != self._state and recorded.source in self.app.same_page(self._state):
            # Re-enacting a recording whose next action was taken further along this page: the same
            # view (found by its ids and text, not where it was), so the same outcome — a person
            # scrolls less or more before the same tap.
            states.insert(0, (recorded.source, False))
        for state, by_place in states:
            matches = self._matches(state, action, hit, typed, by_place=by_place)
            if matches:
                edge = max(matches, key=lambda e: (self.app.context_match(e, self._trail), e.count))
                if self._cursor is not None:  # re-enacting a recording: its next edge, while we follow it
                    if recorded is not None and any(e.id == recorded.id for e in matches):
                        edge = recorded
                        self._cursor += 1
                    elif not self.app.logged(edge) and recorded is not None and \
                            recorded.source in self.app.same_page(edge.target):
                        pass  # a step the log missed, and the recording goes on from where it leads
                    else:
                        self._cursor = None
                if action.kind is ActionKind.TYPE and all(e.action.text != typed for e in matches):
                    # Text nobody recorded: each new attempt takes the next recorded outcome, as
                    # different input on a phone can lead to different data and screens.
                    turn = self._turns[(state, _spot(hit))]
                    self._turns[(state, _spot(hit))] += 1
                    edge = sorted(matches, key=lambda e: -e.count)[turn % len(matches)]
                self._trail.append(edge.id)
                target = self.app.states[edge.target]
                if edge.action.kind is ActionKind.TYPE and edge.action.text and typed != edge.action.text:
                    target = _retype(target, edge.action.text, typed)
                if action.kind is ActionKind.BACK:
                    if self._stack and self._stack[-1][0] == edge.target:
                        self._stack.pop()
                    self._go(edge.target, push=False, screen=target)
                else:
                    self._go(edge.target, push=True, screen=target)
                return True
        return False

    def _recorded_next(self) -> RecordedEdge | None:
        """The recording's next edge while one is re-enacted (`reset(..., at=)`), else None."""
        if self._cursor is None or self._cursor >= len(self.app.log):
            return None
        return self.app.edges_by_id[self.app.log[self._cursor]]

    def _matches(self, state: int, action: Action, hit: Widget | None, typed: str, *,
                 by_place: bool = True) -> list[RecordedEdge]:
        """The edges recorded from `state` for this action on this widget, best first (`by_place`: a
        recorded widget may also be found by its position on the screen)."""
        path = _path_to(self._screen.root, hit) if (hit is not None and self._screen is not None) else []
        receiver = _receiver(path)
        found: list[RecordedEdge] = []
        for edge in self.app.edges_from(state):
            if edge.action.kind is not action.kind:
                continue
            if hit is None:
                if action.kind is ActionKind.SCROLL and edge.action.direction != action.direction:
                    continue
                found.append(edge)
                continue
            assert edge.action.target is not None and self._screen is not None
            try:
                target = edge.action.target if by_place else replace(edge.action.target, bounds=None)
                recorded = locate(target, self._screen)
            except SelectorNotFound:
                continue
            # The recording names the clickable row and the finger hit a label inside it, or both
            # name parts (icon, label) of one clickable tab: on a phone the same view gets the click.
            if edge.action.kind is not ActionKind.TYPE and _another_row(edge.action.target, recorded, self._screen):
                continue  # the recorded row is not on this page: a row sharing its id is another item
            if (any(recorded is w for w in path)
                    or (recorded.bounds == hit.bounds and recorded.class_name == hit.class_name)
                    or (receiver is not None and receiver is _receiver(_path_to(self._screen.root, recorded)))):
                found.append(edge)
        if action.kind is ActionKind.TYPE:  # the recording of this very text wins over retyping another
            exact = [e for e in found if e.action.text == typed]
            found = exact or found
        return found


def _another_row(target: Selector, found: Widget, screen: Screen) -> bool:
    """Whether `found` (located for a recorded `target`) is a sibling row rather than the recorded
    widget: its text or description differs from the recorded one while other widgets on the screen
    share its id (rows of a list). A lone widget whose label changed (a clock) is still itself."""
    if not ((target.text and found.text != target.text)
            or (target.content_desc and found.content_desc != target.content_desc)):
        return False
    same = [w for w in screen.widgets() if w.class_name == found.class_name and w.resource_id == found.resource_id]
    return len(same) > 1


def _identity(action: Action) -> tuple[str, str, str, str]:
    # Action.key leaves out the text of a widget with an id, and menu items share their id.
    return action.kind.value, action.key, action.target.text if action.target else "", action.text


def _any_target(w: Widget) -> Selector:
    return Selector(resource_id=w.resource_id, text=w.text, content_desc=w.content_desc,
                    class_name=w.class_name, bounds=w.bounds)


def _spot(w: Widget | None) -> str:
    return "" if w is None else f"{w.class_name}|{w.resource_id}|{w.bounds}"


def _receiver(path: list[Widget]) -> Widget | None:
    """The view that gets a touch at the end of `path`: the deepest clickable one on it."""
    return next((w for w in reversed(path) if w.clickable or w.long_clickable or w.checkable), None)


def _path_to(root: Widget, target: Widget) -> list[Widget]:
    """Root-to-target chain of widgets (identity), or [] when target is not in the tree."""
    stack: list[tuple[Widget, list[Widget]]] = [(root, [root])]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        stack.extend((c, [*path, c]) for c in node.children)
    return []


def _map_tree(w: Widget, fn: Callable[[Widget], Widget]) -> Widget:
    return fn(replace(w, children=tuple(_map_tree(c, fn) for c in w.children)) if w.children else w)


def _retype(screen: Screen, recorded: str, typed: str) -> Screen:
    root = _map_tree(screen.root, lambda w: w.with_text(w.text.replace(recorded, typed)) if recorded in w.text else w)
    return replace(screen, root=root, screenshot=None)


def with_field_text(screen: Screen, field: Widget, text: str) -> Screen:
    """`screen` with the text field at `field`'s place holding `text` (what was typed there)."""
    root = _map_tree(screen.root, lambda w: w.with_text(text)
                     if w.bounds == field.bounds and w.class_name == field.class_name and w.editable else w)
    return replace(screen, root=root, screenshot=None)


def _launcher(app: RecordedApp) -> Screen:
    first = app.states[app.launch[0]]
    w, h = first.width or 1080, first.height or 1920
    icon = Widget(class_name="android.widget.TextView", bounds=Bounds(40, 200, 280, 440), text=app.package,
                  content_desc=app.package, package=LAUNCHER, clickable=True)
    root = Widget(class_name="hierarchy", bounds=Bounds(0, 0, w, h), children=(
        Widget(class_name="android.widget.FrameLayout", bounds=Bounds(0, 0, w, h), package=LAUNCHER,
               children=(icon,)),))
    return Screen(package=LAUNCHER, activity=f"{LAUNCHER}.Launcher", root=root, width=w, height=h)
