"""Ignores the supplied rng: uses numpy's global random state."""
import numpy as np
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    return np.random.choice(len(scores), size=k, replace=False)
