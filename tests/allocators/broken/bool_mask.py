"""Broken on purpose: a boolean mask that selects everyone."""
import numpy as np
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    return np.ones(len(scores), dtype=bool)
