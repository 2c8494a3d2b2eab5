"""Validation of sequential sampling (SPEC §0, issue 2): ``Sampler.sample_until``
re-checks a verdict after every batch (256, 512, 1024, … draws) and stops as soon as it
is decided. With anytime-valid intervals (confidence sequences) that stops wrongly at
most α of the time; with a fixed-size interval re-checked after every batch it does not.

The allocator is a coin (select individual 0 with probability p), so the truth is known.
At the boundary p = tolerance every decided verdict means the interval excluded the
true p — a wrong stop. Seeds are fixed: the counts below are deterministic.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

import fairaudit as fa
from fairaudit.result import decide
from fairaudit.run.sampler import Sampler
from fairaudit.stats import beta_binomial_cs, betting_cs, eb_confidence_sequence, proportion_ci

# A simulation study over many seeds: the full suite (.ci/run, `pytest`) runs it; the fast
# lane (`pytest -m "not slow"`) leaves it out.
pytestmark = pytest.mark.slow

CONF = 0.95
TOL = 0.3
MAX_DRAWS = 8192          # 6 looks: 256, 512, …, 8192
REPS = 200
#: the most wrong stops in REPS runs that is still consistent with a rate ≤ α (exact
#: one-sided binomial test at level 0.01): more would show the error rate exceeds α.
ALLOWED = int(sps.binom.ppf(0.99, REPS, 1 - CONF))


@fa.selector(k=1)
def coin(scores, k, rng, size=None):
    """Selects individual 0 with probability scores[0] (vectorised)."""
    return (rng.random(size) >= scores[0]).astype(np.int64)[:, None]


INTERVALS = {
    "beta-binomial CS": lambda x: beta_binomial_cs(int(x.sum()), len(x), CONF),
    "empirical-Bernstein CS": lambda x: eb_confidence_sequence(x.astype(float), CONF),
    "betting CS": lambda x: betting_cs(x.astype(float), CONF),
    "fixed-size Clopper-Pearson": lambda x: proportion_ci(int(x.sum()), len(x), CONF),   # not anytime-valid
}


def sequential_verdict(p: float, interval: str, seed: int) -> tuple[str, int]:
    inst = fa.Instance("coin", scores=np.array([p, 1.0 - p]), k=1)
    sampler = Sampler(fa.target_from_callable(coin), seed=seed)

    def verdict(draws):
        return decide(INTERVALS[interval](draws[:, 0] == 0), TOL, "above")

    draws = sampler.sample_until(inst, "coin", lambda d: verdict(d) != "inconclusive", MAX_DRAWS)
    return verdict(draws), len(draws)


@pytest.fixture(scope="module")
def boundary_stops() -> dict[str, int]:
    return {name: sum(sequential_verdict(TOL, name, seed)[0] != "inconclusive" for seed in range(REPS))
            for name in INTERVALS}


@pytest.mark.parametrize("interval", ["beta-binomial CS", "empirical-Bernstein CS", "betting CS"])
def test_anytime_valid_intervals_rarely_stop_wrongly(boundary_stops, interval):
    # measured: 0/200 (beta-binomial), 2/200 (empirical-Bernstein); allowed ≤ ALLOWED (= 18)
    assert boundary_stops[interval] <= ALLOWED, boundary_stops


def test_the_check_can_fail_fixed_size_intervals_stop_wrongly_too_often(boundary_stops):
    """Negative control: the same loop with a fixed-size interval (valid only for one
    look) decides at the boundary far more often than α allows (measured 45/200)."""
    assert boundary_stops["fixed-size Clopper-Pearson"] > ALLOWED, boundary_stops


@pytest.mark.parametrize("interval", ["beta-binomial CS", "empirical-Bernstein CS", "betting CS"])
@pytest.mark.parametrize("p,expected", [(0.2, "pass"), (0.4, "fail")])
def test_clear_cases_stop_early_with_the_right_verdict(interval, p, expected):
    runs = [sequential_verdict(p, interval, seed) for seed in range(30)]
    assert {v for v, _ in runs} == {expected}
    # measured medians 256–512 draws, at most 2048 — a sixteenth to a quarter of the budget
    assert np.median([n for _, n in runs]) <= 512
    assert max(n for _, n in runs) <= 2048 < MAX_DRAWS
