"""Issue 32: a CI gate that cannot go green without auditing.

One table runs every case of the issue through the command line and asserts the exit code
and the one line that says what happened (what is missing and the option that supplies
it): requested checks that cannot run, --allow-skip, "nothing was audited", compare's new
failures and missing checks, configuration typos / wrong types / invalid TOML / a subfolder
run / paths relative to the config file, and setup problems found before any verdict.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from fairaudit.cli import main

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"
BASE = json.loads((EX / "ci" / "baseline.json").read_text())

SELECTOR = '''
import fairaudit as fa

@fa.selector(k=10)
def allocate(scores, k, rng):
    return rng.choice(len(scores), size=k, replace=False)
'''
HARD_K = '''
import numpy as np

def choose(scores, rng):
    return np.argsort(-scores)[:10]
'''
NEEDS_FEATURES = '''
import fairaudit as fa

@fa.selector(k=3)
def allocate(scores, features, k, rng):
    return list(range(k))
'''
DECIDER = '''
import fairaudit as fa

@fa.decider
def decide(features, rng):
    return rng.random(len(features)) < 0.5
'''


@pytest.fixture
def proj(tmp_path):
    """A project folder: the tour's people, renamed and 0/1-coded copies, allocators, results."""
    people = pd.read_csv(EX / "tour" / "people.csv")
    people.to_csv(tmp_path / "people.csv", index=False)
    people.rename(columns={"score": "rating"})[["id", "rating", "sex"]].to_csv(tmp_path / "people_renamed.csv",
                                                                             index=False)
    coded = people.assign(sex=(people["sex"] == "M").astype(int))[["id", "score", "sex", "label"]]
    coded.to_csv(tmp_path / "people01.csv", index=False)
    for name, src in [("alloc.py", SELECTOR), ("hard_k.py", HARD_K), ("needs_features.py", NEEDS_FEATURES),
                      ("rule.py", DECIDER)]:
        (tmp_path / name).write_text(textwrap.dedent(src))
    shutil.copy(EX / "ci" / "baseline.json", tmp_path / "baseline.json")
    new_fail = json.loads(json.dumps(BASE))
    extra = dict(new_fail["checks"][0], id="tv_stability", verdict="fail", message="Not TV-stable.")
    new_fail["checks"].append(extra)
    (tmp_path / "new_fail.json").write_text(json.dumps(new_fail))
    missing = json.loads(json.dumps(BASE))
    missing["checks"] = missing["checks"][1:]
    (tmp_path / "missing.json").write_text(json.dumps(missing))
    (tmp_path / "sub").mkdir()
    return tmp_path


def _cli(args, cwd: Path):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)


#: (case, files to write {path: text}, folder relative to the project, args, exit code, the line)
CASES = [
    ("requested check without data",
     {}, ".", ["check", "alloc.py", "--checks", "selection_rates"], 2,
     "fairaudit: error: selection_rates needs population data with group columns; none was given — give --data FILE"),
    ("data without a score column",
     {}, ".", ["check", "alloc.py", "--data", "people_renamed.csv", "--checks", "broome"], 2,
     "fairaudit: error: broome needs a score column: columns are id, rating, sex — give --columns score=rating"),
    ("0/1-coded group column offered as --groups",
     {}, ".", ["check", "alloc.py", "--data", "people01.csv", "--checks", "selection_rates"], 2,
     "fairaudit: error: selection_rates needs group columns: found sex (0/1 coded, read as numeric) in "
     "people01.csv — give --groups sex"),
    ("check of another kind",
     {}, ".", ["check", "alloc.py", "--checks", "min_requirement"], 2,
     "fairaudit: error: min_requirement applies to assignments to places; this target makes selection decisions "
     "— leave min_requirement out of --checks"),
    ("the closing line says nothing was drawn and how to skip",
     {}, ".", ["check", "alloc.py", "--checks", "min_requirement,selection_rates"], 2,
     "fairaudit: 2 requested checks cannot run on this target and data; nothing was drawn "
     "(--allow-skip skips them instead)"),
    ("--allow-skip gives today's skip, exit 0",
     {}, ".", ["check", "alloc.py", "--data", "people01.csv", "--checks", "selection_rates", "--allow-skip"], 0,
     "Skipped: people01.csv has no group columns (name them with --groups). To run it: give --groups sex."),
    ("--allow-skip from the configuration",
     {"pyproject.toml": "[tool.fairaudit]\nallow_skip = true\n"}, ".",
     ["check", "alloc.py", "--checks", "min_requirement"], 0, "1 skipped in"),
    ("every check skipped: nothing was audited",
     {}, ".", ["check", "rule.py"], 2,
     "fairaudit: nothing was audited: no check can run on this target and data; "),     # then the checks of other kinds
    ("compare: a new check that fails is a regression",
     {}, ".", ["compare", "baseline.json", "new_fail.json"], 1,
     "NEW FAILURE: tv_stability: absent from BASELINE and fail in CURRENT: Not TV-stable. A new check that fails "
     "is a regression (--allow-new-failures lets it through)."),
    ("compare --allow-new-failures lets it through",
     {}, ".", ["compare", "baseline.json", "new_fail.json", "--allow-new-failures"], 0,
     "NEW: tv_stability: new in CURRENT (verdict fail); let through by --allow-new-failures"),
    ("compare: a missing check is reported",
     {}, ".", ["compare", "baseline.json", "missing.json"], 0,
     f"MISSING: {BASE['checks'][0]['id']}: present in BASELINE but missing from CURRENT, so the gate cannot vouch "
     "for it; audit CURRENT with the same --checks (this fails the gate only with --strict)"),
    ("compare --strict fails on a missing check",
     {}, ".", ["compare", "baseline.json", "missing.json", "--strict"], 1,
     f"MISSING: {BASE['checks'][0]['id']}: present in BASELINE but missing from CURRENT, so the gate cannot vouch "
     "for it; audit CURRENT with the same --checks (a regression under --strict)"),
    ("config typo",
     {"pyproject.toml": '[project]\nname = "x"\n[tool.fairaudit]\nchekcs = ["selection_rates"]\n'}, ".",
     ["check", "alloc.py"], 2,
     "fairaudit: error: pyproject.toml:4: unknown key 'chekcs' in [tool.fairaudit]; did you mean 'checks'?"),
    ("config wrong type",
     {"pyproject.toml": '[tool.fairaudit]\nseed = "three"\n'}, ".", ["check", "alloc.py"], 2,
     'fairaudit: error: pyproject.toml:2: seed: expected an integer, got "three"'),
    ("invalid TOML",
     {"pyproject.toml": '[tool.fairaudit]\ndata = "people.csv"\nchecks = ["selection_rates"\n'}, ".",
     ["check", "alloc.py"], 2,
     "fairaudit: error: pyproject.toml:3: not valid TOML: Unclosed array (at the end of the file); no option of this "
     "file was used"),
    ("invalid TOML in the middle of the file",
     {"pyproject.toml": '[tool.fairaudit]\ndata = people.csv\nchecks = ["selection_rates"]\n'}, ".",
     ["check", "alloc.py"], 2,
     "fairaudit: error: pyproject.toml:2: not valid TOML: Invalid value (column 8); no option of this file was used"),
    ("a config typo found from a subfolder",
     {"pyproject.toml": '[tool.fairaudit]\nchecks = ["min_requirement"]\ndraws = 100\nchekcs = 1\n'}, "sub",
     ["check", "../alloc.py"], 2,
     "fairaudit: error: ../pyproject.toml:4: unknown key 'chekcs' in [tool.fairaudit]; did you mean 'checks'?"),
    ("the config found from a subfolder is applied, its data read beside it",
     {"pyproject.toml": '[tool.fairaudit]\nchecks = ["broome"]\ndata = "people_renamed.csv"\n'}, "sub",
     ["check", "../alloc.py"], 2,
     "fairaudit: error: broome needs a score column: columns are id, rating, sex — give --columns score=rating"),
    ("--config FILE: data relative to the file's folder",
     {"cfg/audit.toml": 'checks = ["selection_rates"]\ndata = "../people01.csv"\n'}, ".",
     ["check", "alloc.py", "--config", "cfg/audit.toml"], 2,
     "fairaudit: error: selection_rates needs group columns: found sex (0/1 coded, read as numeric) in "
     "cfg/../people01.csv — give --groups sex"),
    ("--config naming a pyproject.toml without [tool.fairaudit]",
     {"other/pyproject.toml": '[project]\nname = "x"\n'}, ".", ["check", "alloc.py", "--config", "other/pyproject.toml"],
     2, "fairaudit: error: other/pyproject.toml: has no [tool.fairaudit] table; put the options there (or in a "
        "fairaudit.toml)"),
    ("a hard-coded k in a function without k",
     {}, ".", ["check", "hard_k.py", "--checks", "broome", "--draws", "50"], 2,
     "fairaudit: error: hard_k.py: 'choose' returned 10 people where k=100 was expected; it takes no k, so its k "
     "seems fixed at 10 — mark it @fa.selector(k=10) or give --k 10"),
    ("a requested check that finds only while running that it cannot run",
     {"k40.py": "import fairaudit as fa\n\n@fa.selector(k=40)\ndef allocate(scores, k, rng):\n"
                "    return rng.choice(len(scores), size=k, replace=False)\n"}, ".",
     ["check", "k40.py", "--checks", "ex_interim"], 2,
     "fairaudit: error: ex_interim could not run: the allocator selects k=40, but this check's built-in inputs have "
     "n=30 people; give --data with at least 40 rows to audit it (--allow-skip accepts this, exit 0)"),
    ("a required argument the audit does not supply",
     {}, ".", ["check", "needs_features.py", "--checks", "broome", "--draws", "50", "--data", "people.csv"], 2,
     "fairaudit: error: needs_features.py: 'allocate' requires the argument(s) features, which this audit does not "
     "supply here — give --data FILE with numeric feature columns, or give it a default in the function's "
     "signature (e.g. features=None)"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_ci_gate_case(case, proj, monkeypatch):
    name, files, folder, args, code, line = case
    monkeypatch.setenv("COLUMNS", "1000")      # verdict messages unwrapped: each is one line here
    for rel, text in files.items():
        (proj / rel).parent.mkdir(parents=True, exist_ok=True)
        (proj / rel).write_text(text)
    if args[0] == "check" and "--json" not in args:
        args = args + ["--no-html"]
    res = _cli(args, proj / folder)
    out = res.stdout + res.stderr
    assert res.exit_code == code, out
    hits = [ln for ln in out.splitlines() if line in ln.strip() or ln.strip().startswith(line)]
    assert len(hits) == 1, f"expected one line containing {line!r} in:\n{out}"


def test_groups_named_in_the_hint_make_the_check_run(proj):
    """The option the message offers is the one that works: --groups sex runs selection_rates."""
    res = _cli(["check", "alloc.py", "--data", "people01.csv", "--checks", "selection_rates", "--groups", "sex",
                "--draws", "300", "--no-html", "--json", "r.json"], proj)
    d = json.loads((proj / "r.json").read_text())
    assert res.exit_code in (0, 1) and d["checks"][0]["verdict"] != "skipped", res.output
    assert d["data"]["groups"] == ["sex"]


def test_config_found_upward_is_recorded_and_paths_resolve_beside_it(proj):
    (proj / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.fairaudit]\nchecks = ["selection_rates"]\n'
                                         'data = "people.csv"\ndraws = 300\nhtml = false\n')
    res = _cli(["check", "../alloc.py", "--json", "-"], proj / "sub")
    d = json.loads(res.stdout)
    assert d["config"]["config_file"] == os.path.join("..", "pyproject.toml")
    assert d["data"]["path"] == os.path.join("..", "people.csv") and d["config"]["draws"] == 300
    assert [c["id"] for c in d["checks"]] == ["selection_rates"]
    # --config FILE beats the search; a fairaudit.toml beats a pyproject.toml in the same folder
    (proj / "sub" / "fairaudit.toml").write_text('checks = ["selection_rates"]\ndata = "../people.csv"\n'
                                                 'draws = 200\nhtml = false\n')
    d = json.loads(_cli(["check", "../alloc.py", "--json", "-"], proj / "sub").stdout)
    assert d["config"]["config_file"] == "fairaudit.toml" and d["config"]["draws"] == 200


def test_no_config_file_is_recorded_as_none(proj):
    d = json.loads(_cli(["check", "alloc.py", "--checks", "min_requirement", "--allow-skip", "--json", "-",
                         "--no-html"], proj).stdout)
    assert "config_file" not in d["config"]


def test_the_report_footer_names_the_config_file(proj):
    (proj / "fairaudit.toml").write_text('checks = ["min_requirement"]\nallow_skip = true\n')
    _cli(["check", "alloc.py", "--html", "r.html"], proj)
    html = (proj / "r.html").read_text()
    assert re.search(r"<dt>Configuration</dt><dd><code>(<bdi>)?fairaudit\.toml", html), html[-2000:]


def test_config_schema_is_the_one_definition_of_the_keys():
    """Every key the command line reads from a config file is in the schema, and the schema
    names no key the command line ignores."""
    import inspect

    from fairaudit import cli
    from fairaudit.config import known_keys
    src = inspect.getsource(cli.check.callback)
    read = set(re.findall(r'pick\([^,]+, "(\w+)"', src)) | set(re.findall(r'cfg\.get\("(\w+)"', src))
    assert read - {"params"} <= set(known_keys()), read - set(known_keys())
    assert set(known_keys()) - {"params"} <= read, set(known_keys()) - read


def test_missing_extra_names_the_extra_and_installs_this_project(proj, monkeypatch):
    from fairaudit import extras
    monkeypatch.setitem(extras.EXTRAS, "fairaudit_fake_extra_32", ("models", "scikit-learn"))
    (proj / "needs_extra.py").write_text("import fairaudit_fake_extra_32\n\ndef allocate(scores, k, rng):\n"
                                         "    return list(range(k))\n")
    res = _cli(["check", "needs_extra.py", "--in-process", "--checks", "broome", "--no-html"], proj)
    assert res.exit_code == 2
    line = next(ln for ln in res.output.splitlines() if ln.startswith("fairaudit: error:"))
    assert "from the 'models' extra" in line and 'pip install -e ".[models]" in the fairaudit checkout' in line
    assert "pip install \"fairaudit" not in res.output and "fairaudit[" not in res.output
    assert extras.missing_extra("sklearn.linear_model") is None      # installed here: not a missing extra


@pytest.mark.slow      # loads scikit-learn in a worker (~9 s)
def test_a_model_fitted_without_column_names_that_disagrees_with_the_data_is_a_setup_error(proj):
    sklearn = pytest.importorskip("sklearn.linear_model")
    import joblib
    d = pd.read_csv(EX / "models" / "credit.csv")
    model = sklearn.LogisticRegression().fit(d[["income", "debt_ratio"]].to_numpy(), d["label"])
    joblib.dump(model, proj / "arr.joblib")
    res = _cli(["check", "arr.joblib", "--data", EX / "models" / "credit.csv", "--checks", "selection_rates",
                "--draws", "50", "--no-html"], proj)
    assert res.exit_code == 2, res.output
    assert re.search(r"fairaudit: error: arr\.joblib: the model was fitted without column names "
                     r"\(no feature_names_in_\) on 2 features, and \S*credit\.csv has 3 feature columns \(income, "
                     r"debt_ratio, zip_score\); refit it on a pandas DataFrame", res.output), res.output


# ---------------------------------------------------------------------------
# Output conventions (item 5)

def test_json_dash_writes_the_json_alone_to_stdout(proj):
    res = _cli(["check", "alloc.py", "--data", "people.csv", "--checks", "selection_rates", "--draws", "300",
                "--json", "-"], proj)
    d = json.loads(res.stdout)                    # nothing else on stdout
    assert d["checks"][0]["id"] == "selection_rates" and not (proj / "-").exists()
    assert "SELECTION_RATES" not in res.stdout and re.search(r"^\d+ \w+ in .* → fairaudit-report\.html$",
                                                             res.stderr.strip().splitlines()[-1])
    assert re.search(r"^(PASS|FAIL|INCONCLUSIVE)\s+selection_rates", res.stderr, re.M)   # the verdicts: stderr


def test_quiet_prints_only_the_tally(proj):
    res = _cli(["check", "alloc.py", "--data", "people.csv", "--checks", "selection_rates", "--draws", "300",
                "--quiet", "--no-html"], proj)
    assert res.exit_code in (0, 1)
    assert re.fullmatch(r"1 (pass|fail|inconclusive) in \d+\.\d s\n", res.stdout), res.stdout
    assert res.stderr == ""                       # no progress lines, no warnings


def test_junit_carries_each_checks_time(proj):
    import xml.etree.ElementTree as ET
    _cli(["check", "alloc.py", "--data", "people.csv", "--checks", "selection_rates,min_requirement", "--allow-skip",
          "--draws", "300", "--no-html", "--junit", "j.xml"], proj)
    suite = ET.parse(proj / "j.xml").getroot()
    times = {c.get("name"): float(c.get("time")) for c in suite.iter("testcase")}
    assert times["selection_rates"] > 0 and times["min_requirement"] >= 0
    assert float(suite.get("time")) == pytest.approx(sum(times.values()), abs=2e-3)


def test_default_report_of_another_target_gets_the_targets_name(proj):
    (proj / "other.py").write_text(textwrap.dedent(SELECTOR))
    args = ["--checks", "min_requirement", "--allow-skip"]
    _cli(["check", "alloc.py", *args], proj)
    first = (proj / "fairaudit-report.html").read_text()
    res = _cli(["check", "other.py", *args], proj)
    assert (proj / "fairaudit-report.html").read_text() == first            # not overwritten
    assert (proj / "fairaudit-report-other.html").is_file() and "→ fairaudit-report-other.html" in res.output
    _cli(["check", "alloc.py", *args], proj)                                # the same target replaces its own
    assert not (proj / "fairaudit-report-alloc.html").exists()
    _cli(["check", "other.py", *args, "--html", "fairaudit-report.html"], proj)   # asked for: written there
    assert "other.py" in (proj / "fairaudit-report.html").read_text()


def _result(verdicts):
    checks = [{"id": f"check_{i}_{v}", "title": v, "verdict": v, "message": f"Message of a {v} check.",
               "evidence": {}, "draws": 0} for i, v in enumerate(verdicts)]
    return {"config": {"confidence": 0.95}, "checks": checks, "warnings": [], "target": {"path": "x.py"}}


def test_terminal_lists_verdicts_in_the_reports_order(capsys):
    from fairaudit.cli import _print_summary
    from fairaudit.report import ordered_checks
    d = _result(["pass", "skipped", "inconclusive", "error", "fail", "pass"])
    _print_summary(d, None, None)
    shown = re.findall(r"^(PASS|FAIL|ERROR|INCONCLUSIVE|SKIPPED)\s+(\S+)", capsys.readouterr().out, re.M)
    assert [cid for _, cid in shown] == [c["id"] for c in ordered_checks(d["checks"])]
    assert [v for v, _ in shown][:2] == ["FAIL", "ERROR"]


def test_terminal_wraps_between_words_at_the_terminals_width():
    import io

    from fairaudit.terminal import print_verdicts
    words = [f"word{i}" for i in range(60)]
    message = " ".join(words)
    buf = io.StringIO()
    print_verdicts([("fail", "selection_rates", "min_impact_ratio=0.404 [0.3, 0.5]", [message])], buf,
                   width=50, terminal=True)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", buf.getvalue())
    lines = plain.splitlines()
    assert len(lines) > 3 and all(len(ln) <= 50 for ln in lines)
    body = [ln for ln in lines if "word" in ln]
    assert all(ln.startswith(" " * 14) for ln in body)                  # continuation indented under the check
    assert " ".join(w for ln in body for w in ln.split()) == message   # no word cut or lost
    # off a terminal (a CI log) the same, at the given width ($COLUMNS by default)
    buf = io.StringIO()
    print_verdicts([("fail", "selection_rates", "", [message])], buf, terminal=False, width=60)
    body = [ln for ln in buf.getvalue().splitlines() if "word" in ln]
    assert len(body) > 3 and all(len(ln) <= 60 and ln.startswith(" " * 14) for ln in body)
    assert " ".join(w for ln in body for w in ln.split()) == message
