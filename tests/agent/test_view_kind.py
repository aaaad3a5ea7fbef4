"""Kinds of views on every platform: the agent's checks of a widget's kind hold on HarmonyOS and the web."""

from __future__ import annotations

import pytest

from appatlas.agent.knowledge import Knowledge
from appatlas.agent.progress import taken
from appatlas.types import Action, ActionKind, Bounds, Screen, Selector, Widget, view_kind

W, H = 1080, 2280


@pytest.mark.parametrize(("cls", "kind"), [("android.widget.Button", "Button"), ("web.Button", "Button"),
                                           ("Button", "Button"), ("List", "ListView"), ("Toggle", "Switch"),
                                           ("TextInput", "EditText"), ("androidx.core.widget.NestedScrollView",
                                                                       "NestedScrollView")])
def test_a_class_is_named_by_the_android_view_of_its_kind(cls: str, kind: str) -> None:
    assert view_kind(cls) == kind


def _screen(button: str, scroll: str) -> Screen:
    save = Widget(button, Bounds(700, 2000, 1000, 2150), resource_id="save", text="Save", clickable=True, package="com.x")
    rows = Widget(scroll, Bounds(0, 200, W, 1900), resource_id="settings_list", scrollable=True, package="com.x",
                  children=(Widget("Text", Bounds(0, 200, W, 300), text="Quiet hours", package="com.x"),))
    frame = Widget("Stack", Bounds(0, 0, W, H), package="com.x", children=(rows, save))
    return Screen("com.x", "EntryAbility", Widget("hierarchy", Bounds(0, 0, W, H), children=(frame,)), W, H)


@pytest.mark.parametrize("button", ["Button", "android.widget.Button"])
def test_pressing_an_arkui_button_is_remembered_as_a_button(button: str) -> None:
    step = taken(Action(ActionKind.TAP, Selector(resource_id="save", text="Save")), _screen(button, "Scroll"))
    assert step.button


@pytest.mark.parametrize("scroll", ["Scroll", "List", "android.widget.ScrollView"])
def test_an_arkui_scrolling_container_makes_a_page(scroll: str) -> None:
    k = Knowledge.build(package="com.x", screens={1: _screen("Button", scroll)}, state_key={1: "settings"},
                        content={}, transitions=[], tasks=[])
    assert k.screens["settings"].scrolls == frozenset({"settings_list"})
