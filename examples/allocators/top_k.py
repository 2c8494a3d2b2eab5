"""Deterministic top-k: select the k highest claims (ties broken by index).

Violates Broome-Fairness (BF.2: positive claims below the cut are never selected) and
anonymity (equal claims are separated by position in the list, Devic et al. Prop 7).
"""
import numpy as np
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    # stable sort on -score: among equal scores the lower index wins
    return np.argsort(-np.asarray(scores), kind="stable")[:k]
