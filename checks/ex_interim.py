"""``ex_interim``: meritocratic fairness across populations (Kearns, Roth and Wu
Def 2.3; SPEC §3). The extras ``ex_post`` (Def 2.5) and ``ex_ante`` (Def 2.1) have
modules of their own and share the pools built here (:mod:`fairaudit.inputs`).

Where pools and qualities come from
    A candidate's quality is its *true* CDF value within its own population. Either the
    ``--data`` file has a quality column (param ``quality``, default ``quality``) and a
    population column (param ``population``; else the first group column), optionally
    a ``pool`` column splitting it into several pools; or, without ``--data``, the
    cross-population simulator (:mod:`fairaudit.populations`, param ``setup``) draws
    fresh pools. Data without a quality column → ``skipped`` with the reason (set
    ``setup=none`` to also skip when there is no data). The allocator sees ``scores``,
    ``k`` and ``groups`` (a DataFrame with the population column) — never the quality.

``ex_interim`` per pool
    Sequential draws; chances ``π_i`` get anytime-valid beta-binomial confidence
    sequences, Bonferroni over the pool's n candidates, at ``pool_alpha`` (at α when
    there is a single pool). ε̂, its certified lower/upper bounds and the attaining
    pairs come from :func:`fairaudit.populations.epsilon_hat` (O(n log n)). A pool
    *violates* when the lower bound exceeds ε, *satisfies* when the upper bound is ≤ ε;
    sampling of a pool stops as soon as one holds (or at ``max_draws``).

``ex_interim`` over pools (decision; SPEC §3 leaves the error split open)
    Pools are i.i.d. draws of X. Let V⁻ = #certified violating, V⁺ = #not certified
    satisfying. A truly violating pool is certified satisfying with probability ≤ α_p
    and a fair pool certified violating with probability ≤ α_p (α_p = ``pool_alpha``),
    so with p = P_X(pool violates):  E[V⁻/R] ≤ p + α_p  and  E[V⁺/R] ≥ p (1 − α_p).
    The interval on p is ``[(CP_lo(V⁻) − α_p)/(1 − α_p), CP_hi(V⁺)/(1 − α_p)]`` with
    Clopper–Pearson at 1 − α: no Bonferroni over pools is needed, the per-pool error
    is absorbed as a bias. Fail if it lies above δ, pass if at or below δ. With a single
    pool (data) the statistic is ε̂ itself with its certified interval against ε.

Power and defaults (documented decision)
    A uniform lottery has every π = k/n; certifying ε̂ ≤ 0.1 means certifying every π
    to within ≈ ±3% relative, simultaneously: for π = 0.1 that takes ≈ 2.6·10⁵ draws
    per pool. With δ = 0.1 at 95% even a perfect record needs ≥ 36 pools. Defaults:
    pools of n = 30 (m = 20 : 10, k = 3 — the paper's 2:1 ratio and k = 10% of n),
    R = 40 pools, ``max_draws`` = 2¹⁸ = 262,144 per pool, α_p = 0.01. The uniform
    lottery then passes at ε = 0.1 (seed 0: every pool certified, ≈ 20 s of CPU);
    unfair allocators stop after a few hundred draws per pool. A pool in which someone
    is never selected in 4,096 draws stops as undecided (futility): a multiplicative
    bound against a chance that small cannot be certified, so a deterministic allocator
    can fail this check but never pass it. Larger pools (``n=150``, the paper's Figure 1) need
    proportionally more draws to *pass*; failing is cheap at any size.

Regret (reported, not judged): per pool the loss ``L = (1/k) Σ π_i (1 − F_i)`` with an
anytime-valid empirical-Bernstein interval over draws; over pools the mean loss, regret
``E[L] − k/(2n)`` and regret against the true top k, with bootstrap (BCa) intervals
over pools.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fairaudit.check import Check, Param
from fairaudit.inputs import audit_pools, pools_skip_reason
from fairaudit.outcomes import inclusion_counts
from fairaudit.populations import (POPULATION_COLUMN, QUALITY_COLUMN, SETUPS, epsilon_hat, optimal_loss)
from fairaudit.draw_records import pool_replay_command
from fairaudit.result import Statistic, decide
from fairaudit.stats import (beta_binomial_cs, bootstrap_ci, eb_confidence_sequence, per_member_confidence,
                             proportion_ci)

FUTILITY_DRAWS = 4096   # stop a pool whose upper bound is ∞ because someone was never selected
CAP = 6.0   # ε̂ values above this (including ∞) are drawn at the cap in figures


class ExInterim(Check):
    id = "ex_interim"
    # -- words for readers (the report and the terminal read these from the registry) --
    statistic_labels = {
        'violation_rate': 'share of pools with a violation',
        'epsilon_hat': 'estimated ε (ε̂)',
    }
    headlines = {
        'violation_rate': ("In {est} of the pools, a better candidate's chance falls below a worse one's by more than the factor e^ε allows",
                           'the allowed share {tol}'),
    }
    column_labels = {
        'better_b': 'B has the better quality',
        'chance_a': 'chance of A',
        'chance_b': 'chance of B',
        'eps_hat': 'estimated ε (ε̂)',
        'eps_lower': 'ε̂ lower bound',
        'eps_upper': 'ε̂ upper bound',
        'loss': 'loss',
        'quality_a': 'quality of A',
        'quality_b': 'quality of B',
        'regret_vs_k_2n': 'regret vs k/2n',
        'regret_vs_top_k': 'regret vs top-k',
        'worse_a': 'A has the worse quality',
    }
    data_needs = ("built-in cross-population pools, or --data FILE with a 'quality' column (true CDF value within the candidate's population)",
                  'fairaudit check my_allocator.py --checks ex_interim')
    title = "ε-ex-interim fairness across populations"
    summary = ("Approximate ex-interim fairness (Kearns–Roth–Wu Def 2.3): no worse candidate gets more than "
               "e^ε times a better one's chance, on ≥ 1−δ of pools; with regret.")
    definition = ("Candidates come from several populations whose raw scores are not comparable; a candidate's "
                  "quality is their true CDF value within their own population. Given the realised pool, an "
                  "allocator is ε-ex-interim fair if no candidate is given more than e^ε times the selection "
                  "chance of a candidate of higher quality; (ε, δ)-fair if this holds on all but a fraction δ of "
                  "pools. ε̂ is the log of the largest such chance ratio in a pool (the paper's 'unfairness ratio' "
                  "is e^ε̂); ε = 0 is exact fairness, which only the uniform lottery achieves.")
    kinds = ("selection",)
    sources = ("allocator",)
    table_titles = {
        "pools": "Pools: estimated ε and the worst pair of candidates",
        "regret": "Loss and regret per pool",
    }
    params = {
        "epsilon": Param(0.1, "ε: allowed log chance ratio (multiplicative, as in differential privacy)",
            type=float, min=0),
        "delta": Param(0.1, "δ: allowed fraction of violating pools", type=float, min=0, max=1),
        "additive": Param(False, "use the additive variant A_a ≤ A_b + ε (NOT the paper's definition)", type=bool),
        "quality": Param(QUALITY_COLUMN, "data column with the true CDF value of each candidate", type=str),
        "population": Param(POPULATION_COLUMN, "data column naming each candidate's population", type=str),
        "setup": Param("paper", f"simulator setup when there is no --data ({', '.join(SETUPS)}, or none)",
            choices=(*SETUPS, "none", "off")),
        "n": Param(30, "simulated pool size (populations 2:1, k = 10% of n)", type=int, min=2),
        "ratio": Param("2,1", "simulated population size ratio (d = number of entries)",
            parse=Param.numbers(min=0, min_open=True, min_items=1, what="population sizes")),
        "pools": Param(40, "number of simulated pools", type=int, min=1),
        "pool_alpha": Param(0.01, "per-pool error α_p (misclassification allowance; see the method)",
            type=float, min=0, max=1, min_open=True, max_open=True),
        "max_draws": Param(262144, "draws per pool at most (sequential; stops once the pool is decided)",
            type=int, min=1),
    }

    def skip_reason(self, ctx):
        p = self.resolved_params(ctx.config.params.get(self.id))
        return pools_skip_reason(ctx, p["quality"], p["setup"])

    def run(self, ctx, epsilon, delta, additive, quality, population, setup, n, ratio, pools, pool_alpha, max_draws):
        additive = _as_bool(additive)
        specs, source = audit_pools(ctx, quality, population, setup, n, pools, self.id, ratio)
        R = len(specs)
        a_pool = float(pool_alpha) if R > 1 else ctx.alpha
        limit = ctx.max_draws(max_draws)
        rows, per_pool = [], []
        for i, spec in enumerate(specs):
            ctx.step("pool", i + 1, len(specs))
            res = self._pool(ctx, spec, epsilon, additive, a_pool, limit)
            per_pool.append(res)
            rows.append(res["row"])
        table = pd.DataFrame(rows)
        draws = int(table["draws"].sum())
        status = table["status"].to_numpy()
        v_lo = int((status == "violates").sum())
        v_hi = int((status != "satisfies").sum())
        v_pt = int((table["eps_hat"] > epsilon).sum())
        kind = "additive (not the paper's)" if additive else "multiplicative"
        box = (f"beta-binomial confidence sequences (anytime-valid), bonferroni over each pool's candidates "
               f"at α_p={a_pool:g}")
        if R == 1:
            r0 = per_pool[0]
            stat = Statistic("epsilon_hat", r0["eh"].estimate, (r0["eh"].lower, r0["eh"].upper), tolerance=float(epsilon),
                             method=f"certified ε̂ bounds ({kind}) from {box}", violation="above")
        else:
            lo_cp, _ = proportion_ci(v_lo, R, ctx.confidence)
            _, hi_cp = proportion_ci(v_hi, R, ctx.confidence)
            lo = max(0.0, (lo_cp - a_pool) / (1 - a_pool))
            hi = min(1.0, hi_cp / (1 - a_pool))
            stat = Statistic("violation_rate", v_pt / R, (lo, hi), tolerance=float(delta),
                             method=(f"clopper-pearson over {R} pools on certified-violating / not-certified-"
                                     f"satisfying counts, corrected for per-pool error α_p={a_pool:g}; per pool: certified "
                                 f"ε̂ bounds ({kind}) from {box}"),
                             violation="above")
        evidence, figures, regret_table = self._evidence(ctx, specs, per_pool, table, epsilon, additive, source,
                                                         setup, n, v_lo, v_hi, R, ratio)
        msgs = self._messages(per_pool, table, epsilon, delta, v_lo, v_hi, R, additive)
        tables = {"pools": table, "regret": regret_table}
        if R == 1:
            return self.judged(stat, msgs, draws, evidence=evidence, tables=tables, figures=figures,
                               method=stat.method)
        # Over pools the draws hint of `judged` would mislead (pools, not draws, may be short).
        verdict = decide(stat.ci, stat.tolerance, stat.violation)
        msg = msgs[verdict]
        if verdict == "inconclusive":
            r_min = _pools_to_pass(delta, a_pool, ctx.confidence)
            if v_hi > v_lo:
                msg += f" Undecided pools need more draws (--param {self.id}.max_draws=N, now {limit:,})."
            if R < r_min:
                how = f"--param {self.id}.pools={r_min}" if source == "simulator" else "in the data"
                msg += f" Passing at δ = {delta:g} needs at least {r_min} pools ({how})."
        return self.result(verdict, msg, statistic=stat, draws=draws, evidence=evidence, tables=tables,
                           figures=figures, method=stat.method)

    # -- one pool ------------------------------------------------------------
    def _pool(self, ctx, spec, epsilon, additive, a_pool, limit):
        n, k = spec.n, spec.k
        conf = per_member_confidence(1 - a_pool, n)

        def bounds(draws):
            c = inclusion_counts(draws, n)
            B = len(draws)
            lo, hi = beta_binomial_cs(c, B, conf, iters=42)  # 2^-42 precision is plenty
            pi = c / B
            return pi, np.minimum(lo, pi), np.maximum(hi, pi)

        def decided(draws):
            pi, lo, hi = bounds(draws)
            eh = epsilon_hat(pi, spec.quality, lo, hi, additive=additive)
            if eh.lower > epsilon or eh.upper <= epsilon:
                return True
            # Futility (the sequences stay valid at any stopping time): a candidate never
            # selected in FUTILITY_DRAWS draws makes the multiplicative upper bound infinite
            # against anyone of lower quality, and more draws will not make it finite.
            return (not additive and len(draws) >= FUTILITY_DRAWS and not np.isfinite(eh.upper)
                    and bool((pi[np.asarray(eh.pair_upper)] == 0).any()))

        stream = f"{self.id}/pool/{spec.index}"
        draws = ctx.sampler.sample_until(spec.inst, stream, decided, limit)
        pi, lo, hi = bounds(draws)
        eh = epsilon_hat(pi, spec.quality, lo, hi, additive=additive)
        status = "violates" if eh.lower > epsilon else ("satisfies" if eh.upper <= epsilon else "undecided")
        # Loss per draw: mean CCDF of the selected; anytime-valid interval (draws were sequential).
        per_draw = (1.0 - spec.quality[draws]).mean(axis=1)
        l_lo, l_hi = eb_confidence_sequence(per_draw, 1 - a_pool)
        L = float(per_draw.mean())
        Lopt = optimal_loss(spec.quality, k)
        a, b = eh.pair_lower if status == "violates" else eh.pair
        row = {"pool": spec.index, "n": n, "k": k, "draws": len(draws), "eps_hat": eh.estimate,
               "eps_lower": eh.lower, "eps_upper": eh.upper, "status": status,
               "worse_a": a, "better_b": b,
               "quality_a": spec.quality[a] if a >= 0 else np.nan, "quality_b": spec.quality[b] if b >= 0 else np.nan,
               "chance_a": pi[a] if a >= 0 else np.nan, "chance_b": pi[b] if b >= 0 else np.nan,
               "loss": L, "loss_lo": l_lo, "loss_hi": l_hi, "regret_vs_k_2n": L - k / (2 * n),
               "regret_vs_top_k": L - Lopt}
        return {"row": row, "eh": eh, "pi": pi, "lo": lo, "hi": hi, "spec": spec, "status": status}

    # -- report ------------------------------------------------------------------
    def _evidence(self, ctx, specs, per_pool, table, epsilon, additive, source, setup, n, v_lo, v_hi, R, ratio):
        # The pool to show: the most certainly violating one, else the highest ε̂.
        key = table["eps_lower"].where(table["status"] == "violates", -np.inf)
        w = int(np.argmax(key.to_numpy())) if (table["status"] == "violates").any() else \
            int(np.argmax(table["eps_hat"].to_numpy()))
        wp = per_pool[w]
        spec, pi, lo, hi = wp["spec"], wp["pi"], wp["lo"], wp["hi"]
        row = wp["row"]
        a, b = int(row["worse_a"]), int(row["better_b"])

        def who(i):
            return {"index": i, "population": spec.names[spec.population[i]], "quality": float(spec.quality[i]),
                    "chance": float(pi[i]), "chance_ci": [float(lo[i]), float(hi[i])]}

        counter = None
        if a >= 0 and b >= 0:
            counter = {"pool": spec.index, "worse": who(a), "better": who(b),
                       "ratio_log": wp["eh"].lower if wp["status"] == "violates" else wp["eh"].estimate,
                       "status": wp["status"], "draws": int(row["draws"])}
        ev = {"source": source, "pools": R, "violating_pools_certified": v_lo, "not_certified_fair": v_hi,
              "epsilon": epsilon, "additive": additive, "shown_pool": spec.index, "counterexample": counter}
        if ctx.target is not None and counter is not None:
            ev.update(ctx.replay_evidence(self.id, [ctx.draw_record(
                spec.inst.label, spec.inst, f"{self.id}/pool/{spec.index}", int(row["draws"]), members=[a, b],
                observed=[float(pi[a]), float(pi[b])])],
                f"the selection chances of the worse candidate {a} and the better candidate {b} of pool {spec.index}"))
            if source == "simulator":
                ev["reaudit_command"] = pool_replay_command(ctx, setup, n, spec.index, ctx.target.path, self.id, ratio)
        # Regret over pools.
        Ls = table["loss"].to_numpy(float)
        rk = table["regret_vs_k_2n"].to_numpy(float)
        rt = table["regret_vs_top_k"].to_numpy(float)
        reg_rows = []
        for name, vals in (("loss", Ls), ("regret vs k/(2n)", rk), ("regret vs true top k", rt)):
            if len(vals) >= 5 and np.ptp(vals) > 0:
                est = bootstrap_ci(vals, np.mean, ctx.confidence, rng=ctx.rng(f"{self.id}/regret/{name}"))
                reg_rows.append({"quantity": name, "estimate": est.value, "lo": est.ci[0], "hi": est.ci[1],
                                 "method": est.method + f" over {len(vals)} pools"})
            else:
                reg_rows.append({"quantity": name, "estimate": float(np.mean(vals)),
                                 "lo": float(np.mean(table['loss_lo']) - np.mean(Ls) + np.mean(vals)),
                                 "hi": float(np.mean(table['loss_hi']) - np.mean(Ls) + np.mean(vals)),
                                 "method": "empirical-Bernstein confidence sequence over draws (per pool)"})
        regret = pd.DataFrame(reg_rows)
        ev["regret"] = {r["quantity"]: {"estimate": r["estimate"], "ci": [r["lo"], r["hi"]]} for r in reg_rows}
        # Figure 1b: chances against true-CDF rank, coloured by population.
        order = np.argsort(spec.quality, kind="stable")
        rank = np.empty(spec.n, dtype=int)
        rank[order] = np.arange(1, spec.n + 1)
        callouts = []
        if counter is not None:
            callouts = [{"x": int(rank[a]), "y": float(pi[a]), "text": f"worse (q={spec.quality[a]:.2f})"},
                        {"x": int(rank[b]), "y": float(pi[b]), "text": f"better (q={spec.quality[b]:.2f})"}]
        fig1 = {"kind": "scatter_ci", "title": f"Selection chance by true-CDF rank, pool {spec.index} "
                                               f"(cf. Kearns–Roth–Wu Fig. 1b)",
                "x": rank.tolist(), "estimate": pi.tolist(), "lo": lo.tolist(), "hi": hi.tolist(),
                "color_by": spec.labels, "callouts": callouts,
                "xlabel": "rank of true CDF value (1 = lowest quality)", "ylabel": "selection chance"}
        capped = lambda v: float(np.clip(v, -CAP, CAP)) if np.isfinite(v) or v > 0 else -CAP
        fig2 = {"kind": "interval_bars", "title": f"ε̂ per pool with certified bounds (∞ drawn at {CAP:g}; "
                                                  f"blue: certified violation, grey: not)",
                "labels": [f"pool {p}" for p in table["pool"]],
                "estimate": [capped(v) for v in table["eps_hat"]],
                "lo": [capped(v) for v in table["eps_lower"]], "hi": [capped(v) for v in table["eps_upper"]],
                "reference": float(epsilon), "reference_label": f"ε = {epsilon:g}",
                "highlight": [s != "violates" for s in table["status"]],
                "xlabel": "ε̂ (additive)" if additive else "ε̂ = ln(max chance ratio)"}
        fig3 = {"kind": "interval_bars", "title": "Loss and regret over pools (reported, not judged)",
                "labels": [r["quantity"] for r in reg_rows], "estimate": [r["estimate"] for r in reg_rows],
                "lo": [r["lo"] for r in reg_rows], "hi": [r["hi"] for r in reg_rows], "reference": 0.0,
                "xlabel": "loss (mean true CCDF of the selected); regret = loss − benchmark"}
        return ev, [fig1, fig2, fig3], regret

    def _messages(self, per_pool, table, epsilon, delta, v_lo, v_hi, R, additive):
        rel = "more than ε" if additive else f"more than e^{epsilon:g} times"
        ce = ""
        viol = table[table["status"] == "violates"]
        src = viol.sort_values("eps_lower", ascending=False).head(1) if len(viol) else \
            table.sort_values("eps_hat", ascending=False).head(1)
        if len(src):
            r = src.iloc[0]
            if r["worse_a"] >= 0:
                pp = next(p for p in per_pool if p["spec"].index == r["pool"])
                sp = pp["spec"]
                a, b = int(r["worse_a"]), int(r["better_b"])
                ce = (f"pool {r['pool']}: candidate {a} (population {sp.names[sp.population[a]]}, true CDF "
                      f"{sp.quality[a]:.3f}, chance {pp['pi'][a]:.3g} [{pp['lo'][a]:.3g}, {pp['hi'][a]:.3g}]) vs "
                      f"candidate {b} (population {sp.names[sp.population[b]]}, true CDF {sp.quality[b]:.3f}, "
                      f"chance {pp['pi'][b]:.3g} [{pp['lo'][b]:.3g}, {pp['hi'][b]:.3g}]), ε̂ = {_num(r['eps_hat'])} "
                      f"(certified interval [{_num(r['eps_lower'])}, {_num(r['eps_upper'])}])")
        if R == 1:
            return {"fail": f"A worse candidate gets {rel} a better one's chance, certified: {ce}.",
                    "pass": f"No candidate gets {rel} the chance of a better one (certified ε̂ ≤ {epsilon:g}); "
                            f"the closest pair is {ce}.",
                    "inconclusive": f"ε̂ cannot yet be placed above or below {epsilon:g}: {ce}."}
        return {
            "fail": f"{v_lo} of {R} pools certifiably give a worse candidate {rel} a better one's chance — more than "
                    f"δ = {delta:g} of pools; worst: {ce}.",
            "pass": (f"All {R} pools are certified ε = {epsilon:g}-fair" if v_hi == 0 else
                     f"{R - v_hi} of {R} pools are certified ε = {epsilon:g}-fair ({v_hi} not)")
                    + f", so the violating fraction is ≤ δ = {delta:g} with confidence; highest ε̂: {ce}.",
            "inconclusive": f"{v_lo} of {R} pools certifiably violate ε = {epsilon:g}, {R - v_hi} are certified fair "
                            f"and {v_hi - v_lo} undecided: not enough to place the violating fraction against "
                            f"δ = {delta:g}; highest ε̂: {ce}."}


def _num(x) -> str:
    x = float(x)
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.3g}"


def _pools_to_pass(delta, a_pool, confidence) -> int:
    """Fewest pools with which a perfect record (every pool certified fair) passes at δ."""
    one_sided = (1 - confidence) / 2
    return int(math.ceil(math.log(one_sided) / math.log(1 - delta * (1 - a_pool)))) if delta > 0 else 10**9


def _as_bool(v) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)
