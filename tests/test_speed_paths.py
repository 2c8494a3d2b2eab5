"""The faster paths of issue 30 compute the same numbers as the straightforward ones they
replace: UA marginals with the quadrature weights inside the recursion, the confidence
bounds solved once per distinct count, group intersections from integer codes, Rosén's λ
by Newton, and min_requirement's cached LP benchmarks."""
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from fairaudit.checks.broome import log as broome_log
from fairaudit.checks.min_requirement import assignment as A
from fairaudit.checks.min_requirement import benchmark_cache as BC
from fairaudit.groups import categories
from fairaudit.stats import beta_binomial_cs, proportion_ci
from fairaudit.ua import _gauss_legendre01, _leave_one_out, _poisson_binomial, ua_marginals


def _loo_reference(Q, pi):
    """The (K, u, n) leave-one-out pmfs, one (node, individual) pair at a time."""
    K, n1 = Q.shape
    out = np.zeros((K, pi.shape[1], n1 - 1))
    for k in range(K):
        for u in range(pi.shape[1]):
            p, t = pi[k, u], np.zeros(n1 - 1)
            if p <= 0.5:
                prev = 0.0
                for d in range(n1 - 1):
                    prev = t[d] = (Q[k, d] - p * prev) / (1 - p)
            else:
                prev = 0.0
                for d in range(n1 - 1, 0, -1):
                    prev = t[d - 1] = (Q[k, d] - (1 - p) * prev) / p
            out[k, u] = t
    return out


@pytest.mark.parametrize("ell", [0, 1, 2])
def test_weighted_leave_one_out_equals_the_full_array_summed(ell):
    rng = np.random.default_rng(3)
    P = rng.dirichlet(np.full(3, 0.6), size=23)
    t, w = _gauss_legendre01(12)
    cum = np.cumsum(P, axis=1)
    pi = np.clip((1 - cum[:, ell])[None] + P[:, ell][None] * (1 - t[:, None]), 0, 1)
    Q = _poisson_binomial(pi)
    assert ((pi <= 0.5).any() and (pi > 0.5).any())          # both directions are exercised
    got = _leave_one_out(Q, pi, np.asarray(w))
    want = np.einsum("k,kup->up", w, _loo_reference(Q, pi))
    assert np.abs(got - want).max() < 1e-14


def test_poisson_binomial_in_place_matches_a_convolution():
    rng = np.random.default_rng(1)
    pi = rng.random((4, 9))
    Q = _poisson_binomial(pi)
    for k in range(4):
        want = np.array([1.0])
        for p in pi[k]:
            want = np.convolve(want, [1 - p, p])
        assert np.abs(Q[k] - want).max() < 1e-15


def test_ua_marginals_rows_and_columns_sum_to_one_at_a_larger_n():
    P = np.random.default_rng(5).dirichlet(np.ones(3), size=150)
    R = ua_marginals(P)
    assert np.abs(R.sum(axis=0) - 1).max() < 1e-12 and np.abs(R.sum(axis=1) - 1).max() < 1e-12


def test_bounds_solved_once_per_distinct_count_equal_each_entry_on_its_own():
    rng = np.random.default_rng(0)
    k = rng.binomial(700, rng.random(3000) ** 4).astype(float)
    lo, hi = beta_binomial_cs(k, 700, 0.999)
    for j in rng.choice(len(k), 40, replace=False):
        assert (lo[j], hi[j]) == beta_binomial_cs(float(k[j]), 700, 0.999)
    C = k.reshape(60, 50)
    plo, phi = proportion_ci(C, 700, 0.99)
    assert plo.shape == C.shape
    for j in rng.choice(C.size, 40, replace=False):
        assert (plo.flat[j], phi.flat[j]) == proportion_ci(float(C.flat[j]), 700, 0.99)


def _categories_by_joining(frame, columns, depth):
    out = []
    for d in range(1, depth + 1):
        for combo in combinations(columns, d):
            keys = frame[list(combo)].astype(str)
            joined = keys.agg(" × ".join, axis=1) if d > 1 else keys[combo[0]]
            codes, uniques = pd.factorize(joined, sort=True)
            out += [(" × ".join(combo), str(v), codes == j) for j, v in enumerate(uniques)]
    return out


def test_intersections_from_codes_equal_the_joined_strings():
    rng = np.random.default_rng(2)
    n = 3000
    # "A B" sorts after "A" as a value but before it once joined ("A B × x" < "A × x")
    frame = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "race": rng.choice(["A", "A B", "Black", "Z"], n),
                          "age": rng.integers(0, 4, n)})
    got = [(c.attribute, c.value, c.mask) for c in categories(frame, ["sex", "race", "age"], depth=3)]
    want = _categories_by_joining(frame, ["sex", "race", "age"], 3)
    assert [g[:2] for g in got] == [w[:2] for w in want]
    assert all(np.array_equal(g[2], w[2]) for g, w in zip(got, want))


def _rosen_by_bisection(c, k):
    lo, hi = 0.0, 1.0
    while np.sum(-np.expm1(-hi * c)) < k:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if np.sum(-np.expm1(-mid * c)) < k else (lo, mid)
    return -np.expm1(-0.5 * (lo + hi) * c)


def test_rosen_lambda_by_newton_equals_bisection():
    rng = np.random.default_rng(4)
    for _ in range(50):
        m = int(rng.integers(3, 80))
        k = int(rng.integers(1, m))
        c = rng.lognormal(0, 2, m)
        got = broome_log.rosen_reference(c, k)
        assert abs(got.sum() - k) < 1e-9
        assert np.abs(got - _rosen_by_bisection(c, k)).max() < 1e-12
    sizes = rng.integers(2, 40, 300)
    ks = np.array([rng.integers(1, s) for s in sizes], dtype=float)
    c = rng.lognormal(0, 1, sizes.sum())
    batch = broome_log.batched_broome_reference(c, sizes, ks)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    for e in rng.choice(300, 20, replace=False):
        one = broome_log.rosen_reference(c[starts[e]:starts[e] + sizes[e]], int(ks[e]))
        assert np.abs(batch[starts[e]:starts[e] + sizes[e]] - one).max() < 1e-12


def test_cached_benchmarks_are_the_computed_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRAUDIT_CACHE_DIR", str(tmp_path))
    sc = A.scenario("iid")
    year = sc.draw(60, np.random.default_rng(0), "y")
    direct = A.benchmarks(year, "maxmin")
    first = BC.benchmarks(year, "maxmin")            # computed and written
    assert len(list(tmp_path.rglob("*.json"))) == 1
    second = BC.benchmarks(year, "maxmin")           # read back
    for b in (first, second):
        assert np.array_equal(b.m, direct.m) and (b.opt, b.opt_unc, b.feasible) == (direct.opt, direct.opt_unc,
                                                                                     direct.feasible)
        assert np.array_equal(b.sizes, direct.sizes)
    # another rule or another year is another key
    assert BC.year_key(year, "random", None) != BC.year_key(year, "maxmin", None)
    other = sc.draw(60, np.random.default_rng(1), "y")
    assert BC.year_key(other, "maxmin", None) != BC.year_key(year, "maxmin", None)
    BC.benchmarks(year, "random")
    assert len(list(tmp_path.rglob("*.json"))) == 2
    monkeypatch.setenv("FAIRAUDIT_CACHE_DIR", "off")
    assert BC.cache_dir() is None
    assert BC.benchmarks(year, "maxmin").opt == direct.opt
