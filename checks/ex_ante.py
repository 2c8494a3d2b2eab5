"""``ex_ante``: ex-ante fairness across populations (Kearns, Roth and Wu, Def 2.1); see the class docstring."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fairaudit.check import Check, Param
from fairaudit.inputs import pools_skip_reason, simulated_pools
from fairaudit.outcomes import inclusion_counts
from fairaudit.populations import (QUALITY_COLUMN, SETUPS)
from fairaudit.result import Statistic, decide


class ExAnte(Check):
    """Ex-ante fairness (Kearns, Roth and Wu, Def 2.1): over the random pool as well as the coins,
    a candidate of higher true quality has at least the expected chance of one of lower
    quality, whatever their populations.

    Estimation. Let ``h_j(q)`` be the expected chance of a candidate of population j
    with quality q. True CDF values are Uniform(0, 1) in every population, so within a
    quality bin the qualities are uniform for every population alike; if ``h`` is
    ex-ante fair (and monotone), the bin averages ``g_j(b)`` are equal across
    populations in the same bin and non-decreasing across bins. The statistic is the
    largest *reversal* ``g_{j'}(b') − g_j(b)`` over cells with ``b' < b``, or ``b' = b``
    and ``j' ≠ j`` (0 when fair).

    Each of ``pools`` fresh pools is drawn ``draws`` times; a cell's estimate is the
    ratio estimator Σ chances / Σ candidates over pools, with a cluster-robust
    (linearised) standard error over pools — pools are the independent units — and a
    normal interval, Bonferroni over cells (standard errors floored at a tenth of the
    Bernoulli worst case, so an all-zero cell does not get a zero-width interval). The
    reversal's interval is the image of that simultaneous box. Decision (SPEC silent):
    20 bins, tolerance 0.03, 5000 pools of the paper's size — enough to detect GREEDY's
    ex-ante unfairness with unequal population sizes (its bin averages at true CDF
    0.90–0.95 differ by 0.078 between populations of sizes 100 and 50, computed exactly);
    with equal sizes GREEDY is ex-ante fair (Lemma 2.8). Selection within a pool is
    correlated (whether a candidate at 0.92 is taken depends on how many of its
    population beat it), so the cluster-robust errors are ≈ 1.6× the binomial ones and,
    over 40 cells, the reversal's interval is ≈ ±0.05 at 2000 pools: GREEDY then failed
    on only 3 of 8 seeds (the rest inconclusive). At 5000 pools (≈ ±0.032) it failed on
    16 of 16 (lower bounds 0.040–0.051), at ≈ 2.5× the time (≈ 3 s).
    Needs the simulator (skipped with data).
    """

    id = "ex_ante"
    # -- words for readers (the report and the terminal read these from the registry) --
    statistic_labels = {
        'max_ex_ante_reversal': 'largest ex-ante reversal',
    }
    headlines = {
        'max_ex_ante_reversal': ("A population's expected chance is reversed against its quality by {est}",
                                 'the tolerance {tol}'),
    }
    column_labels = {
        'candidates': 'candidates',
    }
    data_needs = ('built-in cross-population pools (data files are not used)',
                  'fairaudit check my_allocator.py --checks ex_ante')
    title = "Ex-ante fairness across populations"
    summary = "Ex-ante fairness (Kearns–Roth–Wu Def 2.1): expected chance rises with true quality across populations."
    definition = ("Averaging over the random pool as well as the allocator's coins, a candidate of higher true "
                  "quality (CDF value within their own population) must have at least the expected selection chance "
                  "of one of lower quality, in any population. Expected chances are estimated per population and "
                  "quality bin; the statistic is the largest reversal between a lower-or-equal quality bin and a "
                  "higher one (0 when fair).")
    kinds = ("selection",)
    sources = ("allocator",)
    table_titles = {
        "cells": "Expected chance per population and quality bin",
    }
    default = False
    params = {
        "tolerance": Param(0.03, "largest acceptable reversal of expected chances", type=float, min=0, max=1),
        "bins": Param(20, "quality bins", type=int, min=2),
        "setup": Param("paper", f"simulator setup ({', '.join(SETUPS)}, or none)", choices=(*SETUPS, "none", "off")),
        "n": Param(150, "simulated pool size (the paper's §7: 100 + 50, k = 15)", type=int, min=2),
        "ratio": Param("2,1", "simulated population size ratio (d = number of entries)",
            parse=Param.numbers(min=0, min_open=True, min_items=1, what="population sizes")),
        "pools": Param(5000, "simulated pools", type=int, min=1),
        "draws": Param(8, "draws per pool", type=int, min=1),
        "quality": Param(QUALITY_COLUMN, "(unused: ex-ante needs the simulator)", type=str),
    }

    def skip_reason(self, ctx):
        p = self.resolved_params(ctx.config.params.get(self.id))
        return pools_skip_reason(ctx, p["quality"], p["setup"], allow_data=False)

    @staticmethod
    def _add_pool(r, spec, dr, bins, C, S, N):
        pi = inclusion_counts(dr, spec.n) / len(dr)
        cell = spec.population * bins + np.minimum((spec.quality * bins).astype(int), bins - 1)
        S[r] = np.bincount(cell, weights=pi, minlength=C)
        N[r] = np.bincount(cell, minlength=C)

    def run(self, ctx, tolerance, bins, setup, n, ratio, pools, draws, quality):
        from scipy import stats as st
        bins = int(bins)
        specs = simulated_pools(ctx, setup, n, pools, self.id, ratio)
        names = specs[0].names
        d = len(names)
        C = d * bins
        R = len(specs)
        B = ctx.max_draws(draws)
        S = np.zeros((R, C))
        N = np.zeros((R, C))
        # the pools' draws in batches of requests (one round trip to the workers per batch,
        # not per pool; the same draws as one request per pool)
        batch = 256
        for r0 in range(0, R, batch):
            ctx.step("pool", r0 + 1, R)
            got = ctx.sampler.draw_streams([(spec.inst, f"{self.id}/pool/{spec.index}", 0, B)
                                            for spec in specs[r0:r0 + batch]])
            for r, spec, dr in zip(range(r0, r0 + batch), specs[r0:r0 + batch], got):
                self._add_pool(r, spec, dr, bins, C, S, N)
        tot_n = N.sum(axis=0)
        present = tot_n > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.where(present, S.sum(axis=0) / np.maximum(tot_n, 1), np.nan)
            resid = S - np.nan_to_num(g)[None, :] * N
            se = np.sqrt(R / max(R - 1, 1) * (resid ** 2).sum(axis=0)) / np.maximum(tot_n, 1)
        se = np.maximum(se, np.sqrt(0.25 / np.maximum(tot_n, 1)) / 10)
        m = int(present.sum())
        z = st.norm.ppf(1 - ctx.alpha / (2 * max(m, 1)))
        lo, hi = np.clip(g - z * se, 0, 1), np.clip(g + z * se, 0, 1)
        pop_of, bin_of = np.repeat(np.arange(d), bins), np.tile(np.arange(bins), d)
        u, v = np.meshgrid(np.arange(C), np.arange(C), indexing="ij")    # u: higher-or-equal quality, v: lower
        mask = ((bin_of[v] < bin_of[u]) | ((bin_of[v] == bin_of[u]) & (pop_of[v] != pop_of[u]))) \
            & present[u] & present[v]
        est_m = np.where(mask, g[v] - g[u], -np.inf)
        low_m = np.where(mask, lo[v] - hi[u], -np.inf)
        up_m = np.where(mask, hi[v] - lo[u], -np.inf)
        est, low, up = float(est_m.max()), float(low_m.max()), float(up_m.max())
        pick = np.unravel_index(np.argmax(low_m if low > tolerance else est_m), est_m.shape)
        cu, cv = int(u[pick]), int(v[pick])
        stat = Statistic("max_ex_ante_reversal", est, (low, max(up, est)), tolerance=float(tolerance),
                         method=(f"ratio estimator per (population, quality bin) over {R} pools × {B} draws, "
                                 f"cluster-robust normal intervals, bonferroni over {m} cells"),
                         violation="above")

        def cell_txt(c):
            b = bin_of[c]
            return (f"population {names[pop_of[c]]} with true CDF in [{b / bins:.2f}, {(b + 1) / bins:.2f}) "
                    f"(expected chance {g[c]:.3f} [{lo[c]:.3f}, {hi[c]:.3f}])")

        pair = f"{cell_txt(cv)} vs {cell_txt(cu)}"
        msgs = {"fail": f"Ex-ante unfair: {pair} — the lower-or-equal quality side gets more by {est:.3f}, above "
                        f"the tolerated {tolerance:g}.",
                "pass": f"Expected chances rise with true quality across populations to within {tolerance:g}; the "
                        f"largest reversal is {est:.3f} ({pair}).",
                "inconclusive": f"The largest reversal, {est:.3f} ({pair}), cannot yet be placed against "
                                f"{tolerance:g}; more pools (--param ex_ante.pools=N) would narrow it."}
        table = pd.DataFrame({"population": [names[j] for j in pop_of], "bin_lo": bin_of / bins,
                              "bin_hi": (bin_of + 1) / bins, "candidates": tot_n.astype(int), "chance": g,
                              "lo": lo, "hi": hi})
        centers = ((np.arange(bins) + 0.5) / bins).tolist()
        fig = {"kind": "lines", "title": "Expected chance by true quality, per population (ex-ante)",
               "series": [{"x": centers, "y": g[j * bins:(j + 1) * bins].tolist(),
                           "lo": lo[j * bins:(j + 1) * bins].tolist(), "hi": hi[j * bins:(j + 1) * bins].tolist(),
                           "label": f"population {names[j]}"} for j in range(d)],
               "xlabel": "true CDF value (bin centre)", "ylabel": "expected selection chance",
               # the largest reversal's two cells, circled: lower-or-equal quality vs higher quality
               "points": [{"x": centers[bin_of[c]], "y": float(g[c]), "label": f"{side} ({names[pop_of[c]]})"}
                          for c, side in ((cv, "lower/equal quality"), (cu, "higher quality"))]}
        evidence = {"pools": R, "draws_per_pool": B, "bins": bins,
                    "counterexample": {"lower_or_equal_quality": {"population": names[pop_of[cv]],
                                                                  "quality_bin": [bin_of[cv] / bins, (bin_of[cv] + 1) / bins],
                                                                  "chance": g[cv], "ci": [lo[cv], hi[cv]]},
                                       "higher_quality": {"population": names[pop_of[cu]],
                                                          "quality_bin": [bin_of[cu] / bins, (bin_of[cu] + 1) / bins],
                                                          "chance": g[cu], "ci": [lo[cu], hi[cu]]}}}
        verdict = decide(stat.ci, stat.tolerance, stat.violation)
        msg = msgs[verdict]
        if verdict == "inconclusive" and est < tolerance and up > est:
            need = int(math.ceil(R * ((up - est) / (tolerance - est)) ** 2 * 1.2))
            msg = msg.replace("more pools (--param ex_ante.pools=N)", f"roughly {need:,} pools (--param ex_ante.pools={need})")
        return self.result(verdict, msg, statistic=stat, draws=R * B, evidence=evidence, tables={"cells": table},
                           figures=[fig], method=stat.method)
