"""``ranked_representation`` on a ranking log, aggregated where the log is (DuckDB; a Dask
or Spark DataFrame's own engine), never its rows.

One GROUP BY decision gives, per protected group t and prefix length i ≤ k, the group's
count in the decision's top i (a conditional sum) and the decision's size; a second
GROUP BY over those per-decision rows gives, per first failing prefix f (0: the ranking
passes every test), the number of decisions and the least decision id (an example). The
per-decision table stays on the engine; only the (≤ k + 1)-row result is collected.
"""
from __future__ import annotations

from fairaudit.logs.duckdb import LogTable, lit, q

BIG = 1 << 30


def _cond_sql(conds) -> str:
    return " AND ".join(f"{q(c)} = {lit(v)}" for c, v in conds)


def failing_prefixes(table: LogTable, tests, k: int) -> list[tuple[int, int, object]]:
    """``tests``: [(conditions [(group column, canonical value)], m-table)] → rows
    (first failing prefix f, decisions, least decision id), f = 0 for passing rankings. A
    ranking shorter than k is tested on the prefixes it has."""
    k = int(k)
    if getattr(table, "pushdown", False):
        return _lazy(table, tests, k)
    cols, fails = [], []
    for t, (conds, m) in enumerate(tests):
        cond = _cond_sql(conds)
        for i in range(1, k + 1):
            if m[i - 1] <= 0:
                continue
            c = f"__c{t}_{i}"
            cols.append(f"sum(CASE WHEN {cond} AND position <= {i} THEN 1 ELSE 0 END) AS {c}")
            fails.append(f"CASE WHEN {i} <= __n AND {c} < {int(m[i - 1])} THEN {i} ELSE {BIG} END")
    if not fails:
        res = table.rows("SELECT 0, count(*), min(decision_id) FROM (SELECT DISTINCT decision_id FROM log)")
        return [(0, int(res[0][1]), res[0][2])]
    per = f"SELECT decision_id, count(*) AS __n, {', '.join(cols)} FROM log GROUP BY decision_id"
    f = f"least({', '.join(fails)})" if len(fails) > 1 else fails[0]
    res = table.rows(f"WITH per AS ({per}) SELECT CASE WHEN f = {BIG} THEN 0 ELSE f END, count(*), min(decision_id) "
                     f"FROM (SELECT decision_id, {f} AS f FROM per) GROUP BY 1 ORDER BY 1")
    return [(int(a), int(b), c) for a, b, c in res]


def _lazy(table, tests, k):
    import narwhals as nw
    from fairaudit.logs.lazy import collect
    derived, aggs, fails = {}, [nw.len().alias("__n")], []
    for t, (conds, m) in enumerate(tests):
        member = None
        for c, v in conds:
            e = nw.col(c).cast(nw.String) == str(v)
            member = e if member is None else (member & e)
        for i in range(1, k + 1):
            if m[i - 1] <= 0:
                continue
            name = f"__c{t}_{i}"
            derived[name] = (member & (nw.col("position") <= i)).cast(nw.Int64)
            aggs.append(nw.col(name).sum())
            fails.append((i, name, int(m[i - 1])))
    lf = table.lf.with_columns(**derived) if derived else table.lf
    per = lf.group_by("decision_id").agg(*aggs)
    if fails:
        each = [nw.when((nw.col("__n") >= i) & (nw.col(c) < need)).then(nw.lit(i, dtype=nw.Int64))
                .otherwise(nw.lit(BIG, dtype=nw.Int64)) for i, c, need in fails]
        f = nw.min_horizontal(*each) if len(each) > 1 else each[0]     # Spark's least needs two columns
        per = per.with_columns(__f=f)
    else:
        per = per.with_columns(__f=nw.lit(BIG, dtype=nw.Int64))
    t = collect(per.group_by("__f").agg(nw.len().alias("n"), nw.col("decision_id").min().alias("ex")))
    out = []
    for f, n, ex in zip(t.column("__f").to_pylist(), t.column("n").to_pylist(), t.column("ex").to_pylist()):
        out.append((0 if int(f) == BIG else int(f), int(n), ex))
    return sorted(out, key=lambda r: r[0])
