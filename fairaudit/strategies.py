"""Hypothesis strategies for fairaudit's inputs and perturbations (public API).

Use them in your own property tests, as fairaudit's checks do::

    from hypothesis import given
    from fairaudit.strategies import selection_instances, permutations_for

    @given(selection_instances(max_n=6))
    def test_my_allocator(inst): ...

Every strategy shrinks toward *small* and *tied* inputs: few individuals, k = 1, all
claims equal to the first value of ``values``, the first group value for everyone,
the identity permutation. A counterexample that Hypothesis shrinks is therefore a
handful of individuals with as many ties as the violation allows.

Several engineers export strategies from this module; each function is small,
self-contained and documented. (Anonymity strategies: :func:`claims`,
:func:`selection_instances`, :func:`ranking_instances`, :func:`permutations_for`,
:func:`relabellings`.)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from hypothesis import strategies as st

from .instance import Instance

#: Default claim values: a small set so that ties are common; shrinking goes to the first.
CLAIM_VALUES: tuple[float, ...] = (0.5, 0.2, 0.8, 1.0)
#: Default prediction rows (m = 2 labels, label m the best) for ranking instances.
PREDICTION_ROWS_2: tuple[tuple[float, ...], ...] = ((0.5, 0.5), (0.8, 0.2), (0.2, 0.8), (0.0, 1.0))


#: the public strategies (anything else here is internal)
__all__ = ["claims", "selection_instances", "ranking_instances", "permutations_for", "relabellings", "claim_vectors",
           "generated_selection_instances", "assignment_instances", "populations"]


def claims(n: int, values: Sequence[float] = CLAIM_VALUES) -> st.SearchStrategy[np.ndarray]:
    """Claim vectors of length ``n`` drawn from ``values`` (shrinks to all equal ``values[0]``)."""
    return st.lists(st.sampled_from(list(values)), min_size=n, max_size=n).map(
        lambda v: np.asarray(v, dtype=float))


def _frame(columns: dict[str, list]):
    import pandas as pd
    return pd.DataFrame(columns)


@st.composite
def selection_instances(draw, min_n: int = 2, max_n: int = 8, k: int | None = None,
                        values: Sequence[float] = CLAIM_VALUES,
                        group_values: dict[str, Sequence[str]] | None = None,
                        feature_values: dict[str, Sequence[float]] | None = None,
                        label: str = "hypothesis selection instance") -> Instance:
    """Selection instances: ``n`` in ``[min_n, max_n]`` (raised to ``k + 1`` when ``k``
    is fixed), claims from ``values``, ``k`` in ``[1, n − 1]`` unless fixed.

    ``group_values`` ({column: categories}) adds a ``groups`` DataFrame, each row's value
    drawn from the column's categories (shrinks to the first); ``feature_values`` likewise
    adds numeric ``features``."""
    lo = max(min_n, (k + 1) if k else 2)
    hi = max(max_n, lo)
    n = draw(st.integers(lo, hi))
    c = draw(claims(n, values))
    kk = k if k else draw(st.integers(1, n - 1))
    groups = features = None
    if group_values:
        groups = _frame({col: draw(st.lists(st.sampled_from(list(vals)), min_size=n, max_size=n))
                         for col, vals in group_values.items()})
    if feature_values:
        features = _frame({col: draw(st.lists(st.sampled_from(list(vals)), min_size=n, max_size=n))
                           for col, vals in feature_values.items()})
    return Instance(label, scores=c, k=int(kk), groups=groups, features=features)


@st.composite
def ranking_instances(draw, min_n: int = 2, max_n: int = 6,
                      rows: Sequence[Sequence[float]] = PREDICTION_ROWS_2,
                      group_values: dict[str, Sequence[str]] | None = None,
                      feature_values: dict[str, Sequence[float]] | None = None,
                      label: str = "hypothesis ranking instance") -> Instance:
    """Ranking instances: ``n`` in ``[min_n, max_n]`` prediction rows drawn from ``rows``
    (each a distribution over m labels, label m the best; shrinks to all rows equal to
    ``rows[0]``). ``scores`` is set to the expected label scaled to [0, 1], for rankers
    that take scores. Groups and features as in :func:`selection_instances`."""
    n = draw(st.integers(max(2, min_n), max(max_n, min_n, 2)))
    idx = draw(st.lists(st.integers(0, len(rows) - 1), min_size=n, max_size=n))
    P = np.asarray([rows[i] for i in idx], dtype=float)
    m = P.shape[1]
    scores = P @ np.arange(m) / max(m - 1, 1)
    groups = features = None
    if group_values:
        groups = _frame({col: draw(st.lists(st.sampled_from(list(vals)), min_size=n, max_size=n))
                         for col, vals in group_values.items()})
    if feature_values:
        features = _frame({col: draw(st.lists(st.sampled_from(list(vals)), min_size=n, max_size=n))
                           for col, vals in feature_values.items()})
    return Instance(label, scores=scores, predictions=P, groups=groups, features=features)


def permutations_for(n: int) -> st.SearchStrategy[list[int]]:
    """Permutations of ``range(n)`` (``perm[j]`` = the old index placed at position j);
    shrinks toward the identity."""
    return st.permutations(list(range(n)))


@st.composite
def relabellings(draw, instances: st.SearchStrategy[Instance], swap: bool = False) -> dict:
    """An instance with a relabelling to compare it against, as a dict:

    * ``{"relation": "permute", "instance": x, "perm": p}`` — list the individuals in the
      order ``p`` (anonymity: outcomes must follow the individuals);
    * with ``swap=True`` also ``{"relation": "swap", "instance": x, "pair": (i, j)}`` —
      individuals ``i`` and ``j`` are given equal claims (and equal prediction rows);
      the caller then exchanges their protected attributes (group rows, or protected
      feature columns) — the counterfactual of black-box fairness testers: each one's
      chances must not change. Other features are left as drawn.
    """
    inst = draw(instances)
    n = inst.n
    relation = draw(st.sampled_from(["permute", "swap"])) if swap and inst.groups is not None else "permute"
    if relation == "permute":
        return {"relation": "permute", "instance": inst, "perm": draw(permutations_for(n))}
    i = draw(st.integers(0, n - 2))
    j = draw(st.integers(i + 1, n - 1))
    ch = {}
    if inst.scores is not None:
        s = np.array(inst.scores, dtype=float)
        s[j] = s[i]
        ch["scores"] = s
    if inst.predictions is not None:
        P = np.array(inst.predictions, dtype=float)
        P[j] = P[i]
        ch["predictions"] = P
    return {"relation": "swap", "instance": inst.replace(**ch), "pair": (int(i), int(j))}


# ---------------------------------------------------------------------------
# Strategies for users' own property tests (the pytest plugin's half; issue 9):
# realistic continuous claims, Jain, Creel and Wilson's claim distributions, assignment instances
# and population tables like a --data file.
# ---------------------------------------------------------------------------

def claim_vectors(min_n: int = 2, max_n: int = 50, min_value: float = 0.0, max_value: float = 1.0,
                  allow_ties: bool = True) -> st.SearchStrategy[np.ndarray]:
    """Continuous claim vectors (floats in ``[min_value, max_value]``, length in
    ``[min_n, max_n]``); ``allow_ties=False`` makes all claims distinct. Shrinks toward
    short vectors of ``min_value``."""
    elems = st.floats(min_value, max_value, allow_nan=False, allow_infinity=False)
    return st.lists(elems, min_size=min_n, max_size=max_n, unique=not allow_ties).map(
        lambda v: np.asarray(v, dtype=float))


@st.composite
def generated_selection_instances(draw, distributions: Sequence[str] | None = None, min_n: int = 10,
                                  max_n: int = 200, k_fraction: tuple[float, float] = (0.05, 0.5)) -> Instance:
    """Selection instances whose claims come from Jain, Creel and Wilson's simulation distributions
    (:func:`fairaudit.data.generate_claims`: uniform, truncated normal, inverted normal,
    Pareto, inverted Pareto), with ``n`` in ``[min_n, max_n]`` and ``k/n`` in
    ``k_fraction``. The claims are generated from a Hypothesis-drawn seed, so a failing
    example replays exactly; the label names distribution, n, k and that seed."""
    from .data import CLAIM_DISTRIBUTIONS, generate_claims
    dist = draw(st.sampled_from(list(distributions or CLAIM_DISTRIBUTIONS)))
    n = draw(st.integers(min_n, max_n))
    lo = max(1, int(np.ceil(k_fraction[0] * n)))
    hi = max(lo, min(n - 1, int(np.floor(k_fraction[1] * n))))
    k = draw(st.integers(lo, hi))
    seed = draw(st.integers(0, 2**32 - 1))
    c = generate_claims(dist, n, np.random.default_rng(seed))
    return Instance(f"{dist} claims, n={n}, k={k}, claim seed {seed}", scores=c, k=int(k))


@st.composite
def assignment_instances(draw, min_arrivals: int = 1, max_arrivals: int = 12, min_locations: int = 1,
                         max_locations: int = 4, n_groups: int = 2, max_capacity: int = 4,
                         label: str = "hypothesis assignment instance") -> Instance:
    """Online-assignment instances (SPEC §0, Freund et al.): ``T`` arrivals with score rows
    ``w_t ∈ [0, 1]^N``, a group ``g_t ∈ {0, …, n_groups−1}`` each, and integer
    capacities ``c_l ∈ [0, max_capacity]`` (each at least 1 in total so something can
    be assigned). Shrinks toward one arrival, one location, group 0, scores 0."""
    T = draw(st.integers(min_arrivals, max_arrivals))
    N = draw(st.integers(min_locations, max_locations))
    w = draw(st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=T * N, max_size=T * N))
    g = draw(st.lists(st.integers(0, max(0, n_groups - 1)), min_size=T, max_size=T))
    cap = draw(st.lists(st.integers(0, max_capacity), min_size=N, max_size=N))
    cap = np.asarray(cap, dtype=np.int64)
    if cap.sum() == 0:
        cap[0] = 1
    return Instance(label, scores=np.asarray(w, dtype=float).reshape(T, N), groups=np.asarray(g, dtype=np.int64),
                    capacities=cap)


@st.composite
def populations(draw, min_n: int = 4, max_n: int = 60,
                group_values: dict[str, Sequence[str]] | None = None, with_labels: bool = False):
    """Population tables like a ``--data`` file: a pandas DataFrame with ``id``,
    ``score`` (floats in [0, 1]), one column per entry of ``group_values`` (default
    ``{"group": ["a", "b"]}``; every category present at least once when ``n`` allows)
    and, with ``with_labels``, a 0/1 ``label``. Pass it as ``data=`` to
    :func:`fairaudit.testing.assert_fair`."""
    import pandas as pd
    group_values = group_values or {"group": ["a", "b"]}
    need = max(len(v) for v in group_values.values())
    n = draw(st.integers(max(min_n, need), max(max_n, min_n, need)))
    cols: dict[str, list] = {"id": list(range(n)),
                             "score": draw(st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=n, max_size=n))}
    for col, vals in group_values.items():
        vals = list(vals)
        rest = draw(st.lists(st.sampled_from(vals), min_size=n - len(vals), max_size=n - len(vals)))
        cols[col] = vals + rest
    if with_labels:
        cols["label"] = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    return pd.DataFrame(cols)
