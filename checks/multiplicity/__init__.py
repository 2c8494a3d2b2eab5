"""``multiplicity``: allocation multiplicity (Jain et al., Allocation Multiplicity, Defs 1–7, Prop 3.1, §4–5; SPEC §8).

When there are more qualified people than places, a huge set of allocations has the
same utility as the deployed one. Given qualification labels o* (``label``, 1 =
qualified) and a baseline allocation o₀ of k places that selects k′ qualified people,
the Δ-equal-utility set ``R_Δ(o₀)`` is every k-subset with ``k′ − Δ .. k′`` qualified
(Prop 3.1's band; see :mod:`fairaudit.checks.multiplicity.equal_utility`). Its uniform distribution is the
*reference*; the *recovered* allocations come from the audited system:

* an allocator whose randomness is the model choice (bootstrap refits, feature
  subsets, seeds): each draw is one recovered allocation; o₀ is the top k of the data's
  ``score`` column (the deployed model) unless ``baseline`` names another column;
* ``models=score_*``: one allocation per matching score column of ``--data`` (a Rashomon
  set), mapped to an allocation by the audited allocator (``top_k.py`` is the seed's
  top-k mapping, Def 5); o₀ is the first model's top k;
* a selection log with one decision per model (``decision_id``); o₀ is the first
  decision unless ``baseline`` names one.

What is compared, each recovered figure with an interval at confidence 1 − α:

coverage
    distinct recovered allocations (Table 2) and their utility k′/k (empirical-Bernstein
    interval), the share inside ``R_Δ(o₀)`` (Clopper–Pearson) and ``|R_Δ(o₀)|`` exactly.
outcome homogenisation (verdict)
    pairwise consistency PC — the chance a person gets the same outcome under two
    independent recovered allocations, averaged over people (Table 3) — estimated by the
    U-statistic over all pairs; its interval is the anytime-valid empirical-Bernstein
    confidence sequence of the agreements of disjoint pairs (draws 2j, 2j+1), which are
    i.i.d. with mean PC. Compared with the exact reference PC.
systemic rejection of the qualified (verdict)
    the share of qualified people never selected (Fig. 4b, "between 15% and 30%"), and,
    to have an estimand an interval can cover, the share ``ρ`` of qualified people whose
    recovered selection chance is below ``rejected_below`` (default 0.02: by 1,024 draws a
    person never selected is certified below it even with Bonferroni over 317 qualified
    people — upper bound 0.013 — while under the reference every qualified person's
    chance is E[k′_δ]/n′, usually far above). Each
    qualified person's chance gets an anytime-valid beta-binomial confidence sequence,
    Bonferroni over the qualified, so ``[#certified below, #not certified above] / n′``
    covers ρ. The reference gives every qualified person ``E[k′_δ]/n′``, so it rejects
    none unless that is itself below ``rejected_below``.
least discriminatory allocation (reported)
    a group ratio — the mean of ``metric_feature`` among the selected of group
    ``metric_a`` over that of ``metric_b`` (§5.2's threshold test), or with no feature the
    selection-rate ratio — over every recovered allocation (its range and the value
    closest to parity), against its exact range over ``R_Δ(o₀)`` (Fig. 4a;
    :func:`fairaudit.checks.multiplicity.equal_utility.ratio_range` has the proof) and its mean under the
    reference (Monte Carlo over the exact sampler).
feature homogenisation (reported)
    the Shannon entropy (bits) of ``entropy_feature`` among the selected: the ensemble
    allocation (the k people selected most often, ties by the baseline's order) and the
    average recovered allocation, against the reference (Table 3's age row, Fig. 4c).

Verdict (the issue's rule; SPEC §8 is silent, so these are the decisions). Each of the
two verdict comparisons is made at confidence 1 − α/2 (Bonferroni), so the verdict holds
at 1 − α. ``fail`` when PC's interval lies above ``PC_ref + tolerance`` or when the
reference rejects no qualified person and at least one is certified below
``rejected_below``; ``pass`` when PC's interval is at or below ``PC_ref + tolerance`` and
every qualified person is certified at or above ``rejected_below`` (or the reference
rejects them all, so that comparison says nothing); else ``inconclusive``. An allocator
is sampled sequentially until decided (the intervals are anytime-valid) or
``max_draws``; models and log decisions are a fixed sample (treated as i.i.d. draws of
the procedure that produced them), judged with fixed-sample intervals instead: Hoeffding's
bound for the U-statistic and Clopper–Pearson per qualified person.
"""
from __future__ import annotations

import fnmatch

import numpy as np
import pandas as pd

from fairaudit.checks.multiplicity import equal_utility as eu
from fairaudit.check import Check, Param
from fairaudit.errors import DataError
from fairaudit.result import Statistic, combine, more_draws_hint
from fairaudit.stats import (beta_binomial_cs, bootstrap_ci, eb_confidence_sequence, empirical_bernstein_ci,
                             hoeffding_ci, per_member_confidence, proportion_ci)


class Multiplicity(Check):
    id = "multiplicity"
    # -- words for readers (the report and the terminal read these from the registry) --
    statistic_labels = {
        'pc_excess_over_reference': 'pairwise consistency above the reference',
        'pairwise_consistency_excess': 'pairwise consistency above the reference',
    }
    column_labels = {
        'equal_utility_reference': 'equal-utility allocations (reference)',
        'selected_in': 'recovered allocations selecting the person',
        'certified_rejected': 'certified systemically rejected',
        'in_baseline': 'selected by the baseline',
    }
    data_needs = ("--data FILE with a 'label' column (1 = qualified), or a one-decision-per-model log",
                  'fairaudit check my_selector.py --checks multiplicity --data people.csv')
    title = "Allocation multiplicity"
    summary = ("Do the recovered allocations (model refits, a Rashomon set, logged models) reach the space of "
               "equal-utility allocations? Pairwise consistency, systemic rejection, least discriminatory "
               "allocation, feature entropy vs the exact reference.")
    definition = ("Given who is qualified and a baseline allocation that selects k′ qualified people, the "
                  "equal-utility allocations are every selection of k people with (k′−Δ to) k′ qualified; "
                  "choosing uniformly among them is the reference. The recovered allocations are those the "
                  "audited models produce. They should not be markedly more homogenised: two recovered "
                  "allocations should not agree on people's outcomes much more often than two equal-utility "
                  "ones (pairwise consistency), and no qualified person should be (almost) never selected "
                  "when equal-utility allocations give every qualified person a fair chance.")
    kinds = ("selection",)
    table_titles = {
        "comparisons": "The allocations compared with the equal-utility set",
        "equal_utility_set": "The equal-utility set (Prop 3.1)",
        "qualified_selection": "Selection chance of each qualified person",
        "entropy_composition": "Feature entropy of the selected",
    }
    default = False
    params = {
        "delta": Param(0, "Δ: utility tolerance, in qualified people (Def 7)"),
        "tolerance": Param(0.05, "allowed excess of pairwise consistency over the equal-utility reference"),
        "rejected_below": Param(0.02, "a qualified person selected with chance below this is systemically rejected"),
        "models": Param("", "glob of score columns in --data, one model each (e.g. score_*)"),
        "baseline": Param("", "o₀: a score or 0/1 column of --data (allocator/models), or a decision_id (log)"),
        "metric_group": Param("", "group column of the least-discriminatory metric (default: the first with 2+ values)"),
        "metric_a": Param("", "numerator group value (default: the smaller group)"),
        "metric_b": Param("", "denominator group value (default: the larger group)"),
        "metric_feature": Param("", "numeric column whose mean ratio is the metric (default: selection-rate ratio)"),
        "entropy_feature": Param("", "categorical column for feature homogenisation (default: a group column)"),
        "max_draws": Param(2000, "draws at most (sequential sampling stops earlier once decided)"),
        "min_draws": Param(512, "draws at least, so the descriptive comparisons rest on enough allocations"),
        "reference_draws": Param(2000, "draws of the exact sampler for Monte-Carlo reference figures"),
    }

    def skip_reason(self, ctx):
        if ctx.log is not None:
            if "label" not in ctx.log.columns:
                return "the log has no 'label' column (1 = qualified) to define equal-utility allocations"
            return None
        if ctx.population is None:
            return "no population data (give --data FILE with a 'label' column, 1 = qualified)"
        if ctx.population.label_col is None:
            return f"{ctx.population.path or 'the data'} has no 'label' column (1 = qualified)"
        return None

    # ------------------------------------------------------------------
    def run(self, ctx, delta, tolerance, rejected_below, models, baseline, metric_group, metric_a, metric_b,
            metric_feature, entropy_feature, max_draws, min_draws, reference_draws):
        conf_half = 1 - ctx.alpha / 2
        if ctx.log is not None:
            if models:
                raise DataError("models= selects score columns of --data for an allocator to map; a log already "
                                "holds one decision per model")
            frame, I, base, source = _from_log(ctx.log, baseline)
            q = _labels(frame["label"])
        else:
            frame = ctx.population.frame
            q = _labels(frame[ctx.population.label_col])
            inst = ctx.population_instance()
            if inst is None:
                raise DataError("the data has no score column to call the allocator with")
            if models:
                I, base, source = self._models(ctx, inst, frame, models, baseline)
            else:
                base = _baseline_of(frame, baseline or ctx.population.score_col, inst.k)
                I, source = self._draws(ctx, inst, q, _band_for(q, base, delta), tolerance, rejected_below,
                                        conf_half, max_draws, min_draws)
        b = _band_for(q, base, delta)
        core = _core(I, q, b, tolerance, rejected_below, conf_half, sequential=ctx.log is None and not models)
        verdict, why = _verdict(core)
        rng = ctx.rng(self.id)
        ref = eu.inclusion_of(eu.sample_band(rng, q, b.k, b.lo, b.hi, size=int(reference_draws)), len(q))
        lda = _lda(frame, I, ref, q, b, metric_group, metric_a, metric_b, metric_feature, ctx.confidence, rng)
        ent = _entropy(frame, I, ref, q, b, base, entropy_feature, lda.get("group"), ctx.confidence)
        return self._finish(ctx, verdict, why, core, lda, ent, b, base, q, frame, source, delta, tolerance,
                            rejected_below)

    def _models(self, ctx, inst, frame, models, baseline):
        """One allocation per score column, each mapped by the audited allocator (Def 5)."""
        cols = [c for c in frame.columns if fnmatch.fnmatch(str(c), models)]
        if not cols:
            raise DataError(f"models={models!r} matches no column of {ctx.population.path}")
        draws = [ctx.sampler.draw(inst.replace(scores=_numeric(frame, c)), 1, f"{self.id}/model/{c}") for c in cols]
        base = _top(_numeric(frame, baseline or cols[0]), inst.k)
        return (eu.inclusion_of(np.concatenate(draws), len(frame)), base,
                f"{len(cols)} model columns ({models}) mapped by {ctx.target.name}")

    def _draws(self, ctx, inst, q, b, tolerance, eta, conf, max_draws, min_draws):
        """Draws of the allocator, sequentially until the two verdict comparisons decide."""
        n = len(q)

        def decided(d):
            return _verdict(_core(eu.inclusion_of(d, n), q, b, tolerance, eta, conf))[0] != "inconclusive"

        cap = ctx.max_draws(max_draws)
        d = ctx.sampler.sample_until(inst, self.id, decided, cap, first=min(cap, min_draws))
        return eu.inclusion_of(d, n), f"{len(d):,} draws of {ctx.target.name}"

    # ------------------------------------------------------------------
    def _finish(self, ctx, verdict, why, core, lda, ent, b, base, q, frame, source, delta, tolerance, eta):
        B = core["B"]
        count = eu.count_allocations(b.n, b.n_q, b.k, b.hi, b.hi - b.lo) if b.hi >= b.lo else 0
        mant, exp = eu.power_of_ten(count, 2) if count else ("0", 0)
        pc, ex = core["pc"], core["excess"]
        stat = Statistic("pairwise_consistency_excess", ex["estimate"], tuple(ex["ci"]), tolerance=tolerance,
                         violation="above", method=core["pc_method"])
        rej = core["rejection"]
        size = f"|R_Δ(o₀)| ≈ {mant}×10^{exp}"
        msg = {
            "fail": f"The recovered allocations are more homogenised than the {size} equal-utility allocations: {why}.",
            "pass": f"The recovered allocations are within tolerance of the {size} equal-utility allocations: {why}.",
            "inconclusive": f"Not yet decided against the {size} equal-utility allocations: {why}.",
        }[verdict]
        if verdict == "inconclusive":
            fixed = ctx.log is not None or "model columns" in source
            hint = core["models_needed"] if fixed else more_draws_hint(tuple(ex["ci"]), ex["estimate"], tolerance, B)
            if hint and hint > B:
                msg += (f" Roughly {hint:,} models might decide it." if fixed else
                        f" Roughly {hint:,} draws might decide it (rerun with --draws {hint}).")
        ref_pq, ref_pu = eu.reference_marginals(b)
        rows = [
            ("recovered allocations (draws or models)", B, None, None, None, "count"),
            ("distinct recovered allocations", core["distinct"], None, None, f"{mant}×10^{exp}",
             "count; reference: |R_Δ(o₀)| (Prop 3.1, exact)"),
            ("utility k′/k", *core["utility"], core["ref_utility"], "empirical-Bernstein"),
            ("share of recovered inside R_Δ(o₀)", *core["in_band"], 1.0, "clopper-pearson"),
            ("pairwise consistency (outcome homogenisation)", pc["estimate"], *pc["ci"], core["pc_ref"],
             core["pc_method"]),
            ("qualified never selected (share)", rej["never"], None, None, 0.0 if ref_pq > 0 else 1.0, "observed"),
            (f"qualified with chance < {eta:g} (systemic rejection)", rej["estimate"], *rej["ci"], rej["reference"],
             rej["method"]),
        ]
        if lda:
            rows += [(f"{lda['name']}: recovered closest to parity", lda["best"], None, None, lda["ref_best"],
                      "exact; reference: closest to parity over R_Δ(o₀)"),
                     (f"{lda['name']}: minimum", lda["rec_min"], None, None, lda["ref_min"], "exact"),
                     (f"{lda['name']}: maximum", lda["rec_max"], None, None, lda["ref_max"], "exact"),
                     (f"{lda['name']}: mean", *lda["rec_mean"], *lda["ref_mean"][:1], lda["mean_method"])]
        if ent:
            rows += [(f"entropy of {ent['feature']} (bits): ensemble allocation", ent["ensemble"], None, None,
                      ent["ref_expected"], "exact; reference: expected composition"),
                     (f"entropy of {ent['feature']} (bits): average allocation", *ent["average"],
                      ent["ref_mean"][0], "empirical-Bernstein; reference: Monte Carlo mean")]
        comparisons = pd.DataFrame(rows, columns=["quantity", "recovered", "lo", "hi", "equal_utility_reference",
                                                 "method"], dtype=object)   # counts stay integers
        setting = pd.DataFrame([{"n": b.n, "qualified n′": b.n_q, "k": b.k, "baseline k′": b.hi, "Δ": delta,
                                 "band k′_δ": f"{b.lo}..{b.hi}", "|R_Δ(o₀)|": f"{mant}×10^{exp}",
                                 "digits": len(str(count)), "reference chance, qualified": ref_pq,
                                 "reference chance, unqualified": ref_pu, "reference PC": core["pc_ref"]}])
        ids = frame["id"].to_numpy() if "id" in frame.columns else np.arange(b.n)
        qi = np.flatnonzero(q)
        qual = pd.DataFrame({"id": ids[qi], "selected_in": core["counts"][qi], "chance": core["pi"][qi],
                             "lo": rej["lo_i"], "hi": rej["hi_i"], "certified_rejected": rej["hi_i"] < eta,
                             "in_baseline": np.isin(qi, base)}).sort_values(["chance", "id"])
        tables = {"comparisons": comparisons, "equal_utility_set": setting, "qualified_selection": qual}
        if ent:
            tables["entropy_composition"] = ent["table"]
        figures = _figures(core, lda, ent, qual, ref_pq, eta, tolerance, b)
        evidence = {"source": source, "band": {"lo": b.lo, "hi": b.hi, "n": b.n, "n_q": b.n_q, "k": b.k},
                    "equal_utility_count": str(count), "equal_utility_count_power_of_ten": [mant, exp],
                    "baseline": [int(i) for i in base],
                    "pairwise_consistency": {**pc, "reference": core["pc_ref"]},
                    "systemic_rejection": {k: v for k, v in rej.items() if k not in ("lo_i", "hi_i")},
                    "least_discriminatory": {k: v for k, v in lda.items() if k not in ("values",)} if lda else None,
                    "feature_entropy": {k: v for k, v in ent.items() if k != "table"} if ent else None}
        return self.result(verdict, msg, statistic=stat, draws=B, evidence=evidence, tables=tables, figures=figures,
                           components=core["components"],
                           method=f"{core['pc_method']}; {rej['method']}; each at confidence {1 - ctx.alpha / 2:g} "
                                  f"(Bonferroni over the two verdict comparisons)")


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

def _numeric(frame, col) -> np.ndarray:
    if col not in frame.columns:
        raise DataError(f"column {col!r} is not in the data; it has: {', '.join(map(str, frame.columns))}")
    v = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(v)):
        raise DataError(f"column {col!r}: row {int(np.flatnonzero(~np.isfinite(v))[0]) + 1} is not a finite number")
    return v


def _labels(col) -> np.ndarray:
    v = pd.to_numeric(pd.Series(col), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(v, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"label: row {i + 1} is {pd.Series(col).iloc[i]!r}; qualification labels must be 0 or 1")
    return v == 1


def _top(scores, k) -> np.ndarray:
    return np.sort(np.argsort(-np.asarray(scores), kind="stable")[:k])


def _baseline_of(frame, col, k) -> np.ndarray:
    """o₀ from a column: a 0/1 column with k ones is the allocation itself, else its top k."""
    v = _numeric(frame, col)
    if np.isin(v, (0.0, 1.0)).all() and int(v.sum()) == k:
        return np.flatnonzero(v == 1)
    return _top(v, k)


def _band_for(q, base, delta) -> eu.Band:
    if delta < 0:
        raise DataError(f"delta must be ≥ 0, got {delta}")
    return eu.band(len(q), int(q.sum()), len(base), int(q[base].sum()), int(delta))


def _from_log(log, baseline):
    """A selection log with one decision per model → (frame of individuals, inclusion, o₀, source)."""
    f = log.frame
    key = "individual_id" if "individual_id" in f.columns else None
    order = list(dict.fromkeys(f["decision_id"].tolist()))
    if key is None:
        f = f.assign(individual_id=f.groupby("decision_id", sort=False).cumcount())
    ids = np.sort(f["individual_id"].unique())
    pos = {v: i for i, v in enumerate(ids)}
    I = np.zeros((len(order), len(ids)), dtype=bool)
    for r, (did, g) in enumerate(f.groupby("decision_id", sort=False)):
        if len(g) != len(ids) or g["individual_id"].duplicated().any():
            raise DataError(f"{log.path}: decision {did!r} does not list every individual once; a multiplicity log "
                            f"needs one decision per model over the same {len(ids)} individuals")
        I[order.index(did), [pos[v] for v in g["individual_id"]]] = g["selected"].to_numpy() == 1
    ks = I.sum(axis=1)
    if (ks != ks[0]).any():
        raise DataError(f"{log.path}: decisions select different numbers of people ({ks.min()}..{ks.max()}); "
                        f"equal-utility allocations need one k")
    if (f.groupby("individual_id")["label"].nunique() > 1).any():
        raise DataError(f"{log.path}: an individual has different labels in different decisions; qualification "
                        f"(label) must be the same in every model's decision")
    first = f[f["decision_id"] == order[0]].set_index("individual_id").loc[ids].reset_index()
    first = first.rename(columns={"individual_id": "id"}).drop(columns=["decision_id", "selected", "pick_order"],
                                                                errors="ignore")
    b_id = baseline or order[0]
    if b_id not in order:
        raise DataError(f"baseline={baseline!r} is not a decision_id of {log.path}")
    return first, I, np.flatnonzero(I[order.index(b_id)]), f"{len(order)} logged decisions (one per model)"


# ---------------------------------------------------------------------------
# The two verdict comparisons
# ---------------------------------------------------------------------------

def _core(I, q, b, tolerance, eta, conf, sequential=True) -> dict:
    """The two verdict comparisons. ``sequential``: intervals valid under optional stopping
    (confidence sequences); else, for a fixed sample of models, fixed-sample intervals —
    Hoeffding's bound for a U-statistic of order 2 (⌊B/2⌋ effective observations, kernel
    range ``2·min(k, n − k)/n``) and Clopper–Pearson per qualified person."""
    B, n = I.shape
    k = b.k
    counts = I.sum(axis=0)
    pi = counts / max(B, 1)
    pc_ref = eu.reference_pairwise_consistency(b)
    pairs = eu.disjoint_pair_agreement(I)
    est = eu.pairwise_consistency_ustat(counts, B) if B > 1 else float("nan")
    if B < 2:
        lo, hi = 0.0, 1.0
    elif sequential:
        lo, hi = eb_confidence_sequence(pairs, conf)
    else:
        R = 2 * min(k, n - k) / n
        lo, hi = hoeffding_ci(est, B // 2, conf, lower=1 - R, upper=1.0)
        gap = abs(est - pc_ref - tolerance)
        needed = 2 * int(np.ceil(R * R * np.log(2 / (1 - conf)) / (2 * gap * gap))) if gap > 0 else None
    pc = {"estimate": est, "ci": [float(lo), float(hi)]}
    excess = {"estimate": est - pc_ref, "ci": [float(lo) - pc_ref, float(hi) - pc_ref]}
    util = (I & q).sum(axis=1) / k
    u_mean, u_lo, u_hi = empirical_bernstein_ci(util, conf) if B > 1 else (util.mean(), 0.0, 1.0)
    kq = (I & q).sum(axis=1)
    inside = int(((kq >= b.lo) & (kq <= b.hi)).sum())
    ib_lo, ib_hi = proportion_ci(inside, B, conf)
    qi = np.flatnonzero(q)
    member = per_member_confidence(conf, max(len(qi), 1))
    lo_i, hi_i = (beta_binomial_cs(counts[qi], B, member) if sequential else proportion_ci(counts[qi], B, member))
    lo_i, hi_i = np.atleast_1d(lo_i), np.atleast_1d(hi_i)
    ref_pq = eu.reference_marginals(b)[0]
    ref_share = 1.0 if ref_pq < eta else 0.0
    rej = {"estimate": float(np.mean(pi[qi] < eta)) if len(qi) else 0.0,
           "ci": [float(np.mean(hi_i < eta)) if len(qi) else 0.0, float(np.mean(lo_i < eta)) if len(qi) else 0.0],
           "never": float(np.mean(counts[qi] == 0)) if len(qi) else 0.0, "reference": ref_share,
           "certified_rejected": int(np.sum(hi_i < eta)), "not_certified_selected": int(np.sum(lo_i < eta)),
           "method": (f"beta-binomial confidence sequence per qualified person (anytime-valid), bonferroni over {len(qi)}"
                      if sequential else f"clopper-pearson per qualified person, bonferroni over {len(qi)}"),
           "lo_i": lo_i, "hi_i": hi_i, "threshold": eta}
    # the verdict's components, combined by fairaudit.result.combine
    comp = {"pairwise_consistency": Statistic("pc_excess_over_reference", excess["estimate"], tuple(excess["ci"]),
                                              tolerance=tolerance, violation="above")}
    if ref_share < 1.0:   # (when the reference rejects everyone there is nothing to compare)
        comp["systemic_rejection"] = Statistic(
            "share_qualified_rejected", rej["estimate"], tuple(rej["ci"]), tolerance=0.0, violation="above",
            method=f"share of qualified people with chance below {eta:g}")
    uniq = len(np.unique(np.packbits(I, axis=1), axis=0)) if B else 0
    return {"B": B, "models_needed": None if sequential or B < 2 else needed, "counts": counts, "pi": pi, "pc": pc, "pc_ref": pc_ref, "excess": excess,
            "pc_method": ("U-statistic; interval: empirical-Bernstein confidence sequence (anytime-valid) "
                          f"over {len(pairs)} disjoint pairs" if sequential else
                          f"U-statistic; interval: Hoeffding for U-statistics ({B} models, fixed sample)"),
            "utility": (float(u_mean), float(u_lo), float(u_hi)), "ref_utility": _ref_utility(b),
            "in_band": (inside / max(B, 1), float(ib_lo), float(ib_hi)), "rejection": rej, "components": comp,
            "distinct": uniq}


def _ref_utility(b) -> float:
    return eu.reference_marginals(b)[0] * b.n_q / b.k if b.k else 0.0


def _verdict(core) -> tuple[str, str]:
    comp = core["components"]
    pc, ref, rej = core["pc"], core["pc_ref"], core["rejection"]
    parts = {"pairwise_consistency": f"pairwise consistency {pc['estimate']:.3f} [{pc['ci'][0]:.3f}, "
                                     f"{pc['ci'][1]:.3f}] vs {ref:.3f} for equal-utility allocations",
             "systemic_rejection": f"{rej['certified_rejected']} qualified people certified systemically rejected "
                                   f"(chance < {rej['threshold']:g}; {100 * rej['never']:.0f}% of the qualified "
                                   f"never selected)"}
    verdict = combine(comp)
    if verdict == "fail":
        return "fail", "; ".join(parts[k] for k, c in comp.items() if c.verdict() == "fail")
    return verdict, "; ".join(parts.values())


# ---------------------------------------------------------------------------
# The reported comparisons
# ---------------------------------------------------------------------------

def _lda(frame, I, ref, q, b, group, a, bb, feature, conf, rng) -> dict:
    cols = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c]) and frame[c].nunique() >= 2]
    group = group or (cols[0] if cols else "")
    if not group:
        return {}
    if group not in frame.columns:
        raise DataError(f"metric_group={group!r} is not a column of the data")
    g = frame[group].astype(str)
    sizes = g.value_counts()
    a = a or str(sizes.index[-1])
    bb = bb or str(sizes.index[0])
    for v in (a, bb):
        if v not in sizes.index:
            raise DataError(f"{group} has no value {v!r}; it has {', '.join(map(str, sizes.index))}")
    in_a, in_b = (g == a).to_numpy(), (g == bb).to_numpy()
    values = _numeric(frame, feature) if feature else None
    lo, hi = eu.ratio_range(q, in_a, in_b, b.k, b.lo, b.hi, values)
    rec = eu.ratios_of_allocations(I, in_a, in_b, values)
    refv = eu.ratios_of_allocations(ref, in_a, in_b, values)
    fin = rec[np.isfinite(rec) & (rec > 0)]
    best = float(fin[np.argmin(np.abs(np.log(fin)))]) if fin.size else float("nan")
    ref_best = 1.0 if lo.value <= 1 <= hi.value else (lo.value if lo.value > 1 else hi.value)
    name = (f"mean {feature}, {group} = {a} / {bb}" if feature else f"selection rate, {group} = {a} / {bb}")
    ok = rec[np.isfinite(rec)]
    mean = bootstrap_ci(ok, np.mean, conf, rng=rng, n_resamples=999) if ok.size > 2 and np.ptp(ok) > 0 else None
    rf = refv[np.isfinite(refv)]
    fin_or_none = lambda x: float(x) if np.isfinite(x) else None  # noqa: E731  (unbounded → null in JSON)
    return {"name": name, "group": group, "a": a, "b": bb, "feature": feature or None,
            "ref_min": fin_or_none(lo.value), "ref_max": fin_or_none(hi.value),
            "ref_min_allocation": lo.selected.tolist(),
            "ref_max_allocation": hi.selected.tolist(), "ref_best": ref_best, "best": best,
            "rec_min": fin_or_none(np.nanmin(rec)) if (~np.isnan(rec)).any() else None,
            "rec_max": fin_or_none(np.nanmax(rec)) if (~np.isnan(rec)).any() else None,
            "rec_mean": (mean.value, *mean.ci) if mean else (float(np.mean(ok)) if ok.size else float("nan"), None, None),
            "mean_method": mean.method if mean else "no variation",
            "ref_mean": (float(rf.mean()) if rf.size else float("nan"),), "values": rec[np.isfinite(rec)].tolist()}


def _entropy(frame, I, ref, q, b, base, feature, metric_group, conf) -> dict:
    cats = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    feature = feature or next((c for c in cats if c != metric_group), cats[0] if cats else "")
    if not feature:
        return {}
    if feature not in frame.columns:
        raise DataError(f"entropy_feature={feature!r} is not a column of the data")
    codes, names = pd.factorize(frame[feature].astype(str), sort=True)
    C = len(names)
    per = eu.entropy_of_rows(I, codes, C)
    m, lo, hi = empirical_bernstein_ci(per, conf, 0.0, max(np.log2(C), 1e-9)) if len(per) > 1 else (per.mean(), 0, 0)
    counts = I.sum(axis=0)
    # the ensemble: the k selected most often, ties by the baseline's order then index
    base_rank = np.full(len(q), len(q))
    base_rank[base] = np.arange(len(base))
    ens = np.lexsort((np.arange(len(q)), base_rank, -counts))[:b.k]
    ens_I = eu.inclusion_of(ens[None, :], len(q))
    pq, pu = eu.reference_marginals(b)
    onehot = np.eye(C)[codes]
    expected = (np.where(q, pq, pu) @ onehot) / b.k
    avg = (counts @ onehot) / max(counts.sum(), 1)
    ens_share = (ens_I[0].astype(float) @ onehot) / b.k
    ref_per = eu.entropy_of_rows(ref, codes, C)
    table = pd.DataFrame({feature: list(names), "ensemble allocation": ens_share, "average recovered": avg,
                          "equal-utility reference (expected)": expected})
    return {"feature": feature, "ensemble": float(eu.entropy_of_rows(ens_I, codes, C)[0]) + 0.0,
            "average": (float(m), float(lo), float(hi)), "ref_expected": eu.entropy_bits(expected),
            "ref_mean": (float(ref_per.mean()),), "table": table}


def _figures(core, lda, ent, qual, ref_pq, eta, tolerance, b) -> list[dict]:
    pc = core["pc"]
    u = core["utility"]
    figs = [
        {"kind": "interval_bars", "title": "Utility k′/k: recovered allocations vs equal-utility allocations",
         "labels": ["recovered allocations (mean)", "equal-utility allocations"], "estimate": [u[0], core["ref_utility"]],
         "lo": [u[1], core["ref_utility"]], "hi": [u[2], core["ref_utility"]], "xlabel": "utility k′/k", "xlim": [0, 1],
         "caption": f"{core['distinct']:,} distinct allocations among {core['B']:,} recovered (Jain et al., Allocation Multiplicity, Table 2)."},
        {"kind": "interval_bars", "title": "Outcome homogenisation: pairwise consistency (Jain et al., Allocation Multiplicity, Table 3)",
         "labels": ["recovered allocations", "all equal-utility allocations (exact)"],
         "estimate": [pc["estimate"], core["pc_ref"]], "lo": [pc["ci"][0], core["pc_ref"]],
         "hi": [pc["ci"][1], core["pc_ref"]], "xlabel": "pairwise consistency of individual outcomes",
         "reference": core["pc_ref"] + tolerance, "reference_label": f"reference + tolerance {tolerance:g}",
         "xlim": [0, 1]},
        {"kind": "scatter_ci", "title": "Selection chance of each qualified person (Jain et al., Allocation Multiplicity, Fig. 4b)",
         "x": list(range(1, len(qual) + 1)), "estimate": qual["chance"].tolist(), "lo": qual["lo"].tolist(),
         "hi": qual["hi"].tolist(), "color_by": ["never selected" if c == 0 else "selected at least once"
                                                 for c in qual["selected_in"]],
         "line": {"x": [1, max(len(qual), 1)], "y": [ref_pq, ref_pq], "label": "equal-utility allocations"},
         "xlabel": "qualified people, by recovered selection chance", "ylabel": "selection chance",
         "caption": f"Intervals: {core['rejection']['method']} (simultaneous over the qualified). "
                    f"Systemically rejected: chance below {eta:g}."},
    ]
    if lda:
        top = lda["ref_max"]
        if top is None:   # unbounded above (a group can be left out): draw to twice what was seen
            top = 2 * max(x for x in (lda["rec_max"], lda["ref_min"], 1.0) if x is not None and np.isfinite(x))
        figs.append({"kind": "ranges", "title": f"Least discriminatory allocation: {lda['name']} (Jain et al., Allocation Multiplicity, Fig. 4a)",
                     "labels": ["all equal-utility allocations (exact range)", "recovered allocations"],
                     "lo": [lda["ref_min"], lda["rec_min"]], "hi": [top, lda["rec_max"]],
                     "caption": "Exact range over every equal-utility allocation (an unbounded end is left open) "
                                "against each recovered allocation's value (dots).",
                     "points": [[], lda["values"][:2000]], "reference": 1.0, "reference_label": "parity",
                     "xlabel": lda["name"]})
    if ent:
        t = ent["table"]
        figs.append({"kind": "grouped_bars", "title": f"Feature homogenisation: {ent['feature']} of the selected "
                                                      f"(Jain et al., Allocation Multiplicity, Fig. 4c)",
                     "categories": t.iloc[:, 0].tolist(),
                     "series": [{"label": f"ensemble allocation ({ent['ensemble']:.2f} bits)",
                                 "values": t["ensemble allocation"].tolist()},
                                {"label": f"equal-utility allocations ({ent['ref_expected']:.2f} bits)",
                                 "values": t["equal-utility reference (expected)"].tolist()}],
                     "ylabel": "share of the selected"})
    return figs
