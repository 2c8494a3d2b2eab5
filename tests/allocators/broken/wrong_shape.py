"""Broken on purpose: a 2-D array of indices for one draw."""
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    return rng.choice(len(scores), size=(k, 2), replace=False)
