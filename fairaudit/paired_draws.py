"""Paired draws under common random numbers: the tester half of a stability audit.

Two inputs P and P′ (prediction matrices for rankings, claim vectors for selections) are
drawn on *one* stream, so draw j of both uses the same generator; the paired
differences ``D_j = 1[event under P] − 1[event under P′]`` then have small variance for
allocators that spend their randomness alike, and stay i.i.d. across j for any
allocator. :func:`summarise_pair` gives every entry's ``R − R′ = Pr[D=+1] − Pr[D=−1]``
with Clopper–Pearson intervals on each probability (:func:`pair_interval`).
"""
from __future__ import annotations

import numpy as np

from .inputs import Instance, attach_rows
from .outcomes import inclusion_matrix, position_counts
from .stats import proportion_ci


class PairSpace:
    """What an input is for the audited kind (a claim vector or a prediction matrix, with
    the group/feature rows the allocator takes), and how to summarise paired outcomes."""

    def __init__(self, kind: str, ctx):
        self.kind = kind
        self.ctx = ctx
        pop = ctx.population
        #: the data's number of labels: every generated or searched matrix has it
        self.m = (int(pop.predictions.shape[1]) if kind == "ranking" and pop is not None
                  and pop.predictions is not None else None)
        self._rows: dict[int, dict] = {}

    def set_rows(self, n: int, inst: Instance) -> None:
        """Use ``inst``'s group and feature rows for every input of ``n`` individuals."""
        self._rows[n] = {k: getattr(inst, k) for k in ("groups", "features") if getattr(inst, k) is not None}

    def rows(self, n: int) -> dict:
        """The group and feature rows an input of ``n`` individuals carries when the
        allocator takes them (the data's rows, or synthetic ones; the same for P and P′,
        seeded by n), so a pair differs in its predictions (claims) only."""
        if n not in self._rows:
            tmp = attach_rows(self.ctx, Instance("rows", scores=np.zeros(n)), self.ctx.rng(f"tv_stability/rows/{n}"))
            self.set_rows(n, tmp)
        return self._rows[n]

    def instance(self, label: str, x: np.ndarray) -> Instance:
        if self.kind == "ranking":
            # scores = probability of the best label, for rankers that read scores
            return Instance(label, predictions=x, scores=x[:, -1].copy(), **self.rows(len(x)))
        return Instance(label, scores=x, k=self.k(len(x)), **self.rows(len(x)))

    def k(self, n: int) -> int:
        return int(self.ctx.selection_k(n))

    def normalise(self, x):
        x = np.asarray(x, dtype=float)
        if self.kind == "ranking":
            x = np.clip(x, 0.0, None)
            return x / x.sum(axis=1, keepdims=True)
        return np.clip(x, 0.0, None)

    def counts(self, X: np.ndarray, Y: np.ndarray, n: int):
        """Outcomes of the two inputs under common random numbers → (Cx, Cy, N+, N−):
        entry-wise counts of draws with the event under P, under P′, under P only, under
        P′ only. Ranking entries are (individual, position); selection entries individuals."""
        if self.kind == "ranking":
            Cx, Cy = position_counts(X, n), position_counts(Y, n)
            pos = np.broadcast_to(np.arange(n), X.shape)
            same = X == Y
            both = np.bincount((X * n + pos)[same], minlength=n * n).reshape(n, n)
        else:
            Ix, Iy = inclusion_matrix(X, n), inclusion_matrix(Y, n)
            Cx, Cy = Ix.sum(axis=0), Iy.sum(axis=0)
            both = (Ix & Iy).sum(axis=0)
        return Cx, Cy, Cx - both, Cy - both

    def entries(self, n: int) -> int:
        return n * n if self.kind == "ranking" else n

    def tv_lower(self, D: np.ndarray, k: int | None = None) -> float:
        """Ranking-level TV lower bound from a matrix of (bounds on) |ΔR| entries."""
        if self.kind == "ranking":
            return float(0.5 * D.sum(axis=1).max())
        return float(max(D.max(), D.sum() / (2.0 * max(k or 1, 1))))

    def random_input(self, rng, n: int, m: int) -> np.ndarray:
        if self.kind == "ranking":
            return rng.dirichlet(np.full(m, 0.7), size=n)
        return np.clip(rng.uniform(0, 1, n), 1e-6, 1)


def pair_interval(Np, Nm, B, member_conf):
    """Interval for R − R′ = Pr[D=+1] − Pr[D=−1] from Clopper–Pearson intervals of each."""
    lp, hp = proportion_ci(Np, B, member_conf)
    lm, hm = proportion_ci(Nm, B, member_conf)
    return np.clip(np.asarray(lp) - hm, -1, 1), np.clip(np.asarray(hp) - lm, -1, 1)


def summarise_pair(space, x, y, X, Y, member_conf):
    n = len(x)
    B = len(X)
    Cx, Cy, Np, Nm = space.counts(X, Y, n)
    diff = (Np - Nm) / B
    lo, hi = pair_interval(Np, Nm, B, member_conf)
    absd = np.abs(diff)
    dist0 = np.maximum(np.maximum(lo, -hi), 0.0)          # certified |ΔR| lower bound
    far = np.maximum(np.abs(lo), np.abs(hi))              # certified |ΔR| upper bound
    k = space.k(n) if space.kind == "selection" else None
    worst = np.unravel_index(int(np.argmax(absd + 1e-12 * dist0)), absd.shape)
    return {
        "B": B, "Rx": Cx / B, "Ry": Cy / B, "diff": diff,
        "delta": float(absd.max()), "delta_lo": float(dist0.max()), "delta_hi": float(far.max()),
        "var": float(((Np + Nm) / B).max()),
        "worst_entry": tuple(int(w) for w in worst),
        "tv": space.tv_lower(absd, k), "tv_lo": space.tv_lower(dist0, k),
    }
