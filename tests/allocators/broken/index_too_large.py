"""Broken on purpose: index n (one past the end)."""
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    picks = rng.choice(len(scores), size=k, replace=False)
    picks[-1] = len(scores)
    return picks
