from __future__ import annotations

from appatlas.rag.slots import extract_slots, field_affinity, masked_query


def _typed(intent: str) -> dict[str, str]:
    return {s.name: s.value for s in extract_slots(intent) if s.is_typed}


def test_a_new_contact_yields_first_name_surname_and_phone() -> None:
    assert _typed("Create a new contact Stephen Bob, mobile number 12345678900") == {
        "first_name": "Stephen", "last_name": "Bob", "phone": "12345678900"}


def test_a_quoted_name_after_named_is_typed() -> None:
    assert _typed("Create a text note named 'NewTextNote'") == {"name": "NewTextNote"}


def test_a_quoted_label_of_something_on_screen_is_not_typed() -> None:
    slots = extract_slots("disable 'start week on sunday'")
    assert [(s.value, s.is_typed) for s in slots] == [("start week on sunday", False)]


def test_only_the_new_value_of_a_rename_is_typed() -> None:
    assert _typed("Rename the note 'diary' to 'events'") == {"name": "events"}


def test_an_email_and_a_file_name_are_typed_without_their_extension() -> None:
    assert _typed("send the report to ann@example.com") == {"email": "ann@example.com"}
    assert _typed("export the events to test.ics") == {"file": "test"}


def test_a_file_name_with_any_short_extension_is_a_file_but_a_decimal_is_not() -> None:
    assert _typed("save the recording as take2.flac") == {"file": "take2"}
    assert _typed("record 'memo.m4a'") == {"file": "memo"}
    assert "file" not in _typed("set the playback speed to 1.5")


def test_a_search_term_is_typed_and_stays_in_the_query() -> None:
    intent = "Search for the song \"test1\" and play it"
    assert _typed(intent) == {"query": "test1"}
    assert "test1" in masked_query(intent, extract_slots(intent))


def test_typed_values_are_masked_out_of_the_query() -> None:
    intent = "Create a text note named 'NewTextNote'"
    assert masked_query(intent, extract_slots(intent)) == "Create a text note named"


def test_a_phone_slot_suits_a_number_field_better_than_a_name_field() -> None:
    phone = next(s for s in extract_slots("new contact, mobile number 12345678900") if s.name == "phone")
    assert field_affinity(phone, "contact number") > field_affinity(phone, "contact first name")
