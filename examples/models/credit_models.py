"""Credit models fitted at import on examples/models/credit.csv (deterministic: lbfgs, no
randomness in fitting), so they need no pickle and load with any scikit-learn version:

    fairaudit check examples/models/credit_models.py:pipeline --data examples/models/credit.csv
    fairaudit check examples/models/credit_models.py:optimizer --data examples/models/credit.csv

``pipeline`` — logistic regression on sex, income, debt_ratio and zip_score
    (one-hot sex, scaled numbers), deciding by ``predict`` (p ≥ 0.5). It learned the
    historical bias of the labels, and it reads ``sex`` directly, so it should FAIL
    ``anonymity`` (counterfactual fairness: swapping F↔M flips decisions) and FAIL
    ``selection_rates`` (women approved at about half of men's rate).
    ``error_rate_parity`` FAILs too (women's false-positive rate is about a third of
    men's, their true-positive rate lower). A cut-off is a jump, so ``tv_stability``
    (individual fairness) FAILs: near neighbours on either side of it get a sure yes and
    a sure no. It is deterministic, so ``determinism`` (whose property is randomization)
    FAILs. ``broome`` is skipped: the data has no claim (score) column.
``blind`` — the same without ``sex`` but with the proxy ``zip_score``: PASSes the
    counterfactual test (nothing it reads changes when only sex is swapped) yet still
    FAILs ``selection_rates`` and ``error_rate_parity`` — the proxy carries sex.
    Counterfactual fairness on the recorded attribute alone does not catch proxies; the
    LL144 table does. ``tv_stability`` FAILs as for ``pipeline`` (a cut-off).
``optimizer`` — ``pipeline`` wrapped in Fairlearn's ``ThresholdOptimizer`` for equalized
    odds (a randomized post-processor: ``predict(X, sensitive_features, random_state)``;
    fairaudit feeds ``random_state`` from the audit's seed). Its per-group thresholds
    equalize true- and false-positive rates on this data, so ``error_rate_parity``
    PASSes, and ``selection_rates`` PASSes (impact ratio about 0.87); it uses ``sex`` by
    construction, so it FAILs the counterfactual test. Most applicants still get a sure
    yes or no, so ``tv_stability`` FAILs. It is randomized: ``determinism`` PASSes.

``make_models.py`` saves ``pipeline`` as ``credit_pipeline.joblib`` (the same model).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

HERE = Path(__file__).resolve().parent
NUMERIC = ["income", "debt_ratio", "zip_score"]


def fit_pipeline(frame: pd.DataFrame, with_sex: bool = True) -> Pipeline:
    cols = (["sex"] if with_sex else []) + NUMERIC
    parts = [("num", StandardScaler(), NUMERIC)]
    if with_sex:
        parts.insert(0, ("sex", OneHotEncoder(drop="first"), ["sex"]))
    model = Pipeline([("prep", ColumnTransformer(parts)), ("logit", LogisticRegression())])
    return model.fit(frame[cols], frame["label"])


def fit_optimizer(frame: pd.DataFrame, base: Pipeline):
    from fairlearn.postprocessing import ThresholdOptimizer
    cols = list(base.feature_names_in_)
    opt = ThresholdOptimizer(estimator=base, constraints="equalized_odds", prefit=True,
                             predict_method="predict_proba")
    opt.fit(frame[cols], frame["label"], sensitive_features=frame["sex"])
    opt.fairaudit_sensitive_features = ["sex"]       # which group column its predict needs
    return opt


_data = pd.read_csv(HERE / "credit.csv")
pipeline = fit_pipeline(_data)
blind = fit_pipeline(_data, with_sex=False)
optimizer = fit_optimizer(_data, pipeline)
