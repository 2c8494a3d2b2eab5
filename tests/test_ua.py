"""Exact UA ranking (seed 002, Def 8; Props 9, 10, 13, 14; Theorem 11) and its sampler."""
import itertools

import numpy as np
import pytest

from fairaudit.run.sampler import position_counts
from fairaudit.stats import simultaneous_proportion_ci
from fairaudit.ua import (ua_marginals, ua_marginals_iid, ua_position_given_label, ua_sample,
                          validate_predictions)


def brute_marginals(P):
    """Enumerate every label vector; within a label vector use Def 8's formula
    (ties uniformly): individual i is uniform over positions b..b+a."""
    n, m = P.shape
    R = np.zeros((n, n))
    for y in itertools.product(range(m), repeat=n):
        pr = np.prod(P[np.arange(n), y])
        if pr == 0:
            continue
        y = np.array(y)
        for i in range(n):
            b = int((y > y[i]).sum())
            a = int((y == y[i]).sum()) - 1
            R[i, b:b + a + 1] += pr / (a + 1)
    return R


def brute_marginals_perm(P):
    """Independent oracle: enumerate label vectors AND all n! tie-break orders (each
    equally likely), sort by (label desc, tie-break order)."""
    n, m = P.shape
    R = np.zeros((n, n))
    perms = list(itertools.permutations(range(n)))
    for y in itertools.product(range(m), repeat=n):
        pr = np.prod(P[np.arange(n), y])
        if pr == 0:
            continue
        for tb in perms:
            order = sorted(range(n), key=lambda i: (-y[i], tb[i]))
            for pos, i in enumerate(order):
                R[i, pos] += pr / len(perms)
    return R


def _random_P(rng, n, m, degenerate=True):
    P = rng.dirichlet(np.full(m, 0.6), size=n)
    if degenerate and n >= 3 and m >= 2:
        P[0] = 0.0
        P[0, rng.integers(m)] = 1.0                      # a deterministic row
        P[1] = P[2]                                      # a repeated row
        P[2, 0] = 0.0
        P[2] /= P[2].sum()
    return P


@pytest.mark.parametrize("n", range(1, 7))
@pytest.mark.parametrize("m", [1, 2, 3])
def test_dp_and_poly_match_brute_force(n, m):
    rng = np.random.default_rng(100 * n + m)
    for rep in range(2):
        P = _random_P(rng, n, m, degenerate=bool(rep))
        want = brute_marginals(P)
        for method in ("dp", "poly", "auto"):
            got = ua_marginals(P, method=method)
            np.testing.assert_allclose(got, want, atol=1e-12, err_msg=method)


@pytest.mark.parametrize("n,m", [(2, 2), (3, 2), (3, 3), (4, 2), (4, 3)])
def test_brute_force_formula_matches_tiebreak_enumeration(n, m):
    rng = np.random.default_rng(7 * n + m)
    P = _random_P(rng, n, m)
    np.testing.assert_allclose(ua_marginals(P, "dp"), brute_marginals_perm(P), atol=1e-12)


def test_n2_hand_computed():
    # p1 = Pr[label 1 (best)] = x, p2 = y: individual 1 is on top if it alone is good,
    # or with probability 1/2 when both labels are equal.
    x, y = 0.7, 0.4
    top = x * (1 - y) + 0.5 * (x * y + (1 - x) * (1 - y))
    want = np.array([[top, 1 - top], [1 - top, top]])
    P = np.array([[1 - x, x], [1 - y, y]])
    for method in ("dp", "poly"):
        np.testing.assert_allclose(ua_marginals(P, method), want, atol=1e-14)
    assert top == pytest.approx(0.65)  # 0.7·0.6 + (0.28 + 0.18)/2


@pytest.mark.parametrize("n", [1, 2, 5, 17, 40])
def test_identical_rows_give_uniform(n):
    P = np.tile([0.1, 0.3, 0.6], (n, 1))
    for method in ("dp", "poly"):
        np.testing.assert_allclose(ua_marginals(P, method), np.full((n, n), 1.0 / n), atol=1e-12)


@pytest.mark.parametrize("n", [2, 3, 6, 25])
def test_prop13_anti_diagonal_gives_identity(n):
    # Seed 002, Prop 13: P = row-reversed identity (individual i surely has label n-i,
    # i.e. the i-th best label) → individual i deterministically at position i.
    P = np.fliplr(np.eye(n))
    for method in ("dp", "poly"):
        np.testing.assert_allclose(ua_marginals(P, method), np.eye(n), atol=1e-12)
    rng = np.random.default_rng(0)
    assert (ua_sample(P, rng, size=50) == np.arange(n)).all()


def _ratio(P, Q):
    return np.abs(ua_marginals(P) - ua_marginals(Q)).max() / np.abs(P - Q).sum()


@pytest.mark.parametrize("n", [2, 3, 5, 10, 50])
def test_prop14_instance_ratio(n):
    # Seed 002, Prop 14 (m = 2): individual 1 predicted (1/2, 1/2) under P and surely
    # good under P'; everybody else surely good. Under P individual 1 is last with
    # probability 1/2 + 1/(2n), under P' with 1/n; ‖P − P'‖₁ = 1. Ratio (n−1)/(2n) → 1/2.
    P = np.tile([0.0, 1.0], (n, 1))
    Q = P.copy()
    P[0] = [0.5, 0.5]
    R = ua_marginals(P)
    assert R[0, n - 1] == pytest.approx(0.5 + 0.5 / n, abs=1e-12)
    assert _ratio(P, Q) == pytest.approx((n - 1) / (2 * n), abs=1e-12)
    # Embedded with m = 3 (Prop 13's embedding), moving individual 1 from the worst to
    # the best label with everybody else in the middle gives ratio exactly 1/2.
    P3 = np.tile([0.0, 1.0, 0.0], (n, 1))
    Q3 = P3.copy()
    P3[0] = [1.0, 0.0, 0.0]
    Q3[0] = [0.0, 0.0, 1.0]
    assert _ratio(P3, Q3) == pytest.approx(0.5, abs=1e-12)


def test_theorem11_one_stability_on_random_pairs():
    # Seed 002, Theorem 11: ‖R(P) − R(P')‖_∞ ≤ ‖P − P'‖₁. Check on random pairs, large
    # and tiny perturbations; none should exceed 1 (and in practice none exceeds 1/2).
    rng = np.random.default_rng(11)
    worst = 0.0
    for _ in range(200):
        n, m = int(rng.integers(2, 8)), int(rng.integers(2, 4))
        P = rng.dirichlet(np.full(m, 0.5), size=n)
        if rng.random() < 0.5:
            Q = rng.dirichlet(np.full(m, 0.5), size=n)
        else:
            Q = np.abs(P + rng.normal(0, 1e-3, P.shape))
            Q /= Q.sum(1, keepdims=True)
        worst = max(worst, _ratio(P, Q))
    assert 0.05 < worst <= 1.0
    assert worst <= 0.5 + 1e-9


def test_poly_matches_dp_at_moderate_n():
    rng = np.random.default_rng(3)
    for n, m in [(20, 2), (31, 3), (40, 4)]:
        P = _random_P(rng, n, m)
        A, B = ua_marginals(P, "dp"), ua_marginals(P, "poly")
        np.testing.assert_allclose(A, B, atol=1e-11)
        np.testing.assert_allclose(A.sum(0), 1, atol=1e-10)
        np.testing.assert_allclose(A.sum(1), 1, atol=1e-10)


def test_doubly_stochastic_large_n():
    rng = np.random.default_rng(4)
    P = rng.dirichlet(np.ones(3), size=150)
    R = ua_marginals(P)
    assert R.min() >= 0
    np.testing.assert_allclose(R.sum(0), 1, atol=1e-9)
    np.testing.assert_allclose(R.sum(1), 1, atol=1e-9)


def test_sampler_matches_exact_within_simultaneous_intervals():
    rng = np.random.default_rng(5)
    for trial in range(4):
        n, m = 6, 3
        P = _random_P(rng, n, m)
        R = ua_marginals(P)
        draws = ua_sample(P, rng, size=20000)
        assert draws.shape == (20000, n)
        assert (np.sort(draws, axis=1) == np.arange(n)).all()
        C = position_counts(draws, n)
        lo, hi, _ = simultaneous_proportion_ci(C.ravel(), 20000, confidence=0.999)
        assert ((lo <= R.ravel()) & (R.ravel() <= hi)).all()
    one = ua_sample(P, np.random.default_rng(0))
    assert one.shape == (n,)


def test_sampler_is_seeded():
    P = np.random.default_rng(6).dirichlet(np.ones(2), size=9)
    a = ua_sample(P, np.random.default_rng(42), size=10)
    b = ua_sample(P, np.random.default_rng(42), size=10)
    assert (a == b).all()


def test_position_given_label_matches_iid_matrix():
    rng = np.random.default_rng(8)
    for n in (1, 2, 5, 12):
        f = rng.dirichlet(np.ones(3))
        G = ua_position_given_label(f, n)
        assert G.shape == (3, n)
        np.testing.assert_allclose(G.sum(1), 1, atol=1e-12)
        for ell in range(3):
            P = np.tile(f, (n, 1))
            P[0] = np.eye(3)[ell]
            np.testing.assert_allclose(G[ell], ua_marginals(P)[0], atol=1e-12)
        np.testing.assert_allclose(ua_marginals_iid(f, n), np.full(n, 1.0 / n), atol=1e-12)
        w = rng.dirichlet(np.ones(3))
        P = np.tile(f, (n, 1))
        P[0] = w
        np.testing.assert_allclose(ua_marginals_iid(f, n, weights=w), ua_marginals(P)[0], atol=1e-12)


def test_position_given_label_zero_frequency_label():
    # label 1 never occurs among the others: a label-1 individual sits right below all
    # label-2 others; binomial positions.
    f = np.array([0.5, 0.0, 0.5])
    G = ua_position_given_label(f, 4)
    from scipy.stats import binom
    np.testing.assert_allclose(G[1], binom.pmf(np.arange(4), 3, 0.5), atol=1e-12)


def test_validation():
    with pytest.raises(ValueError):
        validate_predictions([[0.5, 0.6]])
    with pytest.raises(ValueError):
        ua_marginals([[0.5, 0.5]], method="nope")
    np.testing.assert_allclose(validate_predictions([0.2, 0.9]), [[0.8, 0.2], [0.1, 0.9]])
