"""Broken on purpose: the same index twice."""
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    if k < 2:
        return [0, 0]
    picks = rng.choice(len(scores), size=k, replace=False)
    picks[-1] = picks[0]
    return picks
