"""GREEDY (Kearns et al., §2.2): select the k candidates with the highest *empirical* CDF
value within their own population, ties broken uniformly at random.

The population of each candidate comes from the ``population`` column of ``groups``
(the first column when there is no such column; one population without groups).
Oblivious (Def 2.6) and low-regret, but deterministic up to ties: whenever its choice
is not the true top k, a better candidate has chance 0 while a worse one has chance 1,
so ε̂ = ∞. §7 says this happens in "approximately 87% of trials" at m = 100 + 50,
k = 15; for this GREEDY it happens exactly when the true top 15 do not hold exactly 10
of population A, probability 1 − hypergeom(150, 100, 15).pmf(10) = 0.774 (0.780 over
20,000 simulated pools). 87% is the same formula's value at m = 300 + 150 (0.868).
Vectorised.
"""
import numpy as np

import fairaudit as fa
from fairaudit.populations import empirical_cdf, population_codes


@fa.selector
def allocate(scores, k, groups, rng, size=None):
    pop = population_codes(groups, n=len(scores))
    f = empirical_cdf(scores, pop)
    # Dense integer rank of the empirical CDF value; adding U[0,1) breaks ties uniformly
    # without ever swapping two different values.
    _, dense = np.unique(f, return_inverse=True)
    B = 1 if size is None else size
    keys = dense[None, :] + rng.random((B, len(f)))
    part = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(keys, part, axis=1), axis=1)
    out = np.take_along_axis(part, order, axis=1)
    return out[0] if size is None else out
