"""Broken on purpose: fractional indices."""
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    return rng.choice(len(scores), size=k, replace=False) + 0.5
