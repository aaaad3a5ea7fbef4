"""Validation of app specs: reads a parsed dict into `appatlas.devices.spec` dataclasses.

Every problem raises `SpecError(source, problem)` whose problem names the place (screen,
widget, item) and what to change. Nothing else escapes, whatever the input: types are checked
before use, and a node budget stops alias bombs.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Mapping
from typing import Any

from appatlas.devices.spec import (
    BACK_RULES,
    INPUT_TYPES,
    PLACES,
    REMOVE_ROWS,
    RULES,
    AppSpec,
    DialogSpec,
    Effect,
    EffectKind,
    Item,
    Permission,
    Rule,
    ScreenSpec,
    Store,
    WidgetKind,
    WidgetSpec,
    template_names,
)
from appatlas.errors import SpecError

__all__ = ["read_spec"]

MAX_NODES = 400_000  # every mapping/list/scalar visited; stops alias bombs and runaway specs
_BARE_EFFECTS = {EffectKind.BACK, EffectKind.CLOSE, EffectKind.TOGGLE, EffectKind.CRASH, EffectKind.LEAVE,
                 EffectKind.NONE}
# fullmatch everywhere: `$` would let a trailing newline through
_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_PACKAGE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+")
_ACTIVITY = re.compile(r"\.?[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_GLOBAL_NAMES = ("clock", "tick", "visits", "app", "version", "item")


def read_spec(data: Any, *, source: str) -> AppSpec:
    """The AppSpec `data` describes; SpecError naming the first problem otherwise."""
    return _Reader(source).app(data)


class _Reader:
    """Reads one spec; `where` strings name the place of every problem it reports."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.nodes = 0

    def fail(self, where: str, problem: str) -> SpecError:
        return SpecError(self.source, f"{where}: {problem}" if where else problem)

    def count(self, n: int = 1) -> None:
        self.nodes += n
        if self.nodes > MAX_NODES:
            raise self.fail("", f"more than {MAX_NODES} values; split the app or generate a smaller one")

    # typed getters ---------------------------------------------------------------------------

    def mapping(self, value: Any, where: str, known: tuple[str, ...]) -> Mapping[str, Any]:
        self.count()
        if not isinstance(value, Mapping):
            raise self.fail(where, f"expected a mapping, got {_kind(value)}")
        self.count(len(value))
        for key in value:
            if not isinstance(key, str):
                raise self.fail(where, f"key {_short(key)} is not a string")
            if key not in known:
                raise self.fail(where, f"unknown key {key!r}; known keys: {', '.join(known)}")
        return value

    def text(self, m: Mapping[str, Any], key: str, where: str, *, default: str | None = None,
             templated: bool = True) -> str:
        value = m.get(key)
        if value is None:
            if default is None:
                raise self.fail(where, f"missing {key!r}")
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(where, f"{key!r} must be text, got {_kind(value)}")
        try:
            text = str(value)
        except ValueError:  # an int with more digits than Python prints
            raise self.fail(where, f"{key!r} is a number too long to be text") from None
        if len(text) > 2000:
            raise self.fail(where, f"{key!r} is {len(text)} characters long; keep it under 2000")
        if templated:
            self.check_template(text, f"{where} {key}")
        return text

    def flag(self, m: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
        value = m.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(where, f"{key!r} must be true or false, got {_short(value)}")
        return value

    def ident(self, m: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
        value = m.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not _ID.fullmatch(value):
            what = "missing" if value is None else f"{_short(value)} is not a valid id"
            raise self.fail(where, f"{key!r} {what}: use letters, digits and _ (up to 64, not starting "
                                   "with a digit)")
        return value

    def check_template(self, text: str, where: str) -> None:
        for name in template_names(text):
            head, _, rest = name.partition(".")
            if head not in _GLOBAL_NAMES or (rest and head != "item") or (head == "item" and rest
                                                                            and not _ID.fullmatch(rest)):
                raise self.fail(where, f"unknown placeholder {{{name}}}; use one of {{clock}} {{tick}} "
                                       "{visits} {app} {version} {item} {item.<key>}")

    # the app ---------------------------------------------------------------------------------

    def app(self, data: Any) -> AppSpec:
        top = self.mapping(data, "top level", ("app", "screens", "dialogs"))
        if "app" not in top:
            raise self.fail("top level", "missing 'app' (package, name, launch screen)")
        app = self.mapping(top["app"], "app", ("package", "name", "launch", "version", "screen", "status_bar"))
        package = self.text(app, "package", "app", templated=False)
        if not _PACKAGE.fullmatch(package):
            raise self.fail("app", f"package {package!r} is not an Android package name like com.example.notes")
        name = self.text(app, "name", "app", default=package.rsplit(".", 1)[-1].capitalize(), templated=False)
        version = self.text(app, "version", "app", default="", templated=False)
        launch = self.ident(app, "launch", "app")
        width, height = self.size(app.get("screen"))
        status_bar = self.flag(app, "status_bar", "app", False)

        screens_raw = top.get("screens")
        if not isinstance(screens_raw, list) or not screens_raw:
            raise self.fail("screens", "expected a non-empty list of screens")
        dialogs_raw = top.get("dialogs", [])
        if dialogs_raw is None:
            dialogs_raw = []
        if not isinstance(dialogs_raw, list):
            raise self.fail("dialogs", f"expected a list of dialogs, got {_kind(dialogs_raw)}")
        screens: dict[str, ScreenSpec] = {}
        for i, raw in enumerate(screens_raw):
            s = self.screen(raw, i, launch)
            if s.id in screens:
                raise self.fail(f"screen {s.id!r}", "duplicate screen id; every screen needs its own id")
            screens[s.id] = s
        dialogs: dict[str, DialogSpec] = {}
        for i, raw in enumerate(dialogs_raw):
            d = self.dialog(raw, i)
            if d.id in dialogs or d.id in screens:
                raise self.fail(f"dialog {d.id!r}", "duplicate id; screens and dialogs need distinct ids")
            dialogs[d.id] = d
        if launch not in screens:
            raise self.fail("app", f"launch screen {launch!r} is not one of the screens")
        spec = AppSpec(package=package, name=name, launch=launch, screens=screens, dialogs=dialogs,
                       version=version, width=width, height=height, status_bar=status_bar, source=self.source)
        _Linker(self, spec).check()
        return spec

    def size(self, raw: Any) -> tuple[int, int]:
        if raw is None:
            return 1080, 2280
        m = self.mapping(raw, "app screen", ("width", "height"))
        out = []
        for key, default in (("width", 1080), ("height", 2280)):
            v = m.get(key, default)
            if isinstance(v, bool) or not isinstance(v, int) or not 320 <= v <= 4096:
                raise self.fail("app screen", f"{key} must be a whole number of pixels in 320..4096, got {_short(v)}")
            out.append(v)
        return out[0], out[1]

    def screen(self, raw: Any, index: int, launch: str) -> ScreenSpec:
        where = f"screen {index + 1}"
        m = self.mapping(raw, where, ("id", "title", "activity", "widgets", "back", "up", "permission"))
        sid = self.ident(m, "id", where)
        where = f"screen {sid!r}"
        default_act = "." + "".join(p.capitalize() for p in sid.split("_") if p) + "Activity"
        activity = self.text(m, "activity", where, default=default_act, templated=False)
        if not _ACTIVITY.fullmatch(activity):
            raise self.fail(where, f"activity {activity!r} is not a class name like .NotesActivity")
        back = self.text(m, "back", where, default="stack", templated=False)
        if back not in BACK_RULES and not _ID.fullmatch(back):
            raise self.fail(where, f"back {back!r} must be stack, exit, none or a screen id")
        permission = None
        if m.get("permission") is not None:
            permission = self.permission(m["permission"], where, sid)
        return ScreenSpec(
            id=sid,
            activity=activity,
            title=self.text(m, "title", where, default=""),
            widgets=self.widgets(m.get("widgets"), where, dialog=False),
            back=back,
            up=self.flag(m, "up", where, sid != launch),
            permission=permission,
        )

    def permission(self, raw: Any, where: str, sid: str) -> Permission:
        where = f"{where} permission"
        if isinstance(raw, str):
            raw = {"message": raw}
        m = self.mapping(raw, where, ("name", "message", "on_deny"))
        on_deny = self.text(m, "on_deny", where, default="stay", templated=False)
        if on_deny not in ("stay", "back"):
            raise self.fail(where, f"on_deny {on_deny!r} must be stay or back")
        name = self.ident(m, "name", where, required=False) or sid
        return Permission(name=name, message=self.text(m, "message", where), on_deny=on_deny)

    def dialog(self, raw: Any, index: int) -> DialogSpec:
        where = f"dialog {index + 1}"
        m = self.mapping(raw, where, ("id", "title", "message", "widgets", "cancelable"))
        did = self.ident(m, "id", where)
        where = f"dialog {did!r}"
        return DialogSpec(
            id=did,
            title=self.text(m, "title", where, default=""),
            message=self.text(m, "message", where, default=""),
            widgets=self.widgets(m.get("widgets"), where, dialog=True),
            cancelable=self.flag(m, "cancelable", where, True),
        )

    def widgets(self, raw: Any, where: str, *, dialog: bool) -> tuple[WidgetSpec, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise self.fail(where, f"'widgets' must be a list, got {_kind(raw)}")
        if len(raw) > 200:
            raise self.fail(where, f"{len(raw)} widgets; a screen holds at most 200")
        out = [self.widget(w, f"{where} widget {i + 1}", dialog=dialog) for i, w in enumerate(raw)]
        ids = [w.id for w in out if w.id]
        dup = next((i for i in ids if ids.count(i) > 1), None)
        if dup is not None:
            raise self.fail(where, f"widget id {dup!r} is used twice; ids must be unique on a screen")
        lists = [w for w in out if w.kind is WidgetKind.LIST]
        if len(lists) > 1:
            raise self.fail(where, "has more than one list; a screen scrolls one list at most")
        if sum(w.place == "fab" for w in out) > 1:
            raise self.fail(where, "has more than one floating (place: fab) button")
        return tuple(out)

    def widget(self, raw: Any, where: str, *, dialog: bool) -> WidgetSpec:
        kinds = tuple(k.value for k in WidgetKind)
        m = self.mapping(raw, where, kinds + ("id", "desc", "input_type", "value", "checked", "enabled",
                                              "place", "tap", "long_tap", "items", "row_tap", "row_long_tap",
                                              "persist"))
        present = [k for k in kinds if k in m]
        if len(present) != 1:
            got = "none" if not present else ", ".join(present)
            raise self.fail(where, f"needs exactly one kind key ({', '.join(kinds)}), got {got}")
        kind = WidgetKind(present[0])
        label = self.text(m, kind.value, where, default="")
        wid = self.ident(m, "id", where, required=False)
        where = f"{where} ({kind.value} {wid or label!r})"
        place = self.text(m, "place", where, default="bottom" if dialog and kind is WidgetKind.BUTTON
                          else "content", templated=False)
        if place not in PLACES:
            raise self.fail(where, f"place {place!r} must be one of {', '.join(PLACES)}")
        if place == "toolbar" and kind is not WidgetKind.ICON:
            raise self.fail(where, "only icons go in the toolbar (place: toolbar)")
        if place in ("bottom", "fab") and kind not in (WidgetKind.BUTTON, WidgetKind.ICON):
            raise self.fail(where, f"only buttons and icons can be placed at {place}")
        if dialog and place in ("toolbar", "fab"):
            raise self.fail(where, f"a dialog has no {place}")
        input_type = self.text(m, "input_type", where, default="text", templated=False)
        if input_type not in INPUT_TYPES:
            raise self.fail(where, f"input_type {input_type!r} must be one of {', '.join(INPUT_TYPES)}")
        if kind is WidgetKind.INPUT and not wid:
            raise self.fail(where, "an input needs an 'id' (its typed value is kept under it)")
        if kind is WidgetKind.LIST and not wid:
            raise self.fail(where, "a list needs an 'id' (its rows are named after it)")
        items = self.items(m.get("items"), where) if kind is WidgetKind.LIST else ()
        if kind is not WidgetKind.LIST and any(k in m for k in ("items", "row_tap", "row_long_tap")):
            raise self.fail(where, "only a list has items, row_tap and row_long_tap")
        tap = self.effect(m.get("tap"), f"{where} tap")
        if tap is not None and tap.kind is EffectKind.TOGGLE and kind not in (WidgetKind.CHECKBOX,
                                                                               WidgetKind.SWITCH):
            raise self.fail(where, "toggle works on a checkbox or a switch only")
        if kind in (WidgetKind.CHECKBOX, WidgetKind.SWITCH) and tap is None:
            tap = Effect(EffectKind.TOGGLE)
        return WidgetSpec(
            kind=kind,
            label=label,
            id=wid,
            desc=self.text(m, "desc", where, default=""),
            input_type=input_type,
            value=self.text(m, "value", where, default=""),
            checked=self.flag(m, "checked", where, False),
            enabled=self.flag(m, "enabled", where, True),
            place=place,
            tap=tap,
            long_tap=self.effect(m.get("long_tap"), f"{where} long_tap"),
            items=items,
            row_tap=self.effect(m.get("row_tap"), f"{where} row_tap"),
            row_long_tap=self.effect(m.get("row_long_tap"), f"{where} row_long_tap"),
            persist=self.flag(m, "persist", where, True),
        )

    def items(self, raw: Any, where: str) -> tuple[Item, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise self.fail(where, f"'items' must be a list, got {_kind(raw)}")
        if len(raw) > 1000:
            raise self.fail(where, f"{len(raw)} items; a list holds at most 1000")
        out = []
        for i, r in enumerate(raw):
            w = f"{where} item {i + 1}"
            if isinstance(r, str | int | float) and not isinstance(r, bool):
                out.append(Item(title=self.text({"title": r}, "title", w)))
                continue
            m = self.mapping(r, w, ("title", "subtitle", "tap", "long_tap", "data"))
            data = {}
            if m.get("data") is not None:
                dm = self.mapping(m["data"], f"{w} data", tuple(k for k in m["data"] if isinstance(k, str))
                                  if isinstance(m["data"], Mapping) else ())
                for k in dm:
                    if not _ID.fullmatch(k):
                        raise self.fail(f"{w} data", f"key {k!r} is not a valid name")
                    data[k] = self.text(dm, k, f"{w} data")
            out.append(Item(title=self.text(m, "title", w), subtitle=self.text(m, "subtitle", w, default=""),
                            tap=self.effect(m.get("tap"), f"{w} tap"),
                            long_tap=self.effect(m.get("long_tap"), f"{w} long_tap"),
                            data=tuple(sorted(data.items()))))
        return tuple(out)

    def effect(self, raw: Any, where: str) -> Effect | None:
        if raw is None:
            return None
        self.count()
        if isinstance(raw, str):
            if raw not in {k.value for k in _BARE_EFFECTS}:
                raise self.fail(where, f"{raw!r} is not an effect; use back, close, toggle, crash, leave, none "
                                       "or a mapping such as {go: screen_id}")
            return Effect(EffectKind(raw))
        m = self.mapping(raw, where, tuple(k.value for k in EffectKind) + ("when", "error", "save", "remove",
                                                                             "remove_row"))
        kinds = [k for k in EffectKind if k.value in m]
        if len(kinds) != 1:
            raise self.fail(where, f"needs exactly one of {', '.join(k.value for k in EffectKind)}")
        kind = kinds[0]
        value = m[kind.value]
        if kind in (EffectKind.GO, EffectKind.DIALOG):
            target = self.ident(m, kind.value, where)
        elif kind is EffectKind.LEAVE and not (value is None or value is True):
            if not isinstance(value, str) or not _PACKAGE.fullmatch(value):
                raise self.fail(where, f"leave: {_short(value)} must be true or a package name")
            target = value
        else:
            if not (value is None or value is True):
                raise self.fail(where, f"{kind.value} takes no value (write '{kind.value}' or {kind.value}: true)")
            target = ""
        if ("when" in m or "error" in m) and kind in (EffectKind.TOGGLE, EffectKind.NONE):
            raise self.fail(where, f"a gate ('when', 'error') cannot guard {kind.value}")
        if "error" in m and "when" not in m:
            raise self.fail(where, "'error' needs a 'when' (the rule whose failure it explains)")
        field, rule = "", None
        if m.get("when") is not None:
            wm = self.mapping(m["when"], f"{where} when", ("field", "rule", "match"))
            field = self.ident(wm, "field", f"{where} when")
            if ("rule" in wm) == ("match" in wm):
                raise self.fail(f"{where} when", f"needs one of rule ({', '.join(RULES)}) or match (a regex)")
            if "rule" in wm:
                name = self.text(wm, "rule", f"{where} when", templated=False)
                if name not in RULES:
                    raise self.fail(f"{where} when", f"rule {name!r} must be one of {', '.join(RULES)}")
                rule = Rule(name)
            else:
                pattern = self.text(wm, "match", f"{where} when", templated=False)
                try:
                    re.compile(pattern)
                except (re.error, RecursionError, OverflowError) as exc:
                    raise self.fail(f"{where} when", f"match {pattern!r} is not a regular expression: {exc}") \
                        from None
                rule = Rule("match", pattern)
        remove = self.ident(m, "remove", where, required=False) if m.get("remove") is not None else ""
        remove_row = self.text(m, "remove_row", where, default="item", templated=False)
        if remove_row not in REMOVE_ROWS:
            raise self.fail(where, f"remove_row {remove_row!r} must be one of {', '.join(REMOVE_ROWS)}")
        return Effect(kind, target=target, field=field, rule=rule,
                      error=self.text(m, "error", where, default=""),
                      save=self.store(m["save"], f"{where} save") if m.get("save") is not None else None,
                      remove=remove, remove_row=remove_row)

    def store(self, raw: Any, where: str) -> Store:
        m = self.mapping(raw, where, ("to", "title", "subtitle", "data", "truncate", "at"))
        data = {}
        if m.get("data") is not None:
            dm = self.mapping(m["data"], f"{where} data", tuple(k for k in m["data"] if isinstance(k, str))
                              if isinstance(m["data"], Mapping) else ())
            for k in dm:
                if not _ID.fullmatch(k):
                    raise self.fail(f"{where} data", f"key {k!r} is not a valid name")
                data[k] = self.text(dm, k, f"{where} data")
        truncate = m.get("truncate", 0)
        if isinstance(truncate, bool) or not isinstance(truncate, int) or truncate < 0:
            raise self.fail(where, f"truncate must be a whole number >= 0, got {_short(truncate)}")
        at = self.text(m, "at", where, default="top", templated=False)
        if at not in ("top", "bottom"):
            raise self.fail(where, f"at {at!r} must be top or bottom")
        return Store(to=self.ident(m, "to", where), title=self.ident(m, "title", where),
                     subtitle=self.ident(m, "subtitle", where, required=False) if m.get("subtitle") else "",
                     data=tuple(sorted(data.items())), truncate=truncate, at=at)


class _Linker:
    """Cross-references: effect targets, back targets, gate fields."""

    def __init__(self, reader: _Reader, spec: AppSpec) -> None:
        self.r = reader
        self.spec = spec

    def check(self) -> None:
        for s in self.spec.screens.values():
            where = f"screen {s.id!r}"
            if s.back not in BACK_RULES and s.back not in self.spec.screens:
                raise self.r.fail(where, f"back goes to {s.back!r}, which is not a screen")
            self.widgets(s.widgets, where, s.widgets)
        for d in self.spec.dialogs.values():
            self.widgets(d.widgets, f"dialog {d.id!r}", d.widgets)

    def widgets(self, widgets: tuple[WidgetSpec, ...], where: str, scope: tuple[WidgetSpec, ...]) -> None:
        for w in widgets:
            w_where = f"{where} widget {w.id or w.label!r}"
            for e in (w.tap, w.long_tap, w.row_tap, w.row_long_tap):
                self.effect(e, w_where, scope)
            for it in w.items:
                for e in (it.tap, it.long_tap):
                    self.effect(e, f"{w_where} item {it.title!r}", scope)

    def effect(self, e: Effect | None, where: str, scope: tuple[WidgetSpec, ...]) -> None:
        if e is None:
            return
        if e.kind is EffectKind.GO and e.target not in self.spec.screens:
            hint = " (it is a dialog: use {dialog: ...})" if e.target in self.spec.dialogs else ""
            raise self.r.fail(where, f"goes to unknown screen {e.target!r}{hint}")
        if e.kind is EffectKind.DIALOG and e.target not in self.spec.dialogs:
            hint = " (it is a screen: use {go: ...})" if e.target in self.spec.screens else ""
            raise self.r.fail(where, f"opens unknown dialog {e.target!r}{hint}")
        if e.field:
            field = next((w for w in scope if w.id == e.field), None)
            if field is None or field.kind is not WidgetKind.INPUT:
                raise self.r.fail(where, f"gate field {e.field!r} is not an input on the same screen")
        lists = {w.id for s in self.spec.screens.values() for w in s.widgets if w.kind is WidgetKind.LIST}
        for name in (e.save.to if e.save else "", e.remove):
            if name and name not in lists:
                raise self.r.fail(where, f"changes the list {name!r}, which is no list of the app's screens")
        if e.save is not None:
            for name in (e.save.title, e.save.subtitle):
                field = next((w for w in scope if w.id == name), None) if name else None
                if name and (field is None or field.kind is not WidgetKind.INPUT):
                    raise self.r.fail(where, f"save takes {name!r}, which is not an input on the same screen")


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel = 2


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _short(value: Any) -> str:
    try:
        return _REPR.repr(value)
    except ValueError:  # an int too long to print
        return type(value).__name__
