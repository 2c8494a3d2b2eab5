"""Broken on purpose: changes its scores in place."""
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    scores[0] = scores[0] + 1.0
    return rng.choice(len(scores), size=k, replace=False)
