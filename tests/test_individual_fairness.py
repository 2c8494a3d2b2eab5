"""tv_stability on decision rules = individual fairness (issue 17): chances within L × the
scaled feature distance. Rules from the definition: a smooth randomized rule passes, a
deterministic cut-off (a jump) fails; per-column scales; no numeric feature → skipped."""
import numpy as np
import pandas as pd
import pytest

import fairaudit as fa
from fairaudit.errors import ParamError
from fairaudit.checks.tv_stability.individual_fairness import parse_scale


def people(n=100, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"sex": rng.choice(["F", "M"], n), "income": rng.normal(50, 10, n).round(2),
                         "debt": rng.uniform(0, 1, n).round(3)})


@fa.decider
def smooth(features, rng, size):          # slope 1/40 per unit of income: 0.25 per std (10), under L = 1
    p = np.clip(0.5 + (features["income"].to_numpy() - 50) / 40, 0.05, 0.95)
    return rng.random((size, len(p))) < p


@fa.decider
def cutoff(features, rng, size):          # a jump at 50: |Δπ| = 1 over any distance
    return np.tile(features["income"].to_numpy() > 50, (size, 1))


def audit(rule, path, seed=0, **params):
    return fa.audit(rule, checks=["tv_stability"], data=str(path), seed=seed, in_process=True, allow_skip=True,
                    params={"tv_stability": params} if params else None).checks[0]


def test_a_smooth_rule_passes_and_a_cutoff_fails_with_the_two_rows(tmp_path):
    """A pass needs every probe certified, the data neighbours included: with a slack δ = 0.1
    the smooth rule's neighbour pairs certify (|Δπ| ≈ 0.25·d ≪ d + δ) and it passes; at δ = 0
    its nearest neighbours (distances of a few hundredths) cannot be certified within 2,048
    draws, so it is inconclusive, never a pass on an undecided pair."""
    path = tmp_path / "people.csv"
    people().to_csv(path, index=False)
    ok = audit(smooth, path, delta=0.1)
    assert ok.verdict == "pass", ok.message
    assert ok.components["adversarial_steps"].ci[1] <= 1.0 and ok.components["data_neighbours"].ci[1] <= 1.0
    strict = audit(smooth, path, max_draws=2048)
    assert strict.verdict == "inconclusive", strict.message
    bad = audit(cutoff, path)
    assert bad.verdict == "fail" and bad.statistic.ci[0] > 1.0
    a, b = bad.evidence["counterexample"]["rows"]
    assert (a["income"] > 50) != (b["income"] > 50)
    # L large enough for the smooth rule's slope but a jump exceeds any L at a small enough distance
    assert audit(smooth, path, L=0.1).verdict == "fail"


@fa.decider
def jump_at_50(features, rng, size):     # p = 0.4 + 0.2·[income > 50]: a jump of 0.2 at any distance
    p = 0.4 + 0.2 * (features["income"].to_numpy() > 50)
    return rng.random((size, len(p))) < p


def test_a_jump_rule_is_never_passed_on_an_uncertified_neighbour_pair(tmp_path):
    """The issue's rule p = 0.4 + 0.2·[x > 50]: the adversarial steps rarely straddle the jump,
    and the neighbour pair that does (exact ratio 0.2 / d > L for d < 0.2) was left undecided
    and the rule passed. Over three seeds it now fails or is inconclusive, never passes."""
    path = tmp_path / "people.csv"
    people(60, 3).to_csv(path, index=False)
    verdicts = [audit(jump_at_50, path, seed=s, max_draws=2048).verdict for s in range(3)]
    assert "pass" not in verdicts, verdicts


def test_scales_are_per_column_and_validated(tmp_path):
    assert parse_scale("income=10, debt=0.5") == {"income": 10.0, "debt": 0.5}
    for bad in ("income", "income=0", "income=ten"):
        with pytest.raises(ValueError):
            parse_scale(bad)
    path = tmp_path / "people.csv"
    people(40).to_csv(path, index=False)
    with pytest.raises(ParamError):
        audit(smooth, path, scale="income=-1")
    c = audit(smooth, path, scale="income=100")
    assert c.evidence["scales"]["income"] == 100.0
    # measured in units of 100, a step of 0.25 is 25 income: the smooth rule's chance then moves by 0.6 > L·d
    assert c.verdict == "fail"


def test_without_numeric_features_it_is_skipped(tmp_path):
    path = tmp_path / "groups_only.csv"
    people(20)[["sex"]].to_csv(path, index=False)
    rule = fa.decider(lambda groups, rng: rng.random(len(groups)) < 0.5)
    assert audit(rule, path).verdict == "skipped"


@pytest.mark.slow
def test_false_fail_rate_and_power_over_seeds(tmp_path):
    path = tmp_path / "people.csv"
    people(40, 5).to_csv(path, index=False)
    seeds = range(12)
    fair = [audit(smooth, path, seed=s).verdict for s in seeds]
    unfair = [audit(cutoff, path, seed=s).verdict for s in seeds]
    assert sum(v == "fail" for v in fair) / len(seeds) <= 0.05
    assert all(v == "fail" for v in unfair)


def test_the_carried_sequences_take_each_looks_new_draws_only_and_cover_the_exact_ratios(tmp_path, monkeypatch):
    """At L = 0.25 the smooth rule's largest ratio is just under L (slope 1/40 per income
    unit: sd/40 ≈ 0.244 per step of one scale unit), too close to decide in 1024 draws, so
    the check looks after 256, 512 and 1024 draws: each of the five blocks of pairs (income
    ±, debt ±, data neighbours) is handed each look's new paired draws only, and the two
    components' intervals contain the largest ratios computed from the definition."""
    from fairaudit.stats import BettingCS
    rows = []
    update = BettingCS.update
    monkeypatch.setattr(BettingCS, "update", lambda self, x: rows.append(len(x)) or update(self, x))
    frame = people(50)                    # max_n = 50: the whole data, as is
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    c = audit(smooth, path, L=0.25, max_draws=1024)
    assert c.verdict == "inconclusive" and c.draws == 1024
    assert rows == [256] * 5 + [256] * 5 + [512] * 5
    income = frame["income"].to_numpy()
    p = lambda x: np.clip(0.5 + (x - 50) / 40, 0.05, 0.95)          # noqa: E731
    sd = income.std()
    steps = max(np.abs(p(income + s * 0.25 * sd) - p(income)).max() for s in (1, -1)) / 0.25
    X = frame[["income", "debt"]].to_numpy() / frame[["income", "debt"]].std(ddof=0).to_numpy()
    d = np.sqrt(((X[:, None] - X[None]) ** 2).sum(axis=2))
    d[d == 0] = np.inf
    j = np.argmin(d, axis=1)
    neighbours = (np.abs(p(income) - p(income[j])) / d[np.arange(len(X)), j]).max()
    for name, exact in (("adversarial_steps", steps), ("data_neighbours", neighbours)):
        lo, hi = c.components[name].ci
        assert lo <= exact <= hi, (name, lo, exact, hi)


def test_a_look_cut_short_by_the_budget_is_judged_on_the_paired_draws_only():
    """``--budget`` can stop a look part-way, leaving some inputs with fewer draws (or
    none): the pairs are judged on the draws every input has — draw j of the original and
    of a moved input under one generator — never on misaligned rows; with no paired draw at
    all the check is not decided within the budget (BudgetExhausted), not judged on nothing."""
    from fairaudit.errors import BudgetExhausted
    from fairaudit.checks.tv_stability.individual_fairness import PairChanges
    rng = np.random.default_rng(0)
    base = rng.random((300, 4)) < 0.5
    moved = [("income", 1, None), ("income", -1, None)]
    changes = PairChanges(4, moved, [(0, 1, 0.5)], 0.25, 1.0, 0.0, 0.95)
    # the moved inputs decide exactly as the original (a rule that ignores the move): every change is 0
    changes.update([base[:256], base[:256], base[:256]])
    comps, _ = changes.update([base[:300], base[:280], base[:256]])      # the budget cut this look short
    assert changes.seen == 256
    assert comps["adversarial_steps"].estimate <= 0 and comps["adversarial_steps"].ci[0] <= 0
    with pytest.raises(BudgetExhausted):
        PairChanges(4, moved, [], 0.25, 1.0, 0.0, 0.95).update([base[:10], None, base[:10]])
