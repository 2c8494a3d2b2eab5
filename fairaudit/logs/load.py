"""Decisions logs: past decisions read from CSV or Parquet, validated against a schema.

One row per individual per decision event. Column schema by decision kind (names
can be remapped with ``columns={"selected": "hired", ...}``, CLI ``--columns
selected=hired``):

selection
    ``decision_id`` (event), ``score`` (float), ``selected`` (0/1 or true/false);
    optional ``individual_id``, ``pick_order`` (1..k for the selected, empty otherwise),
    ``label``; group columns.
decision
    ``selected`` (0/1), one row per per-person decision (any number of yeses, no k);
    optional ``decision_id``, ``individual_id``, ``score``, ``label``; group columns. A
    log with ``selected`` and no ``decision_id`` is of this kind.
ranking
    ``decision_id``, ``position`` (1 = top; a permutation of 1..n within each event);
    optional ``individual_id``, ``score``, ``p_<label>`` prediction columns, ``label``;
    group columns.
assignment
    ``decision_id`` (a path / year), ``arrival`` (order within the path), ``group``,
    ``location`` (assigned location index, −1 or empty for none), score columns
    ``w_<location>``; optional ``outcome`` (realised 0/1 or value).

A log with ``score``, no ``decision_id`` and none of the marker columns is a scoring tool's
log (files, pandas, DuckDB): per-person decisions whose ``selected`` is a score above the median of all rows'
scores, so that selection rates are LL144's scoring rates (issue 28).

The kind is the one whose marker column is present (``selected``, ``position``,
``location``) unless given. Group columns: ``groups=[...]``, or every non-numeric
column that has no role. Rows and columns in errors are 1-based data rows (the
header is not counted), so "row 3" is the third record.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from fairaudit.data import file_sha256, read_table, refuse_duplicate_columns
from fairaudit.errors import LogError
from fairaudit.logs.duckdb import LogTable, is_scan_path, relation_of

SCHEMAS = {
    "selection": {"required": ["decision_id", "score", "selected"],
                  "optional": ["individual_id", "pick_order", "label"]},
    "ranking": {"required": ["decision_id", "position"],
                "optional": ["individual_id", "score", "label"]},
    "assignment": {"required": ["decision_id", "arrival", "group", "location"],
                   "optional": ["outcome"]},
    # per-person decisions (issue 17): one row per decision, any number of yeses, no k
    "decision": {"required": ["selected"], "optional": ["decision_id", "individual_id", "score", "label"]},
}
MARKERS = {"selected": "selection", "position": "ranking", "location": "assignment"}


class DecisionLog:
    """A validated decisions log. ``table`` is its DuckDB relation (see
    :mod:`fairaudit.logs.duckdb`), which the log checks aggregate; ``frame``, the rows as a
    pandas DataFrame, is read from it only when something asks for the rows."""

    def __init__(self, kind: str, table: LogTable, path: str = "", sha256: str = "",
                 group_cols: list[str] | None = None, pred_cols: list[str] | None = None,
                 score_cols: list[str] | None = None):
        self.kind, self.path, self.sha256 = kind, path, sha256
        self.group_cols = list(group_cols or [])
        self.pred_cols = list(pred_cols or [])
        self.score_cols = list(score_cols or [])
        self._frame = None
        self.table = table
        #: a log of scores without selections (a scoring tool, issue 28): the median score above
        #: which a row counts as 'selected' (LL144's scoring rate), else None
        self.scoring_median: float | None = None

    @property
    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            self._frame = self.table.df("SELECT * FROM log")
        return self._frame

    @property
    def columns(self) -> list[str]:
        return list(self._frame.columns) if self._frame is not None else list(self.table.columns)

    @property
    def n_rows(self) -> int:
        return len(self._frame) if self._frame is not None else self.table.n_rows

    @property
    def n_decisions(self) -> int:
        if self._frame is not None:
            return int(self._frame["decision_id"].nunique())
        return self.table.count_distinct("decision_id")

    def individual_recurs(self) -> bool:
        """Whether some ``individual_id`` appears in more than one row (so rows of one
        person are not independent trials)."""
        if "individual_id" not in self.columns:
            return False
        return self.table.recurs("individual_id")

    def describe(self) -> dict:
        return {"path": self.path, "kind": self.kind, "sha256": self.sha256, "rows": self.n_rows,
                "decisions": self.n_decisions, "groups": self.group_cols}


def frame_relation(frame: pd.DataFrame):
    """A pandas frame as a DuckDB relation, scanned in place (not copied); object columns
    DuckDB cannot scan (mixed objects) are read as text."""
    try:
        return relation_of(frame)
    except Exception:  # noqa: BLE001 - a column DuckDB cannot scan (mixed objects): as text
        fixed = frame.copy()
        for c in fixed.columns:
            if fixed[c].dtype == object:
                fixed[c] = fixed[c].astype(str)
        return relation_of(fixed)


def _err(msg, row=None, column=None):
    return LogError(msg, row=row, column=column)


CSV_SCAN_BYTES = 64 * 2 ** 20


def load_log(path: str | Path, *, kind: str | None = None, columns: dict | None = None,
             groups: list[str] | None = None, encoding: str | None = None) -> DecisionLog:
    """Read and validate a decisions log; raises :class:`LogError` naming row and column
    (or :class:`DataError` when the file cannot be read as a table; see ``data.read_table``).

    Parquet files, globs (``logs/*.parquet``), hive-partitioned directories and CSV files
    over 64 MB are scanned by DuckDB and validated by queries (:mod:`fairaudit.logs.duckdb`):
    the rows are never loaded into pandas unless a check asks for them."""
    spec = str(path)
    big_csv = (Path(spec).suffix.lower() in (".csv", ".tsv") and Path(spec).is_file()
               and Path(spec).stat().st_size > CSV_SCAN_BYTES and encoding in (None, "utf-8", "utf8"))
    if is_scan_path(spec) or big_csv:
        from fairaudit.logs.duckdb import scan_path
        return log_from_relation(scan_path(spec), kind=kind, columns=columns, groups=groups, path=spec,
                                 sha256=source_sha256(spec))
    frame = read_table(path, "decisions log", encoding=encoding)
    return log_from_frame(frame, kind=kind, columns=columns, groups=groups, path=str(path), sha256=file_sha256(path))


def load_query(sql: str, *, kind: str | None = None, columns: dict | None = None,
               groups: list[str] | None = None) -> DecisionLog:
    """A decisions log from a SQL query DuckDB runs (``fairaudit check --query``), validated
    by queries like a scanned file; errors name the log ``query``."""
    from fairaudit.logs.duckdb import query_relation
    import hashlib
    return log_from_relation(query_relation(sql), kind=kind, columns=columns, groups=groups, path="query",
                             sha256=hashlib.sha256(sql.encode()).hexdigest())


def infer_kind(names: list[str], where: str) -> str:
    """The decision kind a log's columns mark: exactly one of ``selected`` / ``position`` /
    ``location``; a selection log without ``decision_id`` is one row per decision
    (``decision``)."""
    kinds = [k for m, k in MARKERS.items() if m in names]
    if len(kinds) != 1:
        raise _err(f"{where}: cannot tell the decision kind: it needs exactly one of the columns "
                   f"'selected' (selection), 'position' (ranking), 'location' (assignment); found "
                   f"{', '.join(kinds) or 'none'} among its columns {', '.join(repr(c) for c in names[:30])}"
                   f"{' …' if len(names) > 30 else ''}. Map yours with --columns selected=YOUR_COLUMN.")
    if kinds[0] == "selection" and "decision_id" not in names:
        return "decision"
    return kinds[0]


def log_from_frame(frame: pd.DataFrame, *, kind: str | None = None, columns: dict | None = None,
                   groups: list[str] | None = None, path: str = "", sha256: str = "") -> DecisionLog:
    """A decisions log from a pandas DataFrame: scanned in place by DuckDB and validated by
    the one validator every source goes through (:func:`log_from_relation`), so a frame, a
    file and a Dask or Spark log get the same messages by construction."""
    # (DuckDB would rename a repeated column name: refuse it while the frame still shows it)
    refuse_duplicate_columns(list(frame.columns), path or "log", LogError)
    return log_from_relation(frame_relation(frame), kind=kind, columns=columns, groups=groups, path=path,
                             sha256=sha256)


def is_log_path(spec: str) -> bool:
    s = str(spec).split("::")[0]
    if s.startswith("duckdb://"):
        return True
    return Path(s).suffix.lower() in (".csv", ".parquet", ".pq", ".tsv") or is_scan_path(s) and ":" not in Path(s).name


def source_sha256(spec: str) -> str:
    """SHA-256 of a log file; of the sorted (name, SHA-256) list for a glob or a directory."""
    import glob
    import hashlib
    if spec.startswith("duckdb://"):
        return ""      # a live database table: no file content to fingerprint
    p = Path(spec)
    if p.is_file():
        return file_sha256(p)
    files = sorted(glob.glob(str(p / "**" / "*.parquet"), recursive=True) if p.is_dir() else glob.glob(spec))
    h = hashlib.sha256()
    for f in files:
        h.update(f"{Path(f).relative_to(p) if p.is_dir() else f}\0{file_sha256(f)}\n".encode())
    return h.hexdigest()


def log_from_relation(rel, *, kind: str | None = None, columns: dict | None = None,
                      groups: list[str] | None = None, path: str = "", sha256: str = "") -> DecisionLog:
    """A decisions log from a DuckDB relation (a scanned file or a user's dataframe),
    validated by queries (:func:`fairaudit.logs.duckdb.validate`) — the one validator of
    every log source; a Dask or Spark log first asks its engine whether any row breaks a rule
    (:func:`fairaudit.logs.lazy.lazy_validate`) and only then collects the rows for the message."""
    from fairaudit.logs.duckdb import LogTable, q, validate, is_numeric_type
    from fairaudit.logs.lazy import LazyLogTable, lazy_validate
    where = path or "log"
    lazy = isinstance(rel, LazyLogTable)
    names = list(rel.columns) if lazy else [str(c) for c in rel.columns]
    refuse_duplicate_columns(names, where, LogError)
    columns = dict(columns or {})
    for role, col in columns.items():
        if col not in names:
            raise _err(f"{where}: column '{col}' (mapped to '{role}') is not in the log; it has: "
                       f"{', '.join(names)}", column=col)
    clash = [r for r, c in columns.items() if r != c and r in names and r not in columns.values()]
    if clash:
        raise _err(f"{where}: --columns {clash[0]}={columns[clash[0]]} maps a column to '{clash[0]}', but the log "
                   f"already has a column '{clash[0]}'; rename or drop one", column=clash[0])
    if columns:
        back = {v: k for k, v in columns.items()}
        if lazy:
            rel.rename(back)
        else:
            rel = rel.query("src", "SELECT " + ", ".join(f"{q(c)} AS {q(back.get(c, c))}" for c in names) + " FROM src")
        names = [back.get(c, c) for c in names]
    table = rel if lazy else LogTable(rel, where)
    table.where = where
    if not lazy and table.n_rows == 0:      # (a lazy engine counts its rows in the validation pass)
        raise _err(f"{where}: the log has no rows")
    scoring_median = None
    if kind is None and "score" in names and "decision_id" not in names and not any(m in names for m in MARKERS):
        # a scoring tool's log (one row per person: scores, no decision ids, no selections): LL144
        # judges its scoring rates — the share
        # of each category scoring above the sample's median — so a row is 'selected' when its
        # score is above the median of all rows' scores (issue 28)
        if lazy:
            raise _err(f"{where}: a log of scores without a 'selected' column is read from files, pandas or DuckDB; "
                       f"on Dask or Spark add selected = (score > median) first", column="score")
        med = table.rows(f"SELECT quantile_cont(TRY_CAST({q('score')} AS DOUBLE), 0.5) FROM raw")[0][0]
        if med is not None:
            scoring_median = float(med)
            rel = table.rel.query("src", f"SELECT *, CASE WHEN TRY_CAST({q('score')} AS DOUBLE) > "
                                         f"CAST('{scoring_median!r}' AS DOUBLE) THEN 1 ELSE 0 END AS selected FROM src")
            names.append("selected")
            table = LogTable(rel, where)
            kind = "decision"
    if kind is None:
        kind = infer_kind(names, where)
    if kind == "decision" and "decision_id" not in names:      # each row its own decision
        rel = table.rel.query("src", "SELECT *, row_number() OVER () AS decision_id FROM src")
        names.append("decision_id")
        table = LogTable(rel, where)
    schema = SCHEMAS[kind]
    missing = [c for c in schema["required"] if c not in names]
    if missing:
        raise _err(f"{where}: {'an' if kind[0] in 'aeiou' else 'a'} {kind} log needs column(s) {', '.join(missing)}; it has "
                   f"{', '.join(names)}. Rename them or map with --columns {missing[0]}=YOUR_COLUMN.",
                   column=missing[0])
    pred_cols = [c for c in names if c.startswith("p_")]
    score_cols = [c for c in names if c.startswith("w_")] if kind == "assignment" else []
    if kind == "assignment" and not score_cols:
        raise _err(f"{where}: an assignment log needs score columns w_0, w_1, … (one per location)", column="w_0")
    role = set(schema["required"]) | set(schema["optional"]) | set(pred_cols) | set(score_cols)
    if groups is not None:
        gmiss = [g for g in groups if g not in names]
        if gmiss:
            raise _err(f"{where}: group column(s) {', '.join(gmiss)} not found", column=gmiss[0])
        group_cols = list(groups)
    else:
        group_cols = [c for c in names if c not in role and (not is_numeric_type(table.types[c]))]
        if kind == "assignment":
            group_cols = ["group"] + [g for g in group_cols if g != "group"]
    (lazy_validate if lazy else validate)(table, kind, group_cols, pred_cols, score_cols)
    if lazy and table.n_rows == 0:
        raise _err(f"{where}: the log has no rows")
    out = DecisionLog(kind=kind, path=path, sha256=sha256, group_cols=group_cols, pred_cols=pred_cols,
                      score_cols=score_cols, table=table)
    out.scoring_median = scoring_median
    return out


def is_log_frame(obj) -> bool:
    """A dataframe or relation that can be audited as a log (pandas, Polars, PyArrow,
    DuckDB, or anything narwhals reads eagerly)."""
    import duckdb
    from fairaudit.logs.lazy import is_lazy_engine_frame
    if isinstance(obj, (pd.DataFrame, duckdb.DuckDBPyRelation)) or is_lazy_engine_frame(obj):
        return True
    mod = type(obj).__module__.split(".")[0]
    if mod in ("polars", "pyarrow"):
        return type(obj).__name__ in ("DataFrame", "LazyFrame", "Table")
    try:
        import narwhals as nw
        nw.from_native(obj, eager_only=True)
        return not isinstance(obj, (str, bytes, Path))
    except Exception:  # noqa: BLE001 - not a frame
        return False


def log_from_any(obj, *, kind: str | None = None, columns: dict | None = None, groups: list[str] | None = None,
                 path: str = "") -> DecisionLog:
    """A decisions log from a pandas DataFrame, a Polars / PyArrow table, a DuckDB relation or
    another narwhals-readable frame (scanned in place by DuckDB), or a Dask / PySpark frame
    (aggregated on its engine); every source is validated by :func:`log_from_relation`."""
    where = path or f"log ({type(obj).__module__.split('.')[0]} {type(obj).__name__})"
    if isinstance(obj, pd.DataFrame):
        return log_from_frame(obj, kind=kind, columns=columns, groups=groups, path=where)
    from fairaudit.logs.lazy import LazyLogTable, is_lazy_engine_frame
    if is_lazy_engine_frame(obj):       # Dask / PySpark: aggregated on that engine (fairaudit.logs.lazy)
        return log_from_relation(LazyLogTable(obj, where), kind=kind, columns=columns, groups=groups, path=where)
    return log_from_relation(relation_of(obj), kind=kind, columns=columns, groups=groups, path=where)
