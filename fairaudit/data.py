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

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .groups import UNKNOWN
from .errors import DataError
from .text import exception_text, show_value

ROLE_ALIASES = {"score": ("score", "claim", "claims", "scores"), "label": ("label", "y"), "id": ("id",)}


def read_table(path: str | Path, what: str = "data file", encoding: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file, with a one-line error when it cannot be read
    (``what`` names the file's role in that message).

    Text files are decoded as UTF-8 (a byte-order mark is dropped) unless ``encoding`` is
    given; a file that is not UTF-8 is refused with the encoding it looks like and the
    ``--encoding`` to pass, a binary file as not text. The delimiter is ``,`` (tab for
    ``.tsv``) unless the header has no comma but ``;``, tab or ``|``, which is then used.
    Duplicate column names are refused (pandas would rename the second to ``name.1``).
    Rows in messages are data rows, the header not counted."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{what} not found: {path}")
    suffix = p.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(p)
        except Exception as e:
            raise DataError(f"{path}: cannot be read as Parquet ({type(e).__name__}: {exception_text(e, 500)})") from e
        refuse_duplicate_columns(list(frame.columns), path)
        return frame
    if suffix not in (".csv", ".txt", ".tsv"):
        raise DataError(f"{path}: unsupported file type '{p.suffix}'; use .csv or .parquet")
    text = decode_text(p.read_bytes(), path, encoding)
    if not text.strip():
        raise DataError(f"{path}: is empty (no header row)")
    header = text.lstrip("\n").split("\n", 1)[0]
    sep = "\t" if suffix == ".tsv" else sniff_delimiter(header)
    try:
        names = next(csv.reader(io.StringIO(header), delimiter=sep))
    except (csv.Error, StopIteration):
        names = []
    refuse_duplicate_columns(names, path)
    try:
        return pd.read_csv(io.StringIO(text), sep=sep)
    except Exception as e:
        raise DataError(f"{path}: {_parser_message(e, sep)}") from e


def sniff_delimiter(header: str) -> str:
    """``,`` unless the header line has none but one of ``;``, tab, ``|`` (the most frequent)."""
    if "," in header:
        return ","
    counts = {d: header.count(d) for d in (";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _parser_message(e: Exception, sep: str) -> str:
    """pandas' parser error in fairaudit's terms: data rows (the header not counted),
    and the delimiter used when it was not a comma."""
    msg = exception_text(e, 500).strip()
    how = "" if sep == "," else f" (read with delimiter {sep!r}, found in the header)"
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
    if m:
        want, line, saw = (int(g) for g in m.groups())
        return (f"data row {line - 1} (header not counted) has {saw} fields but the header has {want} "
                f"columns{how}")
    msg = re.sub(r"\bline (\d+)", lambda mm: f"data row {int(mm.group(1)) - 1} (header not counted)", msg)
    return f"cannot be parsed as CSV{how} ({type(e).__name__}: {msg})"


def decode_text(raw: bytes, path, encoding: str | None = None) -> str:
    """``raw`` decoded (UTF-8 by default), or a :class:`DataError` that says what the
    bytes look like (binary, UTF-16, a single-byte encoding) and which ``--encoding`` to try."""
    if encoding:
        try:
            return raw.decode(encoding)
        except LookupError:
            raise DataError(f"{path}: unknown encoding {encoding!r} (try utf-8, cp1252, latin-1, utf-16)") from None
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: not {encoding} text: {_where_byte(raw, e.start)} cannot be decoded as "
                            f"{encoding}") from None
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(raw) >= 4 and raw[:200].count(b"\x00") * 3 >= len(raw[:200])
                                                    and (raw[1:200:2].count(b"\x00") > 0.8 * len(raw[1:200:2])
                                                         or raw[0:200:2].count(b"\x00") > 0.8 * len(raw[0:200:2]))):
        raise DataError(f"{path}: not UTF-8 text; it looks like UTF-16. Rerun with --encoding utf-16, "
                        f"or save the file as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        nul = raw.find(b"\x00")
        controls = sum(1 for b in raw[:4096] if b < 0x20 and b not in (9, 10, 13))
        if nul >= 0 or controls > 0.05 * min(len(raw), 4096):
            raise DataError(f"{path}: not a text file (binary data: {_where_byte(raw, nul if nul >= 0 else e.start)}); "
                            f"give a CSV or Parquet file") from None
        try:
            raw.decode("cp1252")
            guess = "cp1252"
        except UnicodeDecodeError:
            guess = "latin-1"
        raise DataError(f"{path}: not UTF-8 text: {_where_byte(raw, e.start)} cannot be decoded as UTF-8. "
                        f"It may be {guess} (Windows-1252 / Latin-1) text: rerun with --encoding {guess} "
                        f"(or the file's actual encoding), or save it as UTF-8") from None


def _where_byte(raw: bytes, i: int) -> str:
    line = raw[:i].count(b"\n")
    at = "the header" if line == 0 else f"data row {line} (header not counted)"
    return f"byte 0x{raw[i]:02x} in {at}, byte offset {i:,}"


def refuse_duplicate_columns(names, path, error: type[DataError] = DataError) -> None:
    """An ``error`` naming the first repeated column name and its positions (1-based)."""
    seen: dict = {}
    for j, name in enumerate(names):
        key = str(name)
        if key in seen:
            raise error(f"{path}: duplicate column name {key!r} (columns {seen[key] + 1} and {j + 1}); "
                            f"column names must be unique: rename one")
        seen[key] = j


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass
class UserPopulation:
    """The people the user gave to audit on (``--data FILE`` or a DataFrame): scores, optional
    labels, predictions, groups and features. (Seed 004's simulated pools are
    :mod:`fairaudit.populations`.)"""

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
                          path: str = "", sha256: str = "") -> UserPopulation:
    """Assign column roles and validate them (finite numeric scores; named groups exist)."""
    columns = dict(columns or {})
    refuse_duplicate_columns(list(frame.columns), path or "data")
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
            raise DataError(f"{where}: row {i + 1}, column '{score}': score {show_value(frame[score].iloc[i])} is not a finite number")
        frame = frame.assign(**{score: col.astype(float)})
    if preds:
        P = frame[preds].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(P) | (P < 0) | (P > 1)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise DataError(f"{where}: row {i + 1}, column '{preds[j]}': prediction {show_value(frame[preds[j]].iloc[i])} is not in [0, 1]")
    role_cols = {c for c in (score, label, idc) if c is not None} | set(preds)
    if groups is not None:
        missing = [g for g in groups if g not in frame.columns]
        if missing:
            raise DataError(f"{where}: group column(s) {', '.join(missing)} not found; it has: {', '.join(map(str, frame.columns))}")
        group_cols = list(groups)
    else:
        group_cols = [c for c in frame.columns if c not in role_cols
                      and (not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))]
    # a missing group value is the category UNKNOWN: counted and reported, never dropped (issue 28)
    miss = {g: frame[g].isna() for g in group_cols if frame[g].isna().any()}
    if miss:
        frame = frame.assign(**{g: frame[g].astype(object).where(~m, UNKNOWN) for g, m in miss.items()})
    features = [c for c in frame.columns if c not in role_cols and c not in group_cols
                and pd.api.types.is_numeric_dtype(frame[c])]
    return UserPopulation(frame=frame, path=path, sha256=sha256, score_col=score, label_col=label, id_col=idc,
                      pred_cols=preds, group_cols=group_cols, feature_cols=features)


def load_population(path: str | Path, *, columns: dict | None = None, groups: list[str] | None = None,
                    encoding: str | None = None) -> UserPopulation:
    frame = read_table(path, encoding=encoding)
    if len(frame) == 0:
        raise DataError(f"{path}: has no rows")
    return population_from_frame(frame, columns=columns, groups=groups, path=str(path), sha256=file_sha256(path))


# ---------------------------------------------------------------------------
# Built-in claim generators (Jain, Creel and Wilson's simulation distributions)
# ---------------------------------------------------------------------------

def generate_claims(distribution: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Claims in [0, 1] from one of Jain, Creel and Wilson's simulation distributions (§5):
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
