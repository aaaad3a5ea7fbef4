"""Atlas Notes for the web: the built-in web demo app, served by appatlas on 127.0.0.1.

    from appatlas.devices.apps.webdemo import WebDemoServer

    with WebDemoServer() as app:            # port 0: a free port
        app.url                             # http://127.0.0.1:PORT/
        app.state(session)                  # the app's real state for one browser (its `sid` cookie)

Server-rendered pages with a little script, the stdlib's threading HTTP server, no files on disk:
a notes list and its detail pages, forms with validation (new note, edit note, new task, unlock),
settings with switches (saved as they flip), a modal delete dialog, a login-gated archive, an about
page with a ticking clock, a help page that opens in a new tab, a download, a link to another origin
(`localhost` instead of `127.0.0.1`), a JS confirm and alert, and a diagnostics page whose button
throws. `/frames`, linked from nowhere (tests open it by URL), holds a same-origin iframe with a form and a
cross-origin iframe. Each browser context is its own session (a cookie), so two contexts are two "phones" with
their own data; `state(session)` and `GET /api/state` tell what the app really holds, for checking
verdicts. See `pages.py` for the pages and `state.py` for the data.
"""

from __future__ import annotations

from appatlas.devices.apps.webdemo.server import WebDemoServer

__all__ = ["PAGES", "WebDemoServer"]

# Every page of the app (its route pattern, as the web backend names a page's "activity"),
# and how it is reached; the demo and the tests check that a crawl reaches each one.
PAGES = (
    "/",                     # notes list
    "/notes/{n}",            # a note
    "/notes/{n}/edit",       # edit a note (validation)
    "/notes/new",            # new note (validation, a select, a checkbox)
    "/notes/saved",          # after saving
    "/tasks",                # task list (a JS confirm)
    "/tasks/new",            # new task (number validation)
    "/settings",             # settings with switches (a JS alert)
    "/settings/notifications",
    "/login",                # the gate in front of the archive (email validation)
    "/archive",              # login-gated
    "/about",                # a live clock, a download, another origin, a new tab
    "/help",                 # opened in a new tab
    "/diagnostics",          # a button that throws
)
