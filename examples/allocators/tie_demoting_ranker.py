"""A ranker that sorts by expected merit and, between people of equal merit, always puts
group B below group A: each member of B sits one position lower than the merit it shares
with its A twin warrants (issue 28's violator).

On ``examples/data/twin_pool.csv`` (pairs with identical predictions, one A and one B)
it gets B about γ of A's exposure per unit of relevance under the geometric attention
model with continuation γ, so ``exposure`` fails (worst case over the attention family);
every prefix still holds about half B, so ``ranked_representation`` passes.
Deterministic; vectorised (accepts ``size``).
"""
import numpy as np

import fairaudit as fa


@fa.ranker
def rank(predictions, groups, rng, size=None):
    P = np.asarray(predictions, float)
    merit = P @ np.arange(P.shape[1])                      # expected grade
    in_b = (np.asarray(groups["group"]) == "B").astype(int)
    order = np.lexsort((in_b, -merit))                     # merit first, then A before B
    return order if size is None else np.tile(order, (int(size), 1))
