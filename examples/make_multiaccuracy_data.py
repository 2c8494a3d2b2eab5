"""Regenerate the multiaccuracy example data: ``python examples/make_multiaccuracy_data.py``.

Every file is drawn from a known ground truth ``f*`` (each row's true label
distribution), so the predictor's multiaccuracy error α is known; it is written to
``data/multiaccuracy_truth.json`` (per dataset, per group of the collection C at depth 2,
per label: ``α = mean over the group of (f − f*)``, the quantity the check estimates).

* ``data/multiaccuracy_population.csv`` — 8000 people; groups ``sex`` (F/M) and
  ``age_band`` (under_30 / 30_to_50 / over_50); numeric features ``age``,
  ``experience``; three ordinal labels 0 < 1 < 2 (2 the best) drawn from ``f*``
  (an ordered logit of experience and group effects); predictions ``p_0, p_1, p_2`` =
  ½ f* + ½ (mean of f* over the person's sex × age_band cell). Every set of C is a
  union of those cells, so the predictor is exactly multiaccurate on C (α = 0 up to
  the 4-decimal rounding) while not being individually accurate.
* ``data/multiaccuracy_biased.csv`` — the same people and labels; the predictor is the
  one above except on ``age_band = over_50``, where 0.15 of the probability of the
  best label (or all of it, when less) is moved to the worst label: biased on one group.
* ``data/multiaccuracy_prop19.csv`` — seed 002's Prop 19 instance: 2000 people of two
  types (1000 each), ground truth ``f* = (½, ½)`` for both, binary labels drawn from
  it; the predictor overestimates type 1 and underestimates type 2 by ε = 0.05
  (``p_1 = ½ ± ε``). It is ε-multiaccurate, yet a deterministic sort by ``p_1`` gives
  type 1 the top position with probability 1 − 2^{-n} instead of ½.

* ``data/multiaccuracy_prop19_log.csv`` — a ranking log on that instance: 300 decisions,
  each ranking 10 people drawn (with replacement) from the Prop 19 pool by the
  deterministic sort on ``p_1`` (ties by index), with ``decision_id``, ``position``
  (1 = top), ``individual_id``, ``type``, ``p_0``, ``p_1``, ``label``.

Deterministic: seeded with 2027.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
EPS = 0.05
BIAS = 0.15


def _round_rows(P: np.ndarray, digits: int = 4) -> np.ndarray:
    """Round to ``digits`` decimals keeping each row's sum exactly 1 (the rounding
    error goes to the largest entry)."""
    R = np.round(P, digits)
    j = np.argmax(R, axis=1)
    R[np.arange(len(R)), j] += 1.0 - R.sum(axis=1)
    return np.round(R, digits)


def population(rng: np.random.Generator, n: int = 8000):
    sex = rng.choice(["F", "M"], size=n)
    age_band = rng.choice(["under_30", "30_to_50", "over_50"], size=n, p=[0.3, 0.45, 0.25])
    lo = {"under_30": 20, "30_to_50": 30, "over_50": 50}
    hi = {"under_30": 30, "30_to_50": 50, "over_50": 66}
    age = np.array([rng.integers(lo[a], hi[a]) for a in age_band])
    experience = np.clip(np.round(rng.gamma(2.0, 1.0 + (age - 20) / 12.0), 1), 0, 40)
    # Ordered logit: latent merit from experience and small group effects.
    z = (0.35 * (experience - experience.mean()) / experience.std() * 2.0
         + np.where(sex == "M", 0.15, -0.05) + np.where(age_band == "over_50", -0.25, 0.0)
         + rng.normal(0, 0.8, n))
    cuts = np.array([-0.6, 0.7])
    cdf = 1.0 / (1.0 + np.exp(-(cuts[None, :] - z[:, None])))          # Pr[label ≤ j]
    fstar = np.column_stack([cdf[:, 0], cdf[:, 1] - cdf[:, 0], 1.0 - cdf[:, 1]])
    label = (rng.random(n)[:, None] >= np.cumsum(fstar, axis=1)).sum(axis=1)
    frame = pd.DataFrame({"id": np.arange(n), "sex": sex, "age_band": age_band, "age": age,
                          "experience": experience, "label": label})
    cell = frame["sex"] + "|" + frame["age_band"]
    cell_mean = pd.DataFrame(fstar).groupby(cell.to_numpy()).transform("mean").to_numpy()
    f_ma = _round_rows(0.5 * fstar + 0.5 * cell_mean)
    f_bias = f_ma.copy()
    old = (age_band == "over_50")
    moved = np.minimum(BIAS, f_bias[old, 2])
    f_bias[old, 2] -= moved
    f_bias[old, 0] += moved
    f_bias = _round_rows(f_bias)
    return frame, fstar, f_ma, f_bias


def prop19(rng: np.random.Generator, n: int = 2000, eps: float = EPS):
    typ = np.repeat(["type_1", "type_2"], n // 2)
    fstar = np.full((n, 2), 0.5)
    label = (rng.random(n) < 0.5).astype(int)
    p1 = np.where(typ == "type_1", 0.5 + eps, 0.5 - eps)
    f = np.round(np.column_stack([1 - p1, p1]), 6)
    frame = pd.DataFrame({"id": np.arange(n), "type": typ, "label": label})
    return frame, fstar, f


def prp_log(rng: np.random.Generator, frame: pd.DataFrame, f: np.ndarray, events: int = 300, n: int = 10):
    # n different individuals per decision (a ranking lists each candidate once)
    idx = np.argsort(rng.random((events, len(frame))), axis=1)[:, :n]
    order = np.argsort(-f[idx, 1], axis=1, kind="stable")          # position → slot
    pos = np.empty_like(order)
    np.put_along_axis(pos, order, np.arange(1, n + 1)[None, :].repeat(events, 0), axis=1)
    flat = idx.ravel()
    return pd.DataFrame({"decision_id": np.repeat(np.arange(events), n), "position": pos.ravel(),
                         "individual_id": frame["id"].to_numpy()[flat], "type": frame["type"].to_numpy()[flat],
                         "p_0": f[flat, 0], "p_1": f[flat, 1], "label": frame["label"].to_numpy()[flat]})


def alpha_truth(frame: pd.DataFrame, group_cols: list[str], f: np.ndarray, fstar: np.ndarray) -> dict:
    """α per set of C (depth 2) and label: mean over the set of f − f*."""
    from fairaudit.checks.multiaccuracy.groupsets import collection
    out = {}
    for s in collection(frame, group_cols, depth=2, min_size=0):
        d = (f[s.mask] - fstar[s.mask]).mean(axis=0)
        out[s.name] = [round(float(v), 6) for v in d]
    return out


def with_predictions(frame: pd.DataFrame, f: np.ndarray) -> pd.DataFrame:
    cols = {f"p_{j}": f[:, j] for j in range(f.shape[1])}
    out = frame.drop(columns=["label"]).assign(**cols)
    out["label"] = frame["label"].to_numpy()
    return out


def main():
    rng = np.random.default_rng(2027)
    data = HERE / "data"
    data.mkdir(exist_ok=True)
    frame, fstar, f_ma, f_bias = population(rng)
    with_predictions(frame, f_ma).to_csv(data / "multiaccuracy_population.csv", index=False)
    with_predictions(frame, f_bias).to_csv(data / "multiaccuracy_biased.csv", index=False)
    pframe, pstar, pf = prop19(rng)
    with_predictions(pframe, pf).to_csv(data / "multiaccuracy_prop19.csv", index=False)
    prp_log(rng, pframe, pf).to_csv(data / "multiaccuracy_prop19_log.csv", index=False)
    truth = {
        "note": "alpha = mean over the group of (prediction - ground truth f*), per label (columns p_0, p_1, ...); "
                "generated by examples/make_multiaccuracy_data.py",
        "multiaccuracy_population.csv": alpha_truth(frame, ["sex", "age_band"], f_ma, fstar),
        "multiaccuracy_biased.csv": alpha_truth(frame, ["sex", "age_band"], f_bias, fstar),
        "multiaccuracy_prop19.csv": alpha_truth(pframe, ["type"], pf, pstar),
        "prop19_epsilon": EPS, "bias_on_over_50": BIAS,
    }
    (data / "multiaccuracy_truth.json").write_text(json.dumps(truth, indent=1, sort_keys=False) + "\n")


if __name__ == "__main__":
    main()
