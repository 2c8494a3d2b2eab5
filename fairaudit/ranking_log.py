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

Not covered (the caller reads the frame instead): user-defined groups (expressions may
name any column) and the multicalibration table (it bins each row's prediction).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .log_engine import LogTable, q


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


def ranking_cells(table: LogTable, group_cols: list[str], value_cols: list[str], label_col: str) -> RankingCells:
    """The cells of a ranking log (see the module docstring). ``value_cols`` are the
    prediction columns summed per cell (or the one score column of binary labels)."""
    gq = [q(g) for g in group_cols]
    lazy = getattr(table, "pushdown", False)
    if lazy:                    # a Dask or Spark log: the same sums on its engine (fairaudit.log_frames)
        from .log_frames import ranking_size_counts
        sizes = ranking_size_counts(table)
    else:
        sizes = table.rows("SELECT s, sum(s) FROM (SELECT count(*) AS s FROM log GROUP BY decision_id) GROUP BY s "
                           "ORDER BY s")
    # the ranking size held by most *rows* (ties: the smaller), as the frame path's np.unique
    n = int(max(sizes, key=lambda r: (r[1], -r[0]))[0])
    kept_rows = int(next(r[1] for r in sizes if int(r[0]) == n))
    dropped = int(sum(r[1] for r in sizes)) - kept_rows
    label = f"CAST({q(label_col)} AS VARCHAR) AS {q(label_col)}"
    if lazy:
        from .log_frames import kept_position
        rel = table.cells(list(group_cols) + [label_col, "__pos"], sums=value_cols,
                          derived={"__pos": kept_position(n)}, sizes=True)
        sums = ", ".join(q("__s_" + c) for c in value_cols)
        frame = rel.query("c", f"SELECT {', '.join(gq + [label])}, __pos, n AS __w, {sums} FROM c ORDER BY ALL").df()
    else:
        sums = ", ".join(f"sum(CAST({q(c)} AS DOUBLE)) AS {q('__s_' + c)}" for c in value_cols)
        frame = table.df(
            f"WITH r AS (SELECT *, row_number() OVER (PARTITION BY decision_id ORDER BY position) - 1 AS __p, "
            f"count(*) OVER (PARTITION BY decision_id) AS __size FROM log) "
            f"SELECT {', '.join(gq + [label])}, CASE WHEN __size = {n} THEN __p ELSE -1 END AS __pos, count(*) AS __w, "
            f"{sums} FROM r GROUP BY ALL ORDER BY ALL")
    weights = frame.pop("__w").to_numpy(dtype=float)
    pred_sums = np.column_stack([frame.pop("__s_" + c).to_numpy(dtype=float) for c in value_cols])
    return RankingCells(frame, weights, pred_sums, n, kept_rows // n, dropped)


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
    if getattr(log.table, "pushdown", False):
        from .log_frames import prediction_rows_invalid
        return prediction_rows_invalid(log.table, cols, "label") == 0
    vals = [f"CAST({q(c)} AS DOUBLE)" for c in cols]
    if len(vals) >= 2:
        good = f"abs({' + '.join(vals)} - 1) <= 1e-9 AND least({', '.join(vals)}) >= 0"
    else:
        good = f"{vals[0]} BETWEEN 0 AND 1"
    bad = log.table.rows(f"SELECT count(*) FROM log WHERE coalesce(NOT ({good} AND {q('label')} IS NOT NULL), true)")
    return int(bad[0][0]) == 0
