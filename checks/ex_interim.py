"""Meritocratic fairness across populations (seed 004, Kearns–Roth–Wu; SPEC §3):
``ex_interim`` (Def 2.3, the headline), and the extras ``ex_post`` (Def 2.5) and
``ex_ante`` (Def 2.1).

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
import shlex

import numpy as np
import pandas as pd

from fairaudit.check import Check, Param
from fairaudit.populations import (POPULATION_COLUMN, QUALITY_COLUMN, SETUPS, epsilon_hat, loss,
                                   optimal_loss, pool_generator, selected_is_true_top_k, simulate_pool)
from fairaudit.result import Statistic, decide
from fairaudit.sampler import inclusion_counts
from fairaudit.stats import (beta_binomial_cs, bootstrap_ci, eb_confidence_sequence, empirical_bernstein_ci,
                             per_member_confidence, proportion_ci)
from fairaudit.targets import Instance

FUTILITY_DRAWS = 4096   # stop a pool whose upper bound is ∞ because someone was never selected
CAP = 6.0   # ε̂ values above this (including ∞) are drawn at the cap in figures


# ---------------------------------------------------------------------------
# Pools: from data or from the simulator (shared by the three checks of this module)
# ---------------------------------------------------------------------------

class _PoolSpec:
    """One pool to audit: the instance the allocator sees, plus what it does not see."""

    def __init__(self, index, inst, quality, population, names):
        self.index = index
        self.inst = inst
        self.quality = np.asarray(quality, dtype=float)
        self.population = np.asarray(population)
        self.names = list(names)

    @property
    def n(self):
        return self.inst.n

    @property
    def k(self):
        return int(self.inst.k)

    @property
    def labels(self):
        return [self.names[j] for j in self.population]


def _skip_reason(ctx, quality, setup, allow_data=True):
    if ctx.population is not None:
        if not allow_data:
            return ("ex-ante fairness averages over random pools; it needs the simulator "
                    "(run without --data)")
        if quality not in ctx.population.frame.columns:
            return (f"{ctx.population.path or 'the data'} has no quality column '{quality}' (true CDF value within "
                    f"the candidate's population); name it with --param <check>.quality=COLUMN, or run without "
                    f"--data to use the cross-population simulator")
        q = pd.to_numeric(ctx.population.frame[quality], errors="coerce")
        if q.isna().any() or (q < 0).any() or (q > 1).any():
            return f"quality column '{quality}' must hold true CDF values in [0, 1]"
        if ctx.population.scores is None:
            return f"{ctx.population.path} has no score column"
        return None
    if str(setup).lower() in ("none", "", "off"):
        return "no --data with a quality column and the simulator is off (setup=none)"
    if setup not in SETUPS:
        return f"unknown simulator setup '{setup}'; choose from {', '.join(SETUPS)}"
    return None


def _data_pools(ctx, quality, population):
    pop = ctx.population
    f = pop.frame
    pool_col = "pool" if "pool" in f.columns else None
    if population in f.columns:
        pcol = population
    elif pop.group_cols:
        pcol = pop.group_cols[0]
    else:
        pcol = None
    gcols = list(pop.group_cols)
    if pcol and pcol not in gcols:      # e.g. a numeric population code: allocators still see it
        gcols = [pcol] + gcols
    keys = sorted(f[pool_col].unique()) if pool_col else [None]
    out = []
    for r, key in enumerate(keys):
        sub = f if key is None else f[f[pool_col] == key]
        sub = sub.reset_index(drop=True)
        pv = sub[pcol].astype(str).to_numpy() if pcol else np.array(["all"] * len(sub))
        names = sorted(set(pv))
        codes = np.searchsorted(np.array(names), pv)
        groups = sub[gcols].astype(str).reset_index(drop=True) if gcols else pd.DataFrame({POPULATION_COLUMN: pv})
        n = len(sub)
        label = f"{pop.path or 'data'}" + (f" pool {key}" if key is not None else "")
        inst = Instance(label, scores=sub[pop.score_col].to_numpy(dtype=float), k=ctx.selection_k(n), groups=groups)
        out.append(_PoolSpec(r if key is None else key, inst, sub[quality].to_numpy(dtype=float), codes, names))
    return out


def _ratio(ratio):
    try:
        vals = [float(v) for v in str(ratio).split(",")] if isinstance(ratio, str) else [float(v) for v in ratio]
    except (TypeError, ValueError):
        raise ValueError(f"ratio must be numbers separated by commas (e.g. 2,1), not {ratio!r}") from None
    if len(vals) < 1 or any(v <= 0 for v in vals):
        raise ValueError(f"ratio must hold positive numbers, not {ratio!r}")
    return vals


def _sim_pools(ctx, setup, n, pools, tag, ratio="2,1"):
    out = []
    rat = _ratio(ratio)
    for r in range(int(pools)):
        p = simulate_pool(setup, int(n), pool_generator(ctx.config.seed, r), k=ctx.selection_k(int(n)), ratio=rat)
        inst = p.instance(f"{setup} pool {r} (seed {ctx.config.seed}), n={p.n}, k={p.k}")
        out.append(_PoolSpec(r, inst, p.quality, p.population, p.names))
    return out


def _pools(ctx, quality, population, setup, n, pools, tag, ratio="2,1"):
    if ctx.population is not None:
        return _data_pools(ctx, quality, population), "data"
    return _sim_pools(ctx, setup, n, pools, tag, ratio), "simulator"


def _replay_pool(ctx, setup, n, r, target_path, check_id, ratio="2,1"):
    rat = ",".join(f"{v:g}" for v in _ratio(ratio))
    extra = f" --ratio {rat}" if rat != "2,1" else ""
    cmd = (f"fairaudit simulate --setup {setup} --n {int(n)} --pools 1 --start {r} --seed {ctx.config.seed}{extra} "
           f"--out pool{r}.csv && fairaudit check {shlex.quote(target_path)} --data pool{r}.csv "
           f"--checks {check_id}")
    return cmd


# ---------------------------------------------------------------------------
# ex_interim
# ---------------------------------------------------------------------------

class ExInterim(Check):
    id = "ex_interim"
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
        return _skip_reason(ctx, p["quality"], p["setup"])

    def run(self, ctx, epsilon, delta, additive, quality, population, setup, n, ratio, pools, pool_alpha, max_draws):
        additive = _as_bool(additive)
        specs, source = _pools(ctx, quality, population, setup, n, pools, self.id, ratio)
        R = len(specs)
        a_pool = float(pool_alpha) if R > 1 else ctx.alpha
        limit = ctx.max_draws(max_draws)
        rows, per_pool = [], []
        for spec in specs:
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
        if ctx.target is not None and source == "simulator" and counter is not None:
            ev["replay_command"] = _replay_pool(ctx, setup, n, spec.index, ctx.target.path, self.id, ratio)
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


# ---------------------------------------------------------------------------
# ex_post (Def 2.5)
# ---------------------------------------------------------------------------

class ExPost(Check):
    """Ex-post fairness (seed 004, Def 2.5): in a run, every selected candidate has true
    quality at least that of every rejected one — i.e. the run selected the true top k.

    Simulator: one run on each of ``pools`` fresh pools, so runs are i.i.d. over (X,
    coins) and the violation rate gets an exact Clopper–Pearson interval. Data: ``draws``
    runs on each given pool; the rate is conditional on those pools (runs on different
    pools are independent but not identically distributed; the binomial interval is
    then conservative, Hoeffding 1956). The paper shows ex-post fairness is impossible
    from samples, so every realistic allocator fails at the default tolerance; for a
    deterministic allocator the rate is the fraction of pools where it misses the true
    top k (§7: GREEDY ≈ 87% in the paper's text, exactly 77.4% for our GREEDY at m = 100 + 50;
    plug-in ≈ 53% in the paper, 54.6% ± 0.4% here over 20,000 pools)."""

    id = "ex_post"
    title = "Ex-post fairness across populations"
    summary = "Ex-post fairness (Kearns–Roth–Wu Def 2.5): how often a run selects someone worse than someone it rejects."
    definition = ("A run is ex-post fair if every selected candidate has a true CDF value (within their own "
                  "population) at least that of every rejected candidate — the run picked the true top k. The "
                  "statistic is the fraction of runs that are not, over random pools and the allocator's coins.")
    kinds = ("selection",)
    sources = ("allocator",)
    default = False
    params = {
        "tolerance": Param(0.05, "largest acceptable fraction of ex-post unfair runs", type=float, min=0, max=1),
        "quality": Param(QUALITY_COLUMN, "data column with the true CDF value of each candidate", type=str),
        "population": Param(POPULATION_COLUMN, "data column naming each candidate's population", type=str),
        "setup": Param("paper", f"simulator setup when there is no --data ({', '.join(SETUPS)}, or none)",
            choices=(*SETUPS, "none", "off")),
        "n": Param(150, "simulated pool size (the paper's §7: 100 + 50, k = 15)", type=int, min=2),
        "ratio": Param("2,1", "simulated population size ratio (d = number of entries)",
            parse=Param.numbers(min=0, min_open=True, min_items=1, what="population sizes")),
        "pools": Param(400, "simulated pools (one run each)", type=int, min=1),
        "draws": Param(400, "runs per pool when pools come from --data", type=int, min=1),
    }

    def skip_reason(self, ctx):
        p = self.resolved_params(ctx.config.params.get(self.id))
        return _skip_reason(ctx, p["quality"], p["setup"])

    def run(self, ctx, tolerance, quality, population, setup, n, ratio, pools, draws):
        specs, source = _pools(ctx, quality, population, setup, n, pools, self.id, ratio)
        per_run = 1 if source == "simulator" else ctx.max_draws(draws)
        total = bad = 0
        rows, example = [], None
        for spec in specs:
            d = ctx.sampler.draw(spec.inst, per_run, f"{self.id}/pool/{spec.index}")
            ok = selected_is_true_top_k(d, spec.quality)
            nb = int((~ok).sum())
            total += len(ok)
            bad += nb
            rows.append({"pool": spec.index, "n": spec.n, "k": spec.k, "runs": len(ok), "unfair_runs": nb,
                         "true_top_k_share": float(np.isin(d, np.argsort(-spec.quality)[:spec.k]).mean())})
            if nb and example is None:
                run_ = d[np.flatnonzero(~ok)[0]]
                sel = np.asarray(run_)
                rej = np.setdiff1d(np.arange(spec.n), sel)
                w = int(sel[np.argmin(spec.quality[sel])])
                b = int(rej[np.argmax(spec.quality[rej])])
                example = {"pool": spec.index,
                           "selected": {"index": w, "population": spec.names[spec.population[w]],
                                        "quality": float(spec.quality[w])},
                           "rejected": {"index": b, "population": spec.names[spec.population[b]],
                                        "quality": float(spec.quality[b])}}
        lo, hi = proportion_ci(bad, total, ctx.confidence)
        rate = bad / max(total, 1)
        stat = Statistic("ex_post_violation_rate", rate, (lo, hi), tolerance=float(tolerance),
                         method=f"clopper-pearson over {total} runs"
                                + (" (one per fresh pool)" if source == "simulator" else f" on {len(specs)} given pool(s)"),
                         violation="above")
        ex = ""
        if example:
            ex = (f"e.g. pool {example['pool']} selected candidate {example['selected']['index']} (population "
                  f"{example['selected']['population']}, true CDF {example['selected']['quality']:.3f}) but rejected "
                  f"candidate {example['rejected']['index']} (population {example['rejected']['population']}, true CDF "
                  f"{example['rejected']['quality']:.3f})")
        msgs = {"fail": f"{bad} of {total} runs ({rate:.1%}) select someone of lower true quality than someone they "
                        f"reject — above the tolerated {tolerance:.1%}; {ex}.",
                "pass": f"Only {bad} of {total} runs are ex-post unfair; the rate is at most {tolerance:.1%} with "
                        f"confidence.",
                "inconclusive": f"{bad} of {total} runs are ex-post unfair; the rate cannot yet be placed against "
                                f"{tolerance:.1%}" + (f"; {ex}" if ex else "") + "."}
        table = pd.DataFrame(rows)
        evidence = {"source": source, "runs": total, "unfair_runs": bad, "counterexample": example}
        if ctx.target is not None and source == "simulator" and example is not None:
            evidence["replay_command"] = _replay_pool(ctx, setup, n, example["pool"], ctx.target.path, self.id, ratio)
        fig = {"kind": "interval_bars", "title": "Ex-post unfair runs", "labels": ["all runs"],
               "estimate": [rate], "lo": [lo], "hi": [hi], "reference": float(tolerance),
               "reference_label": f"tolerance {tolerance:g}", "xlabel": "fraction of runs not selecting the true top k",
               "xlim": [0, 1]}
        return self.judged(stat, msgs, total, evidence=evidence, tables={"pools": table}, figures=[fig],
                           method=stat.method)


# ---------------------------------------------------------------------------
# ex_ante (Def 2.1)
# ---------------------------------------------------------------------------

class ExAnte(Check):
    """Ex-ante fairness (seed 004, Def 2.1): over the random pool as well as the coins,
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
    title = "Ex-ante fairness across populations"
    summary = "Ex-ante fairness (Kearns–Roth–Wu Def 2.1): expected chance rises with true quality across populations."
    definition = ("Averaging over the random pool as well as the allocator's coins, a candidate of higher true "
                  "quality (CDF value within their own population) must have at least the expected selection chance "
                  "of one of lower quality, in any population. Expected chances are estimated per population and "
                  "quality bin; the statistic is the largest reversal between a lower-or-equal quality bin and a "
                  "higher one (0 when fair).")
    kinds = ("selection",)
    sources = ("allocator",)
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
        return _skip_reason(ctx, p["quality"], p["setup"], allow_data=False)

    def run(self, ctx, tolerance, bins, setup, n, ratio, pools, draws, quality):
        from scipy import stats as st
        bins = int(bins)
        specs = _sim_pools(ctx, setup, n, pools, self.id, ratio)
        names = specs[0].names
        d = len(names)
        C = d * bins
        R = len(specs)
        B = ctx.max_draws(draws)
        S = np.zeros((R, C))
        N = np.zeros((R, C))
        for r, spec in enumerate(specs):
            dr = ctx.sampler.draw(spec.inst, B, f"{self.id}/pool/{spec.index}")
            pi = inclusion_counts(dr, spec.n) / len(dr)
            cell = spec.population * bins + np.minimum((spec.quality * bins).astype(int), bins - 1)
            S[r] = np.bincount(cell, weights=pi, minlength=C)
            N[r] = np.bincount(cell, minlength=C)
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
