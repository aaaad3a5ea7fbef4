"""Reading intents: slots, their roles, the wanted toggle state; and never crashing on any text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from appatlas.agent.intent import parse_intent, same_term, stem


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
