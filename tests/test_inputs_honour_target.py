"""Generated and searched inputs have the data's shape and the arguments the allocator
takes (issue: tv_stability's search built m ∈ {2, 3} matrices whatever ``--data`` said,
and never passed ``groups``/``features``, so a five-label ranker or one that needs the
groups ended as ``error`` and its certified probes were lost)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import fairaudit as fa
from fairaudit.engine import audit


def _ua_rank(P, rng):
    """The uncertainty-aware ranking (seed 002 Def 8): draw each label, sort, random ties."""
    u = rng.random(len(P))
    labels = (u[:, None] > np.cumsum(P, axis=1)).sum(axis=1)
    return np.lexsort((rng.random(len(P)), -labels))


@fa.ranker
def five_label_ranker(predictions, rng):
    P = np.asarray(predictions, float)
    if P.shape[1] != 5:
        raise ValueError(f"written for five labels, got {P.shape[1]}")
    return _ua_rank(P, rng)


@fa.ranker
def needs_groups(predictions, groups, rng):
    P = np.asarray(predictions, float)
    if len(groups) != len(P):
        raise ValueError("one group row per individual expected")
    _ = groups["sex"].to_numpy()            # a KeyError without the data's columns
    return _ua_rank(P, rng)


@fa.ranker
def optional_groups(predictions, rng, groups=None):
    if groups is None:
        raise RuntimeError("audited without the groups it reads")
    return _ua_rank(np.asarray(predictions, float), rng)


@pytest.fixture(scope="module")
def five_label_data(tmp_path_factory):
    rng = np.random.default_rng(5)
    P = rng.dirichlet(np.ones(5), size=10).round(4)
    P[:, -1] = 1 - P[:, :-1].sum(axis=1)
    df = pd.DataFrame(P, columns=[f"p_{j}" for j in range(1, 6)])
    df.insert(0, "sex", np.where(np.arange(10) % 2, "F", "M"))
    path = tmp_path_factory.mktemp("data") / "five_labels.csv"
    df.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("ranker", [five_label_ranker, pytest.param(needs_groups, marks=pytest.mark.slow),
                                    pytest.param(optional_groups, marks=pytest.mark.slow)],
                         ids=["five-labels", "needs-groups", "optional-groups"])
def test_tv_stability_search_uses_the_data_shape_and_arguments(ranker, five_label_data):
    res = audit(ranker, checks=["tv_stability"], data=five_label_data,
                params={"tv_stability": {"search_examples": 20, "probes": 4, "bisections": 2,
                                                 "screen_draws": 128, "max_draws": 4000}})
    (r,) = res.checks
    assert r.verdict != "error", r.message
    # the UA ranking is 1-stable: nothing may be certified against it, and probes were certified
    assert r.verdict in ("pass", "inconclusive"), r.message
    probes = r.tables["probes"]
    assert len(probes) >= 6 and set(probes["source"]) >= {"perturbation", "bisection", "hypothesis"}
    assert (probes["ratio_lo"] <= 1.0).all()


@fa.selector(k=40)
def proportional_40(scores, k, rng):
    """A Broome lottery (weights in proportion to claims) that always picks 40: written from
    the definition, fair wherever 40 people can be picked."""
    w = np.asarray(scores, float) + 1e-9
    return rng.choice(len(w), size=k, replace=False, p=w / w.sum())


def test_a_declared_k_larger_than_a_generated_input_skips_with_the_reason():
    """Generated inputs honour the k the allocator declares: where a check's built-in input
    has fewer than k people the check is skipped saying so (and what would enable it), never
    an error blamed on fairaudit; where the inputs are large enough it runs."""
    res = audit(proportional_40, checks=["ex_interim", "tv_stability", "broome"], draws=256, seed=0)
    by = {c.id: c for c in res.checks}
    for cid in ("ex_interim", "tv_stability"):      # pools of 30 people, probes of up to 8
        assert by[cid].verdict == "skipped", (cid, by[cid].verdict, by[cid].message)
        assert "selects k=40" in by[cid].message and "give --data with at least 40 rows" in by[cid].message
    assert by["broome"].verdict in ("pass", "inconclusive"), by["broome"].message   # n = 1000 ≥ 40: audited
    assert all("fairaudit bug" not in c.message for c in res.checks)
