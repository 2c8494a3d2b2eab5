"""Broken on purpose: a ranking that repeats the top individual and drops another."""
import numpy as np
import fairaudit as fa


@fa.ranker
def rank(scores, rng):
    order = list(np.argsort(-np.asarray(scores) + rng.random(len(scores)) * 1e-9))
    order[-1] = order[0]
    return order
