"""The end oracle's first half: an intent realised by what was acted on."""

from __future__ import annotations

from appatlas.agent.knowledge import Knowledge
from appatlas.agent.oracle import AppWords, realised
from appatlas.agent.progress import Progress, Taken
from appatlas.rag.intent import parse_intent
from appatlas.types import ActionKind, Bounds, Screen, Widget


def test_the_parts_of_a_compound_package_word_are_the_apps_name() -> None:
    words = AppWords({"com", "simplemobiletool", "musicplayer"})
    assert "music" in words and "Player" in words and "play" not in words and "song" not in words


def _screen(*labels: str) -> Screen:
    kids = tuple(Widget("android.widget.Button", Bounds(0, 200 * i, 1080, 200 * i + 150), text=t, clickable=True,
                        package="com.x") for i, t in enumerate(labels))
    return Screen("com.x", "com.x.Main", Widget("hierarchy", Bounds(0, 0, 1080, 2280), children=kids), 1080, 2280)


def _realised(intent: str, acted: list[str], screen: Screen) -> str:
    k = Knowledge.build(package="com.x", screens={}, state_key={}, content={}, transitions=[], tasks=[])
    history = [Taken(ActionKind.TAP, label=a, title=a, changed=True) for a in acted]
    return realised(parse_intent(intent), Progress(parse_intent(intent), history), screen, k,
                    app_words=AppWords({"com", "x"}), weight=k.weight, finish=0.65)


def test_each_clause_must_be_acted_on() -> None:
    screen = _screen("Sort by", "Date created")
    assert not _realised("create a checklist and sort the items by date", ["Create checklist"], screen)
    assert _realised("create a checklist and sort the items by date", ["Create checklist", "Sort by", "Date"], screen)


def test_a_value_to_type_that_no_field_holds_keeps_the_intent_open() -> None:
    assert not _realised("create a note called 'Groceries'", ["Create note"], _screen("Create note"))


def test_what_a_named_value_is_made_as_must_be_acted_on() -> None:
    # "a new task called 'X'": typing X into a checklist's form makes no task, though "add" and "new" were acted on
    history = [Taken(ActionKind.TAP, label="New note", title="New note"), Taken(ActionKind.TAP, label="Add item"),
               Taken(ActionKind.TYPE, label="Add an item", text="Call the bank", changed=True)]
    intent = parse_intent("add a new task called 'Call the bank'")
    k = Knowledge.build(package="com.x", screens={}, state_key={}, content={}, transitions=[], tasks=[])
    assert not realised(intent, Progress(intent, history), _screen("Save", "Tasks"), k, app_words=AppWords({"com", "x"}),
                        weight=k.weight, finish=0.65)
    history[0] = Taken(ActionKind.TAP, label="New task", title="New task")
    assert realised(intent, Progress(intent, history), _screen("Save", "Tasks"), k, app_words=AppWords({"com", "x"}),
                    weight=k.weight, finish=0.65)
