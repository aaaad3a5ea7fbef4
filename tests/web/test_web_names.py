"""A page's "activity" and the web:URL argument (no browser needed)."""

from __future__ import annotations

import pytest

from appatlas.devices.web import route_of, web_url


@pytest.mark.parametrize(("url", "route"), [
    ("http://h/", "/"),
    ("http://h", "/"),
    ("http://h/notes/12/edit?x=1", "/notes/{n}/edit"),
    ("https://h/u/5f3a9c0e-77aa-4b1c-9d2e-0a1b2c3d4e5f/", "/u/{id}"),
    ("https://h/orders/64b7f0c2e13a4d5f6a7b8c9d", "/orders/{id}"),
    ("https://h/blog/how-to-test", "/blog/how-to-test"),  # words stay: they name the page
    ("https://h/app#/settings/3", "/app#/settings/{n}"),
    ("https://h/app#!/inbox", "/app#/inbox"),
    ("https://h/docs#install", "/docs"),  # an anchor is a place on the page, not a route
])
def test_the_route_generalises_ids_and_keeps_hash_routes(url: str, route: str) -> None:
    assert route_of(url) == route


def test_web_device_arguments() -> None:
    assert web_url("web:http://127.0.0.1:8000/") == "http://127.0.0.1:8000/"
    assert web_url("https://example.org/app") == "https://example.org/app"
    assert web_url("web:alice=https://example.org/app") == "https://example.org/app"  # a named context
    for bad in ("web:", "web:ftp://x/", "web:example.org", "file:///etc/passwd"):
        with pytest.raises(ValueError, match="web app"):
            web_url(bad)
