"""The README tour's allocator: 10 people chosen at random with chances proportional to
their scores (a weighted lottery). A negative score counts as 0, and every weight gets a
tiny floor, so all-zero scores (Hypothesis tries them at once) or fewer than k positive
scores still give a valid lottery instead of a ValueError from numpy."""
import numpy as np

import fairaudit as fa


@fa.selector(k=10)
def allocate(scores, k, rng):                       # returns the k chosen indices
    w = np.clip(np.asarray(scores, dtype=float), 0, None) + 1e-9
    return rng.choice(len(w), size=k, replace=False, p=w / w.sum())
