"""What the multiaccuracy audit found, in four parts the check composes: the measurement
(:func:`measure`: the predictor's α̂, the ranker's group–position shares against the
ground-truth UA ranking, Theorem 16's bound, the verdict statistic and the diagnosis of its
cause, as one frozen :class:`Findings`), then the tables, the messages, the figures and the
evidence read off it. Nothing here decides a verdict: the check does, with
``Check.judged`` on :attr:`Findings.stat`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fairaudit.result import Statistic, decide
from fairaudit.stats import abs_interval
from fairaudit.ua import reference_band, ua_position_given_label


@dataclass(frozen=True)
class Findings:
    """The measurement of one multiaccuracy audit (arrays indexed by group set, label,
    position). ``gsel``/``pi``: the judged set and position of the largest |share gap|."""
    sets: list
    names: list            # label names
    names_s: list          # group-set names
    n: int
    m: int
    share: np.ndarray
    tolerance: float
    pred: dict             # predictor_audit: fbar, freq, alpha (with its interval), method
    comp: dict             # composition: shares, gaps, ranker and predictor terms (with intervals)
    expo: dict             # exposure of each set under the ranker, the UA ranking and the truth
    tiny: np.ndarray
    judged: np.ndarray
    a_abs_lo: np.ndarray
    alpha_S_hi: np.ndarray
    alpha_hi: float
    alpha_X_hi: float
    bound_S: np.ndarray
    bound_global: float
    stat: Statistic
    gsel: int
    pi: int
    not_ma: list           # group-label pairs whose predictor is certified not multiaccurate
    ranker_bad: list       # groups whose ranker term is certified above tolerance / 2
    above_bound: list      # groups whose conditional gap is certified above Theorem 16's bound


def measure(sets, P, y, names, counts, E, n, share, tolerance, alpha_tolerance, confidence, rng, *,
            predictor_audit, composition, exposure, weights=None) -> Findings | None:
    """The audit's figures (see the module docstring); None when no group set other than the
    whole population is large enough to judge."""
    m = P.shape[1]
    masks = np.stack([s.mask for s in sets])
    half_conf = 1 - (1 - confidence) / 2
    pred = predictor_audit(P, y, masks, half_conf, weights)
    names_s = [s.name for s in sets]
    tiny = np.array([s.tiny or s.size == 0 for s in sets])
    # The whole pool holds every position (gap 0 by construction): never judged.
    judged = ~tiny & (np.arange(len(sets)) > 0)
    if not judged.any():
        return None
    ref_est, ref_lo, ref_hi, Gp, ref_method = reference_band(y, masks, m, n, half_conf, rng, judged, weights=weights)
    pbar = P.mean(axis=0) if weights is None else P.sum(axis=0) / weights.sum()
    A_f = pred["fbar"] @ ua_position_given_label(pbar / pbar.sum(), n)
    full = masks.all(axis=1)
    comp = composition(counts, E, n, share, (ref_est, ref_lo, ref_hi), A_f, confidence, full=full)
    comp["method"] += f"; ground-truth reference: {ref_method} (α/2)"
    expo = exposure(comp, pred, n, Gp)

    # -- α̂ and Theorem 16's bound -----------------------------------------
    a_abs_lo, a_abs_hi = abs_interval(pred["alpha_lo"], pred["alpha_hi"])
    alpha_S_hi = a_abs_hi.max(axis=1)
    alpha_X_hi = float(alpha_S_hi[0])
    in_theorem = judged.copy()
    in_theorem[0] = True                                  # X ∈ C
    alpha_hi = float(alpha_S_hi[in_theorem].max())
    # Proof of Theorem 16: group term Σ_ℓ |α_{S,ℓ}| (≤ mα) plus Lemma 12's
    # 2(n−1)·TV(f̄, f̄*) = (n−1)·Σ_ℓ |α_{X,ℓ}| (≤ (n−1)mα); upper interval ends.
    bound_S = a_abs_hi.sum(axis=1) + (n - 1) * float(a_abs_hi[0].sum())
    bound_global = n * m * alpha_hi

    # -- verdict statistic: largest share gap over judged sets and positions ---
    g_lo, g_hi = comp["gap_lo"][judged], comp["gap_hi"][judged]
    abs_lo, abs_hi = abs_interval(g_lo, g_hi)
    est = np.abs(comp["gap"][judged])
    flat = int(np.nanargmax(est)) if est.size else 0
    gi, pi = np.unravel_index(flat, est.shape)
    gsel = np.flatnonzero(judged)[gi]
    stat = Statistic("max_position_share_gap", float(est.flat[flat]),
                     (float(np.nanmax(abs_lo)), float(np.nanmax(abs_hi))), tolerance=float(tolerance),
                     method=comp["method"] + "; " + pred["method"])

    # -- diagnosis -----------------------------------------------------------
    not_ma = []
    for g in range(len(sets)):
        for ell in range(m):
            if m == 2 and ell == 0:
                continue
            if a_abs_lo[g, ell] > alpha_tolerance:
                not_ma.append({"group": names_s[g], "label": names[ell], "alpha": pred["alpha"][g, ell],
                               "ci": [pred["alpha_lo"][g, ell], pred["alpha_hi"][g, ell]], "tiny": bool(tiny[g])})
    # A flagged set inside a larger flagged set (same label, same sign) usually just
    # inherits its bias: name the maximal ones first, then by certified |α| (the
    # interval's end nearest 0).
    idx_of = {nm: i for i, nm in enumerate(names_s)}
    for r in not_ma:
        gi_ = idx_of[r["group"]]
        r["within"] = [o["group"] for o in not_ma
                       if o is not r and o["label"] == r["label"] and np.sign(o["alpha"]) == np.sign(r["alpha"])
                       and sets[idx_of[o["group"]]].size > sets[gi_].size
                       and not np.any(sets[gi_].mask & ~sets[idx_of[o["group"]]].mask)]
    not_ma.sort(key=lambda r: (bool(r["within"]), -min(abs(r["ci"][0]), abs(r["ci"][1]))))
    r_abs_lo, _ = abs_interval(comp["ranker_lo"], comp["ranker_hi"])
    ranker_bad = []
    for g in np.flatnonzero(judged):
        p = int(np.nanargmax(r_abs_lo[g]))
        if g == gsel and r_abs_lo[g, pi] > tolerance / 2:
            p = int(pi)                                   # name the worst gap's own position
        if r_abs_lo[g, p] > tolerance / 2:
            ranker_bad.append({"group": names_s[g], "position": p + 1, "ranker_term": comp["ranker"][g, p],
                               "ci": [comp["ranker_lo"][g, p], comp["ranker_hi"][g, p]]})
    # the worst gap's group first (the message names it), then by size of the term
    ranker_bad.sort(key=lambda r: (r["group"] != names_s[gsel], -abs(r["ranker_term"])))
    c_abs_lo, _ = abs_interval(comp["cgap_lo"], comp["cgap_hi"])
    above_bound = []
    for g in np.flatnonzero(judged):
        p = int(np.nanargmax(c_abs_lo[g]))
        if c_abs_lo[g, p] > bound_S[g]:
            above_bound.append({"group": names_s[g], "position": p + 1, "conditional_gap": comp["cgap"][g, p],
                                "ci": [comp["cgap_lo"][g, p], comp["cgap_hi"][g, p]], "bound": bound_S[g]})
    return Findings(sets=sets, names=names, names_s=names_s, n=n, m=m, share=share, tolerance=tolerance, pred=pred,
                    comp=comp, expo=expo, tiny=tiny, judged=judged, a_abs_lo=a_abs_lo, alpha_S_hi=alpha_S_hi,
                    alpha_hi=alpha_hi, alpha_X_hi=alpha_X_hi, bound_S=bound_S, bound_global=bound_global, stat=stat,
                    gsel=gsel, pi=pi, not_ma=not_ma, ranker_bad=ranker_bad, above_bound=above_bound)


def alpha_rows(f: Findings, alpha_tolerance) -> list[dict]:
    """One row per (group set, label): mean prediction, label frequency, α̂ with its interval."""
    pred, rows = f.pred, []
    for g, s in enumerate(f.sets):
        for ell in range(f.m):
            rows.append({"group": s.name, "label": f.names[ell], "n": s.size, "tiny": bool(f.tiny[g]),
                         "mean_prediction": pred["fbar"][g, ell], "label_frequency": pred["freq"][g, ell],
                         "alpha": pred["alpha"][g, ell], "alpha_lo": pred["alpha_lo"][g, ell],
                         "alpha_hi": pred["alpha_hi"][g, ell],
                         "not_multiaccurate": bool(f.a_abs_lo[g, ell] > alpha_tolerance)})
    return rows


def tables(f: Findings, alphas: list[dict]) -> dict[str, pd.DataFrame]:
    """The groups table (each set's worst position, top share, bound, exposure and own
    verdict), the α̂ table and the per-position table."""
    comp, expo, sets, share, n = f.comp, f.expo, f.sets, f.share, f.n
    worst_p = np.argmax(np.nan_to_num(np.abs(comp["gap"]), nan=-1.0), axis=1)
    ar = np.arange(len(sets))
    gdf = pd.DataFrame({
        "group": f.names_s, "source": [s.source for s in sets], "n": [s.size for s in sets], "share": share,
        "tiny": f.tiny, "worst_position": worst_p + 1,
        "gap": comp["gap"][ar, worst_p], "gap_lo": comp["gap_lo"][ar, worst_p], "gap_hi": comp["gap_hi"][ar, worst_p],
        "ranker_term": comp["ranker"][ar, worst_p], "predictor_term": comp["predictor"][ar, worst_p],
        "top_share": comp["q"][:, 0], "top_share_lo": comp["q_lo"][:, 0], "top_share_hi": comp["q_hi"][:, 0],
        "top_share_truth": share * n * comp["ref"][:, 0],
        "top_share_gap": comp["gap"][:, 0], "top_share_gap_lo": comp["gap_lo"][:, 0],
        "top_share_gap_hi": comp["gap_hi"][:, 0],
        "max_abs_alpha_hi": f.alpha_S_hi, "theorem16_bound": f.bound_S, "bound_vacuous": f.bound_S >= 1,
        "exposure": expo["ranker"], "exposure_lo": expo["ranker_lo"], "exposure_hi": expo["ranker_hi"],
        "exposure_ua_predictions": expo["ua_predictions"], "exposure_truth": expo["truth"],
        "exposure_truth_lo": expo["truth_lo"], "exposure_truth_hi": expo["truth_hi"]})
    # each set's own verdict: its largest |share gap| over positions against the tolerance (the check
    # fails iff some judged set does); the whole pool is the reference, tiny sets are not judged
    all_lo, all_hi = abs_interval(comp["gap_lo"], comp["gap_hi"])
    gdf["verdict"] = [decide((float(np.nanmax(all_lo[g])), float(np.nanmax(all_hi[g]))), float(f.tolerance))
                      if f.judged[g] else ("reference (everyone)" if g == 0 else "not judged (too small)")
                      for g in range(len(sets))]
    pos_rows = []
    for g in np.flatnonzero(f.judged):
        for p in range(n):
            pos_rows.append({"group": f.names_s[g], "position": p + 1, "ranker": comp["A"][g, p],
                             "ranker_lo": comp["A_lo"][g, p], "ranker_hi": comp["A_hi"][g, p],
                             "ua_predictions": comp["A_f"][g, p], "truth": comp["ref"][g, p],
                             "truth_lo": comp["ref_lo"][g, p], "truth_hi": comp["ref_hi"][g, p],
                             "share_gap": comp["gap"][g, p], "share_gap_lo": comp["gap_lo"][g, p],
                             "share_gap_hi": comp["gap_hi"][g, p]})
    return {"groups": gdf, "alpha": pd.DataFrame(alphas), "positions": pd.DataFrame(pos_rows)}


def worst_cell(f: Findings) -> tuple[str, int, float, float, str]:
    """(group, position, share under the ranker, under the truth, a sentence naming them)."""
    comp, gsel, pi = f.comp, f.gsel, f.pi
    gname = f.names_s[gsel]
    pos = int(pi) + 1
    sh, sh_ref = comp["q"][gsel, pi], f.share[gsel] * f.n * comp["ref"][gsel, pi]
    who = (f"{gname} holds position {pos} with chance {sh:.3f} under the ranker against {sh_ref:.3f} under the "
           f"ground-truth UA ranking (gap {comp['gap'][gsel, pi]:+.3f}, interval "
           f"[{comp['gap_lo'][gsel, pi]:+.3f}, {comp['gap_hi'][gsel, pi]:+.3f}])")
    return gname, pos, sh, sh_ref, who


def messages(f: Findings) -> dict[str, str]:
    """The sentence per verdict: the worst cell, the statistic, and the diagnosed cause."""
    tolerance, stat = f.tolerance, f.stat
    *_, who = worst_cell(f)
    causes = []
    if f.not_ma:
        r = f.not_ma[0]
        causes.append(f"the predictor is not multiaccurate: on {r['group']} its mean probability of label "
                      f"{r['label']} is off by {r['alpha']:+.3f} [{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}]"
                      + (f" ({len(f.not_ma)} group-label pairs in all)" if len(f.not_ma) > 1 else ""))
    if f.ranker_bad:
        r = f.ranker_bad[0]
        causes.append(f"the ranker does not carry the predictor's accuracy through: for {r['group']} at position "
                      f"{r['position']} it differs from the UA ranking of the same predictions by "
                      f"{r['ranker_term']:+.3f} [{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}]")
    if f.above_bound:
        causes.append(f"the gap exceeds Theorem 16's bound on {len(f.above_bound)} group(s)")
    cause = (" Cause: " + "; ".join(causes) + ".") if causes else ""
    # the statistic itself (what the headline quotes): the largest |gap| over every judged set and
    # position, whose interval is over all of them, not the one cell named above
    who += (f"; the largest |gap| over all groups and positions is {stat.estimate:.3f}, interval "
            f"[{stat.ci[0]:.3f}, {stat.ci[1]:.3f}]")
    return {
        "fail": f"Group positions drift from the ground truth: {who}.{cause}",
        "pass": f"Every group's chance of every position is within {tolerance:g} of the ground-truth UA ranking; "
                f"the largest gap: {who}." + (f" Note: {causes[0]}." if causes else ""),
        "inconclusive": f"The largest gap cannot yet be placed above or below {tolerance:g}: {who}." + cause,
    }


def figures(f: Findings, alphas: list[dict], max_figures: int) -> list[dict]:
    """α̂ per group and label, the share-gap heat map, and the position curves of the sets
    whose gaps are largest."""
    comp, names, names_s, judged, m, n = f.comp, f.names, f.names_s, f.judged, f.m, f.n
    shown = [r for r in alphas if not (m == 2 and r["label"] == names[0])]
    out = [{"kind": "interval_bars", "title": "α̂ per group and label (mean prediction − label frequency)",
            "labels": [f"{r['group']} · label {r['label']}" for r in shown],
            "estimate": [r["alpha"] for r in shown],
            "lo": [r["alpha_lo"] for r in shown],
            "hi": [r["alpha_hi"] for r in shown],
            "highlight": [r["tiny"] for r in shown],
            "xlabel": "α̂ (0 = accurate on average)", "reference": 0.0, "reference_label": "0"},
           {"kind": "heatmap", "title": "Share gap per group and position (ranker − ground-truth UA)",
            "matrices": [comp["gap"][judged].tolist()],
            "subtitles": ["red: more often than under UA, blue: less often"],
            "diverging": True, "ylabels": [names_s[g] for g in np.flatnonzero(judged)], "x0": 1,
            "xlabel": "position (1 = top)", "ylabel": ""}]
    order = [int(g) for g in np.flatnonzero(judged)[np.argsort(-np.nanmax(np.abs(comp["gap"][judged]), axis=1),
                                                               kind="stable")] if g != 0][: int(max_figures)]
    x = list(range(1, n + 1))
    for g in order:
        out.append({"kind": "lines", "title": f"{names_s[g]}: chance of each position for a member",
                    "xlabel": "position (1 = top)", "ylabel": "Pr[position | member]",
                    "series": [{"x": x, "y": comp["A"][g].tolist(), "lo": comp["A_lo"][g].tolist(),
                                "hi": comp["A_hi"][g].tolist(), "label": "audited ranker"},
                               {"x": x, "y": comp["ref"][g].tolist(), "lo": comp["ref_lo"][g].tolist(),
                                "hi": comp["ref_hi"][g].tolist(), "label": "ground-truth UA"},
                               {"x": x, "y": comp["A_f"][g].tolist(), "label": "UA of the predictions"}]})
    return out


def evidence(f: Findings, unit: str, extra: dict, multicalibration_table, lam) -> dict:
    """The worst cell, the diagnosis, Theorem 16's figures and the multicalibration summary."""
    comp, gsel, pi = f.comp, f.gsel, f.pi
    gname, pos, sh, sh_ref, _ = worst_cell(f)
    out = {
        "worst": {"group": gname, "position": pos, "share_ranker": sh, "share_truth": sh_ref,
                  "gap": comp["gap"][gsel, pi], "ci": [comp["gap_lo"][gsel, pi], comp["gap_hi"][gsel, pi]],
                  "ranker_term": comp["ranker"][gsel, pi], "predictor_term": comp["predictor"][gsel, pi]},
        "predictor_not_multiaccurate": f.not_ma,
        "ranker_not_carrying_through": f.ranker_bad,
        "gap_above_theorem16_bound": f.above_bound,
        "theorem16": {"alpha_hat_upper": f.alpha_hi, "alpha_population_upper": f.alpha_X_hi, "n": f.n, "m": f.m,
                      "bound_n_m_alpha": f.bound_global, "vacuous": bool(f.bound_global >= 1)},
        "tiny_groups": [s.name for s, t in zip(f.sets, f.tiny) if t],
        "labels": f.names, "unit": unit, **extra,
    }
    if multicalibration_table is not None and len(multicalibration_table):
        dense = multicalibration_table.loc[~multicalibration_table["sparse"]]
        out["multicalibration"] = {
            "cells": int(len(multicalibration_table)), "sparse_cells": int(multicalibration_table["sparse"].sum()),
            "max_abs_error_dense": float(dense["error"].abs().max()) if len(dense) else None, "lambda": float(lam)}
    return out
