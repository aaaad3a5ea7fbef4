"""A campaign as one self-contained HTML file: per test, the verdict and why, every step with its
screenshot, and the path drawn on the app graph (inline SVG). Everything the app or a test
provides (labels, reasons, intents) is escaped: a screen text must never become markup.
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
font-size:.85rem} img.shot{width:108px;border:1px solid #ccc}
.summary td{border:none;padding:.1rem .8rem .1rem 0}
"""
THUMB_WIDTH = 216


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
    for case in result.cases:
        parts.append(_case_html(case, knowledge))
    parts.append("</body></html>")
    return "\n".join(parts)


def _case_html(case: CaseResult, knowledge: Knowledge | None) -> str:
    e = html.escape
    out = [f"<h2><span class='badge {e(case.status)}'>{e(case.status)}</span> {e(case.name)}</h2>",
           f"<p>Intent: {e(case.intent)}</p>"]
    for i, attempt in enumerate(case.attempts, 1):
        verdict = "pass" if attempt.get("passed") else "fail"
        out.append(f"<h3>Attempt {i} on {e(str(attempt.get('device')))}: {verdict}</h3>"
                   f"<p>Why: {e(str(attempt.get('reason', '')))}</p>")
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
    return f"<img class='shot' alt='screenshot' src='data:image/jpeg;base64,{data}'>"


def path_svg(knowledge: Knowledge, path: list[str], *, size: int = 420, max_nodes: int = 60) -> str:
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
    pad = 30

    def xy(n: str) -> tuple[float, float]:
        x, y = pos[n]
        return pad + (x + 1) / 2 * (size - 2 * pad), pad + (y + 1) / 2 * (size - 2 * pad)

    e = html.escape
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{size}' height='{size}' viewBox='0 0 {size} {size}' "
           "role='img' aria-label='path on the app graph'>",
           "<defs><marker id='arrow' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='6' markerHeight='6' "
           "orient='auto'><path d='M0,0L10,5L0,10z' fill='#c62828'/></marker></defs>"]
    for u, v in sub.edges:
        (x1, y1), (x2, y2) = xy(u), xy(v)
        out.append(f"<line x1='{x1:.1f}' y1='{y1:.1f}' x2='{x2:.1f}' y2='{y2:.1f}' stroke='#ccc'/>")
    hops = [(a, b) for a, b in zip(path, path[1:], strict=False) if a in pos and b in pos and a != b]
    for i, (u, v) in enumerate(hops, 1):
        (x1, y1), (x2, y2) = xy(u), xy(v)
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2
        out.append(f"<line x1='{x1:.1f}' y1='{y1:.1f}' x2='{x2:.1f}' y2='{y2:.1f}' stroke='#c62828' "
                   f"stroke-width='2' marker-end='url(#arrow)'/><text x='{mx:.1f}' y='{my:.1f}' font-size='10' "
                   f"fill='#c62828'>{i}</text>")
    on_path = set(path)
    for n in sub.nodes:
        x, y = xy(n)
        info = knowledge.screens.get(n)
        name = (info.activity.rsplit(".", 1)[-1] if info else "") or n[:6]
        fill = "#c62828" if n in on_path else "#90a4ae"
        out.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='6' fill='{fill}'><title>{e(n)}</title></circle>"
                   f"<text x='{x + 8:.1f}' y='{y + 3:.1f}' font-size='9'>{e(name[:24])}</text>")
    out.append("</svg>")
    return "".join(out)

