"""Fixtures for the virtual device tests: the demo app, a small app that uses every feature, helpers."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from appatlas.devices.apps import builtin_apps
from appatlas.devices.spec import AppSpec, load_spec, spec_from_dict
from appatlas.devices.virtual import VirtualDevice

MINI_PACKAGE = "com.example.mini"

MINI: dict[str, Any] = {
    "app": {"package": MINI_PACKAGE, "name": "Mini", "version": "1.0", "launch": "home"},
    "screens": [
        {"id": "home", "title": "Home", "widgets": [
            {"text": "Clock {clock}, action {tick}", "id": "clock"},
            {"input": "Email", "id": "email", "input_type": "email"},
            {"input": "PIN", "id": "pin", "input_type": "password"},
            {"button": "Sign in", "id": "sign_in",
             "tap": {"go": "inbox", "when": {"field": "email", "rule": "email"}, "error": "Enter a valid email"}},
            {"checkbox": "Remember me", "id": "remember"},
            {"switch": "Dark theme", "id": "dark", "checked": True},
            {"button": "Delete account", "id": "delete", "tap": {"dialog": "confirm"}},
            {"button": "Camera", "id": "camera", "tap": {"go": "camera"}},
            {"button": "Help", "id": "help", "tap": {"leave": "com.android.chrome"}},
            {"button": "Boom", "id": "boom", "tap": "crash"},
        ]},
        {"id": "inbox", "title": "Inbox", "widgets": [
            {"list": None, "id": "mails", "row_tap": {"go": "mail"}, "row_long_tap": {"dialog": "confirm"},
             "items": [{"title": f"Mail {i}", "subtitle": f"From sender {i}", "data": {"body": f"Body {i}"}}
                       for i in range(25)]},
        ]},
        {"id": "mail", "title": "{item.title}", "widgets": [{"text": "{item.body}", "id": "body"}]},
        {"id": "camera", "title": "Camera", "permission": {"name": "camera", "message": "Allow Mini to take pictures?",
                                                           "on_deny": "back"},
         "widgets": [{"image": "Viewfinder", "id": "viewfinder"}]},
    ],
    "dialogs": [
        {"id": "confirm", "title": "Are you sure?", "message": "This cannot be undone.", "widgets": [
            {"button": "Cancel", "id": "cancel", "tap": "close"},
            {"button": "Delete", "id": "confirm_delete", "tap": "back"},
        ]},
    ],
}


@pytest.fixture(scope="session")
def demo_spec() -> AppSpec:
    return load_spec(builtin_apps()["demo"])


@pytest.fixture
def demo(demo_spec: AppSpec) -> VirtualDevice:
    return VirtualDevice(demo_spec, screenshots=False)


@pytest.fixture
def mini_dict() -> dict[str, Any]:
    """A fresh copy of the small app, for tests that change it."""
    return copy.deepcopy(MINI)


@pytest.fixture
def mini() -> VirtualDevice:
    return VirtualDevice(spec_from_dict(MINI), screenshots=False)
