"""JUnit XML output, so CI systems show the audit in their test tab.

``fairaudit check ... --junit PATH``: one ``<testcase>`` per check in a single
``<testsuite>`` (the root element, which Jenkins, GitLab, Azure and the common GitHub
test-report actions all read). ``fail`` → ``<failure>``, ``error`` → ``<error>``,
``skipped`` → ``<skipped>`` (a ``<failure>`` under ``--require``); ``inconclusive`` passes
(with its sentence in ``<system-out>``) unless ``fail_on`` is ``inconclusive``, mirroring
the exit code.

``fairaudit compare ... --junit PATH``: one test case per compared check; a regression
(or a check new in CURRENT that fails, or under ``--strict`` one missing from CURRENT) is a ``<failure>``, a newly inconclusive check a
failure only under ``--fail-on inconclusive``.

Each test case is named by the check id, its ``classname`` is ``fairaudit.<target
stem>`` (dots and slashes would be read as packages), and the failure text carries the
statistic with its interval, tolerance and method, the draws, and the counterexample
with its replay command. The suite's ``<properties>`` record target, sha256, seed,
confidence and tool version. Each test case's ``time`` is the seconds the check took in
this run (measured by the command line's progress display, ``times``); the JSON result
carries no timings (it is a pure function of target, data, configuration and seed), so a
JUnit file made from a saved JSON has time 0. The suite's time is their sum. Characters
XML 1.0 cannot hold are dropped.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from .text import fmt_number

_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(s) -> str:
    return _ILLEGAL.sub("", "" if s is None else str(s))


def _stem(path: str) -> str:
    base = re.split(r"[\\/]", str(path or "target"))[-1]
    base = re.sub(r"\.(py|csv|parquet)$", "", base)
    return re.sub(r"[^A-Za-z0-9_-]+", "_", base) or "target"


def check_detail(c: dict) -> str:
    """The text of a check's test case: message, statistic, draws, counterexample, replay."""
    lines = [c.get("message", "")]
    s = c.get("statistic")
    if s:
        ci = s.get("ci") or [None, None]
        lines.append(f"{s['name']} = {fmt_number(s.get('estimate'))}, interval [{fmt_number(ci[0])}, {fmt_number(ci[1])}], "
                     f"tolerance {fmt_number(s.get('tolerance'))} (violation {s.get('violation', 'above')}); "
                     f"method: {s.get('method') or '—'}")
    lines.append(f"verdict: {c.get('verdict')}; draws: {c.get('draws', 0)}")
    ev = c.get("evidence") or {}
    if ev.get("counterexample") is not None:
        lines.append("counterexample: " + json.dumps(ev["counterexample"], default=str)[:4000])
    if ev.get("replay_command"):
        lines.append(f"replay: {ev['replay_command']}")
    if ev.get("replay"):
        r = ev["replay"]
        lines.append(f"input that caused the error: draw {r.get('draw')} of stream {r.get('stream')!r}; {r.get('generator')}")
    return "\n".join(lines)


def _properties(suite, props: dict):
    el = ET.SubElement(suite, "properties")
    for k, v in props.items():
        if v is not None:
            ET.SubElement(el, "property", name=k, value=_clean(v))


def _finish(suite, counts: dict) -> str:
    for k in ("tests", "failures", "errors", "skipped"):
        suite.set(k, str(counts[k]))
    ET.indent(suite, space="  ")
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def junit_xml(d: dict, times: dict[str, float] | None = None) -> str:
    """JUnit XML text of an audit result dict (as in the JSON); ``times``: seconds per check id."""
    times = times or {}
    checks = d.get("checks", [])
    strict = (d.get("config") or {}).get("fail_on") == "inconclusive"
    require = bool((d.get("config") or {}).get("require"))
    target = d.get("target") or {}
    cls = f"fairaudit.{_stem(target.get('path', ''))}"
    suite = ET.Element("testsuite", name=f"fairaudit {_clean(target.get('path', ''))}", tests="0", failures="0",
                       errors="0", skipped="0", time="0")
    if d.get("created"):
        suite.set("timestamp", _clean(d["created"]))
    cfg = d.get("config") or {}
    _properties(suite, {"target": target.get("path"), "target_sha256": target.get("sha256"), "kind": target.get("kind"),
                        "data": (d.get("data") or {}).get("path"), "data_sha256": (d.get("data") or {}).get("sha256"),
                        "seed": cfg.get("seed"), "confidence": cfg.get("confidence"),
                        "fail_on": cfg.get("fail_on"), "require": cfg.get("require") or None, "tool_version": d.get("tool_version"),
                        "command": d.get("command")})
    counts = {"tests": len(checks), "failures": 0, "errors": 0, "skipped": 0}
    for c in checks:
        case = ET.SubElement(suite, "testcase", classname=cls, name=_clean(c["id"]),
                             time=f"{float(times.get(c['id'], 0.0)):.3f}")
        v = c["verdict"]
        msg = _clean(f"{v}: {c.get('message', '')}")
        detail = _clean(check_detail(c))
        if v == "fail" or (v == "inconclusive" and strict) or (v == "skipped" and require):
            counts["failures"] += 1
            ET.SubElement(case, "failure", message=msg, type=v).text = detail
        elif v == "error":
            counts["errors"] += 1
            ET.SubElement(case, "error", message=msg, type="error").text = detail
        elif v == "skipped":
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=_clean(c.get("message", "")))
        else:
            ET.SubElement(case, "system-out").text = detail
    suite.set("time", f"{sum(float(times.get(c['id'], 0.0)) for c in checks):.3f}")
    return _finish(suite, counts)


def write_junit(d: dict, path, times: dict[str, float] | None = None) -> None:
    from .outputs import write_text
    write_text(path, junit_xml(d, times))


def comparison_junit_xml(cmp) -> str:
    """JUnit XML of a :class:`fairaudit.compare.Comparison`: one test case per check."""
    d = cmp.to_dict()
    cls = f"fairaudit.compare.{_stem(d['current'].get('path', ''))}"
    suite = ET.Element("testsuite", name=_clean(f"fairaudit compare {d['baseline'].get('path')} → {d['current'].get('path')}"),
                       tests="0", failures="0", errors="0", skipped="0", time="0")
    _properties(suite, {"baseline": d["baseline"].get("path"), "baseline_sha256": d["baseline"].get("sha256"),
                        "current": d["current"].get("path"), "current_sha256": d["current"].get("sha256"),
                        "confidence": d.get("confidence"), "rule": d.get("rule")})
    counts = {"tests": len(cmp.checks), "failures": 0, "errors": 0, "skipped": 0}
    for c in cmp.checks:
        case = ET.SubElement(suite, "testcase", classname=cls, name=_clean(c.id), time="0")
        text = "\n".join([f"status: {c.status} (verdict {c.baseline_verdict} → {c.current_verdict})"]
                         + [r for r in c.reasons if not r.startswith("verdict ")])
        for s in c.statistics:
            text += (f"\n{s.name}: baseline {fmt_number(s.baseline)} [{fmt_number(s.baseline_ci[0])}, {fmt_number(s.baseline_ci[1])}], "
                     f"current {fmt_number(s.current)} [{fmt_number(s.current_ci[0])}, {fmt_number(s.current_ci[1])}], worse by "
                     f"{fmt_number(s.worsening)} [{fmt_number(s.worsening_ci[0])}, {fmt_number(s.worsening_ci[1])}] (tolerance {fmt_number(s.tolerance)})")
        first = c.reasons[0] if c.reasons else c.status
        if c.regression or (c.status == "newly inconclusive" and cmp.fail_on == "inconclusive"):
            counts["failures"] += 1
            ET.SubElement(case, "failure", message=_clean(f"{c.status}: {first}"), type=c.status).text = _clean(text)
        elif c.status in ("new", "missing"):      # missing fails only under --strict (above)
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=_clean(first))
        else:
            ET.SubElement(case, "system-out").text = _clean(text)
    return _finish(suite, counts)
