"""A campaign as JUnit XML (testsuites / testsuite / testcase / failure), the format CI systems read.

A flaky case (failed, then passed on another device) is a passing testcase whose system-out says so.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

from appatlas.agent.campaign import CampaignResult, CaseResult

__all__ = ["junit_xml"]


def junit_xml(result: CampaignResult, *, suite: str = "appatlas campaign") -> str:
    """The JUnit XML document of `result`."""
    failures = sum(c.status == "failed" for c in result.cases)
    errors = sum(c.status == "not_run" for c in result.cases)
    seconds = f"{result.seconds:.3f}"
    root = ET.Element("testsuites", name=suite, tests=str(len(result.cases)), failures=str(failures),
                      errors=str(errors), time=seconds)
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(result.cases)), failures=str(failures),
                       errors=str(errors), skipped="0", time=seconds,
                       timestamp=time.strftime("%Y-%m-%dT%H:%M:%S"))
    props = ET.SubElement(ts, "properties")
    for serial, state in result.devices.items():
        ET.SubElement(props, "property", name=f"device.{serial}", value=state)
    for case in result.cases:
        _case(ts, case)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _case(parent: ET.Element, case: CaseResult) -> None:
    seconds = sum(float(a.get("seconds", 0.0)) for a in case.attempts)
    tc = ET.SubElement(parent, "testcase", classname="appatlas", name=case.name, time=f"{seconds:.3f}")
    last = case.attempts[-1] if case.attempts else {}
    if case.status == "failed":
        failure = ET.SubElement(tc, "failure", message=str(last.get("reason", "")), type="broken")
        failure.text = _steps(last)
    elif case.status == "not_run":
        error = ET.SubElement(tc, "error", message="no device was left to run it", type="not_run")
        error.text = "every device dropped out before this case could run"
    lines = [f"intent: {case.intent}", f"status: {case.status}"]
    for i, a in enumerate(case.attempts, 1):
        lines.append(f"attempt {i} on {a.get('device')}: {'pass' if a.get('passed') else 'fail'} — {a.get('reason')}")
    if case.status == "flaky":
        lines.append("flaky: failed once, then passed on another device")
    ET.SubElement(tc, "system-out").text = "\n".join(lines)


def _steps(attempt: dict) -> str:
    """The expectations checked (✓/✗ with their evidence), then the steps."""
    checks = [f"{'✓' if c.get('holds') else '✗'} {c.get('expectation')}: {c.get('evidence')}"
              for c in attempt.get("checks", [])]
    steps = [f"{s.get('index')}. {s.get('action')} [{s.get('source')}] {s.get('reason')}"
             for s in attempt.get("steps", [])]
    return "\n".join(checks + ([""] if checks and steps else []) + steps)
