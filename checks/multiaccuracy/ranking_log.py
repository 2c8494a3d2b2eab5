"""Ranking logs as cells: what ``multiaccuracy`` needs of a decisions log, aggregated where
the log is (DuckDB; a Dask or Spark DataFrame's own engine), never its rows (issue 15).

Every statistic multiaccuracy computes on a ranking log is a sum over rows of a function
of the row's group values, label, predictions and position: the sets' sizes and label
counts, their mean predictions (α̂), the position counts of the logged rankings, and the
Poisson bootstrap of the reference band. Rows that agree on (group values, label,
position, whether their ranking has the modal size) are interchangeable in all of them,
so one query grouping by those keys — a row count and the sum of each prediction column
per cell — gives the same sizes, counts and means as the rows. The bootstrap gives each
cell a Poisson(count) weight, which is the distribution of a sum of that many Poisson(1)
row weights: the same bootstrap in distribution, drawn from other random numbers than the
row-level one (so its band differs from the frame path's within Monte Carlo error).

On a Dask or Spark log the same cells are grouped on that engine (``LazyLogTable.cells``
with the decision sizes joined back): a row's place in its ranking is ``position − 1``,
which is the SQL path's ``row_number() − 1`` because validation has made the positions of
each decision a permutation of 1..n.

The multicalibration table bins each row's normalised prediction: with ``bin_width`` each
label's bin is one more key of the cells (:func:`probability_bins`, the rows' own
arithmetic), so a cell's rows share their bins and the table's counts are exact.

Not covered (the caller reads the frame instead): user-defined groups (expressions and
callables may name any column, and see the rows' native values), and multicalibration
with more than ``MAX_BINNED_LABELS`` labels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fairaudit.logs.duckdb import LogTable, q
from fairaudit.logs.lazy import collect as _collect


@dataclass(frozen=True)
class RankingCells:
    """One row per cell: ``frame`` holds the group columns and ``label`` (as the log's
    canonical strings), ``__pos`` (0-based position in a kept ranking, −1 elsewhere);
    ``weights`` the rows per cell; ``pred_sums`` (C, m) the sums of the prediction
    columns; ``n`` the modal ranking size, ``episodes`` the rankings of that size,
    ``dropped`` the rows of other-sized rankings."""

    frame: pd.DataFrame
    weights: np.ndarray
    pred_sums: np.ndarray
    n: int
    episodes: int
    dropped: int
    bins: np.ndarray | None = None      # (C, m) multicalibration bin of each label's prediction, when asked


MAX_BINNED_LABELS = 7       # P's row sums are left-to-right below 8 columns in NumPy, as in SQL


def probability_bins(value_cols: list[str], lam: float):
    """(per label of P: a function of a column expression → its bin expression) — the
    bin ``min(⌊(p_ℓ / Σp) / λ⌋, ⌈1/λ⌉ − 1)`` of each row's normalised prediction, written
    with the operations :func:`fairaudit.inputs.predictions_and_labels` and
    ``multicalibration_cells`` apply (sum left to right, divide, divide by λ, truncate), so
    SQL and the engines give every row the bin the rows' reading gives it.
    Returns ``(columns of P as pairs (column, complement?), nb)``."""
    import math
    nb = max(1, int(math.ceil(1.0 / lam - 1e-9)))
    if len(value_cols) >= 2:
        return [(c, False) for c in value_cols], nb
    return [(value_cols[0], True), (value_cols[0], False)], nb


def ranking_cells(table: LogTable, group_cols: list[str], value_cols: list[str], label_col: str,
                  bin_width: float | None = None) -> RankingCells:
    """The cells of a ranking log (see the module docstring). ``value_cols`` are the
    prediction columns summed per cell, in label order (or the one score column of binary
    labels). ``bin_width``: also key the cells by each label's multicalibration bin
    (:func:`probability_bins`; at most ``MAX_BINNED_LABELS`` labels), so every row of a
    cell shares its bins."""
    gq = [q(g) for g in group_cols]
    lazy = table.on_engine      # a Dask or Spark log: the same sums on its engine (fairaudit.logs.lazy)
    sizes = table.ranking_sizes()
    # the ranking size held by most *rows* (ties: the smaller), as the frame path's np.unique
    n = int(max(sizes, key=lambda r: (r[1], -r[0]))[0])
    kept_rows = int(next(r[1] for r in sizes if int(r[0]) == n))
    dropped = int(sum(r[1] for r in sizes)) - kept_rows
    label = f"CAST({q(label_col)} AS VARCHAR) AS {q(label_col)}"
    binned, nb = probability_bins(value_cols, bin_width) if bin_width else ([], 0)
    bkeys = [f"__b{j}" for j in range(len(binned))]
    if lazy:
        from fairaudit.logs.lazy import kept_position
        derived = {"__pos": kept_position(n), **dict(zip(bkeys, probability_bin_exprs(binned, bin_width, nb)))}
        rel = table.cells(list(group_cols) + [label_col, "__pos"] + bkeys, sums=value_cols, derived=derived, sizes=True)
        sums = ", ".join(q("__s_" + c) for c in value_cols)
        frame = rel.query("c", f"SELECT {', '.join(gq + [label])}, __pos, {''.join(b + ', ' for b in bkeys)}"
                               f"n AS __w, {sums} FROM c ORDER BY ALL").df()
    else:
        sums = ", ".join(f"sum(CAST({q(c)} AS DOUBLE)) AS {q('__s_' + c)}" for c in value_cols)
        x = {c: f"CAST({q(c)} AS DOUBLE)" for c in value_cols}
        total = " + ".join(x[c] for c in value_cols) if len(value_cols) >= 2 else f"(1 - {x[value_cols[0]]}) + {x[value_cols[0]]}"
        bsql = [f"least(CAST(floor((({'1 - ' if comp else ''}{x[c]}) / ({total})) / {bin_width!r}) AS BIGINT), {nb - 1}) "
                f"AS {b}" for (c, comp), b in zip(binned, bkeys)]
        frame = table.df(
            f"WITH r AS (SELECT *, row_number() OVER (PARTITION BY decision_id ORDER BY position) - 1 AS __p, "
            f"count(*) OVER (PARTITION BY decision_id) AS __size FROM log) "
            f"SELECT {', '.join(gq + [label])}, CASE WHEN __size = {n} THEN __p ELSE -1 END AS __pos, "
            f"{''.join(b + ', ' for b in bsql)}count(*) AS __w, {sums} FROM r GROUP BY ALL ORDER BY ALL")
    weights = frame.pop("__w").to_numpy(dtype=float)
    pred_sums = np.column_stack([frame.pop("__s_" + c).to_numpy(dtype=float) for c in value_cols])
    bins = np.column_stack([frame.pop(b).to_numpy(dtype=np.int64) for b in bkeys]) if bkeys else None
    return RankingCells(frame, weights, pred_sums, n, kept_rows // n, dropped, bins)


def position_counts(cells: RankingCells, masks: np.ndarray) -> np.ndarray:
    """(G, n): in how many kept rankings the person at each position belongs to each set."""
    pos = cells.frame["__pos"].to_numpy()
    kept = pos >= 0
    at = np.zeros((len(pos), cells.n))
    at[np.flatnonzero(kept), pos[kept]] = cells.weights[kept]
    return masks.astype(float) @ at


def cells_valid(log) -> bool:
    """Whether the cells give exactly what the rows would: a position column, and every
    row's predictions already probabilities (columns summing to 1 within 1e-9 and none
    negative, or one score column in [0, 1]) with a label. Otherwise the caller reads the
    rows, which normalise them row by row or name the offending row."""
    cols = list(log.pred_cols) or (["score"] if "score" in log.columns else [])
    if not cols or "position" not in log.columns or "label" not in log.columns:
        return False
    if log.table.on_engine:
        return prediction_rows_invalid(log.table, cols, "label") == 0
    vals = [f"CAST({q(c)} AS DOUBLE)" for c in cols]
    if len(vals) >= 2:
        good = f"abs({' + '.join(vals)} - 1) <= 1e-9 AND least({', '.join(vals)}) >= 0"
    else:
        good = f"{vals[0]} BETWEEN 0 AND 1"
    bad = log.table.rows(f"SELECT count(*) FROM log WHERE coalesce(NOT ({good} AND {q('label')} IS NOT NULL), true)")
    return int(bad[0][0]) == 0


# -- the narwhals twins of the SQL above, for a log held by Dask or Spark ---------------

def prediction_rows_invalid(table, cols: list[str], label: str) -> int:
    """Rows whose predictions are not probabilities (columns summing to 1 within 1e-9 and
    none negative, or one column in [0, 1]) or whose ``label`` is missing: the narwhals
    twin of :func:`cells_valid`'s count."""
    from functools import reduce
    from operator import add, and_

    import narwhals as nw
    vals = [nw.col(c).cast(nw.Float64) for c in cols]
    if len(vals) >= 2:
        good = ((reduce(add, vals) - 1).abs() <= 1e-9) & reduce(and_, [v >= 0 for v in vals])
    else:
        good = (vals[0] >= 0) & (vals[0] <= 1)
    bad = ~(good & ~nw.col(label).is_null())
    lf = table.lf.with_columns(__bad=bad.fill_null(True).cast(nw.Int64))
    return int(_collect(lf.select(nw.col("__bad").sum())).column(0)[0].as_py() or 0)


def probability_bin_exprs(binned, lam: float, nb: int) -> list:
    """The narwhals twins of ``ranking_log.ranking_cells``' multicalibration bins (see :func:`probability_bins`): truncation is the floor of these
    non-negative numbers."""
    from functools import reduce
    from operator import add

    import narwhals as nw
    if not binned:
        return []
    x = {c: nw.col(c).cast(nw.Float64) for c, _ in binned}
    cols = list(dict.fromkeys(c for c, _ in binned))
    total = reduce(add, [x[c] for c in cols]) if len(cols) >= 2 else (1 - x[cols[0]]) + x[cols[0]]
    return [((((1 - x[c]) if comp else x[c]) / total) / lam).cast(nw.Int64).clip(upper_bound=nb - 1)
            for c, comp in binned]
