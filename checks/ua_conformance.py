"""``ua_conformance`` (Devic et al.; SPEC §4) — is the ranker the UA ranking (Def 8)? On each input, the
estimated position marginals against the exact ones (:func:`fairaudit.ua_marginals`,
Props 9/10); per entry an anytime-valid beta-binomial confidence sequence (drawn
sequentially until decided), Bonferroni over all entries and inputs; the statistic is
the largest |R̂ − R_UA| judged against ``band``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from fairaudit.check import Check, Param
from fairaudit.instance import Instance
from fairaudit.outcomes import position_counts
from fairaudit.result import Statistic, decide
from fairaudit.stats import beta_binomial_cs, per_member_confidence
from fairaudit.ua import ua_marginals, validate_predictions

CHUNK = 256


class UAConformance(Check):
    id = "ua_conformance"
    # -- words for readers (the report and the terminal read these from the registry) --
    statistic_labels = {
        'max_abs_deviation_from_UA': 'largest deviation from the UA ranking',
    }
    headlines = {
        'max_abs_deviation_from_UA': ("Someone's chance of some position differs from the uncertainty-aware ranking's by {est}",
                                      'the tolerance {tol}'),
    }
    column_labels = {
        'estimated': 'estimated chance',
        'exact_ua': "UA ranking's chance",
        'max_deviation': 'largest deviation',
    }
    title = "Conformance to the uncertainty-aware ranking"
    summary = "Is the ranker the UA ranking (Devic et al., Def 8)? Estimated position marginals vs the exact ones."
    definition = ("The uncertainty-aware (UA) ranking draws every individual's label from its predicted "
                  "distribution independently, sorts by label and breaks ties at random; its position marginals "
                  "are computed exactly (Devic et al., Props 9/10). The audited ranker's estimated marginals must stay "
                  "within the band of the exact ones for every individual and position; intervals hold "
                  "simultaneously for all of them.")
    kinds = ("ranking",)
    sources = ("allocator",)
    table_titles = {
        "inputs": "Inputs: estimated position chances against the exact UA ranking",
    }
    default = False
    params = {
        "band": Param(0.02, "largest tolerated |estimated − exact UA| position marginal", type=float, min=0, max=1),
        "max_draws": Param(40000, "most draws per input (sequential sampling stops once decided)", type=int, min=1),
        "max_n": Param(30, "audit data with more individuals on a seeded subset of this size", type=int, min=2),
    }

    def run(self, ctx, band, max_draws, max_n):
        rng = ctx.rng(f"{self.id}/inputs")
        inputs, notes = [], []
        pop = ctx.population
        if pop is not None and pop.predictions is not None:
            x = validate_predictions(pop.predictions)
            if len(x) > max_n:
                keep = np.sort(rng.choice(len(x), size=int(max_n), replace=False))
                notes.append(f"{pop.path} has {len(x)} individuals; a seeded random subset of {max_n} is used")
                x = x[keep]
            inputs.append((pop.path or "data", x))
        else:
            if pop is not None:
                notes.append(f"{pop.path} has no prediction columns p_*; generated inputs were used")
            inputs += [("random input n=5, m=2", rng.dirichlet(np.full(2, 0.7), size=5)),
                       ("random input n=6, m=3", rng.dirichlet(np.full(3, 0.7), size=6)),
                       ("random input n=8, m=3 with tied rows", np.repeat(rng.dirichlet(np.full(3, 0.7), size=4), 2, axis=0))]
        fam = sum(len(x) ** 2 for _, x in inputs)
        member = per_member_confidence(ctx.confidence, fam)
        B_max = max(ctx.max_draws(max_draws), CHUNK)
        rows, keep = [], []
        total = 0
        for j, (name, x) in enumerate(inputs):
            ctx.step("input", j + 1, len(inputs))
            n = len(x)
            R = ua_marginals(x)
            inst = Instance(f"{name}", predictions=x)

            def bounds(draws, n=n, R=R):
                C = position_counts(draws, n)
                lo, hi = beta_binomial_cs(C.ravel(), len(draws), member)
                lo, hi = lo.reshape(n, n), hi.reshape(n, n)
                dlo = np.maximum(np.maximum(lo - R, R - hi), 0.0)
                dhi = np.maximum(np.abs(lo - R), np.abs(hi - R))
                return C / len(draws), dlo, dhi

            def decided(draws):
                _, dlo, dhi = bounds(draws)
                return decide((dlo.max(), dhi.max()), band, "above") != "inconclusive"

            draws = ctx.sampler.sample_until(inst, f"{self.id}/{j}", decided, B_max, first=1024)
            total += len(draws)
            Rh, dlo, dhi = bounds(draws)
            dev = np.abs(Rh - R)
            w = np.unravel_index(int(np.argmax(dev)), dev.shape)
            rows.append({"input": name, "n": n, "m": x.shape[1], "draws": len(draws), "max_deviation": float(dev.max()),
                         "dev_lo": float(dlo.max()), "dev_hi": float(dhi.max()),
                         "worst_individual": int(w[0]), "worst_position": int(w[1]) + 1,   # 1 = top, as the report reads
                         "estimated": float(Rh[w]), "exact_ua": float(R[w])})
            keep.append((x, R, Rh, inst, f"{self.id}/{j}", draws))
        table = pd.DataFrame(rows)
        method = (f"beta-binomial confidence sequences (anytime-valid, sequential), bonferroni over {fam} "
                  f"entries; exact UA marginals (Prop 10's dynamic program for n ≤ 12, the equivalent O(n³m) method above)")
        stat = Statistic("max_abs_deviation_from_UA", float(table["max_deviation"].max()),
                         (float(table["dev_lo"].max()), float(table["dev_hi"].max())), tolerance=float(band),
                         method=method, violation="above")
        wi = int(table["dev_lo"].idxmax()) if table["dev_lo"].max() > 0 else int(table["max_deviation"].idxmax())
        r = rows[wi]
        x, R, Rh, w_inst, w_stream, w_draws = keep[wi]
        where = (f"on {r['input']}, individual {r['worst_individual']} is at position {r['worst_position']} (1 = top) with "
                 f"probability {r['estimated']:.3f} where UA gives {r['exact_ua']:.3f}")
        msgs = {"fail": f"The ranker is not the UA ranking: {where} (deviation certified ≥ {r['dev_lo']:.3f} > band {band:g}).",
                "pass": f"The ranker's position marginals agree with the exact UA ranking within {band:g} on all "
                        f"{len(inputs)} input{'s' if len(inputs) != 1 else ''} (largest deviation ≤ {stat.ci[1]:.3f}).",
                "inconclusive": f"Cannot yet tell whether the ranker is within {band:g} of UA; the largest deviation: {where}."}
        figs = [{"kind": "heatmap", "title": f"Position marginals on {r['input']}",
                 "matrices": [np.round(Rh, 4).tolist(), np.round(R, 4).tolist()],
                 "subtitles": ["audited ranker (estimated)", "exact UA"],
                 "xlabel": "position (1 = top)", "ylabel": "individual", "x0": 1,
                 "vmin": float(min(Rh.min(), R.min())), "vmax": float(max(Rh.max(), R.max()))},
                {"kind": "heatmap", "title": "Estimated − exact UA", "matrices": [np.round(Rh - R, 4).tolist()],
                 "subtitles": ["difference"], "xlabel": "position (1 = top)", "ylabel": "individual", "x0": 1,
                 "diverging": True}]
        evidence = {"counterexample": {"P": np.round(x, 12).tolist(), "individual": r["worst_individual"],
                                       "position": r["worst_position"], "estimated": r["estimated"],
                                       "exact_ua": r["exact_ua"], "deviation_ci": [r["dev_lo"], r["dev_hi"]]},
                    "notes": notes}
        evidence.update(ctx.replay_evidence(self.id, [ctx.draw_record(
            r["input"], w_inst, w_stream, w_draws, members=[[r["worst_individual"], r["worst_position"] - 1]])],
            f"the chance of individual {r['worst_individual']} at position {r['worst_position']} (1 = top) "
            f"(exact UA: {r['exact_ua']:.4g})"))
        return self.judged(stat, msgs, total, evidence=evidence, tables={"inputs": table}, figures=figs, method=method)
