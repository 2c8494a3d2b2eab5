"""anonymity on decision rules = counterfactual fairness (issue 17): swap the protected
attribute keeping the rest of each row fixed. Rules written from the definition: one that
ignores the attribute passes (at ≥ 1 − α over seeds), one that reads it — directly, or
through an exact copy of it — fails, with the two rows that differ only in the attribute."""
import numpy as np
import pandas as pd
import pytest

import fairaudit as fa
from fairaudit.counterfactual import counterfactuals, exact_copies
from fairaudit.instance import Instance


def people(n=120, seed=0):
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n)
    return pd.DataFrame({"sex": sex, "sex_code": (sex == "M").astype(int),     # an exact copy of sex
                         "income": rng.normal(50, 10, n).round(1)})


@fa.decider
def ignores_sex(features, rng, size):
    p = 1 / (1 + np.exp(-(features["income"].to_numpy() - 50) / 8))
    return rng.random((size, len(p))) < p


@fa.decider
def reads_sex(features, groups, rng, size):
    p = 1 / (1 + np.exp(-(features["income"].to_numpy() - 50) / 8))
    p = np.where(groups["sex"].to_numpy() == "M", np.minimum(p + 0.3, 1), p)
    return rng.random((size, len(p))) < p


@fa.decider
def reads_the_copy(features, rng, size):
    p = 1 / (1 + np.exp(-(features["income"].to_numpy() - 50) / 8))
    p = np.where(features["sex_code"].to_numpy() == 1, np.minimum(p + 0.3, 1), p)
    return rng.random((size, len(p))) < p


def audit(rule, path, seed=0, **kw):
    return fa.audit(rule, checks=["anonymity"], data=str(path), seed=seed, in_process=True, **kw).checks[0]


def test_exact_copies_are_swapped_with_the_attribute():
    frame = people(20)
    inst = Instance("d", groups=frame[["sex"]], features=frame[["sex_code", "income"]])
    assert set(exact_copies(inst, "sex")) == {"sex_code"}
    (_, what, cf), = counterfactuals(inst, ["sex"])
    assert (cf.groups["sex"] != frame["sex"]).all() and (cf.features["sex_code"] == 1 - frame["sex_code"]).all()
    assert (cf.features["income"] == frame["income"]).all() and "sex_code" in what


def test_rules_reading_the_attribute_fail_with_the_two_rows(tmp_path):
    path = tmp_path / "people.csv"
    people().to_csv(path, index=False)
    for rule in (reads_sex, reads_the_copy):
        c = audit(rule, path)
        assert c.verdict == "fail", c.message
        a, b = c.evidence["counterexample"]["rows"]
        assert a["sex"] != b["sex"] and a["income"] == b["income"]
        assert {k for k in a if a[k] != b[k]} <= {"sex", "sex_code"}
        shrunk = c.evidence["counterexample"]["shrunk"]       # Hypothesis: the row moved toward the medians
        a, b = shrunk["rows"]
        assert {k for k in a if a[k] != b[k]} <= {"sex", "sex_code"} and a["sex"] != b["sex"]
        lo, hi = shrunk["change"]["ci"]
        assert lo > 0.05 or hi < -0.05, shrunk
    assert audit(ignores_sex, path).verdict == "pass"


def test_a_three_valued_attribute_is_shifted_through_every_value(tmp_path):
    frame = people(60)
    frame["region"] = np.random.default_rng(1).choice(["a", "b", "c"], 60)
    inst = Instance("d", groups=frame[["sex", "region"]], features=frame[["income"]])
    cfs = counterfactuals(inst, ["region"])
    assert len(cfs) == 2
    assert all((cf.groups["region"] != frame["region"]).all() for _, _, cf in cfs)


@pytest.mark.slow
def test_false_fail_rate_and_power_over_seeds(tmp_path):
    path = tmp_path / "people.csv"
    people(60, 3).to_csv(path, index=False)
    seeds = range(16)
    fair = [audit(ignores_sex, path, seed=s, draws=1024).verdict for s in seeds]
    unfair = [audit(reads_the_copy, path, seed=s, draws=1024).verdict for s in seeds]
    assert sum(v == "fail" for v in fair) / len(seeds) <= 0.05
    assert all(v == "fail" for v in unfair)


def test_the_carried_sequences_take_each_looks_new_draws_only_and_cover_the_exact_zero(tmp_path, monkeypatch):
    """The counterfactual test's paired sequences are carried across its looks: a rule
    that ignores the attribute is decided after two looks (256 then 512 draws) and each
    look hands the sequence its 256 new paired draws only. Its paired differences are
    exactly 0 (common random numbers), so at every look every individual's interval —
    0.5 on the [0, 1] scale the sequence bets on — contains it."""
    from fairaudit.stats import BettingCS
    looks = []
    update = BettingCS.update

    def recorded(self, x):
        lo, hi = update(self, x)
        looks.append((len(x), bool(np.all((lo <= 0.5) & (0.5 <= hi)))))
        return lo, hi
    monkeypatch.setattr(BettingCS, "update", recorded)
    path = tmp_path / "people.csv"
    people().to_csv(path, index=False)
    c = audit(ignores_sex, path)
    assert c.verdict == "pass" and c.draws == 512
    assert looks == [(256, True), (256, True)]


def test_a_look_cut_short_by_the_budget_is_judged_on_the_paired_draws_only():
    """A look the budget stopped part-way leaves the counterfactual inputs with fewer draws
    than the original: the shifts use the draws every input has (paired under common random
    numbers), so a rule that ignores the attribute still shows exactly 0 change."""
    from fairaudit.counterfactual import PairedShifts
    from fairaudit.errors import BudgetExhausted
    base = np.random.default_rng(0).random((512, 5)) < 0.5
    shifts = PairedShifts(1, 5, 0.95)
    shifts.update([base[:256], base[:256]])
    est, lo, hi = shifts.update([base[:512], base[:300]])
    assert shifts.n == 300 and np.all(est == 0) and np.all((lo <= 0) & (0 <= hi))
    with pytest.raises(BudgetExhausted):
        PairedShifts(1, 5, 0.95).update([base[:10], None])
