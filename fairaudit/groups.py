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
    out (they have no members to report on)."""
    out: list[Category] = []
    cols = [c for c in columns if c in frame.columns]
    for d in range(1, min(depth, len(cols)) + 1):
        for combo in combinations(cols, d):
            attr = " × ".join(combo)
            keys = frame[list(combo)].astype(str)
            joined = keys.agg(" × ".join, axis=1) if d > 1 else keys[combo[0]]
            codes, uniques = pd.factorize(joined, sort=True)
            for j, v in enumerate(uniques):
                out.append(Category(attr, str(v), codes == j))
    return out


def is_unknown(value: str) -> bool:
    """Whether a category value (or an intersection's, ``a × b``) involves a missing group value."""
    return UNKNOWN in str(value).split(" × ")


def membership(cats: list[Category]) -> np.ndarray:
    """(n, G) 0/1 matrix of category membership (float, for matrix products)."""
    return np.stack([c.mask for c in cats], axis=1).astype(float) if cats else np.zeros((0, 0))
