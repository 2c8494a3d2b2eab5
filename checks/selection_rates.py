"""``selection_rates``: selection rate per group and impact ratios (the four-fifths rule).

The table a compliance auditor asks for first — NYC Local Law 144 bias audits require
the selection rate and the impact ratio of every category (SPEC §7).

Allocator (over draws; a per-person decision rule likewise, its yeses are the selected)
    The selection rate of a group is the chance a member is selected, averaged over
    the group: ``mean_{i∈g} π_i``. Each draw gives the fraction of the group selected,
    a bounded variable; draws are taken sequentially and each group's rate gets an
    anytime-valid betting confidence sequence (hedged capital, Waudby-Smith & Ramdas
    2024; :class:`fairaudit.stats.BettingCS`, carried across looks so each look costs
    only its new draws; Bonferroni over groups), so sampling stops
    as soon as the verdict is certain, and the intervals stay valid. At low variance it
    is much tighter than the empirical-Bernstein sequence used before (top-k on
    examples/data/population.csv after 256 draws: impact ratio 0.277 [0.178, 0.560],
    was [0, 0.768]; the Broome lottery passes after 1024 draws, was 2048).
Log (over decisions)
    The rate is selected rows / rows of the group. When ``individual_id`` recurs across
    decisions (one person's rows are positively correlated trials) the intervals are
    cluster-robust by person by default (the score interval of the CR2 sandwich variance
    over individuals with a Bell–McCaffrey t, Bonferroni over categories, never narrower
    than Clopper–Pearson of the same counts: ``stats.cluster_robust_proportion_ci``); otherwise — no ``individual_id``, or every id once — rows are independent
    trials with simultaneous Clopper–Pearson intervals (within one decision event the
    k-of-n constraint makes outcomes negatively dependent, which keeps them
    conservative). ``cluster_by`` picks another cluster column, or ``none`` for the
    independent-rows interval anyway (the result then notes the recurring ids). The
    counts, and the per-cluster sums, are one ``GROUP BY GROUPING SETS`` query in the log
    engine (DuckDB, or Dask/Spark where the log lives), so the log's rows are never loaded.

Impact ratio of category g = its rate / the highest rate among the categories of the
same attribute. Its interval is the image of the simultaneous box of group-rate
intervals under that map, so all impact-ratio intervals hold jointly too. Categories
below ``min_share`` of individuals (LL144's 2% rule) are shown and flagged but do not
decide the verdict. Verdict on the smallest impact ratio: fail if its interval lies
below ``threshold``, pass if above, otherwise inconclusive.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from fairaudit.check import Check, Param
from fairaudit.groups import categories, is_unknown, membership
from fairaudit.logs.duckdb import category_counts, dbl, q, quantile_from_counts
from fairaudit.result import Statistic, decide
from fairaudit.stats import BettingCS, cluster_robust_proportion_ci, per_member_confidence, ratio_ci_from_intervals, \
    simultaneous_proportion_ci


class SelectionRates(Check):
    id = "selection_rates"
    # -- words for readers (the report and the terminal read these from the registry) --
    statistic_labels = {
        'min_impact_ratio': 'lowest impact ratio',
    }
    headlines = {
        'min_impact_ratio': ('The least-selected group is selected at {est} times the rate of the most-selected group',
                             'the four-fifths line ({tol})'),
    }
    column_labels = {
        'impact_ratio': 'impact ratio',
        'scoring_rate': 'scoring rate (share above the median score)', 'above_median': 'scoring above the median',
        'unknown': 'category unknown (missing group value)',
    }
    table_titles = {'scoring': 'Scoring rates and impact ratios (LL144, tools that output scores)'}
    data_needs = ('--data FILE with a score column and group columns (or a selection log with group columns)',
                  'fairaudit check my_allocator.py --checks selection_rates --data people.csv')
    title = "Selection rates and impact ratios"
    summary = "Selection rate per group and intersection, impact ratios vs the four-fifths rule (NYC LL144 table)."
    definition = ("The selection rate of a group is the chance that one of its members is selected. "
                  "The impact ratio of a group is its selection rate divided by the highest selection rate "
                  "among groups of the same attribute; the four-fifths rule flags ratios below 0.8. "
                  "Intervals hold simultaneously for all groups.")
    kinds = ("selection", "decision")
    table_titles = {
        "groups": "Selection rate and impact ratio per group",
    }
    params = {
        "threshold": Param(0.8, "impact ratio below which a group is adversely impacted (four-fifths rule)",
            type=float, min=0, max=1),
        "depth": Param(2, "intersections of up to this many group columns", type=int, min=1),
        "min_share": Param(0.02, "categories with a smaller share of individuals are flagged and excluded from the verdict",
            type=float, min=0, max=1),
        "cluster_by": Param("auto", "log column whose rows are one unit's correlated trials: cluster-robust rate "
            "intervals by it; auto: individual_id when it recurs across decisions, else rows are independent "
            "trials; none: rows are independent trials", type=str),
        "max_draws": Param(20000, "draws at most (sequential sampling stops earlier once decided)", type=int, min=1),
    }

    def skip_reason(self, ctx):
        if ctx.log is not None:
            return None if ctx.log.group_cols else "the log has no group columns (name them with --groups)"
        if ctx.population is None:
            return "no population data with groups (give --data FILE with group columns)"
        if not ctx.population.group_cols:
            return f"{ctx.population.path} has no group columns (name them with --groups)"
        if ctx.population.scores is None and ctx.kind == "selection":
            return f"{ctx.population.path} has no score column"
        return None

    # ------------------------------------------------------------------
    def run(self, ctx, threshold, depth, min_share, cluster_by, max_draws):
        if ctx.log is not None:
            return self._run_log(ctx, threshold, depth, min_share, cluster_by)
        inst = ctx.population_instance()
        cats = categories(inst.groups, list(inst.groups.columns), depth)
        M = membership(cats)
        sizes = M.sum(axis=0)
        G = len(cats)
        member_conf = per_member_confidence(ctx.confidence, G)
        method = f"betting confidence sequence (hedged capital, anytime-valid), bonferroni over {G}"

        Mf = M.astype(float)

        def rates_of(draws):                     # (B, G): fraction of each group selected per draw
            if ctx.kind == "decision":           # (B, n) yes/no per person, any number of yeses
                return (draws @ Mf) / sizes
            return M[draws].sum(axis=1) / sizes

        # one confidence sequence per group, carried across looks: each look adds its new draws
        cs = BettingCS(G, member_conf)
        last: dict = {"sum": np.zeros(G)}

        def bounds(draws):
            if cs.n < len(draws):
                r = rates_of(draws[cs.n:])
                last["sum"] = last["sum"] + r.sum(axis=0)
                lo, hi = cs.update(r)
                last["bounds"] = (last["sum"] / cs.n, lo, hi)
            return last["bounds"]

        attrs = [c.attribute for c in cats]
        unknown = np.array([is_unknown(c.value) for c in cats], bool)

        def decided(draws):
            ratios = _impact_ratios(attrs, sizes, *bounds(draws), min_share, unknown)[:4]
            stat = _min_impact_statistic(*ratios, threshold, method)
            return decide(stat.ci, threshold, "below") != "inconclusive"

        draws = ctx.sampler.sample_until(inst, self.id, decided, ctx.max_draws(max_draws))
        est, lo, hi = bounds(draws)
        table, stat = _impact(cats, est, lo, hi, sizes, threshold, min_share, method)
        pop = ctx.population
        return self._finish(table, stat, threshold, len(draws), "draws", cats,
                            data={"size": int(pop.n), "unit": "individuals"})

    def _run_log(self, ctx, threshold, depth, min_share, cluster_by):
        # counts and selected sums per category and intersection: one GROUPING SETS query
        # where the log is (DuckDB), never the rows; with cluster_by, also the per-cluster
        # sums a cluster-robust variance needs
        log = ctx.log
        choice = (cluster_by or "none").strip()
        recurs = log.individual_recurs()
        if choice == "auto":
            cluster = "individual_id" if recurs else None
        else:
            cluster = None if choice == "none" else choice
        if cluster and cluster not in log.columns:
            return self.result("error", f"cluster_by={cluster!r} is not a column of the log; it has "
                                        f"{', '.join(log.columns)}")
        cats = category_counts(log.table, log.group_cols, depth, cluster=cluster)
        k = np.array([int(c.selected) for c in cats])
        n = np.array([c.size for c in cats])
        if cluster:
            sums = [np.array([np.nan if c.extra[j] is None else c.extra[j] for c in cats], dtype=float) for j in range(8)]
            lo, hi, method = cluster_robust_proportion_ci(k, n, *sums, confidence=ctx.confidence)
            method = method.replace("individual_id", cluster)
            assumption = (f"Rows of one {cluster} are correlated trials{' (individual_id recurs across decisions)' if choice == 'auto' else ''}: "
                          f"each rate's interval is cluster-robust by {cluster} — the score interval of the CR2 "
                          f"(Bell–McCaffrey) variance Σ_c (y_c − p·n_c)²/(N·(N − n_c)) over its clusters, with a t "
                          f"reference on Bell–McCaffrey degrees of freedom, at the Bonferroni level, widened to "
                          f"contain the Clopper–Pearson interval of the same counts.")
        else:
            lo, hi, method = simultaneous_proportion_ci(k, n, ctx.confidence)
            assumption = ("Logged rows are independent trials: each rate's interval is Clopper–Pearson, "
                          "Bonferroni over the categories.")
        table, stat = _impact(cats, k / np.maximum(n, 1), lo, hi, n, threshold, min_share, method)
        table.insert(3, "selected", k)
        out = self._finish(table, stat, threshold, log.n_rows, "logged rows", cats, from_log=True,
                           data={"size": int(log.n_rows), "unit": "logged rows",
                                 "decisions": int(log.n_decisions)})
        if "score" in log.columns:
            scoring, median = _scoring_rates(log, cats, int(depth), ctx.confidence, threshold, min_share)
            out.tables["scoring"] = scoring
            low = scoring.loc[scoring["in_verdict"]].sort_values("impact_ratio").head(1)
            out.evidence["scoring"] = {
                "median_score": median, "definition": "the scoring rate of a category is the share of its rows scoring "
                                                      "above the median score of all logged rows (LL144)",
                "lowest": low.to_dict("records")[0] if len(low) else None}
        out = replace(out, definition=f"{out.definition} {assumption}")
        med = getattr(log, "scoring_median", None)
        if med is not None:             # a scoring tool's log: the rates are LL144 scoring rates
            note = (f"The log has scores and no selections: every rate here is a scoring rate, the share of the "
                    f"category scoring above the median score {med:.6g} of all {log.n_rows:,} rows (LL144).")
            out = replace(out, message=f"{note} {out.message}", definition=f"{out.definition} {note}")
            out.evidence["scores_only"] = {"median_score": med, "statement": note}
        out.evidence["interval_assumption"] = assumption
        if not cluster and recurs:
            out.evidence["independence_note"] = (
                "individual_id recurs across decisions, so one person's rows are correlated trials; these "
                "intervals treat rows as independent (cluster_by=none). The default, cluster_by=auto, makes "
                "them cluster-robust by individual_id.")
        return out

    def _finish(self, table, stat, threshold, n_obs, unit, cats, from_log=False, data=None):
        worst = table.loc[table["in_verdict"]].sort_values("impact_ratio").head(1)
        who = ""
        if len(worst):
            w = worst.iloc[0]
            # one figure, one interval: this group's ratio is the smallest, and the interval given is
            # the statistic's, for the smallest ratio over all groups (the lowest bounds over the groups,
            # which need not be this group's own; the table gives each group's own interval)
            who = (f"{w['attribute']} = {w['category']} (impact ratio {stat.estimate:.3f}, the smallest; interval "
                   f"for the smallest ratio [{stat.ci[0]:.3f}, {stat.ci[1]:.3f}])")
        msgs = {
            "fail": f"Adverse impact: {who} is selected at less than {threshold:g} of the most-selected group's rate, "
                    f"with confidence.",
            "pass": f"Every group's impact ratio is at least {threshold:g} with confidence; the lowest is {who}.",
            "inconclusive": f"The lowest impact ratio, {who}, cannot yet be placed above or below {threshold:g}.",
        }
        if len(worst) and not np.isfinite(worst.iloc[0]["impact_ratio"]):
            # every rate is 0: a ratio to the highest rate is 0/0 (the statistic is NaN, so the
            # verdict rule says inconclusive); say why instead of printing "nan"
            nobody = (f"Nobody was selected in the {n_obs:,} {unit}" if from_log else
                      f"No draw of the {n_obs:,} selected anyone in the groups")
            msgs = {v: f"{nobody}, so no impact ratio (a group's rate divided by the highest rate) is defined: "
                       f"adverse impact cannot be judged." for v in ("pass", "fail", "inconclusive")}
        small = table.loc[~table["in_verdict"] & ~table["unknown"], "category"].tolist()
        # individuals whose category is unknown (a missing group value): counted per attribute, in no ratio
        unknown = {a: int(table.loc[(table["attribute"] == a) & table["unknown"], "n"].sum())
                   for a in dict.fromkeys(table["attribute"])}
        evidence = {"worst": worst.to_dict("records")[0] if len(worst) else None,
                    "groups": {r["label"]: {"rate": {"estimate": r["rate"], "ci": [r["rate_lo"], r["rate_hi"]]},
                                            "impact_ratio": {"estimate": r["impact_ratio"], "ci": [r["ir_lo"], r["ir_hi"]]},
                                            "n": r["n"]} for r in table.to_dict("records")},
                    "excluded_small_categories": small, "unit": unit,
                    "unknown_category": unknown, "audit_data": data}
        if any(unknown.values()):
            cols = {a: c for a, c in unknown.items() if " × " not in a and c}
            note = (" Category unknown (missing group value, counted but in no ratio): "
                    + ", ".join(f"{c:,} for {a}" for a, c in cols.items()) + ".") if cols else ""
            msgs = {v: m + note for v, m in msgs.items()}
        figures = [
            {"kind": "interval_bars", "title": "Selection rate by group", "labels": list(table["label"]),
             "estimate": list(table["rate"]), "lo": list(table["rate_lo"]), "hi": list(table["rate_hi"]),
             "xlabel": "selection rate"},
            {"kind": "interval_bars", "title": "Impact ratio by group", "labels": list(table["label"]),
             "estimate": list(table["impact_ratio"]), "lo": list(table["ir_lo"]), "hi": list(table["ir_hi"]),
             "xlabel": "impact ratio", "reference": threshold, "reference_label": f"threshold {threshold:g}",
             "highlight": [not v for v in table["in_verdict"]], "verdicts": list(table["verdict"])},
        ]
        table = table.drop(columns=["label"])
        return self.judged(stat, msgs, n_obs, from_log=from_log, evidence=evidence, tables={"groups": table}, figures=figures,
                           method=stat.method)


def _impact_ratios(attrs, sizes, est, lo, hi, min_share, unknown=None):
    """Impact ratios within each attribute, against the highest rate among that attribute's
    categories of at least ``min_share`` (all of them when none is that large), with the
    ratio intervals of :func:`ratio_ci_from_intervals`: ``(ir, ir_lo, ir_hi, in_verdict, ref)``,
    ``ref`` the index of each category's reference (its attribute's most-selected eligible one)."""
    attrs = np.asarray(attrs, dtype=object)
    sizes = np.asarray(sizes, dtype=float)
    est, lo, hi = (np.asarray(a, dtype=float) for a in (est, lo, hi))
    n_all = sizes[attrs == attrs[0]].sum() if len(attrs) else 1.0
    in_verdict = sizes / max(n_all, 1) >= min_share
    if unknown is not None:           # individuals of unknown category: counted, not in any ratio (LL144)
        in_verdict &= ~np.asarray(unknown, bool)
    ir, ir_lo, ir_hi = np.full(len(est), np.nan), np.zeros(len(est)), np.ones(len(est))
    ref = np.zeros(len(est), dtype=int)
    for attr in dict.fromkeys(attrs):
        idx = np.flatnonzero(attrs == attr)
        known = idx if unknown is None else idx[~np.asarray(unknown, bool)[idx]]
        known = known if len(known) else idx
        elig = idx[in_verdict[idx]] if in_verdict[idx].any() else known
        ref[idx] = elig[np.argmax(np.nan_to_num(est[elig], nan=-np.inf))]
        top = est[elig].max()
        with np.errstate(divide="ignore", invalid="ignore"):
            ir[idx] = est[idx] / top if top > 0 else np.nan
        ir_lo[idx], ir_hi[idx] = ratio_ci_from_intervals(lo[idx], hi[idx], lo[elig].max(), hi[elig].max(), cap=1.0)
    return np.minimum(ir, 1.0), ir_lo, ir_hi, in_verdict, ref


def _min_impact_statistic(ir, ir_lo, ir_hi, in_verdict, threshold, method):
    """The verdict's statistic: the lowest impact ratio among the categories in the verdict."""
    v = in_verdict if in_verdict.any() else np.ones(len(ir), bool)
    est = float(np.nanmin(ir[v])) if np.isfinite(ir[v]).any() else float("nan")
    return Statistic("min_impact_ratio", est, (float(ir_lo[v].min()), float(ir_hi[v].min())), tolerance=threshold,
                     method=method, violation="below")


def _impact(cats, est, lo, hi, sizes, threshold, min_share, method):
    """Group table with impact ratios (within attribute) and the min-impact-ratio statistic."""
    attrs = [c.attribute for c in cats]
    unknown = np.array([is_unknown(c.value) for c in cats], bool)
    ir, ir_lo, ir_hi, in_verdict, ref = _impact_ratios(attrs, sizes, est, lo, hi, min_share, unknown)
    n_all = sum(c.size for c in cats if c.attribute == cats[0].attribute) if cats else 1
    df = pd.DataFrame({
        "attribute": attrs, "category": [c.value for c in cats],
        "n": np.asarray(sizes, dtype=int), "rate": est, "rate_lo": lo, "rate_hi": hi})
    df["share"] = df["n"] / max(n_all, 1)
    df["in_verdict"] = in_verdict
    df["impact_ratio"] = ir
    df["ir_lo"], df["ir_hi"] = ir_lo, ir_hi
    # the group each ratio is relative to, named as Aequitas's bias report names its reference group
    df["reference"] = df["category"].to_numpy()[ref]
    # each group's own verdict on the four-fifths rule; the check fails iff some judged group does
    df["unknown"] = unknown
    df["verdict"] = [decide((a, b), threshold, "below") if judged else
                     ("not judged (unknown category)" if unk else "not judged (too small)")
                     for a, b, judged, unk in zip(ir_lo, ir_hi, df["in_verdict"], unknown)]
    df["label"] = df["attribute"] + " = " + df["category"]
    return df, _min_impact_statistic(ir, ir_lo, ir_hi, in_verdict, threshold, method)


def _scoring_rates(log, cats, depth: int, confidence: float, threshold: float, min_share: float):
    """LL144's scoring rates on a log with scores: per category, the share of its rows scoring
    above the median score of all logged rows, with simultaneous Clopper–Pearson intervals
    and impact ratios (the same rules as the selection rates: categories under ``min_share``
    and the unknown category listed, in no ratio). One GROUPING SETS query where the log is
    (DuckDB, or the Dask/Spark engine's cells keyed by above-the-median). Returns
    ``(table, median)``."""
    from fairaudit.logs.duckdb import attribute_sets
    t = log.table
    values, counts = t.value_counts("score")
    median = float(quantile_from_counts(values, counts, np.array([0.5]))[0])
    gcols = list(log.group_cols)
    gq = [q(g) for g in gcols]
    sets = attribute_sets(gcols, depth)
    spec = ", ".join("(" + ", ".join(q(c) for c in s) + ")" for s in sets)
    gid = f"GROUPING({', '.join(gq)})" if len(gq) > 1 else f"GROUPING({gq[0]})"
    if getattr(t, "pushdown", False):          # the engine's cells, keyed by above-the-median too
        import narwhals as nw
        above = (nw.col("score").cast(nw.Float64) > median).cast(nw.Int64)
    else:
        above = f"CAST(score > {dbl(median)} AS INTEGER)"
    run, src, N, _ = t.count_source(gcols + ["__above"], "selected", {"__above": above})
    A = "sum(n * __above)" if src == "cells" else "sum(__above)"
    res = run(f"SELECT {gid}, {', '.join(gq)}, {N}, {A} FROM {src} GROUP BY GROUPING SETS ({spec})")
    nb = len(gq)
    found = {}
    for r in res:
        present = tuple(g for j, g in enumerate(gcols) if not (r[0] >> (nb - 1 - j)) & 1)
        key = " × ".join(str(r[1 + gcols.index(g)]) for g in present)
        found[(" × ".join(present), key)] = (int(r[1 + nb]), int(r[2 + nb] or 0))
    n = np.array([found.get((c.attribute, c.value), (0, 0))[0] for c in cats])
    k = np.array([found.get((c.attribute, c.value), (0, 0))[1] for c in cats])
    lo, hi, method = simultaneous_proportion_ci(k, n, confidence)
    table, _ = _impact(cats, k / np.maximum(n, 1), lo, hi, n, threshold, min_share, method)
    table = table.rename(columns={"rate": "scoring_rate", "rate_lo": "scoring_rate_lo", "rate_hi": "scoring_rate_hi"})
    table.insert(3, "above_median", k)
    return table.drop(columns=["label"]), median
