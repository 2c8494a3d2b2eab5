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

from .errors import BudgetExhausted
from .instance import Instance
from .inputs import attach_rows
from .outcomes import inclusion_matrix, position_counts
from .stats import proportion_ci


def paired_prefix(draws: list) -> list[np.ndarray]:
    """Each input's draws cut to the number every input has: the paired draws (draw j of
    each input used the same generator). A look that the time budget (``--budget``) cut
    short can leave some inputs with fewer draws, or none; with no paired draw at all this
    raises :class:`BudgetExhausted` (the check is then not decided within the budget)."""
    T = min(0 if d is None else len(d) for d in draws)
    if not T:
        raise BudgetExhausted("the time budget ran out before every input had a paired draw")
    return [d[:T] for d in draws]


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


def extreme_moves(space, x, rng, limit: int = 48) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Candidate pairs at the extremes of the input space, where small perturbations do
    not reach (issue 18): for predictions, one row moved *to* a vertex of the simplex
    (one-hot), all of one label's mass moved to another label (any two labels, adjacent
    or not), one row replaced by another row of the input (the data's rows as anchors),
    the same moves on the input's vertex configuration (every row rounded to its
    most likely label), and every row at one vertex but one moved between two others
    — Devic et al.'s Prop 14 pair is of this kind; for claims, one claim
    set to another's, to 0 and to the largest. Returns (label, P, P′): the common-vertex
    moves and up to ``limit`` others (a seeded subset when there are more)."""
    x = space.normalise(x)
    n = len(x)
    out, always = [], []
    if space.kind == "ranking":
        m = x.shape[1]
        eye = np.eye(m)
        vert = eye[np.argmax(x, axis=1)]
        for base_name, b in (("input", x), ("vertex configuration", vert)):
            for i in range(n):
                for a in range(m):
                    for c in range(m):
                        if a == c or b[i, a] <= 0:
                            continue
                        y = b.copy()
                        y[i, c] += y[i, a]
                        y[i, a] = 0.0
                        out.append((f"{base_name}: row {i}'s mass of label {a} moved to label {c}", b, y))
                if base_name == "input":
                    for c in range(m):
                        if not np.allclose(b[i], eye[c]):
                            y = b.copy()
                            y[i] = eye[c]
                            out.append((f"input: row {i} moved to the vertex of label {c}", b, y))
                    j = int(np.argmax(np.abs(b - b[i]).sum(axis=1)))
                    if j != i and np.abs(b[j] - b[i]).sum() > 0:
                        y = b.copy()
                        y[i] = b[j]
                        out.append((f"input: row {i} replaced by row {j}", b, y))
        # every other row at one common vertex, one row moved between two vertices (Prop 14's shape): always kept
        for c in range(m):
            for a in range(m):
                for d in range(a + 1, m):
                    p = np.tile(eye[c], (n, 1))
                    p[0], q = eye[a], np.tile(eye[c], (n, 1))
                    q[0] = eye[d]
                    always.append((f"all rows at label {c}, row 0 moved from label {a} to label {d}", p, q))
    else:
        top = float(x.max())
        for i in range(n):
            for v, what in ((0.0, "0"), (top, "the largest claim")):
                if x[i] != v:
                    y = x.copy()
                    y[i] = v
                    out.append((f"claim {i} set to {what}", x, y))
            j = int(np.argmax(np.abs(x - x[i])))
            if x[j] != x[i]:
                y = x.copy()
                y[i] = x[j]
                out.append((f"claim {i} set to claim {j}'s", x, y))
    out = [(lab, space.normalise(p), space.normalise(q)) for lab, p, q in out]
    out = [o for o in out if np.abs(o[1] - o[2]).sum() > 0]
    if len(out) > limit:
        keep = np.sort(rng.choice(len(out), size=limit, replace=False))
        out = [out[k] for k in keep]
    return (always if space.kind == "ranking" else []) + out
