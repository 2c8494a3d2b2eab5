"""``exposure`` on a ranking log, aggregated where the log is (DuckDB; a Dask or Spark
DataFrame's own engine), never its rows.

Every row gets each attention model's weight of its position and its relevance; the
engine groups the rows by (decision, group values) — a row count and the sums of the
weights and of the relevance per cell — and DuckDB finishes one ``GROUPING SETS`` query
over those cells: per category of every attribute (group column and intersection), the
rows N, the sums Y_k of model k's weights and U of relevance, and the per-decision sums a
cluster-robust variance needs (decisions C, Σn_d², Σy_d², Σy_d·n_d, Σu_d², Σy_d·u_d).
Rankings are the units: one decision's rows are correlated (they share the positions), so
every interval is cluster-robust by decision (CR1 sandwich, Liang & Zeger 1986).

A group's exposure on a log is the mean weight over its rows (each row one appearance of
one person in one ranking); its merit-weighted exposure the ratio Y_k / U of exposure to
relevance over the same rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fairaudit.logs.duckdb import LogTable, attribute_sets, connect, group_string, q

from .attention import Attention


@dataclass(frozen=True)
class CategorySums:
    attribute: str
    value: str
    size: int                 # rows
    clusters: int             # decisions with a row of the category
    s: dict                   # named sums (floats)

    @property
    def name(self) -> str:
        return f"{self.attribute} = {self.value}"


def relevance_sql(kind: str, pred_cols: list[str]) -> str | None:
    """The relevance of a row as SQL over ``log``: the label, the expected grade of the
    ``p_<label>`` predictions (Σ_j j·p_j / (m − 1), in [0, 1]), or the score."""
    if kind == "label":
        return f"TRY_CAST({q('label')} AS DOUBLE)"
    if kind == "predictions":
        if len(pred_cols) == 1:
            return f"CAST({q(pred_cols[0])} AS DOUBLE)"
        m = len(pred_cols)
        num = " + ".join(f"{j} * CAST({q(c)} AS DOUBLE)" for j, c in enumerate(pred_cols))
        den = " + ".join(f"CAST({q(c)} AS DOUBLE)" for c in pred_cols)
        return f"(({num}) / ({den}) / {m - 1})"
    if kind == "score":
        return f"CAST({q('score')} AS DOUBLE)"
    return None


def relevance_nw(kind: str, pred_cols: list[str]):
    """The narwhals twin of :func:`relevance_sql`."""
    import narwhals as nw
    if kind == "label":
        return nw.col("label").cast(nw.Float64)
    if kind == "predictions":
        if len(pred_cols) == 1:
            return nw.col(pred_cols[0]).cast(nw.Float64)
        from functools import reduce
        from operator import add
        x = [nw.col(c).cast(nw.Float64) for c in pred_cols]
        return (reduce(add, [j * v for j, v in enumerate(x)]) / reduce(add, x)) / (len(x) - 1)
    if kind == "score":
        return nw.col("score").cast(nw.Float64)
    return None


def _cells(table: LogTable, group_cols, models: list[Attention], rel: str | None, pred_cols):
    """(run, source): the finest cells (decision_id, group values) with n, y_k, u — from
    the rows in DuckDB, or grouped on the lazy engine and collected (a small table)."""
    gq = [q(g) for g in group_cols]
    ys = [f"__y{k}" for k in range(len(models))]
    if getattr(table, "pushdown", False):
        import narwhals as nw
        from fairaudit.logs.lazy import collect
        lf = table.lf.with_columns(**{y: m.narwhals("position") for y, m in zip(ys, models)},
                                   **({"__u": relevance_nw(rel, pred_cols)} if rel else {}))
        aggs = [nw.len().alias("n")] + [nw.col(y).sum() for y in ys] + ([nw.col("__u").sum()] if rel else [])
        t = collect(lf.group_by("decision_id", *group_cols).agg(*aggs))
        con = connect()
        con.register("cell_rows", t)
        raw = con.sql("SELECT * FROM cell_rows")
        types = {str(c): str(tp) for c, tp in zip(raw.columns, raw.types)}
        cols = ["decision_id"] + [f"{group_string(g, types[g])} AS {q(g)}" for g in group_cols]
        cols += ["n"] + ys + (["__u AS u"] if rel else ["0.0 AS u"])
        rel_cells = raw.query("cell_rows", f"SELECT {', '.join(cols)} FROM cell_rows")
        return (lambda sql: rel_cells.query("cells", sql).fetchall()), "cells"
    w = ", ".join(f"sum({m.sql(q('position'))}) AS {y}" for y, m in zip(ys, models))
    u = f"sum({relevance_sql(rel, pred_cols)}) AS u" if rel else "0.0 AS u"
    cte = (f"SELECT decision_id, {', '.join(gq)}, count(*) AS n, {w}, {u} FROM log "
           f"GROUP BY decision_id, {', '.join(gq)}")
    # the caller's query opens with its own WITH: the cells join its list
    return (lambda sql: table.rows(f"WITH cells AS ({cte}), {sql.strip()[5:]}")), "cells"


def category_sums(table: LogTable, group_cols: list[str], depth: int, models: list[Attention],
                  rel: str | None, pred_cols=()) -> list[CategorySums]:
    """Per category of every attribute (group columns and intersections up to ``depth``),
    in the order of :func:`fairaudit.groups.categories`: rows, decisions and the sums of
    the module docstring; one GROUPING SETS query over the decision cells."""
    sets = attribute_sets(list(group_cols), depth)
    if not sets:
        return []
    run, src = _cells(table, group_cols, models, rel, list(pred_cols))
    gq = [q(g) for g in group_cols]
    ys = [f"__y{k}" for k in range(len(models))]
    gid = f"GROUPING({', '.join(gq)})" if len(gq) > 1 else f"GROUPING({gq[0]})"
    spec = ", ".join("(" + ", ".join(["decision_id"] + [q(c) for c in s]) + ")" for s in sets)
    inner = f"SELECT {gid} AS gid, {', '.join(gq)}, sum(n) AS n, " + \
            ", ".join(f"sum({y}) AS {y}" for y in ys) + f", sum(u) AS u FROM {src} GROUP BY GROUPING SETS ({spec})"
    sums = ["count(*)", "sum(n)", "sum(n * n)", "sum(u)", "sum(u * u)", "sum(u * n)"]
    for y in ys:
        sums += [f"sum({y})", f"sum({y} * {y})", f"sum({y} * n)", f"sum({y} * u)"]
    res = run(f"WITH per AS ({inner}) SELECT gid, {', '.join(gq)}, {', '.join(sums)} FROM per "
              f"GROUP BY gid, {', '.join(gq)}")
    nb = len(gq)
    by_set: dict[tuple, list] = {}
    for r in res:
        gidv, vals, x = r[0], r[1:1 + nb], [float(v or 0) for v in r[1 + nb:]]
        present = tuple(g for j, g in enumerate(group_cols) if not (gidv >> (nb - 1 - j)) & 1)
        key = " × ".join(str(vals[group_cols.index(g)]) for g in present)
        s = {"C": x[0], "N": x[1], "Snn": x[2], "U": x[3], "Suu": x[4], "Sun": x[5]}
        for k in range(len(models)):
            s.update({f"Y{k}": x[6 + 4 * k], f"Syy{k}": x[7 + 4 * k], f"Syn{k}": x[8 + 4 * k],
                      f"Syu{k}": x[9 + 4 * k]})
        by_set.setdefault(present, []).append((key, s))
    out = []
    for st in sets:
        for key, s in sorted(by_set.get(st, []), key=lambda t: t[0]):
            out.append(CategorySums(" × ".join(st), key, int(s["N"]), int(s["C"]), s))
    return out


def cluster_robust_means(cats: list[CategorySums], K: int, merit: bool, z: float):
    """(G, K) estimates and normal intervals, cluster-robust by decision (CR1): the mean
    weight Y/N, or with ``merit`` the exposure per unit relevance Y/U. ``z`` the normal
    quantile of the family's Bonferroni level."""
    G = len(cats)
    est, half = np.full((G, K), np.nan), np.full((G, K), np.inf)
    for g, c in enumerate(cats):
        s = c.s
        C = s["C"]
        den = s["U"] if merit else s["N"]
        if den <= 0:
            continue
        for k in range(K):
            r = s[f"Y{k}"] / den
            if merit:
                resid = s[f"Syy{k}"] - 2 * r * s[f"Syu{k}"] + r * r * s["Suu"]
            else:
                resid = s[f"Syy{k}"] - 2 * r * s[f"Syn{k}"] + r * r * s["Snn"]
            est[g, k] = r
            if C > 1:
                half[g, k] = z * np.sqrt(C / (C - 1) * max(resid, 0.0)) / den
    lo = np.maximum(est - half, 0.0)
    hi = est + half
    if not merit:
        hi = np.minimum(hi, 1.0)
    return est, lo, hi
