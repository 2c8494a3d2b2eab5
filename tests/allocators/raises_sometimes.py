"""Broken on purpose: raises when the highest claim is above 0.95."""
import numpy as np
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    if np.max(scores) > 0.95:
        raise ValueError("cannot handle claims above 0.95")
    return rng.choice(len(scores), size=k, replace=False)
