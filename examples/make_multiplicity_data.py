"""Regenerate the allocation-multiplicity example data: ``python examples/make_multiplicity_data.py``.

A synthetic stand-in for the healthcare data of seed 001 §5.1 (Obermeyer et al.'s
care-management program; that data is not redistributable here). Each patient has a
latent health burden that grows with age; last year's active chronic illnesses and next
year's are Poisson in it. Qualification (``label``) is "next year, 2 or more active
chronic illnesses" (§5.1's q = 2), about a third of patients. The structural bias of
§6 is built in: the features a model sees are *recorded* through healthcare use —
diagnosed illnesses (``gagne_sum_tm1``) and costs — and Black patients' illnesses are
diagnosed less often (60% vs 90%) and cost less (access 0.6 vs 1.0), so every model
trained on them sees some qualified Black patients as low-risk. Race is not a feature.

* ``data/healthcare_train.csv`` — 2000 training patients: features and ``label``.
* ``data/healthcare.csv`` — 1000 allocation candidates: ``id``, ``score`` (the
  deployed model: logistic regression on all training data), ``label``, ``illnesses``
  (next year's active chronic illnesses, for the threshold test of §5.2), ``race``,
  ``age_band`` (seven bands, as Table 5), the features, and ``score_01 … score_20``:
  twenty Rashomon models (logistic regressions refitted on bootstrap resamples of the
  training data), for ``--param multiplicity.models=score_*``.
* ``logs/multiplicity_log.csv`` — a selection log with one decision per Rashomon model:
  the top 250 of each ``score_*`` column (``decision_id`` = the model).

Deterministic: seeded with 2031.
"""
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

HERE = Path(__file__).resolve().parent
AGE_BANDS = ["18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75+"]
FEATURES = ["female", "gagne_sum_tm1", "cost_primary_care", "cost_emergency", "cost_pharmacy"]
K = 250


def patients(n: int, rng: np.random.Generator) -> pd.DataFrame:
    black = rng.random(n) < 0.3
    age = rng.choice(7, n, p=[0.10, 0.14, 0.16, 0.18, 0.18, 0.14, 0.10])
    female = (rng.random(n) < 0.6).astype(int)
    burden = np.exp(-0.95 + 0.28 * age + 0.15 * black + rng.normal(0, 0.6, n))
    prev = rng.poisson(burden)
    nxt = rng.poisson(0.7 * burden + 0.3 * prev)
    diagnosed = rng.binomial(prev, np.where(black, 0.6, 0.9))
    access = np.where(black, 0.6, 1.0)
    cost = lambda scale: np.round(rng.gamma(2.0, scale * access * (1 + diagnosed)) / 10) * 10  # noqa: E731
    return pd.DataFrame({
        "race": np.where(black, "black", "white"), "age_band": [AGE_BANDS[a] for a in age], "female": female,
        "gagne_sum_tm1": diagnosed, "cost_primary_care": cost(150.0), "cost_emergency": cost(80.0),
        "cost_pharmacy": cost(300.0), "illnesses": nxt, "label": (nxt >= 2).astype(int)})


def design(frame: pd.DataFrame) -> np.ndarray:
    """The model's inputs: log costs, diagnosed illnesses, sex, one-hot age band (no race)."""
    x = [frame["female"].to_numpy(float), frame["gagne_sum_tm1"].to_numpy(float)]
    x += [np.log1p(frame[c].to_numpy(float)) for c in FEATURES[2:]]
    x += [(frame["age_band"].astype(str) == b).to_numpy(float) for b in AGE_BANDS[1:]]
    return np.column_stack(x)


def fit(train: pd.DataFrame, rows=None) -> LogisticRegression:
    t = train if rows is None else train.iloc[rows]
    return LogisticRegression(solver="newton-cholesky", max_iter=100).fit(design(t), t["label"].to_numpy())


def main(out: Path = HERE):
    rng = np.random.default_rng(2031)
    train, cand = patients(2000, rng), patients(1000, rng)
    cand.insert(0, "id", np.arange(1, len(cand) + 1))
    cand.insert(1, "score", np.round(fit(train).predict_proba(design(cand))[:, 1], 6))
    for j in range(1, 21):
        model = fit(train, rng.integers(0, len(train), len(train)))
        cand[f"score_{j:02d}"] = np.round(model.predict_proba(design(cand))[:, 1], 6)
    (out / "data").mkdir(parents=True, exist_ok=True)
    train.drop(columns=["illnesses"]).to_csv(out / "data" / "healthcare_train.csv", index=False)
    cand.to_csv(out / "data" / "healthcare.csv", index=False)
    rows = []
    for j in range(1, 21):
        s = cand[f"score_{j:02d}"].to_numpy()
        sel = np.zeros(len(cand), int)
        sel[np.argsort(-s, kind="stable")[:K]] = 1
        rows.append(pd.DataFrame({"decision_id": f"model_{j:02d}", "individual_id": cand["id"], "score": np.round(s, 4),
                                  "selected": sel, "label": cand["label"], "race": cand["race"],
                                  "age_band": cand["age_band"], "illnesses": cand["illnesses"]}))
    (out / "logs").mkdir(parents=True, exist_ok=True)
    pd.concat(rows).to_csv(out / "logs" / "multiplicity_log.csv", index=False)
    q = cand["label"].mean()
    top = np.argsort(-cand["score"].to_numpy(), kind="stable")[:K]
    print(f"qualified {q:.3f} (train {train['label'].mean():.3f}); baseline utility k'/k = "
          f"{cand['label'].to_numpy()[top].mean():.3f}")


if __name__ == "__main__":
    main()
