"""The HTML report a tester reads: an index with failed cases first and their failing expectation,
links to each case, screenshots that enlarge, graph labels inside the drawing and apart."""

from __future__ import annotations

import re

from appatlas.agent.campaign import CampaignResult, CaseResult
from appatlas.agent.report_html import html_report, path_svg


def _case(name: str, status: str, checks: list[dict]) -> CaseResult:
    return CaseResult(name=name, intent=f"intent of {name}", status=status, attempts=[
        {"device": "v1", "passed": status == "passed", "reason": "why", "status": status, "checks": checks,
         "steps": []}])


def test_the_index_lists_failed_cases_first_with_the_failing_expectation_and_links() -> None:
    ok = {"expectation": "no error is shown", "holds": True, "evidence": "no error text on the screen"}
    bad = {"expectation": "a new 'Groceries' is shown", "holds": False,
           "evidence": "1 view(s) read 'Groceries' on 'Atlas Notes', 2 expected"}
    result = CampaignResult([_case("a_pass", "passed", [ok]), _case("b_fail", "failed", [ok, bad])], {"v1": "ok"})
    page = html_report(result)
    index = page[page.index("<h2>Cases</h2>"):page.index("</table>", page.index("<h2>Cases</h2>"))]
    assert index.index("b_fail") < index.index("a_pass")
    assert "2 expected" in index and "a new &#x27;Groceries&#x27; is shown" in index
    for anchor in re.findall(r"href='#(case-\d+)'", index):
        assert f"id='{anchor}'" in page
    assert page.index("id='case-2'") < page.index("id='case-1'")  # the failed case is described first


def test_graph_labels_stay_inside_the_drawing_and_do_not_overlap(demo_knowledge) -> None:
    keys = list(demo_knowledge.graph().nodes)[:12]
    svg = path_svg(demo_knowledge, keys, size=560)
    boxes, hops = [], []
    for x, y, name in re.findall(r"<text x='([\d.-]+)' y='([\d.-]+)' font-size='10'[^>]*>([^<]*)</text>", svg):
        x, y = float(x), float(y)
        box = (x, y - 9, x + 5.6 * len(name), y + 2)
        assert 0 <= box[0] and box[2] <= 560 and 0 <= box[1] and box[3] <= 560, (name, box)
        boxes.append(box)
    for x, y, n in re.findall(r"<text x='([\d.-]+)' y='([\d.-]+)' font-size='9'[^>]*>(\d+)</text>", svg):
        hops.append((float(x), float(y) - 8, float(x) + 5.5 * len(n), float(y) + 1))
    assert len(boxes) >= 8 and hops
    overlaps = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] + hops
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]]
    assert len(overlaps) <= len(boxes) // 10, overlaps
