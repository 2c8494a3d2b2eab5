"""The equal-utility lottery (Jain et al. §4.2): the exact uniform sampler of the
equal-utility allocations R_0(o_0).

The baseline o_0 is the top k by ``score``; it selects k' qualified people (``labels``,
1 = qualified). Each draw picks uniformly among *every* k-subset with exactly k'
qualified people: the k' qualified uniformly among all qualified, the k − k' others
uniformly among the unqualified. Same utility as the model, no one systemically
rejected, the least homogenised outcomes possible at that utility — it passes the
``multiplicity`` check by construction (its reference *is* this lottery).
"""
import numpy as np

import fairaudit as fa
from fairaudit.checks.multiplicity.equal_utility import sample_band


@fa.selector(k=250)
def lottery(scores, labels, k, rng, size):
    qualified = np.asarray(labels) == 1
    baseline = np.argsort(-np.asarray(scores), kind="stable")[:k]
    k_q = int(qualified[baseline].sum())
    return sample_band(rng, qualified, k, k_q, k_q, size=size)
