"""FA*IR's ranked group fairness test (Zehlike et al., CIKM 2017), with the multiple-testing
adjustment computed exactly.

A ranking passes at prefix length i when its protected count in the top i is at least
``m(i) = F⁻¹(α_c; i, p)``, the α_c-quantile of Binomial(i, p) (the smallest m with
``F(m; i, p) ≥ α_c``; fairsearchcore's ``MTableGenerator.m`` is the same formula). It
passes the test when it passes at every prefix i ≤ k. Testing k prefixes at α_c each
would reject a fair ranking — protected memberships independent Bernoulli(p) — far more
often than α, so α_c is adjusted: the chance that such a ranking fails *some* prefix is
computed exactly by dynamic programming over prefixes (the distribution of the protected
count among the rankings that have not failed yet, O(k²)), and α_c is the largest value
whose exact failure probability does not exceed α. The m-table is a step function of α_c
that changes only at the binomial CDF values F(m; i, p), so the search is a bisection over
those break points and the result is exact (the failure probability itself is reported:
a step function cannot always reach α exactly, so it is the largest attainable ≤ α).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats


@lru_cache(maxsize=64)
def _cdfs(k: int, p: float) -> tuple:
    """F(0..i; i, p) for i = 1..k."""
    return tuple(stats.binom.cdf(np.arange(i + 1), i, p) for i in range(1, k + 1))


def mtable(k: int, p: float, alpha_c: float) -> np.ndarray:
    """m(1..k): the least protected count each prefix needs, at per-prefix level α_c."""
    return np.array([int(np.searchsorted(c, alpha_c, side="left")) for c in _cdfs(int(k), float(p))], dtype=np.int64)


def fail_probability(m: np.ndarray, p: float) -> float:
    """The exact chance that a ranking of independent Bernoulli(p) memberships has fewer
    than m(i) protected in the top i for some i (DP over prefixes)."""
    m = np.asarray(m, dtype=np.int64)
    alive = np.array([1.0])                # P(count = c and no failure so far)
    failed = 0.0
    for i, need in enumerate(m, start=1):
        nxt = np.zeros(i + 1)
        nxt[:-1] += alive * (1 - p)
        nxt[1:] += alive * p
        if need > 0:
            failed += float(nxt[:need].sum())
            nxt[:need] = 0.0
        alive = nxt
    return failed


@dataclass(frozen=True)
class FairTest:
    k: int
    p: float
    alpha: float               # the family's level
    alpha_c: float             # adjusted per-prefix level
    m: tuple                   # m(1..k)
    fail_probability: float    # exact, ≤ alpha


@lru_cache(maxsize=256)
def adjusted_test(k: int, p: float, alpha: float) -> FairTest:
    """The test whose exact failure probability on a fair Bernoulli(p) ranking is the
    largest attainable not above ``alpha`` (see the module docstring)."""
    k, p, alpha = int(k), float(p), float(alpha)
    if not (0 < p < 1):
        m = np.zeros(k, dtype=np.int64) if p <= 0 else np.arange(1, k + 1)
        return FairTest(k, p, alpha, alpha, tuple(int(x) for x in m), fail_probability(m, p) if p >= 1 else 0.0)
    points = np.unique(np.concatenate(_cdfs(k, p)))
    points = points[(points > 0) & (points <= 1)]
    lo, hi = -1, len(points) - 1           # invariant: points[lo] feasible (−1: below every point), points[hi+1] not
    if fail_probability(mtable(k, p, points[hi]), p) <= alpha:
        lo = hi
    else:
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if fail_probability(mtable(k, p, points[mid]), p) <= alpha:
                lo = mid
            else:
                hi = mid
    a_c = float(points[lo]) if lo >= 0 else 0.0
    m = mtable(k, p, a_c) if lo >= 0 else np.zeros(k, dtype=np.int64)
    return FairTest(k, p, alpha, a_c, tuple(int(x) for x in m), fail_probability(m, p))


def first_failing_prefix(protected: np.ndarray, m, sizes=None) -> np.ndarray:
    """(B,) the first prefix length i (1-based) at which each ranking's protected count
    falls below m(i), 0 when none does. ``protected`` (B, L) booleans in position order,
    L ≥ len(m) or the ranking's size; ``sizes`` (B,) rankings shorter than k are tested on
    the prefixes they have."""
    m = np.asarray(m, dtype=np.int64)
    k = min(len(m), protected.shape[1])
    cnt = np.cumsum(protected[:, :k], axis=1)
    bad = cnt < m[None, :k]
    if sizes is not None:
        bad &= np.arange(1, k + 1)[None, :] <= np.asarray(sizes)[:, None]
    first = np.argmax(bad, axis=1) + 1
    return np.where(bad.any(axis=1), first, 0)


def brute_force_fail_probability(m, p: float) -> float:
    """The same chance by enumerating all 2^k membership sequences (tests, k ≤ 16)."""
    m = np.asarray(m, dtype=np.int64)
    k = len(m)
    seq = ((np.arange(2 ** k)[:, None] >> np.arange(k)[None, :]) & 1).astype(bool)
    w = np.prod(np.where(seq, p, 1 - p), axis=1)
    return float(w[first_failing_prefix(seq, m) > 0].sum())


def uniform_permutation_fail_probability(m_a, m_b, n_a: int, n_b: int) -> float:
    """The exact chance that a uniformly random permutation of ``n_a`` members of group a
    and ``n_b`` of group b fails a's test (m-table ``m_a``) or b's (``m_b``) at some prefix:
    DP over prefixes on a's count (sampling without replacement; b's count is the rest).
    The exact failing share of a fair random ranker of a finite pool (validation oracle)."""
    k = min(len(m_a), len(m_b), n_a + n_b)
    alive = {0: 1.0}
    failed = 0.0
    for i in range(1, k + 1):
        nxt: dict[int, float] = {}
        left = n_a + n_b - (i - 1)
        for a, pr in alive.items():
            pa = (n_a - a) / left
            for a2, q in ((a + 1, pa), (a, 1 - pa)):
                if q > 0:
                    nxt[a2] = nxt.get(a2, 0.0) + pr * q
        alive = {}
        for a, pr in nxt.items():
            if a < m_a[i - 1] or (i - a) < m_b[i - 1]:
                failed += pr
            else:
                alive[a] = pr
    return failed
