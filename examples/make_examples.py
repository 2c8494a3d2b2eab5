"""Regenerate the bundled example data: ``python examples/make_examples.py``.

* ``data/population.csv``: 200 individuals with a claim/score in [0, 1], two group
  columns (``sex``, ``age_band``) whose score distributions differ a little, and a 0/1
  label drawn with probability equal to the score (so labels are calibrated).
* ``logs/selection_log.csv``: 300 decision events; each draws 20 applicants from the
  population and selects 4 by the Broome lottery (w ∝ score), recording pick order.

Deterministic: seeded with 2026.
"""
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def population(rng, n=200):
    sex = rng.choice(["F", "M"], size=n)
    age = rng.choice(["under_40", "40_plus"], size=n, p=[0.6, 0.4])
    base = rng.beta(2, 2, size=n)
    score = np.clip(base + np.where(sex == "M", 0.08, 0.0) - np.where(age == "40_plus", 0.05, 0.0), 0.01, 1.0)
    label = (rng.random(n) < score).astype(int)
    return pd.DataFrame({"id": np.arange(n), "score": np.round(score, 4), "sex": sex, "age_band": age,
                         "label": label})


def selection_log(rng, pop, events=300, per_event=20, k=4):
    rows = []
    for e in range(events):
        idx = rng.choice(len(pop), size=per_event, replace=False)
        c = pop["score"].to_numpy()[idx]
        picks = rng.choice(per_event, size=k, replace=False, p=c / c.sum())
        order = {int(p): r + 1 for r, p in enumerate(picks)}
        for j, i in enumerate(idx):
            rows.append({"decision_id": e, "individual_id": int(pop["id"].iloc[i]), "score": c[j],
                         "sex": pop["sex"].iloc[i], "age_band": pop["age_band"].iloc[i],
                         "selected": int(j in order), "pick_order": order.get(j, ""),
                         "label": int(pop["label"].iloc[i])})
    return pd.DataFrame(rows)


def main():
    rng = np.random.default_rng(2026)
    pop = population(rng)
    (HERE / "data").mkdir(exist_ok=True)
    (HERE / "logs").mkdir(exist_ok=True)
    pop.to_csv(HERE / "data" / "population.csv", index=False)
    selection_log(rng, pop).to_csv(HERE / "logs" / "selection_log.csv", index=False)


if __name__ == "__main__":
    main()
