"""Broken on purpose: samples with replacement, so indices repeat."""
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    return rng.choice(len(scores), size=k, replace=True)
