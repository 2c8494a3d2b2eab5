"""selection_rates: verdicts on known allocators, validation by simulation (false-fail
rate, coverage, sequential stopping), and the log path."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fairaudit as fa
from fairaudit.data import population_from_frame

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "allocators"
POP = ROOT / "examples" / "data" / "population.csv"

# Two groups of 50; the allocator picks k_B ∈ {7, 11} (prob ½ each) from B and 20 − k_B
# from A, members uniformly. True rates: B 9/50 = 0.18, A 11/50 = 0.22 → impact ratio of
# B = 9/11 ≈ 0.818.
N_A = N_B = 50
TRUE_RATES = {"A": 11 / 50, "B": 9 / 50}
TRUE_IR = 9 / 11


def two_group_pop():
    return population_from_frame(pd.DataFrame({"score": np.ones(N_A + N_B),
                                               "group": ["A"] * N_A + ["B"] * N_B}))


@fa.selector(k=20)
def split_allocator(scores, k, rng, size=None):
    B = size or 1
    kb = np.where(rng.random(B) < 0.5, 7, 11)
    # random order within each group; take the first k_B of B and 20 − k_B of A
    a = np.argsort(rng.random((B, N_A)), axis=1)
    b = N_A + np.argsort(rng.random((B, N_B)), axis=1)
    out = np.empty((B, 20), dtype=np.int64)
    for kv in (7, 11):
        m = kb == kv
        out[m] = np.concatenate([a[m, : 20 - kv], b[m, :kv]], axis=1)
    return out if size else out[0]


def run(threshold=0.8, seed=0, max_draws=4000, **kw):
    return fa.audit(split_allocator, checks=["selection_rates"], data=two_group_pop(), seed=seed,
                    params={"selection_rates": {"threshold": threshold, "max_draws": max_draws}}, **kw).checks[0]


def test_examples_seed0_verdicts():
    top = fa.audit(str(EX / "top_k.py"), checks=["selection_rates"], data=str(POP)).checks[0]
    assert top.verdict == "fail"
    lot = fa.audit(str(EX / "uniform_lottery.py"), checks=["selection_rates"], data=str(POP)).checks[0]
    assert lot.verdict == "pass"   # uniform chances: every impact ratio is 1
    assert lot.statistic.ci[0] >= 0.8


def test_every_group_has_estimate_and_interval():
    r = fa.audit(str(EX / "broome_lottery.py"), checks=["selection_rates"], data=str(POP)).checks[0]
    groups = r.evidence["groups"]
    assert len(groups) == 2 + 2 + 4    # sex, age_band, and their 4 intersections
    for g in groups.values():
        lo, hi = g["rate"]["ci"]
        assert lo <= g["rate"]["estimate"] <= hi


@pytest.mark.slow
def test_false_fail_rate_at_most_alpha_and_coverage():
    """True minimum impact ratio 0.818 ≥ 0.8: a `fail` would be wrong. Over 60 seeds the
    wrong-fail rate must be ≤ α = 0.05 (binomial slack: ≤ 6 of 60 has prob. > 0.95 at
    rate 0.05), and the simultaneous rate intervals must cover the true rates at ≥ 0.95
    − slack."""
    fails = covered = 0
    reps = 60
    for seed in range(reps):
        res = run(0.8, seed=seed, max_draws=2048)
        fails += res.verdict == "fail"
        t = res.tables["groups"]
        ok = all(r.rate_lo <= TRUE_RATES[r.category] <= r.rate_hi
                 for r in t.itertuples() if r.attribute == "group")
        covered += ok
    assert fails <= 6
    assert covered / reps >= 0.9


def test_sequential_stops_early_on_clear_cases():
    clear = run(0.95, seed=1, max_draws=20000)       # truth 0.818 ≪ 0.95
    assert clear.verdict == "fail" and clear.draws < 20000
    clear_pass = run(0.6, seed=1, max_draws=20000)   # truth 0.818 ≫ 0.6
    assert clear_pass.verdict == "pass" and clear_pass.draws <= 2048


@pytest.mark.slow
def test_sequential_wrong_stops_rare():
    """Threshold 0.83, just above the truth 0.818: the right verdict is fail or
    inconclusive; `pass` would be a wrong stop. Anytime-valid intervals keep wrong
    stops ≤ α even though the verdict is re-checked after every batch."""
    wrong = sum(run(0.83, seed=s, max_draws=8192).verdict == "pass" for s in range(40))
    assert wrong <= 4


def test_log_audit_uses_counts():
    """The log path, recomputed independently: counts per category with pandas,
    Clopper–Pearson intervals from SciPy at the Bonferroni level over the 8 categories,
    impact ratios within each attribute and their box-image intervals (rows as independent
    trials, cluster_by=none: the bundled log's individual_id recurs, so the default is
    cluster-robust, tested in tests/test_log_engine.py)."""
    from scipy import stats as st
    path = ROOT / "examples" / "logs" / "selection_log.csv"
    r = fa.audit(str(path), checks=["selection_rates"], params={"selection_rates": {"cluster_by": "none"}}).checks[0]
    t = r.tables["groups"]
    assert (t["n"].iloc[:2].sum()) == 6000   # every logged row counted once per attribute
    assert "clopper-pearson, bonferroni over 8" == r.statistic.method
    log = pd.read_csv(path)
    log["sex × age_band"] = log["sex"] + " × " + log["age_band"]
    conf = 1 - 0.05 / 8
    for attr, g in t.groupby("attribute", sort=False):
        top_lo, top_hi = g["rate_lo"].max(), g["rate_hi"].max()
        for row in g.itertuples():
            col = log[attr]
            k = int(log.loc[col == row.category, "selected"].sum())
            n = int((col == row.category).sum())
            ci = st.binomtest(k, n).proportion_ci(conf, "exact")
            assert (row.selected, row.n) == (k, n)
            assert row.rate_lo == pytest.approx(ci.low, abs=1e-9) and row.rate_hi == pytest.approx(ci.high, abs=1e-9)
            assert row.impact_ratio == pytest.approx(min(1.0, (k / n) / (g["selected"] / g["n"]).max()))
            assert row.ir_lo == pytest.approx(row.rate_lo / top_hi) and row.ir_hi == pytest.approx(min(1.0, row.rate_hi / top_lo))
    worst = t.loc[t["impact_ratio"].idxmin()]
    assert r.statistic.estimate == pytest.approx(worst["impact_ratio"])
    assert r.statistic.ci[0] == pytest.approx(t["ir_lo"].min())
    # the lowest ratio, 0.87 with interval [0.64, 1], straddles the four-fifths threshold
    assert r.verdict == "inconclusive"


def test_skipped_without_groups():
    r = fa.audit(str(EX / "top_k.py"), checks=["selection_rates"], allow_skip=True).checks[0]
    assert r.verdict == "skipped" and "--data" in r.message


def test_small_categories_flagged_not_dropped():
    f = pd.DataFrame({"score": np.linspace(0.1, 1, 101), "g": ["big"] * 100 + ["tiny"]})
    r = fa.audit(str(EX / "uniform_lottery.py"), checks=["selection_rates"],
                 data=population_from_frame(f), k=10).checks[0]
    t = r.tables["groups"]
    assert "tiny" in set(t["category"]) and not t.loc[t["category"] == "tiny", "in_verdict"].item()
    assert r.evidence["excluded_small_categories"] == ["tiny"]


def test_betting_cs_intervals_shrink_for_a_deterministic_selector():
    """Issue 18 defect 8: top-k has exactly constant group rates; with the
    empirical-Bernstein sequence its impact-ratio interval after 256 draws was
    [0, 0.768] around the exact 0.277; the betting confidence sequence gives less than
    half that width, and the Broome lottery's pass needs 1024 draws instead of 2048."""
    import fairaudit as fa
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    pop = str(root / "examples" / "data" / "population.csv")
    r = fa.audit(str(root / "examples" / "allocators" / "top_k.py"), checks=["selection_rates"], data=pop,
                 params={"selection_rates": {"max_draws": 512}}).checks[0]
    lo, hi = r.statistic.ci
    assert r.verdict == "fail" and lo <= r.statistic.estimate <= hi and hi - lo < 0.45, r.statistic
    assert "betting confidence sequence" in r.statistic.method
    b = fa.audit(str(root / "examples" / "allocators" / "broome_lottery.py"), checks=["selection_rates"],
                 data=pop).checks[0]
    assert b.verdict == "pass" and b.draws <= 1024
