"""A campaign as one self-contained HTML file: an index of the cases (failed first, with the failing
expectation and its evidence, each linking to its case), then per test the verdict and why, every
expectation checked, every step with its screenshot (click to enlarge), and the path drawn on the
app graph (inline SVG, labels kept inside and apart). Everything the app or a test provides
(labels, reasons, intents) is escaped: a screen text must never become markup.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import networkx as nx

from appatlas.agent.campaign import CampaignResult, CaseResult
from appatlas.agent.knowledge import Knowledge

__all__ = ["html_report", "path_svg"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:2rem}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:.3rem;color:#fff;font-size:.8rem}
.passed{background:#2e7d32}.flaky{background:#ef6c00}.failed{background:#c62828}.not_run{background:#757575}
.pending{background:#757575}
table{border-collapse:collapse;margin:.5rem 0} td,th{border:1px solid #ddd;padding:.3rem .5rem;vertical-align:top;
font-size:.85rem} img.shot{width:108px;border:1px solid #ccc;cursor:zoom-in}
img.shot:focus{width:432px;cursor:zoom-out;outline:2px solid #1565c0}
.summary td{border:none;padding:.1rem .8rem .1rem 0}
.holds{color:#2e7d32}.broken{color:#c62828;font-weight:600}
"""
THUMB_WIDTH = 432  # drawn at a quarter; a click focuses it and shows it at full size (CSS, no script)
_ORDER = {"failed": 0, "flaky": 1, "not_run": 2, "pending": 3, "passed": 4}


def html_report(result: CampaignResult, *, knowledge: Knowledge | None = None, title: str = "appatlas campaign") -> str:
    """The HTML report of `result` (with path drawings when `knowledge` holds the app graph)."""
    e = html.escape
    counts = result.to_json()["counts"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
             f"<style>{_STYLE}</style></head><body><h1>{e(title)}</h1>",
             "<table class='summary'>",
             *(f"<tr><td>{e(k)}</td><td>{v}</td></tr>" for k, v in counts.items()),
             f"<tr><td>time</td><td>{result.seconds:.1f} s</td></tr>",
             *(f"<tr><td>device {e(s)}</td><td>{e(state)}</td></tr>" for s, state in result.devices.items()),
             "</table>"]
    order = sorted(range(len(result.cases)), key=lambda i: (_ORDER.get(result.cases[i].status, 2), i))
    parts.append(_index_html(result, order))
    for i in order:
        parts.append(_case_html(result.cases[i], knowledge, anchor=f"case-{i + 1}"))
    parts.append("</body></html>")
    return "\n".join(parts)


def _failing(case: CaseResult) -> str:
    """What a failed case's last attempt found: its first broken expectation and the evidence, else why."""
    last = case.attempts[-1] if case.attempts else {}
    broken = [c for c in last.get("checks", []) if not c.get("holds")]
    if broken:
        return f"expected {broken[0].get('expectation')}, but {broken[0].get('evidence')}"
    return str(last.get("reason", ""))


def _index_html(result: CampaignResult, order: list[int]) -> str:
    e = html.escape
    rows = ["<h2>Cases</h2><table class='index'><tr><th>status</th><th>case</th><th>intent</th><th>why</th></tr>"]
    for i in order:
        c = result.cases[i]
        why = _failing(c) if c.status != "passed" else ""
        rows.append(f"<tr><td><span class='badge {e(c.status)}'>{e(c.status)}</span></td>"
                    f"<td><a href='#case-{i + 1}'>{e(c.name)}</a></td><td>{e(c.intent)}</td><td>{e(why)}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _case_html(case: CaseResult, knowledge: Knowledge | None, *, anchor: str = "") -> str:
    e = html.escape
    out = [f"<h2 id='{e(anchor)}'><span class='badge {e(case.status)}'>{e(case.status)}</span> {e(case.name)}</h2>",
           f"<p>Intent: {e(case.intent)}</p>"]
    for i, attempt in enumerate(case.attempts, 1):
        verdict = {"passed": "pass", "inconclusive": "inconclusive"}.get(str(attempt.get("status")), "") or (
            "pass" if attempt.get("passed") else "fail")
        out.append(f"<h3>Attempt {i} on {e(str(attempt.get('device')))}: {verdict}</h3>"
                   f"<p>Why: {e(str(attempt.get('reason', '')))}</p>")
        checks = attempt.get("checks", [])
        if checks:
            out.append("<table><tr><th></th><th>expectation</th><th>evidence</th></tr>")
            for c in checks:
                ok = bool(c.get("holds"))
                out.append(f"<tr><td class='{'holds' if ok else 'broken'}'>{'✓' if ok else '✗'}</td>"
                           f"<td>{e(str(c.get('expectation', '')))}</td><td>{e(str(c.get('evidence', '')))}</td></tr>")
            out.append("</table>")
        steps = attempt.get("steps", [])
        if knowledge is not None and steps:
            out.append(path_svg(knowledge, [str(s.get("known_as") or s.get("screen", "")) for s in steps]))
        out.append("<table><tr><th>#</th><th>screen</th><th>action</th><th>decided by</th><th>why</th>"
                   "<th>outcome</th></tr>")
        for s in steps:
            out.append(f"<tr><td>{e(str(s.get('index', '')))}</td><td>{_thumb(str(s.get('screenshot', '')))}"
                       f"<br><code>{e(str(s.get('screen', ''))[:10])}</code></td>"
                       f"<td>{e(str(s.get('action', '')))}</td><td>{e(str(s.get('source', '')))}</td>"
                       f"<td>{e(str(s.get('reason', '')))}</td><td>{e(str(s.get('outcome', '')))}</td></tr>")
        out.append("</table>")
    return "\n".join(out)


def _thumb(path: str) -> str:
    """A small inline image of a step's screenshot ('' when there is none)."""
    if not path or not Path(path).is_file():
        return ""
    try:
        from PIL import Image

        with Image.open(Path(path)) as img:
            img = img.convert("RGB")
            img.thumbnail((THUMB_WIDTH, THUMB_WIDTH * 3))
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=70)
    except (OSError, ValueError):
        return ""
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f"<img class='shot' tabindex='0' alt='screenshot (click to enlarge)' src='data:image/jpeg;base64,{data}'>"


def path_svg(knowledge: Knowledge, path: list[str], *, size: int = 560, max_nodes: int = 60) -> str:
    """The app graph around `path` (screen keys in order) as inline SVG, the path drawn in red."""
    graph = knowledge.graph()
    keep = [k for k in dict.fromkeys(path) if k in graph]
    for k in list(keep):
        keep += [n for n in graph.successors(k) if n not in keep][:4]
    keep = keep[:max_nodes] or list(graph.nodes)[:max_nodes]
    if not keep:
        return ""
    sub = nx.DiGraph(graph.subgraph(keep))
    pos = nx.spring_layout(sub, seed=0) if len(sub) > 1 else {keep[0]: (0.0, 0.0)}
    pad, right = 20, 130  # room on the right for the labels of the right-most screens

    def xy(n: str) -> tuple[float, float]:
        x, y = pos[n]
        return pad + (x + 1) / 2 * (size - pad - right), pad + (y + 1) / 2 * (size - 2 * pad)

    e = html.escape
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{size}' height='{size}' viewBox='0 0 {size} {size}' "
           "role='img' aria-label='path on the app graph'>",
           "<defs><marker id='arrow' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='6' markerHeight='6' "
           "orient='auto'><path d='M0,0L10,5L0,10z' fill='#c62828'/></marker></defs>"]
    for u, v in sub.edges:
        (x1, y1), (x2, y2) = xy(u), xy(v)
        out.append(f"<line x1='{x1:.1f}' y1='{y1:.1f}' x2='{x2:.1f}' y2='{y2:.1f}' stroke='#ccc'/>")
    hops = [(a, b) for a, b in zip(path, path[1:], strict=False) if a in pos and b in pos and a != b]
    placed: list[tuple[float, float, float, float]] = []  # label boxes drawn so far (hop numbers too)
    for i, (u, v) in enumerate(hops, 1):
        (x1, y1), (x2, y2) = xy(u), xy(v)
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2
        placed.append((mx, my - 8, mx + 5.5 * len(str(i)), my + 1))
        out.append(f"<line x1='{x1:.1f}' y1='{y1:.1f}' x2='{x2:.1f}' y2='{y2:.1f}' stroke='#c62828' "
                   f"stroke-width='2' marker-end='url(#arrow)'/><text x='{mx:.1f}' y='{my:.1f}' font-size='9' "
                   f"fill='#c62828'>{i}</text>")
    on_path = set(path)
    # the path's screens first, so their labels get the places nearest their dots
    for n in sorted(sub.nodes, key=lambda k: k not in on_path):
        x, y = xy(n)
        info = knowledge.screens.get(n)
        name = ((info.activity.rsplit(".", 1)[-1] if info else "") or n[:6])[:22]
        fill = "#c62828" if n in on_path else "#90a4ae"
        width = 5.6 * len(name)
        lx, ly = (x + 8, y + 3) if x + 8 + width <= size - 2 else (x - 8 - width, y + 3)
        for _ in range(12):  # move down, then up, until it overlaps no other label
            box = (lx, ly - 9, lx + width, ly + 2)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                break
            ly += 11
        ly = min(max(ly, 10.0), size - 3.0)
        placed.append((lx, ly - 9, lx + width, ly + 2))
        out.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='6' fill='{fill}'><title>{e(n)}</title></circle>"
                   f"<text x='{lx:.1f}' y='{ly:.1f}' font-size='10' paint-order='stroke' stroke='#fff' "
                   f"stroke-width='3'>{e(name)}</text>")
    out.append("</svg>")
    return "".join(out)

