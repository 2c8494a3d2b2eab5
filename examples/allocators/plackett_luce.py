"""Plackett–Luce ranking on the expected label (a common randomised baseline; Devic et al.
§6 compares UA against it): individual i gets weight ``exp(BETA · u_i)`` with ``u_i`` the
expected label rescaled to [0, 1] (``Σ_ℓ P[i,ℓ]·ℓ/(m−1)``); positions are filled top down,
each time choosing among the remaining with probability proportional to weight. Sampled
with the Gumbel-max trick, vectorised (accepts ``size``).

Anonymous; smooth in the predictions, so stable for some L that grows with BETA, but
not UA (``ua_conformance`` fails). BETA defaults to 5; override with the environment
variable ``FAIRAUDIT_PL_BETA`` or build a ranker with ``make_ranker(beta)``.
"""
import os

import numpy as np
import fairaudit as fa

BETA = float(os.environ.get("FAIRAUDIT_PL_BETA", "5.0"))


def make_ranker(beta: float = BETA):
    @fa.ranker
    def rank(predictions, rng, size=None):
        P = np.asarray(predictions, dtype=float)
        if P.ndim == 1:
            P = np.column_stack([1 - P, P])
        m = P.shape[1]
        u = P @ (np.arange(m) / max(m - 1, 1))
        B = 1 if size is None else int(size)
        key = beta * u[None, :] + rng.gumbel(size=(B, len(u)))
        out = np.argsort(-key, axis=1, kind="stable")
        return out[0] if size is None else out
    return rank


rank = make_ranker(BETA)
