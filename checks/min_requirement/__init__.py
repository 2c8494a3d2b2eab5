"""``min_requirement``: group minimum-requirement regret of an online assigner
(Freund et al., §2–3; SPEC §6). LPs and generators: :mod:`fairaudit.checks.min_requirement.assignment`.

Callable audit (over simulated years)
    For each scenario (named generators: the seed's Figure 1 worlds ``antagonistic``,
    ``benign``, ``collaborative``; ``iid`` arrivals from a feature model; ``unequal``
    group sizes 80/14/5/1%; or years bootstrapped from a logged year with
    ``bootstrap_log=PATH``, or from an arrivals table given with ``--data`` — one row per
    arrival, scores ``w_<location>``, a group column, capacities with ``capacities=``),
    K years of T arrivals are drawn, each from its own seeded
    generator. On each year the requirement ``m_g`` (rule ``random``,
    ``proportional``, ``maxmin`` or ``given``), OPT with group constraints and the
    unconstrained optimum are recomputed (paired with that year's outcomes). The
    assigner is drawn on each year on its own stream (``min_requirement/<scenario>/year/<k>``):
    ``seeds`` draws when it is randomised, one when the first year shows it is
    deterministic (two draws equal). Per year: ``R_g = m_g − Ū_g``, global regret
    ``OPT − ALG`` (per arrival), price of fairness ``1 − ALG/OPT_unc``.

    Decisions (the SPEC leaves them open):

    * Verdict statistic: ``max_{scenario, g} P(R_g > ε)`` against ``delta`` — a group's
      requirement may be missed by more than ε in at most a fraction δ of years (the
      seed's vanishing-regret notion is a high-probability one: "an algorithm should
      perform well every year rather than on average"). One Bernoulli per year — the
      exceedance of the year's *first* assigner draw — so the K indicators are i.i.d.
      and Clopper–Pearson applies exactly; Bonferroni over all (scenario, group)
      pairs. The estimate is the max of the point estimates, the interval
      ``[max lo, max hi]`` (which contains the true max whenever all intervals hold).
    * Mean regrets use every draw: the year means (over assigner seeds) are i.i.d.
      over years; Student-t intervals over years, Bonferroni over the family.
      Arrival noise = SD of the year means across years; algorithm noise = mean SD
      across seeds within a year.
    * Trend: ``trend_years`` more years at T/4 and T/2; OLS slope of the year's worst
      group regret on log10 T with a t interval ("change per tenfold T"), reported,
      not judged.
    * Non-anticipation (metamorphic): on one year per scenario, the arrivals after
      cut t ∈ {T/3, 2T/3} are replaced by fresh ones; both versions are drawn on the
      same stream, so draw j gets the same generator; any change in a decision up to
      t is a certain ``fail`` with the counterexample.
    * Capacities passed to the assigner are integer place counts ``ceil(ρ_i T)``.
    * Default rule: Proportionally Optimized — with Random it is the rule for which the
      seed proves vanishing regret for every group size (constant sensitivity, Prop 1);
      MaxMin's sensitivity grows with 1/p_min (Prop 2) and with several groups binding
      at one common value no online assigner keeps all of them within a small ε at
      moderate T, so ``rule=maxmin`` is an explicit, demanding choice.

Log audit (exact)
    Per logged year (``decision_id``): the exact ex-post ``m_g``, ``Ū_g``, ``R_g``,
    OPT, OPT_unc, global regret and price of fairness. Capacities are not in the log:
    ``capacities=`` (comma-separated counts) or, by default, the realised occupancy of
    each location (the tightest capacities consistent with the log). Verdict: the
    largest ``R_g`` against ε, exactly (a degenerate interval). With an ``outcome``
    column, a Hoeffding check (Bonferroni over groups; unassigned arrivals count 0)
    of whether each group's realised mean outcome reaches ``m_g − ε``; a group whose
    upper bound falls below is reported in the message and table.
"""
from __future__ import annotations

import math
import shlex

import numpy as np
import pandas as pd
from scipy import stats as sstats

from fairaudit.checks.min_requirement import assignment as A
from fairaudit.checks.min_requirement import benchmark_cache as BC
from fairaudit.check import Check, Param
from fairaudit.result import Statistic, decide
from fairaudit.stats import hoeffding_ci, per_member_confidence, simultaneous_proportion_ci, t_interval

DEFAULT_SCENARIOS = "antagonistic,benign,collaborative,iid,unequal"


def _floats(text) -> np.ndarray | None:
    """A list of numbers from "0.3,0.4", a JSON/TOML list or one number (None when empty)."""
    if isinstance(text, (list, tuple, np.ndarray)):
        return np.asarray(text, dtype=float) if len(text) else None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return np.array([float(text)])
    text = str(text or "").strip().strip("[]")
    if not text:
        return None
    return np.array([float(v) for v in text.replace(";", ",").split(",") if v.strip()])


def exceedance_intervals(R0s: list[np.ndarray], epsilon: float, confidence: float):
    """Per (scenario, group): the number of years with ``R_g > ε`` (one i.i.d. Bernoulli
    per year) and Clopper–Pearson intervals simultaneous over all pairs.
    ``R0s``: one (years × groups) array per scenario. Returns (counts, lo, hi, method)."""
    k = np.concatenate([(np.asarray(R) > epsilon).sum(axis=0) for R in R0s])
    n = np.concatenate([np.full(np.shape(R)[1], np.shape(R)[0]) for R in R0s])
    lo, hi, method = simultaneous_proportion_ci(k, n, confidence)
    return k, lo, hi, method


def exceedance_statistic(k, lo, hi, years: int, delta: float, method: str = "") -> Statistic:
    """The verdict statistic: max over the family of P(R_g > ε), interval [max lo, max hi]."""
    return Statistic("max_group_p_regret_over_eps", float(np.max(np.asarray(k) / years)),
                     (float(np.max(lo)), float(np.max(hi))), tolerance=delta, method=method, violation="above")


class MinRequirement(Check):
    id = "min_requirement"
    # -- words for readers (the report and the terminal read these from the registry) --
    statistic_labels = {
        'max_group_regret': 'largest group regret',
        'max_group_p_regret_over_eps': "worst group's share of years with regret above ε",
    }
    headlines = {
        'max_group_p_regret_over_eps': ('The worst-off group falls short of its minimum requirement by more than ε in {est} of the simulated years',
                                        'the allowed share {tol}'),
        'max_group_regret': ('The worst-off group falls short of its minimum requirement by {est}',
                             'the tolerance {tol}'),
    }
    column_labels = {
        'T': 'arrivals per year (T)',
        'trend': 'change of worst-group regret per tenfold T',
        'trend_slope_per_decade': 'change of worst-group regret per tenfold T',
        'algorithm_sd': 'spread across algorithm runs (sd)',
        'arrival_sd': 'spread across arrival orders (sd)',
        'benchmark_price_of_fairness': 'benchmark price of fairness',
        'description': 'description',
        'draws_per_year': 'draws per year',
        'group_average': 'group average',
        'infeasible_years': 'years without a feasible assignment',
        'mean_global_regret': 'mean global regret',
        'mean_max_regret': 'mean worst-group regret',
        'mean_regret': 'mean regret',
        'mean_size': 'mean size',
        'p_over_eps': 'share of years with regret above ε',
        'p_lo': 'share of years with regret above ε (lower)',
        'p_hi': 'share of years with regret above ε (upper)',
        'price_of_fairness': 'price of fairness',
        'requirement': 'requirement',
        'scenario': 'scenario',
        'years': 'years',
        'years_over_eps': 'years above ε',
    }
    title = "Group minimum-requirement regret"
    summary = ("Regret of each group against a minimum requirement (Random, Proportionally Optimized, MaxMin "
               "or given) over simulated years, with global regret and price of fairness (Freund et al.).")
    definition = ("A fairness rule sets, on each realised year, a minimum requirement m_g on the average score "
                  "(e.g. employment probability) of each group's arrivals. A group's regret R_g is m_g minus the "
                  "average its members actually got; positive means the group fell short. Global regret is the "
                  "best fractional assignment meeting every requirement (OPT) minus the assigner's average; the "
                  "price of fairness is the assigner's relative loss against the unconstrained optimum. The check "
                  "fails when some group misses its requirement by more than ε in more than a fraction δ of "
                  "years, with confidence simultaneous over groups.")
    kinds = ("assignment",)
    sources = ("allocator", "log")
    table_titles = {
        "groups": "Regret against the minimum requirement, per group",
        "scenarios": "Scenarios simulated",
        "years": "Regret per simulated year",
    }
    params = {
        "rule": Param("proportional", "requirement rule: random | proportional | maxmin | given", choices=A.RULES),
        "requirement": Param("", "rule=given: the requirement per group, comma-separated (one value = all groups)",
            parse=Param.numbers(what="requirements")),
        "scenarios": Param(DEFAULT_SCENARIOS, "comma-separated scenarios: " + ", ".join(A.SCENARIOS)
                           + " (iid:40 = a feature world with 40 locations)",
                               parse=Param.csv_of(A.SCENARIOS, count_suffix=True, what="scenarios")),
        "T": Param(500, "arrivals per simulated year", type=int, min=1),
        "years": Param(100, "simulated years per scenario", type=int, min=1),
        "seeds": Param(3, "assigner draws per year when the assigner is randomised", type=int, min=1),
        "epsilon": Param(0.02, "regret tolerance ε (per-arrival score units)", type=float, min=0),
        "delta": Param(0.1, "largest acceptable share of years in which a group's regret exceeds ε",
            type=float, min=0, max=1),
        "trend_years": Param(20, "years at T/4 and T/2 for the regret trend (0 = no trend)", type=int, min=0),
        "anticipation_cuts": Param(2, "cut points per scenario for the non-anticipation probe (0 = off)",
            type=int, min=0),
        "bootstrap_log": Param("", "an assignment log (CSV/Parquet): bootstrap years from its first logged year "
                                   "instead of the scenarios", type=str),
        "capacities": Param("", "capacities per location, comma-separated (log audit / bootstrap; default: "
                                "realised occupancy)", parse=Param.numbers(min=0, what="capacities")),
    }

    # ------------------------------------------------------------------
    def run(self, ctx, rule, requirement, scenarios, T, years, seeds, epsilon, delta, trend_years,
            anticipation_cuts, bootstrap_log, capacities):
        if rule not in A.RULES:
            raise ValueError(f"rule must be one of {', '.join(A.RULES)}, not {rule!r}")
        given = _floats(requirement)
        if rule == "given" and given is None:
            raise ValueError("rule=given needs requirement=v1,v2,... (one per group)")
        if ctx.log is not None:
            return self._run_log(ctx, rule, given, epsilon, _floats(capacities))
        return self._run_callable(ctx, rule, given, scenarios, int(T), int(years), int(seeds), float(epsilon),
                                  float(delta), int(trend_years), int(anticipation_cuts), bootstrap_log,
                                  _floats(capacities))

    # ------------------------------------------------------------------
    # Callable audit
    # ------------------------------------------------------------------
    def _generators(self, ctx, scenarios, bootstrap_log, caps_param):
        """(name, draw(T, rng, label) → Year, description, group names) per scenario."""
        if bootstrap_log:
            from fairaudit.logs.load import load_log
            log = load_log(bootstrap_log, kind="assignment")
            years = _log_years(log, caps_param)
            w, g, caps, names, _, _, _ = years[0]
            return [("bootstrap", _bootstrap_draw(w, g, caps, names), f"years bootstrapped from the first logged year of {bootstrap_log} "
                                        f"(T_log={len(g)})", list(names))]
        arrivals = _data_arrivals(ctx.population, caps_param)
        if arrivals is not None:
            w, g, caps, names, src = arrivals
            return [("data", _bootstrap_draw(w, g, caps, names), f"years bootstrapped from the {len(g)} arrivals of {src} (capacities "
                                   f"{','.join(f'{c:g}' for c in caps)} for those {len(g)})", list(names))]
        out = []
        for name in [s.strip() for s in str(scenarios).split(",") if s.strip()]:
            base, _, n_loc = name.partition(":")          # "iid:40" = the iid world with 40 locations
            sc = A.scenario(base, N=int(n_loc) if n_loc else None)

            def draw(T, rng, label, sc=sc):
                return sc.draw(T, rng, label)
            out.append((name, draw, sc.description, list(sc.group_names)))
        if not out:
            raise ValueError("no scenarios given")
        return out

    def _run_callable(self, ctx, rule, given, scenarios, T, years, seeds, epsilon, delta, trend_years,
                      cuts, bootstrap_log, caps_param):
        gens = self._generators(ctx, scenarios, bootstrap_log, caps_param)
        n_seeds = max(1, seeds)
        deterministic = None
        rows, scen_rows, trend_figs, worst_years = [], [], [], {}
        per_scenario = {}
        anticipation = None
        total_draws = 0
        seed = ctx.config.seed
        for g_i, (name, draw, desc, gnames) in enumerate(gens):
            ctx.phase(f"{name} scenario", g_i + 1, len(gens))
            G = len(gnames)
            R0 = np.zeros((years, G))          # first draw's regret per year (for P(R_g > ε))
            Rmean = np.zeros((years, G))       # regret averaged over assigner draws
            Rsd = np.zeros((years, G))         # SD over assigner draws (algorithm noise)
            sizes = np.zeros((years, G), dtype=int)
            mreq = np.zeros((years, G))
            U = np.zeros((years, G))
            glob, pof, bpof, maxR = (np.zeros(years) for _ in range(4))
            infeasible = 0
            # The years come from the seed alone, so their LP benchmarks are solved (or read
            # from the cache) in a thread while the assigner draws; all the years' draws go
            # in one batch (the same draws as one request per year).
            keys = [f"{self.id}/{name}/year/{k}" for k in range(years)]
            year_list = [draw(T, ctx.rng(key), f"{name} year {k}, T={T}") for k, key in enumerate(keys)]
            lps = BC.Background(year_list, rule, given)
            outs: list = [None] * years
            first = 0
            if deterministic is None and n_seeds > 1:
                out = ctx.sampler.draw(year_list[0].instance(), 2, keys[0])
                total_draws += 2
                deterministic = bool(np.all(out == out[0]))
                if deterministic:
                    out = out[:1]
                elif n_seeds > 2:
                    more = ctx.sampler.draw(year_list[0].instance(), n_seeds - 2, keys[0], start=2)
                    total_draws += n_seeds - 2
                    out = np.concatenate([out, more])
                outs[0], first = out, 1
            n = 1 if deterministic or n_seeds == 1 else n_seeds
            # in ten batches, so the progress display moves (the same draws whatever the batches)
            per = max(1, -(-(years - first) // 10))
            for b0 in range(first, years, per):
                b1 = min(years, b0 + per)
                ctx.step(f"{name}: year", b0 + 1, years)
                outs[b0:b1] = ctx.sampler.draw_streams([(year_list[k].instance(), keys[k], 0, n) for k in range(b0, b1)])
                total_draws += n * (b1 - b0)
            benches = lps.result()
            for k in range(years):
                key, year, bench, out = keys[k], year_list[k], benches[k], outs[k]
                infeasible += int(not bench.feasible)
                f = A.path_figures(year, bench, out)
                R0[k] = f["R"][0]
                Rmean[k] = f["R"].mean(axis=0)
                Rsd[k] = f["R"].std(axis=0, ddof=1) if len(out) > 1 else 0.0
                sizes[k] = bench.sizes
                mreq[k] = bench.m
                U[k] = f["U"].mean(axis=0)
                glob[k] = f["global_regret"].mean() if bench.feasible else np.nan
                pof[k] = f["price_of_fairness"].mean()
                bpof[k] = bench.price_of_fairness if bench.feasible else np.nan
                maxR[k] = f["max_regret"].mean() if bench.feasible else np.nan
                # the worst year of every group (the counterexample is the verdict's group's)
                for gi in np.flatnonzero(bench.sizes > 0):
                    prev = worst_years.get((name, gnames[gi]))
                    if prev is None or f["R"][0][gi] > prev["regret"]:
                        ce = {"scenario": name, "year": k, "group": gnames[gi],
                              "regret": float(f["R"][0][gi]), "requirement": float(bench.m[gi]),
                              "group_average": float(f["U"][0][gi]),
                              "group_size": int(bench.sizes[gi]), "T": T, "rule": rule,
                              "stream": key, "year_generator": f"check-internal/{key}"}
                        if name == "data" and ctx.population is not None:
                            ce["cli_args"] = (f"--data {shlex.quote(ctx.population.path or 'DATA')} --param "
                                              f"min_requirement.capacities={','.join(f'{c:g}' for c in caps_param)}"
                                              f" --param min_requirement.T={T}")
                        ce["record"] = ctx.draw_record(f"{name} year {k}, T={T}", year.instance(), key, out[:1])
                        worst_years[(name, gnames[gi])] = ce
            per_scenario[name] = dict(R0=R0, Rmean=Rmean, Rsd=Rsd, sizes=sizes, m=mreq, U=U, glob=glob, pof=pof,
                                      bpof=bpof, maxR=maxR, infeasible=infeasible, desc=desc, gnames=gnames,
                                      draw=draw)
        # -- family statistics ----------------------------------------------
        fam = sum(len(v["gnames"]) for v in per_scenario.values())
        member_conf = per_member_confidence(ctx.confidence, fam)
        k_exc, p_lo, p_hi, cp_method = exceedance_intervals([v["R0"] for v in per_scenario.values()], epsilon,
                                                            ctx.confidence)
        j = 0
        for name, v in per_scenario.items():
            mean, lo, hi = t_interval(v["Rmean"], member_conf)
            arrival_sd = v["Rmean"].std(axis=0, ddof=1) if years > 1 else np.zeros(len(v["gnames"]))
            alg_sd = v["Rsd"].mean(axis=0)
            for g, gname in enumerate(v["gnames"]):
                rows.append({"scenario": name, "group": gname, "mean_size": float(v["sizes"][:, g].mean()),
                             "min_size": int(v["sizes"][:, g].min()), "share": float(v["sizes"][:, g].sum() / (T * years)),
                             "requirement": float(v["m"][:, g].mean()), "group_average": float(v["U"][:, g].mean()),
                             "mean_regret": float(mean[g]), "regret_lo": float(lo[g]), "regret_hi": float(hi[g]),
                             "years_over_eps": int(k_exc[j]), "p_over_eps": float(k_exc[j] / years),
                             "p_lo": float(p_lo[j]), "p_hi": float(p_hi[j]),
                             "arrival_sd": float(arrival_sd[g]), "algorithm_sd": float(alg_sd[g])})
                j += 1
            gm, glo, ghi = t_interval(v["glob"][np.isfinite(v["glob"])][:, None], ctx.confidence)
            srow = {"scenario": name, "T": T, "years": years, "draws_per_year": 1 if deterministic else n_seeds,
                    "rule": rule, "mean_global_regret": float(gm[0]), "global_lo": float(glo[0]),
                    "global_hi": float(ghi[0]), "price_of_fairness": float(np.mean(v["pof"])),
                    "benchmark_price_of_fairness": float(np.nanmean(v["bpof"])),
                    "mean_max_regret": float(np.nanmean(v["maxR"])), "infeasible_years": int(v["infeasible"]),
                    "description": v["desc"]}
            if trend_years > 0:
                slope, slo, shi, series = self._trend(ctx, name, v, rule, given, T, trend_years)
                srow.update({"trend_slope_per_decade": slope, "trend_lo": slo, "trend_hi": shi})
                trend_figs.append(series)
            scen_rows.append(srow)
        if cuts > 0:
            for name, v in per_scenario.items():
                anticipation = self._nonanticipation(ctx, name, v["draw"], T, cuts)
                if anticipation is not None:
                    break
        table = pd.DataFrame(rows)
        # each group's own verdict (its share of years above ε against δ); the check fails iff one does
        table["verdict"] = [decide((a, b), delta, "above") for a, b in zip(table["p_lo"], table["p_hi"])]
        scen = pd.DataFrame(scen_rows)
        return self._finish_callable(ctx, table, scen, trend_figs, anticipation, worst_years, epsilon, delta,
                                     rule, cp_method, member_conf, fam, total_draws, deterministic, seed)

    def _trend(self, ctx, name, v, rule, given, T, trend_years):
        """Worst-group regret (first draw) against log10 T at T/4, T/2 and T."""
        xs, ys, pts = [], [], []
        for Tk in sorted({max(4, T // 4), max(4, T // 2)}):
            if Tk >= T:
                continue
            vals = []
            keys = [f"{self.id}/{name}/trend/{Tk}/{k}" for k in range(trend_years)]
            year_list = [v["draw"](Tk, ctx.rng(key), f"{name} trend year {k}, T={Tk}") for k, key in enumerate(keys)]
            lps = BC.Background(year_list, rule, given)
            outs = ctx.sampler.draw_streams([(y.instance(), key, 0, 1) for y, key in zip(year_list, keys)])
            for year, bench, out in zip(year_list, lps.result(), outs):
                R = A.path_figures(year, bench, out)["R"][0]
                vals.append(float(np.max(np.where(bench.sizes > 0, R, -np.inf))))
            xs += [math.log10(Tk)] * len(vals)
            ys += vals
            pts.append((Tk, *t_interval(vals, ctx.confidence)))
        main = np.max(np.where(v["sizes"] > 0, v["R0"], -np.inf), axis=1)
        xs += [math.log10(T)] * len(main)
        ys += main.tolist()
        pts.append((T, *t_interval(main, ctx.confidence)))
        # each point: the mean over its years with a pointwise Student-t interval (drawn as a band)
        series = {"x": [p[0] for p in pts], "y": [float(p[1]) for p in pts], "lo": [float(p[2]) for p in pts],
                  "hi": [float(p[3]) for p in pts], "label": name}
        if len(set(xs)) < 2:
            return float("nan"), float("nan"), float("nan"), series
        lr = sstats.linregress(xs, ys)
        q = sstats.t.ppf(1 - ctx.alpha / 2, len(xs) - 2)
        return float(lr.slope), float(lr.slope - q * lr.stderr), float(lr.slope + q * lr.stderr), series

    def _nonanticipation(self, ctx, name, draw, T, cuts):
        """Same stream, same draws: decisions up to t must not move when arrivals after t change."""
        key = f"{self.id}/{name}/nonanticipation"
        base = draw(T, ctx.rng(key), f"{name} non-anticipation base, T={T}")
        ref = ctx.sampler.draw(base.instance(), 2, key)
        for c in range(1, cuts + 1):
            t = int(T * c / (cuts + 1))
            other = draw(T, ctx.rng(f"{key}/tail/{c}"), "tail")
            scores = np.vstack([base.scores[:t], other.scores[t:]])
            groups = np.concatenate([base.groups[:t], other.groups[t:]])
            mod = A.Year(scores, groups, base.capacities, base.n_groups, base.group_names,
                         f"{name} non-anticipation probe: arrivals after t={t} replaced")
            out = ctx.sampler.draw(mod.instance(), 2, key)
            diff = np.nonzero(out[:, :t] != ref[:, :t])
            if diff[0].size:
                d, a = int(diff[0][0]), int(diff[1][0])
                return {"scenario": name, "cut": t, "draw": d, "arrival": a,
                        "location_original": int(ref[d, a]), "location_changed_future": int(out[d, a]),
                        "stream": key,
                        "records": [ctx.draw_record(base.label, base.instance(), key, ref[d:d + 1], start=d, members=[a]),
                                    ctx.draw_record(mod.label, mod.instance(), key, out[d:d + 1], start=d, members=[a])]}
        return None

    def _finish_callable(self, ctx, table, scen, trend_figs, anticipation, worst_years, epsilon, delta, rule,
                         cp_method, member_conf, fam, total_draws, deterministic, seed):
        worst = table.sort_values(["p_hi", "p_over_eps", "mean_regret"], ascending=False).iloc[0]
        stat = exceedance_statistic(table["years_over_eps"].to_numpy(), table["p_lo"].to_numpy(),
                                    table["p_hi"].to_numpy(), int(scen["years"].iloc[0]), delta,
                                    f"{cp_method} (one Bernoulli per simulated year: first draw's R_g > ε={epsilon:g})")
        who = (f"group {worst['group']} in the {worst['scenario']} scenario (about {worst['mean_size']:.0f} of "
               f"{int(scen['T'].iloc[0])} arrivals)")
        freq = (f"regret above ε={epsilon:g} in {worst['p_over_eps']:.0%} of {int(scen['years'].iloc[0])} simulated "
                f"years (interval [{worst['p_lo']:.2f}, {worst['p_hi']:.2f}]; mean regret {worst['mean_regret']:+.3f})")
        msgs = {"fail": f"Unfair to a group: {who} misses its {rule} requirement too often — {freq}, above the "
                        f"δ={delta:g} allowed.",
                "pass": f"Every group meets its {rule} requirement within ε={epsilon:g} in all but at most "
                        f"δ={delta:g} of years with confidence; the worst is {who}: {freq}.",
                "inconclusive": f"Cannot yet tell whether {who} misses its {rule} requirement more often than "
                                f"δ={delta:g}: {freq}."}
        evidence = {"rule": rule, "epsilon": epsilon, "delta": delta, "deterministic_assigner": deterministic,
                    "worst_group": worst.to_dict(), "scenarios": scen.to_dict("records")}
        evidence["nonanticipation"] = anticipation or "no decision changed when later arrivals changed"
        # The counterexample: the worst simulated year of the group the verdict names (or,
        # when that group never exceeds ε, of any group), replayable.
        counterexample = worst_years.get((worst["scenario"], worst["group"]))
        if counterexample is None or counterexample["regret"] <= epsilon:
            counterexample = max(worst_years.values(), key=lambda c: c["regret"], default=None)
        if counterexample is not None and counterexample["regret"] > epsilon:
            counterexample = dict(counterexample)
            record = counterexample.pop("record")
            evidence["counterexample"] = counterexample
            evidence.update(ctx.replay_evidence(self.id, [record], f"the location of every arrival in the worst year "
                                                                   f"of group {counterexample['group']}"))
        labels = [f"{r['scenario']}: {r['group']} (n≈{r['mean_size']:.0f})" for r in table.to_dict("records")]
        figures = [
            {"kind": "interval_bars", "title": f"Mean {rule} regret per group (positive = shortfall)",
             "labels": labels, "estimate": table["mean_regret"].tolist(), "lo": table["regret_lo"].tolist(),
             "hi": table["regret_hi"].tolist(), "xlabel": "mean regret R_g = m_g − Ū_g", "reference": epsilon,
             "reference_label": f"ε = {epsilon:g}"},
            {"kind": "interval_bars", "title": f"Share of years with regret above ε = {epsilon:g}",
             "labels": labels, "estimate": table["p_over_eps"].tolist(), "lo": table["p_lo"].tolist(),
             "hi": table["p_hi"].tolist(), "xlabel": "P(R_g > ε)", "reference": delta,
             "reference_label": f"δ = {delta:g}", "xlim": [0, 1], "verdicts": table["verdict"].tolist()},
            {"kind": "interval_bars",
             "title": "Global regret and price of fairness per scenario",
             "labels": [f"{r['scenario']}: price of fairness {_pct(r['price_of_fairness'])} "
                        f"(OPT's {_pct(r['benchmark_price_of_fairness'])})" for r in scen.to_dict("records")],
             "estimate": scen["mean_global_regret"].tolist(), "lo": scen["global_lo"].tolist(),
             "hi": scen["global_hi"].tolist(), "xlabel": f"OPT ({rule}) − ALG per arrival",
             "reference": 0.0, "reference_label": "0"},
        ]
        if trend_figs:
            figures.append({"kind": "lines", "title": "Worst-group regret as T grows (mean over years, "
                                                      f"pointwise {ctx.confidence:.0%} t intervals)",
                            "series": trend_figs, "xlabel": "arrivals per year T", "ylabel": "mean max_g R_g",
                            "reference": epsilon, "reference_label": f"ε = {epsilon:g}", "xlog": True})
        method = (f"{cp_method} for P(R_g > ε); Student-t intervals over years for mean regrets "
                  f"(bonferroni over {fam}); requirement, OPT and unconstrained optimum recomputed on every "
                  f"year by HiGHS LPs (scipy.optimize.linprog)")
        tables = {"groups": table, "scenarios": scen}
        if anticipation is not None:
            anticipation = dict(anticipation)
            records = anticipation.pop("records")
            evidence["counterexample"] = anticipation
            evidence.update(ctx.replay_evidence(self.id, records, (
                f"the location of arrival {anticipation['arrival']} before and after only the arrivals after "
                f"t={anticipation['cut']} changed")))
            msg = (f"The assigner anticipates: in the {anticipation['scenario']} scenario, changing only the arrivals "
                   f"after t={anticipation['cut']} moved arrival {anticipation['arrival']} from location "
                   f"{anticipation['location_original']} to {anticipation['location_changed_future']} (same seed); "
                   f"an online assigner may only use arrivals it has seen.")
            return self.result("fail", msg, statistic=stat, draws=total_draws, evidence=evidence, tables=tables,
                               figures=figures, method=method)
        # The engine's "rerun with --draws N" hint does not apply (more assigner draws per
        # year do not narrow a per-year proportion): hint at years instead.
        verdict = decide(stat.ci, stat.tolerance, stat.violation)
        msg = msgs[verdict]
        if verdict == "inconclusive":
            n_years = int(scen["years"].iloc[0])
            hint = _years_hint(float(worst["p_over_eps"]), delta, member_conf, n_years)
            if hint and hint > n_years:
                msg += f" Roughly {hint:,} years might decide it (--param min_requirement.years={hint})."
        return self.result(verdict, msg, statistic=stat, draws=total_draws, evidence=evidence, tables=tables,
                           figures=figures, method=method)

    # ------------------------------------------------------------------
    # Log audit
    # ------------------------------------------------------------------
    def _run_log(self, ctx, rule, given, epsilon, caps_param):
        years = _log_years(ctx.log, caps_param)
        rows, yrows = [], []
        has_outcome = "outcome" in ctx.log.columns
        for w, g, caps, names, loc, outcome, did in years:
            G = len(names)
            year = A.Year(w, g, caps, G, tuple(names), f"logged year {did}")
            bench = A.benchmarks(year, rule, given)
            f = A.path_figures(year, bench, loc)
            oc = None
            if has_outcome:
                y = np.nan_to_num(np.where(loc >= 0, outcome, 0.0))
                sizes = np.maximum(bench.sizes, 1)
                om = np.bincount(g, weights=y, minlength=G) / sizes
                olo, ohi = hoeffding_ci(om, sizes, per_member_confidence(ctx.confidence, G))
                oc = (om, olo, ohi)
            for k in range(G):
                r = {"decision_id": str(did), "group": names[k], "n": int(bench.sizes[k]),
                     "requirement": float(bench.m[k]), "group_average": float(f["U"][0][k]),
                     "regret": float(f["R"][0][k])}
                if oc is not None:
                    r.update({"outcome_mean": float(oc[0][k]), "outcome_lo": float(oc[1][k]),
                              "outcome_hi": float(oc[2][k]),
                              "outcome_check": ("below requirement" if oc[2][k] < bench.m[k] - epsilon else
                                                "meets requirement" if oc[1][k] >= bench.m[k] - epsilon else
                                                "undecided") if bench.sizes[k] > 0 else "empty"})
                rows.append(r)
            yrows.append({"decision_id": str(did), "T": year.T, "N": year.N, "rule": rule, "alg": float(f["alg"][0]),
                          "opt": bench.opt, "opt_unconstrained": bench.opt_unc,
                          "global_regret": float(f["global_regret"][0]),
                          "price_of_fairness": float(f["price_of_fairness"][0]),
                          "benchmark_price_of_fairness": bench.price_of_fairness,
                          "max_regret": float(f["max_regret"][0]), "feasible": bench.feasible,
                          "capacities": ",".join(str(int(c)) if float(c).is_integer() else f"{c:g}" for c in caps)})
        table = pd.DataFrame(rows)
        ytab = pd.DataFrame(yrows)
        live = table[table["n"] > 0]
        worst = live.sort_values("regret", ascending=False).iloc[0]
        v = float(worst["regret"])
        stat = Statistic("max_group_regret", v, (v, v), tolerance=epsilon,
                         method="exact ex-post figures of the logged path(s)", violation="above")
        yr = ytab[ytab["decision_id"] == worst["decision_id"]].iloc[0]
        who = (f"group {worst['group']} (n={int(worst['n'])}) in logged year {worst['decision_id']}: average "
               f"{worst['group_average']:.3f} against a {rule} requirement of {worst['requirement']:.3f} "
               f"(regret {v:+.3f}); global regret {yr['global_regret']:+.4f}, price of fairness "
               f"{yr['price_of_fairness']:.1%}")
        msgs = {"fail": f"The logged assignments fall short for {who}, beyond ε={epsilon:g}.",
                "pass": f"Every logged group meets its {rule} requirement within ε={epsilon:g}; the worst is {who}.",
                "inconclusive": f"Undecided for {who}."}
        below = []
        if has_outcome:
            below = table.loc[table["outcome_check"] == "below requirement", "group"].tolist()
            if below:
                msgs = {k: m + (f" Realised outcomes of {', '.join(map(str, below))} are below the requirement "
                                f"minus ε (Hoeffding, confidence {ctx.confidence:g}).") for k, m in msgs.items()}
        evidence = {"rule": rule, "epsilon": epsilon, "worst_group": worst.to_dict(),
                    "years": ytab.to_dict("records"),
                    "capacities_source": "given" if caps_param is not None else "realised occupancy of each location",
                    "outcome_groups_below_requirement": below}
        figures = [{"kind": "interval_bars", "title": f"{rule} regret per group (logged, exact)",
                    "labels": [f"{r['decision_id']}: {r['group']} (n={r['n']})" for r in table.to_dict("records")],
                    "estimate": table["regret"].tolist(), "lo": table["regret"].tolist(), "hi": table["regret"].tolist(),
                    "xlabel": "R_g = m_g − Ū_g", "reference": epsilon, "reference_label": f"ε = {epsilon:g}"}]
        if has_outcome:
            figures.append({"kind": "interval_bars",
                            "title": f"Realised mean outcome per group (Hoeffding) against the {rule} requirement m",
                            "labels": [f"{r['decision_id']}: {r['group']} (m={r['requirement']:.3f})"
                                       for r in table.to_dict("records")],
                            "estimate": table["outcome_mean"].tolist(), "lo": table["outcome_lo"].tolist(),
                            "hi": table["outcome_hi"].tolist(), "xlabel": "mean outcome", "xlim": [0, 1]})
        return self.judged(stat, msgs, int(ctx.log.n_rows), from_log=True, evidence=evidence,
                           tables={"groups": table, "years": ytab}, figures=figures,
                           method=stat.method + ("; Hoeffding intervals for realised outcomes, bonferroni over groups"
                                                 if has_outcome else ""))


def _pct(v: float) -> str:
    """A share as a percentage, without a "-0.0%" from round-off."""
    return f"{(0.0 if abs(v) < 5e-4 else v):.1%}" if np.isfinite(v) else "n/a"


def _years_hint(p_hat: float, delta: float, member_conf: float, years: int, cap: int = 100000) -> int | None:
    """Fewest years at which the Clopper–Pearson interval (at ``member_conf``) around the
    same observed share ``p_hat`` would clear δ — a rough guide for an inconclusive run."""
    from fairaudit.stats import proportion_ci

    def decided(K):
        lo, hi = proportion_ci(round(p_hat * K), K, member_conf)
        return hi <= delta or lo > delta
    if p_hat == delta:
        return None
    K = years
    while K < cap and not decided(K):
        K = int(K * 1.25) + 1
    if K >= cap:
        return None
    lo_K = max(years, int(K / 1.25))
    while lo_K < K and not decided(lo_K):
        lo_K += max(1, (K - lo_K) // 8)
    return lo_K


def _bootstrap_draw(w, g, caps, names):
    """draw(T, rng, label) → a Year of T arrivals resampled from one observed year."""
    def draw(T, rng, label):
        return A.bootstrap_year(w, g, caps, T, rng, len(names), names, label)
    return draw


def _data_arrivals(pop, caps_param):
    """Arrivals from ``--data`` (one row per arrival: score columns ``w_<location>`` and a
    group column — ``group``, else the first group column): (scores, groups as ints,
    capacities, group names, source), or None when the data hold no ``w_*`` columns (then
    the scenarios are used). Capacities must be given (``capacities=``: place counts for
    the table's arrivals, or fractions ρ ≤ 1): an arrivals table does not show them."""
    if pop is None:
        return None
    fr = pop.frame
    wcols = sorted([c for c in fr.columns if str(c).startswith("w_")], key=lambda c: (len(str(c)), str(c)))
    if not wcols:
        return None
    where = pop.path or "data"
    gcol = "group" if "group" in fr.columns else (pop.group_cols[0] if pop.group_cols else None)
    if gcol is None:
        raise ValueError(f"{where}: arrivals need a group column ('group', or name one with --groups)")
    w = fr[wcols].to_numpy(dtype=float)
    if not np.all(np.isfinite(w)) or w.min() < 0 or w.max() > 1:
        raise ValueError(f"{where}: scores {', '.join(wcols)} must be numbers in [0, 1]")
    if caps_param is None:
        raise ValueError(f"{where}: give the capacities of its {len(wcols)} locations with "
                         f"--param min_requirement.capacities=c1,c2,... (place counts for its {len(fr)} arrivals, "
                         f"or fractions ρ ≤ 1 of them)")
    if len(caps_param) != len(wcols):
        raise ValueError(f"capacities has {len(caps_param)} values but {where} has {len(wcols)} locations")
    names = sorted(pd.unique(fr[gcol].astype(str)).tolist())
    code = {n: i for i, n in enumerate(names)}
    g = fr[gcol].astype(str).map(code).to_numpy(dtype=np.int64)
    return w, g, A.place_counts(np.asarray(caps_param), len(fr)), names, where


def _log_years(log, caps_param):
    """Logged years: (scores, groups as ints, capacities, group names, locations, outcomes, decision_id).
    Each year's rows are asked of the log engine on their own (``where_equals``: filtered
    where the log is — DuckDB, Dask, Spark — in arrival order, ties in log order), so
    memory holds one year at a time: the ex-post benchmark of a year needs all its
    arrivals' scores, there is no smaller sufficient statistic."""
    from fairaudit.logs.duckdb import q
    t = log.table
    wcols = sorted(log.score_cols, key=lambda c: (len(str(c)), str(c)))
    names = sorted(str(v) for v in t.distinct("group"))
    code = {n: i for i, n in enumerate(names)}
    has_outcome = "outcome" in log.columns
    need = ["group", "location"] + list(wcols) + (["outcome"] if has_outcome else [])
    cols = ", ".join(q(c) for c in need)
    out = []
    for did in t.distinct("decision_id"):
        year = t.where_equals("decision_id", did, need + ["arrival"])
        part = year.df(f"SELECT {cols} FROM (SELECT row_number() OVER () AS _n, * FROM log) ORDER BY arrival, _n")
        w = part[wcols].to_numpy(dtype=float)
        g = part["group"].astype(str).map(code).to_numpy(dtype=np.int64)
        loc = part["location"].to_numpy(dtype=np.int64)
        if caps_param is not None:
            if len(caps_param) != w.shape[1]:
                raise ValueError(f"capacities has {len(caps_param)} values but the log has {w.shape[1]} locations")
            caps = np.asarray(caps_param, dtype=float)
        else:
            caps = np.bincount(loc[loc >= 0], minlength=w.shape[1]).astype(float)
        outcome = part["outcome"].to_numpy(dtype=float) if has_outcome else None
        out.append((w, g, caps, names, loc, outcome, did.item() if hasattr(did, "item") else did))
    return out
