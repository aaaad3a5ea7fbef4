"""Reading intents: slots, their roles, the wanted toggle state; and never crashing on any text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from appatlas.rag.intent import parse_intent, read_slots, same_term, stem
from appatlas.rag.slots import extract_slots, field_affinity
from appatlas.rag.text import CONFIRM_WORDS, KEEP_WORDS


def _slot(text: str, value: str):
    return next(s for s in parse_intent(text).slots if s.text == value)


def test_a_quoted_name_after_named_is_a_value_to_type() -> None:
    assert _slot("Create a text note named 'NewTextNote'", "NewTextNote").role == "input"


def test_a_quoted_item_after_a_noun_is_something_to_pick() -> None:
    assert _slot("Delete the note 'Diary'", "Diary").role == "select"


def test_an_email_is_a_value_to_type() -> None:
    assert _slot("open the archive with the email tester@example.com", "tester@example.com").kind == "email"


def test_a_number_after_its_cue_is_typed_and_remembers_the_words_before_it() -> None:
    slot = _slot("Create a new contact Stephen Bob, mobile number 12345678900", "12345678900")
    assert slot.role == "input" and "number" in slot.context


def test_capitalised_names_are_slots() -> None:
    assert _slot("Add the holidays of South Africa to the calendar", "South Africa").kind == "name"


def test_an_unquoted_file_name_is_typed_without_its_extension() -> None:
    assert _slot("export the events to test.ics under DCIM folder", "test.ics").typed == "test"


def test_disable_wants_off_and_enable_wants_on() -> None:
    assert parse_intent("disable autosave notes").wants == "off"
    assert parse_intent("turn on quiet hours").wants == "on"


def test_generic_verbs_and_slots_are_not_terms() -> None:
    assert parse_intent("Change the font size to 'Large'").terms == ("font", "size")


def test_stems_meet_across_endings() -> None:
    assert same_term(stem("closing"), stem("close")) and same_term(stem("notes"), stem("note"))


@given(st.text(max_size=200))
def test_any_text_parses_into_an_intent(text: str) -> None:
    intent = parse_intent(text)
    assert intent.text == text and all(s.text for s in intent.slots)


def test_from_a_to_b_types_b_and_a_keeps_the_words_that_describe_it() -> None:
    text = "Change Bob's mobile number from '222222' to '12345678900'"
    old, new = _slot(text, "222222"), _slot(text, "12345678900")
    assert new.role == "input" and old.cue == "from" and {"mobile", "number"} <= set(old.context)


def test_the_new_value_of_from_a_to_b_knows_the_old_one() -> None:
    text = "change the title from 'Draft' to 'Final'"
    assert _slot(text, "Final").replaces == "Draft" and _slot(text, "Draft").replaces == ""
    assert _slot("set the title to 'Final'", "Final").replaces == ""  # nothing is replaced by name


def test_texting_a_value_types_it() -> None:
    assert _slot("text to the group 'GatheringInTheOldPlace'", "GatheringInTheOldPlace").role == "input"
    assert _slot("Delete the text note 'Diary'", "Diary").role == "select"


def test_a_name_after_to_is_not_described_by_the_words_before_it() -> None:
    assert _slot("Send a text message to Bob", "Bob").context == ()


def test_a_number_remembers_its_unit_and_a_name_what_kind_of_thing_it_is() -> None:
    assert _slot("change alarm max reminder duration to 1 minute", "1").kind_word == "minute"
    assert _slot("Open DCIM folder in gallery app", "DCIM").kind_word == "folder"


def test_a_word_meets_its_noun_in_ion_but_short_words_do_not() -> None:
    assert same_term(stem("vibrate"), stem("vibration")) and same_term(stem("delete"), stem("deletion"))
    assert not same_term(stem("note"), stem("notion"))


def test_any_short_extension_makes_a_file_name_and_a_decimal_does_not() -> None:
    slots = parse_intent("Export the calendar as backup.flac then set volume to 1.5").slots
    assert [(s.text, s.kind) for s in slots] == [("backup.flac", "quoted"), ("1.5", "number")]
    assert slots[0].typed == "backup"


def test_a_number_word_remembers_its_unit() -> None:
    five = next(s for s in parse_intent("Display five images per row").slots if s.kind == "number")
    assert (five.text, five.kind_word) == ("5", "image")


# One reading for retrieval, the planner's expectations and the agent (rag.intent.read_slots; rag.slots is its part).

def test_an_email_is_one_value_not_a_file_name_inside_it() -> None:
    assert [s.text for s in parse_intent("open the archive with the email tester@example.com").slots] == [
        "tester@example.com"]


def test_a_value_the_intent_makes_is_typed_without_a_word_before_it_saying_so() -> None:
    # "is" / "of" / "it" are no cue words: the intent makes something, so its value is typed where a field asks
    for text, value in (("create a new event, the task is 'laundry', save it", "laundry"),
                        ("create an event of 'homework' and save it", "homework"),
                        ("create a folder and name it 'trip'", "trip")):
        assert _slot(text, value).made and _slot(text, value).role == "select"  # no word says which field
        assert next(s for s in extract_slots(text) if s.value == value).is_typed
    assert not _slot("Delete the text note 'Diary'", "Diary").made


def test_the_old_value_of_a_change_is_picked_even_after_a_typing_word() -> None:
    text = "change the event type 'regular event' to 'deadlines'"
    assert (_slot(text, "regular event").role, _slot(text, "deadlines").role) == ("select", "input")


def test_a_measure_in_an_intent_that_makes_something_is_picked_not_typed() -> None:
    assert not _slot("add a new timer of '5:00'", "5:00").is_typed


def test_never_wants_off_for_the_agent_as_for_the_planner() -> None:
    assert parse_intent("never show the clock seconds").wants == "off"


def test_a_typed_value_with_no_field_word_near_it_suits_a_name_or_title_field() -> None:
    laundry = next(s for s in extract_slots("create a new event, the task is 'laundry'") if s.value == "laundry")
    assert field_affinity(laundry, "title") > field_affinity(laundry, "location")


def test_a_confirming_button_that_keeps_a_choice_is_a_confirming_button() -> None:
    assert KEEP_WORDS < CONFIRM_WORDS


_VALUE = st.text(alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd"), max_codepoint=127),
                 min_size=1, max_size=12)
_TEMPLATE = st.sampled_from(["Create a note named '{v}'", "Delete the note '{v}'", "search for '{v}' and open it",
                             "Rename the note '{v}' to 'x{v}'", "Send a message with the content '{v}'",
                             "check the '{v}' in the list", "export the note as {v}.txt"])


@given(_TEMPLATE, _VALUE)
def test_retrieval_binds_the_values_the_agent_reads_as_the_agent_reads_them(template: str, value: str) -> None:
    text = template.format(v=value)
    agent = {(s.start, s.end): (s.role, s.is_typed) for s in parse_intent(text).slots}
    for s in extract_slots(text):
        assert agent[(s.start, s.end)] == (s.role, s.is_typed)


_PIECES = st.lists(st.sampled_from(["create", "a", "note", "named", "'Call Bob'", "Bob", "Van Gogh", "5", "5:00",
                                     "bob@x.com", "diary.txt", "'12345678'", "to", "from", "search", "for", "the",
                                     "\"Hip Hop\"", "'notes.txt'", "12345678900", "five"]), max_size=12).map(" ".join)


@given(st.one_of(st.text(max_size=120), _PIECES))
def test_slots_are_disjoint_spans_of_the_text_in_order(text: str) -> None:
    slots = read_slots(text)
    spans = [(s.start, s.end) for s in slots]
    assert all(0 <= a < b <= len(text) for a, b in spans)
    assert all(b <= c for (_, b), (c, _) in zip(spans, spans[1:], strict=False))  # in order, none overlapping
