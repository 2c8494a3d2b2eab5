"""Random assignment in proportion to capacity (seed 003's status-quo proxy).

Every arrival gets a uniformly random free place: the T arrivals take the first T
places of a random permutation of all ``Σ c_i`` places, so location i receives each
arrival with probability ``c_i / Σ c_j`` (the Random rule's ``x̃``) and capacities are
never exceeded. Non-anticipating (the places are drawn without looking at arrivals),
randomised, vectorised (``size``).

``capacities``: integer place counts (what fairaudit passes), or fractions ρ_i ≤ 1
meaning ``ρ_i T`` places (see ``fairaudit.assignment.place_counts``).
"""
import numpy as np

import fairaudit as fa
from fairaudit.assignment import place_counts


@fa.assigner
def assign(scores, groups, capacities, rng, size=None):
    T = np.shape(scores)[0]
    caps = np.floor(place_counts(capacities, T) + 1e-9).astype(np.int64)
    slots = np.repeat(np.arange(len(caps)), caps)
    B = 1 if size is None else int(size)
    out = np.full((B, T), -1, dtype=np.int64)
    m = min(T, len(slots))
    perm = np.argsort(rng.random((B, len(slots))), axis=1)[:, :m]
    out[:, :m] = slots[perm]
    return out[0] if size is None else out
