"""The two decision functions the example service (server.py) puts behind HTTP, also
auditable as plain callables — the test suite audits both ways and expects the same
verdicts:

``rank`` — a fair randomized ranker: the uncertainty-aware ranking of Devic et al.
    (Def 8; each person's label drawn from their predicted distribution, sorted, ties
    broken at random). Anonymous and 1-stable: ``anonymity`` and ``tv_stability`` PASS.
``screen`` — a per-person screening rule that never reads ``sex`` but reads
    ``zip_score``, a proxy of it (examples/models/credit.csv: mean 0.01 for F, 0.81 for
    M): yes with probability ``sigmoid(6 (zip_score − 0.4))``. Swapping sex changes
    nothing it reads, so ``anonymity`` (counterfactual) PASSes, yet women are screened
    in at a fraction of men's rate: ``selection_rates`` (the four-fifths rule) FAILs.
"""
import numpy as np

import fairaudit as fa


@fa.ranker
def rank(predictions, rng, size=None):
    return fa.ua_sample(predictions, rng, size=size)


def screen_probability(zip_score) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-6.0 * (np.asarray(zip_score, dtype=float) - 0.4)))


@fa.decider
def screen(features, rng):
    p = screen_probability(features["zip_score"].to_numpy())
    return rng.random(len(p)) < p
