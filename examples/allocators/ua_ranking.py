"""The uncertainty-aware (UA) ranking of Devic et al. (Devic et al., Def 8): draw each
individual's label from its predicted distribution independently, sort by label (the
last prediction column is the best label), break ties uniformly at random.

Anonymous and 1-stable (Theorem 11): ``‖R(P) − R(P′)‖_∞ ≤ ‖P − P′‖₁``; its exact
position marginals are ``fairaudit.ua_marginals(P)``. Vectorised (accepts ``size``).
A 1-D ``predictions`` vector is read as the probability of the best of two labels.
"""
import fairaudit as fa


@fa.ranker
def rank(predictions, rng, size=None):
    return fa.ua_sample(predictions, rng, size=size)
