"""Attention models (position weights) for ``exposure``, their family, and exact expected
exposure of two reference rankings (SPEC §9).

A model gives position p (1 = top) the weight ``v_p`` in [0, 1], ``v_1 = 1``:

``dcg``            the logarithmic discount ``1 / log2(1 + p)`` (Singh & Joachims, KDD 2018);
``dcg@k``          the same, cut to 0 below position k (the top-k cut-off of nDCG@k);
``geometric:γ``    the geometric position-based model ``γ^(p−1)`` (Biega et al., SIGIR 2018's
                   geometric attention with continuation γ = 1 − p);
``geometric:a-b``  that model over the declared range [a, b] of γ, on a grid of
                   ``GRID`` values (ends included): one model per value;
``top:k``          uniform attention to the first k positions (1 for p ≤ k, else 0).

The check's verdict must hold under every model of the family: its statistic is the
worst (lowest) disparity over the models.

Exact references (the oracles of the tests and the validation rows): the UA ranking's
exposure from its exact position marginals (:func:`fairaudit.ua.ua_marginals`), and a
Plackett–Luce ranking's by enumerating its permutations (small n).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

GRID = 6            # values of γ on a declared range
DEFAULT_FAMILY = "dcg, geometric:0.5-0.75, dcg@10"


@dataclass(frozen=True)
class Attention:
    """One attention model: ``kind`` ('dcg', 'geometric', 'top'), its parameter
    (γ, or the cut-off k; None for plain dcg) and ``cut`` (dcg@k's k)."""
    kind: str
    param: float | None = None
    cut: int | None = None

    @property
    def name(self) -> str:
        if self.kind == "dcg":
            return "dcg" if self.cut is None else f"dcg@{self.cut}"
        if self.kind == "geometric":
            return f"geometric γ={self.param:g}"
        return f"top-{int(self.param)}"

    def weights(self, n: int) -> np.ndarray:
        """v_1 … v_n."""
        p = np.arange(1, int(n) + 1, dtype=float)
        if self.kind == "dcg":
            v = 1.0 / np.log2(1.0 + p)
            if self.cut is not None:
                v = np.where(p <= self.cut, v, 0.0)
            return v
        if self.kind == "geometric":
            return float(self.param) ** (p - 1.0)
        return (p <= float(self.param)).astype(float)

    def sql(self, position: str) -> str:
        """The weight of the SQL integer expression ``position`` (DuckDB)."""
        if self.kind == "dcg":
            v = f"(1.0 / log2(1.0 + CAST({position} AS DOUBLE)))"
            return v if self.cut is None else f"(CASE WHEN {position} <= {int(self.cut)} THEN {v} ELSE 0.0 END)"
        if self.kind == "geometric":
            return f"pow({float(self.param)!r}, CAST({position} AS DOUBLE) - 1.0)"
        return f"(CASE WHEN {position} <= {int(self.param)} THEN 1.0 ELSE 0.0 END)"

    def narwhals(self, position: str):
        """The same weight as a narwhals expression (Dask, Spark)."""
        import narwhals as nw
        p = nw.col(position).cast(nw.Float64)
        if self.kind == "dcg":
            v = 1.0 / (p + 1.0).log(base=2)
            return v if self.cut is None else nw.when(p <= self.cut).then(v).otherwise(0.0)
        if self.kind == "geometric":
            return ((p - 1.0) * math.log(float(self.param))).exp()
        return nw.when(p <= float(self.param)).then(1.0).otherwise(0.0)


def parse_family(spec) -> list[Attention]:
    """``"dcg, geometric:0.5-0.75, dcg@10, top:5, geometric:0.8"`` → the models; raises
    ValueError naming what is accepted."""
    out: list[Attention] = []
    items = [s.strip() for s in (spec if isinstance(spec, (list, tuple)) else str(spec).split(",")) if str(s).strip()]
    if not items:
        raise ValueError("give at least one attention model: dcg, dcg@K, geometric:G or geometric:A-B, top:K")
    for it in items:
        low = str(it).lower()
        try:
            if low == "dcg" or low == "log":
                out.append(Attention("dcg"))
            elif low.startswith("dcg@"):
                k = int(low[4:])
                if k < 1:
                    raise ValueError
                out.append(Attention("dcg", cut=k))
            elif low.startswith("geometric:"):
                rng = low.split(":", 1)[1]
                if "-" in rng:
                    a, b = (float(x) for x in rng.split("-", 1))
                    if not (0 < a <= b <= 1):
                        raise ValueError
                    grid = np.linspace(a, b, GRID) if b > a else [a]
                    out += [Attention("geometric", float(round(g, 12))) for g in grid]
                else:
                    g = float(rng)
                    if not 0 < g <= 1:
                        raise ValueError
                    out.append(Attention("geometric", g))
            elif low.startswith("top:"):
                k = int(low[4:])
                if k < 1:
                    raise ValueError
                out.append(Attention("top", float(k)))
            else:
                raise ValueError
        except ValueError:
            raise ValueError(f"attention model {it!r}: write dcg, dcg@K (K ≥ 1), geometric:G or geometric:A-B "
                             f"(0 < A ≤ B ≤ 1; a grid of {GRID} values), top:K") from None
    return list(dict.fromkeys(out))


def family_weights(models: list[Attention], n: int) -> np.ndarray:
    """(K, n): each model's weights of positions 1..n."""
    return np.stack([m.weights(n) for m in models])


def exposure_from_marginals(R: np.ndarray, models: list[Attention]) -> np.ndarray:
    """(K, n) exact expected exposure of each individual under each model, from the
    position marginals ``R[i, p]`` (individual i at position p, 0-based)."""
    return family_weights(models, R.shape[1]) @ np.asarray(R, dtype=float).T


def ua_exposure(predictions, models: list[Attention]) -> np.ndarray:
    """(K, n) exact expected exposure under the UA ranking of ``predictions`` (Devic et al.,
    Def 8; marginals by Props 9/10)."""
    from fairaudit.ua import ua_marginals
    return exposure_from_marginals(ua_marginals(np.asarray(predictions, dtype=float)), models)


def plackett_luce_marginals(w) -> np.ndarray:
    """Exact position marginals of the Plackett–Luce ranking with positive weights ``w``
    (the top is i with chance w_i / Σw, then the next among the rest, …), by enumerating
    all n! permutations (n ≤ 8)."""
    w = np.asarray(w, dtype=float)
    n = len(w)
    if n > 8:
        raise ValueError("plackett_luce_marginals enumerates n! rankings: n ≤ 8")
    R = np.zeros((n, n))
    for perm in itertools.permutations(range(n)):
        ws = w[list(perm)]
        rest = np.cumsum(ws[::-1])[::-1]          # Σ of the weights not yet placed, at each step
        R[list(perm), np.arange(n)] += float(np.prod(ws / rest))
    return R


def plackett_luce_exposure(w, models: list[Attention]) -> np.ndarray:
    """(K, n) exact expected exposure under Plackett–Luce with weights ``w``."""
    return exposure_from_marginals(plackett_luce_marginals(w), models)
