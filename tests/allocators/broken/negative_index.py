"""Broken on purpose: a negative index."""
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    picks = rng.choice(len(scores), size=k, replace=False)
    picks[0] = -1
    return picks
