"""Exact mathematics of the Δ-equal-utility allocations of Jain et al., Allocation Multiplicity (Jain, Wang, Creel,
Wilson — allocation multiplicity, §3.3 and §5.2).

``n`` individuals, ``n_q`` of them qualified (labels o* = 1), ``k`` places; a baseline
allocation o₀ selects ``k_q`` qualified people (k′ in the seed). The set of Δ-equal-utility
allocations is every k-subset whose number of qualified people lies in the band
``[k′ − Δ, k′]`` (intersected with what is possible: at least ``k − (n − n′)``, at most
``min(n′, k)``).

Decision (SPEC §7/§8 and the seed disagree at the top of the band). Def 7 literally
reads ``k′_δ ≥ k′ − Δ`` with no upper end, but Prop 3.1 — and so Table 1 — sums only
``k′ − Δ ≤ k′_δ ≤ k′``; an allocation better than the baseline is not "equal utility".
We follow Prop 3.1 (SPEC §7 says so explicitly): the band is ``[k′ − Δ, k′]``.

Everything here is exact: counts are Python integers, probabilities are ratios of
those integers (:class:`fractions.Fraction`) converted to float only at the end.
The uniform distribution on the band is the *reference*: draw ``k′_δ`` with probability
proportional to ``C(n′, k′_δ)·C(n − n′, k − k′_δ)`` (its share of the set), then the
qualified and the unqualified chosen uniformly. Under it every qualified person has the
same selection probability ``E[k′_δ]/n′`` and every unqualified person
``(k − E[k′_δ])/(n − n′)``; pairwise consistency (the chance a person gets the same
outcome under two independent allocations of the set, averaged over people, Jain et al., Allocation Multiplicity
§5.2 after Cooper et al.) depends only on these marginals:
``PC = (n′/n)·f(π_q) + (1 − n′/n)·f(π_u)``, ``f(p) = p² + (1 − p)²`` — for Δ = 0,
``π_q = k′/n′`` and ``π_u = (k − k′)/(n − n′)``: SPEC §8's formula. For Δ > 0 the same
holds with the band's mean qualified count, since PC depends on the marginals only.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import numpy as np

__all__ = ["Band", "band", "count_allocations", "power_of_ten", "band_weights", "reference_marginals",
           "pairwise_consistency_of_marginals", "reference_pairwise_consistency", "sample_band",
           "pairwise_consistency_ustat", "disjoint_pair_agreement", "entropy_bits", "ratio_range",
           "ratio_of_allocation", "RatioExtreme", "inclusion_of", "ratios_of_allocations",
           "entropy_of_rows"]


# ---------------------------------------------------------------------------
# The band and its size (Prop 3.1)
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Band:
    """The qualified counts ``lo..hi`` an equal-utility allocation may have, for ``n``
    individuals of whom ``n_q`` are qualified and ``k`` places."""

    n: int
    n_q: int
    k: int
    lo: int
    hi: int

    @property
    def counts(self) -> range:
        return range(self.lo, self.hi + 1)


def band(n: int, n_q: int, k: int, k_q: int, delta: int = 0) -> Band:
    """The band ``[k′ − Δ, k′]`` clipped to the feasible qualified counts."""
    n, n_q, k, k_q, delta = int(n), int(n_q), int(k), int(k_q), int(delta)
    if not (0 <= n_q <= n and 0 <= k <= n and 0 <= k_q <= min(k, n_q) and k - k_q <= n - n_q and delta >= 0):
        raise ValueError(f"impossible setting: n={n}, n'={n_q}, k={k}, k'={k_q}, Δ={delta}")
    lo = max(k_q - delta, 0, k - (n - n_q))
    return Band(n, n_q, k, lo, k_q)


def count_allocations(n: int, n_q: int, k: int, k_q: int, delta: int = 0) -> int:
    """``|R_Δ(o₀)| = Σ_{k′_δ = k′−Δ}^{k′} C(n′, k′_δ)·C(n − n′, k − k′_δ)`` (Prop 3.1), exactly."""
    b = band(n, n_q, k, k_q, delta)
    return sum(math.comb(n_q, j) * math.comb(n - n_q, k - j) for j in b.counts)


def power_of_ten(count: int, digits: int = 1) -> tuple[str, int]:
    """A positive integer as ``(mantissa, exponent)`` with ``digits`` significant digits,
    rounded half-up exactly (``7×10^11`` is ``("7", 11)``), as Table 1 prints it."""
    if count <= 0:
        raise ValueError("count must be positive")
    e = len(str(count)) - 1
    m = (Decimal(count) / (Decimal(10) ** e)).quantize(Decimal(1).scaleb(-(digits - 1)), rounding=ROUND_HALF_UP)
    if m >= 10:
        m, e = (m / 10).quantize(Decimal(1).scaleb(-(digits - 1)), rounding=ROUND_HALF_UP), e + 1
    return str(m), e


def band_weights(b: Band) -> tuple[np.ndarray, list[Fraction]]:
    """The qualified counts of the band and their exact probabilities under the uniform
    distribution on it (each count's term of Prop 3.1 over the sum)."""
    terms = [math.comb(b.n_q, j) * math.comb(b.n - b.n_q, b.k - j) for j in b.counts]
    total = sum(terms)
    return np.arange(b.lo, b.hi + 1), [Fraction(t, total) for t in terms]


def reference_marginals(b: Band) -> tuple[float, float]:
    """Exact selection probabilities ``(π_q, π_u)`` of a qualified and an unqualified
    person under the uniform distribution on the band: ``E[k′_δ]/n′`` and
    ``(k − E[k′_δ])/(n − n′)`` (by symmetry within each label; 0 when a class is empty)."""
    js, ps = band_weights(b)
    mean = sum((int(j) * p for j, p in zip(js, ps)), Fraction(0))
    pq = mean / b.n_q if b.n_q else Fraction(0)
    pu = (b.k - mean) / (b.n - b.n_q) if b.n > b.n_q else Fraction(0)
    return float(pq), float(pu)


def pairwise_consistency_of_marginals(pi) -> float:
    """Pairwise consistency of a distribution over allocations with marginals ``pi``:
    two independent allocations agree on person i with chance ``π_i² + (1 − π_i)²``;
    averaged over people."""
    pi = np.asarray(pi, dtype=float)
    return float(np.mean(pi ** 2 + (1 - pi) ** 2))


def reference_pairwise_consistency(b: Band) -> float:
    """``PC = (n′/n)·f(π_q) + (1 − n′/n)·f(π_u)`` with ``f(p) = p² + (1 − p)²``."""
    pq, pu = reference_marginals(b)
    f = lambda p: p * p + (1 - p) * (1 - p)  # noqa: E731
    return (b.n_q / b.n) * f(pq) + (1 - b.n_q / b.n) * f(pu)


# ---------------------------------------------------------------------------
# The exact uniform sampler of the band
# ---------------------------------------------------------------------------

def sample_band(rng: np.random.Generator, qualified, k: int, lo: int, hi: int, size: int = 1) -> np.ndarray:
    """``size`` allocations drawn uniformly from every k-subset with ``lo..hi`` qualified
    people: the count by its exact share, then the two subsets uniformly (a random order of
    each class, ``Generator.permuted`` per row). Returns ``(size, k)`` selected indices, ascending."""
    qualified = np.asarray(qualified, dtype=bool)
    n, n_q = qualified.size, int(qualified.sum())
    b = Band(n, n_q, int(k), int(lo), int(hi))
    js, ps = band_weights(b)
    # exact cumulative probabilities, compared with uniforms: no float renormalisation needed
    cum = np.array([float(c) for c in itertools.accumulate(ps)])
    cum[-1] = 1.0
    kq = js[np.searchsorted(cum, rng.random(size), side="right").clip(0, len(js) - 1)]
    take = np.zeros((size, n), dtype=bool)
    rows = np.arange(size)[:, None]
    for idx, m in ((np.flatnonzero(qualified), kq), (np.flatnonzero(~qualified), k - kq)):
        if idx.size:
            # a uniformly random order of the class per row; its first m[b] are a uniform m[b]-subset
            perm = rng.permuted(np.broadcast_to(idx, (size, idx.size)), axis=1)
            first = np.arange(idx.size)[None, :] < m[:, None]
            take[np.broadcast_to(rows, perm.shape)[first], perm[first]] = True
    return np.nonzero(take)[1].reshape(size, k)


# ---------------------------------------------------------------------------
# Estimators of the recovered set
# ---------------------------------------------------------------------------

def pairwise_consistency_ustat(counts, B: int) -> float:
    """Unbiased (U-statistic) estimate of pairwise consistency from B independent
    allocations, person i selected in ``counts[i]`` of them: the share of ordered pairs
    of distinct allocations that agree on i, averaged over people."""
    c = np.asarray(counts, dtype=float)
    if B < 2:
        return float("nan")
    return float(np.mean((c * (c - 1) + (B - c) * (B - c - 1)) / (B * (B - 1))))


def disjoint_pair_agreement(inclusion: np.ndarray) -> np.ndarray:
    """Agreement of allocations ``2j`` and ``2j + 1`` (share of people with the same
    outcome in both): independent, identically distributed, in [0, 1], with mean the
    pairwise consistency — what an anytime-valid confidence sequence needs."""
    m = inclusion.shape[0] // 2
    a, b = inclusion[0:2 * m:2], inclusion[1:2 * m:2]
    return (a == b).mean(axis=1)


def entropy_bits(counts) -> float:
    """Shannon entropy (bits) of a distribution given by counts or probabilities."""
    p = np.asarray(counts, dtype=float)
    p = p[p > 0] / p.sum() if p.sum() > 0 else p[:0]
    return float(-(p * np.log2(p)).sum()) + 0.0   # no negative zero


# ---------------------------------------------------------------------------
# Exact range of a group ratio over the band (the least discriminatory allocation)
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class RatioExtreme:
    value: float
    selected: np.ndarray   # a witness allocation (indices) attaining it


def ratio_of_allocation(selected, in_a, in_b, values=None) -> float:
    """The group metric of one allocation: mean of ``values`` among the selected of A
    over that among the selected of B (the threshold test, Jain et al., Allocation Multiplicity, §5.2), or, with
    ``values=None``, A's selection rate over B's. NaN when undefined."""
    sel = np.zeros(len(in_a), bool)
    sel[np.asarray(selected, dtype=int)] = True
    a, b = sel & in_a, sel & in_b
    if values is None:
        ra, rb = a.sum() / max(in_a.sum(), 1), b.sum() / max(in_b.sum(), 1)
    else:
        if not a.any() or not b.any():
            return float("nan")
        ra, rb = values[a].mean(), values[b].mean()
    if rb == 0:
        return float("inf") if ra > 0 else float("nan")
    return float(ra / rb)


def ratio_range(qualified, in_a, in_b, k: int, lo: int, hi: int, values=None) -> tuple[RatioExtreme, RatioExtreme]:
    """The exact minimum and maximum of :func:`ratio_of_allocation` over every k-subset
    with ``lo..hi`` qualified people, each with an allocation attaining it.

    ``values`` must be non-negative (a count such as active chronic illnesses); groups
    A and B are disjoint; everyone else ("others", O) may be selected too.

    Why this is exact (proof). Split people into the six cells group × label
    (A1, A0, B1, B0, O1, O0). An allocation's feasibility depends only on its six cell
    counts (k in all, ``lo ≤ a_A1 + a_B1 + a_O1 ≤ hi``), and its ratio only on *which*
    A and B members it takes. (1) Fix the cell counts. Replacing a selected member of a
    cell by an unselected member of the same cell keeps every count, so the result is
    feasible; to minimise the ratio ``mean_A / mean_B`` (numerator ≥ 0, denominator > 0)
    one minimises the numerator and maximises the denominator independently, which the
    exchange argument shows is done by taking the smallest values in A1 and A0 and the
    largest in B1 and B0. So with ``P`` the prefix sums of sorted values, the best
    numerator given ``(m_A, j_A)`` (A selected, of whom qualified) is
    ``(P_A1[j_A] + P_A0[m_A − j_A]) / m_A`` and the best denominator given ``(m_B, j_B)``
    is ``H(m_B, j_B) = (P↓_B1[j_B] + P↓_B0[m_B − j_B]) / m_B``. (2) The others only fill
    places: with ``m_O = k − m_A − m_B`` of them the qualified among them can be any
    integer in ``[max(0, m_O − |O0|), min(m_O, |O1|)]``, so the feasible ``j_B`` for given
    ``(m_A, j_A, m_B)`` form an interval. (3) ``H(m_B, ·)`` is concave (both prefix sums
    of descending values are concave and ``m_B − j_B`` is affine), so its maximum over
    an interval is at the unconstrained maximiser clipped into the interval. (4) Every
    ``(m_A, j_A, m_B)`` is enumerated (vectorised over ``j_A`` and ``m_B``), so the
    minimum found is the minimum over all allocations. The maximum of the ratio is
    ``1 / min(mean_B / mean_A)``, the same problem with A and B swapped. For the
    selection-rate ratio the numerator and denominator depend on the counts only, and
    the same enumeration applies with ``m_A = 0`` allowed. ∎
    """
    qualified, in_a, in_b = (np.asarray(x, dtype=bool) for x in (qualified, in_a, in_b))
    if values is not None:
        values = np.asarray(values, dtype=float)
        if np.any(values < 0) or not np.all(np.isfinite(values)):
            raise ValueError("the ratio of means needs finite, non-negative values")
    lo_r = _min_ratio(qualified, in_a, in_b, k, lo, hi, values)
    inv = _min_ratio(qualified, in_b, in_a, k, lo, hi, values)
    hi_value = (1.0 / inv.value) if inv.value > 0 else float("inf")
    return lo_r, RatioExtreme(hi_value, inv.selected)


def _min_ratio(q, in_a, in_b, k, lo, hi, values) -> RatioExtreme:
    in_o = ~(in_a | in_b)
    rate = values is None
    cells = {}
    for name, g in (("a", in_a), ("b", in_b), ("o", in_o)):
        for lab, m in ((1, q), (0, ~q)):
            cells[name + str(lab)] = np.flatnonzero(g & m)
    v = np.ones(len(q)) if rate else values
    # numerator group: ascending; denominator group: descending (stable, so ties go by index)
    a1 = cells["a1"][np.argsort(v[cells["a1"]], kind="stable")]
    a0 = cells["a0"][np.argsort(v[cells["a0"]], kind="stable")]
    b1 = cells["b1"][np.argsort(-v[cells["b1"]], kind="stable")]
    b0 = cells["b0"][np.argsort(-v[cells["b0"]], kind="stable")]
    PA1, PA0 = np.concatenate([[0.0], np.cumsum(v[a1])]), np.concatenate([[0.0], np.cumsum(v[a0])])
    PB1, PB0 = np.concatenate([[0.0], np.cumsum(v[b1])]), np.concatenate([[0.0], np.cumsum(v[b0])])
    NA1, NA0, NB1, NB0 = len(a1), len(a0), len(b1), len(b0)
    NA, NB = NA1 + NA0, NB1 + NB0
    NO1, NO0 = len(cells["o1"]), len(cells["o0"])
    NO = NO1 + NO0
    # H[m_B, j_B] (best denominator), −inf where infeasible; its concave maximiser per m_B
    mB_all = np.arange(NB + 1)
    jB_all = np.arange(NB1 + 1)
    jB_min, jB_max = np.maximum(0, mB_all - NB0), np.minimum(mB_all, NB1)
    feas = (jB_all[None, :] >= jB_min[:, None]) & (jB_all[None, :] <= jB_max[:, None])
    rest = np.clip(mB_all[:, None] - jB_all[None, :], 0, NB0)
    with np.errstate(divide="ignore", invalid="ignore"):
        H = (mB_all[:, None] / max(NB, 1)) * np.ones_like(rest, dtype=float) if rate else \
            (PB1[None, :] + PB0[rest]) / mB_all[:, None]
    H = np.where(feas & (mB_all[:, None] >= 1), H, -np.inf)
    jB_star = np.argmax(H, axis=1)
    best = (np.inf, None)
    for mA in range(0 if rate else 1, min(k, NA) + 1):
        jA = np.arange(max(0, mA - NA0), min(mA, NA1) + 1)
        if jA.size == 0:
            continue
        FA = np.full(jA.size, mA / max(NA, 1)) if rate else (PA1[jA] + PA0[mA - jA]) / mA
        mB = np.arange(max(1, k - mA - NO), min(NB, k - mA) + 1)
        if mB.size == 0:
            continue
        mO = k - mA - mB
        o1_lo, o1_hi = np.maximum(0, mO - NO0), np.minimum(mO, NO1)
        lo_b = np.maximum(jB_min[mB][:, None], (lo - o1_hi)[:, None] - jA[None, :])
        hi_b = np.minimum(jB_max[mB][:, None], (hi - o1_lo)[:, None] - jA[None, :])
        ok = lo_b <= hi_b
        jb = np.clip(jB_star[mB][:, None], lo_b, hi_b)
        Hv = H[mB[:, None], np.clip(jb, 0, NB1)]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(Hv > 0, FA[None, :] / Hv, np.where(FA[None, :] > 0, np.inf, np.nan))
        r = np.where(ok, r, np.nan)
        if np.all(np.isnan(r)):
            continue
        i, j = np.unravel_index(np.nanargmin(r), r.shape)
        if r[i, j] < best[0] or best[1] is None:
            best = (float(r[i, j]), (mA, int(jA[j]), int(mB[i]), int(jb[i, j]), int(mO[i]),
                                     int(o1_lo[i]), int(o1_hi[i])))
    if best[1] is None:
        return RatioExtreme(float("nan"), np.zeros(0, dtype=int))
    mA, ja, mb, jb, mo, o1l, o1h = best[1]
    o1 = int(np.clip(lo - ja - jb, o1l, o1h))
    sel = np.concatenate([a1[:ja], a0[:mA - ja], b1[:jb], b0[:mb - jb], cells["o1"][:o1], cells["o0"][:mo - o1]])
    return RatioExtreme(best[0], np.sort(sel).astype(int))


# ---------------------------------------------------------------------------
# Vectorised summaries of a set of allocations (rows of a B × n inclusion matrix)
# ---------------------------------------------------------------------------

def inclusion_of(selected: np.ndarray, n: int) -> np.ndarray:
    """(B, k) selected indices → (B, n) boolean inclusion matrix."""
    selected = np.asarray(selected, dtype=np.int64)
    out = np.zeros((selected.shape[0], n), dtype=bool)
    out[np.arange(selected.shape[0])[:, None], selected] = True
    return out


def ratios_of_allocations(inclusion: np.ndarray, in_a, in_b, values=None) -> np.ndarray:
    """:func:`ratio_of_allocation` for every row of an inclusion matrix (NaN where undefined)."""
    I = np.asarray(inclusion, dtype=float)
    in_a, in_b = np.asarray(in_a, dtype=float), np.asarray(in_b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if values is None:
            ra, rb = I @ in_a / max(in_a.sum(), 1), I @ in_b / max(in_b.sum(), 1)
        else:
            v = np.asarray(values, dtype=float)
            na, nb = I @ in_a, I @ in_b
            ra = np.where(na > 0, I @ (in_a * v) / na, np.nan)
            rb = np.where(nb > 0, I @ (in_b * v) / nb, np.nan)
        r = np.where(rb > 0, ra / rb, np.where(ra > 0, np.inf, np.nan))
    return r


def entropy_of_rows(inclusion: np.ndarray, codes: np.ndarray, n_categories: int) -> np.ndarray:
    """Shannon entropy (bits) of the categories ``codes`` among the selected of each row."""
    onehot = np.eye(n_categories)[np.asarray(codes, dtype=int)]
    counts = np.asarray(inclusion, dtype=float) @ onehot
    p = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1) + 0.0
