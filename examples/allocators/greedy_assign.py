"""Greedy assignment: each arrival goes to its highest-scoring location that still has
room (ties to the lowest index); unassigned (−1) only when every place is taken.

Deterministic (ignores ``rng``) and non-anticipating. It maximises nothing globally and
protects no group: on Freund et al.'s Antagonistic world it gives group b about 0.3 where
the MaxMin rule asks 0.4, while on the Collaborative world every group gets its best
location. Vectorised (``size``): the path is computed once and repeated.

``capacities``: integer place counts, or fractions ρ_i ≤ 1 meaning ``ρ_i T`` places.
"""
import numpy as np

import fairaudit as fa
from fairaudit.checks.min_requirement.assignment import place_counts


def greedy_path(scores, capacities):
    w = np.asarray(scores, dtype=float)
    T, N = w.shape
    left = np.floor(place_counts(capacities, T) + 1e-9).astype(np.int64)
    out = np.full(T, -1, dtype=np.int64)
    for t in range(T):
        v = np.where(left > 0, w[t], -np.inf)
        i = int(np.argmax(v))
        if np.isfinite(v[i]):
            out[t] = i
            left[i] -= 1
    return out


@fa.assigner
def assign(scores, groups, capacities, rng, size=None):
    path = greedy_path(scores, capacities)
    return path if size is None else np.tile(path, (int(size), 1))
