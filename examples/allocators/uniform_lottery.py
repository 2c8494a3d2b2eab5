"""Uniform lottery: k of n chosen uniformly at random, ignoring claims.

Anonymous and exactly ex-interim fair (every candidate has chance k/n), satisfies BF.2,
but violates BF.1 (stronger claims do not get greater chances). Vectorised.
"""
import numpy as np
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng, size=None):
    n = len(scores)
    if size is None:
        return rng.choice(n, size=k, replace=False)
    return np.argsort(rng.random((size, n)), axis=1)[:, :k]
