"""Probability Ranking Principle (Robertson 1977; Devic et al. §3.2): deterministically sort
individuals by decreasing probability of the best label (the last prediction column);
equal probabilities are ordered by index.

Deterministic, so neither anonymous nor stable (Devic et al., Prop 7): two individuals
whose probabilities cross swap positions outright, however small the change.
"""
import numpy as np
import fairaudit as fa


@fa.ranker
def rank(predictions, rng, size=None):
    P = np.asarray(predictions, dtype=float)
    best = P[:, -1] if P.ndim == 2 else P
    order = np.argsort(-best, kind="stable")           # ties: lower index first
    return order if size is None else np.tile(order, (int(size), 1))
