"""``error_rate_parity``: true- and false-positive rates per group — equal opportunity and
equalized odds (Hardt, Price & Srebro 2016) — with simultaneous intervals.

Definition
    With binary labels ``y`` (1 = the outcome that deserves a yes, e.g. a repaid loan)
    and ``π_i`` the chance that individual ``i`` gets a yes, the true-positive rate of
    group g is ``TPR_g = mean_{i∈g, y_i=1} π_i`` and its false-positive rate
    ``FPR_g = mean_{i∈g, y_i=0} π_i``. *Equal opportunity* asks the TPRs of the categories
    of each attribute to be equal; *equalized odds* asks the same of TPRs and FPRs.
Allocator (over draws)
    Each draw gives, per group, the fraction of its positives (negatives) that got a yes:
    bounded variables, so each rate gets an anytime-valid betting confidence sequence
    (:class:`fairaudit.stats.BettingCS`, carried across looks so each look costs its new
    draws, as ``selection_rates``), Bonferroni over every rate in the family; sampling
    stops once the verdict is certain. A selection's selected count as its yeses.
Log (over decisions)
    Rates are yes-rows / rows among a group's labelled positives (negatives), with
    Clopper–Pearson intervals simultaneous over the family; the counts are one
    ``GROUPING SETS`` query per label value in the log engine (DuckDB).
Ratios and differences
    Per attribute the *reference* category is the one with the highest rate; each
    category's ratio is its rate / the reference's and its difference its rate − the
    reference's. Ratio and difference intervals are the images of the simultaneous box of
    rate intervals, so they hold jointly with the rates.
Verdict (the rule of ``selection_rates``)
    On the smallest ratio — of TPRs (``criterion=equal_opportunity``) or of TPRs and FPRs
    (``equalized_odds``, the default): fail if its interval lies below ``threshold``
    (0.8, the four-fifths line), pass if above, otherwise inconclusive. Categories below
    ``min_share`` of individuals, and a rate with no labelled individuals behind it
    (a group with no positives has no TPR), are shown but do not decide.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from fairaudit.check import Check, Param
from fairaudit.groups import categories, membership
from fairaudit.logs.duckdb import category_counts
from fairaudit.outcomes import inclusion_matrix
from fairaudit.result import Statistic, decide
from fairaudit.stats import BettingCS, per_member_confidence, ratio_ci_from_intervals, simultaneous_proportion_ci

CRITERIA = ("equalized_odds", "equal_opportunity")


class ErrorRateParity(Check):
    id = "error_rate_parity"
    # -- words for readers (the report and the terminal read these from the registry) --
    statistic_labels = {
        'min_error_rate_ratio': "lowest error-rate ratio (TPR/FPR vs the group's best)",
    }
    column_labels = {
        'diff_lo': 'difference (lower)',
        'diff_hi': 'difference (upper)',
        'error_rate': 'rate',
        'error_rate_lo': 'rate (lower)',
        'error_rate_hi': 'rate (upper)',
        'labelled': 'labelled individuals',
        'measure': 'rate (TPR or FPR)',
    }
    title = "Error-rate parity (equal opportunity, equalized odds)"
    summary = "True- and false-positive rates per group with simultaneous intervals; their ratios vs the four-fifths rule."
    definition = ("Among people whose label is positive, the true-positive rate of a group is the chance that one of "
                  "its members gets a yes; among those whose label is negative, the false-positive rate likewise. "
                  "Equal opportunity asks equal true-positive rates across the groups of each attribute; equalized "
                  "odds asks equal true- and false-positive rates. Each rate is compared with the highest rate of its "
                  "attribute (ratio and difference); the smallest ratio is judged against the threshold. Intervals "
                  "hold simultaneously for all groups and both rates.")
    kinds = ("decision", "selection")
    table_titles = {
        "error_rates": "True- and false-positive rates per group",
    }
    params = {
        "criterion": Param("equalized_odds", "equalized_odds (TPR and FPR) or equal_opportunity (TPR only)",
                           choices=CRITERIA),
        "threshold": Param(0.8, "ratio to the reference group's rate below which a group is disadvantaged",
                           type=float, min=0, max=1),
        "depth": Param(1, "intersections of up to this many group columns", type=int, min=1),
        "min_share": Param(0.02, "categories with a smaller share of individuals are shown but do not decide",
                           type=float, min=0, max=1),
        "max_draws": Param(20000, "draws at most (sequential sampling stops earlier once decided)", type=int, min=1),
    }

    def skip_reason(self, ctx):
        if ctx.log is not None:
            if not ctx.log.group_cols:
                return "the log has no group columns (name them with --groups)"
            return None if "label" in ctx.log.columns else "the log has no label column (error rates need labels)"
        pop = ctx.population
        if pop is None:
            return "no population data (give --data FILE with group columns and a label column)"
        if not pop.group_cols:
            return f"{pop.path} has no group columns (name them with --groups)"
        if pop.label_col is None:
            return f"{pop.path} has no label column (error rates need labels; map one with --columns label=COLUMN)"
        if ctx.kind == "selection" and pop.scores is None:
            return f"{pop.path} has no score column"
        return None

    # ------------------------------------------------------------------
    def run(self, ctx, criterion, threshold, depth, min_share, max_draws):
        if ctx.log is not None:
            return self._run_log(ctx, criterion, threshold, depth, min_share)
        inst = ctx.population_instance()
        y = _binary(inst.labels)
        if isinstance(y, str):
            return self.result("error", f"{ctx.population.path}: {y}")
        cats = categories(inst.groups, list(inst.groups.columns), depth)
        M = membership(cats)
        pos, neg = M * y[:, None], M * (1 - y)[:, None]
        npos, nneg = pos.sum(axis=0), neg.sum(axis=0)
        rates = [("TPR", pos, npos)] + ([("FPR", neg, nneg)] if criterion == "equalized_odds" else [])
        family = np.concatenate([d for _, _, d in rates]) > 0          # rates that exist
        W = np.concatenate([w for _, w, _ in rates], axis=1)[:, family]
        den = np.concatenate([d for _, _, d in rates])[family]
        conf = per_member_confidence(ctx.confidence, int(family.sum()))
        method = f"betting confidence sequence (hedged capital, anytime-valid), bonferroni over {int(family.sum())}"
        n = inst.n
        # one confidence sequence per rate, carried across looks: each look adds its new draws
        cs = BettingCS(int(family.sum()), conf)
        last: dict = {"sum": np.zeros(int(family.sum()))}

        def yes(draws):                        # (B, n) yes/no
            return draws.astype(float) if ctx.kind == "decision" else inclusion_matrix(draws, n).astype(float)

        def bounds(draws):
            if cs.n < len(draws):
                x = (yes(draws[cs.n:]) @ W) / den     # (new draws, family): each rate's value in each draw
                last["sum"] = last["sum"] + x.sum(axis=0)
                lo, hi = cs.update(x)
                last["b"] = _unfold(family, last["sum"] / cs.n, lo, hi)
            return last["b"]

        sizes = np.array([c.size for c in cats], dtype=float)
        attrs = np.array([c.attribute for c in cats], dtype=object)
        labelled = np.concatenate([d for _, _, d in rates])

        def decided(draws):
            ratios = _ratios(sizes, attrs, labelled, *bounds(draws), min_share)
            return _verdict(_statistic(ratios, threshold, method)) != "inconclusive"

        draws = ctx.sampler.sample_until(inst, self.id, decided, ctx.max_draws(max_draws))
        table, stat = _table(cats, rates, *bounds(draws), threshold, min_share, method)
        return self._finish(table, stat, threshold, criterion, len(draws), "draws")

    def _run_log(self, ctx, criterion, threshold, depth, min_share):
        log = ctx.log
        labels = [("TPR", 1)] + ([("FPR", 0)] if criterion == "equalized_odds" else [])
        counts = {name: category_counts(log.table, log.group_cols, depth, where=f'CAST("label" AS DOUBLE) = {v}')
                  for name, v in labels}
        every = category_counts(log.table, log.group_cols, depth)
        key = {(c.attribute, c.value): j for j, c in enumerate(every)}
        G = len(every)
        k = np.zeros((len(labels), G))
        d = np.zeros((len(labels), G))
        for r, (name, _) in enumerate(labels):
            for c in counts[name]:
                j = key[(c.attribute, c.value)]
                k[r, j], d[r, j] = c.selected, c.size
        family = d.ravel() > 0
        lo, hi = np.zeros(d.size), np.ones(d.size)
        if family.any():
            lo[family], hi[family], method = simultaneous_proportion_ci(k.ravel()[family].astype(int),
                                                                        d.ravel()[family].astype(int), ctx.confidence)
        else:
            method = "clopper-pearson"
        with np.errstate(invalid="ignore", divide="ignore"):
            est = np.where(family, k.ravel() / np.maximum(d.ravel(), 1), np.nan)
        rates = [(name, None, d[r]) for r, (name, _) in enumerate(labels)]
        cats = [_Cat(c.attribute, c.value, c.size) for c in every]
        table, stat = _table(cats, rates, est, np.where(family, lo, np.nan), np.where(family, hi, np.nan),
                             threshold, min_share, method)
        return self._finish(table, stat, threshold, criterion, log.n_rows, "logged rows", from_log=True)

    def _finish(self, table, stat, threshold, criterion, n_obs, unit, from_log=False):
        # the row the verdict rests on: a fail on the lowest upper bound, a pass on the lowest lower bound
        key = {"fail": "ratio_hi", "pass": "ratio_lo"}.get(_verdict(stat), "ratio")
        judged = table.loc[table["in_verdict"] & table["ratio"].notna()].sort_values([key, "ratio"]).head(1)
        who = ""
        if len(judged):
            w = judged.iloc[0]
            who = (f"the {w['measure']} of {w['attribute']} = {w['category']} ({w['estimate']:.3f}, ratio {w['ratio']:.3f} "
                   f"[{w['ratio_lo']:.3f}, {w['ratio_hi']:.3f}] to {w['attribute']} = {w['reference']})")
        what = "true-positive rates" if criterion == "equal_opportunity" else "true- and false-positive rates"
        msgs = {
            "fail": f"Unequal error rates: {who} is below {threshold:g} of its attribute's highest rate, with confidence.",
            "pass": f"Every group's {what} are at least {threshold:g} of the highest, with confidence; the lowest is {who}.",
            "inconclusive": (f"The lowest ratio of {what}, {who}, cannot yet be placed above or below {threshold:g}."
                             if who else f"No group has labelled individuals enough to compare {what}."),
        }
        evidence = {"worst": judged.to_dict("records")[0] if len(judged) else None, "criterion": criterion,
                    "unit": unit, "rates": {f"{r['measure']} {r['attribute']} = {r['category']}":
                                            {"estimate": r["estimate"], "ci": [r["lo"], r["hi"]],
                                             "ratio": [r["ratio"], r["ratio_lo"], r["ratio_hi"]],
                                             "difference": [r["difference"], r["diff_lo"], r["diff_hi"]]}
                                            for r in table.to_dict("records")}}
        labels = [f"{r} {a} = {c}" for r, a, c in zip(table["measure"], table["attribute"], table["category"])]
        figures = [
            {"kind": "interval_bars", "title": "True- and false-positive rates by group", "labels": labels,
             "estimate": list(table["estimate"]), "lo": list(table["lo"]), "hi": list(table["hi"]), "xlabel": "rate"},
            {"kind": "interval_bars", "title": "Ratio to the attribute's highest rate", "labels": labels,
             "estimate": list(table["ratio"]), "lo": list(table["ratio_lo"]), "hi": list(table["ratio_hi"]),
             "xlabel": "ratio", "reference": threshold, "reference_label": f"threshold {threshold:g}",
             "highlight": [not v for v in table["in_verdict"]]},
        ]
        # the table as the report shows it: each row's own verdict on the threshold (the check fails
        # iff a judged row does), as selection_rates' groups
        shown = table.rename(columns={"estimate": "error_rate", "lo": "error_rate_lo", "hi": "error_rate_hi"})
        shown["verdict"] = [decide((a, b), threshold, "below") if judged and np.isfinite(a) else "not judged"
                            for a, b, judged in zip(table["ratio_lo"], table["ratio_hi"], table["in_verdict"])]
        return self.judged(stat, msgs, n_obs, from_log=from_log, evidence=evidence, tables={"error_rates": shown},
                           figures=figures, method=stat.method)


class _Cat:
    def __init__(self, attribute, value, size):
        self.attribute, self.value, self.size = attribute, value, size


def _binary(labels):
    y = pd.to_numeric(pd.Series(labels), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(y, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        return f"row {i + 1}: label {labels[i]!r} is not 0 or 1 (error rates need binary labels)"
    return y


def _unfold(family, est, lo, hi):
    """Per-rate arrays over the whole family (NaN where a rate has no labelled individuals)."""
    out = [np.full(family.size, np.nan) for _ in range(3)]
    for o, v in zip(out, (est, lo, hi)):
        o[family] = v
    return out


def _ratios(sizes, attrs, labelled, est, lo, hi, min_share):
    """Per (rate, category) — index ``r * G + j`` for rate r and category j — its ratio and
    difference to the reference (the highest rate among its attribute's categories in the
    verdict), with the intervals implied by the simultaneous box of rate intervals:
    a dict of arrays (``in_verdict``, ``ratio``, ``ratio_lo``, ``ratio_hi``, ``difference``,
    ``diff_lo``, ``diff_hi``, ``ref``: the reference's index, −1 when the attribute has none)."""
    G = len(sizes)
    R = len(labelled) // max(G, 1)
    est, lo, hi = (np.asarray(a, dtype=float) for a in (est, lo, hi))
    n_all = sizes[attrs == attrs[0]].sum() if G else 1.0
    in_verdict = np.tile(sizes / max(n_all, 1) >= min_share, R) & (labelled > 0)
    out = {k: np.full(len(est), np.nan) for k in ("ratio", "ratio_lo", "ratio_hi", "difference", "diff_lo", "diff_hi")}
    out["in_verdict"], out["ref"] = in_verdict, np.full(len(est), -1)
    for r in range(R):
        for attr in dict.fromkeys(attrs):
            idx = r * G + np.flatnonzero(attrs == attr)
            ok = idx[in_verdict[idx]]
            if not len(ok):
                continue
            ref = ok[np.argmax(est[ok])]
            top = est[ref]
            # on the simultaneous box the highest rate lies in [max lo, max hi]
            max_lo, max_hi = lo[ok].max(), hi[ok].max()
            live = idx[labelled[idx] > 0]
            with np.errstate(divide="ignore", invalid="ignore"):
                out["ratio"][live] = np.minimum(np.where(top > 0, est[live] / top, np.nan), 1.0)
            out["ratio_lo"][live], out["ratio_hi"][live] = ratio_ci_from_intervals(lo[live], hi[live], max_lo, max_hi,
                                                                                   cap=1.0)
            out["difference"][live] = est[live] - top
            out["diff_lo"][live] = lo[live] - max_hi
            out["diff_hi"][live] = np.minimum(hi[live] - max_lo, 0.0)
            out["ref"][idx] = ref
    return out


def _statistic(ratios, threshold, method):
    """The verdict's statistic: the smallest ratio among the rates in the verdict."""
    v = ratios["in_verdict"] & ~np.isnan(ratios["ratio"])
    if v.any():
        return Statistic("min_error_rate_ratio", float(ratios["ratio"][v].min()),
                         (float(ratios["ratio_lo"][v].min()), float(ratios["ratio_hi"][v].min())), tolerance=threshold,
                         method=method, violation="below")
    return Statistic("min_error_rate_ratio", float("nan"), (float("nan"), float("nan")), tolerance=threshold,
                     method=method, violation="below")


def _table(cats, rates, est, lo, hi, threshold, min_share, method):
    """One row per (rate, category): rate, interval, ratio and difference to the reference
    (the attribute's highest rate), and the smallest-ratio statistic."""
    sizes = np.array([c.size for c in cats], dtype=float)
    attrs = np.array([c.attribute for c in cats], dtype=object)
    labelled = np.concatenate([np.asarray(d, dtype=float) for _, _, d in rates])
    ratios = _ratios(sizes, attrs, labelled, est, lo, hi, min_share)
    R = len(rates)
    values = np.array([c.value for c in cats], dtype=object)
    df = pd.DataFrame({"measure": np.repeat([name for name, _, _ in rates], len(cats)),
                       "attribute": np.tile(attrs, R), "category": np.tile(values, R),
                       "n": np.tile(sizes.astype(int), R), "labelled": labelled.astype(int),
                       "estimate": est, "lo": lo, "hi": hi, "in_verdict": ratios["in_verdict"]})
    for col in ("ratio", "ratio_lo", "ratio_hi", "difference", "diff_lo", "diff_hi"):
        df[col] = ratios[col]
    ref = ratios["ref"]
    df["reference"] = np.where(ref >= 0, np.tile(values, R)[np.maximum(ref, 0)], "")
    return df, _statistic(ratios, threshold, method)


def _verdict(stat):
    from fairaudit.result import decide
    return decide(stat.ci, stat.tolerance, stat.violation)
