"""A web page as a Screen: one walk of the DOM in the page (roles, accessible names, boxes, flags), and
the widget tree built from it in Python.

The walk runs as one `page.evaluate` call (a few ms for a page of a few hundred elements). It keeps
what a person or a screen reader would meet: elements with a role (explicit `role=`, or the implicit
role of their tag: a[href] link, button, input by type, select, list, heading, img, landmarks …),
blocks of text, elements a script made clickable (`onclick`, `tabindex`, a pointer cursor that starts
there), and scrolling containers; other wrappers are transparent. Accessible names follow the
accname rules that matter in practice: aria-label, aria-labelledby, <label>, alt, the element's own
text for buttons/links/options/headings, then title; placeholders are hints.

Role → class: each role gets a `web.*` class named after the Android view of the same kind
(`web.Button`, `web.EditText`, `web.CheckBox`, `web.Switch`, `web.ListView`, …), so everything
above `devices/` reads a web screen as it reads an Android one, without asking which it is.
Resource id: `id` (unless it looks generated, like `:r1:` or `ember123`), else `data-testid`,
else `name`. Bounds are in document pixels, so they do not move when the page scrolls, and the
tree holds the whole document, not only the part in the viewport (clicks scroll into view).

Windows: the document is the first window; each open dialog (<dialog open>, role=dialog or
alertdialog) is a window above it, as Android draws a dialog; while a modal dialog is open the
document's widgets are disabled (they are inert). A <select> is a `web.Spinner` whose options are
its children (`web.CheckedTextView`, checked = selected), laid side by side inside the select's box:
tapping one selects it.
"""

from __future__ import annotations

from typing import Any

from appatlas.hierarchy import ROOT_CLASS
from appatlas.types import Bounds, Widget

__all__ = ["DIALOG_IDS", "FRAMES_READY_JS", "PICK_JS", "WALK_JS", "build_root", "frame_of", "opens_tab"]

CLICKABLE, LONG, EDITABLE, SCROLLABLE, CHECKABLE, CHECKED, ENABLED, FOCUSED, SELECTED, PASSWORD, NEW_TAB = (
    1 << i for i in range(11))
DIALOG_IDS = {"message": "appatlas_dialog_message", "input": "appatlas_dialog_input",
              "accept": "appatlas_dialog_accept", "dismiss": "appatlas_dialog_dismiss"}

# The walk. It returns the page as data, and keeps the walked elements, in the same order, under a
# symbol on `window` (PICK_JS takes the one an action chose: no second walk, no handle to serialize).
WALK_JS = r"""
(arg) => {
  const CLASS = {button: 'web.Button', link: 'web.Link', textbox: 'web.EditText', searchbox: 'web.EditText',
    spinbutton: 'web.EditText', checkbox: 'web.CheckBox', switch: 'web.Switch', radio: 'web.RadioButton',
    combobox: 'web.Spinner', listbox: 'web.ListView', option: 'web.CheckedTextView', list: 'web.ListView',
    listitem: 'web.ListItem', table: 'web.GridView', grid: 'web.GridView', treegrid: 'web.GridView',
    row: 'web.TableRow', heading: 'web.TextView', paragraph: 'web.TextView', img: 'web.ImageView',
    navigation: 'web.Nav', banner: 'web.Toolbar', contentinfo: 'web.Footer', main: 'web.Main', form: 'web.Form',
    tab: 'web.Tab', tablist: 'web.TabWidget', menu: 'web.Menu', menubar: 'web.Menu', menuitem: 'web.MenuItem',
    menuitemcheckbox: 'web.CheckBox', menuitemradio: 'web.RadioButton', slider: 'web.SeekBar',
    progressbar: 'web.ProgressBar', alert: 'web.TextView', status: 'web.TextView', iframe: 'web.WebView',
    dialog: 'web.Dialog', alertdialog: 'web.Dialog', cell: 'web.TextView', gridcell: 'web.TextView',
    columnheader: 'web.TextView', rowheader: 'web.TextView', article: 'web.ViewGroup', region: 'web.ViewGroup',
    group: 'web.ViewGroup', search: 'web.ViewGroup', tree: 'web.ListView', treeitem: 'web.ListItem'};
  const ACTIVE = new Set(['button', 'link', 'textbox', 'searchbox', 'spinbutton', 'checkbox', 'switch', 'radio',
    'combobox', 'option', 'tab', 'menuitem', 'menuitemcheckbox', 'menuitemradio', 'slider']);
  const TEXTUAL = new Set(['heading', 'paragraph', 'img', 'alert', 'status', 'cell', 'gridcell', 'columnheader',
    'rowheader']);
  const NAME_FROM_CONTENT = new Set(['button', 'link', 'option', 'tab', 'menuitem', 'menuitemcheckbox',
    'menuitemradio', 'heading', 'cell', 'gridcell', 'columnheader', 'rowheader', 'checkbox', 'radio', 'switch',
    'treeitem', 'listitem', 'row', 'paragraph', 'alert', 'status']);
  const SKIP = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'HEAD', 'META', 'LINK', 'TITLE', 'SVG', 'BR',
    'WBR', 'OPTGROUP']);
  const INNER = 'a[href],button,input:not([type=hidden]),select,textarea,[role],[onclick],[tabindex],img,' +
    'h1,h2,h3,h4,h5,h6,p,ul,ol,table,iframe,dialog,[contenteditable],summary,label';
  const CONTROLS = 'a[href],button,input:not([type=hidden]),select,textarea,[onclick],[role=button],' +
    '[role=link],[role=checkbox],[role=switch],[role=radio],[role=tab],[role=menuitem],[role=option]';
  const GENERATED = /^(:r|ember\d|react-|mui-|radix-|headlessui-)|\d{4,}|[0-9a-f]{8,}|^[a-z]{1,3}\d+$/i;
  const clean = (s) => (s || '').replace(/\s+/g, ' ').trim().slice(0, 300);
  const sx = window.scrollX, sy = window.scrollY;
  const de = document.documentElement;
  const dw = Math.max(de.scrollWidth, window.innerWidth), dh = Math.max(de.scrollHeight, window.innerHeight);
  const modal = document.querySelector('dialog:modal') ||
    Array.from(document.querySelectorAll('[role=dialog][aria-modal=true],[role=alertdialog][aria-modal=true]'))
      .find(e => e.getClientRects().length > 0) || null;

  function roleOf(el) {
    const explicit = (el.getAttribute('role') || '').trim().split(/\s+/)[0];
    if (explicit && explicit !== 'presentation' && explicit !== 'none' && explicit !== 'generic') return explicit;
    const tag = el.tagName;
    if (tag === 'INPUT') {
      const t = (el.getAttribute('type') || 'text').toLowerCase();
      if (t === 'hidden') return '';
      if (t === 'checkbox') return 'checkbox';
      if (t === 'radio') return 'radio';
      if (['button', 'submit', 'reset', 'image'].includes(t)) return 'button';
      if (t === 'range') return 'slider';
      if (t === 'number') return 'spinbutton';
      if (t === 'search') return 'searchbox';
      return 'textbox';
    }
    if (el.isContentEditable && el.hasAttribute('contenteditable')) return 'textbox';
    const implicit = {A: el.hasAttribute('href') ? 'link' : '', BUTTON: 'button', SUMMARY: 'button',
      TEXTAREA: 'textbox', SELECT: (el.multiple || el.size > 1) ? 'listbox' : 'combobox', OPTION: 'option',
      UL: 'list', OL: 'list', MENU: 'list', LI: 'listitem', TABLE: 'table', TR: 'row', TD: 'cell',
      TH: 'columnheader', H1: 'heading', H2: 'heading', H3: 'heading', H4: 'heading', H5: 'heading', H6: 'heading',
      IMG: el.getAttribute('alt') === '' ? '' : 'img', NAV: 'navigation', MAIN: 'main', FORM: 'form',
      DIALOG: 'dialog', P: 'paragraph', IFRAME: 'iframe', PROGRESS: 'progressbar', ARTICLE: 'article',
      HEADER: el.closest('article,aside,main,nav,section') ? '' : 'banner',
      FOOTER: el.closest('article,aside,main,nav,section') ? '' : 'contentinfo'};
    return implicit[tag] || '';
  }
  function nameOf(el, role) {
    const label = el.getAttribute('aria-label');
    if (label && label.trim()) return clean(label);
    const by = el.getAttribute('aria-labelledby');
    if (by) {
      const t = clean(by.split(/\s+/).map(id => { const e = el.ownerDocument.getElementById(id);
        return e ? (e.innerText || e.textContent) : ''; }).join(' '));
      if (t) return t;
    }
    if (el.labels && el.labels.length) {
      const t = clean(Array.from(el.labels).map(l => l.innerText).join(' '));
      if (t) return t;
    }
    if (el.tagName === 'IMG' || (el.tagName === 'INPUT' && el.type === 'image')) {
      const alt = el.getAttribute('alt');
      if (alt) return clean(alt);
    }
    if (el.tagName === 'INPUT' && ['submit', 'button', 'reset'].includes(el.type))
      return clean(el.value) || (el.type === 'submit' ? 'Submit' : el.type === 'reset' ? 'Reset' : '');
    if (NAME_FROM_CONTENT.has(role)) {
      const t = clean(el.innerText);
      if (t) return t;
      const img = el.querySelector('img[alt]');
      if (img && img.alt) return clean(img.alt);
    }
    return clean(el.getAttribute('title'));
  }
  function idOf(el) {
    for (const v of [el.id, el.getAttribute('data-testid'), el.getAttribute('data-test-id'), el.getAttribute('name')])
      if (v && !GENERATED.test(v)) return v.slice(0, 120);
    return '';
  }
  // fr: the document being walked: the page's (TOP), or a same-origin iframe's, with where its viewport's
  // corner is in page pixels (ox, oy), the walked index of its <iframe> (i) and the outermost <iframe> (host).
  const TOP = {ox: sx, oy: sy, i: -1, host: null};
  const styleOf = (el) => el.ownerDocument.defaultView.getComputedStyle(el);
  function box(el, fr) {
    const r = el.getBoundingClientRect();
    const x1 = Math.max(0, Math.floor(r.left + fr.ox)), y1 = Math.max(0, Math.floor(r.top + fr.oy));
    return [x1, y1, Math.max(x1, Math.min(dw, Math.ceil(r.right + fr.ox))),
            Math.max(y1, Math.min(dh, Math.ceil(r.bottom + fr.oy)))];
  }
  function disabled(el, fr) {
    if (el.disabled || el.closest('[aria-disabled=true],[inert],fieldset:disabled')) return true;
    return modal !== null && !modal.contains(fr.host || el);
  }
  function pointerStarts(el, style) {
    if (style.cursor !== 'pointer') return false;
    const p = el.parentElement;
    return !p || styleOf(p).cursor !== 'pointer';
  }
  // A same-origin iframe's document, walked as part of the page (a cross-origin one cannot be read: it
  // stays one web.WebView, like an Android WebView without accessibility).
  function frameDoc(el) {
    try { const d = el.contentDocument; return d && d.body ? d : null; } catch (e) { return null; }
  }
  function scrolls(el, style) {
    return /(auto|scroll)/.test(style.overflowY + style.overflowX) &&
      (el.scrollHeight > el.clientHeight + 1 || el.scrollWidth > el.clientWidth + 1);
  }

  const nodes = [], els = [], windows = [{c: 'web.Document', b: [0, 0, dw, dh]}];
  function emit(el, parent, win, cls, id, text, desc, hint, b, flags, fr) {
    nodes.push({p: parent, w: win, c: cls, r: id, t: text, d: desc, h: hint, b: b, f: flags, fr: fr.i});
    els.push(el);
    return nodes.length - 1;
  }
  function flagsOf(el, role, fr) {
    let f = disabled(el, fr) ? 0 : 64;
    if (el.ownerDocument.activeElement === el) f |= 128;
    if (el.getAttribute('aria-selected') === 'true' || (el.getAttribute('aria-current') || 'false') !== 'false') f |= 256;
    return f;
  }
  function visit(el, parent, win, inNav, fr) {
    if (SKIP.has(el.tagName.toUpperCase()) || el.getAttribute('aria-hidden') === 'true' || el.hidden) return;
    const style = styleOf(el);
    if (style.display === 'none') return;
    const role = roleOf(el);
    if ((role === 'dialog' || role === 'alertdialog') && el.getClientRects().length > 0) {
      windows.push({c: 'web.Dialog', b: box(el, fr), r: idOf(el), t: nameOf(el, role)});
      win = windows.length - 1;
      parent = -1;
    }
    const rendered = el.getClientRects().length > 0 && style.visibility !== 'hidden';
    const kids = () => { for (const c of el.children) visit(c, parent, win, inNav || role === 'navigation', fr);
      if (el.shadowRoot) for (const c of el.shadowRoot.children) visit(c, parent, win, inNav, fr); };
    if (!rendered) {
      if (style.display === 'contents' || style.visibility === 'hidden') kids();
      return;
    }
    const b = box(el, fr), id = idOf(el);
    let f = flagsOf(el, role, fr);
    if (ACTIVE.has(role)) {
      const name = nameOf(el, role);
      if (role === 'combobox' && el.tagName === 'SELECT') {
        const opt = el.selectedOptions[0];
        const me = emit(el, parent, win, 'web.Spinner', id, opt ? clean(opt.text) : '', name, '', b, f, fr);
        const opts = Array.from(el.options), w = Math.max(1, Math.floor((b[2] - b[0]) / Math.max(1, opts.length)));
        opts.forEach((o, i) => {
          const ob = [b[0] + i * w, b[1], i === opts.length - 1 ? b[2] : b[0] + (i + 1) * w, b[3]];
          const of = (o.disabled || !(f & 64) ? 0 : 64) | 1 | 16 | (o.selected ? 32 | 256 : 0);
          emit(o, me, win, 'web.CheckedTextView', id, clean(o.text), '', '', ob, of, fr);
        });
        return;
      }
      if (['textbox', 'searchbox', 'spinbutton', 'combobox'].includes(role) && !el.readOnly) {
        f |= 4 | 1;
        if (el.type === 'password') f |= 512;
        const value = el.isContentEditable && !('value' in el) ? clean(el.innerText) : (el.value || '');
        emit(el, parent, win, CLASS[role] || 'web.EditText', id, value.slice(0, 300), name,
             clean(el.getAttribute('placeholder')) || name, b, f, fr);
        return;
      }
      f |= 1;
      const opener = el.closest('a[target],area[target]') || (el.form && el.type === 'submit' ? el.form : null);
      const target = opener ? (opener.getAttribute('target') || '').toLowerCase() : '';
      if (target && !['_self', '_top', '_parent'].includes(target)) f |= 1024;  // opens another tab
      if (['checkbox', 'switch', 'radio', 'menuitemcheckbox', 'menuitemradio'].includes(role)) {
        f |= 16;
        const aria = el.getAttribute('aria-checked') || el.getAttribute('aria-pressed');
        if (el.checked || aria === 'true') f |= 32;
      } else if (el.getAttribute('aria-pressed') === 'true') f |= 16 | 32;
      const me = emit(el, parent, win, CLASS[role] || 'web.View', id, name, '', '', b, f, fr);
      if (el.querySelector(CONTROLS)) { parent = me; kids(); }  // a control inside a control (rare)
      return;
    }
    if (role === 'iframe') {
      const me = emit(el, parent, win, 'web.WebView', id, '', nameOf(el, role), '', b, f, fr);
      const doc = frameDoc(el);
      if (doc) {  // its viewport starts inside the iframe's border and padding
        const r = el.getBoundingClientRect();
        const inner = {ox: fr.ox + r.left + el.clientLeft + parseFloat(style.paddingLeft || '0'),
                       oy: fr.oy + r.top + el.clientTop + parseFloat(style.paddingTop || '0'), i: me, host: fr.host || el};
        visit(doc.body, me, win, inNav, inner);
      }
      return;
    }
    if (role === 'dialog' || role === 'alertdialog') { kids(); return; }
    const clickable = el.hasAttribute('onclick') || (el.hasAttribute('tabindex') && el.tabIndex >= 0) ||
      pointerStarts(el, style);
    const scrolling = el !== el.ownerDocument.body && scrolls(el, style);
    const leaf = !el.querySelector(INNER);
    if (clickable) f |= 1;
    if (scrolling) f |= 8;
    let own = '';
    for (const c of el.childNodes) if (c.nodeType === 3) own += c.textContent;
    own = clean(own);
    if (role === 'img') { emit(el, parent, win, 'web.ImageView', id, '', nameOf(el, role), '', b, f, fr); return; }
    if (role && CLASS[role] && !(TEXTUAL.has(role) && leaf)) {
      let cls = scrolling ? 'web.ScrollView' : CLASS[role];
      if (role === 'list' && (inNav || el.closest('nav,[role=navigation],[role=menubar],[role=tablist]')))
        cls = 'web.Menu';  // a menu of links is the app's chrome, not rows of data
      const name = TEXTUAL.has(role) || role === 'listitem' || role === 'row' ? '' : nameOf(el, role);
      parent = emit(el, parent, win, cls, id, TEXTUAL.has(role) ? own : '', name, '', b, f, fr);
      kids();
      return;
    }
    const text = clean(el.innerText);
    if (leaf && (text || clickable)) {
      const label = clean(el.getAttribute('aria-label'));
      emit(el, parent, win, clickable ? 'web.View' : 'web.TextView', id, text, label !== text ? label : '', '', b, f,
           fr);
      return;
    }
    if (clickable || scrolling || own) {
      parent = emit(el, parent, win, scrolling ? 'web.ScrollView' : clickable ? 'web.View' : 'web.TextView', id,
                    own, '', '', b, f, fr);
    }
    kids();
  }
  if (document.body) visit(document.body, -1, 0, false, TOP);
  const data = {nodes: nodes, windows: windows, vw: window.innerWidth, vh: window.innerHeight, sx: sx, sy: sy};
  window[Symbol.for('appatlas.walked')] = els;
  return data;
}
"""


def _widget(node: dict[str, Any], children: list[Widget], package: str) -> Widget:
    f = int(node["f"])
    x1, y1, x2, y2 = (int(v) for v in node["b"])
    return Widget(class_name=node["c"], bounds=Bounds(x1, y1, max(x1, x2), max(y1, y2)), resource_id=node["r"],
                  text=node["t"], content_desc=node["d"], hint=node["h"], package=package,
                  clickable=bool(f & CLICKABLE), long_clickable=bool(f & LONG), editable=bool(f & EDITABLE),
                  scrollable=bool(f & SCROLLABLE), checkable=bool(f & CHECKABLE), checked=bool(f & CHECKED),
                  enabled=bool(f & ENABLED), focused=bool(f & FOCUSED), selected=bool(f & SELECTED),
                  password=bool(f & PASSWORD), children=tuple(children))


# The element the last walk put at `index`, or null when the page changed since (a new document, or the
# element left it). The walk keeps its elements on the page's window; an element of a same-origin iframe
# is taken from inside that iframe's document (`window.top`), so Playwright acts on it in its own frame.
PICK_JS = """(i) => { const els = window.top[Symbol.for('appatlas.walked')];
  const el = els && els[i]; return el && el.isConnected ? el : null; }"""


# Whether each same-origin iframe's document is parsed (a form posted inside one loads its answer there:
# the page's own load state says nothing of it). Cross-origin iframes are not walked, so not waited for.
FRAMES_READY_JS = """() => { const ready = (doc) => Array.from(doc.querySelectorAll('iframe')).every(f => {
    let d = null; try { d = f.contentDocument; } catch (e) { return true; }
    return !d || (d.readyState !== 'loading' && d.body !== null && ready(d)); });
  return ready(document); }"""


def frame_of(walk: dict[str, Any], index: int) -> int:
    """The walked index of the <iframe> whose document holds node `index`; -1: the page itself."""
    return int(walk["nodes"][index].get("fr", -1))


def opens_tab(walk: dict[str, Any], index: int) -> bool:
    """Whether clicking the walked node `index` opens another tab (a link or form with a target)."""
    return bool(int(walk["nodes"][index]["f"]) & NEW_TAB)


def build_root(walk: dict[str, Any], *, package: str, extra_windows: tuple[Widget, ...] = (),
               disable: bool = False) -> tuple[Widget, list[Widget]]:
    """The screen's root widget from one walk, and the widget of each walked node (same order).

    `extra_windows` are drawn above the page (a JS alert the page cannot draw itself); `disable`
    marks every page widget disabled (a JS dialog blocks the page).
    """
    nodes: list[dict[str, Any]] = walk["nodes"]
    if disable:
        nodes = [{**n, "f": int(n["f"]) & ~ENABLED} for n in nodes]
    kids: list[list[int]] = [[] for _ in nodes]
    tops: list[list[int]] = [[] for _ in walk["windows"]]
    for i, n in enumerate(nodes):
        (tops[int(n["w"])] if n["p"] < 0 else kids[int(n["p"])]).append(i)
    built: list[Widget | None] = [None] * len(nodes)
    for i in range(len(nodes) - 1, -1, -1):  # children always come after their parent in the walk
        built[i] = _widget(nodes[i], [built[k] for k in kids[i]], package)  # type: ignore[misc]
    windows = []
    for w, (win, members) in enumerate(zip(walk["windows"], tops, strict=True)):
        x1, y1, x2, y2 = (int(v) for v in win["b"])
        windows.append(Widget(class_name=win["c"], bounds=Bounds(x1, y1, max(x1, x2), max(y1, y2)),
                              resource_id=win.get("r", ""), content_desc=win.get("t", "") if w else "",
                              package=package, enabled=not disable,
                              children=tuple(built[k] for k in members)))  # type: ignore[misc]
    windows.extend(extra_windows)
    width = max(int(walk["vw"]), *(w.bounds.x2 for w in windows))
    height = max(int(walk["vh"]), *(w.bounds.y2 for w in windows))
    root = Widget(class_name=ROOT_CLASS, bounds=Bounds(0, 0, width, height), children=tuple(windows))
    return root, [b for b in built if b is not None]
