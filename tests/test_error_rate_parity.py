"""error_rate_parity (issue 17): TPR/FPR per group from draws and from decision logs,
checked against the definition, against Fairlearn's MetricFrame on the same draws, and
for interval coverage over seeds."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fairaudit as fa
from fairaudit.engine import AuditContext
from fairaudit.run.sampler import Sampler
from fairaudit.run.targets import target_from_callable
from fairaudit.run.load import load_target

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "examples" / "models"


def people(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"sex": rng.choice(["F", "M"], n), "income": rng.normal(50, 10, n).round(1),
                         "label": (rng.random(n) < 0.5).astype(int)})


def rule_with(p_pos_f, p_pos_m, p_neg):
    """A randomized rule from the definition: yes with chance p_pos_<sex> for labelled
    positives and p_neg for negatives (it reads the label: an oracle-style rule whose
    true rates are known exactly)."""
    def decide(groups, labels, rng):
        f = groups["sex"].to_numpy() == "F"
        p = np.where(labels == 1, np.where(f, p_pos_f, p_pos_m), p_neg)
        return rng.random(len(p)) < p
    return fa.decider(decide)


def rates_of(result):
    return {k: v for k, v in result.checks[0].evidence["rates"].items()}


def test_equal_rates_pass_and_a_tpr_gap_fails(tmp_path):
    path = tmp_path / "people.csv"
    people(600).to_csv(path, index=False)
    fair = fa.audit(rule_with(0.7, 0.7, 0.2), checks=["error_rate_parity"], data=str(path), in_process=True)
    unfair = fa.audit(rule_with(0.4, 0.8, 0.2), checks=["error_rate_parity"], data=str(path), in_process=True)
    assert fair.checks[0].verdict == "pass", fair.checks[0].message
    assert unfair.checks[0].verdict == "fail" and "TPR of sex = F" in unfair.checks[0].message
    # the table the report colours: each row's verdict and the group it is compared with
    t = unfair.checks[0].tables["error_rates"]
    row = t[(t["measure"] == "TPR") & (t["category"] == "F")].iloc[0]
    assert row["verdict"] == "fail" and row["reference"] == "M"
    assert set(fair.checks[0].tables["error_rates"]["verdict"]) == {"pass"}
    r = rates_of(unfair)["TPR sex = F"]
    assert r["estimate"] == pytest.approx(0.4, abs=0.05) and r["ratio"][0] == pytest.approx(0.5, abs=0.07)
    # equal opportunity looks at TPRs only: an FPR gap alone does not fail it
    fpr_gap = fa.decider(lambda groups, labels, rng: rng.random(len(labels)) < np.where(
        labels == 1, 0.7, np.where(groups["sex"].to_numpy() == "F", 0.05, 0.4)))
    eo = fa.audit(fpr_gap, checks=["error_rate_parity"], data=str(path), in_process=True,
                  params={"error_rate_parity": {"criterion": "equal_opportunity"}})
    eodds = fa.audit(fpr_gap, checks=["error_rate_parity"], data=str(path), in_process=True)
    assert eo.checks[0].verdict == "pass" and eodds.checks[0].verdict == "fail"


def test_without_labels_it_is_skipped_saying_why(tmp_path):
    path = tmp_path / "nolabel.csv"
    people(50).drop(columns=["label"]).to_csv(path, index=False)
    r = fa.audit(rule_with(0.5, 0.5, 0.5), checks=["error_rate_parity"], data=str(path), in_process=True,
                 allow_skip=True)
    assert r.checks[0].verdict == "skipped" and "no label column" in r.checks[0].message


def test_a_decision_log_gives_the_counted_rates_with_clopper_pearson(tmp_path):
    rng = np.random.default_rng(1)
    frame = people(6000, 1)
    frame["selected"] = (rng.random(6000) < np.where(frame["label"] == 1, 0.7, 0.3)).astype(int)
    frame = frame.drop(columns=["income"])
    path = tmp_path / "decisions.csv"
    frame.to_csv(path, index=False)
    r = fa.audit(str(path), checks=["error_rate_parity", "selection_rates"])
    assert r.target["kind"] == "decision"
    got = rates_of(r)
    for sex in ("F", "M"):
        g = frame[frame["sex"] == sex]
        assert got[f"TPR sex = {sex}"]["estimate"] == pytest.approx(g.loc[g.label == 1, "selected"].mean())
        assert got[f"FPR sex = {sex}"]["estimate"] == pytest.approx(g.loc[g.label == 0, "selected"].mean())
    from scipy.stats import binomtest
    g = frame[(frame["sex"] == "F") & (frame["label"] == 1)]
    ci = binomtest(int(g["selected"].sum()), len(g)).proportion_ci(1 - 0.05 / 4)
    assert got["TPR sex = F"]["ci"] == pytest.approx([ci.low, ci.high])
    assert r.checks[1].verdict != "error" and r.checks[0].verdict == "pass"


def test_threshold_optimizer_rates_match_fairlearn_metricframe_on_the_same_draws():
    from fairlearn.metrics import MetricFrame, false_positive_rate, true_positive_rate
    data = MODELS / "credit.csv"
    spec = f"{MODELS / 'credit_models.py'}:optimizer"
    r = fa.audit(spec, checks=["error_rate_parity"], data=str(data), in_process=True, draws=64, seed=5)
    c = r.checks[0]
    frame = pd.read_csv(data)
    pop = fa.engine.load_population(str(data))
    ctx = AuditContext(fa.engine.AuditConfig(seed=5), target=load_target(spec), population=pop)
    with Sampler(ctx.target, 5) as s:
        draws = s.draw(ctx.population_instance(), c.draws, "error_rate_parity")
    per = [MetricFrame(metrics={"TPR": true_positive_rate, "FPR": false_positive_rate}, y_true=frame["label"],
                       y_pred=d.astype(int), sensitive_features=frame["sex"]).by_group for d in draws]
    mean = sum(per) / len(per)
    got = rates_of(r)
    for sex in ("F", "M"):
        for rate in ("TPR", "FPR"):
            assert got[f"{rate} sex = {sex}"]["estimate"] == pytest.approx(mean.loc[sex, rate], abs=1e-12)


@pytest.mark.slow
def test_simultaneous_intervals_cover_the_true_rates_over_seeds(tmp_path):
    path = tmp_path / "people.csv"
    frame = people(120, 2)
    frame.to_csv(path, index=False)
    rng = np.random.default_rng(9)
    pi = rng.uniform(0.1, 0.9, len(frame))          # each person's own chance of a yes
    f = frame["sex"].to_numpy() == "F"
    y = frame["label"].to_numpy()
    truth = {f"TPR sex = F": pi[f & (y == 1)].mean(), "TPR sex = M": pi[~f & (y == 1)].mean(),
             "FPR sex = F": pi[f & (y == 0)].mean(), "FPR sex = M": pi[~f & (y == 0)].mean()}
    rule = target_from_callable(fa.decider(lambda groups, rng: rng.random(len(pi)) < pi))
    seeds = range(40)
    covered = 0
    for seed in seeds:
        r = fa.audit(rule, checks=["error_rate_parity"], data=str(path), seed=seed, draws=256, in_process=True)
        got = rates_of(r)
        covered += all(got[k]["ci"][0] <= v <= got[k]["ci"][1] for k, v in truth.items())
    assert covered / len(seeds) >= 0.95


def test_the_carried_sequence_takes_each_looks_new_draws_only_and_covers_the_true_rates(tmp_path, monkeypatch):
    """A rule whose TPR ratio sits exactly on the threshold (0.56 / 0.7 = 0.8) stays
    inconclusive, so it is looked at after 256, 512 and 1024 draws: the rates' betting
    sequence is given each look's new draws only (256, 256, 512 rows — every draw once), the
    final intervals contain the exact rates, and the table is built once, at the end."""
    import fairaudit.checks.error_rate_parity as erp
    from fairaudit.stats import BettingCS
    rows, tables = [], []
    update, table = BettingCS.update, erp._table
    monkeypatch.setattr(BettingCS, "update", lambda self, x: rows.append(len(x)) or update(self, x))
    monkeypatch.setattr(erp, "_table", lambda *a: tables.append(1) or table(*a))
    path = tmp_path / "people.csv"
    people(400).to_csv(path, index=False)
    r = fa.audit(rule_with(0.56, 0.7, 0.2), checks=["error_rate_parity"], data=str(path), in_process=True,
                 draws=1024).checks[0]
    assert r.verdict == "inconclusive" and r.draws == 1024
    assert rows == [256, 256, 512] and len(tables) == 1
    got = r.evidence["rates"]
    for key, exact in (("TPR sex = F", 0.56), ("TPR sex = M", 0.7), ("FPR sex = F", 0.2), ("FPR sex = M", 0.2)):
        lo, hi = got[key]["ci"]
        assert lo <= exact <= hi, (key, lo, hi)


def test_with_no_rate_to_estimate_it_is_inconclusive_saying_so(tmp_path):
    """Equal opportunity on data with no labelled positives has no TPR at all: an empty
    family of sequences, inconclusive with the reason (not an error)."""
    frame = people(100)
    frame["label"] = 0
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    c = fa.audit(rule_with(0.5, 0.5, 0.5), checks=["error_rate_parity"], data=str(path), in_process=True, draws=512,
                 params={"error_rate_parity": {"criterion": "equal_opportunity"}}).checks[0]
    assert c.verdict == "inconclusive" and "No group has labelled individuals" in c.message, c.message
