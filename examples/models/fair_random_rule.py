"""A fair randomized credit rule for examples/models/credit.csv, written as a decision rule.

Each applicant gets a yes with probability ``sigmoid(0.06 (income − 50) − 1.5 (debt_ratio − 0.5))``
— a smooth function of what bears on repayment, never of ``sex`` or of the proxy
``zip_score``; the coin is the audit's ``rng``, so draws are reproducible from ``--seed``.

    fairaudit check examples/models/fair_random_rule.py --data examples/models/credit.csv

Expected: ``anonymity`` (counterfactual fairness) PASSes — nothing it reads changes when
only sex changes; ``tv_stability`` (individual fairness at L = 1) PASSes — its chance
moves by at most 0.06·12/4 ≈ 0.18 per standard deviation of income and 1.5/4·0.29 ≈ 0.11
per standard deviation of debt, both under L; ``selection_rates`` PASSes — income and
debt are distributed alike in both sexes, so the rates are close; ``determinism`` PASSes
(randomized); ``broome`` is skipped (the data has no claim column). ``error_rate_parity`` PASSes on this data (lowest ratio about 0.93), but
a sex-blind rule has no such guarantee: with the labels' historical bias (men recorded
as repaying more often at equal income and debt) the TPR and FPR of the groups can
differ — equalized odds and counterfactual fairness are different properties.
"""
import numpy as np

import fairaudit as fa


@fa.decider
def decide(features, rng, size):
    z = 0.06 * (features["income"].to_numpy() - 50) - 1.5 * (features["debt_ratio"].to_numpy() - 0.5)
    p = 1 / (1 + np.exp(-z))
    return rng.random((size, len(p))) < p
