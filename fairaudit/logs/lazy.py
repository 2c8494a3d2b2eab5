"""Decision logs that live in a lazy engine — a Dask DataFrame (on a cluster or not) or a
PySpark DataFrame — aggregated on that engine, where the rows are.

Choice: **narwhals** (already a core dependency) rather than Ibis or one code path per
engine. Narwhals drives Dask and PySpark lazily with one Polars-like API
(``group_by(...).agg(nw.len(), nw.col(c).sum())``), adds no dependency, and leaves the
rows where they are: only the small reduced tables are collected. The log checks speak
SQL to DuckDB (:mod:`fairaudit.logs.duckdb`); for a lazy log the engine reduces the log
to a table of *cells* — one row per combination of the keys a statistic needs (group
columns, an individual, a score stratum) with the row count ``n`` and the selected sum
``y`` — and DuckDB finishes the same ``GROUPING SETS`` query over the cells with
``sum(n)`` / ``sum(y)`` in place of ``count(*)`` / ``sum(selected)``. Integer counts
summed in any order are exact, so the result equals the DuckDB run's.

Pushed down to the engine: schema validation (one aggregate of per-column flags, plus
the multi-row rules — duplicate ``(decision_id, individual_id)``, positions that are not
a permutation, pick orders — as grouped counts), the row and decision counts, whether
``individual_id`` recurs, per-category counts (``selection_rates``, ``error_rate_parity``,
cluster sums by individual included), score strata and per-stratum counts
(``anonymity``), ``broome``'s same-pool test (a count per (individual, score) pair), the
selected rows of a same-pool log, and the (decision, score) cells of a log whose pools
differ, ``multiaccuracy``'s ranking cells (the decision sizes joined back on the engine; with
each label's multicalibration bin as a key when that table is asked for),
and ``min_requirement``'s years, one at a time (:meth:`LazyLogTable.where_equals`: a
year's rows are its sufficient statistic).

A ``selected`` column of words (yes/no, true/false) is read as 0/1 on the engine
(:func:`selected_words`). Not pushed down (stated): other role columns held as text (a
score as a string), the first-offending-row message of a malformed log, ``multiaccuracy``'s user-defined
groups (they read each row's values) and
``multiplicity``'s log (a matrix of every model's decision on every individual): for
those the engine's rows are collected once, as Arrow, into DuckDB
(:attr:`LazyLogTable.rel`), and the SQL path runs unchanged.
``LazyLogTable.materialised`` tells whether that happened.
"""
from __future__ import annotations

import duckdb
import numpy as np

from fairaudit.logs.duckdb import LogTable, canonical_sql, connect, is_numeric_type, q, validate


def is_lazy_engine_frame(obj) -> bool:
    """A Dask or PySpark DataFrame (the lazy engines the aggregations are pushed to)."""
    mod = type(obj).__module__.split(".")[0]
    return mod in ("dask", "dask_expr", "pyspark") and type(obj).__name__ in ("DataFrame",)


def collect(lf):
    """A narwhals LazyFrame collected as a PyArrow table (without the pandas index column
    a Dask collect adds)."""
    t = lf.collect(backend="pyarrow").to_native()
    drop = [c for c in t.column_names if c.startswith("__index_level_")]
    return t.drop_columns(drop) if drop else t


def _count(lf) -> int:
    import narwhals as nw
    return int(collect(lf.select(nw.len().alias("n"))).column("n")[0].as_py())


def _duck_type(dtype) -> str:
    """A narwhals dtype as the DuckDB type name the SQL path would see."""
    import narwhals as nw
    table = [(nw.Int8, "TINYINT"), (nw.Int16, "SMALLINT"), (nw.Int32, "INTEGER"), (nw.Int64, "BIGINT"),
             (nw.UInt8, "UTINYINT"), (nw.UInt16, "USMALLINT"), (nw.UInt32, "UINTEGER"), (nw.UInt64, "UBIGINT"),
             (nw.Float32, "FLOAT"), (nw.Float64, "DOUBLE"), (nw.Boolean, "BOOLEAN"), (nw.Decimal, "DECIMAL")]
    for t, name in table:
        if dtype == t:
            return name
    return "VARCHAR" if dtype in (nw.String, nw.Categorical, nw.Enum) else str(dtype).upper()


class LazyLogTable(LogTable):
    """A :class:`LogTable` whose rows stay in a Dask or PySpark DataFrame (see the module
    docstring); ``rel`` collects them into DuckDB only for what is not pushed down."""

    def __init__(self, native, where: str = "log"):
        import warnings

        import narwhals as nw
        with warnings.catch_warnings():
            # narwhals 2.x notes that its Dask support moves to a `narwhals-dask` plugin in a future
            # release; not published yet, so the note would only be noise on every Dask audit
            warnings.filterwarnings("ignore", message=".*narwhals-dask.*", category=FutureWarning)
            self.lf = nw.from_native(native).lazy()
        self.engine = str(self.lf.implementation).split(".")[-1].lower()
        self.where = where
        schema = self.lf.collect_schema()
        self.columns = [str(c) for c in schema.names()]
        self.types = {str(c): _duck_type(t) for c, t in schema.items()}
        self.canon = "SELECT * FROM raw"
        self._rows = None
        self._flags = {}
        self._rel = None
        self._roles = None       # (kind, group_cols, score_cols) once validated
        self._cells = {}
        self.pushdown = False    # True once validated with typed role columns: counts run on the engine

    # -- the fallback: rows collected once into DuckDB --------------------
    @property
    def materialised(self) -> bool:
        return self._rel is not None

    @property
    def rel(self) -> duckdb.DuckDBPyRelation:
        if self._rel is None:
            con = connect()
            con.register("engine_rows", collect(self.lf))
            self._rel = con.sql("SELECT * FROM engine_rows")
            self.types = {str(c): str(t) for c, t in zip(self._rel.columns, self._rel.types)}
            if self._roles is not None:
                self.canon = canonical_sql(self, *self._roles)
        return self._rel

    def rename(self, mapping: dict) -> None:
        self.lf = self.lf.rename({k: v for k, v in mapping.items() if k != v})
        self.types = {mapping.get(c, c): t for c, t in self.types.items()}
        self.columns = [mapping.get(c, c) for c in self.columns]

    # -- pushed-down reductions -------------------------------------------
    def _one(self, *exprs):
        t = collect(self.lf.select(*exprs))
        row = tuple(t.column(j)[0].as_py() for j in range(t.num_columns))
        return row[0] if len(row) == 1 else row

    @property
    def n_rows(self) -> int:
        import narwhals as nw
        if self._rows is None:
            self._rows = int(self._one(nw.len()))
        return self._rows

    def count_distinct(self, column: str) -> int:
        import narwhals as nw
        return _count(self.lf.select(nw.col(column)).unique())

    def recurs(self, column: str) -> bool:
        import narwhals as nw
        non_null = int(self._one(nw.col(column).count()))
        return non_null > _count(self.lf.filter(~nw.col(column).is_null()).select(nw.col(column)).unique())

    def value_counts(self, column: str):
        """(distinct values sorted, their counts) of a numeric column, grouped on the engine
        (on the collected rows' canonical view when the role columns needed parsing)."""
        import narwhals as nw
        if not self.pushdown:
            return super().value_counts(column)
        t = collect(self.lf.group_by(column).agg(nw.len().alias("n")))
        v = np.asarray(t.column(column).to_numpy(zero_copy_only=False), dtype=float)
        n = np.asarray(t.column("n").to_numpy(zero_copy_only=False), dtype=np.int64)
        order = np.argsort(v, kind="stable")
        return v[order], n[order]

    @property
    def on_engine(self) -> bool:
        """Whether counts run on the engine that holds the log (else on the rows collected into DuckDB)."""
        return self.pushdown

    def ranking_sizes(self) -> list[tuple[int, int]]:
        """(ranking size s, rows in rankings of size s), sorted by s, grouped on the engine."""
        if not self.pushdown:
            return super().ranking_sizes()
        return ranking_size_counts(self)

    def count_source(self, keys: list[str], value: str, derived: dict | None = None):
        """The engine's cells per ``keys`` with ``sum(n)`` / ``sum(y)`` (the same totals as
        the log's ``count(*)`` / ``sum(value)``, computed where the rows are); ``derived``:
        extra keys as narwhals expressions (:meth:`stratum_expression`)."""
        if not self.pushdown:
            return super().count_source(keys, value, derived)
        rel = self.cells(keys, value, derived)
        return (lambda sql: rel.query("cells", sql).fetchall()), "cells", "sum(n)", "sum(y)"

    def stratum_expression(self, column: str, mode: str, edges):
        """The stratum of a row as a narwhals expression (:func:`stratum_expr`)."""
        if not self.pushdown:
            return super().stratum_expression(column, mode, edges)
        return stratum_expr(column, mode, edges)

    def score_edges(self, column: str, bins: int):
        """``(mode, edges)`` from the (score, count) pairs grouped on the engine."""
        if not self.pushdown:
            return super().score_edges(column, bins)
        from fairaudit.logs.duckdb import quantile_from_counts
        values, counts = self.value_counts(column)
        if len(values) <= bins:
            return "exact", values.tolist()
        return "quantile", np.unique(quantile_from_counts(values, counts, np.linspace(0, 1, bins + 1))).tolist()

    def cells(self, keys: list[str], value: str | None = None, derived: dict | None = None, sums=(),
              sizes: bool = False) -> duckdb.DuckDBPyRelation:
        """The engine's ``group_by(keys).agg(n = len, y = sum(value), __s_<c> = sum(c) for c
        in sums)``, collected (a small table) into DuckDB with the group columns in their
        canonical strings. ``derived``: extra key columns as narwhals expressions (a score
        stratum), which may name ``__size``, the row's decision size, when ``sizes`` (the
        per-decision counts joined back on the engine)."""
        import narwhals as nw
        derived = derived or {}
        tag = (tuple(keys), value, tuple((k, str(e)) for k, e in derived.items()), tuple(sums), sizes)
        if tag not in self._cells:
            lf = self.lf
            if sizes:
                lf = lf.join(lf.group_by("decision_id").agg(nw.len().alias("__size")), on="decision_id")
            # Dask groups only elementary aggregations: the casts go in columns first
            cast = {"__v": nw.col(value).cast(nw.Int64)} if value else {}
            cast.update({f"__s_{c}": nw.col(c).cast(nw.Float64) for c in sums})
            if cast or derived:
                lf = lf.with_columns(**cast, **derived)
            aggs = [nw.len().alias("__n")] + ([nw.col("__v").sum().alias("__y")] if value else [])
            aggs += [nw.col(f"__s_{c}").sum() for c in sums]
            t = collect(lf.group_by(*keys).agg(*aggs))
            con = connect()
            con.register("cell_rows", t)
            rel = con.sql("SELECT * FROM cell_rows")
            _, groups, _ = self._roles
            types = {str(c): str(tp) for c, tp in zip(rel.columns, rel.types)}
            from fairaudit.logs.duckdb import group_string
            cols = [f"{group_string(k, types[k]) if k in groups else q(k)} AS {q(k)}" for k in keys]
            cols += ["__n AS n"] + (["__y AS y"] if value else []) + [q(f"__s_{c}") for c in sums]
            self._cells[tag] = rel.query("cell_rows", f"SELECT {', '.join(cols)} FROM cell_rows")
        return self._cells[tag]

    def distinct(self, column: str) -> list:
        """The distinct values of ``column`` (canonical, as the ``log`` view has them),
        sorted: one grouped count on the engine."""
        return [v for (v,) in self.cells([column]).query("c", f"SELECT {q(column)} FROM c ORDER BY 1").fetchall()]

    def where_equals(self, column: str, value, columns: list[str] | None = None) -> LogTable:
        """The rows whose ``column`` equals ``value`` (a value :meth:`distinct` gave),
        filtered and (``columns``) projected on the engine and only those collected, in the
        engine's row order, into DuckDB as a log of their own with the canonical view of
        its columns. The comparison is on the canonical value: a group column's string, a
        yes/no ``selected`` as 0/1 (boolean role columns compared as 0/1)."""
        import narwhals as nw
        from fairaudit.logs.duckdb import canonical_sql
        kind, groups, scores = self._roles
        if column in groups:
            raise ValueError(f"where_equals compares raw values; {column!r} is a group column")
        c = nw.col(column)
        if self.types.get(column) == "BOOLEAN":
            c = c.cast(nw.Int64)
        lf = self.lf.filter(c == value)
        if columns is not None:
            lf = lf.select(*[x for x in self.columns if x in set(columns) | {column}])
        con = connect()
        con.register("part_rows", collect(lf))
        part = LogTable(con.sql("SELECT * FROM part_rows"), self.where)
        part.canon = canonical_sql(part, kind, [g for g in groups if g in part.columns],
                                   [s for s in scores if s in part.columns])
        return part


# ---------------------------------------------------------------------------
# Validation on the engine
# ---------------------------------------------------------------------------

def _specs(kind: str, columns: list[str], pred_cols, score_cols):
    """(column, integer, allow_na, lo, hi) of every numeric role column (as ``validate``)."""
    if kind == "selection":
        out = [("selected", True, False, 0, 1), ("score", False, False, None, None)]
        if "pick_order" in columns:
            out.append(("pick_order", True, True, 1, None))
    elif kind == "ranking":
        out = [("position", True, False, 1, None)] + ([("score", False, False, None, None)] if "score" in columns else [])
        out += [(c, False, False, 0, 1) for c in pred_cols]
    else:
        out = [("arrival", True, False, None, None), ("location", True, True, -1, len(score_cols) - 1)]
        out += [(c, False, False, None, None) for c in score_cols]
        if "outcome" in columns:
            out.append(("outcome", False, True, None, None))
    return out


def _missing(c: str, typ: str):
    import narwhals as nw
    e = nw.col(c).is_null()
    return (e | nw.col(c).is_nan()) if typ in ("DOUBLE", "FLOAT") else e


def lazy_validate(table: LazyLogTable, kind: str, group_cols, pred_cols, score_cols) -> None:
    """Whether any row breaks the ``kind`` schema, asked of the engine (one aggregate of
    per-rule counts, then grouped counts for the multi-row rules; a ``selected`` of words
    read as 0/1 there first); when one does — or another role column is text, which only
    the SQL rules parse — the rows as given are collected into DuckDB and
    :func:`fairaudit.logs.duckdb.validate` names the first offending row and column (the
    message of every other log source)."""
    import narwhals as nw
    table._roles = (kind, list(group_cols), list(score_cols))
    original = (table.lf, dict(table.types))
    if kind in ("selection", "decision") and table.types.get("selected") == "VARCHAR":
        # selected as words (yes/no, true/false, 1/0): read as 0/1 on the engine, an unknown
        # word as missing — which the rules below flag, and the rows' validation then names
        table.lf = table.lf.with_columns(selected=selected_words("selected"))
        table.types["selected"] = "BIGINT"
    T = table.types
    specs = _specs(kind, table.columns, pred_cols, score_cols)
    typed = all(is_numeric_type(T[c]) or T[c] == "BOOLEAN" for c, *_ in specs)
    bad = False
    if typed:
        flags = [_missing("decision_id", T["decision_id"])]
        # (a missing group value is the unknown category, not an error: issue 28)
        for c, integer, allow_na, lo, hi in specs:
            x = nw.col(c).cast(nw.Float64)
            if not allow_na:
                flags.append(_missing(c, T[c]))
            ok = ~_missing(c, T[c])
            flags.append(ok & ~x.is_finite())
            if integer:
                flags.append(ok & x.is_finite() & (x != x.round(0)))
            if lo is not None:
                flags.append(ok & (x < lo))
            if hi is not None:
                flags.append(ok & (x > hi))
        if kind == "selection" and "pick_order" in table.columns:
            s, po = nw.col("selected").cast(nw.Int64), _missing("pick_order", T["pick_order"])
            flags += [((s == 1) & po), ((s == 0) & ~po)]
        # Spark sums no booleans: each flag as 0/1 first
        # (and the row count in the same pass)
        counts = table._one(nw.len().alias("rows"), *[f.cast(nw.Int64).sum().alias(f"f{j}") for j, f in enumerate(flags)])
        table._rows = int(counts[0])
        bad = any(int(v or 0) for v in counts[1:])
        if not bad and kind == "ranking":
            # positions a permutation of 1..n: none above the decision's size, none repeated (grouped
            # counts, which Dask combines exactly across partitions; its grouped n_unique does not)
            per = table.lf.group_by("decision_id").agg(nw.len().alias("n"), nw.col("position").max().alias("mx"))
            rep = table.lf.group_by("decision_id", "position").agg(nw.len().alias("n")).filter(nw.col("n") > 1)
            bad = _count(per.filter(nw.col("mx") > nw.col("n"))) > 0 or _count(rep) > 0
        if not bad and "individual_id" in table.columns and kind in ("selection", "ranking"):
            dup = table.lf.filter(~nw.col("individual_id").is_null()).group_by("decision_id", "individual_id") \
                .agg(nw.len().alias("n")).filter(nw.col("n") > 1)
            bad = _count(dup) > 0
    if bad or not typed:
        table.lf, table.types = original            # the rows as given, so the message quotes them
        validate(table, kind, group_cols, pred_cols, score_cols)      # on the collected rows: raises, names the row
    table.canon = canonical_sql(table, kind, group_cols, score_cols)
    # other text role columns (a score as text) are parsed by the SQL view only: their
    # counts run in DuckDB on the collected rows
    table.pushdown = typed and not table.materialised


def selected_words(column: str):
    """The narwhals twin of ``log_engine.selected_expr`` on a text column: the words of
    ``SELECTED_WORDS`` (trimmed, any case) as 1 or 0, anything else missing."""
    import narwhals as nw

    from fairaudit.logs.duckdb import SELECTED_WORDS
    w = nw.col(column).cast(nw.String).str.strip_chars().str.to_lowercase()
    ones = [k for k, v in SELECTED_WORDS.items() if v == 1]
    zeros = [k for k, v in SELECTED_WORDS.items() if v == 0]
    return nw.when(w.is_in(ones)).then(nw.lit(1, dtype=nw.Int64)).otherwise(
        nw.when(w.is_in(zeros)).then(nw.lit(0, dtype=nw.Int64)))


def stratum_expr(column: str, mode: str, edges):
    """The narwhals twin of ``duckdb.score_stratum_sql``'s expression: ``exact`` — the
    count of distinct scores below; ``quantile`` — the count of edges at or below the
    score, less one, clipped to 0..K−1."""
    from functools import reduce
    from operator import add

    import narwhals as nw
    c = nw.col(column).cast(nw.Float64)
    # a chain of `+` (column-wise), not sum_horizontal, which Dask runs as an aligning concat
    if mode == "exact":
        if len(edges) < 2:
            return c * 0
        return reduce(add, [(c > float(u)).cast(nw.Int64) for u in edges[:-1]])
    terms = reduce(add, [(c >= float(e)).cast(nw.Int64) for e in edges])
    return (terms - 1).clip(0, len(edges) - 2)


def ranking_size_counts(table: LazyLogTable) -> list[tuple[int, int]]:
    """(ranking size s, rows in rankings of size s) sorted by s: the SQL path's
    ``GROUP BY decision_id`` then ``GROUP BY s``, on the engine."""
    import narwhals as nw
    per = table.lf.group_by("decision_id").agg(nw.len().alias("s"))
    t = collect(per.group_by("s").agg(nw.len().alias("c")))
    s = np.asarray(t.column("s").to_numpy(zero_copy_only=False), dtype=np.int64)
    c = np.asarray(t.column("c").to_numpy(zero_copy_only=False), dtype=np.int64)
    return sorted((int(a), int(a * b)) for a, b in zip(s, c))


def kept_position(n: int):
    """0-based place in a ranking of size ``n`` (``position − 1``), −1 for rows of other-
    sized rankings: the narwhals twin of ``ranking_log.ranking_cells``' ``__pos``."""
    import narwhals as nw
    return nw.when(nw.col("__size") == n).then(nw.col("position").cast(nw.Int64) - 1).otherwise(-1)
