"""Partial Broome-Fairness lottery (Jain et al., Algorithm 1).

The top k − k' claims are selected deterministically; the remaining k' seats go by the
BF lottery (w ∝ c) over the next n' claims; everyone below is never selected. Defaults
k' = 0.5k and n' = k, so the randomisation rate k'/k is 0.5 and the pool share n'/n is k/n.

Fails full Broome-Fairness (BF.2 for claims outside the pool; BF.1 between the
always-selected and the pool) while satisfying it inside the pool.
"""
import math

import numpy as np
import fairaudit as fa

K_PRIME_RATE = 0.5     # k'/k
POOL_FACTOR = 1.0      # n' = POOL_FACTOR · k


@fa.selector
def allocate(scores, k, rng, size=None):
    c = np.asarray(scores, dtype=float)
    k_prime = int(math.floor(K_PRIME_RATE * k))
    k_det = k - k_prime
    n_pool = min(int(round(POOL_FACTOR * k)), len(c) - k_det)
    order = np.argsort(-c, kind="stable")
    fixed, pool = order[:k_det], order[k_det:k_det + n_pool]
    B = 1 if size is None else size
    w = np.log(c[pool])[None, :] + rng.gumbel(size=(B, len(pool)))
    picks = pool[np.argsort(-w, axis=1)[:, :k_prime]]
    out = np.concatenate([np.broadcast_to(fixed, (B, k_det)), picks], axis=1)
    return out[0] if size is None else out
