"""Broken on purpose: location N, which does not exist."""
import numpy as np
import fairaudit as fa


@fa.assigner
def assign(scores, groups, capacities, rng):
    T, N = np.shape(scores)
    return np.full(T, N)
