"""Decisions logs: past decisions read from CSV or Parquet, validated against a schema.

One row per individual per decision event. Column schema by decision kind (names
can be remapped with ``columns={"selected": "hired", ...}``, CLI ``--columns
selected=hired``):

selection
    ``decision_id`` (event), ``score`` (float), ``selected`` (0/1 or true/false);
    optional ``individual_id``, ``pick_order`` (1..k for the selected, empty otherwise),
    ``label``; group columns.
ranking
    ``decision_id``, ``position`` (1 = top; a permutation of 1..n within each event);
    optional ``individual_id``, ``score``, ``p_<label>`` prediction columns, ``label``;
    group columns.
assignment
    ``decision_id`` (a path / year), ``arrival`` (order within the path), ``group``,
    ``location`` (assigned location index, −1 or empty for none), score columns
    ``w_<location>``; optional ``outcome`` (realised 0/1 or value).

The kind is the one whose marker column is present (``selected``, ``position``,
``location``) unless given. Group columns: ``groups=[...]``, or every non-numeric
column that has no role. Rows and columns in errors are 1-based data rows (the
header is not counted), so "row 3" is the third record.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .data import file_sha256, read_table, refuse_duplicate_columns
from .errors import LogError
from .text import show_value

SCHEMAS = {
    "selection": {"required": ["decision_id", "score", "selected"],
                  "optional": ["individual_id", "pick_order", "label"]},
    "ranking": {"required": ["decision_id", "position"],
                "optional": ["individual_id", "score", "label"]},
    "assignment": {"required": ["decision_id", "arrival", "group", "location"],
                   "optional": ["outcome"]},
}
MARKERS = {"selected": "selection", "position": "ranking", "location": "assignment"}


@dataclass
class DecisionLog:
    kind: str
    frame: pd.DataFrame
    path: str = ""
    sha256: str = ""
    group_cols: list[str] = field(default_factory=list)
    pred_cols: list[str] = field(default_factory=list)
    score_cols: list[str] = field(default_factory=list)

    @property
    def n_decisions(self) -> int:
        return int(self.frame["decision_id"].nunique())

    def describe(self) -> dict:
        return {"path": self.path, "kind": self.kind, "sha256": self.sha256, "rows": len(self.frame),
                "decisions": self.n_decisions, "groups": self.group_cols}


def _err(msg, row=None, column=None):
    return LogError(msg, row=row, column=column)


def _numeric(frame, col, where, *, integer=False, allow_na=False, lo=None, hi=None):
    raw = frame[col]
    vals = pd.to_numeric(raw, errors="coerce")
    bad = vals.isna() & ~(raw.isna() if allow_na else False)
    if not allow_na:
        bad = bad | raw.isna()
    arr = vals.to_numpy(dtype=float, na_value=np.nan)
    bad = bad.to_numpy() | (np.isinf(arr))
    if integer:
        bad |= np.isfinite(arr) & (arr != np.round(arr))
    if lo is not None:
        bad |= np.isfinite(arr) & (arr < lo)
    if hi is not None:
        bad |= np.isfinite(arr) & (arr > hi)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        v = raw.iloc[i]
        finite = "a finite number" if np.isinf(arr[i]) else "a number"
        what = "missing" if pd.isna(v) else f"{show_value(v)} is not {'an integer' if integer else finite}" + (
            f" in [{lo}, {hi}]" if lo is not None or hi is not None else "")
        raise _err(f"{where}: row {i + 1}, column '{col}': {what}", row=i + 1, column=col)
    return vals


def load_log(path: str | Path, *, kind: str | None = None, columns: dict | None = None,
             groups: list[str] | None = None, encoding: str | None = None) -> DecisionLog:
    """Read and validate a decisions log; raises :class:`LogError` naming row and column
    (or :class:`DataError` when the file cannot be read as a table; see ``data.read_table``)."""
    frame = read_table(path, "decisions log", encoding=encoding)
    return log_from_frame(frame, kind=kind, columns=columns, groups=groups, path=str(path),
                          sha256=file_sha256(path))


def log_from_frame(frame: pd.DataFrame, *, kind: str | None = None, columns: dict | None = None,
                   groups: list[str] | None = None, path: str = "", sha256: str = "") -> DecisionLog:
    where = path or "log"
    columns = dict(columns or {})
    refuse_duplicate_columns(list(frame.columns), where, LogError)
    # Mapping: role -> user column. Rename user columns to role names.
    for role, col in columns.items():
        if col not in frame.columns:
            raise _err(f"{where}: column '{col}' (mapped to '{role}') is not in the log; it has: "
                       f"{', '.join(map(str, frame.columns))}", column=col)
    clash = [r for r, c in columns.items() if r != c and r in frame.columns and r not in columns.values()]
    if clash:
        raise _err(f"{where}: --columns {clash[0]}={columns[clash[0]]} maps a column to '{clash[0]}', but the log "
                   f"already has a column '{clash[0]}'; rename or drop one", column=clash[0])
    frame = frame.rename(columns={v: k for k, v in columns.items()}).reset_index(drop=True)
    if len(frame) == 0:
        raise _err(f"{where}: the log has no rows")
    if kind is None:
        kinds = [k for m, k in MARKERS.items() if m in frame.columns]
        if len(kinds) != 1:
            raise _err(f"{where}: cannot tell the decision kind: it needs exactly one of the columns "
                       f"'selected' (selection), 'position' (ranking), 'location' (assignment); found "
                       f"{', '.join(kinds) or 'none'} among its columns {', '.join(repr(str(c)) for c in frame.columns[:30])}"
                       f"{' …' if len(frame.columns) > 30 else ''}. Map yours with --columns selected=YOUR_COLUMN.")
        kind = kinds[0]
    schema = SCHEMAS[kind]
    missing = [c for c in schema["required"] if c not in frame.columns]
    if missing:
        raise _err(f"{where}: {'an' if kind[0] in 'aeiou' else 'a'} {kind} log needs column(s) {', '.join(missing)}; it has "
                   f"{', '.join(map(str, frame.columns))}. Rename them or map with --columns {missing[0]}=YOUR_COLUMN.",
                   column=missing[0])
    did = frame["decision_id"]
    if did.isna().any():
        i = int(np.flatnonzero(did.isna().to_numpy())[0])
        raise _err(f"{where}: row {i + 1}, column 'decision_id': missing", row=i + 1, column="decision_id")
    pred_cols = [c for c in frame.columns if str(c).startswith("p_")]
    score_cols: list[str] = []
    if kind == "selection":
        sel = frame["selected"]
        if pd.api.types.is_bool_dtype(sel) and not sel.isna().any():
            frame["selected"] = sel.astype(int)
        elif not pd.api.types.is_numeric_dtype(sel):
            # text (object, pandas' "string", pandas 3's "str"), categorical or mixed values
            sel = pd.Series(sel.to_numpy(dtype=object), index=sel.index).map(_selected_value)
            bad = sel.isna().to_numpy()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                v = frame["selected"].iloc[i]
                raise _err(f"{where}: row {i + 1}, column 'selected': "
                           + ("missing" if pd.isna(v) else f"{show_value(v)} is not 0/1, true/false or yes/no"),
                           row=i + 1, column="selected")
            frame["selected"] = sel.astype(int)
        else:
            frame["selected"] = _numeric(frame, "selected", where, integer=True, lo=0, hi=1).astype(int)
        frame["score"] = _numeric(frame, "score", where)
        if "pick_order" in frame.columns:
            po = _numeric(frame, "pick_order", where, integer=True, allow_na=True, lo=1)
            frame["pick_order"] = po
            bad = (frame["selected"] == 1).to_numpy() & po.isna().to_numpy()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise _err(f"{where}: row {i + 1}, column 'pick_order': missing for a selected individual",
                           row=i + 1, column="pick_order")
    elif kind == "ranking":
        frame["position"] = _numeric(frame, "position", where, integer=True, lo=1).astype(int)
        size = frame.groupby("decision_id")["position"].transform("size")
        bad = (frame["position"] > size).to_numpy()
        dup = frame.duplicated(["decision_id", "position"], keep="first").to_numpy()
        if bad.any() or dup.any():
            i = int(np.flatnonzero(bad | dup)[0])
            raise _err(f"{where}: row {i + 1}, column 'position': positions within decision "
                       f"{show_value(frame['decision_id'].iloc[i])} are not a permutation of 1..n (repeated or out of range)",
                       row=i + 1, column="position")
        if "score" in frame.columns:
            frame["score"] = _numeric(frame, "score", where)
        for c in pred_cols:
            frame[c] = _numeric(frame, c, where, lo=0, hi=1)
    elif kind == "assignment":
        frame["arrival"] = _numeric(frame, "arrival", where, integer=True)
        frame["location"] = _numeric(frame, "location", where, integer=True, allow_na=True, lo=-1).fillna(-1).astype(int)
        score_cols = [c for c in frame.columns if str(c).startswith("w_")]
        if not score_cols:
            raise _err(f"{where}: an assignment log needs score columns w_0, w_1, … (one per location)",
                       column="w_0")
        for c in score_cols:
            frame[c] = _numeric(frame, c, where)
        over = frame["location"].to_numpy() >= len(score_cols)
        if over.any():
            i = int(np.flatnonzero(over)[0])
            raise _err(f"{where}: row {i + 1}, column 'location': {frame['location'].iloc[i]} but only "
                       f"{len(score_cols)} locations have score columns", row=i + 1, column="location")
        if "outcome" in frame.columns:
            frame["outcome"] = _numeric(frame, "outcome", where, allow_na=True)
    role = set(SCHEMAS[kind]["required"]) | set(SCHEMAS[kind]["optional"]) | set(pred_cols) | set(score_cols)
    if groups is not None:
        missing = [g for g in groups if g not in frame.columns]
        if missing:
            raise _err(f"{where}: group column(s) {', '.join(missing)} not found", column=missing[0])
        group_cols = list(groups)
    else:
        group_cols = [c for c in frame.columns if c not in role
                      and (not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))]
        if kind == "assignment":
            group_cols = ["group"] + [g for g in group_cols if g != "group"]
    for g in group_cols:
        na = frame[g].isna().to_numpy()
        if na.any():
            i = int(np.flatnonzero(na)[0])
            raise _err(f"{where}: row {i + 1}, column '{g}': missing group value", row=i + 1, column=g)
    return DecisionLog(kind=kind, frame=frame, path=path, sha256=sha256, group_cols=group_cols,
                       pred_cols=pred_cols, score_cols=score_cols)


_SELECTED_WORDS = {"true": 1, "false": 0, "yes": 1, "no": 0, "1": 1, "0": 0, "1.0": 1, "0.0": 0, "y": 1, "n": 0}


def _selected_value(v):
    """0/1 from a ``selected`` cell written as a word or number; None when it is neither."""
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return int(v) if v in (0, 1) else None
    if isinstance(v, str):
        return _SELECTED_WORDS.get(v.strip().lower())
    return None


def is_log_path(spec: str) -> bool:
    return Path(str(spec).split("::")[0]).suffix.lower() in (".csv", ".parquet", ".pq", ".tsv")
