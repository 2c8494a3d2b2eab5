"""UA mixed with the utility-maximising ranking (Devic et al., Prop 21): with probability
PHI rank by the uncertainty-aware ranking (``fairaudit.ua_sample``), otherwise sort
deterministically by expected utility ``Σ_ℓ P[i,ℓ]·ℓ`` (labels 0..m−1, the last column
best; equal utilities ordered by index — the ranking of Prop 18).

Prop 21: (PHI, 1−PHI)-approximately stable, ``‖R(P) − R(P′)‖_∞ ≤ PHI‖P − P′‖₁ + 1 − PHI``,
and not 1-stable when PHI < 1 (the deterministic part jumps). PHI defaults to 0.5;
override with the environment variable ``FAIRAUDIT_UA_PHI`` or build a ranker with
``make_ranker(phi)``. Vectorised (accepts ``size``): each draw flips its own coin.
"""
import os

import numpy as np
import fairaudit as fa

PHI = float(os.environ.get("FAIRAUDIT_UA_PHI", "0.5"))


def make_ranker(phi: float = PHI):
    if not 0.0 <= phi <= 1.0:
        raise ValueError(f"phi must be in [0, 1], got {phi}")

    @fa.ranker
    def rank(predictions, rng, size=None):
        P = fa.ua.validate_predictions(predictions)
        n, m = P.shape
        B = 1 if size is None else int(size)
        coin = rng.random(B) < phi
        ua = fa.ua_sample(P, rng, size=B)
        util = P @ np.arange(m)
        greedy = np.argsort(-util, kind="stable")
        out = np.where(coin[:, None], ua, greedy[None, :])
        return out[0] if size is None else out
    return rank


rank = make_ranker(PHI)
