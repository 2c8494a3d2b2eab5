"""The collection C of named groups a multigroup property is stated over (Devic et al., §4).

C is a list of named, possibly overlapping subsets of the individuals (rows of a
table):

* the whole population, always first (Theorem 16 needs ``X ∈ C``);
* every value of every group column, and every intersection of up to ``depth``
  columns (through :func:`fairaudit.groups.categories`, so names match the other
  per-group checks: ``"sex = F"``, ``"sex × age_band = F × 65_plus"``);
* user-defined sets: a pandas expression string evaluated on the table
  (``"age >= 45 and age <= 65 and sex == 'F'"``, see ``DataFrame.eval``), or a Python
  callable ``frame -> boolean mask``.

Sets with fewer than ``min_size`` members are *flagged* (``tiny``), never dropped: a
check reports them and decides whether they enter its verdict. A user-defined set with
no member at all stays in the collection (size 0, flagged) so the report can say so.

Expressions, in one string for ``--param``: ``"name: expression; name2: expression2"``
(``;`` separates sets, an optional ``name:`` prefix names one; without it the
expression text is the name). A dict ``{name: expression-or-callable}`` or a list of
expressions works from Python.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fairaudit.errors import DataError
from fairaudit.groups import categories

ALL_NAME = "everyone"


@dataclass(frozen=True, eq=False)
class GroupSet:
    """One member of C: a name, a boolean mask over the rows, where it came from
    (``"all"``, ``"column"``, ``"intersection"``, ``"expression"``, ``"callable"``) and
    whether it is below the size threshold."""

    name: str
    mask: np.ndarray
    source: str
    tiny: bool = False
    #: rows each mask entry stands for, when the mask is over cells of identical rows
    #: (a log aggregated where it is: :mod:`fairaudit.checks.multiaccuracy.ranking_log`)
    weights: np.ndarray | None = None

    @property
    def size(self) -> int:
        if self.weights is not None:
            return int(round(float(self.mask.astype(float) @ self.weights)))
        return int(self.mask.sum())


def weighted(sets: list[GroupSet], weights: np.ndarray, min_size: int) -> list[GroupSet]:
    """The same sets over cells standing for ``weights`` rows each, sizes and the size
    threshold counted in rows."""
    w = np.asarray(weights, dtype=float)
    out = []
    for g in sets:
        size = float(g.mask.astype(float) @ w)
        out.append(GroupSet(g.name, g.mask, g.source, size < min_size, w))
    return out


def parse_expressions(spec: Any) -> list[tuple[str, Any]]:
    """User group definitions → ``[(name, expression-or-callable), ...]`` in the given order.

    Accepts ``None``/``""``, a string ``"name: expr; expr2"``, a list of strings or
    callables, a dict ``{name: expr-or-callable}``, or one callable."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return []
    if callable(spec):
        return [(getattr(spec, "__name__", "custom"), spec)]
    if isinstance(spec, dict):
        return [(str(k), v) for k, v in spec.items()]
    if isinstance(spec, str):
        spec = [p for p in spec.split(";") if p.strip()]
    out = []
    for item in spec:
        if callable(item):
            out.append((getattr(item, "__name__", "custom"), item))
            continue
        text = str(item).strip()
        name, expr = text, text
        head, sep, tail = text.partition(":")
        if sep and head.strip() and tail.strip() and not any(ch in head for ch in "=<>!()'\""):
            name, expr = head.strip(), tail.strip()
        out.append((name, expr))
    return out


def evaluate_mask(frame: pd.DataFrame, definition: Any, name: str = "") -> np.ndarray:
    """Boolean mask (len(frame),) of a user group: a pandas expression evaluated with
    ``DataFrame.eval`` (python engine, so string comparisons work), or a callable
    returning a boolean sequence. Raises :class:`DataError` with the reason."""
    n = len(frame)
    try:
        if callable(definition):
            res = definition(frame)
        else:
            res = frame.eval(str(definition), engine="python")
    except Exception as e:  # user input: report, do not crash
        raise DataError(f"group {name or definition!r}: cannot evaluate it on the data "
                        f"({type(e).__name__}: {e}); columns are: {', '.join(map(str, frame.columns))}") from e
    arr = np.asarray(res)
    if arr.ndim == 0:
        arr = np.full(n, bool(arr))
    if arr.shape != (n,):
        raise DataError(f"group {name or definition!r}: gives {arr.shape} values, expected one per row ({n})")
    if arr.dtype != bool:
        if not np.all(np.isin(arr, [0, 1, True, False])):
            raise DataError(f"group {name or definition!r}: is not a true/false condition")
        arr = arr.astype(bool)
    return arr


def collection(frame: pd.DataFrame, columns: list[str] | None = None, depth: int = 2,
               extra: Any = None, min_size: int = 30) -> list[GroupSet]:
    """The collection C (see module docstring), in a stable order: everyone, then the
    column values and intersections, then the user-defined sets. Names are unique
    (a user set whose name repeats an earlier one gets a numeric suffix)."""
    n = len(frame)
    out = [GroupSet(ALL_NAME, np.ones(n, dtype=bool), "all", n < min_size)]
    for c in categories(frame, list(columns or []), depth):
        out.append(GroupSet(c.name, np.asarray(c.mask, dtype=bool),
                            "intersection" if "×" in c.attribute else "column", c.size < min_size))
    seen = {g.name for g in out}
    for name, definition in parse_expressions(extra):
        mask = evaluate_mask(frame, definition, name)
        base, k = name, 2
        while name in seen:
            name = f"{base} ({k})"
            k += 1
        seen.add(name)
        out.append(GroupSet(name, mask, "callable" if callable(definition) else "expression",
                            int(mask.sum()) < min_size))
    return out


def membership(sets: list[GroupSet]) -> np.ndarray:
    """(n, |C|) float 0/1 matrix of membership, for matrix products."""
    return np.stack([g.mask for g in sets], axis=1).astype(float)


def describe(sets: list[GroupSet]) -> pd.DataFrame:
    """One row per set: name, source, size, share of rows, tiny flag."""
    n = len(sets[0].mask) if sets else 0
    return pd.DataFrame({"group": [g.name for g in sets], "source": [g.source for g in sets],
                         "size": [g.size for g in sets],
                         "share": [g.size / max(n, 1) for g in sets], "tiny": [g.tiny for g in sets]})

