"""``exposure`` (SPEC §9): who gets seen? Each group's expected exposure — the attention
its members receive from the positions they are ranked at — and the disparity between
groups, under a family of attention models; merit-weighted when relevance is known.

Exposure of individual i under attention model v: ``E_i = Σ_p R[i, p]·v_p`` (expected over
the ranker's randomness; on a log, the mean over the rankings i appears in). A group's
exposure is the mean of ``E_i`` over its members; the disparity of an attribute is its
lowest group's exposure over its highest group's (1 = equal). With relevance ``u_i``
known (a numeric label, the expected grade of the ``p_<label>`` predictions, or a
non-negative score), the verdict is on the merit-weighted exposure ``mean(E_i)/mean(u_i)``
per group — exposure per unit of relevance, Singh & Joachims's "disparate treatment"
(KDD 2018) and Biega et al.'s equity of attention (SIGIR 2018) — so a ranking that shows a
group less because it is less relevant is told apart from one that does so regardless.

Position bias is uncertain, so the check takes a family of attention models
(:mod:`.attention`; default ``dcg, geometric:0.5-0.75, dcg@10``: the logarithmic
discount, the geometric model with γ on a grid over [0.5, 0.75] — Biega et al.'s
geometric attention with p from 0.25 to 0.5 — and the DCG discount cut at 10) and judges
the worst case: the statistic is the lowest disparity over every model and attribute, so
the check passes only if every model's disparity is certified at or above the threshold
and fails when one model's is certified below it.

Allocator: draws of the ranker on the ``--data`` population (a seeded subset of
``max_n`` rows when larger); each draw gives every group's mean weight under every
model, a bounded variable in [0, 1]; draws are taken sequentially with anytime-valid
betting confidence sequences (:class:`fairaudit.stats.BettingCS`), Bonferroni over
groups × models. The relevance of the data is known exactly, so merit-weighted
intervals are the exposure intervals divided by the group's mean relevance.
Log: :mod:`.log` (one GROUP BY where the log is; cluster-robust by decision).
Disparity intervals are the image of the simultaneous box under min/max, so they hold
jointly for every attribute and model.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as _st

from fairaudit.check import Check, Param
from fairaudit.groups import categories, is_unknown, membership
from fairaudit.inputs import data_instance
from fairaudit.result import Statistic, decide
from fairaudit.stats import BettingCS, per_member_confidence

from .attention import DEFAULT_FAMILY, family_weights, parse_family
from .log import category_sums, cluster_robust_means

RELEVANCE = ("auto", "label", "predictions", "score", "none")


def _family_param(value):
    parse_family(value)
    return ", ".join(s.strip() for s in str(value).split(",") if s.strip())


def disparities(attrs, est, lo, hi, usable):
    """Per attribute and model: the lowest group's value over the highest's, with the
    interval of that map over the simultaneous box ``[lo, hi]`` (groups × models).
    ``usable`` (G,) marks the groups that take part (a defined value). Returns rows."""
    attrs = np.asarray(attrs, dtype=object)
    rows = []
    for a in dict.fromkeys(attrs):
        idx = np.flatnonzero((attrs == a) & usable)
        if len(idx) < 2:
            continue
        for k in range(est.shape[1]):
            e, l, h = est[idx, k], lo[idx, k], hi[idx, k]
            top = float(e.max())
            d = float(e.min() / top) if top > 0 else float("nan")
            d_lo = float(l.min() / h.max()) if h.max() > 0 else 0.0
            d_hi = float(min(1.0, h.min() / l.max())) if l.max() > 0 else 1.0
            rows.append({"attribute": a, "model": k, "disparity": min(d, 1.0), "lo": min(d_lo, 1.0), "hi": d_hi,
                         "lowest": int(idx[np.argmin(e)]), "highest": int(idx[np.argmax(e)])})
    return rows


def relevance_of(inst, choice: str):
    """(u (n,) non-negative, source) from an instance, or (None, why not)."""
    order = ["label", "predictions", "score"] if choice == "auto" else [choice]
    why = []
    for src in order:
        if src == "none":
            return None, "relevance not used (relevance=none)"
        if src == "label":
            if inst.labels is None:
                why.append("no label column")
                continue
            u = pd.to_numeric(pd.Series(inst.labels), errors="coerce").to_numpy(dtype=float)
            if not np.all(np.isfinite(u)) or (u < 0).any():
                why.append("the label column is not a non-negative number")
                continue
            return u, "label"
        if src == "predictions":
            P = inst.predictions
            if P is None:
                why.append("no p_<label> columns")
                continue
            P = np.asarray(P, dtype=float)
            if P.ndim == 1 or P.shape[1] == 1:
                return P.reshape(-1), "predictions (p of the positive label)"
            return (P @ np.arange(P.shape[1])) / P.sum(axis=1) / (P.shape[1] - 1), \
                "predictions (expected grade Σ_j j·p_j / (m − 1))"
        if src == "score":
            if inst.scores is None or (np.asarray(inst.scores) < 0).any():
                why.append("no non-negative score")
                continue
            return np.asarray(inst.scores, dtype=float), "score"
    return None, "; ".join(why) or "no relevance"


class Exposure(Check):
    id = "exposure"
    title = "Exposure under position bias"
    summary = ("Each group's expected exposure (attention from its positions) and the disparity between groups, "
               "merit-weighted when relevance is known, worst case over a family of attention models.")
    definition = ("A person's exposure is the attention their position receives, averaged over the rankings they "
                  "appear in (position p gets weight v_p: a logarithmic discount, a geometric decay, or a top-k "
                  "cut-off). A group's exposure is its members' mean; the disparity is the lowest group's exposure "
                  "divided by the highest's. When relevance is known, exposure is taken per unit of relevance (Singh "
                  "& Joachims, KDD 2018; Biega et al., SIGIR 2018), so a group shown less only because it is less "
                  "relevant is not counted against the ranking. Position bias is uncertain, so the disparity must "
                  "stay above the threshold under every attention model of the family; intervals hold simultaneously "
                  "for all groups and models.")
    kinds = ("ranking",)
    params = {
        "threshold": Param(0.8, "lowest tolerated ratio of a group's (merit-weighted) exposure to the highest group's",
                           type=float, min=0, max=1),
        "models": Param(DEFAULT_FAMILY, "attention models: dcg, dcg@K, geometric:G or geometric:A-B (a grid over the "
                        "declared range), top:K; the verdict must hold under every one", parse=_family_param),
        "relevance": Param("auto", "merit: auto (label, else p_<label> predictions, else a non-negative score), label, "
                           "predictions, score, or none (plain exposure)", choices=RELEVANCE),
        "depth": Param(1, "intersections of up to this many group columns", type=int, min=1),
        "max_n": Param(200, "rank a seeded subset of this many rows of larger data", type=int, min=2),
        "max_draws": Param(20000, "draws at most (sequential sampling stops earlier once decided)", type=int, min=1),
    }
    statistic_labels = {"min_exposure_ratio": "lowest exposure ratio (worst attention model)",
                        "min_merit_exposure_ratio": "lowest exposure-per-relevance ratio (worst attention model)"}
    column_labels = {"model": "attention model", "disparity": "lowest / highest exposure",
                     "merit_exposure": "exposure per unit of relevance", "relevance": "mean relevance",
                     "lowest": "least exposed group", "highest": "most exposed group"}
    table_titles = {"groups": "Exposure per group and attention model",
                    "models": "Disparity per attention model (each must reach the threshold)"}
    headlines = {
        "min_exposure_ratio": ("The least-seen group gets {est} of the most-seen group's attention (worst attention "
                               "model)", "the threshold {tol}"),
        "min_merit_exposure_ratio": ("Per unit of relevance, the least-seen group gets {est} of the most-seen group's "
                                     "attention (worst attention model)", "the threshold {tol}")}
    data_needs = ("group columns (and, for the merit-weighted variant, a label, p_<label> predictions or a score); "
                  "a ranking log or --data",
                  "fairaudit check ranker.py --checks exposure --data people.csv")

    def skip_reason(self, ctx):
        if ctx.log is not None:
            return None if ctx.log.group_cols else "the log has no group columns (name them with --groups)"
        pop = ctx.population
        if pop is None:
            return "no population data with groups (give --data FILE with group columns)"
        if not pop.group_cols:
            return f"{pop.path} has no group columns (name them with --groups)"
        return None

    # ------------------------------------------------------------------
    def run(self, ctx, threshold, models, relevance, depth, max_n, max_draws):
        fam = parse_family(models)
        if ctx.log is not None:
            return self._run_log(ctx, threshold, fam, relevance, depth)
        inst = data_instance(ctx, "ranking", int(max_n), ctx.rng(f"{self.id}/rows"), "exposure")
        if inst is None:
            return self.result("skipped", f"{ctx.population.path or 'the data'} has no p_<label> prediction columns "
                                          "for this ranker")
        n = inst.n
        u, rel_src = relevance_of(inst, relevance)
        cats = categories(inst.groups, list(inst.groups.columns), int(depth))
        M = membership(cats)
        sizes = M.sum(axis=0)
        G, K = len(cats), len(fam)
        V = family_weights(fam, n)                                       # (K, n)
        U = (u @ M) / sizes if u is not None else None
        merit = U is not None
        usable = (U > 0) if merit else np.ones(G, bool)
        conf = per_member_confidence(ctx.confidence, G * K)
        cs = BettingCS(G * K, conf)
        acc = {"sum": np.zeros(G * K)}
        attrs = [c.attribute for c in cats]

        def group_means(draws):                                          # (B, K·G)
            pos = np.argsort(draws, axis=1)                              # position of each individual
            X = V[:, pos] @ M / sizes                                    # (K, B, G)
            return np.transpose(X, (1, 0, 2)).reshape(len(draws), K * G)

        def bounds(draws):
            if cs.n < len(draws):
                x = group_means(draws[cs.n:])
                acc["sum"] = acc["sum"] + x.sum(axis=0)
                lo, hi = cs.update(x)
                acc["b"] = tuple(a.reshape(K, G).T for a in (acc["sum"] / cs.n, lo, hi))   # (G, K)
            return acc["b"]

        def judged(draws):
            e, lo, hi = bounds(draws)
            if merit:
                with np.errstate(divide="ignore", invalid="ignore"):
                    e, lo, hi = (np.where(usable[:, None], a / U[:, None], np.nan) for a in (e, lo, hi))
            return e, lo, hi

        def decided(draws):
            # every (attribute, model) decided, so the per-model table is complete, not only the worst case
            rows = disparities(attrs, *judged(draws), usable)
            return all(decide((r["lo"], r["hi"]), threshold, "below") != "inconclusive" for r in rows)

        draws = ctx.sampler.sample_until(inst, self.id, decided, ctx.max_draws(max_draws))
        e_raw, lo_raw, hi_raw = bounds(draws)
        e, lo, hi = judged(draws)
        method = (f"betting confidence sequences (hedged capital, anytime-valid) on each draw's group mean weight, "
                  f"bonferroni over {G} groups × {K} attention models")
        if merit:
            method += f"; relevance ({rel_src}) known exactly, so exposure per relevance = exposure / mean relevance"
        return self._finish(ctx, cats, attrs, sizes, U, e_raw, lo_raw, hi_raw, e, lo, hi, usable, fam, merit,
                            rel_src, threshold, len(draws), "draws", method, from_log=False,
                            extra={"ranked": f"{inst.label} (n={n})"})

    # ------------------------------------------------------------------
    def _run_log(self, ctx, threshold, fam, relevance, depth):
        log = ctx.log
        rel = self._log_relevance(log, relevance)
        rel_kind, rel_src = rel if isinstance(rel, tuple) else (None, rel)
        from fairaudit.inputs import prediction_order
        preds = prediction_order(log.pred_cols)
        cats = category_sums(log.table, log.group_cols, int(depth), fam, rel_kind, preds)
        G, K = len(cats), len(fam)
        z = float(_st.norm.ppf(1 - (1 - ctx.confidence) / (2 * max(G * K, 1))))
        e_raw, lo_raw, hi_raw = cluster_robust_means(cats, K, False, z)
        merit = rel_kind is not None
        sizes = np.array([c.size for c in cats], dtype=float)
        if merit:
            U = np.array([c.s["U"] for c in cats]) / np.maximum(sizes, 1)
            zm = float(_st.norm.ppf(1 - (1 - ctx.confidence) / (2 * max(G * K, 1))))
            e, lo, hi = cluster_robust_means(cats, K, True, zm)
            usable = U > 0
        else:
            U, usable = None, np.ones(G, bool)
            e, lo, hi = e_raw, lo_raw, hi_raw
        attrs = [c.attribute for c in cats]
        method = (f"a group's exposure is the mean weight over its logged rows (each an appearance of a person in a "
                  f"ranking); cluster-robust by decision (CR1 sandwich variance over the decisions, normal interval), "
                  f"bonferroni over {G} groups × {K} attention models; aggregated where the log is")
        if merit:
            method += (f"; exposure per relevance ({rel_src}) is the ratio of the group's summed weights to its summed "
                       f"relevance, its variance linearised (ratio estimator)")
        decisions = log.n_decisions
        return self._finish(ctx, cats, attrs, sizes, U, e_raw, lo_raw, hi_raw, e, lo, hi, usable, fam, merit,
                            rel_src, threshold, decisions, "logged rankings", method, from_log=True,
                            extra={"rows": log.n_rows, "decisions": decisions})

    @staticmethod
    def _log_relevance(log, choice):
        """(SQL kind, words) of the log's relevance, or the words why there is none."""
        from .log import relevance_nw, relevance_sql
        order = ["label", "predictions", "score"] if choice == "auto" else [choice]
        why = []
        for src in order:
            if src == "none":
                return "relevance not used (relevance=none)"
            if (src == "label" and "label" not in log.columns) or (src == "predictions" and not log.pred_cols) or \
                    (src == "score" and "score" not in log.columns):
                why.append(f"no {src} column" if src != "predictions" else "no p_<label> columns")
                continue
            from fairaudit.inputs import prediction_order
            preds = prediction_order(log.pred_cols)
            t = log.table
            if getattr(t, "pushdown", False):
                import narwhals as nw
                x = relevance_nw(src, preds)
                mn, bad = t._one(x.min().alias("mn"), x.is_null().cast(nw.Int64).sum().alias("bad"))
            else:
                x = relevance_sql(src, preds)
                mn, bad = t.rows(f"SELECT min({x}), count(*) - count({x}) FROM log")[0]
            if bad or mn is None or float(mn) < 0:
                why.append(f"the {src} is not a non-negative number on every row")
                continue
            words = {"label": "label", "score": "score",
                     "predictions": "predictions (expected grade Σ_j j·p_j / (m − 1))"}[src]
            return src, words
        return "; ".join(why)

    # ------------------------------------------------------------------
    def _finish(self, ctx, cats, attrs, sizes, U, e_raw, lo_raw, hi_raw, e, lo, hi, usable, fam, merit, rel_src,
                threshold, n_obs, unit, method, from_log, extra):
        names = [m.name for m in fam]
        unknown = np.array([is_unknown(c.value) for c in cats], bool)
        usable = usable & ~unknown              # a missing group value: listed, compared with no one
        rows = disparities(attrs, e, lo, hi, usable)
        sname = "min_merit_exposure_ratio" if merit else "min_exposure_ratio"
        if not rows:
            return self.result("skipped", "No attribute has two groups to compare"
                               + (" with positive relevance" if merit else "") + ".")
        worst = min(rows, key=lambda r: (r["disparity"], r["lo"]))
        stat = Statistic(sname, float(min(r["disparity"] for r in rows)),
                         (float(min(r["lo"] for r in rows)), float(min(r["hi"] for r in rows))),
                         tolerance=float(threshold), method=method, violation="below")
        gtab = []
        for g, c in enumerate(cats):
            for k, nm in enumerate(names):
                row = {"attribute": c.attribute, "category": c.value, "n": int(sizes[g]), "model": nm,
                       "exposure": e_raw[g, k], "exposure_lo": lo_raw[g, k], "exposure_hi": hi_raw[g, k]}
                if merit:
                    row.update({"relevance": float(U[g]), "merit_exposure": e[g, k], "merit_exposure_lo": lo[g, k],
                                "merit_exposure_hi": hi[g, k]})
                gtab.append(row)
        mtab = pd.DataFrame([{"attribute": r["attribute"], "model": names[r["model"]], "disparity": r["disparity"],
                              "disparity_lo": r["lo"], "disparity_hi": r["hi"],
                              "lowest": cats[r["lowest"]].value, "highest": cats[r["highest"]].value,
                              "verdict": decide((r["lo"], r["hi"]), threshold, "below")} for r in rows])
        what = "exposure per unit of relevance" if merit else "exposure"
        lo_c, hi_c = cats[worst["lowest"]], cats[worst["highest"]]
        who = (f"under {names[worst['model']]}, {worst['attribute']} = {lo_c.value} gets {worst['disparity']:.3f} of "
               f"the {what} of {worst['attribute']} = {hi_c.value} (interval [{worst['lo']:.3f}, {worst['hi']:.3f}])")
        n_fail = int((mtab["verdict"] == "fail").sum())
        msgs = {"fail": f"Unequal attention: {who}; {n_fail} of {len(mtab)} (attribute, attention model) pairs are "
                        f"certified below {threshold:g}.",
                "pass": f"Every group's {what} is at least {threshold:g} of the highest group's under every one of the "
                        f"{len(fam)} attention models; the worst case: {who}.",
                "inconclusive": f"The worst case over the {len(fam)} attention models cannot yet be placed above or "
                                f"below {threshold:g}: {who}."}
        evidence = {"family": names, "worst_case": f"the statistic is the lowest disparity over all {len(fam)} models "
                                                   f"and every attribute: the verdict holds under every model",
                    "worst": {"model": names[worst["model"]], "attribute": worst["attribute"], "lowest": lo_c.value,
                              "highest": hi_c.value, "disparity": worst["disparity"],
                              "ci": [worst["lo"], worst["hi"]]},
                    "relevance": rel_src if merit else None, "merit_weighted": bool(merit),
                    "unit": unit, **extra}
        if not merit:
            evidence["no_relevance"] = rel_src
        if merit and not usable.all():
            evidence["groups_without_relevance"] = [c.name for c, ok in zip(cats, usable) if not ok]
        figures = [{"kind": "interval_bars", "title": f"Disparity per attribute and model ({what})",
                    "labels": [f"{a} · {m}" for a, m in zip(mtab["attribute"], mtab["model"])],
                    "estimate": list(mtab["disparity"]), "lo": list(mtab["disparity_lo"]),
                    "hi": list(mtab["disparity_hi"]), "xlabel": "lowest / highest", "reference": threshold,
                    "reference_label": f"threshold {threshold:g}", "verdicts": list(mtab["verdict"])}]
        return self.judged(stat, msgs, int(n_obs), from_log=from_log, evidence=evidence,
                           tables={"models": mtab, "groups": pd.DataFrame(gtab)}, figures=figures, method=method)
