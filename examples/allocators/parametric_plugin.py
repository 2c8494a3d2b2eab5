"""The parametric plug-in baseline of Kearns et al., §7.

Estimate each population's mean from the raw scores (the sample mean, the maximum
likelihood estimate under N(μ_j, 1)), then select the k candidates with the highest
plug-in CDF value Φ(x − μ̂_j). Deterministic (ties have probability 0), so on any pool
where its choice is not the true top k the unfairness ratio is unbounded (§7:
"approximately 53% of trials"; ours 0.546 ± 0.004 over 20,000 pools of the paper's setup). When a population is not normal — §7's
``misspecified`` setup, population 2 uniform over a wide range — it picks almost only
that population. The rng is accepted and ignored (the output does not depend on it).
"""
import numpy as np
from scipy.stats import norm

import fairaudit as fa
from fairaudit.populations import population_codes


def plugin_cdf(scores, pop):
    x = np.asarray(scores, dtype=float)
    mu = np.zeros(x.shape[0])
    for j in np.unique(pop):
        sl = pop == j
        mu[sl] = x[sl].mean()
    return norm.cdf(x - mu)


@fa.selector
def allocate(scores, k, groups, rng, size=None):
    pop = population_codes(groups, n=len(scores))
    f = plugin_cdf(scores, pop)
    out = np.argsort(-f, kind="stable")[:k]
    return out if size is None else np.broadcast_to(out, (size, k)).copy()
