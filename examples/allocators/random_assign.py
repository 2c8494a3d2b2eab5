"""Random assignment in proportion to capacity (Freund et al.'s status-quo proxy).

Every arrival gets a uniformly random free place: the T arrivals take the first T
places of a random permutation of all ``Σ c_i`` places, so location i receives each
arrival with probability ``c_i / Σ c_j`` (the Random rule's ``x̃``) and capacities are
never exceeded. With fewer places than arrivals (Σ c_i < T, e.g. selection as N = 1 with
capacity k) the missing places are an outside option (−1): each arrival gets location i
with probability ``c_i / T``, a lottery, not first come first served. Non-anticipating (the places are drawn without looking at arrivals),
randomised, vectorised (``size``).

``capacities``: integer place counts (what fairaudit passes), or fractions ρ_i ≤ 1
meaning ``ρ_i T`` places (see ``fairaudit.checks.min_requirement.assignment.place_counts``).
"""
import numpy as np

import fairaudit as fa
from fairaudit.checks.min_requirement.assignment import place_counts


@fa.assigner
def assign(scores, groups, capacities, rng, size=None):
    T = np.shape(scores)[0]
    caps = np.floor(place_counts(capacities, T) + 1e-9).astype(np.int64)
    slots = np.repeat(np.arange(len(caps)), caps)
    if len(slots) < T:
        # Scarce places (Σc < T; selection is N = 1 with capacity k): the missing places are
        # the outside option (−1), so every arrival is placed with the same chance Σc/T
        # instead of the first Σc arrivals taking every place.
        slots = np.concatenate([slots, np.full(T - len(slots), -1)])
    B = 1 if size is None else int(size)
    out = np.full((B, T), -1, dtype=np.int64)
    m = min(T, len(slots))
    perm = np.argsort(rng.random((B, len(slots))), axis=1)[:, :m]
    out[:, :m] = slots[perm]
    return out[0] if size is None else out
