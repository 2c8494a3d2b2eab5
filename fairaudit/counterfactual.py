"""Counterfactual inputs for per-person decision rules: the same people with their
protected attribute swapped and everything else fixed, and the paired comparison of
decision probabilities (issue 17; used by ``anonymity`` on ``decision`` targets).

In the spirit of Themis's *causal discrimination* (Galhotra, Brun & Meliou 2017):
for each individual ``i`` and each other value ``v`` of a protected attribute, the
counterfactual row is ``i``'s row with the attribute set to ``v`` — and every column that
is an *exact copy* of the attribute (a one-to-one re-encoding of it, such as a 0/1
``sex_code`` beside ``sex``) set to ``v``'s code, since a rule reading the copy reads the
attribute. ``d_i = P(yes | counterfactual row) − P(yes | row)``.

Draws of the original and of each counterfactual input use the same draw streams
(common random numbers: draw ``j`` of both gets the same generator), so a rule that
ignores the attribute returns the same decisions draw by draw and the paired
differences are exactly 0; each ``d_i`` gets an anytime-valid betting confidence sequence
on the paired differences (:class:`fairaudit.stats.PairedDifferenceCS`, carried across the
sequential looks so each look costs its new draws), Bonferroni over every (individual,
counterfactual) pair.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .instance import Instance
from .paired_draws import paired_prefix
from .stats import PairedDifferenceCS, abs_interval, paired_difference_cs, per_member_confidence

DEFINITION = (
    "For a per-person decision rule, anonymity is counterfactual fairness: each individual's chance of a yes must "
    "not change when only their protected attribute changes (and any column that is an exact copy of it), every "
    "other value of their row kept fixed. The statistic is the share of individuals whose chance moves by more "
    "than tau, with an interval from per-individual intervals that hold simultaneously; the counterexample is the "
    "two rows that differ only in the attribute.")


def exact_copies(inst: Instance, column: str) -> dict[str, dict]:
    """Other group or feature columns that re-encode ``column`` one-to-one: for each, the
    map from ``column``'s value to that column's value."""
    base = inst.groups[column].astype(str)
    out: dict[str, dict] = {}
    for table in (inst.groups, inst.features):
        if table is None:
            continue
        for c in table.columns:
            if c == column:
                continue
            v = table[c]
            pairs = pd.DataFrame({"a": base.to_numpy(), "b": v.to_numpy()}).drop_duplicates()
            if len(pairs) == base.nunique() == pairs["b"].nunique():
                out[c] = dict(zip(pairs["a"], pairs["b"]))
    return out


def counterfactuals(inst: Instance, protected: list[str]) -> list[tuple[str, str, Instance]]:
    """``(attribute, description, instance)`` for every protected attribute and every
    shift of its values (binary: the one swap; m values: the m − 1 cyclic shifts of the
    sorted values, so every individual meets every other value once)."""
    out = []
    for col in protected:
        col_values = inst.groups[col].astype(str)
        values = sorted(col_values.unique())
        copies = exact_copies(inst, col)
        index = {v: j for j, v in enumerate(values)}
        codes = col_values.map(index).to_numpy()
        for s in range(1, len(values)):
            new = np.asarray(values, dtype=object)[(codes + s) % len(values)]
            changes = {}
            for name in ("groups", "features"):
                table = getattr(inst, name)
                if table is None:
                    continue
                t = table.copy()
                if name == "groups":
                    t[col] = new
                for c, m in copies.items():
                    if c in t.columns:
                        t[c] = pd.Series(new).map(m).to_numpy().astype(t[c].dtype)
                changes[name] = t
            what = (f"{col} swapped ({' ↔ '.join(values)})" if len(values) == 2 else
                    f"{col} shifted by {s} among {', '.join(values)}")
            if copies:
                what += f", with its exact copies {', '.join(copies)}"
            out.append((col, what, inst.replace(label=f"{inst.label}: {what}", **changes)))
    return out


class PairedShifts:
    """Per (counterfactual, individual): the estimated change ``d`` in the chance of a yes
    and its interval, simultaneous over all of them (Bonferroni over every pair), carried
    across looks: ``update(draws)`` is given the draws so far of the original input and of
    each counterfactual one (in that order) and takes their new paired draws only (see
    :func:`fairaudit.paired_draws.paired_prefix`). Returns arrays of shape (J, n)."""

    def __init__(self, J: int, n: int, confidence: float):
        conf = per_member_confidence(confidence, max(J * n, 1))
        self.sequences = [PairedDifferenceCS(n, conf) for _ in range(J)]
        self.last = None

    @property
    def n(self) -> int:
        """Paired draws taken so far."""
        return self.sequences[0].n

    def update(self, draws: list[np.ndarray]):
        draws = paired_prefix(draws)
        if self.last is None or len(draws[0]) > self.n:
            new = [d[self.n:] for d in draws]
            out = [cs.update(new[0], d) for cs, d in zip(self.sequences, new[1:])]
            self.last = tuple(np.array([o[k] for o in out]) for k in range(3))
        return self.last


def share_moved(est, lo, hi, tau: float):
    """The share of individuals whose chance moves by more than ``tau`` under some
    counterfactual: estimate, and the interval implied by the simultaneous intervals
    (certainly moved: the interval of ``|d|`` lies above tau; possibly moved: it reaches above)."""
    abs_lo, abs_hi = abs_interval(lo, hi)
    moved = (np.abs(est) > tau).any(axis=0)
    certain = (abs_lo > tau).any(axis=0)
    possible = (abs_hi > tau).any(axis=0)
    return float(moved.mean()), (float(certain.mean()), float(possible.mean())), abs_lo, abs_hi


def row_pair(inst: Instance, cf: Instance, i: int) -> list[dict]:
    """Individual ``i``'s row and its counterfactual row (every column the rule receives)."""
    def row(x: Instance):
        r = {}
        for table in (x.groups, x.features):
            if table is not None:
                r.update({str(c): _plain(table[c].iloc[i]) for c in table.columns})
        if x.scores is not None:
            r["score"] = float(x.scores[i])
        return r
    return [row(inst), row(cf)]


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def _row(inst: Instance, i: int, label: str) -> Instance:
    take = lambda t: None if t is None else t.iloc[[i]].reset_index(drop=True)   # noqa: E731
    arr = lambda a: None if a is None else np.asarray(a)[[i]]                     # noqa: E731
    return Instance(label, scores=arr(inst.scores), groups=take(inst.groups), features=take(inst.features),
                    labels=arr(inst.labels))


def shrink(ctx, inst: Instance, cf: Instance, i: int, tau: float, stream: str, draws: int = 256,
           examples: int = 40, certify: int = 2048) -> dict:
    """The simplest version of individual ``i``'s counterexample: Hypothesis moves each
    numeric feature of the row to the data's median (shrinking prefers the median) while
    swapping the attribute still moves the screened chance by more than ``tau`` on ``draws``
    paired draws (a heuristic filter, memoised per candidate, streams named by it). The
    shrunk pair is then drawn ``certify`` times afresh and its change given a betting
    interval at the audit's confidence (evidence; the verdict rests on the data probe)."""
    from hypothesis import HealthCheck, Phase, Verbosity, find, settings, strategies as st
    from hypothesis.errors import NoSuchExample
    import random
    cols = [c for c in (inst.features.columns if inst.features is not None else [])    # not the swapped copies
            if pd.api.types.is_numeric_dtype(inst.features[c]) and inst.features[c].iloc[i] == cf.features[c].iloc[i]]
    med = {c: float(inst.features[c].median()) for c in cols}
    memo: dict = {}

    def pair(keep):
        a, b = _row(inst, i, "counterexample"), _row(cf, i, "counterexample, attribute swapped")
        for c, k in zip(cols, keep):
            if not k:
                for x in (a, b):
                    x.features[c] = med[c]
        return a, b

    def moved(keep) -> bool:
        key = tuple(keep)
        if key not in memo:
            a, b = pair(keep)
            s = f"{stream}/{''.join('1' if k else '0' for k in keep)}"
            da, db = ctx.sampler.draw_streams([(a, s, 0, draws), (b, s, 0, draws)])
            memo[key] = abs(float(db.mean()) - float(da.mean())) > tau
        return memo[key]

    info: dict = {"columns_at_median": [], "screened": 0}
    try:
        keep = find(st.lists(st.booleans(), min_size=len(cols), max_size=len(cols)), moved,
                    settings=settings(max_examples=examples, database=None, deadline=None, verbosity=Verbosity.quiet,
                                      phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck)),
                    random=random.Random(int(ctx.config.seed)))
    except NoSuchExample:
        keep = [True] * len(cols)
    info["screened"] = len(memo)
    a, b = pair(keep)
    s = f"{stream}/certify"
    da, db = ctx.sampler.draw_streams([(a, s, 0, certify), (b, s, 0, certify)])
    _, lo, hi = paired_difference_cs(da[:, 0], db[:, 0], ctx.confidence)
    info.update(columns_at_median=[c for c, k in zip(cols, keep) if not k], rows=[row_pair(a, b, 0)[0], row_pair(a, b, 0)[1]],
                chance=float(da.mean()), chance_swapped=float(db.mean()),
                change={"estimate": float(db.mean() - da.mean()), "ci": [float(lo), float(hi)]}, draws=certify)
    return info
