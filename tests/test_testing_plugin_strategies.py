"""The Hypothesis strategies exported for users' property tests (fairaudit.strategies,
the issue-9 half: claim_vectors, generated_selection_instances, assignment_instances,
populations)."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairaudit.data import population_from_frame
from fairaudit.strategies import assignment_instances, claim_vectors, generated_selection_instances, populations
from fairaudit.run.targets import validate_outcomes

FAST = settings(max_examples=40, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(claim_vectors(min_n=3, max_n=20, allow_ties=False))
def test_claim_vectors(c):
    assert 3 <= len(c) <= 20 and np.all((c >= 0) & (c <= 1)) and len(np.unique(c)) == len(c)


@FAST
@given(generated_selection_instances(min_n=10, max_n=80, k_fraction=(0.1, 0.5)))
def test_generated_instances_are_valid_and_replayable(inst):
    from fairaudit.data import generate_claims
    assert 10 <= inst.n <= 80 and 1 <= inst.k < inst.n
    assert np.all(inst.scores >= 0) and np.all(inst.scores <= 1)
    dist, rest = inst.label.split(" claims, ")
    seed = int(inst.label.rsplit("claim seed ", 1)[1])
    assert np.array_equal(generate_claims(dist, inst.n, np.random.default_rng(seed)), inst.scores)


@FAST
@given(assignment_instances(max_arrivals=8, max_locations=3), st.integers(0, 2**31 - 1))
def test_assignment_instances_accept_a_valid_assignment(inst, seed):
    """A greedy assignment within capacities passes fairaudit's own output validation."""
    T, N = inst.scores.shape
    assert inst.groups.shape == (T,) and inst.capacities.shape == (N,) and inst.capacities.sum() >= 1
    rng = np.random.default_rng(seed)
    left = inst.capacities.copy()
    out = np.full(T, -1)
    for t in range(T):
        open_ = np.flatnonzero(left > 0)
        if open_.size:
            out[t] = rng.choice(open_)
            left[out[t]] -= 1
    assert np.array_equal(validate_outcomes("assignment", out[None, :], inst, 1, None)[0], out)


@FAST
@given(populations(group_values={"sex": ["F", "M"], "age": ["young", "old", "mid"]}, with_labels=True))
def test_populations_load_like_a_data_file(df):
    pop = population_from_frame(df)
    assert pop.score_col == "score" and pop.label_col == "label"
    assert sorted(pop.group_cols) == ["age", "sex"]
    assert set(df["age"]) == {"young", "old", "mid"}
