"""JUnit XML (``--junit``) for audits and for compare."""
from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from fairaudit.cli import main
from fairaudit.compare import compare
from fairaudit.junit import comparison_junit_xml, junit_xml

ROOT = Path(__file__).resolve().parents[1]


def _result(fail_on="fail"):
    def chk(id_, verdict, msg, stat=True, evidence=None):
        return {"id": id_, "title": id_, "verdict": verdict, "message": msg, "draws": 500, "params": {},
                "evidence": evidence or {},
                "statistic": {"name": f"{id_}_stat", "estimate": 0.42, "ci": [0.37, 0.45], "tolerance": 0.01,
                              "method": "clopper-pearson, holm", "violation": "above"} if stat else None}
    return {"schema_version": 1, "tool_version": "0.1.0", "created": "2026-01-01T00:00:00+00:00",
            "target": {"path": "some/dir/my.allocator.py", "kind": "selection", "sha256": "ab" * 32},
            "data": None, "command": "fairaudit check some/dir/my.allocator.py",
            "config": {"seed": 3, "confidence": 0.95, "fail_on": fail_on},
            "checks": [
                chk("broome", "fail", "Reversal: individual 3 (claim 0.9) is selected less often than 7 (claim 0.2).",
                    evidence={"counterexample": {"scores": [0.9, 0.2], "k": 1}, "replay_command": "python -c 'print(1)'"}),
                chk("anonymity", "pass", "No relabelling changed anyone's chances."),
                chk("ex_interim", "inconclusive", "Cannot tell yet.\x07 (bell)"),
                chk("min_requirement", "skipped", "Skipped: applies to assignments to places.", stat=False),
                chk("tv_stability", "error", "the allocator raised ValueError on probe 2", stat=False,
                    evidence={"replay": {"draw": 4, "stream": "tv/0", "generator": "draw_generator(3, 'tv/0', 4)"}}),
            ]}


def test_one_testcase_per_check_with_counts_and_details():
    root = ET.fromstring(junit_xml(_result()))
    assert root.tag == "testsuite"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("5", "1", "1", "1")
    cases = {c.get("name"): c for c in root.findall("testcase")}
    assert list(cases) == ["broome", "anonymity", "ex_interim", "min_requirement", "tv_stability"]
    assert {c.get("classname") for c in cases.values()} == {"fairaudit.my_allocator"}
    f = cases["broome"].find("failure")
    assert f.get("type") == "fail" and f.get("message").startswith("fail: Reversal: individual 3")
    assert "broome_stat = 0.420, interval [0.370, 0.450], tolerance 0.010 (violation above); method: clopper-pearson, holm" in f.text
    assert 'counterexample: {"scores": [0.9, 0.2], "k": 1}' in f.text and "replay: python -c 'print(1)'" in f.text
    assert cases["anonymity"].find("failure") is None and "anonymity_stat" in cases["anonymity"].find("system-out").text
    assert cases["ex_interim"].find("failure") is None                      # inconclusive passes by default ...
    assert "\x07" not in cases["ex_interim"].find("system-out").text        # ... and illegal XML characters are dropped
    assert cases["min_requirement"].find("skipped") is not None
    e = cases["tv_stability"].find("error")
    assert "draw 4 of stream 'tv/0'" in e.text
    props = {p.get("name"): p.get("value") for p in root.find("properties")}
    assert props["seed"] == "3" and props["target_sha256"] == "ab" * 32 and props["confidence"] == "0.95"


def test_inconclusive_fails_under_fail_on_inconclusive():
    root = ET.fromstring(junit_xml(_result(fail_on="inconclusive")))
    assert root.get("failures") == "2"
    case = next(c for c in root.findall("testcase") if c.get("name") == "ex_interim")
    assert case.find("failure").get("type") == "inconclusive"


def test_deterministic():
    assert junit_xml(_result()) == junit_xml(copy.deepcopy(_result()))


def test_cli_junit_from_a_real_audit(tmp_path):
    out = tmp_path / "j.xml"
    res = CliRunner().invoke(main, ["check", str(ROOT / "examples" / "allocators" / "top_k.py"), "--data",
                                    str(ROOT / "examples" / "data" / "population.csv"), "--checks", "selection_rates",
                                    "--junit", str(out), "--html", ""])
    assert res.exit_code == 1
    root = ET.fromstring(out.read_text())
    case = root.find("testcase")
    assert case.get("name") == "selection_rates" and case.get("classname") == "fairaudit.top_k"
    assert "min_impact_ratio" in case.find("failure").text


def test_compare_junit():
    base = json.loads((ROOT / "examples" / "ci" / "baseline.json").read_text())
    cur = json.loads((ROOT / "examples" / "ci" / "flattened_current.json").read_text())
    root = ET.fromstring(comparison_junit_xml(compare(base, cur)))
    assert root.get("failures") == "1"
    f = root.find("testcase/failure")
    assert f.get("type") == "regression" and "min_gain_ratio went from" in f.get("message")
    assert "worse by" in f.text and "status: regression (verdict pass → pass)" in f.text
    root = ET.fromstring(comparison_junit_xml(compare(base, copy.deepcopy(base))))
    assert root.get("failures") == "0" and root.find("testcase/system-out") is not None
