"""Assignment instances, minimum-requirement rules and the LP benchmarks of Freund et al.
(Freund, Lykouris, Paulson, Sturt, Weng — group fairness in dynamic refugee
assignment, §2–3; SPEC §6).

A *year* (one realised sample path) is T arrivals with score rows ``w_t ∈ [0,1]^N``
(``scores``, T×N), a group ``g_t ∈ {0..G−1}`` (``groups``) and location capacities.

Capacities (a decision of ours, the seed uses fractions ρ_i with capacity ρ_i T):
``capacities`` may be integer counts ``c_i`` (what assigners receive and what the
engine's ``validate_outcomes`` enforces) or fractions ρ_i (a float array whose
entries are all ≤ 1), which mean ``ρ_i T`` places. Internally everything uses the
place counts ``c_i`` (floats allowed in the LPs) and ``ρ_i = c_i / T``. Generators
produce integer capacities ``c_i = ceil(ρ_i T)``, so ``Σ c_i ≥ T`` whenever ``Σ ρ_i ≥ 1``.

Decisions: ``x_{t,i} ∈ {0,1}``, at most one location per arrival (an arrival may be
left unassigned, location −1, and then counts 0 towards its group — SPEC §0 allows
−1). The fractional assignment polytope is
``{x ≥ 0 : Σ_i x_{t,i} ≤ 1 ∀t, Σ_t x_{t,i} ≤ c_i ∀i}``; with integer capacities it is
totally unimodular, so its vertices are integer assignments (the brute-force tests use
that).

Figures on a path (all on the per-arrival scale, so group and global figures compare):

* ``Ū_g = Σ_{t∈G_g} w_t·x_t / max(1, |G_g|)``; g-regret ``R_g = m_g − Ū_g``
  (positive = shortfall);
* ``OPT`` = best fractional assignment meeting every ``m_g`` (an LP), divided by T;
  ``global regret = OPT − ALG`` with ``ALG = Σ_t w_t·x_t / T``;
* ``OPT_unc`` = the unconstrained (clairvoyant) optimum / T; the *benchmark* price of
  fairness ``1 − OPT/OPT_unc`` (what the rule costs on this path) and the assigner's
  price of fairness ``1 − ALG/OPT_unc`` (the seed's "relative decrease in global
  performance" against the offline problem without fairness constraints, 1–5%);
* maximum regret ``max(global regret, max_g R_g)`` (seed eq. (1)).

Requirement rules (seed §3.1; empty groups get ``m_g = 0``, Ū_g = 0):

* ``random``: ``m_g = mean_{t∈G_g} w_t·ρ/Σρ`` (random assignment in proportion to
  capacity, Example 1; ``ρ/max(Σρ, 1)`` when places are scarce);
* ``proportional`` (Proportionally Optimized, Example 2): group g alone with
  capacities ``ρ_i |G_g|``, optimised — an LP per group;
* ``maxmin`` (Example 3): the largest ``z`` such that every non-empty group can have
  ``Ū_g ≥ z`` at once — one LP;
* ``given``: user values.

All LPs go through :func:`scipy.optimize.linprog` (``method="highs"``) with
``scipy.sparse`` constraint matrices (HiGHS' interior-point method above
:data:`IPM_FROM` variables). The unconstrained LPs of a year's benchmarks (the
optimum and the Proportionally Optimized group LPs) are solved by column generation
(``_colgen``: the same LP over the few columns that can be basic, priced exactly
against the full LP): a year of T = 2,000 arrivals and N = 40 locations (80,000
variables) takes about 0.4 s of LPs on one core instead of 1.4 s with the full LPs.
:data:`LP_STATS` counts the LPs solved and the solver calls
(for the benchmark, which times them itself; never written to results, which must be deterministic).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from fairaudit.instance import Instance

RULES = ("random", "proportional", "maxmin", "given")
#: slack subtracted from requirements in constrained LPs so that a rule's own optimum
#: (e.g. the MaxMin value) is not declared infeasible by floating-point round-off.
FEAS_TOL = 1e-7

#: LPs with more variables than this use HiGHS' interior-point method (see ``_solve``).
IPM_FROM = 1000

#: Column generation (``solve_assignment(..., colgen=True)``, see ``_colgen``) is used for
#: unconstrained LPs over more than CG_FROM arrival types; CG_SAMPLE arrivals estimate
#: the capacity duals, columns within CG_DELTA (a share of the score range) of each
#: arrival's best are kept, CG_TOL is the reduced-profit tolerance of pricing and after
#: CG_ROUNDS restricted LPs the full LP is solved instead.
CG_FROM = 400
CG_SAMPLE = 150
CG_DELTA = 0.08
CG_TOL = 1e-9
CG_ROUNDS = 20

#: ``count``: LPs solved (a column-generation solve counts once); ``calls``: linprog calls.
LP_STATS = {"count": 0, "calls": 0}


def reset_lp_stats() -> None:
    LP_STATS["count"] = 0
    LP_STATS["calls"] = 0


# ---------------------------------------------------------------------------
# Years (sample paths)
# ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Year:
    """One realised path: ``scores`` (T×N in [0,1]), ``groups`` (T,) ints in
    ``0..n_groups−1``, ``capacities`` (N,) place counts (int or float)."""

    scores: np.ndarray
    groups: np.ndarray
    capacities: np.ndarray
    n_groups: int
    group_names: tuple = ()
    label: str = "year"

    @property
    def T(self) -> int:
        return int(self.scores.shape[0])

    @property
    def N(self) -> int:
        return int(self.scores.shape[1])

    def sizes(self) -> np.ndarray:
        return np.bincount(self.groups, minlength=self.n_groups)

    def names(self) -> list[str]:
        return list(self.group_names) if self.group_names else [str(g) for g in range(self.n_groups)]

    def instance(self, label: str | None = None) -> Instance:
        """The engine :class:`Instance` an assigner is called on."""
        return Instance(label or self.label, scores=self.scores, groups=self.groups,
                        capacities=self.capacities)

    def head(self, t: int) -> "Year":
        """The first ``t`` arrivals (capacities unchanged)."""
        return Year(self.scores[:t], self.groups[:t], self.capacities, self.n_groups, self.group_names, self.label)


def place_counts(capacities, T: int) -> np.ndarray:
    """Capacities as given to an assigner → place counts ``c_i`` (float). A float
    vector whose entries are all ≤ 1 is read as fractions ρ (``c_i = ρ_i T``);
    anything else as counts. The LP functions below take counts only (a prefix of a
    year can have capacities below one place, which must not be read as fractions)."""
    c = np.asarray(capacities)
    if c.ndim != 1:
        raise ValueError(f"capacities must be a vector (one per location), got shape {c.shape}")
    if np.any(c < 0):
        raise ValueError("capacities must be non-negative")
    if np.issubdtype(c.dtype, np.floating) and c.size and np.all(c <= 1.0):
        return c.astype(float) * T
    return c.astype(float)


def integer_capacities(rho, T: int) -> np.ndarray:
    """Integer place counts ``ceil(ρ_i T)`` (so ``Σ c_i ≥ T`` when ``Σ ρ_i ≥ 1``)."""
    return np.ceil(np.asarray(rho, dtype=float) * T - 1e-9).astype(np.int64)


# ---------------------------------------------------------------------------
# Scenarios (generators)
# ---------------------------------------------------------------------------

#: the seed's Figure 1 worlds: rows = groups (a, b), columns = locations (1, 2).
FIGURE1 = {
    "antagonistic": np.array([[0.5, 0.9], [0.2, 0.4]]),
    "benign": np.array([[0.5, 0.9], [0.51, 0.9]]),
    "collaborative": np.array([[0.5, 0.9], [0.9, 0.5]]),
}


@dataclass(frozen=True)
class Scenario:
    """A generator of years: ``draw(T, rng)`` → :class:`Year`.

    ``kind="figure1"``: two groups with fixed score rows ``table`` (one per group), two
    locations with ρ = (½, ½), groups i.i.d. with probabilities ``shares`` (or exactly
    equal sizes in random order with ``equal_sizes``). ``kind="features"``: i.i.d.
    arrivals from a feature model — group g with probability ``shares[g]``, an
    individual employability ``θ_t ~ N(0, 0.6²)`` and
    ``w_{t,i} = expit(base[g] + loc[i] + affinity[g,i] + θ_t + 0.3 ε_{t,i})``.
    """

    name: str
    kind: str
    shares: tuple
    rho: tuple
    table: tuple = ()
    base: tuple = ()
    loc: tuple = ()
    affinity: tuple = ()
    equal_sizes: bool = False
    group_names: tuple = ()
    description: str = ""

    @property
    def N(self) -> int:
        return len(self.rho)

    @property
    def G(self) -> int:
        return len(self.shares)

    def draw_groups(self, T: int, rng: np.random.Generator) -> np.ndarray:
        if self.equal_sizes:
            G = self.G
            g = np.repeat(np.arange(G), int(math.ceil(T / G)))[:T]
            return rng.permutation(g).astype(np.int64)
        return rng.choice(self.G, size=T, p=np.asarray(self.shares, dtype=float)).astype(np.int64)

    def draw(self, T: int, rng: np.random.Generator, label: str | None = None) -> Year:
        groups = self.draw_groups(T, rng)
        if self.kind == "figure1":
            scores = np.asarray(self.table, dtype=float)[groups]
        else:
            base = np.asarray(self.base)[groups][:, None]
            aff = np.asarray(self.affinity)[groups]
            theta = rng.normal(0.0, 0.6, size=(T, 1))
            eps = rng.normal(0.0, 0.3, size=(T, self.N))
            scores = 1.0 / (1.0 + np.exp(-(base + np.asarray(self.loc)[None, :] + aff + theta + eps)))
        caps = integer_capacities(self.rho, T)
        return Year(scores, groups, caps, self.G, self.group_names, label or f"{self.name}, T={T}")


def _feature_scenario(name, shares, seed, description, N=10):
    r = np.random.default_rng(seed)     # fixed: a scenario is the same world for every audit seed
    G = len(shares)
    loc = r.normal(-0.3, 0.5, size=N)
    base = np.linspace(0.3, -0.5, G)     # later (smaller) groups are less employable on average
    # Groups disagree about which locations suit them (partly collaborative) but the
    # locations that suit the small groups are also good for the large one (antagonistic part).
    affinity = r.normal(0.0, 0.6, size=(G, N))
    affinity[1:, :2] += 0.8
    rho = r.dirichlet(np.full(N, 4.0)) * 1.1
    return Scenario(name, "features", tuple(float(s) for s in shares), tuple(float(x) for x in rho),
                    base=tuple(base), loc=tuple(loc), affinity=tuple(map(tuple, affinity)),
                    group_names=tuple(f"g{g}" for g in range(G)), description=description)


def _figure1(name, equal_sizes=False):
    return Scenario(name, "figure1", (0.5, 0.5), (0.5, 0.5), table=tuple(map(tuple, FIGURE1[name])),
                    equal_sizes=equal_sizes, group_names=("a", "b"),
                    description=f"Freund et al., Figure 1, {name} world (rows a, b; columns locations 1, 2): "
                                f"{FIGURE1[name].tolist()}")


SCENARIOS = {
    "antagonistic": _figure1("antagonistic"),
    "benign": _figure1("benign"),
    "collaborative": _figure1("collaborative"),
    "iid": _feature_scenario("iid", (0.5, 0.3, 0.2), 3,
                             "i.i.d. arrivals from a feature model: 3 groups (50/30/20%), 10 locations, Σρ = 1.1"),
    "unequal": _feature_scenario("unequal", (0.80, 0.14, 0.05, 0.01), 4,
                                 "very unequal group sizes (80/14/5/1%), 10 locations, Σρ = 1.1"),
}


def scenario(name: str, *, equal_sizes: bool | None = None, N: int | None = None) -> Scenario:
    """A named scenario (see :data:`SCENARIOS`); ``equal_sizes`` overrides the
    Figure 1 worlds' i.i.d. groups; ``N`` builds a feature scenario with N locations."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    s = SCENARIOS[name]
    if N is not None and s.kind == "features" and N != s.N:
        s = _feature_scenario(name, s.shares, {"iid": 3, "unequal": 4}.get(name, 5), s.description, N=N)
    if equal_sizes is not None and s.kind == "figure1":
        s = _figure1(name, equal_sizes)
    return s


def bootstrap_year(scores, groups, capacities, T: int, rng: np.random.Generator, n_groups: int,
                   group_names=(), label="bootstrapped year") -> Year:
    """A year of ``T`` arrivals resampled with replacement from a logged year; capacities
    are scaled to ``T`` (place counts ``ceil(c_i T / T_log)``)."""
    T0 = len(groups)
    idx = rng.integers(0, T0, size=T)
    c = place_counts(capacities, T0)
    caps = np.ceil(c * T / T0 - 1e-9).astype(np.int64)
    return Year(np.asarray(scores)[idx], np.asarray(groups)[idx], caps, n_groups, tuple(group_names), label)


# ---------------------------------------------------------------------------
# LPs
# ---------------------------------------------------------------------------

@dataclass
class LPResult:
    """A solved assignment LP: ``value`` (objective total, not divided by T), the
    fractional ``x`` (T×N), capacity duals ``lam`` (N,), group duals ``mu`` (G,) and
    the LP ``status`` (0 optimal, 2 infeasible)."""

    value: float
    x: np.ndarray | None
    lam: np.ndarray | None
    mu: np.ndarray | None
    status: int
    message: str = ""
    extra: dict = field(default_factory=dict)


def _polytope(K: int, N: int, caps: np.ndarray, supply: np.ndarray):
    """Sparse rows of the assignment polytope over K arrival *types* (identical arrivals
    merged; ``supply`` = how many arrivals of each type): K arrival rows then N
    capacity rows. Variable ``(k, i)`` is the mass of type k sent to location i."""
    n = K * N
    cols = np.arange(n)
    arr = sp.csr_matrix((np.ones(n), (np.repeat(np.arange(K), N), cols)), shape=(K, n))
    cap = sp.csr_matrix((np.ones(n), (np.tile(np.arange(N), K), cols)), shape=(N, n))
    return [arr, cap], [np.asarray(supply, dtype=float), np.asarray(caps, dtype=float)]


def _types(w: np.ndarray, groups: np.ndarray | None):
    """Merge identical arrivals (same score row and group): an exact reduction of every
    LP here, and a large one on worlds with few kinds of arrivals (Freund et al., Figure 1:
    4 variables instead of 2T). Returns (rows, group per row, counts, inverse index)."""
    g = np.zeros(len(w), dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
    key = np.column_stack([w, g.astype(float)])
    uniq, inv, cnt = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    if len(uniq) > 0.8 * len(w):      # continuous scores: nothing to merge, keep arrival order
        return w, g, np.ones(len(w)), np.arange(len(w))
    return uniq[:, :-1], uniq[:, -1].astype(np.int64), cnt.astype(float), inv.ravel()


def _group_rows(scores: np.ndarray, groups: np.ndarray, G: int):
    """Rows ``−Σ_{t∈G_g} w_t·x_t`` (one per group) for ``≥`` constraints written as ``≤``
    (``scores``/``groups`` per arrival type)."""
    T, N = scores.shape
    n = T * N
    return sp.csr_matrix((-scores.ravel(), (np.repeat(groups, N), np.arange(n))), shape=(G, n))


def _linprog(c, A, b):
    # HiGHS' dual simplex (also what method="highs" picks) is slow on these degenerate
    # transportation LPs: 3.7 s at T·N = 80,000 and 1.0 s at 40,000, against 0.85 s and
    # 0.3 s for its interior-point solver (with crossover, so duals are basic); presolve
    # off saves only ~10%. Tiny LPs keep the default HiGHS choice.
    method = "highs-ipm" if A.shape[1] > IPM_FROM else "highs"
    res = linprog(c, A_ub=A, b_ub=b, bounds=(0, None), method=method)
    LP_STATS["calls"] += 1
    return res


def _solve(c, A_blocks, b_blocks, *, extra_col=None, need_x=True) -> tuple:
    A = sp.vstack(A_blocks, format="csr")
    b = np.concatenate(b_blocks)
    if extra_col is not None:
        A = sp.hstack([A, sp.csr_matrix(extra_col.reshape(-1, 1))], format="csr")
    LP_STATS["count"] += 1
    return _linprog(c, A, b)


def _restricted(wk, nk, caps, active):
    """The assignment LP (arrival rows ``≤ nk``, capacity rows ``≤ caps``) over the
    columns ``active`` (K×N bool) only. Returns (linprog result, flat column indices)."""
    K, N = wk.shape
    cols = np.flatnonzero(active.ravel())
    t, i = np.divmod(cols, N)
    n = len(cols)
    A = sp.csc_matrix((np.ones(2 * n), (np.concatenate([t, K + i]), np.tile(np.arange(n), 2))),
                      shape=(K + N, n))
    return _linprog(-wk.ravel()[cols], A, np.concatenate([nk, caps])), cols


def _colgen(wk, nk, caps):
    """The unconstrained assignment LP ``max Σ w·x`` over the polytope (arrival types
    ``wk`` with supply ``nk``) by column generation; exact — the same LP optimum as
    the full LP, certified by reduced costs. At the optimum almost every arrival sits
    at a location maximising ``w_{t,i} − λ_i`` (λ = capacity duals), so the LP is
    solved over the columns within :data:`CG_DELTA` of each row's best ``w − λ̂``,
    with λ̂ the duals of the same LP on a random subsample of :data:`CG_SAMPLE`
    arrivals (capacities scaled): about 13% of the columns at T = 2,000, N = 40. Any
    column of positive reduced profit ``w_{t,i} − u_t − λ_i`` (u, λ the restricted
    LP's duals) is then added and the LP re-solved, until none is left (usually 0–1
    rounds); the restricted optimum is then optimal for the full LP and its duals
    are optimal duals of the full LP (which need not be the basis the full LP would
    report when the duals are not unique). Returns (value, x K×N, λ) or None (the
    caller then solves the full LP)."""
    K, N = wk.shape
    s = CG_SAMPLE
    if s < K:
        idx = np.sort(np.random.default_rng(0).choice(K, s, replace=False))
        res, _ = _restricted(wk[idx], nk[idx], caps * nk[idx].sum() / nk.sum(), np.ones((s, N), bool))
        if res.status != 0:  # pragma: no cover - bounded and feasible (x = 0)
            return None
        lam = -np.asarray(res.ineqlin.marginals)[s:]
    else:
        lam = np.zeros(N)
    v = wk - lam[None, :]
    spread = float(wk.max() - wk.min()) if wk.size else 0.0
    active = v >= np.maximum(v.max(axis=1, keepdims=True), 0.0) - CG_DELTA * max(spread, 1e-12)
    for _ in range(CG_ROUNDS):
        res, cols = _restricted(wk, nk, caps, active)
        if res.status != 0:  # pragma: no cover - bounded and feasible (x = 0)
            return None
        y = -np.asarray(res.ineqlin.marginals)
        d = wk - y[:K, None] - y[None, K:]
        viol = (d > CG_TOL) & ~active
        if not viol.any():
            x = np.zeros(K * N)
            x[cols] = res.x
            return float(-res.fun), x.reshape(K, N), y[K:]
        active |= viol
    return None  # not converged in CG_ROUNDS rounds: the caller solves the full LP


def solve_assignment(scores, capacities, groups=None, requirement=None, n_groups: int | None = None,
                     need_x: bool = False, colgen: bool = False) -> LPResult:
    """``max Σ_t w_t·x_t`` over the assignment polytope, and, when ``requirement`` is
    given, subject to ``Σ_{t∈G_g} w_t·x_t ≥ m_g |G_g|`` for every group (the seed's
    OPT, with ``m_g`` relaxed by :data:`FEAS_TOL`). ``capacities`` are place counts
    (floats allowed). Duals are in the maximisation's sign
    convention (``lam``, ``mu`` ≥ 0).

    ``colgen``: solve an unconstrained LP over more than :data:`CG_FROM` arrival types
    by column generation (``_colgen``: the same optimum; on the iid world 1.3× faster
    at T·N = 5,000, 2–3× at 20,000–40,000, 3.5–7× at 80,000, 6× at 200,000); ``lam`` is then an optimal dual too, but where the duals are not unique
    possibly not the one of the full LP, so callers that act on prices keep the
    default."""
    w = np.asarray(scores, dtype=float)
    T, N = w.shape
    caps = np.asarray(capacities, dtype=float)
    if T == 0:
        return LPResult(0.0, np.zeros((0, N)), np.zeros(N), None, 0)
    wk, gk, nk, inv = _types(w, groups if requirement is not None else None)
    K = len(wk)
    if colgen and requirement is None and K > CG_FROM:
        LP_STATS["count"] += 1
        got = _colgen(wk, nk, caps)
        if got is not None:
            value, xk, lam = got
            x = (xk / nk[:, None])[inv] if need_x else None
            return LPResult(value, x, lam, None, 0)
        LP_STATS["count"] -= 1
    A, b = _polytope(K, N, caps, nk)
    G = 0
    if requirement is not None:
        groups = np.asarray(groups, dtype=np.int64)
        G = int(n_groups if n_groups is not None else len(requirement))
        m = np.asarray(requirement, dtype=float)
        sizes = np.bincount(groups, minlength=G)
        A.append(_group_rows(wk, gk, G))
        b.append(-(np.maximum(m - FEAS_TOL, 0.0) * sizes))
    res = _solve(-wk.ravel(), A, b)
    if res.status != 0:
        return LPResult(float("nan"), None, None, None, int(res.status), res.message)
    marg = -np.asarray(res.ineqlin.marginals)
    lam = marg[K:K + N]
    mu = marg[K + N:K + N + G] if G else None
    x = (res.x.reshape(K, N) / nk[:, None])[inv] if need_x else None
    return LPResult(float(-res.fun), x, lam, mu, 0)


def maxmin_value(scores, groups, capacities, n_groups: int) -> tuple[float, np.ndarray | None]:
    """The MaxMin requirement: ``max z`` s.t. ``Ū_g ≥ z`` for every non-empty group over
    the assignment polytope (Example 3). Returns ``(z, capacity duals)``."""
    w = np.asarray(scores, dtype=float)
    T, N = w.shape
    groups = np.asarray(groups, dtype=np.int64)
    caps = np.asarray(capacities, dtype=float)
    sizes = np.bincount(groups, minlength=n_groups)
    nonempty = np.flatnonzero(sizes > 0)
    if T == 0 or nonempty.size == 0:
        return 0.0, None
    wk, gk, nk, _ = _types(w, groups)
    K = len(wk)
    A, b = _polytope(K, N, caps, nk)
    # Scale group rows by 1/|G_g| so they read −Ū_g + z ≤ 0.
    rows = _group_rows(wk / sizes[gk][:, None], gk, n_groups)[nonempty]
    A.append(rows)
    b.append(np.zeros(nonempty.size))
    col = np.concatenate([np.zeros(K + N), np.ones(nonempty.size)])
    c = np.concatenate([np.zeros(K * N), [-1.0]])
    res = _solve(c, A, b, extra_col=col)
    if res.status != 0:  # pragma: no cover - the problem is always feasible (z = 0)
        raise RuntimeError(f"MaxMin LP failed: {res.message}")
    return float(-res.fun), -np.asarray(res.ineqlin.marginals)[K:K + N]


def proportional_values(scores, groups, capacities, n_groups: int) -> np.ndarray:
    """Proportionally Optimized requirement (Example 2): for each non-empty group, its
    best average score alone with capacities ``ρ_i |G_g|``."""
    w = np.asarray(scores, dtype=float)
    T, N = w.shape
    groups = np.asarray(groups, dtype=np.int64)
    rho = np.asarray(capacities, dtype=float) / max(T, 1)
    out = np.zeros(n_groups)
    for g in range(n_groups):
        mask = groups == g
        ng = int(mask.sum())
        if ng == 0:
            continue
        out[g] = solve_assignment(w[mask], rho * ng, colgen=True).value / ng
    return out


def random_values(scores, groups, capacities, n_groups: int) -> np.ndarray:
    """Random requirement (Example 1): ``mean_{t∈G_g} w_t·ρ/Σρ``. With fewer places than
    arrivals (``Σ c_i < T``, where ``ρ/Σρ`` would place more arrivals than there are
    places; e.g. selection as N = 1 with capacity k) random assignment places an arrival
    at i with chance ``c_i/T`` and leaves it out otherwise (the outside option, worth 0):
    ``p = c / max(Σc, T)``, which is ``ρ/Σρ`` whenever ``Σρ ≥ 1``."""
    w = np.asarray(scores, dtype=float)
    T = w.shape[0]
    c = np.asarray(capacities, dtype=float)
    p = c / max(c.sum(), T) if c.sum() > 0 else np.full(len(c), 1.0 / len(c))
    v = w @ p
    groups = np.asarray(groups, dtype=np.int64)
    sizes = np.bincount(groups, minlength=n_groups)
    tot = np.bincount(groups, weights=v, minlength=n_groups)
    return np.where(sizes > 0, tot / np.maximum(sizes, 1), 0.0)


def requirement(scores, groups, capacities, rule: str, n_groups: int, given=None) -> np.ndarray:
    """Minimum requirements ``m_g`` (G,) of ``rule`` on this path; 0 for empty groups."""
    groups = np.asarray(groups, dtype=np.int64)
    sizes = np.bincount(groups, minlength=n_groups)
    if rule == "random":
        return random_values(scores, groups, capacities, n_groups)
    if rule == "proportional":
        return proportional_values(scores, groups, capacities, n_groups)
    if rule == "maxmin":
        z, _ = maxmin_value(scores, groups, capacities, n_groups)
        return np.where(sizes > 0, z, 0.0)
    if rule == "given":
        if given is None:
            raise ValueError("rule 'given' needs the requirement values")
        m = np.broadcast_to(np.asarray(given, dtype=float), (n_groups,)).copy()
        return np.where(sizes > 0, m, 0.0)
    raise ValueError(f"unknown requirement rule {rule!r}; choose from {', '.join(RULES)}")


def is_feasible(scores, groups, capacities, m, n_groups: int, tol: float = 1e-7) -> bool:
    """Ex-post feasibility (seed Def 1): is there a fractional assignment on this path
    giving every group ``Ū_g ≥ m_g − tol``?"""
    r = solve_assignment(scores, capacities, groups, np.asarray(m, dtype=float) - tol, n_groups)
    return r.status == 0


# ---------------------------------------------------------------------------
# Figures of one path
# ---------------------------------------------------------------------------

def group_values(scores, groups, locations, n_groups: int) -> np.ndarray:
    """``Ū_g`` for one or many outcome rows: ``locations`` (T,) or (B, T) → (G,) or (B, G)."""
    w = np.asarray(scores, dtype=float)
    loc = np.asarray(locations)
    single = loc.ndim == 1
    loc = np.atleast_2d(loc)
    B, T = loc.shape
    got = np.where(loc >= 0, w[np.arange(T)[None, :], np.maximum(loc, 0)], 0.0)   # (B, T)
    groups = np.asarray(groups, dtype=np.int64)
    sizes = np.bincount(groups, minlength=n_groups)
    onehot = np.zeros((T, n_groups))
    onehot[np.arange(T), groups] = 1.0
    out = (got @ onehot) / np.maximum(sizes, 1)[None, :]
    return out[0] if single else out


@dataclass
class PathBenchmarks:
    """What is recomputed on every path (paired with the assigner's outcomes): the
    requirement, OPT with group constraints and the unconstrained optimum (per arrival)."""

    m: np.ndarray
    opt: float
    opt_unc: float
    sizes: np.ndarray
    feasible: bool

    @property
    def price_of_fairness(self) -> float:
        return 1.0 - self.opt / self.opt_unc if self.opt_unc > 0 else 0.0


def benchmarks(year: Year, rule: str, given=None) -> PathBenchmarks:
    """Requirement, OPT and unconstrained optimum of one path (at most 3 LPs for
    MaxMin, G+2 for Proportionally Optimized, 2 for Random)."""
    m = requirement(year.scores, year.groups, year.capacities, rule, year.n_groups, given)
    T = max(year.T, 1)
    sizes = year.sizes()
    u = solve_assignment(year.scores, year.capacities, need_x=True, colgen=True)
    # When the unconstrained optimum already meets every requirement it is OPT too
    # (price of fairness 0): one LP saved, which is common for Random and PO.
    Ux = np.bincount(year.groups, weights=(u.x * year.scores).sum(axis=1), minlength=year.n_groups)
    if np.all((Ux / np.maximum(sizes, 1) >= m - FEAS_TOL) | (sizes == 0)):
        return PathBenchmarks(m, u.value / T, u.value / T, sizes, True)
    fair = solve_assignment(year.scores, year.capacities, year.groups, m, year.n_groups)
    feasible = fair.status == 0
    opt = fair.value / T if feasible else float("nan")
    return PathBenchmarks(m, opt, u.value / T, sizes, feasible)


def path_figures(year: Year, bench: PathBenchmarks, locations) -> dict[str, np.ndarray]:
    """Ū_g, g-regret, ALG, global regret, max regret and the assigner's price of
    fairness for one or many outcome rows (B, T) of the same path."""
    loc = np.atleast_2d(np.asarray(locations))
    U = group_values(year.scores, year.groups, loc, year.n_groups)            # (B, G)
    sizes = bench.sizes
    R = np.where(sizes[None, :] > 0, bench.m[None, :] - U, 0.0)
    T = max(year.T, 1)
    got = np.where(loc >= 0, year.scores[np.arange(year.T)[None, :], np.maximum(loc, 0)], 0.0)
    alg = got.sum(axis=1) / T
    glob = bench.opt - alg
    nonempty = sizes > 0
    maxR = np.maximum(glob, R[:, nonempty].max(axis=1) if nonempty.any() else -np.inf)
    pof = 1.0 - alg / bench.opt_unc if bench.opt_unc > 0 else np.zeros_like(alg)
    return {"U": U, "R": R, "alg": alg, "global_regret": glob, "max_regret": maxR, "price_of_fairness": pof}
