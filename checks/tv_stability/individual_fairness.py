"""Individual fairness of per-person decision rules (issue 17; used by ``tv_stability`` on
``decision`` targets): similar people get similar chances,

    |π(x) − π(x′)| ≤ L · d(x, x′) + δ,     d(x, x′) = ‖(x − x′) / s‖₂

over the numeric feature columns the rule reads, each scaled by ``s_c`` (default: the
column's standard deviation in the data; ``scale="income=10,debt_ratio=0.2"`` sets it).
Dwork et al.'s Lipschitz condition (ITCS 2012) with the TV distance of two Bernoulli
decisions, ``|π(x) − π(x′)|``.

Two probes, certified together:

* **adversarial steps** — every tested individual's row moved by ``± step`` scale units
  in one column at a time (all else fixed, the protected attributes included); the
  original and the moved inputs are drawn on one stream (common random numbers), so the
  paired differences of a rule that spends its randomness the same way are small; the
  pair's distance is exactly ``step``. These probes can certify (pass).
* **near neighbours from the data** — each tested individual and its nearest other row
  (by ``d``); two different people's decisions are not coupled, so at the distances real
  neighbours have these pairs need many draws to certify. They must certify all the same:
  a pass needs every probe certified within L (SPEC: a stability pass is certified, not
  "no refutation seen"), so while a neighbour pair's ratio interval still straddles L the
  check samples on, up to ``max_draws``, and then says ``inconclusive`` naming the pair.
  (Before, the neighbours could only refute, and a rule with a jump of 0.2 between two
  neighbours at distance 0.17 passed with that pair undecided.)

Each pair's change ``Δπ`` gets an anytime-valid betting confidence sequence on the paired
differences (:class:`fairaudit.stats.PairedDifferenceCS`, carried across the sequential
looks so each look costs its new draws), Bonferroni over all pairs; its ratio
``(|Δπ| − δ) / d`` is judged against ``L``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from fairaudit.instance import Instance
from fairaudit.paired_draws import paired_prefix
from fairaudit.result import Statistic, combine
from fairaudit.stats import PairedDifferenceCS, abs_interval, per_member_confidence

DEFINITION = (
    "For a per-person decision rule, TV-stability is individual fairness: similar people get similar chances. "
    "The chances of a yes of two people may differ by at most L times their distance (plus δ), the distance being "
    "the Euclidean distance of their numeric features, each divided by its scale (default: its standard "
    "deviation). Probed by moving each tested person's row a small step in one column at a time (these probes can "
    "certify) and by each person's nearest neighbour in the data; a pass needs every pair certified, and intervals "
    "hold simultaneously over all pairs.")


def parse_scale(text) -> dict[str, float]:
    """``"col=value,col=value"`` → {col: value}; a ValueError saying what it accepts."""
    out: dict[str, float] = {}
    if isinstance(text, dict):              # from a config file's table
        text = ",".join(f"{k}={v}" for k, v in text.items())
    for part in [p.strip() for p in str(text or "").split(",") if p.strip()]:
        if "=" not in part:
            raise ValueError(f"expected COLUMN=SCALE pairs separated by commas, got {part!r}")
        c, v = (x.strip() for x in part.split("=", 1))
        try:
            out[c] = float(v)
        except ValueError:
            raise ValueError(f"scale of {c!r} must be a positive number, got {v!r}") from None
        if not out[c] > 0:
            raise ValueError(f"scale of {c!r} must be a positive number, got {v!r}")
    return out


def feature_scales(inst: Instance, columns: list[str], overrides: dict[str, float]) -> np.ndarray:
    sd = inst.features[columns].astype(float).std(ddof=0).to_numpy() if columns else np.zeros(0)
    s = np.array([overrides.get(c, sd[j] if sd[j] > 0 else 1.0) for j, c in enumerate(columns)], dtype=float)
    return s


def numeric_columns(inst: Instance, reads: tuple = ()) -> list[str]:
    """The numeric feature columns the rule reads (a model's own columns when it names them)."""
    if inst.features is None:
        return []
    cols = [c for c in inst.features.columns if pd.api.types.is_numeric_dtype(inst.features[c])]
    return [c for c in cols if c in reads] if reads else cols


def nearest_neighbours(X: np.ndarray):
    """For each row, the nearest other row at a positive distance: (j, distance)."""
    d = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2))
    d[d == 0] = np.inf
    j = np.argmin(d, axis=1)
    return j, d[np.arange(len(X)), j]


def stepped(inst: Instance, column: str, delta: float) -> Instance:
    f = inst.features.copy()
    f[column] = f[column].astype(float) + delta
    return inst.replace(label=f"{inst.label}: {column} {'+' if delta > 0 else '−'}{abs(delta):.4g}", features=f)


def probes(inst: Instance, reads: tuple, scale: dict, step: float):
    """The moved inputs and the pair lists: (columns, scales, moved [(column, sign, Instance)],
    data pairs (i, j, distance))."""
    cols = numeric_columns(inst, reads)
    s = feature_scales(inst, cols, scale)
    moved = [(c, sign, stepped(inst, c, sign * step * s[k])) for k, c in enumerate(cols) for sign in (1, -1)]
    if cols and inst.n > 1:
        X = inst.features[cols].astype(float).to_numpy() / s
        j, d = nearest_neighbours(X)
        pairs = [(i, int(j[i]), float(d[i])) for i in range(inst.n) if np.isfinite(d[i])]
    else:
        pairs = []
    return cols, s, moved, pairs


class PairChanges:
    """Every probe pair's change of the chance of a yes, with simultaneous intervals
    (Bonferroni over all pairs), carried across looks; the two component statistics and
    the verdict. ``update(draws)`` is given the draws so far (``draws[0]``: the original
    input, ``draws[1:]`` the moved ones, in the order of ``moved``) and takes their new
    paired draws only; :attr:`seen` counts the paired draws taken; :meth:`table` gives the
    pairs' table of the last look."""

    def __init__(self, n: int, moved, pairs, step, L, delta, confidence):
        self.L, self.delta = float(L), float(delta)
        m = len(moved) * n + len(pairs)
        conf = per_member_confidence(confidence, max(m, 1))
        self.method = f"paired draws, betting confidence sequences, bonferroni over {m} pairs"
        # one block of pairs per moved input (a: the original, b: the moved input, same individual), then the
        # data neighbours (a: the neighbour, b: the individual, both on the original input)
        everyone = np.arange(n)
        self.blocks = [dict(probe="adversarial step", individual=everyone, other=everyone,
                            move=f"{c} {'+' if sign > 0 else '−'}{step:g} scale", distance=np.full(n, float(step)),
                            a=(0, everyone), b=(1 + k, everyone)) for k, (c, sign, _) in enumerate(moved)]
        if pairs:
            I, J, d = (np.array(v) for v in zip(*pairs))
            I, J = I.astype(int), J.astype(int)
            self.blocks.append(dict(probe="data neighbours", individual=I, other=J, move="nearest other row",
                                    distance=d.astype(float), a=(0, J), b=(0, I)))
        for b in self.blocks:
            b["cs"] = PairedDifferenceCS(len(b["individual"]), conf)
        self.seen, self.comps, self.verdict = 0, {}, "inconclusive"

    def update(self, draws):
        """``(components, verdict)`` after the paired draws so far (see
        :func:`fairaudit.paired_draws.paired_prefix`)."""
        draws = paired_prefix(draws)
        if len(draws[0]) <= self.seen or not self.blocks:
            return self.comps, self.verdict
        new = [d[self.seen:] for d in draws]
        self.seen = len(draws[0])
        for b in self.blocks:
            (sa, ca), (sb, cb) = b["a"], b["b"]
            b["change"], lo, hi = b["cs"].update(new[sa][:, ca], new[sb][:, cb])
            b["abs_lo"], b["abs_hi"] = abs_interval(lo, hi)
            b["ratio"] = (np.abs(b["change"]) - self.delta) / b["distance"]
            b["ratio_lo"] = (b["abs_lo"] - self.delta) / b["distance"]
            b["ratio_hi"] = (b["abs_hi"] - self.delta) / b["distance"]
        comps = {}
        for name, probe, refute in (("adversarial_steps", "adversarial step", False),
                                    ("data_neighbours", "data neighbours", False)):
            sub = [b for b in self.blocks if b["probe"] == probe and len(b["individual"])]
            if sub:
                top = [float(max(b[k].max() for b in sub)) for k in ("ratio", "ratio_lo", "ratio_hi")]
                comps[name] = Statistic(f"max_ratio_{name}", top[0], (top[1], top[2]), tolerance=self.L,
                                        method=self.method, refutation_only=refute)
        self.comps, self.verdict = comps, combine(comps)
        return self.comps, self.verdict

    def table(self) -> pd.DataFrame:
        """One row per compared pair at the last look: the change from a to b, its |change|
        interval and the ratio ``(|Δπ| − δ) / d`` with its interval."""
        cols = ("probe", "individual", "other", "move", "distance", "change", "abs_lo", "abs_hi",
                "ratio", "ratio_lo", "ratio_hi")
        parts = [pd.DataFrame({c: b[c] for c in cols}) for b in self.blocks if "change" in b]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
