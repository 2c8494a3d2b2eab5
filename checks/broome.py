"""``broome``: Broome-Fairness (seed 000, Defs 4.1–4.3, 4.7–4.9) and ``systemic_exclusion`` (Def 4.4).

Broome-Fairness of an iterative weighted selection (Def 4.2): for every round and
every pair of remaining individuals, BF.1 ``c_i > c_j ⇒ w_i > w_j`` and BF.2
``c_i > 0 ⇒ w_i > 0``; Broome also asks equal chances for equal claims. The weights
are not observed; the audit sees outcomes. BF implies that the inclusion
probabilities ``π_i`` rise with claims, so everything below tests consequences of BF
on ``π`` (and, when picks come in order, on the first-round weights): agreement is
necessary, not sufficient, and the report says so.

Design (decisions where SPEC §1 and the seed are silent)
--------------------------------------------------------
*Why not a reversal between individuals.* With n = 1000 the family of individual
intervals is large (Bonferroni over n) and the true chance gap between adjacent claims
is tiny, so a pairwise reversal between individuals can only ever *refute*; it can
never certify that chances rise, and it cannot see a *flat* allocator (the uniform
lottery has no reversal at all, only equality). The headline BF.1 statistic is
therefore computed on **claim bins**:

* Individuals are sorted by claim and cut into ``bins`` bins (default 10) of (nearly)
  equal size, equal claims never split; at least 25 individuals per bin (fewer bins
  for small pools; one individual per bin when n ≤ ``bins``). For bins ``g`` below
  ``h`` (``c̄_g < c̄_h``) the per-draw difference ``D = X_h − X_g`` of the fractions
  of each bin selected is a bounded variable whose mean is the chance gain
  ``π̄_h − π̄_g``; correlation between bins within a draw is accounted for.
* That gain is divided by the gain the **Broome lottery** (``w ∝ c``, Example 4.3)
  would give on the same claims, ``π^BF`` (Rosén's successive-sampling approximation
  ``π_i ≈ 1 − exp(−λ c_i)``, ``Σ π_i = k``; exact enough to be a yardstick, and it
  accounts for saturation near π = 1). The ratio ``r_gh`` is 1 for the Broome lottery,
  0 for a flat lottery, negative for a reversal. Statistic ``min_gain_ratio = min r_gh``
  over **all** bin pairs (far pairs give power against global flatness — the uniform
  lottery; adjacent pairs against local flatness — a band of equal weights), with an
  anytime-valid empirical-Bernstein confidence sequence per pair (Bonferroni over the
  pairs), so sampling may stop as soon as the verdict is certain.
* Verdict on BF.1: fail when ``min r`` is certified below ``min_gain`` (default 0.1:
  stronger claims must get at least a tenth of the extra chance the Broome lottery
  gives them — the resolution at which "greater chance" is tested; any strictly
  increasing weighting passes once its gain is at least that), pass when certified at
  or above it. A certified negative ``r`` is a reversal: some stronger claim has a
  smaller chance than some weaker one. Pairs whose Broome gain is below
  ``0.001·k/n`` (both bins chosen almost surely or almost never) are not informative
  and are left out of the verdict.

Refutations (each can only fail, never needed for a pass; all from one family of
simultaneous anytime-valid beta-binomial confidence sequences on every ``π_i``):

* *largest certified reversal between individuals*: ``max over c_i > c_j of
  LCB(π_j) − UCB(π_i) > 0`` (O(n log n) with running maxima);
* *equal claims, unequal chances*: a tie group with ``max LCB > min UCB``;
* *BF.2, effectively excluded*: a positive claim with ``UCB(π_i) < min_chance ·
  π^BF_i``. The floor is **relative to the Broome lottery's chance for that claim**
  (default ``min_chance = 0.1``): an absolute floor would fail the Broome lottery
  itself on tiny claims (a claim of 1e-5 deserves a chance of about 1e-6), while a
  positive claim that gets less than a tenth of what the Broome lottery would give it
  is overridden in all but name. In practice it flags never-selected individuals whose
  Broome chance is at least ~10/(min_chance · draws). Because the bins can certify BF.1
  long before an excluded weak claim is certified, sampling does not stop on a pass
  while a positive claim never selected so far could still be certified excluded within
  the budget (for the Broome lottery no such claim remains after a few thousand draws,
  so it costs nothing there).
* *deterministic allocator*: the first 256 draws identical ⇒ the chance of any other
  outcome is below ``1 − (α/2)^{1/255}`` ≈ 1.4 % (Clopper–Pearson with zero
  deviations, conditioning on draw 0), and every positive claim outside that outcome
  fails BF.2 outright (SPEC §1) — no large budget needed.
* *first-round weights* (when the first column is the first pick; output sorted by
  index in every draw is recognised and ignored; ``pick_order=no`` turns it off):
  per-bin first-pick frequencies with simultaneous confidence sequences; a bin of
  stronger claims whose average first-round weight is certified below a weaker bin's
  proves an individual reversal in round 1 (max ≥ mean);
* *later rounds* (n ≤ 10): the next pick's frequencies given the *set* already picked
  (every set seen ≥ 30 times), a certified reversal among the remaining is a BF.1
  violation in that round.

α is split equally between instances; within an instance ½ to the bin pairs, 0.3 to the
individual family and 0.2 to the pick-order families (0.5 to individuals when the
order is not read). Any failing component fails
the check; a pass needs the BF.1 bins certified and no refutation.

Partial Broome-Fairness (Def 4.9, Algorithm 1; seed Tables 1–6): the always-selected
set, the never-selected positive claims, the randomised pool between them. Exact 0 and
1 cannot be certified by sampling, so: ``π ≥ 1−η`` (``η = 0.05``) counts as always, and
a positive claim counts as never when its chance is below ``min_chance`` of the Broome
lottery's chance for it — BF.2's "effectively excluded" (an absolute ``π ≤ η`` would
put the weak claims of the Broome lottery itself, small by design, outside its pool).
``k'/k = (k − |always|)/k`` and ``n'/n = |pool|/n``, point estimates from ``π̂`` and
simultaneous bounds from the individual intervals (a never-drawn tiny claim whose
Broome chance is too small to certify anything widens the upper bound of ``n'/n``, so
once full BF has failed, sampling goes on — up to ``PARTIAL_DRAWS`` — while BF.1 inside
the pool is undecided or the ``n'/n`` interval is wider than ``PARTIAL_WIDTH`` = 0.05);
BF.1 is re-tested inside the pool (Broome lottery of the ``k'`` seats over the pool as
yardstick). When the pool is a contiguous range of claim ranks and it passes, the
message says "partial Broome-Fairness over ranks a..b"; the table ``partial_broome``
and each figure's caption give the reading per instance.

Utility (Defs 4.7/4.8): expected utility ``(1/k) Σ p_i 1[o_i=1]`` with ``p_i`` the
claims when they lie in [0, 1], precision with labels when the data has them; per
draw, with empirical-Bernstein intervals, next to top-k's (exact) — the cost of
randomisation. Reported, not judged.

Logs: when every decision event has the same pool (same individuals, same claims) the
events are draws and everything above applies (pick order from ``pick_order``);
otherwise the rows are binned by claim (at least 2000 rows per bin) and the selection
rate per bin (Clopper–Pearson, simultaneous; rows as independent trials, conservative
under the negative dependence of k-of-n selection) is compared with the Broome
lottery's rate computed event by event — the same ``min_gain_ratio`` across bins, and
BF.2 across bins. ``evidence["log_mode"]`` says which was possible.

``systemic_exclusion`` (Def 4.4; an extra, ``default = False``, because it needs m
runs per replicate and is a structural comparison rather than a property of one
allocator): m decision-makers are m independent runs of the allocator (or the
allocator plus the files in ``others``), each seeing the claims plus ``N(0, σ²)``
noise (σ = 0.025 as in seed 000 Fig. (b)); SER = share excluded by all m, per
replicate, Student-t interval over replicates, next to deterministic top-k on the
same noisy claims. Verdict on the relative reduction ``1 − SER/SER_top-k`` (interval
from the box of the two): fail when certified below ``min_reduction`` (0.1).

Measured (``benchmarks/bench_broome.py --grid --study 100``, default settings, 2 shared
cores): the Broome lottery audit at n = 1000, k = 100 passes after 4096 draws in
0.24–0.54 s against 0.13–0.30 s of raw sampling (1.8–1.9×; ``stop_early=false``: 20000
draws, 0.96–2.0 s, 1.5–2.1×). On the 3×3 grid (uniform / truncated normal / Pareto ×
k/n 0.1, 0.25, 0.5, n = 1000, seed 0) top-k fails (256 draws per instance), the uniform
lottery fails BF.1, the Broome lottery passes and the partial lottery fails with
k'/k = 0.500 and n'/n = k/n exactly (upper bounds of n'/n at most +0.11, Pareto k = 100).
Over 100 seeds of the default instances (n = 1000, a fresh claim vector per seed): the
Broome lottery passed 100/100 (0 false fails; Clopper–Pearson 95% upper bound 3.6%),
top-k and the uniform lottery failed 100/100, the flat-band lottery (weights flat
between the 30th and 70th claim percentile, BF.2 intact) failed 100/100 (median 34816
draws over its three instances), the slightly flattened one (still BF) passed 100/100.
Resolution (``--resolution 20``): a flat band over the 40th–60th percentile is failed
20/20; one over the 45th–55th — one bin wide at the default ``bins = 10`` — passes 20/20:
a violation narrower than about two bins is not seen (raise ``bins``: at 20 it fails 16/20,
inconclusive 4/20, while the Broome lottery still passes 20/20). At n = 100 (4 bins of 25) the
30–70th band is narrower than a bin and is not seen either.
``stop_early=false`` takes the whole budget: the Broome lottery's ``min_gain_ratio`` is
then 0.97 [0.82, 1.00] and the slightly flattened lottery's 0.44 [0.31, 0.47].

Inputs: ``--data`` claims when given; otherwise claims from
:func:`fairaudit.data.generate_claims` — the parameter ``instances`` lists
``distribution:n:k_over_n`` items (default one instance per distribution family
of the issue at each k/n, three in all, to keep the default audit fast).
"""
from __future__ import annotations


import numpy as np
import pandas as pd

from fairaudit.check import Check, Param
from fairaudit.data import generate_claims
from fairaudit.result import Statistic, decide
from fairaudit.sampler import inclusion_counts
from fairaudit.stats import beta_binomial_cs, eb_confidence_sequence, empirical_bernstein_ci, \
    per_member_confidence, simultaneous_proportion_ci
from fairaudit.targets import Instance

DEFAULT_INSTANCES = "uniform:1000:0.1,truncated_normal:1000:0.25,pareto:1000:0.5"
DET_DRAWS = 256          # draws inspected for determinism
ETA = 0.05               # resolution of "always" / "never" selected in the partial-BF sets (π ≥ 1−η, π ≤ η)
PARTIAL_WIDTH = 0.05     # a failing partial lottery is sampled further while its n'/n interval is wider than this
POOL_BINS = 5            # claim bins for BF.1 inside a partial lottery's pool
PARTIAL_DRAWS = 20000    # draws at most spent characterising a partial lottery after full BF has failed
                         # (the default budget: at 8192 BF.1 inside a pool of 100 narrow claims was left open)
LOG_ROWS_PER_BIN = 2000       # claim bins of a log with varying pools hold at least this many rows
INDIVIDUALS_TABLE_MAX = 200   # per-individual table in the result for instances up to this size
NOT_INFORMATIVE = 1e-3   # bin pairs whose Broome gain is below this · k/n are left out


# ---------------------------------------------------------------------------
# Yardstick: the Broome lottery's inclusion probabilities
# ---------------------------------------------------------------------------

def broome_reference(claims, k: int) -> np.ndarray:
    """Approximate inclusion probabilities of the Broome lottery (w ∝ c, Example 4.3):
    ``π_i = 1 − exp(−λ c_i)`` with λ chosen so that ``Σ π_i = k`` (Rosén's
    successive-sampling approximation; within ~1e-2 of the exact values on the
    instances we audit, see tests). Zero claims get 0; if fewer than k claims are
    positive they all get 1."""
    c = np.asarray(claims, dtype=float)
    pos = c > 0
    if pos.sum() <= k:
        return pos.astype(float)
    cmax = c.max()
    lo, hi = 0.0, 1.0
    while np.sum(-np.expm1(-hi * c)) < k:
        hi *= 2.0
        if hi > 1e12 / max(cmax, 1e-300):
            break
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if np.sum(-np.expm1(-mid * c)) < k:
            lo = mid
        else:
            hi = mid
    return -np.expm1(-0.5 * (lo + hi) * c)


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


def bin_gain_analysis(draws, claims, k, n_bins, confidence, ref=None, subset=None):
    """BF.1 on claim bins: per pair of bins the ratio of the observed chance gain to the
    Broome lottery's gain, with a simultaneous anytime-valid interval.

    ``subset`` restricts to some individuals (the partial-BF pool); draws outside it are
    ignored. Returns a dict with the bin table, the pair table and the statistic
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
    conf = per_member_confidence(confidence, len(gi))
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
    return {"table": table, "pairs": pairs, "stat": (float(r.min()), float(rlo.min()), float(rhi.min())),
            "worst_pair": pairs.iloc[j].to_dict(), "lowest_pair": pairs.iloc[jmin].to_dict(),
            "method": f"empirical-Bernstein confidence sequence (anytime-valid), bonferroni over {len(gi)} bin pairs"}


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
    widens the upper bound of ``n'/n``, not the estimate."""
    claims = np.asarray(claims, dtype=float)
    n = len(claims)
    lo, hi, est = ind["lo"], ind["hi"], ind["est"]
    pos = claims > 0
    floor = ind["min_chance"] * ind["ref"] if "ref" in ind else np.full(n, ETA)
    always = est >= 1 - ETA
    never = pos & ~always & (est <= floor)
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
        res = bin_gain_analysis(draws, claims, kprime, min(n_bins, POOL_BINS), confidence, ref=ref,
                                subset=np.flatnonzero(pool))
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
    out = {}
    top = np.argsort(-claims, kind="stable")[:k]
    if claims.min() >= 0 and claims.max() <= 1:
        eu = claims[draws].mean(axis=1)
        m, l, h = empirical_bernstein_ci(eu, confidence)
        t = float(claims[top].mean())
        out["expected_utility"] = {"estimate": float(m), "ci": [float(l), float(h)], "top_k": t,
                                   "cost": {"estimate": t - float(m), "ci": [t - float(h), t - float(l)]},
                                   "method": "empirical-Bernstein over draws"}
    if labels is not None:
        y = np.asarray(labels, dtype=float)
        if np.isfinite(y).all() and y.min() >= 0 and y.max() <= 1:
            pr = y[draws].mean(axis=1)
            m, l, h = empirical_bernstein_ci(pr, confidence)
            t = float(y[top].mean())
            out["precision"] = {"estimate": float(m), "ci": [float(l), float(h)], "top_k": t,
                                "cost": {"estimate": t - float(m), "ci": [t - float(h), t - float(l)]},
                                "method": "empirical-Bernstein over draws"}
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
            labels=None, final=True, budget=None):
    """Every component on one instance's draws. Returns a dict with the instance verdict
    and the evidence. ``final=False`` skips what only the report needs (utility).

    ``bf2_open`` (only with ``budget``, the most draws the caller may take) is true when
    the verdict is not a fail and some positive claim never selected so far would be
    certified effectively excluded if it stayed unselected up to ``budget`` draws — the
    caller should keep drawing rather than pass it: BF.1 on bins is often certified long
    before an excluded weak claim is.

    ``partial_open`` is true when full BF failed, the outcomes show a partial structure
    (someone always or never selected) and BF.1 inside the randomised pool is not yet
    decided — the caller may draw more to characterise the partial lottery."""
    claims = np.asarray(claims, dtype=float)
    n = len(claims)
    B = draws.shape[0]
    alpha = 1 - confidence
    use_order = pick_order == "yes" or (pick_order == "auto" and picks_in_order(draws))
    a_bins, a_ind, a_first = (0.5 * alpha, 0.3 * alpha, 0.2 * alpha) if use_order else (0.5 * alpha, 0.5 * alpha, 0.0)
    ref = broome_reference(claims, k)
    counts = inclusion_counts(draws, n)
    out = {"draws": B, "k": k, "n": n}
    bins = bin_gain_analysis(draws, claims, k, n_bins, 1 - a_bins, ref=ref)
    ind = individual_analysis(counts, B, claims, 1 - a_ind, ref, min_chance)
    first = first_round_analysis(draws, claims, n_bins, 1 - a_first / 2) if use_order else None
    later = later_rounds_analysis(draws, claims, 1 - a_first / 2) if use_order and n <= SMALL_N and k > 1 else None
    comps = {}
    if bins is not None:
        e, l, h = bins["stat"]
        comps["bf1_bins"] = Statistic("min_gain_ratio", e, (l, h), tolerance=min_gain, method=bins["method"],
                                      violation="below")
    rev = ind["reversal"]
    comps["reversal"] = Statistic("max_reversal", rev["estimate"], (rev["certified"], 1.0), tolerance=0.0,
                                  method=ind["method"], violation="above")
    eq = ind["equal"]
    comps["equal_claims"] = Statistic("max_equal_claims_gap", eq["estimate"], (eq["certified"], 1.0), tolerance=0.0,
                                      method=ind["method"], violation="above")
    bf2 = ind["bf2"]
    comps["bf2"] = Statistic("min_chance_ratio", bf2["ratio"], (bf2["ratio_lo"], bf2["ratio_hi"]),
                             tolerance=min_chance, method=ind["method"] + "; chance relative to the Broome lottery's",
                             violation="below")
    if first is not None:
        comps["first_round"] = Statistic("first_round_reversal", first["certified_reversal"],
                                         (first["certified_reversal"], 1.0), tolerance=0.0,
                                         method="beta-binomial confidence sequence per claim bin, first picks",
                                         violation="above")
    if later is not None:
        comps["later_rounds"] = Statistic("later_round_reversal", later["certified_reversal"],
                                          (later["certified_reversal"], 1.0), tolerance=0.0,
                                          method="beta-binomial confidence sequences of the next pick given the set "
                                                 "already picked, bonferroni over all cells", violation="above")
    verdicts = {}
    for name, s in comps.items():
        v = decide(s.ci, s.tolerance, s.violation)
        if name != "bf1_bins" and v == "inconclusive":
            v = "pass"   # refutation-only components: "no refutation found"
        verdicts[name] = v
    if any(v == "fail" for v in verdicts.values()):
        verdict = "fail"
    elif bins is not None and verdicts.get("bf1_bins") == "pass":
        verdict = "pass"
    else:
        verdict = "inconclusive"
    out.update(verdict=verdict, components=verdicts, stats=comps, bins=bins, ind=ind, first=first, later=later, ref=ref,
               counts=counts, use_order=use_order)
    out["partial_open"] = False
    out["bf2_open"] = False
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
    any other outcome (Clopper–Pearson, zero deviations in draws 1..B−1 given draw 0)."""
    s = np.sort(draws, axis=1)
    if not (s == s[0]).all():
        return None
    B = draws.shape[0]
    return 1.0 - (1.0 - confidence) ** (1.0 / max(B - 1, 1))


# ---------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------

def parse_instances(spec: str):
    out = []
    for item in [s.strip() for s in str(spec).split(",") if s.strip()]:
        parts = item.split(":")
        if len(parts) != 3:
            raise ValueError(f"instance {item!r}: write distribution:n:k_over_n, e.g. uniform:1000:0.1")
        dist, n, r = parts[0], int(parts[1]), float(parts[2])
        out.append((dist, n, r))
    return out


def build_instances(ctx, spec: str, stream: str):
    """The instances to audit: the ``--data`` population, else generated claims."""
    inst = ctx.population_instance() if ctx.population is not None else None
    if inst is not None:
        return [inst]
    out = []
    for dist, n, r in parse_instances(spec):
        key = f"{stream}/claims/{dist}/{n}/{r}"
        claims = generate_claims(dist, n, ctx.rng(key))
        k = int(ctx.target.k) if ctx.target is not None and ctx.target.k is not None else max(1, int(round(r * n)))
        inst = Instance(f"{dist} claims, n={n}, k={k}", scores=claims, k=k)
        # how to rebuild these claims outside fairaudit (for the replay command)
        object.__setattr__(inst, "_claims_code", f"generate_claims('{dist}', {n}, "
                                                 f"AuditContext(AuditConfig(seed={ctx.config.seed})).rng('{key}'))")
        out.append(inst)
    return out


class Broome(Check):
    id = "broome"
    title = "Broome-Fairness"
    summary = ("Chances rise with claims (BF.1), no positive claim overridden (BF.2), equal claims equal chances; "
               "partial lotteries characterised (seed 000).")
    definition = ("A lottery is Broome-fair when, in every round, a stronger claim has a strictly greater chance "
                  "of being picked than a weaker one (BF.1) and every positive claim has some chance (BF.2); equal "
                  "claims get equal chances. The audit sees outcomes, not weights: it estimates each person's chance "
                  "of selection and, in claim bins, certifies that chances rise by at least a set fraction of what "
                  "Broome's lottery (chance in proportion to claim) gives, with no reversal, no unequal treatment of "
                  "equal claims and no positive claim effectively excluded. Agreement of the chances is necessary "
                  "for Broome-Fairness, not sufficient.")
    kinds = ("selection",)
    params = {
        "instances": Param(DEFAULT_INSTANCES, "without --data: claim instances distribution:n:k_over_n, comma-separated",
            parse=Param.claim_instances),
        "bins": Param(10, "claim bins for the BF.1 test", type=int, min=2),
        "min_gain": Param(0.1, "BF.1 resolution: least chance gain between claim bins, as a fraction of the Broome lottery's",
            type=float, min=0),
        "min_chance": Param(0.1, "BF.2: a positive claim whose chance is certified below this fraction of the Broome lottery's is effectively excluded",
            type=float, min=0, max=1),
        "pick_order": Param("auto", "read the first column as the first pick: auto (unless output is sorted), yes, no",
            choices=("auto", "yes", "no")),
        "max_draws": Param(20000, "draws per instance at most (sequential sampling stops earlier once decided)",
            type=int, min=1),
        "stop_early": Param(True, "stop sampling an instance once its verdict is certain; false: always take max_draws "
                                  "(narrower intervals, e.g. for comparing two results)", type=bool),
    }

    def skip_reason(self, ctx):
        if ctx.log is not None:
            return None
        if ctx.population is not None and ctx.population.scores is None:
            return f"{ctx.population.path} has no score (claim) column"
        return None

    # ------------------------------------------------------------------
    def run(self, ctx, instances, bins, min_gain, min_chance, pick_order, max_draws, stop_early=True):
        self._min_gain, self._min_chance = min_gain, min_chance
        stop_early = str(stop_early).strip().lower() not in ("0", "false", "no", "off")
        if ctx.log is not None:
            return self._run_log(ctx, bins, min_gain, min_chance)
        insts = build_instances(ctx, instances, self.id)
        conf_i = 1 - ctx.alpha / len(insts)
        budget = ctx.max_draws(max_draws)
        results = []
        for j, inst in enumerate(insts):
            claims = np.asarray(inst.scores, dtype=float)
            if np.any(claims < 0):
                return self.result("error", f"{inst.label}: claims must be non-negative for Broome-Fairness "
                                            f"(smallest is {claims.min():g}); rescale the score column.")
            k = int(ctx.target.effective_k(inst) if ctx.target.effective_k(inst) is not None else ctx.selection_k(len(claims)))
            if inst.k is None:
                inst = inst.replace(k=k)
            stream = f"{self.id}/{j}"
            first = ctx.sampler.draw(inst, min(DET_DRAWS, budget), stream)
            det = deterministic_certificate(first, conf_i) if len(first) >= 2 else None
            if det is not None:
                results.append(self._deterministic(inst, first, det, conf_i))
                continue
            kw = dict(n_bins=bins, min_gain=min_gain, min_chance=min_chance, pick_order=pick_order,
                      labels=inst.labels)
            draws = first
            while True:
                res = analyse(draws, claims, k, conf_i, final=False, budget=budget, **kw)
                open_ = (not stop_early or res["verdict"] == "inconclusive" or res["bf2_open"]
                         or (res["partial_open"] and len(draws) < PARTIAL_DRAWS))
                if not open_ or len(draws) >= budget or ctx.sampler.time_left() <= 0:
                    break
                step = min(len(draws), budget - len(draws))
                draws = np.concatenate([draws, ctx.sampler.draw(inst, step, stream, start=len(draws))])
            if "partial" not in res:
                res["partial"] = partial_analysis(draws, res["counts"], len(draws), claims, k, res["ind"],
                                                  1 - (0.5 * (1 - conf_i)), bins)
            res["utility"] = utility_analysis(draws, claims, k, inst.labels, conf_i)
            res["inst"] = inst
            results.append(res)
        return self._finish(ctx, results, min_gain, min_chance)

    def _deterministic(self, inst, draws, ucb, conf):
        claims = np.asarray(inst.scores, dtype=float)
        n = len(claims)
        sel = np.zeros(n, bool)
        sel[draws[0]] = True
        out_pos = np.flatnonzero(~sel & (claims > 0))
        k = draws.shape[1]
        counts = inclusion_counts(draws, n)
        res = {"inst": inst, "draws": len(draws), "k": k, "n": n, "deterministic": True, "deviation_ucb": ucb,
               "counts": counts, "ref": broome_reference(claims, k)}
        if len(out_pos):
            w = out_pos[np.argmax(claims[out_pos])]
            res.update(verdict="fail", excluded=int(w), n_excluded=len(out_pos))
        else:
            res.update(verdict="pass_deterministic", excluded=None, n_excluded=0)
        return res

    # ------------------------------------------------------------------
    def _finish(self, ctx, results, min_gain, min_chance):
        tables, figures, ev_inst = {}, [], []
        draws_total = sum(r["draws"] for r in results)
        fails = [r for r in results if r["verdict"] == "fail"]
        # Headline BF.1 statistic across instances (simultaneous: α split over instances).
        bf1 = [r["stats"]["bf1_bins"] for r in results if "stats" in r and "bf1_bins" in r["stats"]]
        headline = None
        if bf1:
            headline = Statistic("min_gain_ratio", min(s.estimate for s in bf1),
                                 (min(s.ci[0] for s in bf1), min(s.ci[1] for s in bf1)), tolerance=min_gain,
                                 method=bf1[0].method + f"; bonferroni over {len(results)} instances", violation="below")
        tables["partial_broome"] = pd.DataFrame([self._partial_row(r, min_gain) for r in results])
        util = [self._utility_row(r) for r in results if r.get("utility")]
        if util:
            tables["utility"] = pd.DataFrame(util)
        for j, r in enumerate(results):
            ev_inst.append(self._instance_evidence(r))
            t, f = self._instance_tables_figures(r, j)
            tables.update(t)
            figures.extend(f)
        evidence = {"instances": ev_inst,
                    "note": "Agreement of the chances with Broome-Fairness is necessary, not sufficient: BF is a "
                            "property of the round-by-round weights, which outcomes reveal only in part."}
        method = ("; ".join(sorted({s.method for r in results if "stats" in r for s in r["stats"].values()}))
                  or "identical outcomes across draws (Clopper–Pearson on deviations)")
        if fails:
            r = fails[0]
            msg, stat, cx = self._fail_message(r, min_gain, min_chance)
            summ = ev_inst[results.index(r)].get("partial_summary")
            if summ:
                msg += f" The outcomes show {summ}."
            evidence["counterexample"] = cx
            if ctx.target is not None and not getattr(self, "_from_log", False):
                evidence["replay_command"] = _replay(r["inst"], ctx, f"{self.id}/{results.index(r)}", r["draws"],
                                                     cx_individuals(cx))
            if r.get("deterministic"):
                return self.result("fail", msg, statistic=stat, draws=draws_total, evidence=evidence, tables=tables,
                                   figures=figures, method=method)
            return self.judged(stat, {"fail": msg}, draws_total, evidence=evidence, tables=tables, figures=figures,
                               method=method)
        if all(r["verdict"] in ("pass", "pass_deterministic") for r in results) and headline is not None:
            w = min((r for r in results if r.get("bins") is not None), key=lambda r: r["bins"]["stat"][1])
            p = w["bins"]["pairs"].iloc[int(np.argmin(w["bins"]["pairs"]["ratio_lo"]))]
            msg = (f"Chances rise with claims on every instance: between any two claim bins the stronger gets at least "
                   f"{headline.ci[0]:.2f} of the Broome lottery's extra chance (tolerance {min_gain:g}) — least "
                   f"certainly between claims ≈{p['claim_weaker']:.3g} and ≈{p['claim_stronger']:.3g} on "
                   f"{w['inst'].label} (ratio {p['ratio']:.2f} [{p['ratio_lo']:.2f}, {p['ratio_hi']:.2f}]); no "
                   f"reversal, no unequal chances for equal claims, no positive claim effectively excluded.")
            return self.judged(headline, {"pass": msg}, draws_total, evidence=evidence, tables=tables, figures=figures,
                               method=method)
        stat = headline or Statistic("min_gain_ratio", float("nan"), (float("-inf"), float("inf")), tolerance=min_gain,
                                     violation="below")
        worst = min((r for r in results if "bins" in r and r["bins"] is not None),
                    key=lambda r: r["bins"]["stat"][1], default=None)
        where = ""
        if worst is not None:
            p = worst["bins"]["lowest_pair"]
            where = (f" The weakest rise is on {worst['inst'].label}: claims ≈{p['claim_weaker']:.3g} → "
                     f"≈{p['claim_stronger']:.3g} gain ratio {p['ratio']:.2f} [{p['ratio_lo']:.2f}, {p['ratio_hi']:.2f}].")
        msg = (f"Cannot yet certify that chances rise with claims by at least {min_gain:g} of the Broome lottery's "
               f"gain, nor a violation.{where}")
        if headline is None:
            msg = ("The claims do not differ enough between claim bins to test BF.1 (they are equal, zero, or "
                   "chosen almost surely); no reversal, no unequal chances for equal claims and no excluded positive "
                   "claim was found.")
            return self.result("inconclusive", msg, statistic=stat, draws=draws_total, evidence=evidence,
                               tables=tables, figures=figures, method=method)
        if stat.ci[0] >= min_gain:   # bins passed but something else was left open
            return self.result("inconclusive", msg, statistic=stat, draws=draws_total, evidence=evidence,
                               tables=tables, figures=figures, method=method)
        return self.judged(stat, {"inconclusive": msg, "pass": msg, "fail": msg}, draws_total, evidence=evidence,
                           tables=tables, figures=figures, method=method)

    @staticmethod
    def _partial_row(r, min_gain) -> dict:
        """One row of the partial-BF table (the quantities of seed 000's Tables 1–6)."""
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

    @staticmethod
    def _utility_row(r) -> dict:
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

    def _fail_message(self, r, min_gain, min_chance):
        inst = r["inst"]
        claims = np.asarray(inst.scores, dtype=float)
        lab = inst.label
        if r.get("deterministic"):
            i = r["excluded"]
            ref_i = float(r["ref"][i])
            stat = Statistic("min_chance_ratio", 0.0, (0.0, r["deviation_ucb"] / ref_i if ref_i > 0 else float("inf")),
                             tolerance=min_chance,
                             method=f"identical outcomes in {r['draws']} draws: Clopper–Pearson bound on any other "
                                    f"outcome, relative to the Broome lottery's chance; deterministic ⇒ BF.2 fails "
                                    f"outright (SPEC §1)", violation="below")
            msg = (f"Deterministic allocator on {lab}: the same {r['k']} were selected in all {r['draws']} draws, so "
                   f"{r['n_excluded']} positive claims are never selected (BF.2), e.g. individual {i} with claim "
                   f"{claims[i]:.4g} (the Broome lottery would give it chance {r['ref'][i]:.3f}); randomise, e.g. "
                   f"weights in proportion to claims.")
            return msg, stat, {"instance": lab, "individual": int(i), "claim": float(claims[i]),
                               "chance_upper_bound": r["deviation_ucb"], "broome_chance": float(r["ref"][i])}
        comp = r["components"]
        S = r["stats"]
        ind = r["ind"]
        if comp.get("bf2") == "fail":
            b = ind["bf2"]
            i = b["individual"]
            msg = (f"BF.2 violated on {lab}: individual {i} with claim {b['claim']:.4g} was selected {int(r['counts'][i])} "
                   f"times in {r['draws']} draws (chance ≤ {b['chance_hi']:.2g}, below {min_chance:g} of the Broome "
                   f"lottery's {b['broome_chance']:.3f}); {len(b['excluded'])} positive claims are certified effectively excluded — "
                   f"give every positive claim a chance.")
            cx = {"instance": lab, "individual": i, "claim": b["claim"], "selected": int(r["counts"][i]),
                  "draws": r["draws"], "chance_upper_bound": b["chance_hi"], "broome_chance": b["broome_chance"]}
            return msg, S["bf2"], cx
        if comp.get("reversal") == "fail":
            v = ind["reversal"]
            i, j = v["stronger"], v["weaker"]
            msg = (f"Reversal on {lab}: individual {i} (claim {claims[i]:.4g}) has chance at most {ind['hi'][i]:.3f} while "
                   f"individual {j} with the weaker claim {claims[j]:.4g} has at least {ind['lo'][j]:.3f} (BF.1).")
            cx = {"instance": lab, "stronger": i, "weaker": j, "claims": [float(claims[i]), float(claims[j])],
                  "chances": [float(ind["est"][i]), float(ind["est"][j])]}
            return msg, S["reversal"], cx
        if comp.get("bf1_bins") == "fail":
            p = r["bins"]["worst_pair"]
            if p["ratio_hi"] < 0:
                what = f"a smaller chance than claims around {p['claim_weaker']:.3g}"
            else:
                what = (f"at most {max(p['ratio_hi'], 0):.2f} of the extra chance the Broome lottery gives them over "
                        f"claims around {p['claim_weaker']:.3g}")
            msg = (f"BF.1 violated on {lab}: claims around {p['claim_stronger']:.3g} get {what} — gain "
                   f"{p['gain']:+.4f} [{p['gain_lo']:+.4f}, {p['gain_hi']:+.4f}] against the Broome lottery's "
                   f"{p['broome_gain']:.4f} (tolerance {min_gain:g} of it); make chances rise with claims.")
            cx = {"instance": lab, "weaker_bin": int(p["weaker_bin"]), "stronger_bin": int(p["stronger_bin"]),
                  "claims": [p["claim_weaker"], p["claim_stronger"]], "gain": p["gain"],
                  "gain_ci": [p["gain_lo"], p["gain_hi"]], "broome_gain": p["broome_gain"]}
            return msg, S["bf1_bins"], cx
        if comp.get("equal_claims") == "fail":
            e = ind["equal"]
            hi_i, lo_i = e["highest"], e["lowest"]
            msg = (f"Equal claims, unequal chances on {lab}: individuals {hi_i} and {lo_i} both have claim {e['claim']:.4g} "
                   f"but chances {ind['est'][hi_i]:.3f} and {ind['est'][lo_i]:.3f} (certified gap ≥ {e['certified']:.3f}).")
            return msg, S["equal_claims"], {"instance": lab, "individuals": [hi_i, lo_i], "claim": e["claim"]}
        if comp.get("later_rounds") == "fail":
            L = r["later"]
            i, j = L["stronger"], L["weaker"]
            msg = (f"Round-{L['round']} reversal on {lab}: after {L['already_picked']} were picked ({L['given_draws']} draws), "
                   f"individual {i} (claim {claims[i]:.4g}) is picked next less often than individual {j} with the weaker "
                   f"claim {claims[j]:.4g}, with confidence (BF.1 in that round).")
            return msg, S["later_rounds"], {"instance": lab, "round": L["round"], "already_picked": L["already_picked"],
                                            "stronger": i, "weaker": j}
        f = r["first"]
        msg = (f"First-round reversal on {lab}: claim bin {f['stronger_bin']} gets a smaller first-pick weight than the "
               f"weaker bin {f['weaker_bin']} (certified gap {f['certified_reversal']:.4f}), so some stronger claim has a "
               f"smaller round-1 weight than a weaker one (BF.1).")
        return msg, S["first_round"], {"instance": lab, "bins": [f["weaker_bin"], f["stronger_bin"]]}

    def _instance_evidence(self, r):
        inst = r["inst"]
        ev = {"instance": inst.label, "n": r["n"], "k": r["k"], "draws": r["draws"], "verdict": r["verdict"]}
        if r.get("deterministic"):
            ev.update(deterministic=True, other_outcome_chance_ucb=r["deviation_ucb"], excluded_positive=r["n_excluded"])
            return ev
        ev["components"] = r["components"]
        ev["statistics"] = {k: s.to_dict() for k, s in r["stats"].items()}
        ev["pick_order_used"] = r["use_order"]
        if r.get("later") is not None:
            ev["later_rounds"] = r["later"]
        ev["largest_reversal"] = r["ind"]["reversal"]
        ev["equal_claims"] = r["ind"]["equal"]
        b2 = dict(r["ind"]["bf2"])
        b2["excluded"] = b2["excluded"][:20]
        ev["bf2"] = b2
        p = r["partial"]
        ev["partial"] = {key: v for key, v in p.items() if not key.startswith("_")}
        if r["verdict"] == "fail" and p["partial"] and p["pool_ranks"] and r["components"].get("bf2") == "fail":
            reading = self._partial_row(r, self._min_gain)["reading"]
            ev["partial_summary"] = (f"{reading}: "
                                     f"{p['always_selected']} always selected, {p['pool']} in the lottery, "
                                     f"{p['never_selected_positive']} positive claims (almost) never selected; "
                                     f"k'/k = {p['k_prime_rate']['estimate']:.3f}, n'/n = {p['pool_share']['estimate']:.3f}")
        ev["utility"] = r["utility"]
        return ev

    def _instance_tables_figures(self, r, j):
        inst = r["inst"]
        claims = np.asarray(inst.scores, dtype=float)
        tables, figs = {}, []
        counts = r["counts"]
        B = r["draws"]
        if r.get("deterministic"):
            n = len(claims)
            sel = counts > 0
            ucb = r["deviation_ucb"]
            order = np.argsort(claims, kind="stable")
            show = order[np.unique(np.linspace(0, n - 1, min(n, 200)).astype(int))]
            if r.get("excluded") is not None:
                show = np.unique(np.r_[show, r["excluded"]])
                show = show[np.argsort(claims[show], kind="stable")]
            est = sel.astype(float)
            callouts = []
            if r.get("excluded") is not None:
                i = r["excluded"]
                callouts.append({"x": float(claims[i]), "y": 0.0, "text": f"never selected: c={claims[i]:.3g}"})
            caption = (f"{_short(inst.label)}: deterministic — the same {r['k']} selected in all {B} draws (any other "
                       f"outcome has chance ≤ {ucb:.3f}), {r['n_excluded']} positive claims never selected; "
                       f"k'/k = 0, n'/n = 0.")
            figs.append({"kind": "scatter_ci", "title": f"Chance against claim — {_short(inst.label)} (deterministic)",
                         "caption": caption,
                         "x": claims[show].tolist(), "estimate": est[show].tolist(),
                         "lo": np.where(sel, 1 - ucb, 0.0)[show].tolist(), "hi": np.where(sel, 1.0, ucb)[show].tolist(),
                         "bands": claim_bands(claims, est, claims > 0), "callouts": callouts,
                         "line": {"x": claims[order][_line_idx(n)].tolist(),
                                  "y": r["ref"][order][_line_idx(n)].tolist(), "label": "Broome lottery (w ∝ c)"},
                         "xlabel": "claim", "ylabel": "chance of selection"})
            return tables, figs
        ind = r["ind"]
        if r["bins"] is not None:
            tables[f"bins_{j}"] = r["bins"]["table"]
        if r["first"] is not None:
            tables[f"first_round_{j}"] = r["first"]["table"]
        n = len(claims)
        if n <= INDIVIDUALS_TABLE_MAX:
            tables[f"individuals_{j}"] = pd.DataFrame({"individual": np.arange(n), "claim": claims, "selected": counts,
                                                       "chance": ind["est"], "chance_lo": ind["lo"],
                                                       "chance_hi": ind["hi"], "broome_chance": r["ref"]})
        order = np.argsort(claims, kind="stable")
        show = order[np.unique(np.linspace(0, n - 1, min(n, 200)).astype(int))]
        callouts = []
        rev = ind["reversal"]
        extra = []
        if rev["certified"] > 0 and rev.get("stronger") is not None:      # only a certified reversal is called out
            i = rev["stronger"]
            extra.append(i)
            callouts.append({"x": float(claims[i]), "y": float(ind["est"][i]),
                             "text": f"reversal: c={claims[i]:.3g} < c={claims[rev['weaker']]:.3g}"})
        b2 = ind["bf2"]
        if b2["excluded"]:
            i = b2["individual"]
            extra.append(i)
            callouts.append({"x": float(claims[i]), "y": float(ind["est"][i]),
                             "text": f"excluded: c={claims[i]:.3g}"})
        if r["components"].get("bf1_bins") == "fail" and not b2["excluded"]:
            p = r["bins"]["worst_pair"]
            t = r["bins"]["table"]
            y = float(t["chance"][int(p["stronger_bin"])])
            callouts.append({"x": float(p["claim_stronger"]), "y": y,
                             "text": f"no rise: c≈{p['claim_weaker']:.2g}→{p['claim_stronger']:.2g}"})
        show = np.unique(np.r_[show, np.array(extra, dtype=int)])
        show = show[np.argsort(claims[show], kind="stable")]
        bands = claim_bands(claims, ind["est"], claims > 0, never=r["partial"].get("_never_mask"))
        pr = self._partial_row(r, getattr(self, "_min_gain", 0.1))
        caption = (f"{_short(inst.label)}: {pr['reading']}; {pr['always']} almost always selected, "
                   f"{pr['pool']} randomised, {pr['never']} positive claims (almost) never selected "
                   f"(chance below {getattr(self, '_min_chance', 0.1):g} of the Broome lottery's); k'/k = {pr['k_prime_over_k']:.3f} {pr['k_prime_ci']}, "
                   f"n'/n = {pr['n_prime_over_n']:.3f} {pr['n_prime_ci']}.")
        figs.append({"kind": "scatter_ci", "title": f"Chance against claim — {_short(inst.label)}", "caption": caption,
                     "x": claims[show].tolist(), "estimate": ind["est"][show].tolist(), "lo": ind["lo"][show].tolist(),
                     "hi": ind["hi"][show].tolist(), "bands": bands, "callouts": callouts,
                     "line": {"x": claims[order][_line_idx(n)].tolist(),
                              "y": r["ref"][order][_line_idx(n)].tolist(), "label": "Broome lottery (w ∝ c)"},
                     "xlabel": "claim", "ylabel": "chance of selection (simultaneous intervals)"})
        return tables, figs

    # ------------------------------------------------------------------
    def _run_log(self, ctx, n_bins, min_gain, min_chance):
        log = ctx.log
        f = log.frame
        events = f.groupby("decision_id", sort=True)
        same_pool = False
        if "individual_id" in f.columns:
            keys = events.apply(lambda g: tuple(sorted(zip(g["individual_id"].astype(str), g["score"]))))
            same_pool = keys.nunique() == 1 and len(keys) > 1
        if same_pool:
            return self._log_same_pool(ctx, f, n_bins, min_gain, min_chance)
        return self._log_bins(ctx, f, n_bins, min_gain, min_chance)

    def _log_same_pool(self, ctx, f, n_bins, min_gain, min_chance):
        first_id = f["decision_id"].iloc[0]
        pool = f[f["decision_id"] == first_id].sort_values("individual_id")
        ids = pool["individual_id"].astype(str).tolist()
        pos = {v: i for i, v in enumerate(ids)}
        claims = pool["score"].to_numpy(dtype=float)
        rows = []
        has_order = "pick_order" in f.columns
        for _, g in f[f["selected"] == 1].groupby("decision_id", sort=True):
            if has_order:
                g = g.sort_values("pick_order")
            rows.append([pos[str(v)] for v in g["individual_id"]])
        ks = {len(r) for r in rows}
        if len(ks) != 1:
            return self._log_bins(ctx, f, n_bins, min_gain, min_chance)
        draws = np.array(rows, dtype=int)
        k = draws.shape[1]
        res = analyse(draws, claims, k, ctx.confidence, n_bins=n_bins, min_gain=min_gain, min_chance=min_chance,
                      pick_order="auto" if has_order else "no", labels=None)
        res["inst"] = Instance(f"{ctx.log.path or 'log'} (the same pool of {len(claims)} in {len(draws)} decisions)",
                               scores=claims, k=k)
        out = self._finish(ctx, [res], min_gain, min_chance)
        out.evidence["log_mode"] = "same pool repeated: each decision event is a draw of the allocator"
        for f in out.figures:    # the report says what the log allowed
            f["caption"] = (f"From the log: the same pool of {len(claims)} in all {len(draws)} decision events, so each "
                            f"event is a draw and individual chances{' and first-round weights' if has_order else ''} "
                            f"are estimated as for an allocator. " + f.get("caption", ""))
        return out

    def _log_bins(self, ctx, f, n_bins, min_gain, min_chance):
        claims = f["score"].to_numpy(dtype=float)
        sel = f["selected"].to_numpy().astype(int)
        # The Broome lottery's chance for each row, computed within its decision event.
        ref = np.zeros(len(f))
        for _, idx in f.groupby("decision_id", sort=True).indices.items():
            k_e = int(sel[idx].sum())
            if k_e > 0:
                ref[idx] = broome_reference(claims[idx], k_e)
        # at least LOG_ROWS_PER_BIN rows per bin: rates compared through the box of two independent
        # intervals are coarser than per-draw differences, so a log needs wider bins
        b = claim_bins(claims, min(n_bins, max(2, len(claims) // LOG_ROWS_PER_BIN)))
        G = int(b.max()) + 1
        n_b = np.bincount(b, minlength=G)
        s_b = np.bincount(b, weights=sel, minlength=G)
        cbar = np.bincount(b, weights=claims, minlength=G) / n_b
        rbar = np.bincount(b, weights=ref, minlength=G) / n_b
        alpha = ctx.alpha
        lo, hi, meth = simultaneous_proportion_ci(s_b, n_b, 1 - alpha / 2)
        rate = s_b / n_b
        gi, hj = np.triu_indices(G, 1)
        kn = sel.mean()
        refgain = rbar[hj] - rbar[gi]
        ok = (cbar[hj] > cbar[gi]) & (refgain > NOT_INFORMATIVE * kn)
        gi, hj, refgain = gi[ok], hj[ok], refgain[ok]
        table = pd.DataFrame({"bin": np.arange(G), "rows": n_b, "claim_mean": cbar, "selection_rate": rate,
                              "rate_lo": lo, "rate_hi": hi, "broome_rate": rbar})
        evidence = {"log_mode": "pools differ between decision events: selection rate per claim bin across all rows "
                                "(rows treated as independent trials), compared with the Broome lottery's rate computed "
                                "event by event; individual chances and first-round weights cannot be estimated",
                    "note": "Agreement of the chances with Broome-Fairness is necessary, not sufficient."}
        figures = [{"kind": "scatter_ci", "title": "Selection rate against claim (claim bins, from the log)",
                    "caption": "From the log: pools differ between decision events, so only the selection rate per "
                               "claim bin (all rows) can be compared with the Broome lottery's rate; individual chances "
                               "and first-round weights cannot be estimated.",
                    "x": cbar.tolist(), "estimate": rate.tolist(), "lo": lo.tolist(), "hi": hi.tolist(),
                    "line": {"x": cbar.tolist(), "y": rbar.tolist(), "label": "Broome lottery (w ∝ c)"},
                    "xlabel": "claim (bin mean)", "ylabel": "selection rate"}]
        # BF.2 across bins: a bin of positive claims never selected with rate certified below min_chance of Broome's.
        excl = np.flatnonzero((cbar > 0) & (rbar > 0) & (hi < min_chance * rbar))
        if len(excl):
            g = int(excl[np.argmax(rbar[excl])])
            stat = Statistic("min_chance_ratio", float(rate[g] / rbar[g]), (float(lo[g] / rbar[g]), float(hi[g] / rbar[g])),
                             tolerance=min_chance, method=meth, violation="below")
            msg = (f"BF.2 violated in the log: claims {table['claim_mean'][g]:.3g} on average (bin {g}) were selected "
                   f"{int(s_b[g])} times in {int(n_b[g])} rows, rate ≤ {hi[g]:.3g}, below {min_chance:g} of the Broome "
                   f"lottery's {rbar[g]:.3g}.")
            return self.judged(stat, {"fail": msg}, len(f), from_log=True, evidence=evidence, tables={"bins": table},
                               figures=figures, method=meth)
        if len(gi) == 0:
            return self.result("inconclusive", "The log's claims do not spread over enough bins to test whether "
                               "selection rates rise with claims.", draws=len(f), evidence=evidence,
                               tables={"bins": table}, figures=figures)
        r = (rate[hj] - rate[gi]) / refgain
        rlo = (lo[hj] - hi[gi]) / refgain
        rhi = (hi[hj] - lo[gi]) / refgain
        stat = Statistic("min_gain_ratio", float(r.min()), (float(rlo.min()), float(rhi.min())), tolerance=min_gain,
                         method=meth + " (box of simultaneous intervals)", violation="below")
        j = int(np.argmin(rhi))
        msgs = {"fail": f"Selection rates in the log do not rise with claims: claims ≈{cbar[hj[j]]:.3g} are selected at "
                        f"{rate[hj[j]]:.3f} vs {rate[gi[j]]:.3f} for claims ≈{cbar[gi[j]]:.3g}, at most {rhi[j]:.2f} of "
                        f"the Broome lottery's gain (tolerance {min_gain:g}).",
                "pass": f"Selection rates in the log rise with claims across {G} claim bins, by at least "
                        f"{rlo.min():.2f} of the Broome lottery's gain; no bin of positive claims is excluded.",
                "inconclusive": f"The log is too small to tell whether selection rates rise with claims by at least "
                                f"{min_gain:g} of the Broome lottery's gain."}
        return self.judged(stat, msgs, len(f), from_log=True, evidence=evidence, tables={"bins": table},
                           figures=figures, method=stat.method)


def _line_idx(n: int) -> np.ndarray:
    """At most ~400 evenly spaced points of a claim-sorted curve, the last one included."""
    return np.unique(np.r_[np.arange(0, n, max(1, n // 400)), n - 1])


def _short(label: str) -> str:
    """A figure title's instance name: a data file's base name, else the label."""
    import os
    return os.path.basename(label) if os.sep in label else label


def cx_individuals(cx: dict) -> list[int]:
    """The individuals a counterexample names (for the replay command)."""
    for key in ("individual", "stronger", "individuals"):
        if key in cx:
            v = cx[key]
            out = list(v) if isinstance(v, list) else [v]
            if key == "stronger":
                out.append(cx["weaker"])
            return out
    return []


def _t_interval(x, confidence):
    """Student-t interval for the mean of i.i.d. replicates (each replicate's SER is a
    mean over n individuals, so the CLT is accurate); exact when there is no variation."""
    from scipy import stats as st
    x = np.asarray(x, dtype=float)
    m = float(x.mean())
    if len(x) < 2 or np.all(x == x[0]):
        return m, m, m
    h = st.t.ppf(1 - (1 - confidence) / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return m, max(0.0, m - h), min(1.0, m + h)


def _replay(inst: Instance, ctx, stream: str, draws: int, who) -> str:
    """A ``python -c`` command that redraws the same outcomes and prints, for the named
    individuals, their claims and how often each was selected."""
    code = getattr(inst, "_claims_code", None)
    if code is None:
        pop = ctx.population
        if pop is not None and pop.path:
            code = f"load_population({pop.path!r}).scores"
        else:
            code = "np.array([" + ", ".join(f"{c:.17g}" for c in np.asarray(inst.scores)) + "])"
    path = ctx.target.path if ctx.target is not None else "ALLOCATOR.py"
    who = [int(w) for w in who]
    return ("python -c \"import numpy as np; from fairaudit.engine import AuditConfig, AuditContext; "
            "from fairaudit.data import generate_claims, load_population; from fairaudit.targets import Instance, "
            "load_target; from fairaudit.sampler import Sampler, inclusion_counts; "
            f"c = {code}; d = Sampler(load_target({path!r}), {ctx.config.seed}).draw(Instance('replay', scores=c, "
            f"k={inst.k}), {draws}, {stream!r}); i = {who}; print('claims', c[i], 'selected', "
            f"inclusion_counts(d, len(c))[i], 'of', len(d))\"")


# ---------------------------------------------------------------------------
# Systemic exclusion (Def 4.4)
# ---------------------------------------------------------------------------

class SystemicExclusion(Check):
    id = "systemic_exclusion"
    title = "Systemic exclusion rate"
    summary = "Share of people rejected by all m decision-makers (seed 000, Def 4.4), next to deterministic top-k."
    definition = ("The systemic exclusion rate is the share of individuals who receive a negative outcome from every "
                  "one of m decision-makers (m independent runs of the allocator, or several allocators, each "
                  "seeing the claims with its own noise). Deterministic top-k excludes everyone below its cut every time; randomising in "
                  "proportion to claims spreads the chances. The check reports the rate with its interval next to "
                  "top-k's on the same claims and noise, and asks for a reduction of at least a set fraction.")
    kinds = ("selection",)
    sources = ("allocator",)
    default = False
    params = {
        "instances": Param("uniform:1000:0.25", "without --data: claim instances distribution:n:k_over_n",
            parse=Param.claim_instances),
        "m": Param(3, "number of decision-makers (independent runs)", type=int, min=1),
        "sigma": Param(0.025, "each decision-maker sees claims + N(0, sigma²) noise (seed 000 §4.1.1), clipped at 0",
            type=float, min=0),
        "replicates": Param(50, "replicates of the m runs (with noise each is m allocator calls on fresh noisy claims)",
            type=int, min=2),
        "min_reduction": Param(0.1, "least relative reduction of the exclusion rate against top-k", type=float, max=1),
        "others": Param("", "more decision-makers: comma-separated allocator files; then m = 1 + their number",
            parse=Param.csv_of(min_items=0, what="allocator files")),
    }

    def run(self, ctx, instances, m, sigma, replicates, min_reduction, others):
        from fairaudit.sampler import Sampler
        from fairaudit.targets import load_target
        other_paths = [p.strip() for p in str(others or "").split(",") if p.strip()]
        if other_paths:
            makers = [ctx.sampler] + [Sampler(load_target(p), ctx.config.seed, timeout=ctx.config.timeout)
                                      for p in other_paths]
            m = len(makers)
        else:
            makers = [ctx.sampler] * int(m)
        insts = build_instances(ctx, instances, self.id)
        conf = 1 - ctx.alpha / len(insts)
        rows, per = [], []
        for j, inst in enumerate(insts):
            claims = np.asarray(inst.scores, dtype=float)
            n = len(claims)
            k = int(ctx.target.effective_k(inst) or ctx.selection_k(n))
            inst = inst.replace(k=k)
            rng = ctx.rng(f"{self.id}/noise/{j}")
            R = int(replicates)
            noisy = np.clip(claims[None, None, :] + sigma * rng.standard_normal((R, m, n)), 0, None) if sigma > 0 else None
            excl = np.ones((R, n), dtype=bool)
            excl_top = np.ones((R, n), dtype=bool)
            if noisy is None:
                for jj, smp in enumerate(makers):
                    d = smp.draw(inst, R, f"{self.id}/{j}/dm{jj}")
                    excl[np.arange(R)[:, None], d] = False
                top = np.argsort(-claims, kind="stable")[:k]
                excl_top[:, top] = False
            else:
                for jj, smp in enumerate(makers):
                    # one decision-maker per noise draw: its own claims, one outcome per replicate
                    for r in range(R):
                        d = smp.draw(inst.replace(scores=noisy[r, jj], label=f"{inst.label}, noisy claims"),
                                     1, f"{self.id}/{j}/dm{jj}/{r}")
                        excl[r, d[0]] = False
                    top = np.argsort(-noisy[:, jj, :], axis=1, kind="stable")[:, :k]
                    excl_top[np.arange(R)[:, None], top] = False
            ser_r = excl.mean(axis=1)
            top_r = excl_top.mean(axis=1)
            diff = top_r - ser_r
            ser, s_lo, s_hi = _t_interval(ser_r, 1 - (1 - conf) / 2)
            tser, t_lo, t_hi = _t_interval(top_r, 1 - (1 - conf) / 2)
            # reduction = 1 − SER/SER_top, interval from the box of the two intervals
            red = 1 - ser / tser if tser > 0 else 0.0
            red_lo = 1 - s_hi / t_lo if t_lo > 0 else -np.inf
            red_hi = 1 - s_lo / t_hi if t_hi > 0 else 1.0
            if np.all(diff == 0):   # the allocator excludes exactly whom top-k excludes
                red_lo = red_hi = red = 0.0
            rows.append({"instance": inst.label, "m": m, "sigma": sigma, "replicates": R, "ser": ser, "ser_lo": s_lo,
                         "ser_hi": s_hi, "top_k_ser": tser, "top_k_lo": t_lo, "top_k_hi": t_hi,
                         "reduction": red, "reduction_lo": red_lo, "reduction_hi": red_hi})
            per.append((red, red_lo, red_hi))
        table = pd.DataFrame(rows)
        i = int(np.argmin([p[2] for p in per]))
        stat = Statistic("ser_reduction_vs_top_k", float(min(p[0] for p in per)),
                         (float(min(p[1] for p in per)), float(min(p[2] for p in per))), tolerance=min_reduction,
                         method=f"Student-t over {int(replicates)} replicates (each a mean over n individuals), "
                                f"bonferroni over 2·{len(insts)}; ratio from the box of both intervals",
                         violation="below")
        w = rows[i]
        msgs = {"fail": f"Systemic exclusion on {w['instance']}: {w['ser']:.3f} of individuals are rejected by all {m} "
                        f"decision-makers vs {w['top_k_ser']:.3f} under top-k — a reduction of {w['reduction']:.2f} "
                        f"[{w['reduction_lo']:.2f}, {w['reduction_hi']:.2f}], short of {min_reduction:g}; "
                        f"randomise more of the allocation.",
                "pass": f"Randomisation cuts systemic exclusion: {w['ser']:.3f} rejected by all {m} decision-makers vs "
                        f"{w['top_k_ser']:.3f} under top-k (reduction ≥ {w['reduction_lo']:.2f}).",
                "inconclusive": f"Cannot yet tell whether systemic exclusion ({w['ser']:.3f}) is at least "
                                f"{min_reduction:g} below top-k's ({w['top_k_ser']:.3f})."}
        figures = [{"kind": "interval_bars", "title": f"Systemic exclusion rate across {m} decision-makers",
                    "labels": [f"{r['instance']} — allocator" for r in rows] + [f"{r['instance']} — top-k" for r in rows],
                    "estimate": [r["ser"] for r in rows] + [r["top_k_ser"] for r in rows],
                    "lo": [r["ser_lo"] for r in rows] + [r["top_k_lo"] for r in rows],
                    "hi": [r["ser_hi"] for r in rows] + [r["top_k_hi"] for r in rows],
                    "highlight": [False] * len(rows) + [True] * len(rows), "xlabel": "systemic exclusion rate"}]
        return self.judged(stat, msgs, sum(r["replicates"] * m for r in rows), evidence={"instances": rows},
                           tables={"ser": table}, figures=figures, method=stat.method)
