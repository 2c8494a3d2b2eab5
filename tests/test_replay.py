"""Every check that reports a counterexample can be replayed: ``fairaudit replay RESULT.json
CHECK`` re-draws exactly the audited draws (same input, stream and draw range) and gets
the figures the report shows (issue: five hand-built replay strings, some drawing on
streams the audit never used)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "allocators"
DATA = ROOT / "examples" / "data"

CASES = {
    # check id: (allocator, extra arguments) — bundled examples that fail with a counterexample
    "anonymity": ("top_k.py", []),
    "broome": ("top_k.py", []),
    "tv_stability": ("prp_ranking.py", []),
    "ua_conformance": ("prp_ranking.py", []),
    "ex_interim": ("greedy_cdf.py", []),
    "ex_post": ("greedy_cdf.py", ["--param", "ex_post.pools=60"]),
    "min_requirement": ("greedy_assign.py", ["--param", "min_requirement.scenarios=antagonistic",
                                             "--param", "min_requirement.rule=maxmin",
                                             "--param", "min_requirement.years=12",
                                             "--param", "min_requirement.T=200",
                                             "--param", "min_requirement.trend_years=2",
                                             "--param", "min_requirement.anticipation_cuts=0"]),
}


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "fairaudit.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def _figures_in_evidence(check_id, ev):
    """The counterexample's figures as the report shows them, per draw record."""
    ce = ev["counterexample"]
    if check_id == "anonymity":
        return None if "chance_original" not in ce else [ce["chance_original"], ce["chance_relabelled"]]
    if check_id == "tv_stability":
        return [[ce["marginal_P"]], [ce["marginal_P_prime"]]]
    if check_id == "ua_conformance":
        return [[ce["estimated"]]]
    if check_id == "ex_interim":
        return [[ce["worse"]["chance"], ce["better"]["chance"]]]
    if check_id == "ex_post":
        return [[1.0, 0.0]]          # the run selected the worse candidate and rejected the better one
    return None


@pytest.mark.slow
@pytest.mark.parametrize("check_id", sorted(CASES))
def test_replay_redraws_the_counterexample_exactly(tmp_path, check_id):
    alloc, extra = CASES[check_id]
    res = tmp_path / "r.json"
    p = _cli("check", str(EX / alloc), "--checks", check_id, "--json", str(res), "--html", "r.html", *extra,
             cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    d = json.loads(res.read_text())
    (chk,) = d["checks"]
    assert chk["verdict"] == "fail", chk["message"]
    ev = chk["evidence"]
    assert ev["replay_command"] == f"fairaudit replay {res} {check_id}"
    assert f"fairaudit replay {res} {check_id}" in (tmp_path / "r.html").read_text()
    records = ev["redraw"]["records"]
    shown = _figures_in_evidence(check_id, ev)
    if shown is not None:
        got = [r["observed"] for r in records[:len(shown)]]
        assert len(got) == len(shown)
        for g, s in zip(got, shown):
            assert np.allclose(g, s, atol=5e-5), (got, shown)
    out = _cli("replay", str(res), check_id, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("replayed:") == len(records)
    assert "Identical to the audit." in out.stdout


@pytest.mark.slow      # 3–5 s; the full suite runs it
def test_replay_says_when_the_draws_differ(tmp_path):
    """The replay can fail: a tampered record is reported as different, exit 1."""
    res = tmp_path / "r.json"
    p = _cli("check", str(EX / "top_k.py"), "--checks", "anonymity", "--json", str(res), "--html", "", cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    d = json.loads(res.read_text())
    rec = d["checks"][0]["evidence"]["redraw"]["records"][0]
    rec["observed"] = [1.0 - v for v in rec["observed"]]
    res.write_text(json.dumps(d))
    out = _cli("replay", str(res), "anonymity", cwd=tmp_path)
    assert out.returncode == 1
    assert "differ from the audit" in out.stdout
