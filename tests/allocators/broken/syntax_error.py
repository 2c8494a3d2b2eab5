"""Broken on purpose: not valid Python."""
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng)
    return rng.choice(len(scores), size=k, replace=False)
