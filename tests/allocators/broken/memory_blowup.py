"""Broken on purpose: allocates memory without end (400 MB at a time)."""
import numpy as np
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    hoard = []
    while True:
        hoard.append(np.empty(50 * 2**20))
