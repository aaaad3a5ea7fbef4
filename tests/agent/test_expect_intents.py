"""What an intent must leave true, derived from the intent and the atlas's screens (rag.expect) for the
kinds of intent testers write: "change X to Y", "set X to Y", "sort by X", "turn on/off X", "show X",
"open X", "create …" — and how those expectations are read off a screen (graph.expectations)."""

from __future__ import annotations

import pytest

from appatlas.graph.atlas import Atlas
from appatlas.graph.expectations import check_screen, count_shown, find_toggle, reads
from appatlas.graph.fingerprint import structure_key
from appatlas.rag.expect import derive_expectations
from appatlas.rag.views import AtlasViews, atlas_views
from appatlas.types import Action, ActionKind, Bounds, Screen, Selector, Step, TestCase, Widget

PKG = "com.x"


def _w(cls: str, top: int, *, text: str = "", rid: str = "", children: tuple[Widget, ...] = (), **flags: bool) -> Widget:
    return Widget(class_name=f"android.widget.{cls}", bounds=Bounds(0, top, 1000, top + 100), text=text,
                  resource_id=f"{PKG}:id/{rid}" if rid else "", package=PKG, children=children, **flags)


def _screen(activity: str, *widgets: Widget, dialog: bool = False) -> Screen:
    box = Bounds(100, 400, 900, 1400) if dialog else Bounds(0, 0, 1000, 2000)
    window = Widget(class_name="android.widget.FrameLayout", bounds=box, package=PKG, children=widgets)
    return Screen(package=PKG, activity=f"{PKG}.{activity}", width=1000, height=2000,
                  root=Widget(class_name="hierarchy", bounds=Bounds(0, 0, 1000, 2000), children=(window,)))


def _title(text: str, *, dialog: bool = False) -> Widget:
    return _w("TextView", 0, text=text, rid="alertTitle" if dialog else "toolbar_title")


def _row(top: int, title: str, value: str = "", *, rid: str = "row") -> Widget:
    texts = (_w("TextView", top, text=title),) + ((_w("TextView", top + 50, text=value),) if value else ())
    return _w("LinearLayout", top, rid=rid, children=texts, clickable=True)


def _switch_row(top: int, title: str, *, on: bool) -> Widget:
    return _w("LinearLayout", top, rid="toggle_row", clickable=True, children=(
        _w("TextView", top, text=title), _w("Switch", top, rid="toggle", checkable=True, checked=on)))


def _radio(top: int, text: str, *, on: bool = False) -> Widget:
    return _w("RadioButton", top, text=text, rid="choice", checkable=True, checked=on, clickable=True)


def _tap(text: str) -> Action:
    return Action(ActionKind.TAP, target=Selector(text=text))


HOME = _screen("Main", _title("Notes"), _w("ImageButton", 100, rid="settings", text="Settings", clickable=True),
               _w("ImageButton", 200, rid="sort", text="Sort by", clickable=True),
               _w("ImageButton", 300, rid="new", text="New note", clickable=True),
               _w("RecyclerView", 400, rid="list", scrollable=True, children=(
                   _row(400, "Diary", "2023.6.10 Sunny", rid="note"), _row(500, "Groceries", "Milk", rid="note"))))
SETTINGS = _screen("SettingsActivity", _title("Settings"),
                   _row(100, "Alignment", "Left"), _row(200, "Snooze time", "10 minutes"), _row(300, "Theme"),
                   _w("CheckBox", 400, text="Show phone numbers", checkable=True),
                   _w("CheckBox", 500, text="Show only contacts with phone numbers", checkable=True),
                   _w("Switch", 600, text="CalDAV sync OFF", rid="caldav", checkable=True),
                   _switch_row(700, "Autosave notes", on=True), _w("CheckBox", 800, text="Sound", checkable=True),
                   _w("CheckBox", 900, text="Images", checkable=True, checked=True))
THEME = _screen("SettingsActivity", _title("Theme", dialog=True), _radio(500, "Light"), _radio(600, "Dark", on=True),
                dialog=True)
SORT = _screen("Main", _title("Sort by", dialog=True), _radio(500, "Title", on=True), _radio(600, "Date created"),
               _radio(700, "Ascending", on=True), _radio(800, "Descending"),
               _w("Button", 900, text="OK", rid="ok", clickable=True), dialog=True)
FORM = _screen("EditActivity", _title("New note"), _w("EditText", 100, rid="title", editable=True),
               _w("Button", 200, text="Save", rid="save", clickable=True))
MONTH = _screen("MonthActivity", _title("July"), _w("ImageButton", 100, rid="new_event", text="New event", clickable=True),
                _w("GridView", 200, rid="days", scrollable=True, children=tuple(
                    _row(200 + 60 * d, str(d), rid="day") for d in range(1, 8))))
EVENT = _screen("EventActivity", _title("New event"), _w("EditText", 100, rid="event_title", editable=True),
                _w("Button", 200, text="Save", rid="event_save", clickable=True))
SAVED = _screen("SavedActivity", _title("Saved"), _w("TextView", 100, text="Your note is saved."),
                _w("Button", 200, text="Back to notes", rid="done", clickable=True))
SCREENS = {"home": HOME, "settings": SETTINGS, "theme": THEME, "sort": SORT, "form": FORM, "month": MONTH,
           "event": EVENT, "saved": SAVED}
KEY = {name: structure_key(s) for name, s in SCREENS.items()}


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> AtlasViews:
    with Atlas.create(tmp_path_factory.mktemp("x") / "x.atlas", app=PKG) as atlas:
        s = {name: atlas.add_state(screen) for name, screen in SCREENS.items()}
        for a, label, b in (("home", "Settings", "settings"), ("home", "Sort by", "sort"), ("home", "New note", "form"),
                            ("settings", "Theme", "theme"), ("form", "Save", "home"), ("month", "New event", "event"),
                            ("sort", "OK", "home"),
                            ("event", "Save", "month")):
            atlas.add_transition(s[a], _tap(label), s[b])
        return atlas_views(atlas)


def _derive(views: AtlasViews, intent: str, test: TestCase | None = None):  # noqa: ANN202
    return derive_expectations(views, intent, test or TestCase(name="t", intent=intent, start=KEY["home"], steps=()))


def test_change_x_to_y_expects_the_row_of_x_to_read_y_newly(views: AtlasViews) -> None:
    (e,) = _derive(views, "change the alignment to center")
    assert (e.kind, e.text, e.where, e.new) == ("shown", "center", KEY["settings"], True)
    (e,) = _derive(views, "Set the snooze time to 5 minute")
    assert (e.text, e.where, e.new) == ("5 minute", KEY["settings"], True)


def test_a_value_no_row_shows_is_the_choice_checked_in_the_dialog_that_offers_it(views: AtlasViews) -> None:
    e, kept = _derive(views, "set app theme to light and save it")
    assert (e.kind, e.text, e.where) == ("checked", "Light", KEY["theme"])
    # "and save it": the choice is kept only when its screen is left, back to what opened it
    assert (kept.kind, kept.where) == ("screen", KEY["settings"])
    (e,) = _derive(views, "set app theme to light")
    assert e.kind == "checked"


def test_a_switch_is_named_without_the_state_word_its_label_carries(views: AtlasViews) -> None:
    (e,) = _derive(views, "disable CalDAV sync")
    assert (e.kind, e.text, e.where) == ("unchecked", "CalDAV sync", KEY["settings"])
    (e,) = _derive(views, "turn off autosave notes")
    assert (e.kind, e.text) == ("unchecked", "Autosave notes")
    # "show X" switches the option that says exactly that, not the longer one sharing its words
    (e,) = _derive(views, "show phone numbers in the list view")
    assert (e.kind, e.text) == ("checked", "Show phone numbers")


def test_sort_by_expects_the_option_and_the_order_checked_and_kept_with_ok(views: AtlasViews) -> None:
    got = _derive(views, "Sort notes based on date created in descending order")
    assert {(e.kind, e.text, e.where) for e in got} == {("checked", "Date created", KEY["sort"]),
                                                       ("checked", "Descending", KEY["sort"]),
                                                       ("screen", "", KEY["home"])}  # the dialog closed with OK


def test_sort_by_expects_the_choice_named_most_fully_not_the_first_dialog_sharing_a_word(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    # a dialog of shown tabs offers 'Notes', the word naming what is sorted; it comes before the Sort dialog
    tabs = _screen("SettingsActivity", _title("Shown tabs", dialog=True),
                   _w("CheckBox", 500, text="Notes", rid="tab", checkable=True, checked=True),
                   _w("CheckBox", 600, text="Folders", rid="tab", checkable=True), dialog=True)
    with Atlas.create(tmp_path_factory.mktemp("tabs") / "x.atlas", app=PKG) as atlas:
        s = {name: atlas.add_state(screen) for name, screen in (("home", HOME), ("settings", SETTINGS),
                                                                 ("tabs", tabs), ("sort", SORT))}
        for a, label, b in (("home", "Settings", "settings"), ("settings", "Shown tabs", "tabs"),
                            ("home", "Sort by", "sort"), ("sort", "OK", "home")):
            atlas.add_transition(s[a], _tap(label), s[b])
        tab_views = atlas_views(atlas)
    got = {(e.kind, e.text) for e in _derive(tab_views, "Sort notes based on date created in descending order")}
    assert ("checked", "Date created") in got and ("checked", "Descending") in got
    assert ("checked", "Notes") not in got


def test_one_word_names_a_switch_only_right_after_a_switching_verb(views: AtlasViews) -> None:
    (e,) = _derive(views, "turn on sound")
    assert (e.kind, e.text) == ("checked", "Sound")
    assert not [e for e in _derive(views, "Do not display GIF images") if e.text == "Images"]


def test_a_screen_is_expected_open_only_when_opening_it_is_the_last_thing_to_do(views: AtlasViews) -> None:
    (e,) = _derive(views, "open the settings")
    assert (e.kind, e.where) == ("screen", KEY["settings"])
    assert _derive(views, "open the settings and call 911") == ()


def _creating(start: str, opener: str, form: str, field: str, save: str, value: str) -> TestCase:
    steps = (Step(_tap(opener), KEY[form]),
             Step(Action(ActionKind.TYPE, target=Selector(resource_id=f"{PKG}:id/{field}"), text=value), KEY[form]),
             Step(_tap("Save"), KEY[save]))
    return TestCase(name="t", intent="", start=KEY[start], steps=steps, end=KEY[save])


def test_a_created_name_is_looked_for_in_a_list_of_names_whole_not_in_a_grid_of_days(views: AtlasViews) -> None:
    intent = "Create a new contact Stephen Bob, mobile number 12345678900"
    (e,) = _derive(views, intent, _creating("home", "New note", "form", "title", "home", "Stephen"))
    assert (e.kind, e.text, e.where, e.new) == ("shown", "Stephen Bob", KEY["home"], True)
    # a month view's rows are days: an event named 'laundry' is not shown there, so nothing is claimed
    event = _creating("month", "New event", "event", "event_title", "month", "laundry")
    assert _derive(views, "create a new event, the task is 'laundry', save it", event) == ()


def test_a_value_reads_with_another_word_ending_but_never_cut_short() -> None:
    assert reads("5 minutes", "5 minute") and reads("30 minutes", "30 min") and reads("Center", "center")
    assert not reads("Groc", "Groceries") and not reads("Groceries list", "Groceries") and not reads("15", "1")
    assert count_shown(SETTINGS, "10 minute") == 1


def test_a_switch_whose_label_carries_its_state_is_found_after_it_flips() -> None:
    on = _screen("SettingsActivity", _w("Switch", 600, text="CalDAV sync ON", rid="caldav", checkable=True,
                                        checked=True))
    assert find_toggle(on, "CalDAV sync") is not None
    from appatlas.types import Expectation

    check = check_screen([Expectation("checked", "CalDAV sync", where=structure_key(on))], on,
                         here={structure_key(on)})
    assert [c.holds for c in check] == [True, True]


def test_with_no_list_before_the_form_the_name_is_expected_on_the_page_saving_leads_to(views: AtlasViews) -> None:
    """(`appatlas demo --web`: New note -> Save -> a Saved page that shows the title.) That page is first seen
    at the end, so "one more than the run first saw" cannot apply: the name shown there is the evidence."""
    (e,) = _derive(views, "create a text note named 'Weekend plans'",
                   _creating("form", "New note", "form", "title", "saved", "Weekend plans"))
    assert (e.kind, e.text, e.where, e.new) == ("shown", "Weekend plans", KEY["saved"], False)


NOTE_DIALOG = _screen("Main", _title("New note", dialog=True), _w("EditText", 500, rid="name", editable=True),
                      _w("Button", 600, text="OK", rid="ok", clickable=True), dialog=True)


def _tabs(*texts: str) -> tuple[Widget, ...]:
    return (_w("LinearLayout", 100, rid="tabs", children=tuple(_w("TextView", 100, text=t) for t in texts)),)


def _notes_main(*shown: Widget) -> Screen:
    return _screen("Main", *shown, _w("ImageButton", 900, rid="new_note", text="Create a new note", clickable=True))


def _observed(path, *observed: tuple[Widget, ...]) -> tuple[AtlasViews, str]:  # noqa: ANN001 - a tmp path
    """Views of an atlas that saw the notes' main screen once per `observed` (what it showed each time), and its
    'Create a new note' dialog whose OK returns there; and that screen's key."""
    start = _notes_main(*observed[0])
    with Atlas.create(path, app=PKG) as atlas:
        a, b = atlas.add_state(start), atlas.add_state(NOTE_DIALOG)
        for shown in observed[1:]:
            atlas.add_state(_notes_main(*shown))
        atlas.add_transition(a, _tap("Create a new note"), b)
        atlas.add_transition(b, _tap("OK"), a)
        return atlas_views(atlas), structure_key(start)


def test_a_name_saved_from_a_dialog_is_expected_back_where_it_began_only_if_that_screen_lists_names(tmp_path) -> None:
    """(A notes app: 'Create a new note' opens a dialog whose OK returns to the strip of note tabs, the same screen.)
    Names side by side as views of one kind, which the atlas saw change, list named things: the new name is
    expected there. A tab bar every observation shows alike, a row of numbers, or a toolbar's title above a
    month's name lists none."""

    def derived(name: str, *observed: tuple[Widget, ...]):  # noqa: ANN202 - each observation of the start screen
        views, home = _observed(tmp_path / f"{name}.atlas", *observed)
        form = structure_key(NOTE_DIALOG)
        steps = (Step(_tap("Create a new note"), form),
                 Step(Action(ActionKind.TYPE, target=Selector(resource_id=f"{PKG}:id/name"), text="Trip"), form),
                 Step(_tap("OK"), home))
        return derive_expectations(views, "create a note named 'Trip'",
                                   TestCase(name="t", intent="", start=home, steps=steps, end=home)), home

    (e,), home = derived("tabs", _tabs("Packing list", "Recipes"), _tabs("Recipes", "Groceries"))
    assert (e.kind, e.text, e.where, e.new) == ("shown", "Trip", home, False)
    assert derived("bar", _tabs("Alarms", "Timers"), _tabs("Alarms", "Timers"))[0] == ()  # chrome, not content
    assert derived("numbers", _tabs("12", "13", "14"), _tabs("15", "16", "17"))[0] == ()
    month = (_w("LinearLayout", 0, rid="toolbar", children=(_w("TextView", 0, text="Calendar"),)),
             _w("LinearLayout", 100, rid="header", children=(_w("TextView", 100, text="July"),)))
    assert derived("month", month, (*month[:1], _w("LinearLayout", 100, rid="header", children=(
        _w("TextView", 100, text="August"),))))[0] == ()


def test_a_value_changed_from_one_to_another_is_expected_newly_where_saving_leads(views: AtlasViews) -> None:
    steps = (Step(_tap("New note"), KEY["form"]),
             Step(Action(ActionKind.TYPE, target=Selector(resource_id=f"{PKG}:id/title"), text="Journal"), KEY["form"]),
             Step(_tap("Save"), KEY["saved"]))
    test = TestCase(name="t", intent="", start=KEY["home"], steps=steps, end=KEY["saved"])
    (e,) = derive_expectations(views, "change the note's title from 'Diary' to 'Journal'", test)
    assert (e.kind, e.text, e.where, e.new) == ("shown", "Journal", KEY["saved"], True)


def test_a_changed_value_typed_last_and_never_saved_has_nowhere_to_be_expected(views: AtlasViews) -> None:
    steps = (Step(_tap("New note"), KEY["form"]),
             Step(Action(ActionKind.TYPE, target=Selector(resource_id=f"{PKG}:id/title"), text="Journal"), KEY["form"]))
    test = TestCase(name="t", intent="", start=KEY["home"], steps=steps, end=KEY["form"])
    assert derive_expectations(views, "change the note's title from 'Diary' to 'Journal'", test) == ()


def test_deleting_a_named_thing_a_screen_lists_expects_it_gone_from_there(tmp_path) -> None:
    """"Delete the note 'Recipes'" where the notes are tabs, not list rows: it is expected gone from the tabs; a tab
    bar every observation shows alike names no thing to delete."""
    views, home = _observed(tmp_path / "tabs.atlas", _tabs("Packing list", "Recipes"), _tabs("Recipes", "Groceries"))
    (e,) = derive_expectations(views, "Delete the note 'Recipes'", TestCase(name="t", intent="", start=home, steps=()))
    assert (e.kind, e.text, e.where) == ("gone", "Recipes", home)
    bar, home = _observed(tmp_path / "bar.atlas", _tabs("Alarms", "Timers"), _tabs("Alarms", "Timers"))
    assert derive_expectations(bar, "Delete the 'Timers'", TestCase(name="t", intent="", start=home, steps=())) == ()


def test_an_intent_of_several_acts_is_checked_whole_or_not_at_all(views: AtlasViews) -> None:
    """A verdict on the first act alone would pass a run that skipped the rest: when a later act implies
    nothing checkable, nothing is claimed; when each act does, all of it is expected."""
    create = _creating("home", "New note", "form", "title", "home", "test")
    assert _derive(views, "create a note named 'test' and type '123456'", create) == ()
    both = _derive(views, "create a note named 'test' and sort the notes by date created", create)
    assert {(e.kind, e.text) for e in both} >= {("shown", "test"), ("checked", "Date created")}


def test_sort_by_title_keeps_the_word_title_though_titled_names_a_value(views: AtlasViews) -> None:
    got = {(e.kind, e.text) for e in _derive(views, "Sort notes by title in descending order")}
    assert {("checked", "Title"), ("checked", "Descending")} <= got


@pytest.fixture(scope="module")
def choice_views(tmp_path_factory: pytest.TempPathFactory) -> AtlasViews:
    """A menu whose 'Column count' and 'Sleep timer' open untitled dialogs of choices that name their unit, and a
    list of people with short names."""
    menu = _screen("Main", _w("ListView", 100, rid="menu", children=(
        _row(100, "Column count", rid="item"), _row(200, "Sleep timer", rid="item"),
        _row(300, "Change view", rid="item"))), dialog=True)
    columns = _screen("Main", _radio(500, "1 column", on=True), _radio(600, "2 columns"), _radio(700, "3 columns"),
                      dialog=True)
    sleep = _screen("Main", _radio(500, "1 minute"), _radio(600, "5 minutes"),
                    _w("Button", 700, text="Custom", rid="custom", clickable=True), dialog=True)
    views = _screen("Main", *(_w("RadioButton", 500 + 100 * i, text=f"{t} view", rid="view_choice", checkable=True,
                                 checked=t == "Monthly", clickable=True)
                              for i, t in enumerate(("Daily", "Weekly", "Monthly", "Yearly"))), dialog=True)
    people = _screen("Contacts", _title("Contacts"), _w("RecyclerView", 400, rid="list", scrollable=True, children=(
        _row(400, "Bob", rid="contact"), _row(500, "Alice", rid="contact"))))
    with Atlas.create(tmp_path_factory.mktemp("choices") / "x.atlas", app=PKG) as atlas:
        s = {name: atlas.add_state(screen) for name, screen in (("home", HOME), ("menu", menu), ("columns", columns),
                                                                 ("sleep", sleep), ("people", people),
                                                                 ("views", views))}
        for a, label, b in (("home", "More options", "menu"), ("menu", "Column count", "columns"),
                            ("menu", "Change view", "views"),
                            ("menu", "Sleep timer", "sleep"), ("home", "Contacts", "people")):
            atlas.add_transition(s[a], _tap(label), s[b])
        return atlas_views(atlas)


def test_a_choice_that_names_the_value_with_its_unit_is_the_one_checked(choice_views: AtlasViews) -> None:
    columns = structure_key(next(v.example for v in choice_views.screens.values()
                                 if "3 columns" in v.example.texts))
    (e,) = _derive(choice_views, "Change column count to 3")
    assert (e.kind, e.text, e.where) == ("checked", "3 columns", columns)
    # a choice naming another value or another thing is not it
    assert not [e for e in _derive(choice_views, "Change column count to 4") if e.kind == "checked"]


def test_set_x_for_a_duration_expects_that_choice_checked(choice_views: AtlasViews) -> None:
    (e,) = _derive(choice_views, "set the sleep timer for five minutes")
    assert (e.kind, e.text) == ("checked", "5 minutes")


def test_deleting_a_short_name_the_intent_gives_expects_that_row_gone(choice_views: AtlasViews) -> None:
    (e,) = _derive(choice_views, "Delete contact Bob")
    assert (e.kind, e.text) == ("gone", "Bob")


def test_a_choice_is_expected_in_the_dialog_a_control_saying_the_intents_verb_and_x_opens(
        choice_views: AtlasViews) -> None:
    (e,) = _derive(choice_views, "change the view from monthly to yearly")
    assert (e.kind, e.text) == ("checked", "Yearly view")
