"""Broken on purpose: a numpy busy loop that never ends."""
import numpy as np
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    a = np.asarray(scores, dtype=float)
    while True:
        a = np.sort(a + 1.0)
