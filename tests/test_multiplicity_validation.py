"""Simulation validation of the multiplicity check over fixed seeds (SPEC §0, seed 001).

* the exact equal-utility lottery passes at a rate ≥ 1 − α (it is the reference);
* deterministic top k and the bootstrap-refit selector fail at the default budget;
* the intervals on pairwise consistency and on the systemic-rejection share cover their
  exact values at ≥ the nominal rate, for an allocator whose marginals are known exactly.
"""
import numpy as np
import pytest

import fairaudit as fa
from fairaudit.data import population_from_frame
from fairaudit.checks.multiplicity.equal_utility import band, pairwise_consistency_of_marginals, reference_marginals, sample_band

from test_multiplicity import EX, DATA, definition_lottery, small_population

FAST = {"reference_draws": 200}


def run(target, pop, seed, **params):
    return fa.audit(target, checks=["multiplicity"], data=pop, seed=seed,
                    params={"multiplicity": {**FAST, **params}}).checks[0]


@pytest.mark.slow
def test_lottery_from_the_definition_passes_at_least_1_minus_alpha():
    outcomes = []
    for s in range(60):
        pop = population_from_frame(small_population(seed=100 + s))
        outcomes.append(run(definition_lottery, pop, seed=s).verdict)
    assert outcomes.count("fail") <= 3            # ≤ α·60 false fails (measured over 100 seeds: 100 passes)
    assert outcomes.count("pass") / len(outcomes) >= 0.95, outcomes


W, ETA = 0.01, 0.02


@fa.selector(k=50)
def mostly_top_k(scores, labels, k, rng, size):
    """With chance W the equal-utility lottery, else the top k by score: marginals
    π = W·π_lottery + (1 − W)·1[top k], known exactly."""
    q = np.asarray(labels) == 1
    top = np.sort(np.argsort(-np.asarray(scores), kind="stable")[:k])
    kq = int(q[top].sum())
    lot = sample_band(rng, q, k, kq, kq, size=size)
    use = rng.random(size) < W
    return np.where(use[:, None], lot, top[None, :])


def exact_truth(frame, k=50):
    q = frame["label"].to_numpy() == 1
    top = np.argsort(-frame["score"].to_numpy(), kind="stable")[:k]
    b = band(len(q), int(q.sum()), k, int(q[top].sum()))
    pq, pu = reference_marginals(b)
    pi = W * np.where(q, pq, pu)
    pi[top] += 1 - W
    return pairwise_consistency_of_marginals(pi), float(np.mean(pi[q] < ETA))


@pytest.mark.slow
def test_intervals_on_pairwise_consistency_and_systemic_rejection_cover():
    frame = small_population(seed=7)
    pop = population_from_frame(frame)
    pc_true, rej_true = exact_truth(frame)
    assert 0.3 < rej_true < 0.7                   # a non-trivial estimand
    cover_pc = cover_rej = 0
    width_pc, width_rej = [], []
    runs = 80
    for s in range(runs):
        r = run(mostly_top_k, pop, seed=s, min_draws=2048, max_draws=2048, rejected_below=ETA)
        lo, hi = r.evidence["pairwise_consistency"]["ci"]
        cover_pc += lo <= pc_true <= hi
        width_pc.append(hi - lo)
        lo, hi = r.evidence["systemic_rejection"]["ci"]
        cover_rej += lo <= rej_true <= hi
        width_rej.append(hi - lo)
    # each interval is stated at 1 − α/2 = 0.975; require the nominal 0.95 of the verdict
    assert cover_pc / runs >= 0.95 and cover_rej / runs >= 0.95, (cover_pc, cover_rej)
    # and the intervals are informative, so covering is not vacuous (measured: 0.013 and 0.095)
    assert np.mean(width_pc) < 0.03 and np.mean(width_rej) < 0.2, (np.mean(width_pc), np.mean(width_rej))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_bootstrap_selector_fails_at_the_default_budget(seed):
    r = fa.audit(str(EX / "allocators" / "bootstrap_logistic_top_k.py"), checks=["multiplicity"], data=DATA,
                 seed=seed).checks[0]
    assert r.verdict == "fail", r.message
    assert r.draws <= 2000


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top_k_fails_at_the_default_budget(seed):
    r = fa.audit(str(EX / "allocators" / "top_k.py"), checks=["multiplicity"], data=DATA, k=250,
                 seed=seed).checks[0]
    assert r.verdict == "fail" and r.draws == 512


@pytest.mark.slow
def test_intervals_cover_at_the_sequential_stopping_time():
    """The confidence sequences stay valid when sampling stops as soon as the verdict is
    certain (the default): coverage at the stopping time."""
    frame = small_population(seed=7)
    pop = population_from_frame(frame)
    pc_true, rej_true = exact_truth(frame)
    runs, cover = 40, 0
    for s in range(runs):
        r = run(mostly_top_k, pop, seed=1000 + s, rejected_below=ETA)
        lo, hi = r.evidence["pairwise_consistency"]["ci"]
        rlo, rhi = r.evidence["systemic_rejection"]["ci"]
        cover += (lo <= pc_true <= hi) and (rlo <= rej_true <= rhi)
        assert r.verdict == "fail"
    assert cover / runs >= 0.95, cover


@pytest.mark.slow
def test_fixed_sample_interval_over_models_covers():
    """Models mode (score columns, a fixed sample): 20 models whose top k is a uniformly random
    k-subset have pairwise consistency f(k/n) exactly; Hoeffding's U-statistic interval covers it."""
    from test_multiplicity import definition_top_k
    f = lambda p: p * p + (1 - p) ** 2  # noqa: E731
    truth = f(50 / 200)
    runs, cover = 60, 0
    for s in range(runs):
        frame = small_population(seed=s)
        rng = np.random.default_rng(s)
        for j in range(20):
            frame[f"m_{j:02d}"] = rng.random(len(frame))
        r = run(definition_top_k, population_from_frame(frame), seed=s, models="m_*")
        lo, hi = r.evidence["pairwise_consistency"]["ci"]
        cover += lo <= truth <= hi
    assert cover / runs >= 0.95, cover
