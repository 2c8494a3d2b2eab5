"""``python benchmarks/validate.py --quick`` writes the validation table (docs/VALIDATION.md's
form): one row per (check, reference allocator) for every check, and on the fair
allocators the false-fail counts are consistent with a rate of at most α.

The quick mode runs about 45 fair audits (3–4 seeds each) in ~15 s of CPU. The bound:
a fair row with f fails in n seeds is refuted when P(Binomial(n, α) ≥ f) < 0.01, and the
pooled count over all fair rows is held to the same one-sided binomial test; so the test
fails if a check's false-fail rate is visibly above α (e.g. 2 fails in 3 seeds).
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from scipy import stats

from fairaudit.check import discover

# `benchmarks/validate.py --quick` takes ~15 s of CPU: the full suite runs it (.ci/run), the
# fast lane leaves it out
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ALPHA = 0.05
COLUMNS = ["check", "allocator", "truth", "seeds", "verdicts (pass/fail/inconcl./error)", "false-fail rate [95% CI]",
           "detection rate [95% CI]", "coverage (exact value)", "median draws", "resolution"]


def _load_validate():
    spec = importlib.util.spec_from_file_location("fairaudit_validate", ROOT / "benchmarks" / "validate.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod          # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    out = tmp_path_factory.mktemp("validation") / "VALIDATION.md"
    assert _load_validate().main(["--quick", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in re.split(r"(?<!\\)\|", ln.strip().strip("|"))] for ln in lines[2:]]
    return text, header, [dict(zip(header, r)) for r in rows]


def _verdicts(row):
    p, f, i, e = (int(x) for x in row["verdicts (pass/fail/inconcl./error)"].split()[0].split("/"))
    return p, f, i, e


def test_table_structure_and_every_check_has_fair_or_violating_rows(table):
    text, header, rows = table
    assert header == COLUMNS
    assert all(len(r) == len(COLUMNS) for r in rows)
    ids = {r["check"].strip("`") for r in rows}
    missing = set(discover()) - ids
    assert not missing, f"add reference allocators (Case rows) for {sorted(missing)} to benchmarks/validate.py"
    for r in rows:
        assert r["truth"] in ("fair", "violating")
        n = int(re.search(r"\((\d+)\)$", r["seeds"]).group(1))
        assert sum(_verdicts(r)) == n, r           # every seed's verdict is counted
        assert r["resolution"], r                  # every row says what the check cannot see
        col = "false-fail rate [95% CI]" if r["truth"] == "fair" else "detection rate [95% CI]"
        assert re.match(r"\d+/\d+ = \d+(\.\d)?% \[\d+(\.\d)?%, \d+(\.\d)?%\]", r[col]), r
    assert "Over all fair rows:" in text and "seeds" in text


def test_false_fail_rates_are_within_alpha(table):
    _, _, rows = table
    fair = [r for r in rows if r["truth"] == "fair"]
    assert len(fair) >= 10
    total_f = total_n = 0
    for r in fair:
        p, f, i, e = _verdicts(r)
        n = p + f + i + e
        assert e == 0, r                                            # a reference allocator never errors
        assert stats.binom.sf(f - 1, n, ALPHA) >= 0.01, r           # P(X ≥ f) under rate α
        total_f, total_n = total_f + f, total_n + n
    assert stats.binom.sf(total_f - 1, total_n, ALPHA) >= 0.01, (total_f, total_n)


def test_violating_allocators_are_never_certified_and_mostly_detected(table):
    _, _, rows = table
    bad = [r for r in rows if r["truth"] == "violating"]
    detected = 0
    for r in bad:
        p, f, i, e = _verdicts(r)
        assert p == 0 and e == 0, r                                 # a violator that passes is a wrong verdict
        detected += f
    assert detected >= 0.8 * sum(sum(_verdicts(r)) for r in bad)


def test_coverage_where_the_exact_value_is_known(table):
    _, _, rows = table
    cov = [r for r in rows if r["coverage (exact value)"] != "—"]
    assert len(cov) >= 3
    for r in cov:
        c, m = (int(x) for x in r["coverage (exact value)"].split()[0].split("/"))
        assert stats.binom.sf(m - c - 1, m, ALPHA) >= 0.01, r       # misses consistent with ≤ α
