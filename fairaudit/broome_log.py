"""The Broome lottery's yardstick on a decisions log at scale: every decision event's
inclusion chances (``broome_lottery.broome_reference``) solved for all events at once,
from the three columns the comparison needs, read from the log engine.

``broome_reference`` finds, per event, λ with Σ_i (1 − exp(−λ c_i)) = k by doubling and
100 bisection steps; here the same steps run on every event together (one vector of λ,
sums per event by a row-wise reduction when the events have equal size — NumPy's
pairwise sum, as in the per-event code — else ``np.add.reduceat``), so the chances equal
the per-event ones up to float rounding of the sums, and the cost is ~100 vectorised
passes over the score column instead of one Python call per event.
"""
from __future__ import annotations

import numpy as np

from .log_engine import LogTable


def event_arrays(table: LogTable):
    """``(claims, selected, sizes, ks)``: the score and selected columns with the rows of
    each decision event together (events in ``decision_id`` order), each event's row count
    and number selected."""
    cols = table.sql("SELECT score, selected FROM log ORDER BY decision_id").fetchnumpy()
    per = table.sql("SELECT count(*) AS n, sum(selected) AS k FROM log GROUP BY decision_id "
                    "ORDER BY decision_id").fetchnumpy()
    return (np.asarray(cols["score"], dtype=float), np.asarray(cols["selected"], dtype=np.int64),
            np.asarray(per["n"], dtype=np.int64), np.asarray(per["k"], dtype=float))


def batched_broome_reference(claims: np.ndarray, sizes: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Per row, the Broome lottery's inclusion chance within its event (rows grouped by
    event, ``sizes`` rows each, ``ks`` selected); 0 in events that select nobody."""
    c = np.asarray(claims, dtype=float)
    sizes = np.asarray(sizes, dtype=np.int64)
    E = len(sizes)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    square = E > 0 and (sizes == sizes[0]).all()
    C = c.reshape(E, int(sizes[0])) if square else None

    def seg_sum(v):
        return v.reshape(E, -1).sum(axis=1) if square else np.add.reduceat(v, starts)

    def seg_max(v):
        return v.reshape(E, -1).max(axis=1) if square else np.maximum.reduceat(v, starts)

    def rep(v):
        return np.repeat(v, sizes)

    def S(lam):
        if square:
            return (-np.expm1(-lam[:, None] * C)).sum(axis=1)
        return seg_sum(-np.expm1(-rep(lam) * c))

    npos = seg_sum((c > 0).astype(float))
    cmax = seg_max(c)
    k = np.asarray(ks, dtype=float)
    lottery = (k > 0) & (npos > k)
    lo, hi = np.zeros(E), np.ones(E)
    growing = lottery.copy()
    cap = 1e12 / np.maximum(cmax, 1e-300)
    while growing.any():
        short = growing & (S(hi) < k)
        hi = np.where(short, hi * 2.0, hi)
        growing = short & ~(hi > cap)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        below = S(mid) < k
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    lam = 0.5 * (lo + hi)
    ref = -np.expm1(-rep(lam) * c)
    # events that are not lotteries: the positive claims all selected (or nobody)
    certain = rep(~lottery)
    ref[certain] = np.where(rep(k > 0)[certain], (c[certain] > 0).astype(float), 0.0)
    return ref


def same_pool(table: LogTable) -> bool:
    """Whether every decision event lists the same individuals with the same scores
    (each event is then a draw of one allocator on one pool): one fingerprint per event."""
    if "individual_id" not in table.columns:
        return False
    n, distinct = table.rows(
        "SELECT count(*), count(DISTINCT fp) FROM (SELECT decision_id, string_agg(CAST(individual_id AS VARCHAR) "
        "|| chr(31) || CAST(score AS VARCHAR), chr(30) ORDER BY CAST(individual_id AS VARCHAR), score) AS fp "
        "FROM log GROUP BY decision_id)")[0]
    return n > 1 and distinct == 1
