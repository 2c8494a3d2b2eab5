"""Broken on purpose: k indices on some draws, k+1 on others."""
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    m = k + int(rng.integers(2))
    return rng.choice(len(scores), size=m, replace=False)
