"""Cross-population pools with known quality (Kearns, Roth and Wu) and the
ex-interim statistics computed on them.

Public API (usable from Python; ``fairaudit simulate`` writes pools to CSV)::

    from fairaudit.populations import simulate_pool, simulate_pools, epsilon_hat
    pool = simulate_pool("paper", n=150, rng=np.random.default_rng(0))
    pool.scores, pool.population, pool.quality, pool.k      # arrays and k
    pool.frame()        # DataFrame: id, score, population, quality
    pool.instance()     # fairaudit.Instance (scores, k, groups=DataFrame[population])

**Quality** is the candidate's *true* CDF value within its own population,
``F_j(x_ij)`` (Kearns, Roth and Wu, §2), computed from the known generating distribution.

**Setups** (``SETUPS``), each with ``d`` populations in size ratio ``ratio`` (default
2:1) and ``k = ceil(k_frac · n)`` (default 10% of n, the paper's §7):

``paper``         population j ~ N(μ_j, 1), μ_j ~ N(0, 1) (§5 and §7).
``uniform``       population j ~ Uniform(a_j, a_j + w_j), a_j ~ N(0, 1), w_j ~ U(0.5, 3).
``heavy``         population j ~ μ_j + s_j · t_2 (Student t, 2 degrees of freedom:
                  infinite variance), μ_j ~ N(0, 1), s_j = exp(N(0, 0.5²)).
``misspecified``  §7's stress test: population 1 ~ N(μ_1, 1), the *last* population
                  ~ Uniform(μ − 10, μ + 10) ("uniform over a wide range"), μ ~ N(0, 1).

Decisions (SPEC silent): the widths, the t degrees of freedom and the ±10 range are
choices documented here; pools are seeded per index from ``SeedSequence(seed,
spawn_key=(r,))`` so pool r does not depend on how many pools are drawn.

**Empirical CDF.** ``empirical_cdf`` follows the paper: ``F̂_j(x) = (1/m_j) Σ 1[x' < x]``
over the candidate's own population (values 0, 1/m_j, …, (m_j−1)/m_j); the empirical
CCDF is ``p̂ = 1 − F̂``.

**ε̂** (SPEC §3): ``ε̂ = max over pairs F(a) ≤ F(b), a ≠ b, of ln(A_a / A_b)``, with
certified bounds from a simultaneous box of intervals ``[lo_i, hi_i]`` on the chances:
lower ``max ln(lo_a / hi_b)``, upper ``max ln(hi_a / lo_b)``. Computed in O(n log n):
sort on quality once and keep the running maximum of the numerator over everyone of
lower-or-equal quality (ties in quality compare both ways).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats as _st

SETUPS = ("paper", "uniform", "heavy", "misspecified")
POPULATION_COLUMN = "population"
QUALITY_COLUMN = "quality"


# ---------------------------------------------------------------------------
# Pools
# ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Pool:
    """One realised pool X: raw ``scores``, integer ``population`` codes (0..d−1, names
    in ``names``), true-CDF ``quality`` in (0, 1), and ``k`` to select."""

    scores: np.ndarray
    population: np.ndarray
    quality: np.ndarray
    k: int
    setup: str = "paper"
    names: tuple[str, ...] = ("A", "B")
    params: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.scores.shape[0])

    @property
    def labels(self) -> np.ndarray:
        """Population names, one per candidate."""
        return np.asarray(self.names, dtype=object)[self.population]

    def groups(self) -> pd.DataFrame:
        """The ``groups`` DataFrame an allocator receives (one column, ``population``)."""
        return pd.DataFrame({POPULATION_COLUMN: self.labels.astype(str)})

    def frame(self) -> pd.DataFrame:
        """id, score, population, quality — the CSV that ``fairaudit simulate`` writes."""
        return pd.DataFrame({"id": np.arange(self.n), "score": self.scores,
                             POPULATION_COLUMN: self.labels.astype(str), QUALITY_COLUMN: self.quality})

    def instance(self, label: str | None = None):
        """A :class:`fairaudit.targets.Instance` of this pool (quality is *not* passed)."""
        from .instance import Instance
        return Instance(label or f"{self.setup} pool, n={self.n}, k={self.k}", scores=self.scores, k=self.k,
                        groups=self.groups())

    def empirical_cdf(self) -> np.ndarray:
        return empirical_cdf(self.scores, self.population)


def population_sizes(n: int, ratio: Sequence[float] = (2, 1)) -> np.ndarray:
    """Sizes in proportion to ``ratio`` summing to ``n`` (largest remainders), each ≥ 1."""
    r = np.asarray(ratio, dtype=float)
    if n < len(r):
        raise ValueError(f"n={n} is smaller than the number of populations {len(r)}")
    raw = n * r / r.sum()
    m = np.floor(raw).astype(int)
    rem = n - m.sum()
    order = np.argsort(-(raw - m), kind="stable")
    m[order[:rem]] += 1
    m = np.maximum(m, 1)
    m[np.argmax(m)] -= m.sum() - n
    return m


def simulate_pool(setup: str = "paper", n: int = 150, rng: np.random.Generator | None = None, *,
                  ratio: Sequence[float] = (2, 1), k: int | None = None, k_frac: float = 0.1,
                  names: Sequence[str] | None = None) -> Pool:
    """Draw one pool of ``n`` candidates from ``setup`` (see the module docstring).

    ``ratio`` gives the population sizes' proportions (d = len(ratio)); ``k`` defaults
    to ``ceil(k_frac · n)``. The paper's §7 pool is ``simulate_pool("paper", 150)``:
    m = (100, 50), k = 15."""
    if setup not in SETUPS:
        raise ValueError(f"unknown setup {setup!r}; choose from {', '.join(SETUPS)}")
    rng = rng if rng is not None else np.random.default_rng(0)
    m = population_sizes(int(n), ratio)
    d = len(m)
    names = tuple(names) if names is not None else tuple(chr(ord("A") + j) for j in range(d))
    pop = np.repeat(np.arange(d), m)
    scores = np.empty(int(n))
    quality = np.empty(int(n))
    params: dict = {"sizes": m.tolist()}
    mu = rng.standard_normal(d)
    params["mu"] = mu.tolist()
    for j in range(d):
        sl = pop == j
        if setup == "paper" or (setup == "misspecified" and j < d - 1):
            x = rng.normal(mu[j], 1.0, m[j])
            q = _st.norm.cdf(x - mu[j])
        elif setup == "uniform":
            w = rng.uniform(0.5, 3.0)
            params.setdefault("width", []).append(w)
            x = rng.uniform(mu[j], mu[j] + w, m[j])
            q = (x - mu[j]) / w
        elif setup == "heavy":
            s = float(np.exp(rng.normal(0.0, 0.5)))
            params.setdefault("scale", []).append(s)
            z = rng.standard_t(2, m[j])
            x = mu[j] + s * z
            q = _st.t.cdf(z, 2)
        else:  # misspecified: the last population is uniform over a wide range
            x = rng.uniform(mu[j] - 10.0, mu[j] + 10.0, m[j])
            q = (x - (mu[j] - 10.0)) / 20.0
        scores[sl] = x
        quality[sl] = q
    kk = int(k) if k is not None else max(1, math.ceil(k_frac * n - 1e-9))
    if not 1 <= kk <= n:
        raise ValueError(f"k={kk} must be between 1 and n={n}")
    return Pool(scores=scores, population=pop, quality=quality, k=kk, setup=setup, names=names, params=params)


def pool_generator(seed: int, r: int) -> np.random.Generator:
    """The generator of pool ``r`` under ``seed`` (independent of how many pools are drawn)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=(0x5EED04, int(r)))))


def simulate_pools(setup: str = "paper", n: int = 150, pools: int = 100, seed: int = 0, **kw) -> list[Pool]:
    """``pools`` independent pools (pool r seeded by :func:`pool_generator`)."""
    return [simulate_pool(setup, n, pool_generator(seed, r), **kw) for r in range(int(pools))]


def pools_frame(pools: Sequence[Pool]) -> pd.DataFrame:
    """Several pools in one long table with a ``pool`` column (for CSV output)."""
    frames = []
    for r, p in enumerate(pools):
        f = p.frame()
        f.insert(0, "pool", r)
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------------------
# Empirical CDFs, losses, the true top k
# ---------------------------------------------------------------------------

def population_codes(groups, column: str | None = POPULATION_COLUMN, n: int | None = None) -> np.ndarray:
    """Integer population codes from an allocator's ``groups`` argument: the column
    ``column`` when present, else the first column; one population when ``groups`` is None."""
    if groups is None:
        return np.zeros(int(n or 0), dtype=np.int64)
    if isinstance(groups, pd.DataFrame):
        col = column if column in groups.columns else groups.columns[0]
        vals = groups[col].to_numpy()
    else:
        vals = np.asarray(groups)
    _, codes = np.unique(np.asarray(vals).astype(str), return_inverse=True)
    return codes.reshape(-1).astype(np.int64)


def empirical_cdf(scores, population) -> np.ndarray:
    """``F̂_j(x) = (1/m_j) #{x' in population j : x' < x}`` for every candidate (Kearns, Roth and Wu, §2)."""
    x = np.asarray(scores, dtype=float)
    pop = np.asarray(population)
    out = np.empty(x.shape[0])
    for j in np.unique(pop):
        sl = np.flatnonzero(pop == j)
        xs = np.sort(x[sl])
        out[sl] = np.searchsorted(xs, x[sl], side="left") / sl.size
    return out


def loss(pi, quality, k: int) -> float:
    """Seed 004 §2: ``L(A, X) = (1/k) Σ A(X, x) (1 − F(x))`` (chances ``pi``)."""
    return float(np.dot(np.asarray(pi, dtype=float), 1.0 - np.asarray(quality, dtype=float)) / k)


def true_top_k(quality, k: int) -> np.ndarray:
    """Indices of the k highest true qualities."""
    q = np.asarray(quality, dtype=float)
    return np.argsort(-q, kind="stable")[:k]


def optimal_loss(quality, k: int) -> float:
    """Loss of selecting the true top k (the best any algorithm can do on this pool)."""
    q = np.asarray(quality, dtype=float)
    return float(np.sort(1.0 - q)[:k].sum() / k)


def selected_is_true_top_k(selected: np.ndarray, quality) -> np.ndarray:
    """(B, k) selections → bool per run: every selected candidate is better than every
    rejected one (ex-post fairness, Def 2.5). Vectorised; ties in quality count as fair."""
    sel = np.atleast_2d(np.asarray(selected))
    q = np.asarray(quality, dtype=float)
    B, k = sel.shape
    n = q.shape[0]
    mask = np.zeros((B, n), dtype=bool)
    mask[np.arange(B)[:, None], sel] = True
    min_sel = q[sel].min(axis=1)
    qr = np.where(mask, -np.inf, q[None, :])
    max_rej = qr.max(axis=1) if n > k else np.full(B, -np.inf)
    return min_sel >= max_rej


# ---------------------------------------------------------------------------
# ε̂ in O(n log n)
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class EpsilonHat:
    """ε̂ of one pool with its certified bounds and the pairs that attain them.

    ``pair``: (a, b) attaining the point estimate — a has quality ≤ b's but the larger
    chance. ``pair_lower``: the pair attaining the lower bound (the certified violation
    when ``lower > ε``). Indices are into the pool; −1 when n < 2."""

    estimate: float
    lower: float
    upper: float
    pair: tuple[int, int]
    pair_lower: tuple[int, int]
    pair_upper: tuple[int, int]
    additive: bool = False


def _prefix_max_excluding_self(v: np.ndarray, q_sorted: np.ndarray):
    """For each position t of a quality-sorted array: max of ``v`` over positions with
    quality ≤ q_sorted[t], excluding t itself, and the index attaining it (−1 if none).
    Ties in quality are visible both ways (the whole tie block counts as ≤)."""
    n = v.shape[0]
    idx = np.arange(n)
    # End (exclusive) of each tie block.
    new_block = np.r_[True, q_sorted[1:] != q_sorted[:-1]]
    block_id = np.cumsum(new_block) - 1
    starts = np.flatnonzero(new_block)
    ends = np.r_[starts[1:], n]
    # Running max and its argmax over the prefix.
    cm = np.maximum.accumulate(v)
    is_new = v >= cm
    arg = np.maximum.accumulate(np.where(is_new, idx, 0))
    # Max over strictly-lower blocks: prefix up to block start − 1.
    bstart = starts[block_id]
    before = np.where(bstart > 0, cm[np.maximum(bstart - 1, 0)], -np.inf)
    before_arg = np.where(bstart > 0, arg[np.maximum(bstart - 1, 0)], -1)
    out, out_arg = before.copy(), before_arg.copy()
    # Within the tie block, excluding self: top-2 of the block (only for blocks > 1).
    sizes = ends - starts
    big = np.flatnonzero(sizes > 1)
    for bi in big:  # tie blocks are rare with continuous qualities
        s, e = starts[bi], ends[bi]
        vv = v[s:e]
        order = np.argsort(-vv, kind="stable")
        first, second = s + order[0], s + order[1]
        for t in range(s, e):
            cand = first if t != first else second
            if v[cand] > out[t]:
                out[t], out_arg[t] = v[cand], cand
    return out, out_arg


def _log_ratio(num, den):
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(num <= 0, -np.inf, np.where(den <= 0, np.inf, np.log(np.maximum(num, 1e-300))
                                                  - np.log(np.maximum(den, 1e-300))))
    return r


def epsilon_hat(pi, quality, lo=None, hi=None, *, additive: bool = False) -> EpsilonHat:
    """ε̂ = max over pairs with F(a) ≤ F(b), a ≠ b, of ln(A_a/A_b) (or A_a − A_b when
    ``additive``, which is *not* the paper's definition), with certified bounds from a
    simultaneous box ``lo ≤ A ≤ hi``; O(n log n). ``0/0`` counts as no violation
    (−∞), ``x/0`` with x > 0 as ∞."""
    pi = np.asarray(pi, dtype=float)
    q = np.asarray(quality, dtype=float)
    lo = pi if lo is None else np.asarray(lo, dtype=float)
    hi = pi if hi is None else np.asarray(hi, dtype=float)
    n = pi.shape[0]
    if n < 2:
        return EpsilonHat(-math.inf, -math.inf, -math.inf, (-1, -1), (-1, -1), (-1, -1), additive)
    order = np.argsort(q, kind="stable")
    qs = q[order]

    def one(num, den):
        m, marg = _prefix_max_excluding_self(num[order], qs)
        d = den[order]
        val = (m - d) if additive else _log_ratio(m, d)
        val = np.where(marg < 0, -np.inf, val)
        t = int(np.argmax(val))
        return float(val[t]), (int(order[marg[t]]) if marg[t] >= 0 else -1, int(order[t]))

    est, pair = one(pi, pi)
    low, pl = one(lo, hi)
    up, pu = one(hi, lo)
    return EpsilonHat(est, low, max(up, est), pair, pl, pu, additive)


def epsilon_hat_bruteforce(pi, quality, *, additive: bool = False) -> float:
    """O(n²) reference for tests."""
    pi = np.asarray(pi, dtype=float)
    q = np.asarray(quality, dtype=float)
    a, b = np.meshgrid(np.arange(len(pi)), np.arange(len(pi)), indexing="ij")
    ok = (q[a] <= q[b]) & (a != b)
    if additive:
        vals = pi[a] - pi[b]
    else:
        vals = _log_ratio(pi[a], pi[b])
    vals = np.where(ok, vals, -np.inf)
    return float(vals.max()) if ok.any() else -math.inf


def seed004_pool(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Seed 004's simulation pool: two populations of sizes 2:1, scores ``N(μ_j, 1)``
    with ``μ_j ~ N(0, 1)``. Returns (scores, population labels 'P1'/'P2').

    Decision: the raw scores are then mapped by one common increasing affine map into
    [0.05, 1] (claims of Jain, Creel and Wilson's allocators must be positive). A common increasing
    map changes no empirical CDF value, so obliviousness is unaffected."""
    n1 = int(round(2 * n / 3))
    mu = rng.normal(0, 1, 2)
    s = np.concatenate([rng.normal(mu[0], 1, n1), rng.normal(mu[1], 1, n - n1)])
    s = 0.05 + 0.95 * (s - s.min()) / max(float(s.max() - s.min()), 1e-12)
    pop = np.array(["P1"] * n1 + ["P2"] * (n - n1))
    return np.round(s, 4), pop


def ecdf_preserving_transforms(scores: np.ndarray, pops: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Strictly increasing transforms of each population's scores (so every
    within-population empirical CDF value is kept) that reorder the populations:
    each population (up to three) lifted above all others, then a non-linear map
    (exp for the first population, cube for the next, alternating)."""
    s = np.asarray(scores, float)
    labels = sorted(np.unique(pops).tolist())
    span = float(s.max() - s.min()) + 1.0
    out = []
    for lab in labels[:3]:
        m = pops == lab
        t = s.copy()
        t[m] = s[m] + span + 1.0
        out.append((f"population {lab} lifted above the others (x → x + {span + 1.0:.3g})", t))
    t = s.copy()
    for j, lab in enumerate(labels):
        m = pops == lab
        z = (s[m] - s.min()) / span          # in [0, 1)
        t[m] = np.exp(3 * z) * (j + 1) if j % 2 == 0 else (2 * z - 1) ** 3 + 2 * j
    out.append(("non-linear per population (exp / cube)", t))
    return out
