"""The Broome lottery (Jain, Creel and Wilson): Broome-Fairness's yardstick, and the analyses of a
lottery's draws against it that ``broome`` decides on and ``systemic_exclusion`` uses.

The analyses take outcome arrays (draws × k selected indices) and claims and return
plain dicts of estimates and simultaneous intervals; they never sample. See
:mod:`fairaudit.checks.broome` for the property and the verdict rules.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from fairaudit.outcomes import inclusion_counts
from fairaudit.result import Statistic, combine, decide
from fairaudit.stats import BettingCS, beta_binomial_cs, eb_confidence_sequence, empirical_bernstein_ci, per_member_confidence, \
    simultaneous_proportion_ci

ETA = 0.05               # resolution of "always" / "never" selected in the partial-BF sets (π ≥ 1−η, π ≤ η)
POOL_BINS = 5            # claim bins for BF.1 inside a partial lottery's pool
NOT_INFORMATIVE = 1e-3   # bin pairs whose Broome gain is below this · k/n are left out
PARTIAL_WIDTH = 0.05     # a failing partial lottery is sampled further while its n'/n interval is wider than this


# Yardstick: the Broome lottery's inclusion probabilities
# ---------------------------------------------------------------------------

def broome_reference(claims, k: int) -> np.ndarray:
    """Exact inclusion probabilities of the Broome lottery (w ∝ c, Example 4.3).

    The Broome lottery is an exponential race: with keys ``E_i / c_i`` (E_i standard
    exponential) the k smallest are picked, in order, with the lottery's successive
    weights ``c_i / Σ remaining``. So

        π_i = ∫₀^∞ c_i e^{−c_i t} · P(fewer than k of the others have key < t) dt,

    the count of others being Poisson-binomial with chances ``1 − e^{−c_j t}``. The
    count's distribution for "everyone but i" is the product of a prefix (j < i) and a
    suffix (j > i) distribution, truncated to the ``min(k, m − k)`` terms needed (the
    count of those *not* yet arrived when k > m/2) — sums of positive terms only, no
    deconvolution. The integral is composite Gauss–Legendre in ``log t`` (the integrand
    is a smooth bump of width ≈ 1 there) between ends where the neglected parts are
    below 1e-15; the panels are halved until ``Σ π_i = k`` holds to 1e-9·k (an exact
    identity, checked). Zero claims get 0; if at most k claims are positive they all
    get 1. Cost O(m · min(k, m−k) · nodes) with m positive claims; see tests."""
    c = np.asarray(claims, dtype=float)
    pos = c > 0
    out = pos.astype(float)
    m = int(pos.sum())
    if m <= k or k <= 0:
        return out if k > 0 else np.zeros_like(c)
    key = (c.tobytes(), int(k))
    if key in _REF_CACHE:
        return _REF_CACHE[key].copy()
    cp = c[pos] / c[pos].max()
    for panels_per_unit in (0.25, 0.5, 1, 2, 4):
        pi = _race_inclusion(cp, k, panels_per_unit)
        if abs(pi.sum() - k) <= 1e-9 * k:
            break
    else:
        raise ArithmeticError(f"Broome lottery's inclusion probabilities did not converge (Σπ − k = {pi.sum() - k:.3g})")
    out[pos] = np.clip(pi, 0.0, 1.0)
    if len(_REF_CACHE) > 64:
        _REF_CACHE.clear()
    _REF_CACHE[key] = out.copy()
    return out


_REF_CACHE: dict = {}   # pure function of (claims, k); the sequential audit asks for it at every look


_GL_X, _GL_W = np.polynomial.legendre.leggauss(10)


def _race_inclusion(c, k, panels_per_unit=1):
    """π of the exponential race on positive claims ``c`` (max 1), k < len(c)."""
    m = len(c)
    c_sorted = np.sort(c)[::-1]
    # below t_lo: P(k or more arrived) ≤ (eμ/k)^k e^{−μ} ≤ 1e-17 (Chernoff, μ = Σ(1 − e^{−c t}) ≤ t Σc)
    mu_lo = (k / np.e) * 1e-17 ** (1.0 / k)
    t_lo = mu_lo / c.sum()
    t_hi = np.log((k + 1) * 1e17) / c_sorted[k]              # above: P(< k others arrived) ≤ (k+1)e^{−c_(k+1) t}
    s_lo, s_hi = np.log(t_lo), np.log(t_hi)
    # panel edges equally spaced in φ(s) = s + clip(μ(s), k ± 12σ)/σ: unit panels in log t, plus panels of one
    # standard deviation of the count where P(count < k) turns from 1 to 0 (a narrow step in log t for large m)
    sg = np.linspace(s_lo, s_hi, 2000)
    tg = np.exp(sg)
    pg = -np.expm1(-np.outer(tg, c))
    mu = pg.sum(axis=1)
    j = int(np.clip(np.searchsorted(mu, k), 0, len(sg) - 1))
    sd = max(0.5, float(np.sqrt(np.sum(pg[j] * (1 - pg[j])))))
    phi = sg + (np.clip(mu, k - 12 * sd, k + 12 * sd) - (k - 12 * sd)) / sd
    n_pan = max(1, int(np.ceil((phi[-1] - phi[0]) * panels_per_unit)))
    edges = np.interp(np.linspace(phi[0], phi[-1], n_pan + 1), phi, sg)
    half = 0.5 * np.diff(edges)
    s = ((edges[:-1] + half)[:, None] + half[:, None] * _GL_X[None, :]).ravel()
    w = (half[:, None] * _GL_W[None, :]).ravel()
    t = np.exp(s)
    # P(fewer than k others arrived by t), per individual and node
    complement = k > m - k
    K = m - k if complement else k
    ct = c[:, None] * t[None, :]                             # (m, T)
    p = np.exp(-ct) if complement else -np.expm1(-ct)        # chance of being counted
    # nodes where the count of everyone is certainly far from k (Bernstein's inequality, one person changing
    # the count by at most 1, tail below 1e-18) are 1 (before) or 0 (after) for every i without the recursion
    pa = -np.expm1(-ct)
    mu_t = pa.sum(axis=0)
    var_t = np.sum(pa * (1 - pa), axis=0)
    x_lo, x_hi = k - 1 - mu_t, mu_t - k - 1
    def tail_log(x):   # log of Bernstein's bound on P(count − μ ≥ x), 0 when x ≤ 0
        xp = np.maximum(x, 0.0)
        return -xp * xp / (2 * (var_t + xp / 3) + 1e-300)
    surely_below, surely_above = tail_log(x_lo) < -41.5, tail_log(x_hi) < -41.5   # e^{−41.5} < 1e-18
    h = np.where(surely_below, 1.0, 0.0)[None, :].repeat(m, axis=0)
    todo = np.flatnonzero(~surely_below & ~surely_above)
    chunk = max(1, int(4e6 // (m * K)))
    for a in range(0, len(todo), chunk):
        cols = todo[a:a + chunk]
        hb = _loo_below(p[:, cols], K)
        h[:, cols] = 1.0 - hb if complement else hb           # N < k ⇔ (not arrived among others) ≥ m − k
    dens = ct * np.exp(-ct)                                  # c_i t e^{−c_i t}: the density of i's key in log t
    return (dens * h) @ w + (-np.expm1(-c * t_lo))           # below t_lo fewer than k others arrived (≈ surely)


def _loo_below(p, K):
    """``p`` (m, T) chances of independent events; for each i and column, the chance
    that fewer than K of the *other* m − 1 occur (truncated prefix × suffix)."""
    m, T = p.shape
    pre = np.empty((m, T, K))
    cur = np.zeros((T, K))
    cur[:, 0] = 1.0
    for j in range(m):
        pre[j] = cur
        nxt = cur * (1.0 - p[j])[:, None]
        nxt[:, 1:] += cur[:, :-1] * p[j][:, None]
        cur = nxt
    out = np.empty((m, T))
    suf = np.zeros((T, K))
    suf[:, 0] = 1.0
    for j in range(m - 1, -1, -1):
        # Σ_{a+b<K} pre[a]·suf[b] = Σ_a pre[a] · cumsum(suf)[K−1−a]
        cs = np.cumsum(suf, axis=1)[:, ::-1]
        out[j] = np.einsum("tk,tk->t", pre[j], cs)
        nxt = suf * (1.0 - p[j])[:, None]
        nxt[:, 1:] += suf[:, :-1] * p[j][:, None]
        suf = nxt
    return out


MIN_BIN = 25             # individuals per claim bin at least (when n > bins)


def n_claim_bins(n: int, n_bins: int) -> int:
    """How many claim bins for n individuals: one per individual when n ≤ ``n_bins``,
    else ``n_bins`` but no fewer than ``MIN_BIN`` individuals per bin (and at least 2
    bins). Narrow bins in a large pool have tiny Broome gains and noisy fractions;
    25 per bin keeps every pair of bins certifiable within a few thousand draws."""
    if n <= n_bins:
        return max(1, n)
    return max(2, min(int(n_bins), n // MIN_BIN))


def claim_bins(claims, n_bins: int) -> np.ndarray:
    """Bin index per individual: sorted by claim, cut into ``n_claim_bins(n, n_bins)``
    (nearly) equal bins; equal claims are never split (a tie group goes to the bin of
    its first member). Returns labels 0..G−1 in claim order (no empty labels)."""
    c = np.asarray(claims, dtype=float)
    n = len(c)
    G = n_claim_bins(n, n_bins)
    order = np.argsort(c, kind="stable")
    raw = (np.arange(n) * G) // n
    cs = c[order]
    first = np.r_[True, cs[1:] != cs[:-1]]
    grp_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    raw = raw[grp_start]
    _, dense = np.unique(raw, return_inverse=True)
    out = np.empty(n, dtype=int)
    out[order] = dense
    return out


# ---------------------------------------------------------------------------
# Pure analysis (tested directly)
# ---------------------------------------------------------------------------

def per_draw_bin_fractions(draws: np.ndarray, bins: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """(B, k) selected indices → (B, G) fraction of each bin selected in each draw."""
    B = draws.shape[0]
    G = len(sizes)
    flat = (np.arange(B)[:, None] * G + bins[draws]).ravel()
    return np.bincount(flat, minlength=B * G).reshape(B, G) / sizes


def bin_gain_analysis(draws, claims, k, n_bins, confidence, ref=None, subset=None, within=True, sequences=None):
    """BF.1 on claim bins: per pair of bins the ratio of the observed chance gain to the
    Broome lottery's gain, with a simultaneous anytime-valid interval.

    ``subset`` restricts to some individuals (the partial-BF pool); draws outside it are
    ignored. ``within``: also the within-bin contrasts (in the same Bonferroni family);
    off for the pool, whose report uses the bin pairs only. ``sequences``: a dict the
    caller keeps between its looks at growing ``draws`` (same instance, no ``subset``):
    the intervals are then betting confidence sequences carried across the looks
    (:class:`fairaudit.stats.BettingCS`), else empirical-Bernstein sequences recomputed
    from all draws. Returns a dict with the bin table, the pair table and the statistic
    ``(estimate, lo, hi)`` of ``min r``, or None when no informative pair exists."""
    claims = np.asarray(claims, dtype=float)
    n = len(claims)
    idx = np.arange(n) if subset is None else np.asarray(subset)
    ref = broome_reference(claims, k) if ref is None else ref
    local = np.full(n, -1)
    b_sub = claim_bins(claims[idx], n_bins)
    local[idx] = b_sub
    G = int(b_sub.max()) + 1 if len(idx) else 0
    if G < 2:
        return None
    sizes = np.bincount(b_sub, minlength=G).astype(float)
    cbar = np.bincount(b_sub, weights=claims[idx], minlength=G) / sizes
    rbar = np.bincount(b_sub, weights=ref[idx], minlength=G) / sizes
    B = draws.shape[0]
    lab = local[draws]
    keep = lab >= 0
    flat = (np.broadcast_to(np.arange(B)[:, None], lab.shape)[keep] * G + lab[keep])
    X = np.bincount(flat, minlength=B * G).reshape(B, G) / sizes
    gi, hi_ = np.triu_indices(G, 1)
    kn = k / n
    refgain = rbar[hi_] - rbar[gi]
    ok = (cbar[hi_] > cbar[gi]) & (refgain > NOT_INFORMATIVE * kn)
    gi, hi_, refgain = gi[ok], hi_[ok], refgain[ok]
    if len(gi) == 0:
        return None
    D = X[:, hi_] - X[:, gi]
    # within each bin, at the individual level: the per-draw contrast T_g = Σ_{i∈g} u_i·1[i selected] with
    # u_i = (c_i − c̄_g)/Σ|c − c̄_g| (so T_g ∈ [−½, ½]); its mean Σ u_i π_i is the covariance of chance and
    # claim inside the bin, > 0 when chances rise with claims there, 0 on a flat band covering the bin
    sub_c = claims[idx]
    dev = sub_c - cbar[b_sub]
    norm = np.bincount(b_sub, weights=np.abs(dev), minlength=G)
    u_sub = np.where(norm[b_sub] > 0, dev / np.where(norm[b_sub] > 0, norm[b_sub], 1.0), 0.0)
    u = np.zeros(n)
    u[idx] = u_sub
    wref = np.bincount(b_sub, weights=u_sub * ref[idx], minlength=G)        # Broome's Σ u_i π^BF_i
    w_ok = (sizes >= 3) & (norm > 0) & (wref > NOT_INFORMATIVE * kn) & bool(within)
    wg = np.flatnonzero(w_ok)
    T = np.bincount(flat, weights=u[draws][keep], minlength=B * G).reshape(B, G)[:, wg] if len(wg) else None
    conf = per_member_confidence(confidence, len(gi) + len(wg))
    betting = sequences is not None and subset is None
    if betting:
        seen = sequences.get("seen", 0)
        if "pairs" not in sequences:
            sequences["pairs"] = BettingCS(D.shape[1], conf, stages=1)
            if T is not None:
                sequences["within"] = BettingCS(T.shape[1], conf, stages=1)
        sequences["seen"] = B
        lo01, hi01 = sequences["pairs"].update((D[seen:] + 1.0) / 2.0)
    else:
        lo01, hi01 = eb_confidence_sequence((D + 1.0) / 2.0, conf)
    lo01, hi01 = np.atleast_1d(lo01), np.atleast_1d(hi01)
    dlo, dhi = 2 * lo01 - 1, 2 * hi01 - 1
    est = D.mean(axis=0)
    r, rlo, rhi = est / refgain, dlo / refgain, dhi / refgain
    pairs = pd.DataFrame({"weaker_bin": gi, "stronger_bin": hi_, "claim_weaker": cbar[gi], "claim_stronger": cbar[hi_],
                          "gain": est, "gain_lo": dlo, "gain_hi": dhi, "broome_gain": refgain,
                          "ratio": r, "ratio_lo": rlo, "ratio_hi": rhi})
    pbar = X.mean(axis=0)
    table = pd.DataFrame({"bin": np.arange(G), "n": sizes.astype(int), "claim_min": [claims[idx][b_sub == g].min() for g in range(G)],
                          "claim_max": [claims[idx][b_sub == g].max() for g in range(G)], "claim_mean": cbar,
                          "chance": pbar, "broome_chance": rbar})
    j = int(np.argmin(rhi)) if np.min(rhi) < np.inf else 0
    jmin = int(np.argmin(r))
    method = (("betting confidence sequence (hedged capital, anytime-valid)" if betting else
               "empirical-Bernstein confidence sequence (anytime-valid)") + f", bonferroni over {len(gi)} bin pairs"
              + (f" and {len(wg)} within-bin contrasts" if len(wg) else ""))
    out = {"table": table, "pairs": pairs, "stat": (float(r.min()), float(rlo.min()), float(rhi.min())),
           "worst_pair": pairs.iloc[j].to_dict(), "lowest_pair": pairs.iloc[jmin].to_dict(), "method": method,
           "bins_used": G, "bins_requested": int(n_bins)}
    if T is not None:
        wlo, whi = sequences["within"].update(T[seen:] + 0.5) if betting else eb_confidence_sequence(T + 0.5, conf)
        wlo, whi = np.atleast_1d(wlo) - 0.5, np.atleast_1d(whi) - 0.5
        west = T.mean(axis=0)
        wr, wrlo, wrhi = west / wref[wg], wlo / wref[wg], whi / wref[wg]
        within = pd.DataFrame({"bin": wg, "n": sizes[wg].astype(int), "claim_min": table["claim_min"].to_numpy()[wg],
                               "claim_max": table["claim_max"].to_numpy()[wg], "contrast": west,
                               "contrast_lo": wlo, "contrast_hi": whi, "broome_contrast": wref[wg],
                               "ratio": wr, "ratio_lo": wrlo, "ratio_hi": wrhi})
        jw = int(np.argmin(wrhi))
        out["within"] = {"table": within, "stat": (float(wr.min()), float(wrlo.min()), float(wrhi.min())),
                         "worst": within.iloc[jw].to_dict(),
                         "method": "within each claim bin, per-draw contrast Σ (c_i − c̄)/Σ|c − c̄| · 1[i selected] "
                                   "against the Broome lottery's; " + method}
    return out


def individual_analysis(counts, B, claims, confidence, ref, min_chance):
    """Refutations from simultaneous intervals on every π_i: the largest certified
    reversal, unequal chances for equal claims, and BF.2 (effectively excluded)."""
    claims = np.asarray(claims, dtype=float)
    n = len(claims)
    conf = per_member_confidence(confidence, n)
    lo, hi = beta_binomial_cs(counts, B, conf)
    lo, hi = np.atleast_1d(lo), np.atleast_1d(hi)
    est = counts / max(B, 1)
    # Largest certified reversal: for each i, the max LCB among strictly weaker claims.
    order = np.argsort(claims, kind="stable")
    cs = claims[order]
    lo_s, hi_s, est_s = lo[order], hi[order], est[order]
    first = np.r_[True, cs[1:] != cs[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0))   # first index of each tie group
    run_lo = np.maximum.accumulate(lo_s)
    arg_lo = _running_argmax(lo_s)
    run_est = np.maximum.accumulate(est_s)
    arg_est = _running_argmax(est_s)
    has_weaker = start > 0
    prev = np.maximum(start - 1, 0)
    cert = np.where(has_weaker, run_lo[prev] - hi_s, -np.inf)
    point = np.where(has_weaker, run_est[prev] - est_s, -np.inf)
    i_c = int(np.argmax(cert))
    rev = {"certified": float(cert[i_c]) if n > 1 else -1.0,
           "estimate": float(point.max()) if n > 1 else 0.0}
    if n > 1 and has_weaker[i_c]:
        j = int(arg_lo[prev[i_c]])
        rev.update(stronger=int(order[i_c]), weaker=int(order[j]))
    i_p = int(np.argmax(point))
    if n > 1 and has_weaker[i_p]:
        rev.update(point_stronger=int(order[i_p]), point_weaker=int(order[int(arg_est[prev[i_p]])]))
    # Equal claims.
    tie_ids = start
    sizes = np.bincount(tie_ids, minlength=n)
    eq = {"certified": -1.0, "estimate": 0.0}
    if (sizes >= 2).any():
        gmax_lo = np.full(n, -np.inf)
        np.maximum.at(gmax_lo, tie_ids, lo_s)
        gmin_hi = np.full(n, np.inf)
        np.minimum.at(gmin_hi, tie_ids, hi_s)
        gmax_e = np.full(n, -np.inf)
        np.maximum.at(gmax_e, tie_ids, est_s)
        gmin_e = np.full(n, np.inf)
        np.minimum.at(gmin_e, tie_ids, est_s)
        multi = sizes >= 2
        d_cert = np.where(multi, gmax_lo - gmin_hi, -np.inf)
        g = int(np.argmax(d_cert))
        members = order[tie_ids == g]
        eq = {"certified": float(d_cert[g]), "estimate": float(np.max(np.where(multi, gmax_e - gmin_e, 0))),
              "claim": float(cs[g]), "members": [int(m) for m in members[:10]], "size": int(sizes[g]),
              "highest": int(members[np.argmax(est[members])]), "lowest": int(members[np.argmin(est[members])])}
    # BF.2: positive claims certified below min_chance of the Broome chance.
    pos = claims > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_hi = np.where(pos & (ref > 0), hi / ref, np.inf)
    i_x = int(np.argmin(ratio_hi))
    bf2 = {"individual": i_x, "claim": float(claims[i_x]), "chance": float(est[i_x]), "chance_hi": float(hi[i_x]),
           "broome_chance": float(ref[i_x]), "ratio_hi": float(ratio_hi[i_x]),
           "ratio": float(est[i_x] / ref[i_x]) if ref[i_x] > 0 else float("nan"),
           "ratio_lo": float(lo[i_x] / ref[i_x]) if ref[i_x] > 0 else float("nan"),
           "excluded": [int(i) for i in np.flatnonzero(ratio_hi < min_chance)],
           "never_selected_positive": int(np.sum(pos & (counts == 0)))}
    return {"lo": lo, "hi": hi, "est": est, "reversal": rev, "equal": eq, "bf2": bf2, "ref": ref, "min_chance": min_chance,
            "method": f"beta-binomial confidence sequence (anytime-valid), bonferroni over {n} individuals"}


def _running_argmax(x):
    idx = np.arange(len(x))
    best = np.maximum.accumulate(x)
    is_new = x >= best
    return np.maximum.accumulate(np.where(is_new, idx, 0))


def first_round_analysis(draws, claims, n_bins, confidence):
    """First-round weights per claim bin (first column = first pick). A certified
    reversal between bins' average weights proves an individual reversal in round 1."""
    claims = np.asarray(claims, dtype=float)
    n = len(claims)
    b = claim_bins(claims, n_bins)
    G = int(b.max()) + 1
    sizes = np.bincount(b, minlength=G).astype(float)
    cbar = np.bincount(b, weights=claims, minlength=G) / sizes
    B = draws.shape[0]
    cnt = np.bincount(b[draws[:, 0]], minlength=G)
    lo, hi = beta_binomial_cs(cnt, B, per_member_confidence(confidence, G))
    lo, hi = np.atleast_1d(lo) / sizes, np.atleast_1d(hi) / sizes
    w = cnt / B / sizes
    gi, hi_ = np.triu_indices(G, 1)
    ok = cbar[hi_] > cbar[gi]
    gi, hi_ = gi[ok], hi_[ok]
    cert = lo[gi] - hi[hi_] if len(gi) else np.array([-1.0])
    j = int(np.argmax(cert))
    table = pd.DataFrame({"bin": np.arange(G), "claim_mean": cbar, "first_round_weight": w, "weight_lo": lo,
                          "weight_hi": hi, "broome_weight": cbar / max(claims.sum(), 1e-300)})
    out = {"table": table, "certified_reversal": float(cert[j])}
    if len(gi):
        out.update(weaker_bin=int(gi[j]), stronger_bin=int(hi_[j]))
    return out


SMALL_N = 10   # later rounds are tested conditionally for instances up to this size
MIN_PREFIX = 30  # draws with the same already-picked set needed to test the next round


def later_rounds_analysis(draws, claims, confidence):
    """Rounds 2..k for small n: the weights of round t+1 given the *set* already picked
    (for an iterative weighted selection whose weights depend on who remains, as in
    Def 4.1). For every such set seen at least ``MIN_PREFIX`` times, the next pick's
    frequencies among the remaining get beta-binomial confidence sequences (Bonferroni
    over all cells); a remaining stronger claim certified below a remaining weaker one
    is a BF.1 violation in that round, a remaining positive claim never picked there is
    reported. Returns the largest certified reversal and where it was found."""
    claims = np.asarray(claims, dtype=float)
    n = len(claims)
    B, k = draws.shape
    cells, keys = [], []
    for t in range(1, k):
        pref = np.sort(draws[:, :t], axis=1)
        code = np.zeros(B, dtype=np.int64)
        for col in range(t):
            code = code * n + pref[:, col]
        uniq, inv = np.unique(code, return_inverse=True)
        for u in range(len(uniq)):
            m = inv == u
            if m.sum() < MIN_PREFIX:
                continue
            cnt = np.bincount(draws[m, t], minlength=n)
            remaining = np.ones(n, bool)
            remaining[pref[np.argmax(m)]] = False
            cells.append((t + 1, [int(x) for x in pref[np.argmax(m)]], cnt, int(m.sum()), remaining))
    if not cells:
        return {"certified_reversal": -1.0, "rounds_tested": 0}
    m_total = sum(int(c[4].sum()) for c in cells)
    conf = per_member_confidence(confidence, m_total)
    best = {"certified_reversal": -1.0, "rounds_tested": len(cells)}
    for rnd, picked, cnt, tot, rem in cells:
        idx = np.flatnonzero(rem)
        lo, hi = beta_binomial_cs(cnt[idx], tot, conf)
        lo, hi = np.atleast_1d(lo), np.atleast_1d(hi)
        c = claims[idx]
        stronger = c[:, None] > c[None, :]
        gap = np.where(stronger, lo[None, :] - hi[:, None], -np.inf)   # weaker's LCB − stronger's UCB
        a, b = np.unravel_index(int(np.argmax(gap)), gap.shape)
        if gap[a, b] > best["certified_reversal"]:
            best = {"certified_reversal": float(gap[a, b]), "rounds_tested": len(cells), "round": rnd,
                    "already_picked": picked, "stronger": int(idx[a]), "weaker": int(idx[b]), "given_draws": tot}
    return best


def partial_analysis(draws, counts, B, claims, k, ind, confidence, n_bins):
    """Partial Broome-Fairness (Def 4.9): always / never / pool, k'/k and n'/n with
    simultaneous bounds, and BF.1 inside the pool.

    "Always" is ``π ≥ 1−η`` (η = ``ETA``). "Never" is BF.2's *effectively excluded*: a
    positive claim whose chance is below ``min_chance`` of the Broome lottery's chance for
    it (an absolute floor such as ``π ≤ η`` would put the weak claims of the Broome
    lottery itself, whose chances are small by design, outside its "pool"). Point
    estimates from π̂, bounds from the simultaneous intervals (all hold jointly); a
    never-selected tiny claim whose Broome chance is too small to certify anything
    widens the upper bound of ``n'/n``, not the estimate.

    "Never" is classified from the intervals (issue 18): ``UCB(π) < min_chance · π^BF``
    (BF.2's certified set, so the table and the verdict agree), plus claims not drawn
    but too weak to certify that lie below a certified one (under rising chances they
    share its fate); a weak claim merely not drawn — the Broome lottery's tiny claims —
    stays in the pool. The bounds count the uncertified claims both ways."""
    claims = np.asarray(claims, dtype=float)
    n = len(claims)
    lo, hi, est = ind["lo"], ind["hi"], ind["est"]
    pos = claims > 0
    floor = ind["min_chance"] * ind["ref"] if "ref" in ind else np.full(n, ETA)
    # "never" from the simultaneous intervals, so that the table agrees with the verdict: BF.2's certified
    # effectively excluded, plus never-drawn claims too weak to certify anything *below* a certified one (chances
    # that rise with claims put them with it); a weak claim merely never drawn stays in the pool
    always = est >= 1 - ETA
    never_cert = pos & ~always & (hi < floor)
    c_never = claims[never_cert].max() if never_cert.any() else -np.inf
    never = never_cert | (pos & ~always & (est <= floor) & (claims <= c_never))
    pool = ~always & ~never & pos
    n_always_lo, n_always_hi = int(np.sum(lo >= 1 - ETA)), int(np.sum(hi >= 1 - ETA))
    n_never_lo, n_never_hi = int(np.sum(pos & (hi < floor))), int(np.sum(pos & (lo <= floor)))
    n_zero = int(np.sum(~pos))
    kp = (k - min(int(always.sum()), k)) / k
    kp_lo, kp_hi = (k - min(n_always_hi, k)) / k, (k - min(n_always_lo, k)) / k
    npool = pool.sum() / n
    np_lo = max(0, n - n_always_hi - n_never_hi - n_zero) / n
    np_hi = max(0, n - n_always_lo - n_never_lo - n_zero) / n
    rank = np.empty(n, dtype=int)
    rank[np.argsort(-claims, kind="stable")] = np.arange(1, n + 1)
    pr = np.sort(rank[pool])
    contiguous = bool(len(pr) and pr[-1] - pr[0] + 1 == len(pr))
    out = {"always_selected": int(always.sum()), "never_selected_positive": int(never.sum()), "pool": int(pool.sum()),
           "selected_every_draw": int(np.sum(counts == B)), "never_selected_in_draws": int(np.sum(pos & (counts == 0))),
           "k_prime_rate": {"estimate": kp, "ci": [kp_lo, kp_hi]},
           "pool_share": {"estimate": npool, "ci": [np_lo, np_hi]},
           "pool_ranks": [int(pr[0]), int(pr[-1])] if len(pr) else None, "pool_contiguous": contiguous,
           "eta": ETA, "never_rule": "chance below min_chance of the Broome lottery's", "partial": bool(always.any() or never.any())}
    out["_never_mask"] = never
    kprime = int(k - always.sum())
    if out["partial"] and pool.sum() >= 2 and 0 < kprime < pool.sum():
        ref = np.zeros(n)
        ref[pool] = broome_reference(claims[pool], kprime)
        # coarser bins inside the pool: its claims are a narrow slice, so fine bins have tiny Broome gains
        # BF.1 inside the pool is reported from the bin pairs only: the within-bin contrasts are
        # not computed there, so they take no share of the pool's α (when they did, the pool's
        # pairs got α/(pairs + contrasts) and the truncated-normal k = 100 pool of Jain, Creel and Wilson's
        # grid stayed uncertified at 20,000 draws). The instance's own within-bin test is
        # unchanged: it runs on the whole instance with its own share (analyse, a_bins).
        res = bin_gain_analysis(draws, claims, kprime, min(n_bins, POOL_BINS), confidence, ref=ref,
                                subset=np.flatnonzero(pool), within=False)
        if res is not None:
            # gains inside the pool are relative to k'/n' rather than k/n; the ratio is unaffected
            out["pool_bf1"] = {"estimate": res["stat"][0], "ci": [res["stat"][1], res["stat"][2]],
                               "method": res["method"]}
    return out


def claim_bands(claims, est, positive, never=None) -> list[dict]:
    """Shaded claim ranges for the figure: runs (in claim order) of individuals almost
    always selected (π̂ ≥ 1−η), never or almost never selected (``never``: below
    min_chance of the Broome chance; default π̂ = 0) and randomised; runs shorter than 1%
    of n are absorbed into the run before them."""
    claims = np.asarray(claims, dtype=float)
    n = len(claims)
    order = np.argsort(claims, kind="stable")
    never = (est <= 0) & positive if never is None else never
    lab = np.where(est >= 1 - ETA, 0, np.where(never & positive, 1, 2))[order]
    names = {0: (f"almost always selected (π̂ ≥ {1 - ETA:g})", "#4477aa"),
             1: ("(almost) never selected: below min_chance of Broome's", "#cc3311"),
             2: ("randomised", "#228833")}
    runs = []
    start = 0
    for i in range(1, n + 1):
        if i == n or lab[i] != lab[start]:
            runs.append([int(lab[start]), start, i - 1])
            start = i
    merged = []
    for r in runs:
        if merged and (r[2] - r[1] + 1 < max(3, n // 100) or r[0] == merged[-1][0]):
            merged[-1][2] = r[2]
        else:
            merged.append(r)
    out, seen = [], set()
    cs = claims[order]
    for lab_, a, b in merged:
        name, color = names[lab_]
        out.append({"x0": float(cs[a]), "x1": float(cs[b]), "label": None if name in seen else name, "color": color})
        seen.add(name)
    return out


def utility_analysis(draws, claims, k, labels, confidence):
    """Defs 4.7/4.8: expected utility (claims as success probabilities) and precision
    (labels), per draw, with empirical-Bernstein intervals, and top-k's values."""
    claims = np.asarray(claims, dtype=float)
    top = np.argsort(-claims, kind="stable")[:k]

    def against_top_k(values):
        # the per-draw mean of ``values`` over the selected, and its cost against top-k's
        m, l, h = empirical_bernstein_ci(values[draws].mean(axis=1), confidence)
        t = float(values[top].mean())
        return {"estimate": float(m), "ci": [float(l), float(h)], "top_k": t,
                "cost": {"estimate": t - float(m), "ci": [t - float(h), t - float(l)]},
                "method": "empirical-Bernstein over draws"}

    out = {}
    if claims.min() >= 0 and claims.max() <= 1:
        out["expected_utility"] = against_top_k(claims)
    if labels is not None:
        y = np.asarray(labels, dtype=float)
        if np.isfinite(y).all() and y.min() >= 0 and y.max() <= 1:
            out["precision"] = against_top_k(y)
    return out


def picks_in_order(draws) -> bool:
    """Whether the first column can be read as the first pick: not when every draw is
    sorted by index (ascending or descending), which carries no pick order."""
    if draws.shape[1] < 2:
        return True
    d = np.diff(draws, axis=1)
    return not (bool((d > 0).all()) or bool((d < 0).all()))


# ---------------------------------------------------------------------------
# One instance
# ---------------------------------------------------------------------------

def analyse(draws, claims, k, confidence, *, n_bins=10, min_gain=0.1, min_chance=0.1, pick_order="auto",
            labels=None, final=True, budget=None, sequences=None):
    """Every component on one instance's draws. Returns a dict with the instance verdict
    and the evidence. ``final=False`` skips what only the report needs (utility).

    ``bf2_open`` (only with ``budget``, the most draws the caller may take) is true when
    the verdict is not a fail and some positive claim never selected so far would be
    certified effectively excluded if it stayed unselected up to ``budget`` draws — the
    caller should keep drawing rather than pass it: BF.1 on bins is often certified long
    before an excluded weak claim is.

    ``partial_open`` is true when full BF failed, the outcomes show a partial structure
    (someone always or never selected) and BF.1 inside the randomised pool is not yet
    decided — the caller may draw more to characterise the partial lottery.

    ``within_open`` is true when the verdict is not a fail and some bin's within-bin
    contrast is undecided with an estimate below halfway to the Broome lottery's.

    ``sequences``: a dict kept by a caller that calls this at every look of one
    instance's sequential sampling: the claim-bin intervals are then betting confidence
    sequences carried across looks (see :func:`bin_gain_analysis`)."""
    claims = np.asarray(claims, dtype=float)
    n = len(claims)
    B = draws.shape[0]
    alpha = 1 - confidence
    use_order = pick_order == "yes" or (pick_order == "auto" and picks_in_order(draws))
    a_bins, a_ind, a_first = (0.5 * alpha, 0.3 * alpha, 0.2 * alpha) if use_order else (0.5 * alpha, 0.5 * alpha, 0.0)
    ref = broome_reference(claims, k)
    counts = inclusion_counts(draws, n)
    out = {"draws": B, "k": k, "n": n}
    bins = bin_gain_analysis(draws, claims, k, n_bins, 1 - a_bins, ref=ref, sequences=sequences)
    ind = individual_analysis(counts, B, claims, 1 - a_ind, ref, min_chance)
    first = first_round_analysis(draws, claims, n_bins, 1 - a_first / 2) if use_order else None
    later = later_rounds_analysis(draws, claims, 1 - a_first / 2) if use_order and n <= SMALL_N and k > 1 else None
    comps = {}
    if bins is not None:
        e, l, h = bins["stat"]
        comps["bf1_bins"] = Statistic("min_gain_ratio", e, (l, h), tolerance=min_gain, method=bins["method"],
                                      violation="below")
        if "within" in bins:
            e, l, h = bins["within"]["stat"]
            comps["bf1_within_bins"] = Statistic("min_within_bin_gain_ratio", e, (l, h), tolerance=min_gain,
                                                 method=bins["within"]["method"], violation="below",
                                                 refutation_only=True)
    rev = ind["reversal"]
    comps["reversal"] = Statistic("max_reversal", rev["estimate"], (rev["certified"], 1.0), tolerance=0.0,
                                  method=ind["method"], violation="above", refutation_only=True)
    eq = ind["equal"]
    comps["equal_claims"] = Statistic("max_equal_claims_gap", eq["estimate"], (eq["certified"], 1.0), tolerance=0.0,
                                      method=ind["method"], violation="above", refutation_only=True)
    bf2 = ind["bf2"]
    comps["bf2"] = Statistic("min_chance_ratio", bf2["ratio"], (bf2["ratio_lo"], bf2["ratio_hi"]),
                             tolerance=min_chance, method=ind["method"] + "; chance relative to the Broome lottery's",
                             violation="below", refutation_only=True)
    if first is not None:
        comps["first_round"] = Statistic("first_round_reversal", first["certified_reversal"],
                                         (first["certified_reversal"], 1.0), tolerance=0.0,
                                         method="beta-binomial confidence sequence per claim bin, first picks",
                                         violation="above", refutation_only=True)
    if later is not None:
        comps["later_rounds"] = Statistic("later_round_reversal", later["certified_reversal"],
                                          (later["certified_reversal"], 1.0), tolerance=0.0,
                                          method="beta-binomial confidence sequences of the next pick given the set "
                                                 "already picked, bonferroni over all cells", violation="above",
                                          refutation_only=True)
    verdict = combine(comps)
    verdicts = {name: s.verdict() for name, s in comps.items()}
    out.update(verdict=verdict, components=verdicts, stats=comps, bins=bins, ind=ind, first=first, later=later, ref=ref,
               counts=counts, use_order=use_order)
    out["partial_open"] = False
    out["bf2_open"] = False
    # the within-bin contrast is a refutation, certified later than the bin pairs: do not stop on a pass while a
    # bin's contrast is nearer flat than Broome and still undecided (the Broome lottery's sit near 1: no cost there)
    wt = bins["within"]["table"] if bins is not None and "within" in bins else None
    out["within_open"] = bool(verdict != "fail" and wt is not None and np.any(
        (wt["ratio_lo"] < min_gain) & (wt["ratio_hi"] >= min_gain) & (wt["ratio"] < (1 + min_gain) / 2)))
    if budget is not None and budget > B and verdict != "fail":
        zero = (claims > 0) & (counts == 0) & (ref > 0)
        if zero.any():
            _, hi_end = beta_binomial_cs(np.zeros(1), budget, per_member_confidence(1 - a_ind, n))
            out["bf2_open"] = bool(np.any(float(np.atleast_1d(hi_end)[0]) < min_chance * ref[zero]))
    if verdict == "fail" or final:   # the partial-BF characterisation is only needed then
        part = partial_analysis(draws, counts, B, claims, k, ind, 1 - a_bins, n_bins)
        out["partial"] = part
        pool = part.get("pool_bf1")
        pool_undecided = pool is not None and decide(pool["ci"], min_gain, "below") == "inconclusive"
        # n'/n is wide while never-selected weak claims cannot yet be told from claims whose
        # Broome chance is merely small: more draws narrow it (up to the caller's cap)
        share_wide = part["never_selected_positive"] > 0 and np.diff(part["pool_share"]["ci"])[0] > PARTIAL_WIDTH
        out["partial_open"] = bool(verdict == "fail" and part["partial"] and part["pool"] >= 2
                                   and (pool_undecided or share_wide))
    if final:
        out["utility"] = utility_analysis(draws, claims, k, labels, confidence)
    return out


def deterministic_certificate(draws, confidence):
    """If every draw selects the same set: the upper confidence bound on the chance of
    any other outcome (Clopper–Pearson at level ``1 − confidence``, zero deviations in
    draws 1..B−1 given draw 0): ``1 − (1 − confidence)^{1/(B−1)}``."""
    s = np.sort(draws, axis=1)
    if not (s == s[0]).all():
        return None
    B = draws.shape[0]
    return 1.0 - (1.0 - confidence) ** (1.0 / max(B - 1, 1))


def deterministic_excluded(draws, claims, ucb, min_chance) -> np.ndarray:
    """Positive claims outside the one set drawn so far whose chance is certified (≤ ``ucb``)
    below ``min_chance`` of the Broome lottery's chance for them — BF.2's "effectively
    excluded", the same relative floor as for a lottery. Identical draws alone prove
    nothing: the Broome lottery itself repeats its likeliest set when the other claims
    are tiny (claims (1, 1, 1e-4, 1e-4), k = 2: 256 identical draws with chance ≈ 0.93),
    so a claim counts only when the Broome lottery would pick it with chance above
    ``ucb / min_chance``."""
    claims = np.asarray(claims, dtype=float)
    sel = np.zeros(len(claims), bool)
    sel[draws[0]] = True
    ref = broome_reference(claims, draws.shape[1])
    return np.flatnonzero(~sel & (claims > 0) & (ucb < min_chance * ref))


def deterministic_result(inst, draws, ucb, out_pos, min_chance) -> dict:
    """One instance decided by the deterministic shortcut (every draw the same set): BF.2's
    statistic for the strongest positive claim outside the set (``out_pos``, from
    :func:`deterministic_excluded`), or the exact count 0 when every positive claim is in it."""
    claims = np.asarray(inst.scores, dtype=float)
    n = len(claims)
    k = draws.shape[1]
    counts = inclusion_counts(draws, n)
    res = {"inst": inst, "draws": len(draws), "k": k, "n": n, "deterministic": True, "deviation_ucb": ucb,
           "counts": counts, "ref": broome_reference(claims, k)}
    if len(out_pos):
        w = out_pos[np.argmax(claims[out_pos])]
        ref_w = float(res["ref"][w])
        stat = Statistic("min_chance_ratio", 0.0, (0.0, ucb / ref_w if ref_w > 0 else float("inf")),
                         tolerance=min_chance,
                         method=f"identical outcomes in {len(draws)} draws: Clopper–Pearson bound on any other "
                                f"outcome, relative to the Broome lottery's chance; deterministic ⇒ BF.2 fails "
                                f"outright (SPEC §1)", violation="below")
        res.update(verdict="fail", excluded=int(w), n_excluded=len(out_pos))
    else:
        # every positive claim is in the one set drawn: each is selected whenever the
        # others are, exactly — nothing is left to estimate
        stat = Statistic("positive_claims_outside_the_set", 0.0, (0.0, 0.0), tolerance=0.0,
                         method=f"identical outcomes in {len(draws)} draws, every positive claim among the "
                                f"{k} selected (an exact count)")
        res.update(verdict="pass_deterministic", excluded=None, n_excluded=0)
    res["stats"] = {"bf2_deterministic": stat}
    return res


def resolution_statement(bins: dict | None) -> dict:
    """What the BF.1 tests can see on one instance: the bins actually used (and whether a
    requested number was reduced by the ``MIN_BIN`` minimum), and the width of flat band
    that may go unseen — about two claim bins: the within-bin contrast sees a flat band
    covering a whole bin, but one bin wide and straddling two is not seen (measured:
    45th–55th percentile, n = 1000, bins = 10, passes 5/5 seeds)."""
    if bins is None:
        return {"statement": "no informative claim bins: BF.1 was not tested on bins"}
    t = bins["table"]
    width = float((t["claim_max"] - t["claim_min"]).max())
    out = {"bins_used": bins["bins_used"], "bins_requested": bins["bins_requested"],
           "largest_bin": int(t["n"].max()), "widest_bin_claims": width,
           "statement": f"{bins['bins_used']} claim bins of up to {int(t['n'].max())} individuals; a flat band narrower "
                        f"than about two bins (2 × {int(t['n'].max())} individuals, claims ≈{2 * width:.3g} wide) may go "
                        f"unseen unless it covers a whole bin"}
    n = int(t["n"].sum())
    if bins["bins_used"] < min(bins["bins_requested"], n):
        out["reduced"] = (f"bins={bins['bins_requested']} was reduced to {bins['bins_used']} (at least {MIN_BIN} "
                          f"individuals per bin)")
        out["statement"] += "; " + out["reduced"]
    return out


# ---------------------------------------------------------------------------
# Tables of a lottery's analysis, and logs binned by claim
# ---------------------------------------------------------------------------

def partial_row(r, min_gain) -> dict:
    """One row of the partial-BF table (the quantities of Jain, Creel and Wilson's Tables 1–6)."""
    k = r["k"]
    row = {"instance": r["inst"].label}
    if r.get("deterministic"):
        row.update(reading="deterministic: no seat randomised", always=k, pool=0, never=r["n_excluded"],
                   k_prime_over_k=0.0, k_prime_ci="[0, 0]", n_prime_over_n=0.0, n_prime_ci="[0, 0]",
                   pool_ranks="none")
        return row
    p = r["partial"]
    kp, npool = p["k_prime_rate"], p["pool_share"]
    inside = p.get("pool_bf1")
    ranks = f"{p['pool_ranks'][0]}..{p['pool_ranks'][1]}" if p["pool_ranks"] else "none"
    if r["verdict"] == "pass":
        reading = "Broome-fair: no violation found" + ("" if not p["always_selected"] else
                                                       " (the strongest claims are chosen almost surely)")
    elif not p["partial"]:
        reading = "randomised throughout (no one always or never selected)"
    elif inside is not None and inside["ci"][0] >= min_gain and p["pool_contiguous"]:
        reading = f"partial Broome-Fairness over ranks {ranks}"
    else:
        reading = ("a randomised pool" + (" over ranks " if p["pool_contiguous"] else " spread between ranks ")
                   + ranks + " (BF.1 inside it " + ("refuted" if inside is not None and inside["ci"][1] < min_gain
                                                     else "not certified") + ")")
    row.update(reading=reading, always=p["always_selected"], pool=p["pool"], never=p["never_selected_positive"],
               k_prime_over_k=kp["estimate"], k_prime_ci=f"[{kp['ci'][0]:.3f}, {kp['ci'][1]:.3f}]",
               n_prime_over_n=npool["estimate"], n_prime_ci=f"[{npool['ci'][0]:.3f}, {npool['ci'][1]:.3f}]",
               pool_ranks=ranks)
    return row

def utility_row(r) -> dict:
    """Expected utility / precision of the selected against top-k's (Defs 4.7/4.8)."""
    row = {"instance": r["inst"].label}
    for key, name in (("expected_utility", "expected_utility"), ("precision", "precision")):
        u = r["utility"].get(key)
        if u is None:
            continue
        row.update({name: u["estimate"], f"{name}_lo": u["ci"][0], f"{name}_hi": u["ci"][1],
                    f"{name}_top_k": u["top_k"], "cost_vs_top_k" if key == "expected_utility"
                    else "precision_cost": u["cost"]["estimate"],
                    ("cost_lo" if key == "expected_utility" else "precision_cost_lo"): u["cost"]["ci"][0],
                    ("cost_hi" if key == "expected_utility" else "precision_cost_hi"): u["cost"]["ci"][1]})
    return row


def claim_bin_rates_from_sums(n_b, s_b, claim_sum, ref_sum, alpha: float) -> dict:
    """:func:`log_claim_bin_rates` from its sufficient statistics per claim bin: rows,
    selected, sum of claims and sum of the rows' Broome chances."""
    n_b, s_b = np.asarray(n_b), np.asarray(s_b, dtype=float)
    G = len(n_b)
    cbar = np.asarray(claim_sum, dtype=float) / n_b
    rbar = np.asarray(ref_sum, dtype=float) / n_b
    lo, hi, meth = simultaneous_proportion_ci(s_b, n_b, 1 - alpha / 2)
    rate = s_b / n_b
    gi, hj = np.triu_indices(G, 1)
    kn = s_b.sum() / n_b.sum()
    refgain = rbar[hj] - rbar[gi]
    ok = (cbar[hj] > cbar[gi]) & (refgain > NOT_INFORMATIVE * kn)
    gi, hj, refgain = gi[ok], hj[ok], refgain[ok]
    table = pd.DataFrame({"bin": np.arange(G), "rows": n_b, "claim_mean": cbar, "selection_rate": rate,
                          "rate_lo": lo, "rate_hi": hi, "broome_rate": rbar})
    return {"table": table, "G": G, "rows": n_b, "selected": s_b, "claim_mean": cbar, "broome_rate": rbar,
            "rate": rate, "lo": lo, "hi": hi, "method": meth, "lower": gi, "higher": hj, "broome_gain": refgain}
