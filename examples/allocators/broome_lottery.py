"""The Broome-Fairness lottery (Jain et al., Example 4.3): k rounds, each picking one of the
remaining individuals with probability proportional to its claim, w_{i,t} = c_i / C_t.

Satisfies Broome-Fairness (BF.1 and BF.2) and anonymity; vectorised (accepts ``size``).
Picks are returned in pick order.
"""
import numpy as np
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng, size=None):
    c = np.asarray(scores, dtype=float)
    if size is None:
        return rng.choice(len(c), size=k, replace=False, p=c / c.sum())
    # Successive weighted sampling without replacement == sorting Gumbel-perturbed log
    # weights (Efraimidis–Spirakis / Gumbel-top-k), which keeps pick order.
    with np.errstate(divide="ignore"):
        logw = np.log(c)
    keys = logw[None, :] + rng.gumbel(size=(size, len(c)))
    part = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(keys, part, axis=1), axis=1)
    return np.take_along_axis(part, order, axis=1)
