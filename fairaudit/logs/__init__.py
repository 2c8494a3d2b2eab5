"""The log wing: decisions logs read, validated and aggregated where they live.

- :mod:`fairaudit.logs.load` — read a log (CSV, Parquet, a DuckDB table, a query, a
  DataFrame) into a :class:`DecisionLog`; the column schema per decision kind.
- :mod:`fairaudit.logs.duckdb` — the :class:`~fairaudit.logs.duckdb.LogTable` over a DuckDB
  relation: validation and the sufficient statistics as SQL aggregations.
- :mod:`fairaudit.logs.lazy` — the same for a Dask or Spark DataFrame, through narwhals
  (the aggregations run on the engine where the log lives; nothing is collected whole).

Checks ask a log for counts through the table's methods; they never read rows.
"""
from .load import (DecisionLog, frame_relation, infer_kind, is_log_frame, is_log_path, load_log, load_query,
                   log_from_any, log_from_frame, log_from_relation, source_sha256)

__all__ = ["DecisionLog", "frame_relation", "infer_kind", "is_log_frame", "is_log_path", "load_log", "load_query",
           "log_from_any", "log_from_frame", "log_from_relation", "source_sha256"]
