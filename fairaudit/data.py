"""Population data (``--data FILE``) and built-in input generators.

Population schema (one row per individual; CSV or Parquet). Column roles, by name
unless remapped with ``columns={"score": "my_col", ...}``:

=============== =========================================================
``id``          optional identifier (kept for reports)
``score``       claim / score (float; required for selection); alias ``claim``
``label``       optional outcome label (int or float)
``p_<label>``   optional prediction columns for ranking (a row sums to 1)
group columns   listed with ``groups=[...]``; by default every non-numeric
                (string, category, bool) column not named above
other numeric   features (passed to allocators that ask for ``features``)
=============== =========================================================
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError

ROLE_ALIASES = {"score": ("score", "claim", "claims", "scores"), "label": ("label", "y"), "id": ("id",)}


def read_table(path: str | Path, what: str = "data file") -> pd.DataFrame:
    """Read a CSV or Parquet file, with a one-line error when it cannot be read
    (``what`` names the file's role in that message)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{what} not found: {path}")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(p)
        if p.suffix.lower() in (".csv", ".txt", ".tsv"):
            return pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",")
    except Exception as e:
        raise DataError(f"{path}: cannot be read ({type(e).__name__}: {e})") from e
    raise DataError(f"{path}: unsupported file type '{p.suffix}'; use .csv or .parquet")


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass
class Population:
    """Individuals with scores, optional labels, predictions, groups and features."""

    frame: pd.DataFrame
    path: str = ""
    sha256: str = ""
    score_col: str | None = None
    label_col: str | None = None
    id_col: str | None = None
    pred_cols: list[str] = field(default_factory=list)
    group_cols: list[str] = field(default_factory=list)
    feature_cols: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.frame)

    @property
    def scores(self) -> np.ndarray | None:
        return None if self.score_col is None else self.frame[self.score_col].to_numpy(dtype=float)

    @property
    def labels(self) -> np.ndarray | None:
        return None if self.label_col is None else self.frame[self.label_col].to_numpy()

    @property
    def predictions(self) -> np.ndarray | None:
        return None if not self.pred_cols else self.frame[self.pred_cols].to_numpy(dtype=float)

    @property
    def groups(self) -> pd.DataFrame | None:
        return None if not self.group_cols else self.frame[self.group_cols].astype(str).reset_index(drop=True)

    @property
    def features(self) -> pd.DataFrame | None:
        return None if not self.feature_cols else self.frame[self.feature_cols].reset_index(drop=True)

    def describe(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "n": self.n, "score": self.score_col,
                "label": self.label_col, "groups": self.group_cols, "predictions": self.pred_cols,
                "features": self.feature_cols}


def _find(frame: pd.DataFrame, role: str, columns: dict) -> str | None:
    if role in columns:
        c = columns[role]
        if c not in frame.columns:
            raise DataError(f"column '{c}' (mapped to {role}) is not in the data; it has: {', '.join(map(str, frame.columns))}")
        return c
    for alias in ROLE_ALIASES.get(role, (role,)):
        if alias in frame.columns:
            return alias
    return None


def population_from_frame(frame: pd.DataFrame, *, columns: dict | None = None, groups: list[str] | None = None,
                          path: str = "", sha256: str = "") -> Population:
    """Assign column roles and validate them (finite numeric scores; named groups exist)."""
    columns = dict(columns or {})
    frame = frame.reset_index(drop=True)
    score = _find(frame, "score", columns)
    label = _find(frame, "label", columns)
    idc = _find(frame, "id", columns)
    preds = [c for c in frame.columns if str(c).startswith("p_")]
    where = path or "data"
    if score is not None:
        col = pd.to_numeric(frame[score], errors="coerce")
        bad = col.isna() | ~np.isfinite(col.to_numpy(dtype=float, na_value=np.nan))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{where}: row {i + 1}, column '{score}': score {frame[score].iloc[i]!r} is not a finite number")
        frame = frame.assign(**{score: col.astype(float)})
    if preds:
        P = frame[preds].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(P) | (P < 0) | (P > 1)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise DataError(f"{where}: row {i + 1}, column '{preds[j]}': prediction {frame[preds[j]].iloc[i]!r} is not in [0, 1]")
    role_cols = {c for c in (score, label, idc) if c is not None} | set(preds)
    if groups is not None:
        missing = [g for g in groups if g not in frame.columns]
        if missing:
            raise DataError(f"{where}: group column(s) {', '.join(missing)} not found; it has: {', '.join(map(str, frame.columns))}")
        group_cols = list(groups)
    else:
        group_cols = [c for c in frame.columns if c not in role_cols
                      and (not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))]
    for g in group_cols:
        if frame[g].isna().any():
            i = int(np.flatnonzero(frame[g].isna().to_numpy())[0])
            raise DataError(f"{where}: row {i + 1}, column '{g}': missing group value")
    features = [c for c in frame.columns if c not in role_cols and c not in group_cols
                and pd.api.types.is_numeric_dtype(frame[c])]
    return Population(frame=frame, path=path, sha256=sha256, score_col=score, label_col=label, id_col=idc,
                      pred_cols=preds, group_cols=group_cols, feature_cols=features)


def load_population(path: str | Path, *, columns: dict | None = None, groups: list[str] | None = None) -> Population:
    frame = read_table(path)
    if len(frame) == 0:
        raise DataError(f"{path}: has no rows")
    return population_from_frame(frame, columns=columns, groups=groups, path=str(path), sha256=file_sha256(path))


# ---------------------------------------------------------------------------
# Built-in claim generators (seed 000's simulation distributions)
# ---------------------------------------------------------------------------

def generate_claims(distribution: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Claims in [0, 1] from one of seed 000's simulation distributions (§5):
    ``uniform``, ``truncated_normal`` (N(0.5, 0.15²) truncated to [0,1]),
    ``inverted_normal`` (mass near 0 and 1: 1 − |x| folded), ``pareto`` (shape 3,
    rescaled to [0,1]: few strong claims), ``inverted_pareto`` (1 − pareto: few weak
    claims). Strictly positive, so BF.2 applies to everyone.

    Decision (SPEC is silent on the parameters): the seed names the families without
    parameters that survived extraction; these are the documented choices.
    """
    from scipy import stats as st
    if distribution == "uniform":
        c = rng.uniform(0, 1, n)
    elif distribution == "truncated_normal":
        c = st.truncnorm.rvs((0 - 0.5) / 0.15, (1 - 0.5) / 0.15, loc=0.5, scale=0.15, size=n, random_state=rng)
    elif distribution == "inverted_normal":
        x = st.truncnorm.rvs((0 - 0.5) / 0.15, (1 - 0.5) / 0.15, loc=0.5, scale=0.15, size=n, random_state=rng)
        c = np.where(x < 0.5, 0.5 - x, 1.5 - x)
    elif distribution == "pareto":
        x = rng.pareto(3.0, n)
        c = x / x.max()
    elif distribution == "inverted_pareto":
        x = rng.pareto(3.0, n)
        c = 1 - x / x.max()
    else:
        raise DataError(f"unknown claim distribution {distribution!r}; choose from {', '.join(CLAIM_DISTRIBUTIONS)}")
    return np.clip(c, 1e-6, 1.0)


CLAIM_DISTRIBUTIONS = ("uniform", "truncated_normal", "inverted_normal", "pareto", "inverted_pareto")
