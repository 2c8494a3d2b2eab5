"""Regenerate ``data/predictions.csv``: ``python examples/make_predictions.py``.

30 individuals with a three-label prediction (columns ``p_0``, ``p_1``, ``p_2``; label
2 is the best — like seed 002's Enrollment task: dropout < enrolled < graduated), two
group columns (``sex``, ``age_band``) and a label drawn from each row's prediction (so
the predictions are calibrated). Some rows are duplicated (equal predictions: a
deterministic ranker must separate them by index) and some are nearly equal in the
probability of the best label (where sorting by it jumps). Input for ``tv_stability``
and ``ua_conformance`` (``--data examples/data/predictions.csv``).

Deterministic: seeded with 2026.
"""
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def predictions(rng, n=30, m=3):
    sex = rng.choice(["F", "M"], size=n)
    age = rng.choice(["under_40", "40_plus"], size=n, p=[0.6, 0.4])
    logits = rng.normal(0, 1, size=(n, m)) + np.where(sex == "M", 0.3, 0.0)[:, None] * np.arange(m)
    P = np.exp(logits)
    P /= P.sum(axis=1, keepdims=True)
    P[n - 3:] = P[:3]                                   # three exact duplicates
    P[3, :] = P[4, :]
    P[3, -1] += 0.002                                   # a near tie on the best label
    P[3, 0] -= 0.002
    P = np.round(P, 4)
    P[:, 0] = np.round(1.0 - P[:, 1:].sum(axis=1), 4)   # rows sum to 1 exactly after rounding
    label = np.array([rng.choice(m, p=np.clip(p, 0, None) / np.clip(p, 0, None).sum()) for p in P])
    df = pd.DataFrame({"id": np.arange(n), "sex": sex, "age_band": age})
    for j in range(m):
        df[f"p_{j}"] = P[:, j]
    df["label"] = label
    return df


def main():
    rng = np.random.default_rng(2026)
    (HERE / "data").mkdir(exist_ok=True)
    predictions(rng).to_csv(HERE / "data" / "predictions.csv", index=False)


if __name__ == "__main__":
    main()
