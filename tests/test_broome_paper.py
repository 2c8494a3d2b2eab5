"""``broome`` and ``systemic_exclusion`` against issue 3's full "Done when" grid and the
numbers of seed 000 that fairaudit can reproduce without the paper's data sets.

* Done when: claims from the built-in generators (uniform, truncated normal, Pareto) ×
  k/n ∈ {0.1, 0.25, 0.5}, n = 1000, seed 0, default settings — all nine instances,
  not only the three of the default instance set.
* Seed 000 §4.1.2, Figure (c): the partial BF lottery with k' = 0.5k, n' = k costs
  "< 0.05" expected utility against top-k "across different selection rates"
  (expected utility = mean claim of the selected, Def 4.8 with claims as success
  probabilities).
* Seed 000 §4.1.1 / Example 4.5 / Figure (b): randomising reduces the systemic exclusion
  rate, and more so as the number m of decision-makers grows; without noise,
  independent runs of the Broome lottery exclude individual i from all m with
  probability (1 − π_i)^m exactly.

The seed's Tables 1–6 report k'/k and n'/n of allocators built on the Swiss
unemployment and Census data sets (bootstrapped models, conformal outliers); those
data are not available here, so the tables' quantities are checked on Algorithm 1,
whose k'/k and n'/n are known (here and in ``test_broome.py``, footnote 7).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fairaudit.checks.broome import lottery as BL
from fairaudit.checks import broome as B
from fairaudit.data import generate_claims
from fairaudit.engine import AuditConfig, AuditContext, audit

# A simulation study over many seeds: the full suite (.ci/run, `pytest`) runs it; the fast
# lane (`pytest -m "not slow"`) leaves it out.
pytestmark = pytest.mark.slow

ALLOC = Path(__file__).resolve().parents[1] / "examples" / "allocators"
GRID_ITEMS = [(d, r) for d in ("uniform", "truncated_normal", "pareto") for r in (0.1, 0.25, 0.5)]
GRID = ",".join(f"{d}:1000:{r}" for d, r in GRID_ITEMS)


def one(name, check="broome", **params):
    return audit(str(ALLOC / f"{name}.py"), checks=[check], seed=0, params={check: params}).checks[0]


@pytest.fixture(scope="module")
def grid():
    return {name: one(name, instances=GRID)
            for name in ("top_k", "uniform_lottery", "broome_lottery", "partial_lottery")}


def _instances(c):
    ev = c.evidence["instances"]
    assert len(ev) == 9 and [e["n"] for e in ev] == [1000] * 9
    assert [e["k"] for e in ev] == [round(r * 1000) for _, r in GRID_ITEMS]
    return ev


def test_grid_top_k_fails_every_instance_deterministically(grid):
    for e in _instances(grid["top_k"]):
        # 256 identical draws certify determinism when the exclusion they show is beyond doubt
        # at this family's α (issue 18 defect 1); otherwise BF.2 is refuted by sampling on
        assert e["verdict"] == "fail"
        if e.get("deterministic"):
            assert e["draws"] == B.DET_DRAWS
            # claims below the cut whose exclusion the 256 draws certify (issue 18: those the Broome
            # lottery would pick with a chance above bound/min_chance), never more than all below it
            assert 0 < e["excluded_positive"] <= 1000 - e["k"]
        else:
            assert e["components"]["bf2"] == "fail", e["instance"]


def test_grid_uniform_lottery_fails_bf1_on_every_instance(grid):
    for e in _instances(grid["uniform_lottery"]):
        # BF.1 refuted: between claim bins, or (once the finer within-bin contrast decides first) inside one
        assert e["verdict"] == "fail" and "fail" in (e["components"]["bf1_bins"],
                                                      e["components"].get("bf1_within_bins")), e["instance"]
        assert e["components"]["bf2"] != "fail"                  # every claim has chance k/n: BF.2 holds
        key = "bf1_bins" if e["components"]["bf1_bins"] == "fail" else "bf1_within_bins"
        s = e["statistics"][key]
        assert s["ci"][1] < 0.1                                  # certified flat: gain < 0.1 of Broome's


def test_grid_broome_lottery_passes_every_instance(grid):
    c = grid["broome_lottery"]
    assert c.verdict == "pass", c.message
    for e in _instances(c):
        assert e["verdict"] == "pass" and set(e["components"].values()) == {"pass"}, e["instance"]


def test_grid_partial_lottery_fails_and_k_prime_n_prime_within_003(grid):
    c = grid["partial_lottery"]
    assert c.verdict == "fail"
    certified = []
    for e in _instances(c):
        kn = e["k"] / e["n"]
        p = e["partial"]
        assert e["verdict"] == "fail" and e["components"]["bf2"] == "fail"
        assert abs(p["k_prime_rate"]["estimate"] - 0.5) <= 0.03, e["instance"]
        assert abs(p["pool_share"]["estimate"] - kn) <= 0.03, e["instance"]
        # Algorithm 1: the top k − k' = k/2 always, the next n' = k in the lottery, contiguous ranks
        k = e["k"]
        assert p["pool_ranks"] == [k // 2 + 1, k // 2 + k] and p["pool_contiguous"]
        assert p["pool_bf1"]["estimate"] >= 0.5                  # BF.1 holds inside the pool
        certified.append(p["pool_bf1"]["ci"][0] >= 0.1 and e["partial_summary"].startswith(
            f"partial Broome-Fairness over ranks {k // 2 + 1}..{k // 2 + k}"))
    # BF.1 certified inside the pool on all 9 instances at the default budget. (When the pool's
    # family also held within-bin contrasts, which its report never used, the truncated-normal
    # k = 100 pool was left at [0.088, 1.195] after 20,000 draws; now it is certified, at 8,192.)
    assert all(certified), certified


def test_fig_c_partial_lottery_costs_less_than_005_expected_utility(grid):
    """Seed 000 Fig. (c): expected-utility difference < 0.05 for k' = 0.5k, n' = k at every
    selection rate. The audit's estimate agrees on all nine instances; its interval
    certifies it (upper bound < 0.05) wherever the true cost is not within noise of
    0.05 — only uniform claims at k/n = 0.5 come close (exact yardstick: 0.04–0.05)."""
    for (dist, r), e in zip(GRID_ITEMS, _instances(grid["partial_lottery"])):
        cost = e["utility"]["expected_utility"]["cost"]
        assert cost["estimate"] < 0.05 and cost["ci"][0] < 0.05, e["instance"]
        if (dist, r) != ("uniform", 0.5):
            assert cost["ci"][1] < 0.05, (e["instance"], cost)
        # the audit's estimate matches the partial lottery's cost computed from the exact π
        claims = generate_claims(dist, 1000, AuditContext(AuditConfig(seed=0)).rng(f"broome/claims/{dist}/1000/{r}"))
        k = e["k"]
        order = np.argsort(-claims, kind="stable")
        top, pool = order[: k // 2], order[k // 2: k // 2 + k]
        eu = (claims[top].sum() + BL.broome_reference(claims[pool], k - k // 2) @ claims[pool]) / k
        yard = claims[order[:k]].mean() - eu
        assert cost["ci"][0] - 0.005 <= yard <= cost["ci"][1] + 0.005, (e["instance"], yard, cost)
        if (dist, r) == ("uniform", 0.5):
            assert 0.04 < yard < 0.05


def test_ser_of_independent_broome_lotteries_is_mean_of_one_minus_pi_to_the_m():
    """Def 4.4 without noise: m independent runs exclude i from all with probability
    (1 − π_i)^m, so SER = mean_i (1 − π_i)^m (π exact, fairaudit.checks.broome.lottery.broome_reference)."""
    params = {"instances": "uniform:400:0.25", "replicates": 200, "sigma": 0.0}
    claims = generate_claims("uniform", 400, AuditContext(AuditConfig(seed=0)).rng("systemic_exclusion/claims/uniform/400/0.25"))
    pi = BL.broome_reference(claims, 100)
    for m in (2, 4):
        c = one("broome_lottery", "systemic_exclusion", m=m, **params)
        row = c.evidence["instances"][0]
        truth = float(np.mean((1 - pi) ** m))
        assert row["ser_lo"] - 0.005 <= truth <= row["ser_hi"] + 0.005, (m, row, truth)
        assert row["top_k_ser"] == pytest.approx(0.75)
        assert c.verdict == "pass"


def test_fig_b_ser_reduction_grows_with_m_and_partial_lottery_sits_between():
    """Seed 000 §4.1.1 (Fig. (b), k/n = 0.25, σ = 0.025): the Broome lottery cuts SER against
    top-k, more so as m grows; the partial lottery (k' = 0.5k, n' = k) randomises less
    and cuts less; top-k itself gets no reduction."""
    red = {}
    for name in ("broome_lottery", "partial_lottery", "top_k"):
        for m in (2, 4):
            c = one(name, "systemic_exclusion", instances="truncated_normal:1000:0.25", m=m, sigma=0.025)
            red[name, m] = c.evidence["instances"][0]
            if name == "top_k":
                assert c.verdict == "fail" and abs(red[name, m]["reduction"]) < 0.02
    for m in (2, 4):
        b, p = red["broome_lottery", m], red["partial_lottery", m]
        assert b["reduction_lo"] > p["reduction_hi"] > p["reduction_lo"] > 0.02
    assert red["broome_lottery", 4]["reduction_lo"] > red["broome_lottery", 2]["reduction_hi"]
    assert red["partial_lottery", 4]["reduction_lo"] > red["partial_lottery", 2]["reduction_hi"]


def test_partial_broome_table_reads_like_the_seed_tables(grid):
    """The report's ``partial_broome`` table (one row per instance: always / pool / never,
    k'/k and n'/n with intervals, reading): Algorithm 1 reads as partial BF, the Broome
    lottery as Broome-fair with (almost) no one excluded, top-k as k'/k = 0."""
    t = grid["partial_lottery"].tables["partial_broome"]
    # 8 of 9 read as partial Broome-Fairness; the ninth (see the test above) as a randomised pool
    # whose BF.1 inside is not certified at the default budget
    assert len(t) == 9 and sum(r.startswith("partial Broome-Fairness over ranks") for r in t["reading"]) >= 8
    assert all(r.startswith(("partial Broome-Fairness over ranks", "a randomised pool over ranks")) for r in t["reading"])
    assert np.allclose(t["k_prime_over_k"], 0.5, atol=0.03)
    b = grid["broome_lottery"].tables["partial_broome"]
    assert all(r.startswith("Broome-fair") for r in b["reading"])
    assert max(b["never"]) <= 3                     # at most a few tiny claims never drawn
    k = grid["top_k"].tables["partial_broome"]
    assert (k["k_prime_over_k"] == 0).all() and (k["pool"] == 0).all()
    # read "deterministic" where the 256 identical draws certified it; the instances that had to
    # refute BF.2 by sampling on (see the top-k test) read from their partial analysis
    assert sum(r.startswith("deterministic") for r in k["reading"]) >= 7, list(k["reading"])
