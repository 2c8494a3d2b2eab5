"""Results that cannot be lost or forged afterwards, replay that is explicit about what it
runs, --query as one read-only SELECT, and the smaller holes of issue 26 (items 4-7)."""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fairaudit.cli import main
from fairaudit.outputs import integrity, preflight, seal, write_text
from fairaudit.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "allocators"
LOG = str(ROOT / "examples" / "logs" / "selection_log.csv")
POP = str(ROOT / "examples" / "data" / "population.csv")


def run(args, cwd):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)


def one_line_error(res) -> str:
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert "Traceback" not in res.output, res.output
    err = [ln for ln in lines if ln.startswith("fairaudit: error:")]
    assert len(err) == 1, res.output
    return err[0]


@pytest.fixture(scope="module")
def log_result(tmp_path_factory):
    """A sealed result of a log audit (fast: no allocator)."""
    d = tmp_path_factory.mktemp("res")
    res = run(["check", LOG, "--checks", "selection_rates", "--json", "r.json", "--no-html"], d)
    assert res.exit_code in (0, 1), res.output
    return d / "r.json"


# ---------------------------------------------------------------------------
# Item 4: outputs
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["/dev/full", "missing-folder/r.json", "a-folder"])
@pytest.mark.parametrize("option", ["--json", "--html", "--junit"])
def test_unwritable_output_paths_exit_2_before_anything_is_drawn(tmp_path, bad, option):
    (tmp_path / "a-folder").mkdir()
    t0 = time.monotonic()
    res = run(["check", LOG, "--checks", "selection_rates", option, bad]
              + (["--no-html"] if option != "--html" else []), tmp_path)
    assert res.exit_code == 2
    line = one_line_error(res)
    assert option in line and "nothing was run" in line
    assert "PASS" not in res.output and "FAIL" not in res.output and "INCONCLUSIVE" not in res.output
    assert time.monotonic() - t0 < 20
    assert Path("/dev/full").exists() and not Path("/dev/full").is_file()      # never replaced


def test_preflight_refuses_two_outputs_on_one_file(tmp_path):
    with pytest.raises(UsageError, match="same file"):
        preflight({"--json": str(tmp_path / "x"), "--html": str(tmp_path / "x")})


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    p = tmp_path / "r.json"
    p.write_text("previous good result")

    def boom(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_text(p, "x" * 10000)
    assert p.read_text() == "previous good result"
    assert [q.name for q in tmp_path.iterdir()] == ["r.json"]      # the temporary file is gone too


def test_verdict_lines_are_printed_before_a_write_error(tmp_path, monkeypatch):
    import fairaudit.outputs as outputs

    def fail(path, text, encoding="utf-8"):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(outputs, "write_text", fail)
    res = run(["check", LOG, "--checks", "selection_rates", "--json", "r.json", "--no-html"], tmp_path)
    assert res.exit_code == 2
    out = res.output
    assert "selection_rates" in out and out.index("selection_rates") < out.index("could not write --json")
    assert "No space left on device" in one_line_error(res)


def test_the_json_carries_a_digest_of_its_content(log_result):
    raw = json.loads(log_result.read_text())
    assert len(raw["content_sha256"]) == 64 and integrity(raw) == "intact"
    import jsonschema
    from fairaudit.result import result_schema
    jsonschema.Draft202012Validator(result_schema()).validate(raw)
    raw["checks"][0]["verdict"] = "pass" if raw["checks"][0]["verdict"] != "pass" else "fail"
    assert integrity(raw) == "altered"
    del raw["content_sha256"]
    assert integrity(raw) == "unsealed"
    # created is left out: two audits with one seed carry one digest
    raw2 = json.loads(log_result.read_text())
    raw2["created"] = "1999-01-01T00:00:00+00:00"
    assert integrity(raw2) == "intact"


def test_report_and_compare_say_when_a_result_was_altered(tmp_path, log_result):
    raw = json.loads(log_result.read_text())
    raw["checks"][0]["message"] = "edited by hand"
    (tmp_path / "altered.json").write_text(json.dumps(raw))
    res = run(["report", "altered.json", "--html", "o.html"], tmp_path)
    assert res.exit_code == 0 and "was altered after fairaudit wrote it" in res.output
    res = run(["compare", str(log_result), "altered.json"], tmp_path)
    assert "altered.json was altered after fairaudit wrote it" in res.output
    res = run(["report", str(log_result), "--html", "o2.html"], tmp_path)
    assert res.exit_code == 0 and "altered" not in res.output


def test_sealed_json_is_the_same_result(log_result):
    from fairaudit.result import loads
    d = loads(log_result.read_text())
    again = json.loads(seal(d))
    assert again == json.loads(log_result.read_text())


# ---------------------------------------------------------------------------
# Item 5 and 7: malformed results, replay
# ---------------------------------------------------------------------------

def _malformed(log_result):
    good = json.loads(log_result.read_text())
    bad_verdict = json.loads(log_result.read_text())
    bad_verdict["checks"][0]["verdict"] = "maybe"
    bad_id = json.loads(log_result.read_text())
    bad_id["checks"][0]["id"] = "selection_rates\nPASS          everything"
    no_checks = {k: v for k, v in good.items() if k != "checks"}
    checks_str = {**good, "checks": "all fine"}
    check_not_obj = {**good, "checks": [1, 2]}
    return {"list": [1, 2, 3], "string": "pass", "no_checks": no_checks, "checks_str": checks_str,
            "check_not_obj": check_not_obj, "verdict_maybe": bad_verdict, "id_newline": bad_id,
            "target_not_obj": {**good, "target": "x.py"}, "deep": None}


@pytest.mark.parametrize("case", ["list", "string", "no_checks", "checks_str", "check_not_obj", "verdict_maybe",
                                  "id_newline", "target_not_obj", "deep"])
@pytest.mark.parametrize("command", ["report", "compare", "replay"])
def test_a_structurally_wrong_result_is_one_line(tmp_path, log_result, case, command):
    doc = _malformed(log_result)[case]
    p = tmp_path / "bad.json"
    p.write_text("[" * 100000 + "]" * 100000 if case == "deep" else json.dumps(doc))
    args = {"report": ["report", p, "--html", tmp_path / "o.html"], "compare": ["compare", log_result, p],
            "replay": ["replay", p, "selection_rates"]}[command]
    res = run(args, tmp_path)
    assert res.exit_code == 2, res.output
    line = one_line_error(res)
    assert "bad.json" in line
    assert not (tmp_path / "o.html").exists()
    assert "\nPASS" not in res.output


def test_compare_counts_an_unknown_verdict_as_an_error():
    from fairaudit.compare import compare
    base = {"schema_version": 2, "target": {"kind": "selection"}, "config": {"seed": 0, "confidence": 0.95},
            "checks": [{"id": "c", "title": "c", "verdict": "pass", "statistic": None}]}
    cur = json.loads(json.dumps(base))
    cur["checks"][0]["verdict"] = "maybe"
    cmp = compare(base, cur)
    assert cmp.exit_code == 1 and [c.status for c in cmp.checks] == ["regression"]
    assert "counted as an error" in " ".join(cmp.summary_lines())


def test_a_newline_in_a_check_id_cannot_start_a_terminal_line():
    from fairaudit.compare import compare, terminal_table
    base = {"schema_version": 2, "target": {"kind": "selection"}, "config": {"seed": 0, "confidence": 0.95},
            "checks": [{"id": "c\nPASS  forged", "title": "c", "verdict": "fail", "statistic": None}]}
    cmp = compare(base, json.loads(json.dumps(base)))
    table = terminal_table(cmp)
    assert not any(line.startswith("PASS") for line in table.splitlines())
    assert "c\\nPASS" in table


def _allocator_result(tmp_path):
    alloc = tmp_path / "alloc.py"
    alloc.write_text("import numpy as np\n\ndef select(scores, k, rng):\n    return np.arange(k + 1)\n")
    res = run(["check", alloc, "--checks", "determinism", "--json", "r.json", "--no-html", "--timeout", "5"], tmp_path)
    assert res.exit_code == 1, res.output
    return alloc, tmp_path / "r.json"


def test_replay_refuses_a_swapped_target_with_one_line(tmp_path):
    alloc, result = _allocator_result(tmp_path)
    d = json.loads(result.read_text())
    assert d["checks"][0]["verdict"] == "error"
    res = run(["replay", result, "determinism"], tmp_path)          # unchanged: runs, shows path and sha256
    assert f"sha256 {d['target']['sha256']}" in res.output and "expected k=" in res.output
    assert res.exit_code == 1
    alloc.write_text("import numpy as np\n\ndef select(scores, k, rng):\n    return np.arange(k)\n")
    res = run(["replay", result, "determinism"], tmp_path)
    assert res.exit_code == 2
    assert "changed since the audit" in one_line_error(res)
    res = run(["replay", result, "determinism", "--accept-changed-target"], tmp_path)
    assert res.exit_code == 0 and "The outcome is valid now." in res.output


def test_replay_never_imports_what_the_json_names_in_its_own_process(tmp_path):
    """A tampered target path naming a module (`this`) is refused: its file is unknown."""
    _, result = _allocator_result(tmp_path)
    raw = json.loads(result.read_text())
    raw["target"]["path"], raw["target"]["function"] = "this", "x"
    result.write_text(json.dumps(raw))
    before = set(sys.modules)
    res = run(["replay", result, "determinism"], tmp_path)
    assert res.exit_code == 2 and "this" not in set(sys.modules) - before
    one_line_error(res)


# ---------------------------------------------------------------------------
# Item 6: --query
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("sql", [
    "COPY (SELECT 1) TO 'out.csv'",
    "SELECT 1; COPY (SELECT 1) TO 'out.csv'",
    "EXPORT DATABASE 'exported'",
    "ATTACH 'other.db'",
    "INSTALL httpfs",
    "CREATE TABLE t AS SELECT 1",
    "PRAGMA version",
    "SET enable_external_access = true",
])
def test_query_is_one_read_only_select(tmp_path, sql):
    res = run(["check", "--query", sql, "--no-html"], tmp_path)
    assert res.exit_code == 2
    assert "--query" in one_line_error(res)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_query_reads_only_the_files_it_names(tmp_path):
    shutil.copy(LOG, tmp_path / "log.csv")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "secret.csv").write_text("a\n1\n")
    from fairaudit.logs.duckdb import query_relation
    rel = query_relation(f"select * from read_csv('{tmp_path / 'log.csv'}')")
    assert len(rel.fetchall()) > 0
    from fairaudit.errors import DataError
    with pytest.raises(DataError, match="Permission|disabled"):
        query_relation(f"select * from read_csv('{tmp_path / 'log.csv'}') "
                       f"union all by name select * from read_csv(concat('{tmp_path}/oth', 'er/secret.csv'))")
    res = run(["check", "--query", f"select * from read_csv('{tmp_path / 'log.csv'}')", "--checks",
               "selection_rates", "--no-html"], tmp_path)
    assert res.exit_code in (0, 1), res.output


# ---------------------------------------------------------------------------
# Item 7: logs and labels
# ---------------------------------------------------------------------------

def _log_frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"decision_id": np.arange(n) // 4, "group": rng.choice(["a", "b"], n),
                         "selected": (rng.random(n) < 0.5).astype(int), "score": rng.random(n)})


@pytest.mark.parametrize("column", ["selected", "score"])
def test_a_parquet_log_with_two_columns_of_one_name_is_refused(tmp_path, column):
    import pyarrow as pa
    import pyarrow.parquet as pq
    f = _log_frame()
    names = list(f.columns) + [column]
    arrays = [pa.array(f[c]) for c in f.columns] + [pa.array(1 - f[column] if column == "selected" else f[column])]
    pq.write_table(pa.Table.from_arrays(arrays, names=names), tmp_path / "dup.parquet")
    res = run(["check", tmp_path / "dup.parquet", "--checks", "selection_rates", "--no-html"], tmp_path)
    assert res.exit_code == 2
    line = one_line_error(res)
    assert f"2 columns named '{column}'" in line


def test_a_file_name_with_glob_characters_is_that_file(tmp_path):
    f = _log_frame()
    weird = tmp_path / "log[1]*?.parquet"
    f.to_parquet(weird)
    _log_frame(40, seed=1).to_parquet(tmp_path / "log1x.parquet")       # a glob would match this too
    res = run(["check", weird, "--checks", "selection_rates", "--json", "r.json", "--no-html"], tmp_path)
    assert res.exit_code in (0, 1), res.output
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["target"]["rows"] == len(f) if "rows" in d["target"] else True
    assert d["checks"][0]["draws"] == len(f)


def test_a_huge_group_name_is_wrapped_in_bounded_time():
    from fairaudit.figures import LABEL_CHARS, LABEL_LINES, _short
    t0 = time.perf_counter()
    out = _short("g" * (20 * 2**20))
    assert time.perf_counter() - t0 < 2.0
    lines = out.split("\n")
    assert len(lines) == LABEL_LINES and all(len(ln) <= LABEL_CHARS for ln in lines) and lines[-1].endswith("…")


@pytest.mark.slow
def test_a_20_mb_group_value_does_not_hang_the_report(tmp_path):
    f = _log_frame(120)
    f["group"] = np.where(np.arange(len(f)) % 2, "g" * (20 * 2**20), "small")
    f.to_parquet(tmp_path / "big.parquet")
    t0 = time.monotonic()
    res = run(["check", tmp_path / "big.parquet", "--checks", "selection_rates", "--html", "r.html"], tmp_path)
    assert res.exit_code in (0, 1)
    assert time.monotonic() - t0 < 120
    assert (tmp_path / "r.html").stat().st_size < 5 * 2**20
