"""Rashomon-set selector (Jain et al. §5.1, "Bootstrapped Training Data"): each call
refits a logistic regression on a bootstrap resample of ``examples/data/healthcare_train.csv``
and enrols the 250 patients with the highest predicted chance of being qualified.

Its randomness *is* the model choice: every draw is one model of the sampled Rashomon
set mapped to an allocation by top k (Def 5). Audit it on the candidates with
``fairaudit check examples/allocators/bootstrap_logistic_top_k.py --checks multiplicity
--data examples/data/healthcare.csv``. It fails: the refits agree on almost everyone
(pairwise consistency far above the equal-utility reference) and some qualified
patients are never enrolled by any of them (§5.2, Table 3, Fig. 4b).
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import fairaudit as fa

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE.parent))
from make_multiplicity_data import design  # noqa: E402  (the model's inputs, shared with the generator)

_TRAIN = pd.read_csv(_HERE.parent / "data" / "healthcare_train.csv")
_X, _Y = design(_TRAIN), _TRAIN["label"].to_numpy()


@fa.selector(k=250)
def select(features, groups, k, rng):
    rows = rng.integers(0, len(_Y), len(_Y))
    model = LogisticRegression(solver="newton-cholesky", max_iter=100).fit(_X[rows], _Y[rows])
    cand = pd.concat([features.reset_index(drop=True), groups.reset_index(drop=True)], axis=1)
    p = model.predict_proba(design(cand))[:, 1]
    return np.argsort(-p, kind="stable")[:k]
