"""ex_post and ex_ante (seed 004, Defs 2.5 and 2.1), and §7's stated figures.

§7 (Kearns–Roth–Wu), on the paper's setup (N(μ_j, 1), μ_j ~ N(0, 1), m = 100 + 50,
k = 15): the plug-in baseline shows an unbounded unfairness ratio in ≈ 53% of trials,
GREEDY misses the true top k in ≈ 87%, and under misspecification (population 2
uniform over a wide range) the plug-in "virtually always" picks only population 2.
For a deterministic allocator an unbounded ratio on a pool ⇔ the run is not the true
top k ⇔ the run is ex-post unfair, so the ex_post check measures both fractions.
"""
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import hypergeom

import fairaudit as fa
from fairaudit.data import population_from_frame
from fairaudit.populations import pool_generator, simulate_pool

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "allocators"


def run(check_id, target, **params):
    data = params.pop("data", None)
    return fa.audit(target, checks=[check_id], data=data, params={check_id: params}).checks[0]


def load(name):
    spec = importlib.util.spec_from_file_location(f"exx_{name}", EX / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------------------
# §7's figures
# ---------------------------------------------------------------------------

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


def test_ex_ante_greedy_equal_sizes_lemma_2_8():
    """Lemma 2.8: with equal population sizes GREEDY is ex-ante fair: no certified
    reversal, and the estimate is small."""
    r = run("ex_ante", str(EX / "greedy_cdf.py"), ratio="1,1", pools=800, tolerance=0.1)
    assert r.verdict == "pass", r.message
    assert r.statistic.estimate < 0.03
