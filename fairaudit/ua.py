"""The uncertainty-aware (UA) ranking of Devic et al. (Devic, Korolova, Kempe, Sharan),
Definition 8: draw each individual's label ``Y_i ~ p_i`` independently, sort by label
(label ``m-1`` — the last column — is the best), break ties uniformly at random.

Positions are 0-indexed here: position 0 is the top (the paper's position 1).

Public functions
----------------
- :func:`ua_marginals` — the exact n×n position-marginal matrix ``R[i, p] =
  Pr[individual i at position p]``.  ``method="dp"`` is the dynamic program of
  Props 9/10; ``method="poly"`` an equivalent O(n³m) formulation (see below);
  ``method="auto"`` (default) picks the faster.
- :func:`ua_sample` — vectorised sampler: many UA rankings at once.
- :func:`ua_position_given_label` — the "individual interpolation" quantity of
  SPEC §5: ``Pr[σ_1 = p | Y_1 = ℓ]`` when the other ``n-1`` labels are i.i.d. from a
  label-frequency vector.
- :func:`ua_marginals_iid` — ``Pr[σ_1 = p]`` for a label-frequency mixture
  (``Σ_ℓ w_ℓ · ua_position_given_label[ℓ, p]``).

Prop 9 (the formula everything rests on): given ``Y_i = ℓ``, with ``A`` the number of
*other* individuals with label ℓ and ``B`` the number with a label strictly better than
ℓ, individual i is uniform over positions ``B, …, B+A`` (0-indexed). Hence
``R[i, p] = Σ_ℓ P[i,ℓ] Σ_{a,b} T_{iℓ}(a, b) · 1[b ≤ p ≤ a+b] / (a+1)`` with
``T_{iℓ}(a, b) = Pr[A = a, B = b]`` over the others' independent labels.
"""
from __future__ import annotations

import functools

import numpy as np
from scipy.special import gammaln, xlogy

__all__ = ["ua_marginals", "ua_sample", "ua_position_given_label", "ua_marginals_iid",
           "validate_predictions"]


def validate_predictions(predictions, atol: float = 1e-6) -> np.ndarray:
    """Return ``predictions`` as a float (n, m) array of row distributions (rows are
    renormalised after checking they sum to 1 within ``atol``). A 1-D vector of
    probabilities of the best label (binary case) becomes ``[1-p, p]``."""
    P = np.asarray(predictions, dtype=float)
    if P.ndim == 1:
        P = np.column_stack([1.0 - P, P])
    if P.ndim != 2 or P.shape[0] < 1 or P.shape[1] < 1:
        raise ValueError(f"predictions must be an n×m matrix, got shape {P.shape}")
    if not np.all(np.isfinite(P)) or np.any(P < -atol):
        raise ValueError("predictions must be finite and non-negative")
    s = P.sum(axis=1)
    bad = np.flatnonzero(np.abs(s - 1.0) > atol)
    if bad.size:
        raise ValueError(f"row {int(bad[0])} of predictions sums to {s[bad[0]]:.6g}, not 1")
    P = np.clip(P, 0.0, None)
    return P / P.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------
# Spreading Pr[A=a, B=b] over positions (Prop 9, part 1)
# ---------------------------------------------------------------------------

def _spread(T: np.ndarray, n: int) -> np.ndarray:
    """T[..., a, b] = Pr[A=a, B=b] (a, b < n) → position distribution [..., p], p < n:
    mass T(a,b)/(a+1) on each position b..a+b. Difference arrays: +w at b, −w at a+b+1,
    then a cumulative sum over positions (O(n²) per table)."""
    na, nb = T.shape[-2], T.shape[-1]
    a = np.arange(na)
    W = T / (a + 1.0)[:, None]
    D = np.zeros(T.shape[:-2] + (na + nb + 1,))
    D[..., :nb] += W.sum(axis=-2)                      # +w at position b
    # −w at position a+b+1: shear rows so that column index becomes a+b, then sum over a
    shear = np.zeros(T.shape[:-2] + (na, na + nb))
    A, B = np.meshgrid(a, np.arange(nb), indexing="ij")
    shear[..., A, A + B] = W
    D[..., 1:] -= shear.sum(axis=-2)
    out = np.cumsum(D, axis=-1)[..., :n]
    return np.clip(out, 0.0, 1.0)


# ---------------------------------------------------------------------------
# Exact marginals: the dynamic program of Prop 10
# ---------------------------------------------------------------------------

def _marginals_dp(P: np.ndarray, chunk_bytes: float = 64e6) -> np.ndarray:
    n, m = P.shape
    uniq, rep_of, inverse = _unique_rows(P)
    u = len(uniq)
    R_u = np.zeros((u, n))
    cum = np.cumsum(P, axis=1)
    for ell in range(m):
        if not np.any(uniq[:, ell] > 0):
            continue                                   # nobody can hold label ell
        r = P[:, ell]                                  # equal to ell
        s = 1.0 - cum[:, ell]                          # strictly better than ell
        s = np.clip(s, 0.0, 1.0)
        q = np.clip(1.0 - r - s, 0.0, 1.0)             # strictly worse
        need = np.flatnonzero(uniq[:, ell] > 0)
        per = max(1, int(chunk_bytes // (8 * n * n)))
        for c0 in range(0, need.size, per):
            idx = need[c0:c0 + per]
            reps = rep_of[idx]
            T = np.zeros((idx.size, n, n))             # T[., a, b]
            T[:, 0, 0] = 1.0
            for j in range(n):
                # after step j every table has seen at most j+1 others: a + b ≤ j+1
                h = min(j + 2, n)
                old = T[:, :h, :h].copy()
                new = q[j] * old
                new[:, 1:, :] += r[j] * old[:, :-1, :]
                new[:, :, 1:] += s[j] * old[:, :, :-1]
                own = reps == j                        # a table never counts its own individual
                if own.any():
                    new[own] = old[own]
                T[:, :h, :h] = new
            R_u[idx] += uniq[idx, ell][:, None] * _spread(T, n)
    return R_u[inverse]


def _unique_rows(P: np.ndarray):
    uniq, first, inverse = np.unique(P, axis=0, return_index=True, return_inverse=True)
    return uniq, first, np.asarray(inverse).reshape(-1)


# ---------------------------------------------------------------------------
# Exact marginals: the same quantity by an O(n³m) polynomial formulation
# ---------------------------------------------------------------------------

def _poisson_binomial(pi: np.ndarray) -> np.ndarray:
    """pi (..., n) success probabilities → pmf (..., n+1) of the number of successes.
    One individual at a time, in place on a (n+1, batch) layout (each step updates
    contiguous rows; the returned array is a transposed view)."""
    n = pi.shape[-1]
    lead = pi.shape[:-1]
    piT = np.ascontiguousarray(pi.reshape(-1, n).T)                # (n, batch)
    qT = 1.0 - piT
    Q = np.zeros((n + 1, piT.shape[1]))
    Q[0] = 1.0
    tmp = np.empty_like(Q)
    for j in range(n):
        t = tmp[:j + 1]
        np.multiply(Q[:j + 1], piT[j], out=t)                       # mass moving up one
        Q[:j + 1] *= qT[j]
        Q[1:j + 2] += t
    return Q.T.reshape(lead + (n + 1,))


def _leave_one_out(Q: np.ndarray, pi: np.ndarray, w: np.ndarray, groups: int = 4) -> np.ndarray:
    """Q (K, n+1) pmf of all n at each quadrature node; pi (K, u) the left-out
    individuals' probabilities; w (K,) the quadrature weights → ``Σ_k w_k T[k, u, :]``
    (u, n), T[k, u] the pmf of the other n-1 at node k. The weights are applied inside
    the recursion, so the (K, u, n) array of the T's is never held: memory O(K·u + u·n).

    Divides by (1-π + πx) from the stable side: forward when π ≤ 1/2, backward otherwise
    (the error factor per step is ≤ 1). In scaled form ``v = t/c`` (c = 1/(1−π) forward,
    1/π backward) a step is ``v ← a·v + Q_d`` with |a| ≤ 1 and t = c·v. Each (node,
    individual) pair runs only in its own direction where it can: the nodes come sorted
    by t, along which π = s + r(1−t) falls, so a column's backward pairs are its first
    nodes; columns sorted by that count are run in ``groups`` groups, each over the rows
    its group needs (pairs of the other direction inside a group get a = c = 0)."""
    K, n1 = Q.shape
    n = n1 - 1
    u = pi.shape[1]
    out = np.zeros((n, u))
    fwd = pi <= 0.5
    nb = (~fwd).sum(axis=0)
    QT = np.ascontiguousarray(Q.T)                                  # (n+1, K)
    for g in np.array_split(np.argsort(nb, kind="stable"), min(groups, u)):
        for forward in (True, False):
            lo, hi = (int(nb[g].min()), K) if forward else (0, int(nb[g].max()))
            if hi <= lo:
                continue
            p = pi[lo:hi, g]
            on = fwd[lo:hi, g] if forward else ~fwd[lo:hi, g]
            with np.errstate(divide="ignore", invalid="ignore"):
                c = np.where(on, 1.0 / (1.0 - p if forward else p), 0.0)
                a = np.where(on, -(p if forward else 1.0 - p) * c, 0.0)
            wc = c * w[lo:hi, None]
            v = np.zeros_like(c)
            Qs = QT[:, lo:hi, None]
            for d in (range(n) if forward else range(n, 0, -1)):
                v *= a
                v += Qs[d]
                out[d if forward else d - 1, g] += np.einsum("ku,ku->u", wc, v)
    return out.T


@functools.lru_cache(maxsize=8)
def _gauss_legendre01(K: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes (ascending) and weights on [0, 1] (cached: the eigenvalue
    problem behind them costs ~0.3 s at K = 500)."""
    x, w = np.polynomial.legendre.leggauss(K)
    t, w = (x + 1.0) / 2.0, w / 2.0
    t.setflags(write=False)
    w.setflags(write=False)
    return t, w


def _marginals_poly(P: np.ndarray) -> np.ndarray:
    n, m = P.shape
    uniq, rep_of, inverse = _unique_rows(P)
    R_u = np.zeros((len(uniq), n))
    cum = np.cumsum(P, axis=1)
    # Pr[pos = p | Y_i = ℓ] = ∫_0^1 PB_{j≠i}(p; s_j + r_j (1-t)) dt — a polynomial of degree
    # ≤ n-1 in t, integrated exactly by Gauss–Legendre with ceil(n/2) nodes; the weights are
    # applied inside the leave-one-out recursion (memory O(n²), not O(n³)).
    t, w = _gauss_legendre01(max(1, (n + 1) // 2))
    for ell in range(m):
        need = np.flatnonzero(uniq[:, ell] > 0)
        if need.size == 0:
            continue
        r = P[:, ell]
        s = np.clip(1.0 - cum[:, ell], 0.0, 1.0)
        pi = np.clip(s[None, :] + r[None, :] * (1.0 - t[:, None]), 0.0, 1.0)   # (K, n)
        Q = _poisson_binomial(pi)                                             # (K, n+1)
        R_u[need] += uniq[need, ell][:, None] * _leave_one_out(Q, pi[:, rep_of[need]], w)
    return np.clip(R_u[inverse], 0.0, 1.0)


def ua_marginals(predictions, method: str = "auto") -> np.ndarray:
    """Exact position marginals of the UA ranking (Devic et al., Def 8; Props 9/10).

    ``predictions``: n×m, row i the distribution of individual i's label, column m-1
    the best label. Returns the n×n doubly-stochastic matrix ``R[i, p] = Pr[σ(i) = p]``,
    position 0 = top.

    Methods (both exact up to floating point, both vectorised numpy; identical rows are
    computed once, so u = number of distinct rows):

    - ``"dp"`` — Prop 10's dynamic program: for each label ℓ and each individual i, the
      table ``T_{iℓ}(a, b) = Pr[a others have label ℓ, b others have a better label]``
      built one other individual at a time (the recurrence of the proof, a 2-D Poisson
      binomial), then spread as ``T(a,b)/(a+1)`` over positions b … a+b (Prop 9).
      Time O(u·n³·m) ⊆ O(n⁴m) (the tables of all i are advanced together, one numpy
      step per other individual); memory O(n³) per chunk of tables, capped at ~64 MB.
    - ``"poly"`` — with uniform tie-breaking keys U, i is ahead-of-j-counted iff
      ``Y_j > ℓ`` or (``Y_j = ℓ`` and ``U_j > U_i``); given ``U_i = t`` the number of
      individuals ahead is Poisson binomial with probabilities ``s_j + r_j(1-t)``.
      Integrating over t (a polynomial of degree n-1, so Gauss–Legendre with ⌈n/2⌉
      nodes is exact) and removing i from the all-n Poisson binomial by a stable
      deconvolution gives every row at once. Time O(n³m) (O(n²m) per node), memory
      O(n²). Same numbers as ``"dp"`` (tested against each other and brute force).
    - ``"auto"`` — ``"dp"`` for n ≤ 12, else ``"poly"``.
    """
    if method not in ("auto", "dp", "poly"):
        raise ValueError(f"unknown method {method!r}: use 'dp', 'poly' or 'auto'")
    P = validate_predictions(predictions)
    n = P.shape[0]
    if n == 1:
        return np.ones((1, 1))
    if method == "auto":
        method = "dp" if n <= 12 else "poly"
    if method == "dp":
        return _marginals_dp(P)
    return _marginals_poly(P)


# ---------------------------------------------------------------------------
# Sampler
# ---------------------------------------------------------------------------

def ua_sample(predictions, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
    """Draw UA rankings: labels ``Y_i ~ p_i`` independently, sort by label descending,
    ties uniformly at random. Returns a permutation (n,) (``ranking[p]`` = the individual
    at position p, 0 = top) or, with ``size``, a (size, n) array of independent draws.
    Cost O(size · n (m + log n)), fully vectorised."""
    P = validate_predictions(predictions)
    n, m = P.shape
    B = 1 if size is None else int(size)
    cdf = np.cumsum(P, axis=1)
    cdf[:, -1] = np.inf                                # guard against rounding below 1
    u = rng.random((B, n))
    Y = (u[:, :, None] >= cdf[None, :, :]).sum(axis=2)  # inverse-CDF label, 0..m-1
    key = Y + rng.random((B, n))                       # label first, uniform tie-break second
    out = np.argsort(-key, axis=1, kind="stable")
    return out[0] if size is None else out


# ---------------------------------------------------------------------------
# Individual interpolation (SPEC §5): i.i.d. others
# ---------------------------------------------------------------------------

def ua_position_given_label(freq, n: int) -> np.ndarray:
    """``G[ℓ, p] = Pr[σ_1 = p | Y_1 = ℓ]`` under the UA ranking of n individuals whose
    other n-1 labels are i.i.d. from the label-frequency vector ``freq`` (length m,
    label m-1 best), ties uniformly at random; position 0 = top. Exact: the others'
    counts (A with label ℓ, B better than ℓ) are multinomial, spread by Prop 9.
    Time and memory O(m n²)."""
    f = np.asarray(freq, dtype=float).reshape(-1)
    if f.size < 1 or np.any(f < -1e-9) or not np.all(np.isfinite(f)) or abs(f.sum() - 1) > 1e-6:
        raise ValueError("freq must be a probability vector over the m labels")
    f = np.clip(f, 0.0, None)
    f = f / f.sum()
    n = int(n)
    if n < 1:
        raise ValueError("n must be ≥ 1")
    N = n - 1
    better = np.clip(1.0 - np.cumsum(f), 0.0, 1.0)     # Pr[label > ℓ]
    worse = np.clip(np.cumsum(f) - f, 0.0, 1.0)        # Pr[label < ℓ]
    a = np.arange(n)[:, None]
    b = np.arange(n)[None, :]
    c = N - a - b
    valid = c >= 0
    cc = np.where(valid, c, 0)
    logc = gammaln(N + 1) - gammaln(a + 1) - gammaln(b + 1) - gammaln(cc + 1)
    logT = (logc[None] + xlogy(a[None], f[:, None, None]) + xlogy(b[None], better[:, None, None])
            + xlogy(cc[None], worse[:, None, None]))
    T = np.where(valid[None], np.exp(logT), 0.0)       # (m, n, n); log(0)·k → -inf → 0
    return _spread(T, n)


def ua_marginals_iid(freq, n: int, weights=None) -> np.ndarray:
    """``Pr[σ_1 = p]`` (length n) for individual 1 with label distribution ``weights``
    (default ``freq``) among n-1 others i.i.d. from ``freq``:
    ``Σ_ℓ weights[ℓ] · ua_position_given_label(freq, n)[ℓ, p]``."""
    G = ua_position_given_label(freq, n)
    w = np.asarray(freq if weights is None else weights, dtype=float).reshape(-1)
    if w.shape[0] != G.shape[0]:
        raise ValueError("weights and freq must have the same length m")
    return w @ G


# ---------------------------------------------------------------------------
# The ground-truth UA ranking as a reference for rankings' group composition (Devic et al., §4)
# ---------------------------------------------------------------------------

def box_simplex_range(c: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Smallest and largest ``Σ_j c_j a_j`` over ``lo ≤ a ≤ hi``, ``Σ_j a_j = 1`` (a
    fractional knapsack, solved greedily), vectorised over leading axes. ``lo``/``hi``
    broadcast against ``c``; the box must meet the simplex (Σ lo ≤ 1 ≤ Σ hi)."""
    c = np.asarray(c, dtype=float)
    lo = np.broadcast_to(np.asarray(lo, dtype=float), c.shape)
    hi = np.broadcast_to(np.asarray(hi, dtype=float), c.shape)
    base = (c * lo).sum(axis=-1)
    rest = np.clip(1.0 - lo.sum(axis=-1), 0.0, None)

    def fill(cc):
        order = np.argsort(-cc, axis=-1, kind="stable")
        cap = np.take_along_axis(hi - lo, order, axis=-1)
        cs = np.take_along_axis(cc, order, axis=-1)
        before = np.cumsum(cap, axis=-1) - cap
        take = np.clip(rest[..., None] - before, 0.0, cap)
        return (take * cs).sum(axis=-1)

    return base - fill(-c), base + fill(c)


def dcg_weights(n: int) -> np.ndarray:
    """Exposure weight of positions 1..n: ``1/log2(1+p)``."""
    return 1.0 / np.log2(np.arange(n) + 2.0)


def reference_estimate(freq: np.ndarray, n: int):
    """Ground-truth UA reference by individual interpolation:
    ``A*(S,p) = Σ_ℓ a_{S,ℓ} G_ℓ(p; π)`` with ``a_S = freq[S]`` and ``π = freq[0]`` (set 0
    is the whole pool). Returns (A* (G, n), G (m, n))."""
    Gp = ua_position_given_label(freq[0] / freq[0].sum(), n)
    return freq @ Gp, Gp


def _g_and_slopes(pi: np.ndarray, n: int, h: float = 1e-4):
    """``G(π)`` (m, n) and its derivatives along ``e_j − e_{m−1}`` (j < m−1) by central
    (one-sided at the simplex's edge) differences: (m−1, m, n)."""
    m = len(pi)
    G0 = ua_position_given_label(pi, n)
    D = np.zeros((max(m - 1, 0), m, n))
    for j in range(m - 1):
        d = np.zeros(m)
        d[j], d[-1] = 1.0, -1.0
        up = min(h, pi[-1])
        dn = min(h, pi[j])
        if up + dn <= 0:
            continue
        Gu = ua_position_given_label(pi + up * d, n) if up > 0 else G0
        Gd = ua_position_given_label(pi - dn * d, n) if dn > 0 else G0
        D[j] = (Gu - Gd) / (up + dn)
    return G0, D


def reference_band(y: np.ndarray, masks: np.ndarray, m: int, n: int, confidence: float,
                   rng: np.random.Generator, judged: np.ndarray | None = None, n_boot: int = 400,
                   weights: np.ndarray | None = None):
    """``A*(S,p)`` from the observed labels, with a band simultaneous over all (S, p).

    Poisson bootstrap of the pool's rows, percentile-t of the maximum standardised
    deviation over the ``judged`` sets and all positions. Each replicate's
    ``a_S @ G(π)`` is exact in the set frequencies ``a_S`` and first-order in the pool's
    frequencies ``π`` (G's derivative along the simplex, by finite differences; the
    bootstrap moves π by O(1/√N), where the second-order term is negligible). Resampling
    whole rows gives a label frequency a binomial spread, at least the Poisson-binomial
    spread of labels given the individuals (conservative in the pool view of the module
    docstring), and it keeps the dependence between the sets' frequencies and the
    pool's, which a box of separate intervals would lose. Coverage is measured by
    simulation in ``tests/test_multiaccuracy_validation.py``.
    ``weights``: the columns of ``masks`` are cells of that many identical rows each
    (:mod:`fairaudit.checks.multiaccuracy.ranking_log`); a cell's bootstrap weight is then Poisson(its rows), the
    distribution of the sum of its rows' Poisson(1) weights.
    Returns (estimate, lo, hi, G, method)."""
    G, N = masks.shape
    onehot = np.zeros((N, m))
    onehot[np.arange(N), y] = 1.0
    w = np.ones(N) if weights is None else np.asarray(weights, dtype=float)
    size = masks.astype(float) @ w
    with np.errstate(invalid="ignore", divide="ignore"):
        freq = (masks.astype(float) @ (onehot * w[:, None])) / size[:, None]
    pi = np.nan_to_num(freq[0])
    Gp, D = _g_and_slopes(pi / pi.sum(), n)
    est = np.nan_to_num(freq) @ Gp
    est[size == 0] = np.nan
    X = (masks[:, :, None] * onehot[None, :, :]).transpose(1, 0, 2).reshape(N, G * m).astype(float)
    W = (rng.poisson(1.0, size=(n_boot, N)) if weights is None
         else rng.poisson(np.broadcast_to(w, (n_boot, N)))).astype(float)         # (B, N)
    cnt = (W @ X).reshape(n_boot, G, m)
    sz = W @ masks.T.astype(float)                                             # (B, G)
    with np.errstate(invalid="ignore", divide="ignore"):
        fb = cnt / sz[:, :, None]                                              # (B, G, m)
    dpi = fb[:, 0, :] - pi[None, :]                                            # (B, m)
    boot = fb @ Gp                                                             # (B, G, n)
    for j in range(m - 1):
        boot += dpi[:, j, None, None] * (fb @ D[j])
    with np.errstate(invalid="ignore"):
        se = np.nanstd(boot, axis=0, ddof=1)
    se = np.maximum(np.nan_to_num(se, nan=np.inf), 1e-12)
    sel = np.ones(G, dtype=bool) if judged is None else np.asarray(judged, dtype=bool)
    dev = np.abs(boot[:, sel] - est[sel][None]) / se[sel][None]
    tmax = np.nanmax(dev.reshape(n_boot, -1), axis=1) if sel.any() else np.zeros(n_boot)
    q = float(np.quantile(tmax, confidence)) if sel.any() else 0.0
    lo = np.clip(est - q * se, 0, 1)
    hi = np.clip(est + q * se, 0, 1)
    return est, lo, hi, Gp, (f"Poisson row bootstrap ({n_boot} resamples), max-t band over "
                             f"{int(sel.sum()) * n} (set, position) cells")
