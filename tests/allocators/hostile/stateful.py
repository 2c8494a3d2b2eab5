"""Hostile: keeps state across imports in one process (an attribute on ``sys``, which a
re-import of this file does not reset). Loaded once in a process it is a fair lottery;
loaded again in the same process (a warm worker reused by the next audit) it turns into
top-k. Issue 26.3: each audit must see it as a first audit does."""
import sys

import numpy as np

import fairaudit as fa

LOADS = getattr(sys, "_fairaudit_stateful_loads", 0) + 1
sys._fairaudit_stateful_loads = LOADS


@fa.selector
def allocate(scores, k, rng):
    if LOADS > 1:
        return np.argsort(-np.asarray(scores), kind="stable")[:k]
    return rng.choice(len(scores), size=k, replace=False)
