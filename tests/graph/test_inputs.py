"""The crawler types generic values: a field's kind decides, never a task someone will evaluate."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from appatlas.graph.inputs import _VALUES, InputBook, field_kind
from appatlas.types import Bounds, Widget


def _field(rid: str) -> Widget:
    return Widget(class_name="android.widget.EditText", bounds=Bounds(0, 0, 100, 50), resource_id=f"com.x:id/{rid}",
                  editable=True)


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w+", text.casefold()) if len(w) > 2}


def test_a_fields_kind_decides_the_value_typed_into_it() -> None:
    book = InputBook()
    assert field_kind(_field("email")) == "email" and "@" in book.value_for("f1", _field("email"))
    assert book.value_for("f2", _field("phone_number")).isdigit()


def test_no_crawler_value_is_a_value_of_the_demo_intents() -> None:
    from appatlas.agent.demo import FALLBACK_INTENTS as AGENT_DEMO
    from appatlas.demo import DEMO_INTENTS

    intents = " ".join((*DEMO_INTENTS, *AGENT_DEMO)).casefold()
    named = set(re.findall(r"'([^']+)'|(\S+@\S+)|(\d[\d ]*\d)", intents))  # quoted values, emails, numbers
    typed = {v.casefold() for values in _VALUES.values() for v in values}
    assert not {v for v in typed if re.search(rf"(?<!\w){re.escape(v)}(?!\w)", intents)}
    assert not {n for group in named for n in group if n and any(n in v for v in typed)}


@pytest.mark.data
def test_no_crawler_value_is_an_input_of_a_droidtask_task(droidtask: Path) -> None:
    import yaml

    inputs = {str(rec.get("Input")) for task in droidtask.glob("*/task*.yaml")
              for rec in yaml.safe_load(task.read_text(encoding="utf-8"))["records"]} - {"null", "None"}
    assert inputs  # DroidTask types names, numbers and folder names in its tasks
    words = set().union(*(_words(i) for i in inputs)) | {i.casefold() for i in inputs}
    typed = {v for values in _VALUES.values() for v in values}
    assert not {v for v in typed if v.casefold() in words or _words(v) & words}
