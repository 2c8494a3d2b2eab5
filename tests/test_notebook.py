"""The Python API in a notebook (issue 31, item 1): the result's short repr, its HTML,
``to_frame()``, ``passed`` / ``failed`` and the ambiguous truth value, writing the
report from Python, DataFrames as ``data=``, ``dir(fairaudit)``, and the example
notebook executed as a user would run it."""
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fairaudit as fa
from fairaudit.result import FRAME_COLUMNS, AuditResult, CheckResult, Statistic

ROOT = Path(__file__).resolve().parents[1]
POP = ROOT / "examples" / "data" / "population.csv"
TOP_K = str(ROOT / "examples" / "allocators" / "top_k.py")


@fa.selector(k=20)
def lottery(scores, k, rng):
    return rng.choice(len(scores), size=k, replace=False)


@pytest.fixture(scope="module")
def top_k_result():
    # the Done-when call, with the data as a DataFrame
    return fa.audit(TOP_K, data=pd.read_csv(POP), checks=["selection_rates", "determinism"], draws=256)


def _check(verdict, est=0.5, ci=(0.4, 0.6), tol=0.8, cid="x"):
    return CheckResult(id=cid, title="X <b>", verdict=verdict, message="m",
                       statistic=Statistic("min_impact_ratio", est, ci, tol, violation="below"), draws=300)


def test_dataframe_data_gives_the_result_of_the_file(top_k_result):
    from_file = fa.audit(TOP_K, data=str(POP), checks=["selection_rates", "determinism"], draws=256)
    assert [c.to_dict()["statistic"] for c in top_k_result.checks] == [c.to_dict()["statistic"] for c in from_file.checks]
    assert [c.verdict for c in top_k_result.checks] == [c.verdict for c in from_file.checks]
    d = top_k_result.data
    assert d["path"] == "" and d["n"] == 200 and len(d["sha256"]) == 64
    # the frame's fingerprint follows its contents
    df = pd.read_csv(POP)
    df.loc[0, "score"] += 0.001
    assert fa.audit(TOP_K, data=df, checks=["selection_rates"], draws=256).data["sha256"] != d["sha256"]


def test_a_data_argument_that_is_neither_file_nor_frame_is_a_one_line_error():
    with pytest.raises(fa.DataError, match="data= takes a file path or a DataFrame, not list"):
        fa.audit(lottery, data=[1, 2, 3], checks=["selection_rates"], in_process=True)


def test_repr_is_one_line_per_check_with_verdict_statistic_and_interval(top_k_result):
    text = repr(top_k_result)
    lines = text.splitlines()
    assert len(lines) == 1 + len(top_k_result.checks) and len(text) < 600
    assert lines[0].startswith("<AuditResult ") and "top_k.py:allocate (selection)" in lines[0]
    for line, c in zip(lines[1:], top_k_result.checks):
        assert line.split()[:2] == [c.verdict.upper(), c.id]
        s = c.statistic
        assert f"{s.name} = {s.estimate:.3f} [{s.ci[0]:.3f}, {s.ci[1]:.3f}]" in line
    assert repr(top_k_result.checks[0]).startswith("<CheckResult FAIL selection_rates")


def test_to_frame_has_one_row_per_check_with_the_statistics(top_k_result):
    f = top_k_result.to_frame()
    assert list(f.columns) == FRAME_COLUMNS and len(f) == len(top_k_result.checks)
    for (_, row), c in zip(f.iterrows(), top_k_result.checks):
        assert (row["id"], row["verdict"], row["statistic"], row["draws"]) == (c.id, c.verdict, c.statistic.name, c.draws)
        assert (row["estimate"], row["low"], row["high"]) == (c.statistic.estimate, *map(float, c.statistic.ci))
    one = top_k_result.checks[0].to_frame()
    assert list(one.columns) == FRAME_COLUMNS and one.iloc[0]["id"] == "selection_rates"
    skipped = CheckResult(id="s", title="S", verdict="skipped", message="Skipped: no.").to_frame().iloc[0]
    assert skipped["statistic"] is None and math.isnan(skipped["estimate"])


@pytest.mark.parametrize("verdicts, passed, failed", [
    (["pass", "pass"], True, False), (["pass", "skipped"], True, False), (["pass", "inconclusive"], False, False),
    (["pass", "fail"], False, True), (["error", "pass"], False, True), (["skipped"], False, False)])
def test_passed_and_failed(verdicts, passed, failed):
    r = AuditResult(target={}, config={}, checks=[_check(v, cid=str(i)) for i, v in enumerate(verdicts)])
    assert (r.passed, r.failed) == (passed, failed)
    assert [c.passed for c in r.checks] == [v == "pass" for v in verdicts]


def test_passed_counts_a_required_skipped_check():
    r = AuditResult(target={}, config={"require": True}, checks=[_check("pass"), _check("skipped", cid="y")])
    assert not r.passed and r.exit_code == 1


def test_truth_value_is_ambiguous_and_says_what_to_use_instead(top_k_result):
    with pytest.raises(ValueError, match=r"ambiguous.*\.passed.*\.failed"):
        bool(top_k_result)
    with pytest.raises(ValueError, match=r"ambiguous.*\.passed.*\.failed"):
        if top_k_result.checks[0]:
            pass


def test_repr_html_is_the_summary_and_headlines_escaped_without_script():
    r = AuditResult(target={"path": "<img src=x onerror=alert(1)>.py", "kind": "selection"}, config={"seed": 3},
                    checks=[_check("pass", cid="a<script>"), _check("fail", est=0.3, ci=(0.2, 0.4), cid="b")])
    h = r._repr_html_()
    assert "<script" not in h.lower() and "<img" not in h and "&lt;img" in h and "a&lt;script&gt;" in h
    # failing checks first, each with its verdict badge and interval, then the headlines
    assert h.index('verdict v-fail') < h.index('verdict v-pass')
    assert "[0.200, 0.400]" in h and "[0.400, 0.600]" in h
    assert h.count("<li>") == 2 and "impact ratio" in h.lower()
    assert "div.fairaudit" in h          # styles scoped to the result, not the notebook
    assert r.checks[0]._repr_html_().count("<tr><td>") == 1


def test_write_html_and_json_are_what_the_cli_writes(tmp_path, top_k_result):
    from fairaudit.report import render_html
    from fairaudit.result import load_result, result_schema
    top_k_result.write_json(tmp_path / "r.json")
    top_k_result.write_html(tmp_path / "r.html")
    loaded = load_result(tmp_path / "r.json")
    import jsonschema
    jsonschema.validate(json.loads((tmp_path / "r.json").read_text()), result_schema())
    assert [c["verdict"] for c in loaded["checks"]] == [c.verdict for c in top_k_result.checks]
    assert (tmp_path / "r.html").read_text(encoding="utf-8") == render_html(top_k_result.to_dict())


def test_dir_lists_the_public_names_including_the_lazy_ones():
    names = dir(fa)
    for name in ("audit", "AuditResult", "CheckResult", "Estimate", "ua_sample", "simulate_pool", "selector"):
        assert name in names, name
    assert set(fa.__all__) <= set(names)


def test_a_fitted_model_and_a_callable_are_targets_with_a_dataframe():
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x1": rng.normal(size=120), "x2": rng.normal(size=120), "sex": rng.choice(["F", "M"], 120)})
    y = (df.x1 + rng.normal(size=120) > 0).astype(int)
    model = LogisticRegression().fit(df[["x1", "x2"]], y)
    r = fa.audit(model, data=df, checks=["selection_rates"], in_process=True)
    assert r.target["kind"] == "decision" and r.checks[0].verdict in ("pass", "fail", "inconclusive")
    r2 = fa.audit(lottery, data=df.assign(score=df.x1), checks=["selection_rates"], in_process=True, draws=256)
    assert r2.checks[0].draws > 0


@pytest.mark.slow       # a Jupyter kernel and worker processes: ~10 s
def test_the_example_notebook_executes():
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from make_notebook import execute
    finally:
        sys.path.remove(str(ROOT / "examples"))
    nb = execute(nbformat.read(ROOT / "examples" / "notebook.ipynb", as_version=4))
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {}) and "fairaudit" in o["data"]["text/html"]]
    assert html and "v-fail" in html[0] and "selection_rates" in html[0]
    text = "".join(o.get("text", "") for o in outputs)
    assert "ambiguous" in text and "report.html" in "".join(str(o.get("data", {})) for o in outputs)
