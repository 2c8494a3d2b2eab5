"""Broome lottery with a small bias for whoever is listed first (a *non-anonymous* allocator).

The Broome-Fairness lottery of Jain et al. (Example 4.3: each round picks one of the
remaining individuals with probability proportional to the claim), except that the
individual at index 0 has its weight multiplied by ``1 + BIAS``. ``BIAS = 0.5`` by
default: with two equal claims and k = 1 the first-listed person is selected with
chance 1.5/2.5 = 0.6 instead of 0.5, with ten equal claims 1.5/10.5 ≈ 0.143 instead of
0.1. It is randomised (passes ``determinism``) and satisfies Broome's monotonicity
within the list, but the outcome depends on where a person appears in the list, so
``anonymity`` fails: the Hypothesis search shrinks the violation to two individuals
with equal claims. ``allocate_with_bias`` exposes the bias for validation studies.
Vectorised (accepts ``size``); picks are returned in pick order.
"""
import numpy as np
import fairaudit as fa

BIAS = 0.5


def allocate_with_bias(scores, k, rng, size=None, bias=BIAS):
    c = np.asarray(scores, dtype=float).copy()
    c[0] *= 1.0 + bias
    B = 1 if size is None else size
    # Gumbel-top-k == successive weighted sampling without replacement (keeps pick order).
    keys = np.log(c)[None, :] + rng.gumbel(size=(B, len(c)))
    part = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(keys, part, axis=1), axis=1)
    out = np.take_along_axis(part, order, axis=1)
    return out[0] if size is None else out


@fa.selector
def allocate(scores, k, rng, size=None):
    return allocate_with_bias(scores, k, rng, size=size, bias=BIAS)
