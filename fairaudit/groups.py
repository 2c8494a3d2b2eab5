"""Groups: named subsets of individuals from group columns, and their intersections.

Shared by every check that reports per-group figures (selection rates, multiaccuracy,
anonymity on logs, min-requirement). A *category* is one value of one *attribute*;
an attribute is a group column or an intersection of several (``"sex × race"``).
"""
from __future__ import annotations

#: the category of an individual whose value of a group column is missing (issue 28: LL144
#: counts them and leaves them out of the impact ratios; no loader drops or refuses them)
UNKNOWN = "(unknown)"

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd


@dataclass(frozen=True, eq=False)
class Category:
    attribute: str          # "sex" or "sex × race"
    value: str              # "F" or "F × Black"
    mask: np.ndarray        # boolean, one entry per individual / row

    @property
    def name(self) -> str:
        return f"{self.attribute} = {self.value}"

    @property
    def size(self) -> int:
        return int(self.mask.sum())


def categories(frame: pd.DataFrame, columns: list[str], depth: int = 2) -> list[Category]:
    """Every value of every column, and of every intersection of up to ``depth`` columns,
    in a stable order (column order, then sorted values). Empty intersections are left
    out (they have no members to report on).

    Each column is factorised once; an intersection's members come from combining the
    columns' integer codes (not from joining strings row by row), and only its distinct
    values are spelled out and sorted as their joined names ("F × Black")."""
    out: list[Category] = []
    cols = [c for c in columns if c in frame.columns]
    coded = {}
    for c in cols:
        codes, uniques = pd.factorize(frame[c].astype(str), sort=True)
        coded[c] = (codes.astype(np.int64), [str(v) for v in uniques])
    for d in range(1, min(depth, len(cols)) + 1):
        for combo in combinations(cols, d):
            attr = " × ".join(combo)
            if d == 1:
                codes, uniques = coded[combo[0]]
                for j, v in enumerate(uniques):
                    out.append(Category(attr, v, codes == j))
                continue
            dims = tuple(max(len(coded[c][1]), 1) for c in combo)
            codes = [coded[c][0] for c in combo]
            missing = np.logical_or.reduce([c < 0 for c in codes])    # a missing value: in no category
            flat = np.ravel_multi_index(tuple(np.maximum(c, 0) for c in codes), dims)
            flat[missing] = -1
            present, inverse = np.unique(flat, return_inverse=True)
            inverse = np.asarray(inverse).reshape(-1)
            if present.size and present[0] < 0:
                present, inverse = present[1:], inverse - 1
            parts = np.unravel_index(present, dims)
            names = [" × ".join(coded[c][1][int(i)] for c, i in zip(combo, idx)) for idx in zip(*parts)]
            for j in sorted(range(len(names)), key=names.__getitem__):
                out.append(Category(attr, names[j], inverse == j))
    return out


def is_unknown(value: str) -> bool:
    """Whether a category value (or an intersection's, ``a × b``) involves a missing group value."""
    return UNKNOWN in str(value).split(" × ")


def membership(cats: list[Category]) -> np.ndarray:
    """(n, G) 0/1 matrix of category membership (float, for matrix products)."""
    return np.stack([c.mask for c in cats], axis=1).astype(float) if cats else np.zeros((0, 0))
