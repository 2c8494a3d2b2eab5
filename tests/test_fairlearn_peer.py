"""selection_rates on a log against Fairlearn, the peer a user would otherwise pick:
per-group selection rates equal ``MetricFrame(selection_rate).by_group`` and the lowest
impact ratio of each attribute equals ``demographic_parity_ratio`` (issue 15)."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

fairlearn_metrics = pytest.importorskip("fairlearn.metrics")

import fairaudit as fa  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def synthetic_log(decisions=400, n=25, seed=3):
    rng = np.random.default_rng(seed)
    rows = decisions * n
    f = pd.DataFrame({"decision_id": np.repeat(np.arange(decisions), n), "score": rng.random(rows).round(4),
                      "sex": rng.choice(["F", "M"], rows), "age_band": rng.choice(["a", "b", "c"], rows, p=[.5, .3, .2])})
    merit = f["score"] - 0.15 * (f["sex"] == "F") - 0.1 * (f["age_band"] == "c") + 0.2 * rng.standard_normal(rows)
    f["selected"] = (merit.groupby(f["decision_id"]).rank(ascending=False, method="first") <= 5).astype(int)
    return f


@pytest.mark.parametrize("source", ["bundled", "synthetic"])
def test_rates_and_impact_ratios_match_fairlearn(source, tmp_path):
    from fairlearn.metrics import MetricFrame, demographic_parity_ratio, selection_rate
    if source == "bundled":
        path = ROOT / "examples" / "logs" / "selection_log.csv"
        f = pd.read_csv(path)
    else:
        f = synthetic_log()
        path = tmp_path / "log.parquet"
        f.to_parquet(path, index=False)
    r = fa.audit(str(path), checks=["selection_rates"], groups=["sex", "age_band"]).checks[0]
    t = r.tables["groups"]
    assert t["in_verdict"].all()        # no small category: the top rate is over all of them
    y = f["selected"]
    for attr, cols in (("sex", ["sex"]), ("age_band", ["age_band"]), ("sex × age_band", ["sex", "age_band"])):
        sens = f[cols] if len(cols) > 1 else f[cols[0]]
        mf = MetricFrame(metrics=selection_rate, y_true=y, y_pred=y, sensitive_features=sens)
        ours = t[t["attribute"] == attr].set_index("category")
        for key, rate in mf.by_group.items():
            label = " × ".join(map(str, key)) if isinstance(key, tuple) else str(key)
            assert ours.loc[label, "rate"] == pytest.approx(rate, abs=1e-12)
        assert len(ours) == len(mf.by_group)
        dpr = demographic_parity_ratio(y, y, sensitive_features=sens)
        assert ours["impact_ratio"].min() == pytest.approx(dpr, abs=1e-12)
