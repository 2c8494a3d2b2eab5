"""Broken on purpose: forgets to return."""
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    rng.choice(len(scores), size=k, replace=False)
