"""The web demo's HTTP server: routing, sessions by cookie, a thread of its own (`WebDemoServer`)."""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from appatlas.devices.apps.webdemo import pages
from appatlas.devices.apps.webdemo.state import NOTE_TYPES, SETTINGS, AppState, Sessions, Task

__all__ = ["WebDemoServer"]

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", re.IGNORECASE)
_NOTE = re.compile(r"/notes/(\d+)(/edit|/delete)?")
MAX_BODY = 64 * 1024
MAX_SLOW_MS = 10_000


class WebDemoServer:
    """Atlas Notes for the web on http://HOST:PORT/ in a background thread (a context manager)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sessions = Sessions()
        self.page_errors = 0  # 5xx answers so far (the app's own bugs would show here)
        handler = type("Handler", (_Handler,), {"app": self})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def other_origin(self) -> str:
        """The same server under another name: another origin, as far as a browser is concerned."""
        return f"http://{'localhost' if self.host == '127.0.0.1' else '127.0.0.1'}:{self.port}"

    def start(self) -> WebDemoServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                            name=f"webdemo-{self.port}", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> WebDemoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def state(self, session: str) -> dict[str, Any]:
        """The real state of one session's app (see `AppState.to_json`); a new session if unknown."""
        return self.sessions.snapshot(session)

    def session_ids(self) -> list[str]:
        return self.sessions.ids()


class _Handler(BaseHTTPRequestHandler):
    app: WebDemoServer
    protocol_version = "HTTP/1.1"
    server_version = "AtlasNotesWeb/2.4"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # quiet: the tests and the demo would drown in request lines

    # --- plumbing ---------------------------------------------------------------------------------

    def _session(self) -> tuple[str, bool]:
        for part in self.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "sid" and re.fullmatch(r"[A-Za-z0-9_-]{8,64}", value):
                return value, False
        return secrets.token_urlsafe(12), True

    def _send(self, status: int, body: str | bytes, *, ctype: str = "text/html; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if self._new_sid:
            self.send_header("Set-Cookie", f"sid={self._sid}; Path=/; HttpOnly; SameSite=Lax")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _redirect(self, location: str) -> None:
        self._send(303, "", headers={"Location": location})

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("request body too large")
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        if self.headers.get("Content-Type", "").startswith("application/json"):
            data = json.loads(raw or "{}")
            return {str(k): v for k, v in data.items()} if isinstance(data, dict) else {}
        return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self._handle("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def _handle(self, method: str) -> None:
        self._sid, self._new_sid = self._session()
        url = urlsplit(self.path)
        if url.path == "/slow":  # for timeout tests (no page links here); sleeps outside the lock
            ms = parse_qs(url.query).get("ms", ["1000"])[-1]
            time.sleep(min(int(ms) if ms.isdigit() else 1000, MAX_SLOW_MS) / 1000)
            self._send(200, pages.not_found("/slow"))
            return
        try:
            with self.app.sessions.lock:
                state = self.app.sessions.get(self._sid)
                reply = (self._get if method == "GET" else self._post)(url.path, parse_qs(url.query), state)
        except (ValueError, KeyError) as exc:
            self._send(400, pages.not_found(f"{url.path} ({exc})"))
            return
        if reply is None:
            return
        status, body, kw = reply
        if status >= 500:
            self.app.page_errors += 1
        if method == "GET" and status == 200 and kw.get("ctype") is None:  # a page (not the API, not a file)
            route = _route(url.path)
            with self.app.sessions.lock:
                if route not in state.visited:
                    state.visited.append(route)
        if status == 303:
            self._redirect(body)
        else:
            self._send(status, body, **kw)

    # --- routes -------------------------------------------------------------------------------------

    def _get(self, path: str, query: dict[str, list[str]], s: AppState) -> tuple[int, str, dict] | None:
        path = path.rstrip("/") or "/"
        simple = {"/": lambda: pages.notes(s), "/notes/new": lambda: pages.new_note(s),
                  "/tasks": lambda: pages.tasks(s), "/tasks/new": lambda: pages.new_task(),
                  "/settings": lambda: pages.settings(s), "/settings/notifications": lambda: pages.notifications(s),
                  "/about": lambda: pages.about(self.app.other_origin), "/help": pages.help_page,
                  "/diagnostics": pages.diagnostics, "/elsewhere": pages.elsewhere,
                  "/frames": lambda: pages.frames(self.app.other_origin),
                  "/frames/feedback": lambda: pages.feedback_form(s)}
        if path in simple:
            return 200, simple[path](), {}
        if path == "/notes/saved":
            ids = query.get("id", ["0"])
            return 200, pages.saved(s.note(int(ids[-1]) if ids[-1].isdigit() else 0)), {}
        if path == "/login":
            return 200, pages.login(next_path=_local(query.get("next", ["/archive"])[-1])), {}
        if path == "/archive":
            if not s.unlocked_as:
                return 303, "/login?next=/archive", {}
            return 200, pages.archive(s), {}
        if path == "/notes.csv":
            s.downloads += 1
            csv = "title,body\n" + "".join(f'"{n.title}","{n.body}"\n' for n in s.notes)
            return 200, csv, {"ctype": "text/csv; charset=utf-8",
                              "headers": {"Content-Disposition": 'attachment; filename="notes.csv"'}}
        if path == "/api/state":
            return 200, json.dumps(s.to_json()), {"ctype": "application/json"}
        m = _NOTE.fullmatch(path)
        if m and (n := s.note(int(m.group(1)))) is not None:
            if m.group(2) == "/edit":
                return 200, pages.edit_note(n), {}
            if not m.group(2):
                return 200, pages.note(n), {}
        return 404, pages.not_found(path), {}

    def _post(self, path: str, query: dict[str, list[str]], s: AppState) -> tuple[int, str, dict] | None:
        form = self._form()
        if path == "/notes/new":
            title, body = str(form.get("title", "")).strip(), str(form.get("body", ""))
            kind = form.get("kind", s.default_type) if form.get("kind") in NOTE_TYPES else s.default_type
            pinned = "pinned" in form
            if not title:
                return 200, pages.new_note(s, title=title, body=body, kind=kind, pinned=pinned,
                                           error="Give the note a title"), {}
            n = s.add_note(title, body, kind, pinned)
            return 303, f"/notes/saved?id={n.id}", {}
        m = _NOTE.fullmatch(path)
        if m and (n := s.note(int(m.group(1)))) is not None:
            if m.group(2) == "/edit":
                title, body = str(form.get("title", "")).strip(), str(form.get("body", ""))
                if not title:
                    return 200, pages.edit_note(n, title=title, body=body, error="A note needs a title"), {}
                n.title, n.body = title, body
                return 303, f"/notes/{n.id}", {}
            if m.group(2) == "/delete":
                s.notes.remove(n)
                return 303, "/", {}
        if path == "/tasks/new":
            title, due = str(form.get("title", "")).strip(), str(form.get("due", "")).strip()
            errors = {}
            if not title:
                errors["title"] = "Say what needs doing"
            if not due.isdigit():
                errors["due"] = "Enter the number of days"
            if errors:
                return 200, pages.new_task(title=title, due=due, errors=errors), {}
            s.tasks.append(Task(title, int(due)))
            return 303, "/tasks", {}
        if path == "/api/tasks/clear":
            s.tasks = [t for t in s.tasks if not t.done]
            return 200, "{}", {"ctype": "application/json"}
        if path == "/api/settings":
            key, value = str(form.get("key", "")), form.get("value")
            if key in SETTINGS and isinstance(value, bool):
                s.settings[key] = value
            elif key == "default_type" and value in NOTE_TYPES:
                s.default_type = str(value)
            else:
                return 400, json.dumps({"error": f"unknown setting {key[:40]!r}"}), {"ctype": "application/json"}
            return 200, "{}", {"ctype": "application/json"}
        if path == "/login":
            email, next_path = str(form.get("email", "")).strip(), _local(str(form.get("next", "/archive")))
            if not _EMAIL.fullmatch(email):
                return 200, pages.login(email=email, error="Enter a valid email address", next_path=next_path), {}
            s.unlocked_as = email
            return 303, next_path, {}
        if path == "/lock":
            s.unlocked_as = ""
            return 303, "/", {}
        if path == "/frames/feedback":
            text = str(form.get("text", "")).strip()
            if text:
                s.feedback.append(text + (" (reply)" if "reply" in form else ""))
            return 303, "/frames/feedback", {}
        return 404, pages.not_found(path), {}


def _route(path: str) -> str:
    """The page's route as `PAGES` names it: /notes/3/edit -> /notes/{n}/edit."""
    return re.sub(r"/\d+(?=/|$)", "/{n}", path.rstrip("/") or "/")


def _local(path: str) -> str:
    """Only a path on this site may be a redirect target (no open redirect to another origin)."""
    return path if path.startswith("/") and not path.startswith("//") else "/archive"
