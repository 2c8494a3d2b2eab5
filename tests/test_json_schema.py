"""The JSON result is strict JSON and matches the shipped schema (issue 13, item 8).

Every audit the README names, on its bundled example (with small budgets), writes JSON
that (a) parses with a strict parser — no ``NaN``/``Infinity`` — and (b) validates
against ``fairaudit/schema/result-v2.schema.json`` with ``jsonschema``. Unbounded
figures are ``null`` with an ``unbounded`` marker, and the report, ``fairaudit report``
and ``fairaudit compare`` read them back as ∞.
"""
import json
import math
import os
import re
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from fairaudit.cli import main
from fairaudit.compare import compare, compare_files
from fairaudit.result import (SCHEMA_VERSION, AuditResult, CheckResult, Statistic, dumps, encode_unbounded, loads,
                              restore_unbounded, result_schema)

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "allocators"
DATA = ROOT / "examples" / "data"
POP = str(DATA / "population.csv")

#: small budgets: the point is the shape of the JSON, not the verdicts
LIGHT = ["--draws", "200",
         "--param", "anonymity.search_examples=5", "--param", "anonymity.search_draws=64",
         "--param", "tv_stability.probes=1", "--param", "tv_stability.bisections=1",
         "--param", "tv_stability.search_examples=3",
         "--param", "ex_interim.pools=3", "--param", "ex_post.pools=20", "--param", "ex_ante.pools=50",
         "--param", "ex_ante.draws=2",
         "--param", "min_requirement.T=60", "--param", "min_requirement.years=4",
         "--param", "min_requirement.scenarios=iid", "--param", "min_requirement.trend_years=0",
         "--param", "min_requirement.anticipation_cuts=0"]

#: the audits README.md shows, on the bundled examples
README_AUDITS = {
    "set-up command": [str(EX / "broome_lottery.py"), "--data", POP, "--checks", "broome,anonymity,selection_rates"],
    "every applicable check": [str(EX / "broome_lottery.py"), "--data", POP],
    "broome": [str(EX / "partial_lottery.py"), "--checks", "broome"],
    "anonymity": [str(EX / "group_tiebreak.py"), "--checks", "anonymity", "--data", POP],
    "ex_interim": [str(EX / "greedy_cdf.py"), "--checks", "ex_interim,ex_post,ex_ante"],
    "tv_stability": [str(EX / "prp_ranking.py"), "--checks", "tv_stability,ua_conformance"],
    "multiaccuracy": [str(EX / "ua_ranking.py"), "--checks", "multiaccuracy", "--data",
                      str(DATA / "multiaccuracy_population.csv")],
    "min_requirement": [str(EX / "greedy_assign.py"), "--checks", "min_requirement"],
    "selection_rates": [str(EX / "top_k.py"), "--checks", "selection_rates", "--data", POP],
    "selection log": [str(ROOT / "examples" / "logs" / "selection_log.csv"), "--checks", "selection_rates"],
    # issue 17: a fitted pipeline (every applicable check) and a per-person rule, on the credit data
    "model": [str(ROOT / "examples" / "models" / "credit_pipeline.joblib"), "--data",
              str(ROOT / "examples" / "models" / "credit.csv")],
    "decision rule": [str(ROOT / "examples" / "models" / "fair_random_rule.py"), "--data",
                      str(ROOT / "examples" / "models" / "credit.csv"), "--checks",
                      "anonymity,tv_stability,error_rate_parity,selection_rates,determinism"],
}


def _no_constants(name):
    raise ValueError(f"non-strict JSON constant {name}")


def strict_load(text: str):
    """A strict parser: NaN, Infinity and -Infinity are errors (as in JSON.parse)."""
    return json.loads(text, parse_constant=_no_constants)


VALIDATOR = jsonschema.Draft202012Validator(result_schema())


def validate(text: str) -> dict:
    d = strict_load(text)
    errors = sorted(VALIDATOR.iter_errors(d), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
    return d


def _cli(args, cwd):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)


def test_schema_is_a_valid_draft_2020_12_schema():
    schema = result_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema_version"] == {"const": SCHEMA_VERSION} and SCHEMA_VERSION == 2


# one in the fast lane (every applicable check of the Set up command); the rest in
# the full suite (2–4 s each)
@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n == "every applicable check"
                                               else pytest.mark.slow) for n in README_AUDITS])
def test_every_readme_audit_writes_strict_json_matching_the_schema(name, tmp_path):
    res = _cli(["check", *README_AUDITS[name], *LIGHT, "--json", "r.json", "--html", "r.html"], tmp_path)
    assert res.exit_code in (0, 1), res.output
    text = (tmp_path / "r.json").read_text()
    assert not re.search(r"\b(NaN|Infinity)\b", text)
    d = validate(text)
    assert d["checks"] and all(c["verdict"] != "error" for c in d["checks"]), [c["message"] for c in d["checks"]]
    # ... and its report is readable (issue 19): human column names, headlines agreeing with the statistic
    from test_report_readers import assert_readable
    assert_readable(d, (tmp_path / "r.html").read_text())


@pytest.mark.parametrize("name", ["baseline.json", "flattened_current.json"])
def test_committed_results_match_the_schema(name):
    validate((ROOT / "examples" / "ci" / name).read_text())


@pytest.mark.slow      # out of the fast lane (kept under 2 min): runs in the full suite
def test_unbounded_values_are_null_with_a_marker_and_the_report_shows_infinity(tmp_path):
    """GREEDY gives a better candidate chance 0 and a worse one chance 1: ε̂ = ∞."""
    res = _cli(["check", EX / "greedy_cdf.py", "--checks", "ex_interim", "--param", "ex_interim.pools=3",
                "--json", "r.json", "--html", "r.html"], tmp_path)
    assert res.exit_code in (0, 1), res.output     # 3 pools: too few to decide, enough to see ε̂ = ∞
    text = (tmp_path / "r.json").read_text()
    d = validate(text)
    pools = d["checks"][0]["tables"]["pools"]
    marks = pools["unbounded"]
    assert marks and set(marks.values()) <= {"+inf", "-inf"}
    col = pools["columns"].index("eps_hat")
    inf_rows = [r for r in range(len(pools["rows"])) if marks.get(f"/rows/{r}/{col}") == "+inf"]
    assert inf_rows and all(pools["rows"][r][col] is None for r in inf_rows)
    # read back, the same cells are +∞ again
    back = loads(text)
    assert all(back["checks"][0]["tables"]["pools"]["rows"][r][col] == math.inf for r in inf_rows)
    assert "unbounded" not in back["checks"][0]["tables"]["pools"]
    # the report from the audit and the one re-rendered from the JSON show ∞, identically
    res2 = _cli(["report", "r.json", "--html", "again.html"], tmp_path)
    assert res2.exit_code == 0, res2.output
    first, again = (tmp_path / "r.html").read_text(), (tmp_path / "again.html").read_text()
    assert "∞" in first and first == again


def _audit(stat: Statistic, **extra) -> AuditResult:
    return AuditResult(target={"path": "a.py", "kind": "selection", "sha256": "0" * 64},
                       config={"seed": 0, "confidence": 0.95, "checks": ["x"], "params": {}},
                       checks=[CheckResult("x", "X", "fail", "m", statistic=stat, draws=10, **extra)],
                       tool_version="t", created="2026-01-01T00:00:00+00:00")


def test_round_trip_restores_infinities_and_nan_is_null():
    stat = Statistic("eps", math.inf, (2.5, math.inf), tolerance=0.1)
    r = _audit(stat, evidence={"lo": -math.inf, "undefined": float("nan"), "unbounded": "a user key",
                               "nested": [{"v": [1.0, math.inf]}]},
               tables={"t": {"columns": ["a"], "rows": [[-math.inf], [1.0]]}},
               figures=[{"kind": "interval_bars", "hi": [math.inf, 0.5]}])
    text = r.to_json()
    d = validate(text)
    s = d["checks"][0]["statistic"]
    assert s["estimate"] is None and s["ci"] == [2.5, None]
    assert s["unbounded"] == {"/estimate": "+inf", "/ci/1": "+inf"}
    ev = d["checks"][0]["evidence"]
    # the evidence has its own key 'unbounded', so its marker goes to the check, prefixed
    assert ev["unbounded"] == "a user key" and d["checks"][0]["unbounded"] == {"/evidence/lo": "-inf"}
    assert ev["nested"][0]["unbounded"] == {"/v/1": "+inf"}
    assert d["checks"][0]["tables"]["t"]["unbounded"] == {"/rows/0/0": "-inf"}
    assert d["checks"][0]["figures"][0]["unbounded"] == {"/hi/0": "+inf"}
    assert loads(text) == r.to_dict() | {"checks": [r.checks[0].to_dict()]}
    assert loads(text)["checks"][0]["evidence"]["undefined"] is None


def test_dumps_refuses_non_strict_json():
    with pytest.raises(ValueError):          # nowhere to record the marker: refused, not written as Infinity
        dumps({"unbounded": "taken", "x": math.inf})
    with pytest.raises(ValueError):
        encode_unbounded([math.inf])
    assert strict_load(dumps({"x": [math.inf, -math.inf, float("nan")]})) == {
        "x": [None, None, None], "unbounded": {"/x/0": "+inf", "/x/1": "-inf"}}


def test_pointer_escaping():
    d = {"a/b": {"c~d": math.inf}}
    enc = encode_unbounded(d)
    assert enc["a/b"]["unbounded"] == {"/c~0d": "+inf"}
    assert restore_unbounded(json.loads(json.dumps(enc))) == d
    assert restore_unbounded(encode_unbounded({"w": {"unbounded": 2, "x/y": math.inf}})) == \
        {"w": {"unbounded": 2, "x/y": math.inf}}


def test_compare_reads_unbounded_values(tmp_path):
    """A statistic that became certified-infinite is a regression. Read as null without
    its marker, the lower bound would count as −∞ and the regression would be missed."""
    base = _audit(Statistic("eps", 0.15, (0.1, 0.2), tolerance=0.5))
    cur = _audit(Statistic("eps", math.inf, (math.inf, math.inf), tolerance=0.5))
    (tmp_path / "b.json").write_text(base.to_json())
    (tmp_path / "c.json").write_text(cur.to_json())
    cmp = compare_files(tmp_path / "b.json", tmp_path / "c.json")
    s = cmp.checks[0].statistics[0]
    assert s.current == math.inf and s.current_ci == (math.inf, math.inf)
    assert s.status == "regression" and cmp.exit_code == 1
    # without the markers (a naive reader) the same files look like "no significant change"
    naive = [strict_load(p.read_text()) for p in (tmp_path / "b.json", tmp_path / "c.json")]
    for d in naive:
        for c in d["checks"]:
            c.pop("unbounded", None)
            (c["statistic"] or {}).pop("unbounded", None)
    assert compare(*naive).checks[0].statistics[0].status != "regression"
    # the comparison's own JSON is strict too, and the terminal shows ∞
    res = _cli(["compare", tmp_path / "b.json", tmp_path / "c.json", "--json", "cmp.json"], tmp_path)
    assert res.exit_code == 1 and "∞" in res.output
    cj = strict_load((tmp_path / "cmp.json").read_text())
    assert "unbounded" in json.dumps(cj)


def test_report_accepts_schema_1_and_2_only(tmp_path):
    r = _audit(Statistic("eps", 0.1, (0.0, math.inf), tolerance=0.5))
    d = json.loads(r.to_json())
    for version, rc in ((1, 0), (2, 0), (3, 2)):
        d["schema_version"] = version
        (tmp_path / "r.json").write_text(json.dumps(d))
        res = _cli(["report", "r.json", "--html", "o.html"], tmp_path)
        assert res.exit_code == rc, res.output
        if rc == 0:
            assert "∞" in (tmp_path / "o.html").read_text()
