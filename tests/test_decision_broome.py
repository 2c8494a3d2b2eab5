"""broome on per-person decision rules (issue 17): BF.1 as "raising one's claim never
lowers one's chance" (refutation only), BF.2 as "every positive claim has at least
min_chance"; rules written from the definition."""
import numpy as np
import pandas as pd
import pytest

import fairaudit as fa


@fa.decider
def lottery(scores, rng, size):              # chance rises with the claim, never below 0.2
    return rng.random((size, len(scores))) < 0.2 + 0.6 * scores


@fa.decider
def cutoff(scores, rng, size):               # a deterministic cut: claims below 0.5 excluded
    return np.tile(scores > 0.5, (size, 1))


@fa.decider
def reverse(scores, rng, size):              # chance falls as the claim rises
    return rng.random((size, len(scores))) < 0.9 - 0.6 * scores


@pytest.fixture
def claims(tmp_path):
    rng = np.random.default_rng(4)
    path = tmp_path / "claims.csv"
    pd.DataFrame({"score": rng.uniform(0.05, 1, 120).round(3), "sex": rng.choice(["F", "M"], 120)}).to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("rule, verdict, statistic", [(lottery, "pass", "bf2_min_chance"),
                                                     (cutoff, "fail", "bf2_min_chance"),
                                                     (reverse, "fail", "bf1_max_drop")])
def test_broome_on_decision_rules(claims, rule, verdict, statistic):
    c = fa.audit(rule, checks=["broome"], data=claims, in_process=True).checks[0]
    assert c.verdict == verdict and c.statistic.name == statistic, c.message
    assert "per-person decision rule" in c.definition


def test_without_a_claim_column_broome_is_skipped(tmp_path):
    path = tmp_path / "noclaim.csv"
    pd.DataFrame({"income": [1.0, 2.0, 3.0], "sex": ["F", "M", "F"]}).to_csv(path, index=False)
    c = fa.audit(lottery, checks=["broome"], data=str(path), in_process=True, allow_skip=True).checks[0]
    assert c.verdict == "skipped" and "no score (claim) column" in c.message
