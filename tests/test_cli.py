"""The command line end to end: JSON determinism, log audits, broken allocators,
exit codes, config files, the report."""
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from fairaudit.cli import main
from fairaudit.targets import import_file

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "allocators"
BAD = Path(__file__).resolve().parent / "allocators"
POP = str(ROOT / "examples" / "data" / "population.csv")
LOG = str(ROOT / "examples" / "logs" / "selection_log.csv")


def invoke(args, tmp_path):
    """Run the CLI in a fresh directory under tmp_path; return the result and the files it wrote."""
    import os
    import tempfile
    d = tempfile.mkdtemp(dir=tmp_path)
    old = os.getcwd()
    os.chdir(d)
    try:
        res = CliRunner().invoke(main, args, catch_exceptions=False)
        files = {p.name: p.read_text() for p in Path(d).iterdir() if p.is_file()}
    finally:
        os.chdir(old)
    return res, files


def test_documented_command_json_twice_identical_but_created(tmp_path):
    args = ["check", str(EX / "top_k.py"), "--checks", "selection_rates", "--data", POP, "--json", "r.json",
            "--seed", "0"]
    r1, f1 = invoke(args, tmp_path)
    r2, f2 = invoke(args, tmp_path)
    assert r1.exit_code == 1   # top-k fails the four-fifths rule on the example population
    d1, d2 = json.loads(f1["r.json"]), json.loads(f2["r.json"])
    assert d1["schema_version"] == 2
    c = d1["checks"][0]
    assert c["id"] == "selection_rates" and c["verdict"] == "fail"
    for g in c["evidence"]["groups"].values():
        assert isinstance(g["rate"]["estimate"], float) and len(g["rate"]["ci"]) == 2
    d1.pop("created"), d2.pop("created")
    assert d1 == d2
    assert "fairaudit-report.html" in f1 and "<svg" in f1["fairaudit-report.html"]


def test_same_json_for_any_worker_count(tmp_path):
    # threshold 0.935 lies inside the impact-ratio intervals (0.935 [0.911, 0.964] at 10,000 draws with the
    # betting confidence sequence; 0.9 is certified below the ratio at 8,192), so sequential sampling runs to
    # --draws: its batches grow to 4,096 draws, more than one task (2,048), so --jobs 2
    # really spreads the work over two worker processes
    base = ["check", str(EX / "broome_lottery.py"), "--checks", "selection_rates", "--data", POP, "--json", "r.json",
            "--draws", "10000", "--param", "selection_rates.threshold=0.935"]
    _, f1 = invoke(base, tmp_path)
    _, f2 = invoke(base + ["--jobs", "2"], tmp_path)
    d1, d2 = json.loads(f1["r.json"]), json.loads(f2["r.json"])
    assert d1["checks"][0]["draws"] == 10000
    d1.pop("created"), d2.pop("created")
    d1.pop("command"), d2.pop("command")
    assert d1 == d2


def test_log_audit(tmp_path):
    res, files = invoke(["check", LOG, "--checks", "selection_rates", "--json", "r.json"], tmp_path)
    assert res.exit_code in (0, 1)
    d = json.loads(files["r.json"])
    assert d["target"]["kind"] == "selection" and d["target"]["decisions"] == 300
    assert d["checks"][0]["verdict"] in ("pass", "fail", "inconclusive")
    # the report speaks of logged records, not of draws, for a log
    html = files["fairaudit-report.html"]
    assert "<th>Records</th>" in html and "<th>Draws</th>" not in html
    assert "from 6,000 logged records" in html and "the draws show" not in html


@pytest.mark.parametrize("name,needle", [
    ("raises_sometimes", "raised ValueError"),
    ("too_many", "expected k="),
    ("duplicates", "more than once"),
    ("sleeper", "timeout"),
])
def test_broken_allocator_error_verdict_exit_1_report_renders(tmp_path, name, needle):
    res, files = invoke(["check", str(BAD / f"{name}.py"), "--data", POP, "--json", "r.json",
                         "--timeout", "0.3"], tmp_path)
    assert res.exit_code == 1
    d = json.loads(files["r.json"])
    c = next(c for c in d["checks"] if c["id"] == "selection_rates")
    assert c["verdict"] == "error" and needle in c["message"]
    assert "population.csv" in c["message"]          # names the input
    assert c["evidence"]["replay"]["input"]["k"] == 20
    html = files["fairaudit-report.html"]
    assert "v-error" in html and needle.split()[0] in html


def test_missing_target_exits_2_one_line(tmp_path):
    res, _ = invoke(["check", "does_not_exist.py"], tmp_path)
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0 and "allocator file not found: does_not_exist.py" in res.output
    res, _ = invoke(["check", "no_such_log.csv"], tmp_path)
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0 and "decisions log not found: no_such_log.csv" in res.output


def test_bad_data_and_unknown_check_exit_2(tmp_path):
    res, _ = invoke(["check", str(EX / "top_k.py"), "--data", "missing.csv"], tmp_path)
    assert res.exit_code == 2 and "data file not found" in res.output
    res, _ = invoke(["check", str(EX / "top_k.py"), "--checks", "nonsense"], tmp_path)
    assert res.exit_code == 2 and "unknown check" in res.output


def test_malformed_log_exit_2_names_row_and_column(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("decision_id,score,selected\n1,0.5,1\n1,oops,0\n")
    res, _ = invoke(["check", str(p)], tmp_path)
    assert res.exit_code == 2
    assert "row 2, column 'score'" in res.output


def test_fail_on_inconclusive_and_config_file(tmp_path):
    cfg = tmp_path / "fa.toml"
    cfg.write_text('[tool.fairaudit]\nseed = 3\nchecks = ["selection_rates"]\n'
                   '[tool.fairaudit.params.selection_rates]\nthreshold = 0.99\nmax_draws = 256\n')
    res, files = invoke(["check", str(EX / "broome_lottery.py"), "--data", POP, "--config", str(cfg),
                         "--json", "r.json"], tmp_path)
    d = json.loads(files["r.json"])
    assert d["config"]["seed"] == 3 and d["checks"][0]["params"]["threshold"] == 0.99
    # 256 draws cannot place the lowest impact ratio (≈0.88, interval [0.31, 1]) against 0.99
    assert d["checks"][0]["verdict"] == "inconclusive"
    assert res.exit_code == 0
    res2, _ = invoke(["check", str(EX / "broome_lottery.py"), "--data", POP, "--config", str(cfg),
                      "--fail-on", "inconclusive"], tmp_path)
    assert res2.exit_code == 1


def test_param_option_and_report_rerender(tmp_path):
    res, files = invoke(["check", str(EX / "uniform_lottery.py"), "--data", POP, "--checks", "selection_rates",
                         "--param", "selection_rates.threshold=0.5", "--json", "r.json"], tmp_path)
    assert res.exit_code == 0
    d = json.loads(files["r.json"])
    assert d["checks"][0]["statistic"]["tolerance"] == 0.5
    (tmp_path / "r.json").write_text(files["r.json"])
    res2, f2 = invoke(["report", str(tmp_path / "r.json"), "--html", "again.html"], tmp_path)
    assert res2.exit_code == 0 and "<svg" in f2["again.html"]


def test_report_is_self_contained_and_escaped(tmp_path):
    import fairaudit as fa
    from fairaudit.report import render_html
    d = fa.audit(str(EX / "top_k.py"), data=POP, checks=["selection_rates"]).to_dict()
    d["checks"][0]["message"] = "<script>alert(1)</script>"
    html = render_html(d)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert not re.search(r"""(src|href)=["']https?://""", html)
    assert "Reproducibility" in html and d["target"]["sha256"] in html


def test_checks_lists_selection_rates(tmp_path):
    res, _ = invoke(["checks"], tmp_path)
    assert res.exit_code == 0 and "selection_rates" in res.output


def test_junit_output(tmp_path):
    import xml.etree.ElementTree as ET
    res, files = invoke(["check", str(EX / "top_k.py"), "--data", POP, "--checks", "selection_rates",
                         "--junit", "j.xml"], tmp_path)
    root = ET.fromstring(files["j.xml"])
    assert root.get("failures") == "1" and root.find("testcase/failure") is not None


def test_third_party_checks_from_entry_points(monkeypatch):
    """A check registered under the `fairaudit.checks` entry-point group is discovered;
    a broken entry point is skipped, not fatal."""
    from importlib import metadata

    from fairaudit import check as check_mod

    class Ep:
        def __init__(self, obj):
            self.obj = obj

        def load(self):
            if isinstance(self.obj, Exception):
                raise self.obj
            return self.obj

    class MyCheck(check_mod.Check):
        id = "my_third_party_check"
        title = "Mine"

    monkeypatch.setattr(metadata, "entry_points",
                        lambda group=None: [Ep(MyCheck), Ep(ImportError("broken plugin"))])
    found = check_mod.discover()
    assert found["my_third_party_check"] is MyCheck
    assert "selection_rates" in found


def test_replay_reproduces_the_failing_call(tmp_path):
    res, files = invoke(["check", str(BAD / "too_many.py"), "--data", POP, "--checks", "selection_rates",
                         "--json", "r.json"], tmp_path)
    d = json.loads(files["r.json"])
    assert d["checks"][0]["evidence"]["replay_command"] == "fairaudit replay r.json selection_rates"
    (tmp_path / "r.json").write_text(files["r.json"])
    import sys
    from fairaudit.replay import replay
    before = {m for m in sys.modules if m.startswith("fairaudit_target_")}
    out, problem = replay(tmp_path / "r.json", "selection_rates")
    assert out is None and "expected k=20" in problem
    # the call ran in a worker process: the allocator was not imported here (issue 26)
    assert {m for m in sys.modules if m.startswith("fairaudit_target_")} == before
    res2, _ = invoke(["replay", str(tmp_path / "r.json"), "selection_rates"], tmp_path)
    assert res2.exit_code == 1 and "expected k=20" in res2.output


def test_error_report_says_could_not_run_and_how_to_replay(tmp_path):
    """An allocator error is reported as "could not run" (not as a violation), with the
    input shown compactly and a replay command that reads in the right order."""
    res, files = invoke(["check", str(BAD / "too_many.py"), "--data", POP, "--checks", "selection_rates"], tmp_path)
    assert res.exit_code == 1
    html = files["fairaudit-report.html"]
    summary = html.split('id="executive-summary"', 1)[1].split("</section>", 1)[0]
    assert "1 could not run" in " ".join(summary.split()) and "found a violation" not in summary
    assert "fairaudit replay RESULT.json selection_rates   (after rerunning the audit with --json RESULT.json)" in html
    assert "none: the check stopped before computing an interval" in html
    import html as _html
    shown = _html.unescape(html)
    assert '"k": 20' in shown and '"scores": [0.' in shown       # the input's vectors stay on one line each


def test_counterexample_json_is_compact_and_escaped():
    from fairaudit.report import _compact_json, render_html
    ce = {"P": [0.1, 0.2], "instance": {"scores": list(range(60)), "k": 3}, "who": "<b>x</b>"}
    txt = _compact_json(ce)
    assert '"P": [0.1, 0.2]' in txt and '"scores": [0, 1, 2' in txt and txt.count("\n") == 7
    import json as _json
    assert _json.loads(txt) == ce
    d = {"schema_version": 1, "target": {"path": "a.py", "kind": "selection", "sha256": "0"}, "config": {"seed": 0, "confidence": 0.95},
         "checks": [{"id": "x", "title": "X", "verdict": "fail", "message": "m", "draws": 10, "evidence": {"counterexample": ce},
                     "tables": {}, "figures": [], "params": {}}]}
    html = render_html(d)
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html


def test_report_prints_what_the_screen_shows_open():
    """Issue 31: the printout is a few pages — what is open on screen prints (the failing rows,
    each table's first rows, the counterexample in words); a closed table and the folded rows
    print as their titles, said to be in the HTML report (pages counted in Chromium by
    test_report_browser.test_readme_first_report_prints_in_a_few_pages)."""
    from fairaudit.report import render_html
    html = render_html({"schema_version": 1, "target": {"path": "a.py", "kind": "selection"}, "config": {"seed": 0, "confidence": 0.95},
                        "checks": []})
    printed = html.split("@media print", 1)[1]
    assert "details.table:not([open]) > summary::after" in printed and "(in the HTML report)" in printed
    assert "details::details-content" not in printed


def test_options_from_pyproject_tool_fairaudit(tmp_path):
    """Without --config, [tool.fairaudit] of ./pyproject.toml supplies options; the
    command line still wins over it."""
    import os
    d = tmp_path / "proj"
    d.mkdir()
    (d / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.fairaudit]\nseed = 11\nchecks = "selection_rates"\n'
                                      f'data = "{POP}"\n[tool.fairaudit.params.selection_rates]\nthreshold = 0.5\n')
    old = os.getcwd()
    os.chdir(d)
    try:
        res = CliRunner().invoke(main, ["check", str(EX / "uniform_lottery.py"), "--json", "r.json", "--html", ""])
        r = json.loads((d / "r.json").read_text())
        res2 = CliRunner().invoke(main, ["check", str(EX / "uniform_lottery.py"), "--json", "r2.json", "--html", "",
                                         "--seed", "2"])
        r2 = json.loads((d / "r2.json").read_text())
    finally:
        os.chdir(old)
    assert res.exit_code == 0, res.output
    assert r["config"]["seed"] == 11 and [c["id"] for c in r["checks"]] == ["selection_rates"]
    assert r["checks"][0]["params"]["threshold"] == 0.5 and r["data"]["path"] == POP
    assert res2.exit_code == 0 and r2["config"]["seed"] == 2


def test_bundled_examples_are_what_the_committed_script_makes():
    """examples/make_examples.py regenerates population.csv and selection_log.csv exactly."""

    import numpy as np
    import pandas as pd
    mod = import_file(ROOT / "examples" / "make_examples.py")
    rng = np.random.default_rng(2026)
    pop = mod.population(rng)
    log = mod.selection_log(rng, pop)
    assert pop.to_csv(index=False) == Path(POP).read_text()
    assert log.to_csv(index=False) == Path(LOG).read_text()
    assert log["decision_id"].nunique() == 300 and set(pd.read_csv(POP).columns) >= {"score", "sex", "age_band", "label"}


def test_figures_cut_overlong_labels_and_lay_out_cleanly():
    """A group name of hundreds of characters (a hostile or careless data file) is wrapped
    and then cut in the figure's tick labels, so the layout still fits; the tables keep the whole name."""
    import warnings

    from fairaudit.figures import LABEL_CHARS, render_svg
    long = "x" * 300
    specs = [{"kind": "interval_bars", "labels": [long, "short"], "estimate": [0.5, 0.4], "lo": [0.4, 0.3],
              "hi": [0.6, 0.5], "reference": 0.45, "reference_label": "ref", "title": "t"},
             {"kind": "heatmap", "matrices": [[[0.1, 0.9], [0.9, 0.1]]], "ylabels": [long, "b"], "title": "t"}]
    for spec in specs:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            svg = render_svg(spec)
        # wrapped onto lines of LABEL_CHARS, the last one cut: no line longer than that
        assert "x" * (LABEL_CHARS + 1) not in svg and re.search("x{20,}…", svg)


def test_statistic_names_wrap_at_underscores_and_stay_escaped():
    """The summary table lets a long statistic name wrap after its underscores (not mid-word,
    not off the page); a name is still escaped text."""
    from fairaudit.report import _breakable
    assert str(_breakable("max_ex_ante_reversal")) == "max_<wbr>ex_<wbr>ante_<wbr>reversal"
    assert str(_breakable("a_<script>")) == "a_<wbr>&lt;script&gt;"
