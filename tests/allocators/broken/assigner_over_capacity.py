"""Broken on purpose: sends every arrival to location 0, whatever its capacity."""
import numpy as np
import fairaudit as fa


@fa.assigner
def assign(scores, groups, capacities, rng):
    return np.zeros(np.shape(scores)[0], dtype=int)
