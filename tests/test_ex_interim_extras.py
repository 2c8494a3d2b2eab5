"""ex_post and ex_ante (seed 004, Defs 2.5 and 2.1), and §7's stated figures.

§7 (Kearns–Roth–Wu), on the paper's setup (N(μ_j, 1), μ_j ~ N(0, 1), m = 100 + 50,
k = 15): the plug-in baseline shows an unbounded unfairness ratio in ≈ 53% of trials,
GREEDY misses the true top k in ≈ 87%, and under misspecification (population 2
uniform over a wide range) the plug-in "virtually always" picks only population 2.
For a deterministic allocator an unbounded ratio on a pool ⇔ the run is not the true
top k ⇔ the run is ex-post unfair, so the ex_post check measures both fractions.
"""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import hypergeom

import fairaudit as fa
from fairaudit.data import population_from_frame
from fairaudit.populations import pool_generator, simulate_pool
from fairaudit.run.load import import_file

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "allocators"


def run(check_id, target, **params):
    data = params.pop("data", None)
    return fa.audit(target, checks=[check_id], data=data, params={check_id: params}, allow_skip=True).checks[0]


def load(name):
    mod = import_file(EX / f"{name}.py")
    return mod


# ---------------------------------------------------------------------------
# §7's figures
# ---------------------------------------------------------------------------

@pytest.mark.slow      # out of the fast lane (kept under 2 min): runs in the full suite
def test_section7_plugin_unbounded_in_about_53_percent_of_trials():
    r = run("ex_post", str(EX / "parametric_plugin.py"))           # 400 fresh pools of the paper's setup
    assert r.verdict == "fail"
    rate = r.statistic.estimate
    assert abs(rate - 0.53) < 0.08, rate                             # ±3.2 SE of 400 trials
    assert r.statistic.ci[0] <= 0.53 <= r.statistic.ci[1]


def test_section7_greedy_misses_true_top_k():
    """Our GREEDY (empirical CDF F̂ = #{x' < x}/m, as in §2) takes exactly the top 10 of
    population A and the top 5 of B at m = (100, 50), k = 15, so it hits the true top k
    iff exactly 10 of the true top 15 are from A: P = hypergeom(150, 100, 15).pmf(10)
    = 0.226, a miss rate of 0.774. The paper states ≈ 87%; the gap cannot be sampling
    error (see the report), so we test against the exact value and record the paper's."""
    exact = 1 - hypergeom(150, 100, 15).pmf(10)
    r = run("ex_post", str(EX / "greedy_cdf.py"))
    assert r.verdict == "fail"
    assert r.statistic.ci[0] <= exact <= r.statistic.ci[1]
    assert r.statistic.ci[1] < 0.87                                  # the paper's 87% is not reproduced


@pytest.mark.slow
def test_section7_rates_grow_with_population_size():
    """§7: both rates approach 100% "as populations grow in fixed ratio". At m = 1000 + 500
    (k = 150) GREEDY's exact miss rate is 1 − hypergeom(1500, 1000, 150).pmf(100) ≈ 0.927,
    and the plug-in's rate is certified above its rate at m = 100 + 50."""
    exact = 1 - hypergeom(1500, 1000, 150).pmf(100)
    g = run("ex_post", str(EX / "greedy_cdf.py"), n=1500, pools=300)
    assert g.statistic.ci[0] <= exact <= g.statistic.ci[1]
    assert g.statistic.ci[0] > 1 - hypergeom(150, 100, 15).pmf(10)          # above the n = 150 rate, 0.774
    small = run("ex_post", str(EX / "parametric_plugin.py"), pools=300)
    big = run("ex_post", str(EX / "parametric_plugin.py"), n=1500, pools=300)
    assert big.statistic.ci[0] > small.statistic.ci[1], (small.statistic, big.statistic)


def test_section7_misspecified_plugin_picks_population_2():
    pp = load("parametric_plugin")
    shares = []
    for r in range(200):
        p = simulate_pool("misspecified", 150, pool_generator(0, r))
        sel = pp.allocate(p.scores, p.k, p.groups(), None)
        shares.append(np.mean(p.population[sel] == 1))
    assert np.mean(shares) > 0.95                                    # "virtually always" population 2
    # GREEDY is oblivious: its share is ~ the population's 1/3 whatever the distribution.
    g = load("greedy_cdf")
    p = simulate_pool("misspecified", 150, pool_generator(0, 0))
    assert np.mean(p.population[g.allocate(p.scores, p.k, p.groups(), np.random.default_rng(0))] == 1) == 5 / 15


# ---------------------------------------------------------------------------
# ex_post
# ---------------------------------------------------------------------------

def test_ex_post_uniform_lottery_fails_and_oracle_passes():
    r = run("ex_post", str(EX / "uniform_lottery.py"), pools=100)
    assert r.verdict == "fail" and r.statistic.estimate > 0.9
    ce = r.evidence["counterexample"]
    assert ce["selected"]["quality"] < ce["rejected"]["quality"]
    # An oracle that sees the true order of a given pool is ex-post fair on it.
    p = simulate_pool("paper", 40, np.random.default_rng(3))
    order = np.argsort(-p.quality)

    @fa.selector
    def oracle(scores, k, rng):
        return order[:k]

    r2 = run("ex_post", oracle, data=population_from_frame(p.frame()), draws=200)
    assert r2.verdict == "pass" and r2.statistic.estimate == 0


def test_extras_are_not_default_and_skip_without_quality():
    pop = population_from_frame(pd.DataFrame({"score": [1.0, 2.0, 3.0], "population": ["A", "B", "A"]}))
    from fairaudit.check import discover
    reg = discover()
    assert reg["ex_interim"].default and not reg["ex_post"].default and not reg["ex_ante"].default
    assert run("ex_post", str(EX / "uniform_lottery.py"), data=pop).verdict == "skipped"
    assert run("ex_ante", str(EX / "uniform_lottery.py"), data=pop).verdict == "skipped"


# ---------------------------------------------------------------------------
# ex_ante
# ---------------------------------------------------------------------------

def test_ex_ante_uniform_passes():
    r = run("ex_ante", str(EX / "uniform_lottery.py"), pools=800)
    assert r.verdict == "pass", r.message
    t = r.tables["cells"]
    assert ((t.lo <= 0.1) & (0.1 <= t.hi)).all()                     # every expected chance is k/n = 0.1


@pytest.mark.slow
def test_ex_ante_greedy_unequal_sizes_fails():
    """With populations of 100 and 50, GREEDY's expected chance at true CDF 0.90–0.95
    is ≈ 0.77 in A but ≈ 0.69 in B (exact: P(Bin(99, 1−q) ≤ 9) vs P(Bin(49, 1−q) ≤ 4)
    averaged over the bin) — not ex-ante fair."""
    r = run("ex_ante", str(EX / "greedy_cdf.py"))
    assert r.verdict == "fail", r.message
    assert 0.05 < r.statistic.estimate < 0.11
    ce = r.evidence["counterexample"]
    assert ce["lower_or_equal_quality"]["population"] == "A" and ce["higher_quality"]["population"] == "B"
    # the figure circles the two cells of that reversal, at their expected chances
    pts = r.figures[0]["points"]
    assert [p["y"] for p in pts] == pytest.approx([ce["lower_or_equal_quality"]["chance"],
                                                   ce["higher_quality"]["chance"]])
    assert "(A)" in pts[0]["label"] and "(B)" in pts[1]["label"]


@pytest.mark.slow      # out of the fast lane (kept under 2 min): runs in the full suite
def test_ex_ante_greedy_equal_sizes_lemma_2_8():
    """Lemma 2.8: with equal population sizes GREEDY is ex-ante fair: no certified
    reversal, and the estimate is small."""
    r = run("ex_ante", str(EX / "greedy_cdf.py"), ratio="1,1", pools=800, tolerance=0.1)
    assert r.verdict == "pass", r.message
    assert r.statistic.estimate < 0.03


# ---------------------------------------------------------------------------
# Validation by simulation over seeds (the project's bar)
# ---------------------------------------------------------------------------

def _over_seeds(check_id, target, seeds, truth, **params):
    v, miss = {}, 0
    for s in seeds:
        r = fa.audit(target, checks=[check_id], seed=s, params={check_id: params}).checks[0]
        v[r.verdict] = v.get(r.verdict, 0) + 1
        miss += not (r.statistic.ci[0] <= truth <= r.statistic.ci[1])
    return v, miss


@pytest.mark.slow
def test_ex_post_boundary_false_fails_and_coverage_by_simulation():
    """GREEDY on pools of n = 30 (m = 20 + 10, k = 3) takes the top 2 of A and the top 1
    of B, so it is ex-post unfair exactly when the true top 3 do not hold exactly 2 of A:
    rate 1 − hypergeom(30, 20, 3).pmf(2) = 0.5320, known exactly. ``tolerance`` is set to
    that rate — an allocator at the boundary, so a ``fail`` is a false fail. 60 pools per
    audit, 150 seeds (≈ 6 s).

    * False fails allowed ≤ 13 (P(Binomial(150, 0.05) ≥ 14) ≈ 0.02). Measured: 4 (143
      inconclusive, 3 pass; at 100 pools: 7/200 — one-sided, so ≤ α/2 expected).
    * Coverage of the Clopper–Pearson interval (nominal 0.95), misses allowed ≤ 13.
      Measured: 7 misses (143/150 covered; 190/200 at 100 pools)."""
    exact = 1 - hypergeom(30, 20, 3).pmf(2)
    v, miss = _over_seeds("ex_post", str(EX / "greedy_cdf.py"), range(150), exact, n=30, pools=60, tolerance=exact)
    print("ex_post boundary:", v, miss, "misses")
    assert v.get("fail", 0) <= 13 and miss <= 13, (v, miss)


@pytest.mark.slow
def test_ex_ante_tolerance_zero_false_fails_on_ex_ante_fair_allocators():
    """Two ex-ante fair allocators, where the true largest reversal is exactly 0: the
    uniform lottery (every expected chance k/n) and GREEDY with equal population sizes
    (Lemma 2.8: chances depend on true quality only, and rise with it). With
    ``tolerance = 0`` a ``fail`` means the simultaneous box excluded the truth, so the
    fail rate is 1 − coverage and must be ≤ α. Cheap settings: n = 30, 5 bins, 150
    pools (8 draws each); 60 seeds each (≈ 9 s in all). Allowed ≤ 7 per allocator
    (P(Binomial(60, 0.05) ≥ 8) ≈ 0.01). Measured: uniform 0, GREEDY 1:1 0, all
    inconclusive (over 100 seeds at 200 pools: 1 and 0)."""
    vu, _ = _over_seeds("ex_ante", str(EX / "uniform_lottery.py"), range(60), 0.0, n=30, bins=5, pools=150,
                        tolerance=0.0)
    vg, _ = _over_seeds("ex_ante", str(EX / "greedy_cdf.py"), range(100, 160), 0.0, n=30, bins=5, pools=150,
                        tolerance=0.0, ratio="1,1")
    print("ex_ante tolerance 0:", vu, vg)
    assert vu.get("fail", 0) <= 7 and vg.get("fail", 0) <= 7, (vu, vg)


def _greedy_ex_ante_truth(bins=5):
    """GREEDY at n = 30 (A = 20, B = 10, k = 3) picks the top 2 of A and the top 1 of B.
    Its expected chance at true quality q: A: P(Bin(19, 1 − q) ≤ 1); B: q⁹. Bin averages
    by quadrature; the true largest reversal over the check's cell pairs."""
    from scipy import integrate
    from scipy.stats import binom
    h = (lambda q: binom.cdf(1, 19, 1 - q), lambda q: q ** 9)
    g = np.array([[integrate.quad(f, b / bins, (b + 1) / bins)[0] * bins for b in range(bins)] for f in h]).ravel()
    pop, b_ = np.repeat([0, 1], bins), np.tile(np.arange(bins), 2)
    return max(g[v] - g[u] for u in range(2 * bins) for v in range(2 * bins)
               if b_[v] < b_[u] or (b_[v] == b_[u] and pop[v] != pop[u]))


@pytest.mark.slow
def test_ex_ante_interval_covers_greedy_exact_reversal():
    """GREEDY with populations 2:1 is ex-ante unfair; at n = 30, 5 bins its true largest
    reversal is 0.0335 (A's chance in [0.8, 1) is 0.480, B's 0.446; computed exactly).
    n = 30, 5 bins, 150 pools, 100 seeds (≈ 8 s). Coverage of the statistic's interval
    (nominal 0.95): misses allowed ≤ 10 (P(Binomial(100, 0.05) ≥ 11) ≈ 0.01). Measured:
    0 misses (also 0/100 at 200 pools); verdicts all inconclusive, the truth being
    next to the tolerance 0.03."""
    truth = _greedy_ex_ante_truth()
    assert 0.033 < truth < 0.034
    v, miss = _over_seeds("ex_ante", str(EX / "greedy_cdf.py"), range(200, 300), truth, n=30, bins=5, pools=150)
    print("ex_ante greedy coverage:", v, miss, "misses")
    assert miss <= 10, (v, miss)


@pytest.mark.slow
def test_ex_ante_greedy_fails_at_defaults_over_seeds():
    """Detection at the full default budget (n = 150, 20 bins, 5000 pools × 8 draws,
    tolerance 0.03; true reversal 0.078) on more seeds than
    ``test_ex_ante_greedy_unequal_sizes_fails``: 4 seeds (≈ 13 s); measured 4 fails
    (16/16 on seeds 1–16 in a longer run). This test found the former default of 2000
    pools too small: there GREEDY failed on only 3 of seeds 1–8 (5 inconclusive)."""
    v, _ = _over_seeds("ex_ante", str(EX / "greedy_cdf.py"), range(1, 5), 0.0)
    print("ex_ante greedy defaults:", v)
    assert v.get("fail", 0) >= 3, v
