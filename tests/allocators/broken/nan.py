"""Broken on purpose: NaN among the indices."""
import numpy as np
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    picks = rng.choice(len(scores), size=k, replace=False).astype(float)
    picks[0] = np.nan
    return picks
