"""Decision logs as DuckDB relations: schema validation as queries, and the small
sufficient-statistics tables the log checks ask for, computed where the rows are.

A log file (CSV, Parquet, a glob such as ``logs/*.parquet``, a hive-partitioned
directory) or a dataframe (pandas, Polars, PyArrow; DuckDB scans them in place) or a
DuckDB relation becomes a :class:`LogTable`. Nothing here reads the rows into Python:
validation asks DuckDB whether any row breaks a rule (one streamed aggregate) and, only
when one does, for the first such row; checks ask for counts and sums per group,
intersection, stratum or position (``GROUP BY GROUPING SETS``), a table of at most a
few thousand rows whatever the log's size.

Every query is run against the relation as ``raw`` (``DuckDBPyRelation.query``), so the
same SQL serves a file, a registered dataframe and a user's own relation. ``log`` is the
canonical view: role columns cast to their types (``selected`` 0/1 integer, ``score``
double, ``location`` −1 for none), group columns as the strings the reports show.
"""
from __future__ import annotations

import glob as _glob
import re
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import duckdb

from fairaudit.errors import DataError, LogError
from fairaudit.groups import UNKNOWN
from fairaudit.text import exception_text, show_value

NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL")
SELECTED_WORDS = {"true": 1, "false": 0, "yes": 1, "no": 0, "1": 1, "0": 0, "1.0": 1, "0.0": 0, "y": 1, "n": 0}


def q(name: str) -> str:
    """A column name quoted as a SQL identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def dbl(x) -> str:
    """A float as an exact DOUBLE literal (its shortest repr, parsed as a double)."""
    return f"CAST('{float(x)!r}' AS DOUBLE)"


def is_numeric_type(t: str) -> bool:
    t = str(t).upper()
    return t in NUMERIC_TYPES or t.startswith("DECIMAL")


def is_scan_path(spec: str) -> bool:
    """A path DuckDB scans (Parquet file, glob of files, or a directory of Parquet files),
    or a ``duckdb:///path/db.duckdb?table=NAME`` source."""
    s = str(spec)
    if s.startswith("duckdb://"):
        return True
    p = Path(s)
    if any(ch in s for ch in "*?[") and not p.is_file():     # a file named with [ * ? is that file
        return True
    return p.is_dir() or p.suffix.lower() in (".parquet", ".pq")


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    # order of rows as in the file, so "the first offending row" is the file's first
    con.execute("SET preserve_insertion_order = true")
    con.execute("SET enable_progress_bar = false")     # the terminal is fairaudit's
    # memory does not grow with the log: sorts and large hash tables spill to a private
    # temporary directory (never the current folder)
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute(f"SET temp_directory = {lit(spill_directory())}")
    return con


MEMORY_LIMIT = "512MB"


def spill_directory() -> str:
    import os
    import tempfile
    return os.path.join(tempfile.gettempdir(), f"fairaudit-duckdb-{os.getpid()}")


def scan_path(path: str, con=None, what: str = "decisions log") -> duckdb.DuckDBPyRelation:
    """A relation over a Parquet file / glob / hive directory, or a (large) UTF-8 CSV file,
    streamed by DuckDB; a one-line :class:`DataError` when it cannot be scanned."""
    s = str(path)
    if s.startswith("duckdb://"):
        return duckdb_table(s, what)
    con = con or connect()
    p = Path(s)
    try:
        literal = p.is_file()          # a file whose name holds [ * ? is read as that file, not a glob
        if p.is_dir():
            files = sorted(_glob.glob(_glob.escape(str(p)) + "/**/*.parquet", recursive=True))
            if not files:
                raise DataError(f"{what}: directory {s} has no .parquet files")
            refuse_duplicate_parquet_columns(files, what)
            pattern = _glob.escape(str(p)) + "/**/*.parquet"
            src = f"read_parquet({lit(pattern)}, hive_partitioning = true, union_by_name = true)"
        elif (any(ch in s for ch in "*?[") and not literal) or p.suffix.lower() in (".parquet", ".pq"):
            files = [s] if literal else sorted(_glob.glob(s))
            if not files:
                raise DataError(f"{what} not found: {s}")
            refuse_duplicate_parquet_columns(files, what)
            src = f"read_parquet({lit(_glob.escape(s) if literal else s)}, union_by_name = true)"
        else:
            if not p.is_file():
                raise DataError(f"{what} not found: {s}")
            from fairaudit.data import sniff_delimiter
            with open(p, "rb") as fh:
                header = fh.readline().decode("utf-8-sig", errors="replace")
            sep = "\t" if p.suffix.lower() == ".tsv" else sniff_delimiter(header)
            src = f"read_csv({lit(_glob.escape(s))}, header = true, delim = {lit(sep)}, sample_size = -1)"
        return con.sql(f"SELECT * FROM {src}")
    except DataError:
        raise
    except duckdb.Error as e:
        raise DataError(f"{s}: cannot be read as a table ({type(e).__name__}: {exception_text(e, 500)})") from e


def query_relation(sql: str, what: str = "--query") -> duckdb.DuckDBPyRelation:
    """The relation of a SQL query run by DuckDB (``select … from read_parquet('logs/*.parquet')``):
    the log is whatever it returns, streamed like a file; a one-line :class:`DataError`
    when DuckDB refuses it.

    The query must be one read-only SELECT (:func:`single_select`), and it runs on a
    connection that can read only the local files and folders the query names, with
    external access, extension installing and auto-loading off and its configuration
    locked (:func:`read_only_connection`): ``COPY … TO``, ``EXPORT DATABASE``, ``ATTACH``,
    ``INSTALL``, several statements, or a read of a file the query does not name are
    refused."""
    if not str(sql).strip():
        raise DataError(f"{what}: the query is empty")
    single_select(sql, what)
    con = read_only_connection(query_paths(sql))
    try:
        rel = con.sql(sql)
    except duckdb.Error as e:
        raise DataError(f"{what}: DuckDB cannot run the query ({type(e).__name__}: {exception_text(e, 500)})") from e
    if rel is None:
        raise DataError(f"{what}: the query returns no table (write a SELECT)")
    return rel


#: Parquet files whose schemas are checked for duplicate column names (the rest of a
#: larger glob is read by name, union_by_name)
SCHEMA_CHECKED_FILES = 2000


def refuse_duplicate_parquet_columns(files, what: str) -> None:
    """A Parquet file with two columns of one name (DuckDB would rename one ``NAME_1``
    and the verdict would depend on their order) is refused, naming the file."""
    import pyarrow.parquet as pq
    from collections import Counter
    for f in list(files)[:SCHEMA_CHECKED_FILES]:
        try:
            names = pq.read_schema(f).names
        except Exception:  # noqa: BLE001 - unreadable: DuckDB says why when it scans
            continue
        dup = [n for n, c in Counter(names).items() if c > 1]
        if dup:
            raise DataError(f"{what}: {f} has {Counter(names)[dup[0]]} columns named {dup[0]!r}; column names must "
                            f"be unique: rename one")


def single_select(sql: str, what: str = "--query") -> None:
    """Refuse (:class:`UsageError`, exit 2) anything but exactly one SELECT statement, as
    DuckDB's own parser reads it."""
    from fairaudit.errors import UsageError
    try:
        statements = duckdb.extract_statements(str(sql))
    except duckdb.Error as e:
        raise UsageError(f"{what}: DuckDB cannot parse the query ({type(e).__name__}: {exception_text(e, 300)})") from None
    if len(statements) != 1:
        raise UsageError(f"{what}: give exactly one SELECT statement; the query has {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        name = str(getattr(kind, "name", kind)).upper()
        raise UsageError(f"{what}: only one read-only SELECT is run; the query is a {name} statement, refused")


def _string_literals(sql: str) -> list[str]:
    """The SQL string constants of ``sql`` ('…' with '' for a quote), by DuckDB's tokenizer."""
    out = []
    for start, kind in duckdb.tokenize(sql):
        if kind != duckdb.token_type.string_const or sql[start] != "'":
            continue
        i, buf = start + 1, []
        while i < len(sql):
            if sql[i] == "'":
                if sql[i + 1:i + 2] == "'":
                    buf.append("'")
                    i += 2
                    continue
                break
            buf.append(sql[i])
            i += 1
        out.append("".join(buf))
    return out


def query_paths(sql: str) -> tuple[list[str], list[str]]:
    """``(files, folders)`` a query may read: each string constant that names an existing
    local file, and the fixed leading folder of each glob or folder it names."""
    import os
    files, folders = [], []
    for lit_ in _string_literals(sql):
        if not lit_ or "://" in lit_ or len(lit_) > 4096:
            continue
        p = Path(lit_).expanduser()
        if p.is_file():
            files.append(str(p.resolve()))
            files.append(os.path.abspath(str(p)))
        elif p.is_dir():
            folders.append(str(p.resolve()).rstrip("/") + "/")
        elif any(ch in lit_ for ch in "*?["):
            parts = Path(os.path.abspath(lit_)).parts
            fixed = []
            for part in parts:
                if any(ch in part for ch in "*?["):
                    break
                fixed.append(part)
            base = Path(*fixed) if fixed else None
            if base is not None and base.is_dir() and str(base) != "/":
                folders.append(str(base.resolve()).rstrip("/") + "/")
    return sorted(set(files)), sorted(set(folders))


def read_only_connection(paths: tuple[list[str], list[str]] = ([], [])) -> duckdb.DuckDBPyConnection:
    """:func:`connect`'s settings, then: only ``paths`` (files, folders) readable, no
    other file system or network access, no extension installed or auto-loaded, and the
    configuration locked so no statement can undo any of it."""
    files, folders = paths
    con = connect()
    if files:
        con.execute(f"SET allowed_paths = [{', '.join(lit(f) for f in files)}]")
    if folders:
        con.execute(f"SET allowed_directories = [{', '.join(lit(f) for f in folders)}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET lock_configuration = true")
    return con


def duckdb_path(uri: str) -> str:
    """The database file a ``duckdb://`` URL names, by SQLAlchemy's convention: three slashes
    then a relative path (``duckdb:///audit.duckdb`` → ``audit.duckdb``, from the current
    folder), four for an absolute one (``duckdb:////data/audit.duckdb`` → ``/data/audit.duckdb``)."""
    from urllib.parse import urlparse
    u = urlparse(uri)
    path = u.path[1:] if u.path.startswith("/") else u.path
    return u.netloc + ("/" + path if u.netloc and path else path)


def duckdb_table(uri: str, what: str = "decisions log") -> duckdb.DuckDBPyRelation:
    """``duckdb:///relative/db.duckdb?table=NAME`` or ``duckdb:////absolute/db.duckdb?table=NAME``
    (:func:`duckdb_path`): that table of a DuckDB database file, read only."""
    from urllib.parse import parse_qs, urlparse
    path, table = duckdb_path(uri), (parse_qs(urlparse(uri).query).get("table") or [None])[0]
    if not table:
        raise DataError(f"{what}: {uri} names no table; write duckdb:///path/db.duckdb?table=NAME")
    if not Path(path).is_file():
        absolute = not path.startswith("/") and Path("/" + path).is_file()
        hint = (f" (duckdb:/// is followed by a path relative to the current folder; write duckdb:////{path} "
                f"for the absolute one)" if absolute else "")
        raise DataError(f"{what} not found: DuckDB database {path}{hint}")
    try:
        con = duckdb.connect(path, read_only=True)
        return con.table(table)
    except duckdb.Error as e:
        raise DataError(f"{uri}: cannot read table {table!r} ({type(e).__name__}: {exception_text(e, 300)})") from e


def relation_of(obj, con=None) -> duckdb.DuckDBPyRelation:
    """A DuckDB relation over a dataframe without copying it: a DuckDB relation as is;
    pandas, Polars and PyArrow tables through DuckDB's scans of them (Arrow memory is
    read in place); any other narwhals-supported eager frame converted to Arrow first."""
    if isinstance(obj, duckdb.DuckDBPyRelation):
        return obj
    con = con or connect()
    mod = type(obj).__module__.split(".")[0]
    if mod in ("pandas", "polars", "pyarrow"):
        if mod == "polars" and type(obj).__name__ == "LazyFrame":
            obj = obj.collect()
        con.register("user_frame", obj)
        return con.sql("SELECT * FROM user_frame")
    import narwhals as nw
    try:
        frame = nw.from_native(obj, eager_only=True)
    except TypeError as e:
        raise DataError(f"log: a {type(obj).__name__} is not a dataframe fairaudit can read "
                        f"(pandas, Polars, PyArrow, DuckDB relation)") from e
    con.register("user_frame", frame.to_arrow())
    return con.sql("SELECT * FROM user_frame")


# ---------------------------------------------------------------------------
# Validation as queries
# ---------------------------------------------------------------------------

@dataclass
class Rule:
    """A row-level rule: ``bad`` is a SQL predicate over ``raw`` true on offending rows;
    ``message(row, value, extra)`` the one-line error for the first such row."""
    column: str
    bad: str
    message: object
    extra: str = "NULL"     # a SQL expression fetched with the offending value


def _num(col: str, typ: str) -> str:
    c = q(col)
    if is_numeric_type(typ) or typ.upper() == "BOOLEAN":
        return f"TRY_CAST({c} AS DOUBLE)"
    return f"TRY_CAST(TRIM(CAST({c} AS VARCHAR)) AS DOUBLE)"


def numeric_rule(where, col, typ, *, integer=False, allow_na=False, lo=None, hi=None) -> Rule:
    """A numeric role column's rule: missing (unless allowed), not a number, not an integer, out of range."""
    c, v = q(col), _num(col, typ)
    isna = f"({c} IS NULL OR (TRY_CAST({c} AS DOUBLE) IS NOT NULL AND isnan(TRY_CAST({c} AS DOUBLE))))"
    notnum = f"({v} IS NULL OR isnan({v}))"
    parts = [f"(NOT {isna} AND {notnum})" if allow_na else f"({isna} OR {notnum})", f"isinf({v})"]
    fin = f"({v} IS NOT NULL AND isfinite({v}))"
    if integer:
        parts.append(f"({fin} AND {v} <> round({v}))")
    if lo is not None:
        parts.append(f"({fin} AND {v} < {lo})")
    if hi is not None:
        parts.append(f"({fin} AND {v} > {hi})")

    def message(row, value, extra):
        inf = extra is not None and extra in (float("inf"), float("-inf"))
        finite = "a finite number" if inf else "a number"
        what = "missing" if show_value(value) == "missing" else (
            f"{show_value(value)} is not {'an integer' if integer else finite}"
            + (f" in [{lo}, {hi}]" if lo is not None or hi is not None else ""))
        return f"{where}: row {row}, column '{col}': {what}"
    return Rule(col, " OR ".join(parts), message, extra=v)


def selected_expr(typ: str) -> str:
    """``selected`` as a 0/1 integer (NULL when it is not one of the accepted spellings)."""
    c = q("selected")
    if typ.upper() == "BOOLEAN":
        return f"CAST({c} AS INTEGER)"
    if is_numeric_type(typ):
        return f"CASE WHEN {c} IN (0, 1) THEN CAST({c} AS INTEGER) END"
    cases = " ".join(f"WHEN {lit(w)} THEN {v}" for w, v in SELECTED_WORDS.items())
    return f"CASE lower(trim(CAST({c} AS VARCHAR))) {cases} END"


class LogTable:
    """A decisions log held by DuckDB (see the module docstring)."""

    def __init__(self, rel: duckdb.DuckDBPyRelation, where: str = "log"):
        self.rel = rel
        self.where = where
        self.columns = [str(c) for c in rel.columns]
        self.types = {str(c): str(t) for c, t in zip(rel.columns, rel.types)}
        self.canon = "SELECT * FROM raw"     # set by ``canonicalise``
        self._rows = None
        self._flags: dict[str, bool] = {}

    # -- queries -------------------------------------------------------
    def sql(self, query: str):
        """Run ``query`` (which may name ``raw`` and ``log``) and return the relation."""
        body = query.strip()
        if body[:5].upper() == "WITH ":     # the caller's own CTEs follow ``log``
            return self.rel.query("raw", f"WITH log AS ({self.canon}), {body[5:]}")
        return self.rel.query("raw", f"WITH log AS ({self.canon}) {body}")

    def rows(self, query: str) -> list[tuple]:
        return self.sql(query).fetchall()

    def df(self, query: str):
        return self.sql(query).df()

    @property
    def n_rows(self) -> int:
        if self._rows is None:
            self._rows = int(self.rows("SELECT count(*) FROM log")[0][0])
        return self._rows

    def count_distinct(self, column: str) -> int:
        return int(self.rows(f"SELECT count(DISTINCT {q(column)}) FROM log")[0][0])

    def recurs(self, column: str) -> bool:
        """Whether some non-null value of ``column`` appears in more than one row."""
        return bool(self.rows(f"SELECT count({q(column)}) > count(DISTINCT {q(column)}) FROM log")[0][0])

    def value_counts(self, column: str):
        """(distinct values as floats, sorted; their row counts) of a numeric column: one
        grouped scan (the lazy engines' twin is ``LazyLogTable.value_counts``)."""
        import numpy as np
        vc = self.sql(f"SELECT CAST({q(column)} AS DOUBLE) AS v, count(*) AS n FROM log GROUP BY 1 ORDER BY 1").fetchnumpy()
        return np.asarray(vc["v"], dtype=float), np.asarray(vc["n"], dtype=np.int64)

    #: whether counts run on an engine that holds the rows elsewhere (Dask, Spark): a lazy table's
    on_engine = False

    def ranking_sizes(self) -> list[tuple[int, int]]:
        """(ranking size s, rows in rankings of size s), sorted by s."""
        return self.rows("SELECT s, sum(s) FROM (SELECT count(*) AS s FROM log GROUP BY decision_id) GROUP BY s "
                         "ORDER BY s")

    # -- counts (a log held by a lazy engine overrides these: the same totals, computed where the rows are)
    def count_source(self, keys: list[str], value: str, derived: dict | None = None):
        """Where a count query reads: ``(run, source, N, Y)`` — a function running SQL, the
        relation it reads, and the SQL of the row count and of ``sum(value)`` there. Here the
        log itself with ``count(*)`` / ``sum(value)``; ``derived`` names extra columns as SQL
        expressions over ``log`` (in this table's language: :meth:`stratum_expression`)."""
        src = "log"
        if derived:
            src = "(SELECT *, " + ", ".join(f"{e} AS {q(k)}" for k, e in derived.items()) + " FROM log)"
        return self.rows, src, "count(*)", f"sum({q(value)})"

    def stratum_expression(self, column: str, mode: str, edges):
        """The stratum of a row, in this table's language (here SQL; see :func:`stratum_sql`)."""
        return stratum_sql(q(column), mode, edges)

    def score_edges(self, column: str, bins: int):
        """``(mode, edges)`` of the score strata (see :func:`score_stratum_sql`): ``exact`` with
        the distinct scores when at most ``bins``, else ``quantile`` with NumPy's pooled edges."""
        import numpy as np
        c = q(column)
        distinct = self.count_distinct(column)
        if distinct <= bins:
            return "exact", [float(u) for u in sorted(v for (v,) in self.rows(f"SELECT DISTINCT {c} FROM log"))]
        if distinct <= DISTINCT_COUNTS_MAX:
            edges = np.unique(quantile_from_counts(*self.value_counts(column), np.linspace(0, 1, bins + 1)))
        else:
            s = self.sql(f"SELECT {c} FROM log").fetchnumpy()[column].astype(float)
            edges = np.unique(np.quantile(s, np.linspace(0, 1, bins + 1)))
            del s
        return "quantile", edges.tolist()

    def distinct(self, column: str) -> list:
        """The distinct values of ``column`` in the ``log`` view, sorted."""
        return [v for (v,) in self.rows(f"SELECT DISTINCT {q(column)} FROM log ORDER BY 1")]

    def where_equals(self, column: str, value, columns: list[str] | None = None) -> "LogTable":
        """The rows whose ``column`` equals ``value`` (a value :meth:`distinct` gave), in
        log order, as a log of their own: here a filtered view of the same relation (no
        copy; ``columns`` is a hint for engines that move rows)."""
        part = LogTable(self.rel, self.where)
        part.columns, part.types = self.columns, self.types
        part.canon = f"SELECT * FROM ({self.canon}) WHERE CAST({q(column)} AS VARCHAR) = {lit(str(value))}"
        return part

    # -- validation ----------------------------------------------------
    def prefetch(self, rules: list[Rule]) -> None:
        """Whether any row breaks each rule, and the row count: one streamed aggregate."""
        flags = ", ".join(["count(*)"] + [f"bool_or(COALESCE({r.bad}, false))" for r in rules])
        hit = self.rows(f"SELECT {flags} FROM raw")[0]
        self._rows = int(hit[0])
        self._flags.update({r.bad: bool(h) for r, h in zip(rules, hit[1:])})

    def first_violation(self, rules: list[Rule]):
        """The first rule (in order) any row breaks, with its first offending row: one
        streamed aggregate over all rules, then one query for that rule's first row."""
        if not rules:
            return None
        if any(r.bad not in self._flags for r in rules):
            self.prefetch(rules)
        for r in rules:
            h = self._flags[r.bad]
            if h:
                n, value, extra = self.rows(
                    f"SELECT n, {q(r.column)}, {r.extra} FROM (SELECT row_number() OVER () AS n, * FROM raw) "
                    f"WHERE COALESCE({r.bad}, false) ORDER BY n LIMIT 1")[0]
                return LogError(r.message(int(n), value, extra), row=int(n), column=r.column)
        return None


def validate(table: LogTable, kind: str, group_cols: list[str], pred_cols: list[str], score_cols: list[str]):
    """Raise :class:`LogError` for the first row (1-based, header not counted) breaking the
    ``kind`` schema, the message every log source gives; then set the
    table's canonical view."""
    where, T, cols = table.where, table.types, table.columns
    # a missing group value is no error: the ``log`` view reads it as the category UNKNOWN (issue 28)
    grules: list[Rule] = []
    rules: list[Rule] = [Rule("decision_id", f"{q('decision_id')} IS NULL"
                              + (f" OR isnan({q('decision_id')})" if T['decision_id'].upper() in ("DOUBLE", "FLOAT") else ""),
                              lambda n, v, e: f"{where}: row {n}, column 'decision_id': missing")]
    if kind in ("selection", "decision"):
        st = T["selected"]
        if is_numeric_type(st):
            rules.append(numeric_rule(where, "selected", st, integer=True, lo=0, hi=1))
        else:
            rules.append(Rule("selected", f"({selected_expr(st)}) IS NULL",
                              lambda n, v, e: f"{where}: row {n}, column 'selected': " + (
                                  "missing" if show_value(v) == "missing" else
                                  f"{show_value(v)} is not 0/1, true/false or yes/no")))
        if "score" in cols or kind == "selection":
            rules.append(numeric_rule(where, "score", T["score"]))
        if "pick_order" in cols:
            rules.append(numeric_rule(where, "pick_order", T["pick_order"], integer=True, allow_na=True, lo=1))
            sel, po = selected_expr(st), _num("pick_order", T["pick_order"])
            rules.append(Rule("pick_order", f"({sel}) = 1 AND ({po} IS NULL OR isnan({po}))",
                              lambda n, v, e: f"{where}: row {n}, column 'pick_order': missing for a selected individual"))
            rules.append(Rule("pick_order", f"({sel}) = 0 AND {po} IS NOT NULL AND NOT isnan({po})",
                              lambda n, v, e: f"{where}: row {n}, column 'pick_order': {show_value(v)} given for an "
                                              f"individual who was not selected"))
    elif kind == "ranking":
        rules.append(numeric_rule(where, "position", T["position"], integer=True, lo=1))
        err = table.first_violation(rules)
        if err is not None:
            raise err
        _permutation(table)
        rules = []
        if "score" in cols:
            rules.append(numeric_rule(where, "score", T["score"]))
        rules += [numeric_rule(where, c, T[c], lo=0, hi=1) for c in pred_cols]
    elif kind == "assignment":
        rules.append(numeric_rule(where, "arrival", T["arrival"], integer=True))
        rules.append(numeric_rule(where, "location", T["location"], integer=True, allow_na=True, lo=-1))
        rules += [numeric_rule(where, c, T[c]) for c in score_cols]
        loc = _num("location", T["location"])
        rules.append(Rule("location", f"COALESCE({loc}, -1) >= {len(score_cols)}",
                          lambda n, v, e: f"{where}: row {n}, column 'location': {show_value(e)} but only "
                                          f"{len(score_cols)} locations have score columns",
                          extra=f"CAST({loc} AS BIGINT)"))
        if "outcome" in cols:
            rules.append(numeric_rule(where, "outcome", T["outcome"], allow_na=True))
    # one scan answers every row rule (and the group rules checked after the multi-row ones)
    table.prefetch([r for r in rules + grules if r.bad not in table._flags])
    err = table.first_violation(rules)
    if err is not None:
        raise err
    # rules over several rows of a decision, once each row is well-typed
    if "individual_id" in cols and kind in ("selection", "ranking"):
        _duplicates(table)
    err = table.first_violation(grules)
    if err is not None:
        raise err
    table.canon = canonical_sql(table, kind, group_cols, score_cols)


def _permutation(table: LogTable):
    d, p = q("decision_id"), f"CAST({_num('position', table.types['position'])} AS BIGINT)"
    found = table.rows(
        f"SELECT n, {d} FROM (SELECT row_number() OVER () AS n, {d}, {p} AS pos FROM raw) "
        f"QUALIFY pos > count(*) OVER (PARTITION BY {d}) OR row_number() OVER (PARTITION BY {d}, pos ORDER BY n) > 1 "
        f"ORDER BY n LIMIT 1")
    if found:
        n, v = found[0]
        raise LogError(f"{table.where}: row {n}, column 'position': positions within decision {show_value(v)} are not "
                       f"a permutation of 1..n (repeated or out of range)", row=int(n), column="position")


def _duplicates(table: LogTable):
    d, i = q("decision_id"), q("individual_id")
    any_dup = table.rows(f"SELECT count(*) > count(DISTINCT ({d}, {i})) FROM raw WHERE {i} IS NOT NULL")[0][0]
    if not any_dup:
        return
    n, v, dv = table.rows(
        f"SELECT n, {i}, {d} FROM (SELECT row_number() OVER () AS n, {d}, {i} FROM raw WHERE {i} IS NOT NULL) "
        f"QUALIFY row_number() OVER (PARTITION BY {d}, {i} ORDER BY n) > 1 ORDER BY n LIMIT 1")[0]
    raise LogError(duplicate_message(table.where, int(n), v, dv), row=int(n), column="individual_id")


def duplicate_message(where, row, individual, decision) -> str:
    return (f"{where}: row {row}, column 'individual_id': individual {show_value(individual)} appears more than once "
            f"in decision {show_value(decision)} (duplicate (decision_id, individual_id) row)")


def group_string(col: str, typ: str) -> str:
    """A group column as the string pandas' ``astype(str)`` gives (``True``, ``1``, ``1.5``)."""
    c = q(col)
    unknown = lit(UNKNOWN)            # a missing value: the unknown category, as the pandas loaders write it
    if typ.upper() == "BOOLEAN":
        return f"CASE WHEN {c} IS NULL THEN {unknown} WHEN {c} THEN 'True' ELSE 'False' END"
    if typ.upper() in ("DOUBLE", "FLOAT", "REAL"):
        return f"CASE WHEN {c} IS NULL OR isnan({c}) THEN {unknown} ELSE CAST({c} AS VARCHAR) END"
    return f"COALESCE(CAST({c} AS VARCHAR), {unknown})"


def canonical_sql(table: LogTable, kind: str, group_cols: list[str], score_cols: list[str]) -> str:
    """The ``log`` view: the role columns as the checks read them (numbers as DOUBLE,
    ``selected`` as 0/1, positions and locations as integers, group columns as strings),
    over the table's columns only — a validated log has every required one; a table of
    some of its columns (:meth:`LogTable.where_equals` on a lazy engine's log) gets the
    view of those."""
    T = table.types
    out = {c: q(c) for c in table.columns}
    present = set(out)

    def num(c):
        if c in present:
            out[c] = _num(c, T[c])

    if kind in ("selection", "decision"):
        if "selected" in present:
            out["selected"] = selected_expr(T["selected"])
        num("score")
        num("pick_order")
    elif kind == "ranking":
        if "position" in present:
            out["position"] = f"CAST({_num('position', T['position'])} AS BIGINT)"
        num("score")
        for c in table.columns:
            if c.startswith("p_"):
                num(c)
    elif kind == "assignment":
        num("arrival")
        if "location" in present:
            out["location"] = f"CAST(COALESCE({_num('location', T['location'])}, -1) AS BIGINT)"
        for c in score_cols:
            num(c)
        num("outcome")
    for g in group_cols:
        if g in present:
            out[g] = group_string(g, T[g])
    return "SELECT " + ", ".join(f"{e} AS {q(c)}" for c, e in out.items()) + " FROM raw"


# ---------------------------------------------------------------------------
# Sufficient statistics
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CategoryCount:
    """One category (a value of a group column or of an intersection) and its counts;
    quacks like :class:`fairaudit.groups.Category` for the tables (no row mask)."""
    attribute: str
    value: str
    size: int
    selected: float
    extra: tuple = ()

    @property
    def name(self) -> str:
        return f"{self.attribute} = {self.value}"


def attribute_sets(group_cols: list[str], depth: int) -> list[tuple[str, ...]]:
    """Group columns and their intersections of up to ``depth`` columns, in the order of
    ``fairaudit.groups.categories``."""
    return [combo for d in range(1, min(depth, len(group_cols)) + 1) for combo in combinations(group_cols, d)]


def category_counts(table: LogTable, group_cols: list[str], depth: int = 2, value: str = "selected",
                    cluster: str | None = None, where: str | None = None) -> list[CategoryCount]:
    """Rows and ``sum(value)`` per category of every attribute (group column and
    intersection up to ``depth``): one ``GROUP BY GROUPING SETS`` query. Categories in the
    order of ``groups.categories`` (attribute order, then sorted values; intersection values
    joined with `` × ``). With ``cluster`` (a column, e.g. ``individual_id``) each category
    also gets the sums a cluster-robust variance needs (``extra``): clusters C, Σn_c², Σy_c²,
    Σn_c·y_c, Σy_c²/(N−n_c), Σn_c·y_c/(N−n_c), Σn_c²/(N−n_c) and Σn_c⁴/(N−n_c)² over the
    clusters c of the category (N its rows; the last four None for a lone cluster). ``where``: a SQL condition on ``log``
    counting only the rows it holds (e.g. the labelled positives)."""
    sets = attribute_sets(group_cols, depth)
    cond = f" WHERE {where}" if where else ""
    # the columns ``where`` names ("label"): on a lazy engine's cells they are kept as keys,
    # so the condition reads the same values there
    where_cols = [c for c in dict.fromkeys(re.findall(r'"([^"]+)"', where or "")) if c not in group_cols]
    if not sets:
        return []
    gq = [q(g) for g in group_cols]
    gid = f"GROUPING({', '.join(gq)})" if len(gq) > 1 else f"GROUPING({gq[0]})"
    spec = ", ".join("(" + ", ".join(q(c) for c in s) + ")" for s in sets)
    if cluster is None:
        run, src, N, Y = table.count_source(list(group_cols) + where_cols, value)
        res = run(f"SELECT {gid} AS gid, {', '.join(gq)}, {N} AS n, {Y} AS y "
                  f"FROM {src}{cond} GROUP BY GROUPING SETS ({spec})")
        rows = [(r[0], r[1:1 + len(gq)], r[-2], r[-1], ()) for r in res]
    else:
        run, src, N, Y = table.count_source([cluster] + list(group_cols) + where_cols, value)
        cspec = ", ".join("(" + ", ".join([q(cluster)] + [q(c) for c in s]) + ")" for s in sets)
        # per cluster c of a category of N rows: n_c, y_c; summed per category as the small-sample
        # (CR2) variance and its Bell–McCaffrey degrees of freedom need them (stats.cluster_robust_proportion_ci):
        # C, Σn², Σy², Σny, then Σ y²/(N−n), Σ ny/(N−n), Σ n²/(N−n), Σ n⁴/(N−n)² (NULL for a lone cluster)
        inv = "(CASE WHEN tot > nc THEN 1.0 / (tot - nc) END)"
        res = run(
            f"WITH per AS (SELECT {gid} AS gid, {', '.join(gq)}, {N} AS nc, {Y} AS yc "
            f"FROM {src}{cond} GROUP BY GROUPING SETS ({cspec})), "
            f"per2 AS (SELECT *, sum(nc) OVER (PARTITION BY gid, {', '.join(gq)}) AS tot FROM per) "
            f"SELECT gid, {', '.join(gq)}, sum(nc) AS n, sum(yc) AS y, count(*) AS c, sum(nc * nc), sum(yc * yc), "
            f"sum(nc * yc), sum(yc * yc * {inv}), sum(nc * yc * {inv}), sum(nc * nc * {inv}), "
            f"sum(nc * nc * nc * nc * {inv} * {inv}) FROM per2 GROUP BY gid, {', '.join(gq)}")
        rows = [(r[0], r[1:1 + len(gq)], r[1 + len(gq)], r[2 + len(gq)], tuple(r[3 + len(gq):])) for r in res]
    by_set: dict[tuple, list] = {}
    nbits = len(gq)
    for gidv, vals, n, y, extra in rows:
        # GROUPING's bit for column j (first column = highest bit) is 1 when it is rolled up
        present = tuple(g for j, g in enumerate(group_cols) if not (gidv >> (nbits - 1 - j)) & 1)
        key = " × ".join(str(vals[group_cols.index(g)]) for g in present)
        by_set.setdefault(present, []).append((key, int(n), float(y or 0), extra))
    out = []
    for s in sets:
        for key, n, y, extra in sorted(by_set.get(s, []), key=lambda t: t[0]):
            out.append(CategoryCount(" × ".join(s), key, n, y, extra))
    return out


def stratum_counts(table: LogTable, group_cols: list[str], strata, value: str = "selected"):
    """Rows and ``sum(value)`` per (group column, its value, stratum) and per stratum:
    the table a stratified (Cochran–Mantel–Haenszel) comparison of each category with the
    rest needs. ``strata``: the stratum index of a row, in the table's language
    (:meth:`LogTable.stratum_expression`)."""
    gq = [q(g) for g in group_cols]
    spec = ", ".join(f"({g}, s)" for g in gq) + ", (s)"
    gid = f"GROUPING({', '.join(gq)})" if len(gq) > 1 else f"GROUPING({gq[0]})"
    run, src, N, Y = table.count_source(list(group_cols) + ["s"], value, {"s": strata})
    return run(f"SELECT {gid}, {', '.join(gq)}, s, {N}, {Y} FROM {src} GROUP BY GROUPING SETS ({spec})")


DISTINCT_COUNTS_MAX = 2_000_000   # quantiles from (value, count) pairs up to this many distinct scores


def quantile_from_counts(values, counts, q):
    """``np.quantile(x, q)`` (method "linear") of the sample holding ``values[i]`` ``counts[i]``
    times (values sorted), without expanding it: the order statistics NumPy's linear
    method interpolates, found by their ranks, combined with NumPy's own arithmetic
    (virtual index (n − 1)·q and its two-sided lerp), so the result is equal."""
    import numpy as np
    q = np.asarray(q, dtype=float)
    n = int(np.sum(counts))
    vi = (n - 1) * q
    prev = np.floor(vi)
    nxt = prev + 1
    gamma = vi - prev
    prev_i = np.clip(prev, 0, n - 1).astype(np.int64)
    next_i = np.clip(nxt, 0, n - 1).astype(np.int64)
    ends = np.cumsum(counts)                       # order statistic r is values[searchsorted(ends, r, right)]
    a = values[np.searchsorted(ends, prev_i, side="right")]
    b = values[np.searchsorted(ends, next_i, side="right")]
    diff = b - a
    out = a + diff * gamma
    hi = gamma >= 0.5
    out[hi] = (b - diff * (1 - gamma))[hi]
    return out


def score_stratum_sql(table: LogTable, bins: int, column: str = "score"):
    """The twin of ``stats.score_strata`` on a log: ``(expression, edges, K)``, the
    expression in the table's language. Exact scores when at most ``bins`` distinct values;
    else the pooled quantile edges as NumPy computes them from the one score column, and the
    stratum of a row is the count of edges at or below its score, less one, clipped — the
    same float comparisons as ``searchsorted(side="right")``."""
    mode, edges = table.score_edges(column, bins)
    return table.stratum_expression(column, mode, edges), list(map(float, edges)), len(edges) - (mode == "quantile")


def stratum_sql(c: str, mode: str, edges) -> str:
    """The stratum of a row as SQL: ``exact`` — the count of distinct scores below it;
    ``quantile`` — the count of edges at or below it, less one, clipped to 0..K−1."""
    if mode == "exact":
        expr = " + ".join(f"CAST({c} > {dbl(u)} AS INTEGER)" for u in edges[:-1]) if len(edges) > 1 else "0"
        return f"({expr})"
    terms = " + ".join(f"CAST({c} >= {dbl(e)} AS INTEGER)" for e in edges)
    return f"LEAST(GREATEST(({terms}) - 1, 0), {len(edges) - 2})"


def stratified_category_counts(table: LogTable, group_cols: list[str], bins: int, value: str = "selected"):
    """Per category of every group column, the per-stratum ``(a, n1, c, n0)`` arrays that
    ``stats.cmh_from_counts`` takes (selected/size in the category, then in the rest), from
    one ``GROUPING SETS ((g, stratum) …, (stratum))`` query; with the strata's edges and K."""
    import numpy as np
    expr, edges, K = score_stratum_sql(table, bins)
    res = stratum_counts(table, group_cols, expr, value)
    nb = len(group_cols)
    tot_n, tot_y = np.zeros(K), np.zeros(K)
    per: dict[tuple, list] = {}
    for r in res:
        gidv, vals, s, n, y = r[0], r[1:1 + nb], int(r[1 + nb]), r[2 + nb], float(r[3 + nb] or 0)
        present = [j for j in range(nb) if not (gidv >> (nb - 1 - j)) & 1]
        if not present:
            tot_n[s] += n
            tot_y[s] += y
            continue
        j = present[0]
        per.setdefault((j, str(vals[j])), [np.zeros(K), np.zeros(K)])
        per[(j, str(vals[j]))][0][s] += y
        per[(j, str(vals[j]))][1][s] += n
    cats, counts = [], []
    for j, g in enumerate(group_cols):
        for key in sorted(k for (jj, k) in per if jj == j):
            a, n1 = per[(j, key)]
            cats.append(CategoryCount(g, key, int(n1.sum()), float(a.sum())))
            counts.append((a, n1, tot_y - a, tot_n - n1))
    return cats, counts, edges, K
