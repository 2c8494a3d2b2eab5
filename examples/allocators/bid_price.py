"""Bid-price control (Freund et al. §4's BP, the classical rule of network revenue
management): arrival t goes to the free location maximising ``w_{t,i} − λ_i``, where
``λ_i`` is the dual price of location i's capacity in the fluid LP
``max Σ w·x`` over the assignment polytope with capacities ``ρ_i s``.

The seed assumes the arrival distribution is known. This assigner does not know it:
it estimates the prices from the arrivals seen so far, re-solving the fluid LP on the
first s arrivals (capacities scaled to ``c_i s / T``) at s = 2N+20, then every doubling
of s; before the first solve it is greedy. So it is non-anticipating: the decision
for arrival t uses only arrivals 1..t. Deterministic; ties go to the location with the
higher score, then to the location with the larger share of its capacity left. When
places are scarce (Σ c_i < T; selection is N = 1 with capacity k) leaving an arrival
unplaced is an outside option worth 0: it is taken when ``max_i w_{t,i} − λ_i < 0``
(the classical accept-if-above-the-bid-price rule). Vectorised (``size``): one path, repeated.
"""
import numpy as np

import fairaudit as fa
from fairaudit.checks.min_requirement.assignment import place_counts, solve_assignment


def checkpoints(T, N):
    s, out = 2 * N + 20, []
    while s < T:
        out.append(s)
        s *= 2
    return out


def choose(values, left, caps, raw=None):
    """Free location with the largest value; near-ties to the higher raw score, then to
    the larger share of capacity left."""
    v = np.where(left > 0, values, -np.inf)
    best = v.max()
    if not np.isfinite(best):
        return -1
    tie = np.flatnonzero(v >= best - 1e-9)
    if tie.size == 1:
        return int(tie[0])
    if raw is not None:
        r = raw[tie]
        tie = tie[r >= r.max() - 1e-12]
        if tie.size == 1:
            return int(tie[0])
    share = left[tie] / np.maximum(caps[tie], 1e-12)
    return int(tie[np.argmax(share)])


def bid_price_path(scores, capacities):
    w = np.asarray(scores, dtype=float)
    T, N = w.shape
    caps = place_counts(capacities, T)
    left = np.floor(caps + 1e-9).astype(np.int64)
    lam = np.zeros(N)
    cps = set(checkpoints(T, N))
    scarce = caps.sum() < T
    out = np.full(T, -1, dtype=np.int64)
    for t in range(T):
        if t in cps:
            r = solve_assignment(w[:t], caps * t / T)
            if r.status == 0:
                lam = r.lam
        i = choose(w[t] - lam, left, caps, w[t])
        # Outside option worth 0 (SPEC §0): when places are scarce (Σc < T: selection is
        # N = 1 with capacity k) an arrival whose best bid-price value is negative is not
        # placed. With Σc ≥ T (the refugee setting) everyone is placed, as before.
        if i >= 0 and scarce and w[t, i] - lam[i] < 0:
            i = -1
        if i >= 0:
            out[t] = i
            left[i] -= 1
    return out


@fa.assigner
def assign(scores, groups, capacities, rng, size=None):
    path = bid_price_path(scores, capacities)
    return path if size is None else np.tile(path, (int(size), 1))
