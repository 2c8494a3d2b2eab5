"""Broken on purpose: returns k-1 indices."""
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    return rng.choice(len(scores), size=k - 1, replace=False)
