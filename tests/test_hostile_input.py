"""Hostile and malformed input (issue 20): user text cannot forge terminal lines or reorder
the report, figures take any label, edge-case logs get a verdict or a reason, malformed
files get a message that says what was found, and nothing is written to the current folder
but the outputs asked for. One test (or more) per defect of the issue."""
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fairaudit.cli import main
from fairaudit.errors import DataError, LogError
from fairaudit.logs.load import load_log, log_from_frame
from fairaudit.text import inert, is_unsafe_char

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "allocators"
POP = str(ROOT / "examples" / "data" / "population.csv")

FORGED = ("\rPASS          selection_rates      min_impact_ratio=1.000 [0.990, 1.000]\n"
          "PASS          anonymity\x1b]0;owned\x07\x1b[2K\u202eSSAP")


def run(args, cwd, color=False):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, args, catch_exceptions=False, color=color)
    finally:
        os.chdir(old)


def unsafe(text):
    return sorted({f"U+{ord(ch):04X}" for ch in text if is_unsafe_char(ch)})


def raising_allocator(tmp_path, exc_expr, name="hostile.py"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(f"""
        import fairaudit as fa

        class Weird(Exception):
            def __str__(self):
                raise RuntimeError("no str for you")

        @fa.selector(k=3)
        def pick(scores, rng):
            raise {exc_expr}
    """))
    return p


def selection_log(tmp_path, name="log.csv", **over):
    rng = np.random.default_rng(1)
    n = 60
    f = pd.DataFrame({"decision_id": np.repeat(np.arange(6), 10), "score": rng.random(n).round(3),
                      "sex": rng.choice(["F", "M"], n), "selected": (rng.random(n) < 0.3).astype(int)})
    for k, v in over.items():
        f[k] = v
    p = tmp_path / name
    f.to_csv(p, index=False)
    return p


# --- 1. terminal output is inert ----------------------------------------------------------

def test_inert_escapes_controls_but_keeps_newlines_and_text():
    assert inert("a\nb") == "a\nb"
    assert inert("é ü 中文 — ok") == "é ü 中文 — ok"
    assert inert("\rX\x1b]0;t\x07\u202e\u2066\u200b") == "\\rX\\x1b]0;t\\x07\\u202e\\u2066\\u200b"
    assert not unsafe(inert("".join(map(chr, range(0, 0x3000)))))


@pytest.mark.parametrize("color", [False, True], ids=["not-a-tty", "tty-colour"])
def test_allocator_exception_cannot_forge_verdict_lines(tmp_path, color):
    p = raising_allocator(tmp_path, f"ValueError({FORGED!r})")
    res = run(["check", str(p), "--checks", "selection_rates", "--data", POP, "--html", "r.html"], tmp_path,
              color=color)
    assert res.exit_code == 1
    out = res.output
    # no carriage return, no OSC/erase escape, no bidi control from the user reaches the terminal
    assert "\r" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\r" in out and "\\x1b]0;owned\\x07" in out and "\\u202e" in out
    if color:   # the only escapes left are fairaudit's own colours (SGR), and there are some
        assert re.findall(r"\x1b\[[0-9;]*m", out)
        assert "\x1b" not in re.sub(r"\x1b\[[0-9;]*m", "", out)
    else:
        assert "\x1b" not in out
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    # the one verdict line is fairaudit's ERROR; user text never starts a line (it is indented)
    verdict_lines = [ln for ln in plain.splitlines() if re.match(r"(PASS|FAIL|ERROR|INCONCLUSIVE|SKIPPED)\b", ln)]
    assert verdict_lines == [ln for ln in verdict_lines if ln.startswith("ERROR")] and len(verdict_lines) == 1
    assert any(ln.startswith(" " * 14) and "PASS          anonymity" in ln for ln in plain.splitlines())


def test_group_names_and_error_messages_are_inert(tmp_path):
    p = selection_log(tmp_path, sex=["F\x1b[31m\u202e"] * 30 + ["M\x08"] * 30)
    res = run(["check", str(p), "--checks", "selection_rates", "--html", "r.html"], tmp_path)
    assert res.exit_code in (0, 1) and not unsafe(res.output), unsafe(res.output)
    assert "F\\x1b[31m\\u202e" in res.output or "M\\b" in res.output
    bad = tmp_path / "bad.csv"
    bad.write_text("decision_id,score,sel\x1bected\u202e\n0,1,1\n")
    res = run(["check", str(bad), "--html", "r.html"], tmp_path)
    assert res.exit_code == 2 and "fairaudit: error:" in res.output
    assert not unsafe(res.output) and "sel\\x1bected\\u202e" in res.output


def test_allocator_print_output_is_inert(tmp_path):
    p = tmp_path / "chatty.py"
    p.write_text(textwrap.dedent("""
        import numpy as np
        import fairaudit as fa

        @fa.selector(k=3)
        def pick(scores, rng):
            print("\\rPASS          fake\\x1b]0;owned\\x07")
            print("PASS          selection_rates      plain forged line")
            return np.argsort(-scores)[:3]
    """))
    # in-process, what the allocator prints reaches the terminal escaped and prefixed
    res = run(["check", str(p), "--checks", "selection_rates", "--data", POP, "--draws", "50", "--html", "r.html",
               "--in-process"], tmp_path)
    assert res.exit_code in (0, 1)
    assert not unsafe(res.output) and "[output] \\rPASS          fake" in res.output
    assert "[output] PASS          selection_rates      plain forged line" in res.output
    assert not [ln for ln in res.output.splitlines() if ln.startswith(("PASS", "\\r")) and "forged" in ln]
    # isolated (the default), it is captured per check into the result, never printed
    res = run(["check", str(p), "--checks", "selection_rates", "--data", POP, "--draws", "50", "--html", "r.html",
               "--json", "r.json"], tmp_path)
    assert res.exit_code in (0, 1)
    assert not unsafe(res.output) and "forged" not in res.output
    out = json.loads((tmp_path / "r.json").read_text())["checks"][0]["evidence"]["allocator_output"]
    assert any("plain forged line" in line for line in out["stdout"])


def test_str_that_raises_is_the_allocators_error_not_a_fairaudit_bug(tmp_path):
    p = raising_allocator(tmp_path, "Weird()")
    res = run(["check", str(p), "--checks", "selection_rates", "--data", POP, "--json", "r.json", "--html", "r.html"],
              tmp_path)
    assert res.exit_code == 1
    c = json.loads((tmp_path / "r.json").read_text())["checks"][0]
    assert c["verdict"] == "error" and "fairaudit bug" not in c["message"]
    assert "allocator raised Weird" in c["message"] and "str() raised RuntimeError" in c["message"]


def test_huge_message_capped_on_terminal_json_and_report(tmp_path):
    p = raising_allocator(tmp_path, 'ValueError("x" * 5_000_000)')
    res = run(["check", str(p), "--checks", "selection_rates", "--data", POP, "--json", "r.json", "--html", "r.html"],
              tmp_path)
    assert res.exit_code == 1
    assert len(res.output) < 5_000 and "characters; first 2,000 shown" in res.output   # wrapped, not cut at 500
    d = json.loads((tmp_path / "r.json").read_text())
    c = d["checks"][0]
    assert len(c["message"]) < 3_000 and "[5,000,000 characters; first 2,000 shown]" in c["message"]
    html = (tmp_path / "r.html").read_text()
    assert len(html) < 300_000 and "characters; first 2,000 shown" in html


# --- 2. report text is isolated ------------------------------------------------------------

def _bdi_isolated(html, needle):
    """Every occurrence of ``needle`` sits inside a <bdi> element (or an element isolated by CSS)."""
    for m in re.finditer(re.escape(needle), html):
        before = html[:m.start()]
        open_bdi = before.rfind("<bdi")
        close_bdi = before.rfind("</bdi>")
        open_pre = max(before.rfind('<pre class="user'), before.rfind("<pre class='user"))
        close_pre = before.rfind("</pre>")
        if not (open_bdi > close_bdi or open_pre > close_pre):
            return False
    return True


def test_bidi_controls_in_user_strings_are_isolated_in_the_report(tmp_path):
    p = selection_log(tmp_path, sex=["F\u202e"] * 30 + ["M"] * 30)
    res = run(["check", str(p), "--checks", "selection_rates", "--html", "r.html"], tmp_path)
    assert res.exit_code in (0, 1)
    html = (tmp_path / "r.html").read_text()
    assert html.count("\u202e") >= 1       # the groups table's cell, raw but isolated
    assert _bdi_isolated(html, "\u202e")
    assert "<script" not in html.lower()
    # in a message (fairaudit's words around user values) bidi controls are shown escaped
    assert "sex = F\\u202e" in html
    p = raising_allocator(tmp_path, 'ValueError("evil \\u202e txet")')
    run(["check", str(p), "--checks", "selection_rates", "--data", POP, "--html", "r2.html"], tmp_path)
    html = (tmp_path / "r2.html").read_text()
    assert "evil \\u202e txet" in html and _bdi_isolated(html, "\u202e")


def test_json_keeps_a_capped_message_and_its_length():
    from fairaudit.result import CheckResult
    d = CheckResult(id="x", title="X", verdict="error", message="m" * 100_000).to_dict()
    assert len(d["message"]) < 20_100 and d["message_length"] == 100_000
    assert "message_length" not in CheckResult(id="x", title="X", verdict="pass", message="ok").to_dict()


def test_long_user_strings_truncated_in_report_with_length():
    from fairaudit.report import render_html
    d = {"schema_version": 1, "target": {"path": "t.py", "kind": "selection"}, "config": {"confidence": 0.95, "seed": 0},
         "checks": [{"id": "x", "title": "X", "verdict": "error", "message": "m" * 10_000, "statistic": None,
                     "draws": 0, "params": {}, "evidence": {}, "tables": {"t": {"columns": ["c" * 5000],
                                                                                 "rows": [["v" * 9000]]}},
                     "figures": []}]}
    html = render_html(d)
    assert "m" * 2001 not in html and "10,000 characters; first 2,000 shown" in html
    assert "v" * 2001 not in html and "9,000 characters" in html
    assert "c" * 2001 not in html


# --- 3. figures take any label ---------------------------------------------------------------

@pytest.mark.parametrize("label", ["$\\frac{1}{0$ F", "$\\alpha$ M", "50% $x^2$ _{a}", "<b>&amp;"])
def test_figures_draw_labels_literally(label):
    from fairaudit.figures import render_svg
    spec = {"kind": "interval_bars", "title": f"rates {label}", "labels": [label, "other"], "estimate": [0.2, 0.4],
            "lo": [0.1, 0.3], "hi": [0.3, 0.5], "xlabel": label, "reference": 0.3, "reference_label": label}
    svg = render_svg(spec)
    from xml.sax.saxutils import escape
    assert escape(label) in svg
    if "alpha" in label:
        assert "α" not in svg


def test_hostile_group_name_keeps_both_selection_rate_figures(tmp_path):
    p = selection_log(tmp_path, sex=["$\\frac{1}{0$ F"] * 30 + ["$\\alpha$ M"] * 30)
    res = run(["check", str(p), "--checks", "selection_rates", "--html", "r.html"], tmp_path)
    assert res.exit_code in (0, 1)
    html = (tmp_path / "r.html").read_text()
    assert "could not be drawn" not in html and html.count("<svg") >= 2
    assert "$\\alpha$ M" in html


def test_a_figure_that_fails_says_so_and_keeps_its_section():
    from fairaudit.report import render_html
    bad = {"kind": "interval_bars", "title": "broken \u202e", "labels": ["a"], "estimate": [1.0, 2.0], "lo": [0],
           "hi": [1]}
    d = {"schema_version": 1, "target": {"path": "t.py", "kind": "selection"}, "config": {"confidence": 0.95, "seed": 0},
         "checks": [{"id": "x", "title": "X", "verdict": "pass", "message": "ok", "statistic": None, "draws": 1,
                     "params": {}, "evidence": {}, "tables": {"groups": {"columns": ["g"], "rows": [["kept"]]}},
                     "figures": [bad]}]}
    html = render_html(d)
    assert "could not be drawn: <bdi>ValueError" in html and "kept" in html and 'id="check-x"' in html
    assert _bdi_isolated(html, "\u202e")


# --- 4. edge-case logs and results ---------------------------------------------------------------

def test_more_draws_hint_and_decide_take_nan_and_inf():
    from fairaudit.result import decide, more_draws_hint
    nan, inf = float("nan"), float("inf")
    assert more_draws_hint((0.0, 1.0), nan, 0.8, 100) is None
    assert more_draws_hint((nan, nan), 0.5, 0.8, 100) is None
    assert more_draws_hint((0.0, inf), 0.5, 0.8, 100) is None
    assert more_draws_hint((0.0, 1.0), 0.5, nan, 100) is None
    assert decide((nan, nan), 0.8, "below") == "inconclusive"
    assert decide((nan, 1.0), 0.8, "above") == "inconclusive"
    assert decide((0.9, inf), 0.8, "above") == "fail"
    assert decide((0.0, 0.5), nan, "above") == "inconclusive"


@pytest.mark.parametrize("case", ["nobody_selected", "everybody_selected", "one_row", "one_decision", "one_group"])
def test_edge_case_logs_get_a_verdict_or_a_reason(tmp_path, case):
    rng = np.random.default_rng(3)
    n = 40
    f = pd.DataFrame({"decision_id": np.repeat(np.arange(4), 10), "score": rng.random(n).round(3),
                      "sex": rng.choice(["F", "M"], n), "selected": (rng.random(n) < 0.3).astype(int)})
    if case == "nobody_selected":
        f["selected"] = 0
    elif case == "everybody_selected":
        f["selected"] = 1
    elif case == "one_row":
        f = f.head(1)
    elif case == "one_decision":
        f["decision_id"] = 7
    elif case == "one_group":
        f["sex"] = "F"
    f.to_csv(tmp_path / "log.csv", index=False)
    res = run(["check", "log.csv", "--json", "r.json", "--html", "r.html"], tmp_path)
    assert res.exit_code in (0, 1), res.output
    d = json.loads((tmp_path / "r.json").read_text())
    for c in d["checks"]:
        assert "fairaudit bug" not in c["message"], (c["id"], c["message"])
        assert c["verdict"] != "error", (c["id"], c["message"])
        assert "nan" not in c["message"].lower().replace("nanc", ""), (c["id"], c["message"])
        if c["verdict"] in ("inconclusive", "skipped"):
            assert len(c["message"]) > 20
    sr = next(c for c in d["checks"] if c["id"] == "selection_rates")
    if case == "nobody_selected":
        assert sr["verdict"] in ("inconclusive", "skipped") and "nobody" in sr["message"].lower()


def test_duplicate_column_names_refused(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("decision_id,score,score,sex,selected\n0,1,2,F,1\n0,2,3,M,0\n")
    with pytest.raises(DataError, match=r"duplicate column.*'score'.*columns 2 and 3"):
        load_log(p)
    f = pd.DataFrame([[0, 1, 2, "F", 1]], columns=["decision_id", "score", "score", "sex", "selected"])
    with pytest.raises(LogError, match="duplicate column"):
        log_from_frame(f)


def test_duplicate_column_names_refused_in_population(tmp_path):
    from fairaudit.data import load_population
    p = tmp_path / "pop.csv"
    p.write_text("id,score,sex,sex\n1,0.5,F,M\n")
    with pytest.raises(DataError, match=r"duplicate column.*'sex'"):
        load_population(p)


def test_latin1_log_names_encoding_and_encoding_option_reads_it(tmp_path):
    p = selection_log(tmp_path)
    f = pd.read_csv(p)
    f["sex"] = np.where(f["sex"] == "F", "Fémme", "Mâle")
    f.to_csv(p, index=False, encoding="latin-1")
    with pytest.raises(DataError) as ei:
        load_log(p)
    msg = str(ei.value)
    assert "UnicodeDecodeError" not in msg and "UTF-8" in msg and "--encoding" in msg
    assert re.search(r"latin-1|iso-8859-1|cp1252|windows-1252", msg, re.I)
    assert "row 1" in msg   # the first bad byte is in data row 1 (the header is plain ASCII)
    log = load_log(p, encoding="latin-1")
    assert set(log.frame["sex"]) == {"Fémme", "Mâle"}
    res = run(["check", str(p), "--checks", "selection_rates", "--encoding", "latin-1", "--json", "r.json",
               "--html", "r.html"], tmp_path)
    assert res.exit_code in (0, 1)
    assert "Fémme" in (tmp_path / "r.json").read_text(encoding="utf-8")
    res = run(["check", str(p), "--checks", "selection_rates"], tmp_path)
    assert res.exit_code == 2 and "--encoding" in res.output and "Traceback" not in res.output


def test_binary_file_is_not_text(tmp_path):
    p = tmp_path / "log.csv"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\xff\xfe" + bytes(range(256)))
    with pytest.raises(DataError, match="not a text file") as ei:
        load_log(p)
    res = run(["check", str(p)], tmp_path)
    assert res.exit_code == 2 and not unsafe(res.output) and "not a text file" in res.output


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_other_delimiters_are_sniffed(tmp_path, sep):
    p = selection_log(tmp_path)
    f = pd.read_csv(p)
    f.to_csv(p, index=False, sep=sep)
    log = load_log(p)
    assert log.kind == "selection" and len(log.frame) == 60 and log.group_cols == ["sex"]


def test_one_column_header_with_a_delimiter_says_what_was_found(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("decision_id;score;selected\n0;1\n1;2;0;5;6\n")  # not consistently delimited
    with pytest.raises(DataError) as ei:
        load_log(p)
    msg = str(ei.value)
    assert "'decision_id;score;selected'" in msg or "';'" in msg


@pytest.mark.parametrize("dtype", ["object", "string", "str", "bool"])
def test_yes_no_true_false_selected_any_pandas_string_dtype(dtype):
    vals = ["yes", "no", "Yes", "NO", "true", "False"] if dtype != "bool" else [True, False, True, False, True, False]
    if dtype == "str" and pd.__version__ < "3":
        pytest.skip("the 'str' dtype is pandas 3's")
    f = pd.DataFrame({"decision_id": [1, 1, 1, 2, 2, 2], "score": [0.9, 0.5, 0.1, 0.8, 0.4, 0.3],
                      "selected": pd.Series(vals, dtype=dtype), "sex": list("FMFMFM")})
    log = log_from_frame(f)
    assert log.frame["selected"].tolist() == [1, 0, 1, 0, 1, 0]


def test_yes_no_selected_from_csv(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("decision_id,score,selected,sex\n1,0.9,yes,F\n1,0.5,no,M\n2,0.8,Yes,M\n2,0.1,no,F\n")
    assert load_log(p).frame["selected"].tolist() == [1, 0, 1, 0]
    p.write_text("decision_id,score,selected,sex\n1,0.9,yes,F\n1,0.5,maybe,M\n")
    with pytest.raises(LogError, match=r"row 2, column 'selected': 'maybe' is not 0/1"):
        load_log(p)


@pytest.mark.parametrize("value,shown", [("2", "2"), ("inf", "inf"), ("-1.5", "-1.5")])
def test_numbers_in_messages_are_plain(tmp_path, value, shown):
    p = tmp_path / "log.csv"
    p.write_text(f"decision_id,score,selected,sex\n1,0.9,1,F\n1,0.5,{value},M\n")
    with pytest.raises(LogError) as ei:
        load_log(p)
    msg = str(ei.value)
    assert "np.int" not in msg and "np.float" not in msg and f"row 2, column 'selected': {shown} is not" in msg
    p.write_text("decision_id,score,selected,sex\n1,0.9,1,F\n1,inf,0,M\n")
    with pytest.raises(LogError) as ei:
        load_log(p)
    assert "np.float" not in str(ei.value) and "row 2, column 'score': inf is not a finite number" in str(ei.value)
    from fairaudit.data import population_from_frame
    with pytest.raises(DataError) as ei:
        population_from_frame(pd.DataFrame({"score": np.array([0.5, np.inf])}))
    assert "np.float" not in str(ei.value) and "score inf is not a finite number" in str(ei.value)


def test_parser_row_numbers_are_data_rows(tmp_path):
    p = tmp_path / "log.csv"
    rows = ["decision_id,score,selected,sex"] + [f"0,0.{i},0,F" for i in range(9)] + ["0,0.9,1,F,EXTRA"]
    p.write_text("\n".join(rows) + "\n")   # the 10th data row (file line 11) has a field too many
    with pytest.raises(DataError) as ei:
        load_log(p)
    msg = str(ei.value)
    assert "row 10" in msg and "line 11" not in msg and "Error tokenizing" not in msg
    assert "header not counted" in msg or "header excluded" in msg


# --- 5. no litter ------------------------------------------------------------------------------

@pytest.mark.slow      # 3–5 s; the full suite runs it
def test_an_audit_writes_nothing_but_its_outputs(tmp_path):
    # a fresh interpreter (as a user runs it): Hypothesis's storage is decided on first use
    cwd = tmp_path / "work"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "HYPOTHESIS_STORAGE_DIRECTORY"}
    r = subprocess.run([sys.executable, "-m", "fairaudit.cli", "check", str(EX / "uniform_lottery.py"), "--checks",
                        "anonymity", "--draws", "200", "--html", "r.html", "--json", "r.json"],
                       cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode in (0, 1), r.stderr
    assert json.loads((cwd / "r.json").read_text())["checks"][0]["evidence"]   # the search ran
    assert sorted(p.name for p in cwd.iterdir()) == ["r.html", "r.json"]


def test_py_path_with_colon_is_a_file(tmp_path, monkeypatch):
    from fairaudit.targets import load_target
    d = tmp_path / "odd:dir"
    d.mkdir()
    src = "import numpy as np\nimport fairaudit as fa\n\n@fa.selector(k=2)\ndef pick(scores, rng):\n" \
          "    return np.argsort(-scores)[:2]\n"
    for p in (d / "alloc.py", tmp_path / "a:pick.py", d / "x:y.py"):
        p.write_text(src)
        t = load_target(str(p))
        assert t.func.__name__ == "pick" and t.path == str(p)
    t = load_target(str(d / "alloc.py") + ":pick")        # FILE.py:function still works
    assert t.func.__name__ == "pick"
    # module:function when the part before ':' is not a file
    (tmp_path / "i20_mod.py").write_text(src)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_target("i20_mod:pick").func.__name__ == "pick"


def test_column_mapping_onto_an_existing_name_refused():
    f = pd.DataFrame({"decision_id": [1, 1], "score": [0.5, 0.4], "selected": [1, 0], "hired": [0, 1],
                      "sex": ["F", "M"]})
    with pytest.raises(LogError, match="already has a column 'selected'"):
        log_from_frame(f, columns={"selected": "hired"})
    assert log_from_frame(f.drop(columns=["selected"]), columns={"selected": "hired"}).frame["selected"].tolist() == [0, 1]


def test_huge_allocator_message_still_names_the_input_and_draw(tmp_path):
    p = raising_allocator(tmp_path, 'ValueError("y" * 100_000)')
    res = run(["check", str(p), "--checks", "selection_rates", "--data", POP, "--json", "r.json", "--html", "r.html"],
              tmp_path)
    msg = json.loads((tmp_path / "r.json").read_text())["checks"][0]["message"]
    assert "[100,000 characters; first 2,000 shown]" in msg and "(draw 0 of stream 'selection_rates')" in msg
    assert "fix the allocator" in msg and res.exit_code == 1


def test_a_check_whose_exception_str_raises_is_still_reported(monkeypatch):
    from fairaudit.engine import error_result

    class Bad(Exception):
        def __str__(self):
            raise RuntimeError("no")

    class C:
        id, title, definition = "c", "C", ""
    r = error_result(C, Bad(), 0)
    assert r.verdict == "error" and "whose str() raised RuntimeError" in r.message
