"""The web demo's pages as HTML. Every value from the session is escaped (`_e`); scripts are inline."""

from __future__ import annotations

import itertools
import secrets
from html import escape

from appatlas.devices.apps.webdemo.state import NOTE_TYPES, SETTINGS, AppState, Note

__all__ = ["about", "archive", "diagnostics", "edit_note", "elsewhere", "feedback_form", "frames", "help_page", "login",
           "new_note", "new_task", "not_found", "note", "notes", "notifications", "saved", "settings", "tasks"]

_CSS = """
body{font-family:sans-serif;margin:0;background:#fafafa}
header{background:#2b5797;color:#fff;padding:8px 16px;display:flex;align-items:center;gap:24px}
header h1{font-size:20px;margin:0}
header nav a{color:#fff;margin-right:14px;text-decoration:none}
main{padding:16px;max-width:720px}
ul.rows{list-style:none;padding:0} ul.rows li{border-bottom:1px solid #ddd;padding:10px 0}
label{display:block;margin:10px 0 4px} input[type=text],textarea,select{width:320px;padding:4px}
.error{color:#b00020;margin:4px 0} .row{display:flex;align-items:center;gap:10px;margin:8px 0}
dialog{border:1px solid #888;border-radius:6px;padding:16px 20px}
button,a.button{margin:8px 8px 0 0;padding:6px 12px}
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _page(title: str, body: str, *, script: str = "") -> str:
    nav = ('<nav aria-label="Main"><a href="/" id="nav_notes">Notes</a><a href="/tasks" id="nav_tasks">Tasks</a>'
           '<a href="/archive" id="nav_archive">Archive</a><a href="/settings" id="nav_settings">Settings</a>'
           '<a href="/about" id="nav_about">About</a></nav>')
    js = f"<script>{script}</script>" if script else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)} · Atlas Notes</title>'
            f"<style>{_CSS}</style></head><body><header><h1 id=\"page_title\">{_e(title)}</h1>{nav}</header>"
            f"<main>{body}</main>{js}</body></html>")


def _error(field: str, message: str) -> str:
    return f'<p class="error" role="alert" id="{field}_error">{_e(message)}</p>' if message else ""


_ADS = ("Try Atlas Pro free for 30 days", "Paper notebooks, 20% off", "Learn a language in 10 minutes a day")
_AD_TURN = itertools.count()


def notes(s: AppState) -> str:
    rows = "".join(f'<li><a href="/notes/{n.id}">{_e(n.title)}</a>{" 📌" if n.pinned else ""}</li>' for n in s.notes)
    empty = "" if s.notes else '<p id="notes_empty">No notes yet.</p>'
    # An ad that changes on every load, under a generated id, as ad slots do: not part of the screen.
    slot = secrets.randbelow(900_000) + 100_000
    ad = (f'<aside id="ad-{slot}" aria-label="Sponsored"><small>Sponsored: {_e(_ADS[next(_AD_TURN) % len(_ADS)])}'
          "</small></aside>")
    return _page("Atlas Notes", f'<a class="button" href="/notes/new" id="new_note">New note</a>'
                                f'<ul class="rows" id="notes" aria-label="Notes">{rows}</ul>{empty}{ad}')


def note(n: Note) -> str:
    body = (f'<p id="note_body">{_e(n.body)}</p><p id="note_kind">{_e(n.kind.title())} note</p>'
            f'<a class="button" href="/notes/{n.id}/edit" id="edit_note">Edit</a>'
            '<button type="button" id="delete_note" onclick="document.getElementById(\'confirm_delete\').showModal()">'
            "Delete</button>"
            f'<dialog id="confirm_delete" aria-labelledby="confirm_title"><p id="confirm_title">Delete “{_e(n.title)}”?'
            f'</p><form method="post" action="/notes/{n.id}/delete"><button type="button" id="cancel_delete" '
            'onclick="this.closest(\'dialog\').close()">Cancel</button>'
            '<button type="submit" id="confirm_delete_button">Delete</button></form></dialog>')
    return _page(n.title, body)


def _note_form(action: str, *, title: str, body: str, error: str, submit_id: str, prefix: str,
               extra: str = "") -> str:
    return (f'<form method="post" action="{_e(action)}" novalidate>'
            f'<label for="{prefix}_title">Title</label><input type="text" id="{prefix}_title" name="title" '
            f'value="{_e(title)}" placeholder="Title">{_error(f"{prefix}_title", error)}'
            f'<label for="{prefix}_body">Note</label><textarea id="{prefix}_body" name="body" rows="4" '
            f'placeholder="Start writing">{_e(body)}</textarea>{extra}'
            f'<div><a class="button" href="/" id="{prefix}_discard">Discard</a>'
            f'<button type="submit" id="{submit_id}">Save</button></div></form>')


def new_note(s: AppState, *, title: str = "", body: str = "", kind: str = "", pinned: bool = False,
             error: str = "") -> str:
    kind = kind or s.default_type
    opts = "".join(f'<option value="{k}"{" selected" if k == kind else ""}>{k.title()} note</option>'
                   for k in NOTE_TYPES)
    extra = (f'<label for="new_type">Type</label><select id="new_type" name="kind">{opts}</select>'
             f'<div class="row"><input type="checkbox" id="new_pinned" name="pinned"{" checked" if pinned else ""}>'
             '<label for="new_pinned">Pin to top</label></div>')
    return _page("New note", _note_form("/notes/new", title=title, body=body, error=error, submit_id="new_save",
                                        prefix="new", extra=extra))


def edit_note(n: Note, *, title: str | None = None, body: str | None = None, error: str = "") -> str:
    return _page("Edit note", _note_form(f"/notes/{n.id}/edit", title=n.title if title is None else title,
                                         body=n.body if body is None else body, error=error,
                                         submit_id="edit_save", prefix="edit"))


def saved(n: Note | None) -> str:
    title = f'<h2 id="saved_title">{_e(n.title)}</h2>' if n is not None else ""
    return _page("Saved", f'{title}<p id="saved_message">Your note is saved and will sync at the next chance.</p>'
                          '<a class="button" href="/" id="saved_done">Back to notes</a>')


def tasks(s: AppState) -> str:
    rows = "".join(f'<li><input type="checkbox" id="task_{i}" {"checked " if t.done else ""}disabled>'
                   f'<span>{_e(t.title)}</span> <small>due in {t.due_days} day(s)</small></li>'
                   for i, t in enumerate(s.tasks))
    done = sum(t.done for t in s.tasks)
    script = ("document.getElementById('clear_done').onclick = async () => {"
              f"  if (!confirm('Clear {done} completed task(s)?')) return;"
              "  await fetch('/api/tasks/clear', {method: 'POST'}); location.reload(); };")
    return _page("Tasks", f'<a class="button" href="/tasks/new" id="new_task">New task</a>'
                          '<button type="button" id="clear_done">Clear completed</button>'
                          f'<ul class="rows" id="tasks" aria-label="Tasks">{rows}</ul>', script=script)


def new_task(*, title: str = "", due: str = "", errors: dict[str, str] | None = None) -> str:
    errors = errors or {}
    return _page("New task", '<form method="post" action="/tasks/new" novalidate>'
                 f'<label for="task_title">What needs doing?</label><input type="text" id="task_title" name="title" '
                 f'value="{_e(title)}">{_error("task_title", errors.get("title", ""))}'
                 '<label for="task_due">Due in (days)</label><input type="text" inputmode="numeric" id="task_due" '
                 f'name="due" value="{_e(due)}">{_error("task_due", errors.get("due", ""))}'
                 '<div><button type="submit" id="task_add">Add task</button></div></form>')


def _switch(key: str, s: AppState) -> str:
    label, _ = SETTINGS[key]
    return (f'<div class="row"><input type="checkbox" role="switch" id="{key}" name="{key}"'
            f'{" checked" if s.settings[key] else ""}><label for="{key}">{_e(label)}</label></div>')


_SAVE_SWITCHES = ("for (const sw of document.querySelectorAll('input[role=switch]')) sw.onchange = () =>"
                  " fetch('/api/settings', {method: 'POST', headers: {'Content-Type': 'application/json'},"
                  " body: JSON.stringify({key: sw.id, value: sw.checked})});")


def settings(s: AppState) -> str:
    opts = "".join(f'<option value="{k}"{" selected" if k == s.default_type else ""}>{k.title()} note</option>'
                   for k in NOTE_TYPES)
    script = _SAVE_SWITCHES + (
        "document.getElementById('default_type').onchange = (e) => fetch('/api/settings', {method: 'POST',"
        " headers: {'Content-Type': 'application/json'}, body: JSON.stringify({key: 'default_type',"
        " value: e.target.value})});"
        "document.getElementById('test_notification').onclick = () => alert('Test notification sent');")
    return _page("Settings", f'{_switch("sync_wifi_only", s)}{_switch("dark_theme", s)}'
                             f'<label for="default_type">Default note type</label>'
                             f'<select id="default_type">{opts}</select>'
                             '<p><a href="/settings/notifications" id="open_notifications">Notifications</a></p>'
                             '<button type="button" id="test_notification">Send test notification</button>',
                 script=script)


def notifications(s: AppState) -> str:
    return _page("Notifications", f'{_switch("quiet_hours", s)}{_switch("sound", s)}{_switch("badges", s)}',
                 script=_SAVE_SWITCHES)


def login(*, email: str = "", error: str = "", next_path: str = "/archive") -> str:
    return _page("Unlock archive", '<form method="post" action="/login" novalidate>'
                 f'<input type="hidden" name="next" value="{_e(next_path)}">'
                 '<p>The archive is private. Unlock it with your account email.</p>'
                 f'<label for="email">Email</label><input type="text" id="email" name="email" value="{_e(email)}" '
                 f'placeholder="name@example.com">{_error("email", error)}'
                 '<div><button type="submit" id="unlock">Unlock</button></div></form>')


def archive(s: AppState) -> str:
    rows = "".join(f"<li>{_e(t)}</li>" for t in s.archive)
    return _page("Archive", f'<p id="unlocked_as">Unlocked as {_e(s.unlocked_as)}</p>'
                            f'<ul class="rows" id="archive" aria-label="Archived notes">{rows}</ul>'
                            '<form method="post" action="/lock"><button type="submit" id="lock">Lock archive'
                            "</button></form>")


def about(other_origin: str) -> str:
    script = ("const tick = () => { document.getElementById('synced').textContent = 'Last synced ' +"
              " new Date().toLocaleTimeString('en-GB'); }; tick(); setInterval(tick, 1000);")
    return _page("About", '<p>Atlas Notes for the web, version 2.4.1.</p><p id="synced">Last synced</p>'
                 '<p><a href="/help" target="_blank" id="open_help">Help (opens a new tab)</a></p>'
                 '<p><a href="/notes.csv" download id="download_notes">Download notes</a></p>'
                 f'<p><a href="{_e(other_origin)}/elsewhere" id="project_page">Project page</a></p>'
                 '<p><a href="/diagnostics" id="open_diagnostics">Diagnostics</a></p>', script=script)


def help_page() -> str:
    return _page("Help", "<p>Notes are saved in this browser's session. Pinned notes stay on top.</p>"
                         '<button type="button" id="close_help" onclick="window.close()">Close</button>')


def diagnostics() -> str:
    # The bug the crawl should find: the handler dereferences a report that was never made.
    script = ("document.getElementById('export_diagnostics').onclick = () => {"
              " const report = null; document.getElementById('diag_out').textContent = report.summary; };")
    return _page("Diagnostics", '<p>Collects logs for the support team.</p>'
                                '<button type="button" id="export_diagnostics">Export diagnostics</button>'
                                '<pre id="diag_out"></pre>', script=script)


def frames(other_origin: str) -> str:
    """A test page (linked from nowhere, so the demo's crawl never meets it): a same-origin iframe holding
    a form, and a cross-origin iframe, which a page cannot read."""
    return _page("Feedback", '<p>Tell us what to improve.</p>'
                             '<iframe src="/frames/feedback" id="feedback_frame" title="Send feedback" '
                             'style="width:420px;height:220px;border:2px solid #888;padding:6px"></iframe>'
                             f'<iframe src="{_e(other_origin)}/elsewhere" id="other_frame" title="Partner site" '
                             'style="width:300px;height:120px"></iframe>')


def feedback_form(s: AppState) -> str:
    sent = "".join(f"<li>{_e(t)}</li>" for t in s.feedback)
    thanks = f'<p id="feedback_thanks">Thanks, {len(s.feedback)} sent</p><ul>{sent}</ul>' if s.feedback else ""
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Send feedback</title></head><body>'
            '<form method="post" action="/frames/feedback"><label for="feedback_text">Your feedback</label>'
            '<input type="text" id="feedback_text" name="text" placeholder="What should we improve?">'
            '<label><input type="checkbox" id="feedback_reply" name="reply"> Reply to me</label>'
            f'<button type="submit" id="send_feedback">Send</button></form>{thanks}</body></html>')


def elsewhere() -> str:
    return ('<!doctype html><html lang="en"><head><title>Another site</title></head><body>'
            '<h1>Another site</h1><p>This page is on another origin than Atlas Notes.</p></body></html>')


def not_found(path: str) -> str:
    return _page("Not found", f'<p id="not_found">Nothing at {_e(path)}.</p><a href="/">Back to notes</a>')
