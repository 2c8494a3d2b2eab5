"""Write examples/models/credit.csv: a small synthetic credit-style data set (seed 17).

One row per applicant: ``id``, ``sex`` (F/M, the protected attribute), ``income``
(thousands), ``debt_ratio`` in [0, 1], ``zip_score`` — a **proxy**: a neighbourhood score
that carries sex (correlation about 0.7) and nothing about repayment — and ``label``,
whether the loan was repaid. The labels are *historically biased*: given income and
debt, men were recorded as repaying more often (a +1.0 log-odds shift), so a model fitted
to them learns to favour men, directly through ``sex`` or through the proxy.

    python examples/models/make_credit_data.py     # rewrites credit.csv (byte-identical)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
N = 800


def make(n: int = N, seed: int = 17) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    male = rng.random(n) < 0.5
    income = rng.normal(50, 12, n).clip(10, 120)
    debt = rng.uniform(0, 1, n)
    zip_score = 0.8 * male + rng.normal(0, 0.4, n)            # the proxy: sex plus noise
    logit = 0.08 * (income - 50) - 2.0 * (debt - 0.5) + 1.0 * (male - 0.5)
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"id": np.arange(1, n + 1), "sex": np.where(male, "M", "F"),
                         "income": income.round(1), "debt_ratio": debt.round(3),
                         "zip_score": zip_score.round(3), "label": label})


if __name__ == "__main__":
    make().to_csv(HERE / "credit.csv", index=False)
    print(f"wrote {HERE / 'credit.csv'}")
