"""Look-ahead over the atlas: an option is worth what it leads to on average, and no detour earns credit."""

from __future__ import annotations

from appatlas.agent.knowledge import Knowledge
from appatlas.agent.lookahead import LookAhead
from appatlas.agent.options import BACK_OPTION, Option, options
from appatlas.graph.atlas import StoredTransition
from appatlas.rag.intent import parse_intent, words
from appatlas.types import Action, ActionKind, Bounds, Screen, Selector, Widget

W, H = 1080, 2280


def _screen(activity: str, *labels: str) -> Screen:
    rows = tuple(Widget("android.widget.TextView", Bounds(0, 100 * i, W, 100 * i + 90), text=t, clickable=True,
                        package="com.x", resource_id=f"com.x:id/{t.lower().replace(' ', '_')}")
                 for i, t in enumerate(labels))
    frame = Widget("android.widget.FrameLayout", Bounds(0, 0, W, H), package="com.x", children=rows)
    return Screen("com.x", activity, Widget("hierarchy", Bounds(0, 0, W, H), children=(frame,)), W, H)


def _tap(label: str) -> Action:
    return Action(ActionKind.TAP, target=Selector(resource_id=f"com.x:id/{label.lower().replace(' ', '_')}",
                                                  text=label))


SCREENS = {1: _screen("Main", "More options", "Notes"), 2: _screen("Main2", "More options", "Notes"),
           3: _screen("Menu", "Settings", "About"), 4: _screen("Settings", "Autosave notes"),
           5: _screen("Elsewhere", "Nothing here")}
KEYS = {1: "main", 2: "main2", 3: "menu", 4: "settings", 5: "elsewhere"}


def _knowledge(edges: list[tuple[int, Action, int, int]]) -> Knowledge:
    transitions = [StoredTransition(i, a, b, KEYS[a], KEYS[b], action, count, 0, "crawl")
                   for i, (a, action, b, count) in enumerate(edges)]
    return Knowledge.build(package="com.x", screens=SCREENS, state_key=KEYS, content={}, tasks=[],
                           transitions=transitions)


def _value(k: Knowledge, label: str | None) -> float:
    ahead = LookAhead(k, gamma=0.5, depth=3, slot_pick=6.0)
    o = BACK_OPTION if label is None else next(o for o in options(SCREENS[1]) if o.label == label)
    return ahead.value(o, "main", words("autosave"), [], been=set())


def test_an_option_that_led_to_several_screens_is_worth_their_average() -> None:
    to_settings = (3, _tap("Settings"), 4, 1)
    lucky = _knowledge([(1, Action(ActionKind.BACK), 3, 1), to_settings])
    mixed = _knowledge([(1, Action(ActionKind.BACK), 3, 1), (1, Action(ActionKind.BACK), 5, 3), to_settings])
    assert _value(mixed, None) == _value(lucky, None) / 4


def test_no_credit_for_a_detour_to_a_screen_another_option_reaches_directly() -> None:
    to_menu = (1, _tap("More options"), 3, 1)
    detour = [(1, _tap("Notes"), 2, 1), (2, _tap("More options"), 3, 1), (3, _tap("Settings"), 4, 1)]
    assert _value(_knowledge(detour), "Notes") > 0  # the menu is reached only through the other screen
    assert _value(_knowledge([to_menu, *detour]), "Notes") == 0  # "More options" here reaches it directly
    assert _value(_knowledge([to_menu, *detour]), "More options") > 0


def test_coverage_credits_every_word_one_path_names_not_only_its_best_label() -> None:
    k = _knowledge([(1, _tap("More options"), 3, 1), (3, _tap("Settings"), 4, 1)])
    ahead = LookAhead(k, gamma=0.5, depth=3, slot_pick=6.0)
    more = next(o for o in options(SCREENS[1]) if o.label == "More options")
    left = words("settings autosave")
    # 'Settings' on the menu and 'Autosave notes' on the page after it: one path names both words.
    assert ahead.coverage(more, "main", left, been=set()) == 1.0
    # No single label names both: the share of the best one alone is less.
    assert ahead.coverage(more, "main", left, been=set(), targets=[]) == 0.0  # leads nowhere known: nothing
    assert 0 < ahead.coverage(more, "main", words("settings autosave zebra"), been=set()) < 1.0


def _form(activity: str, field_id: str, held: str) -> Screen:
    field = Widget("android.widget.EditText", Bounds(0, 200, W, 290), text=held, editable=True, clickable=True,
                   package="com.x", resource_id=f"com.x:id/{field_id}")
    frame = Widget("android.widget.FrameLayout", Bounds(0, 0, W, H), package="com.x", children=(field,))
    return Screen("com.x", activity, Widget("hierarchy", Bounds(0, 0, W, H), children=(frame,)), W, H)


def test_the_form_whose_field_holds_the_old_value_leads_further_than_any_field_the_new_one_fits() -> None:
    screens = {1: _screen("Contact", "Edit", "Message"), 2: _form("Editor", "note_body", "Draft"),
               3: _form("Chat", "message_text", "")}
    keys = {1: "contact", 2: "editor", 3: "chat"}
    edges = [(1, _tap("Edit"), 2), (1, _tap("Message"), 3)]
    k = Knowledge.build(package="com.x", screens=screens, state_key=keys, content={}, tasks=[], transitions=[
        StoredTransition(i, a, b, keys[a], keys[b], action, 1, 0, "crawl") for i, (a, action, b) in enumerate(edges)])
    ahead = LookAhead(k, gamma=0.5, depth=3, slot_pick=6.0)
    edit, message = (next(o for o in options(screens[1]) if o.label == label) for label in ("Edit", "Message"))

    def value(text: str, o: Option) -> float:
        slots = [s for s in parse_intent(text).slots if s.role == "input"]
        return ahead.value(o, "contact", [], slots, been=set())

    changed = "change the text from 'Draft' to 'Final'"
    assert value(changed, edit) > value(changed, message) > 0
    typed = "type 'Final'"  # nothing replaced: any field the text fits is as good
    assert value(typed, edit) == value(typed, message) > 0
