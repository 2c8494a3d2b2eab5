"""The input an allocator is called on: :class:`Instance`.

Kept apart from :mod:`fairaudit.run.targets` (which loads and calls allocators) so that
checks and input builders can describe inputs without importing the target loader.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class Instance:
    """One input to call an allocator on. ``label`` names it in messages and reports.

    selection: ``scores`` (n,), ``k``; ranking: ``predictions`` (n×m) or ``scores``;
    assignment: ``scores`` (T×N), ``groups`` (T,) ints, ``capacities`` (N,).
    ``groups`` for selection and ranking is a pandas DataFrame of group columns (n rows)
    when the data has them; ``features`` likewise for other columns.
    """

    label: str
    scores: np.ndarray | None = None
    k: int | None = None
    predictions: np.ndarray | None = None
    groups: Any = None
    features: Any = None
    labels: np.ndarray | None = None
    capacities: np.ndarray | None = None

    @property
    def n(self) -> int:
        if self.predictions is not None:
            return int(np.shape(self.predictions)[0])
        if self.scores is None:            # a decision rule on features alone
            for table in (self.features, self.groups):
                if table is not None:
                    return int(len(table))
        return int(np.shape(self.scores)[0])

    def replace(self, **changes) -> "Instance":
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}
        d.update(changes)
        return Instance(**d)

    def arguments(self) -> dict[str, Any]:
        """The arguments this instance supplies, by name (for calls and for replay)."""
        out = {"n": self.n}
        for name in ("scores", "k", "predictions", "groups", "features", "labels", "capacities"):
            v = getattr(self, name)
            if v is not None:
                out[name] = v
        if self.scores is not None:
            out["claims"] = self.scores
        return out

    def to_jsonable(self, limit: int = 20000) -> dict[str, Any]:
        """The instance as plain lists (for the replay evidence), or a note when too large."""
        out: dict[str, Any] = {"label": self.label}
        for name, v in self.arguments().items():
            if name == "claims":
                continue
            if hasattr(v, "to_dict") and hasattr(v, "columns"):
                v = {c: v[c].tolist() for c in v.columns}
                out[name] = v
            elif isinstance(v, np.ndarray):
                out[name] = v.tolist() if v.size <= limit else f"<array of shape {v.shape} omitted>"
            else:
                out[name] = v
        return out
