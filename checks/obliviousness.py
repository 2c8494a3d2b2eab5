"""``obliviousness`` (Kearns, Roth and Wu, Def 2.6, selection): populations are the categories of one
group column (``population``; without data, Kearns, Roth and Wu's pools: two populations of sizes
2:1 with scores ``N(μ_j, 1)``, ``μ_j ~ N(0, 1)``). Strictly increasing transforms of each
population's raw scores keep every within-population empirical CDF value, so an
oblivious allocator's selection chances must not change: same two-sample comparison
and verdict rule as the permutation probe. The transforms: population j shifted above
all others (for each population in turn, up to three), and a non-linear map (exp /
cube) per population. Decision: ``tau`` is an absolute difference in chance, so data
are subsampled to ``max_n`` = 40 rows (chances of order k/n must be able to exceed it;
on 200 rows with k = 3 a ten-fold change, 0.003 → 0.03, would stay below 0.05).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from fairaudit.check import Check, Param
from fairaudit.two_sample import Comparison, Study, member_table
from fairaudit.instance import Instance
from fairaudit.inputs import attach_rows, data_instance, wants
from fairaudit.populations import ecdf_preserving_transforms, seed004_pool


class Obliviousness(Check):
    id = "obliviousness"
    # -- words for readers (the report and the terminal read these from the registry) --
    statistic_labels = {
        'max_chance_difference': 'largest change of a chance under relabelling',
    }
    headlines = {
        'max_chance_difference': ("Relabelling people (reordering the list, or swapping protected attributes between equal claims) moves someone's chance by {est}",
                                  'the tolerance {tol}'),
    }
    data_needs = ('optional --data FILE whose group column names the populations (--groups)',
                  'fairaudit check my_allocator.py --checks obliviousness --data people.csv --groups population')
    title = "Obliviousness (Kearns, Roth and Wu, Def 2.6)"
    summary = "Selection depends on within-population empirical CDF values only, not on raw scores (Kearns, Roth and Wu, Def 2.6)."
    definition = ("An allocator is oblivious when inputs that induce the same empirical CDF values within each "
                  "population get the same outcome distribution (Kearns, Roth and Wu, Def 2.6). The audit applies strictly "
                  "increasing transforms to each population's raw scores — they keep every within-population "
                  "rank, but reorder individuals across populations — and compares each person's selection chance "
                  "before and after, with intervals simultaneous over people, transforms and looks.")
    kinds = ("selection",)
    sources = ("allocator",)
    table_titles = {
        "transforms": "Score transforms that keep each population’s CDF values",
        "worst_transform_members": "People of the worst transform: chance before and after",
    }
    default = False
    params = {
        "population": Param("", "group column naming the populations (default: the data's first group column)",
            type=str),
        "tau": Param(0.05, "tolerated difference in chance (absolute)", type=float, min=0, max=1),
        "n": Param(30, "pool size when generating Kearns, Roth and Wu's two-population pools (no data)", type=int, min=2),
        "max_n": Param(40, "largest data instance used as is (larger ones are subsampled: chances must be large enough for an absolute tau)",
            type=int, min=2),
        "max_draws": Param(16384, "draws per input at most (looks of 512, 2048, … stop once decided)", type=int, min=1),
    }

    def skip_reason(self, ctx):
        pop = ctx.population
        if pop is not None and pop.scores is not None and not pop.group_cols:
            return f"{pop.path} has no group column naming the populations (use --groups)"
        return None

    def run(self, ctx, population, tau, n, max_n, max_draws):
        rng = ctx.rng(self.id)
        inst = data_instance(ctx, "selection", int(max_n), rng, "obliviousness") if ctx.population else None
        if inst is not None and inst.groups is not None:
            col = population or (ctx.population.group_cols[0] if ctx.population.group_cols else None)
            if col not in inst.groups.columns:
                full = ctx.population.groups
                if col not in full.columns:
                    return self.result("error", f"population column '{col}' is not a group column of the data; "
                                                f"it has {', '.join(full.columns)}")
            pops = inst.groups[col].astype(str).to_numpy()
            where = f"populations = {col}"
        else:
            s, pops = seed004_pool(int(n), rng)
            col = population or "population"
            inst = Instance(f"obliviousness: Kearns, Roth and Wu pool (n={n}, populations 2:1)", scores=s,
                            k=ctx.selection_k(int(n)), groups=pd.DataFrame({col: pops}))
            where = "Kearns, Roth and Wu pool, populations P1/P2"
        if not wants(ctx, "groups"):
            inst = inst.replace(groups=None)
        if wants(ctx, "features") and inst.features is None:
            inst = attach_rows(ctx, inst, rng)
        if len(np.unique(pops)) < 2:
            return self.result("skipped", f"Skipped: only one population in '{col}'.")
        study = Study(ctx, "selection", float(tau))
        a = study.stream(inst, f"{self.id}/base")
        for j, (desc, t) in enumerate(ecdf_preserving_transforms(inst.scores, pops)):
            lab = f"obliviousness transform {j + 1}: {desc} ({where}, n={inst.n})"
            ti = inst.replace(label=lab, scores=t)
            study.add(Comparison("transform", lab, a, study.stream(ti, f"{self.id}/t/{j}"),
                                  mapping=np.arange(inst.n), meta={"transform": desc}))
        stat, verdict, draws = study.run(ctx.max_draws(max_draws))
        comp, idx = study.worst()
        b = comp.bounds
        i = int(idx[0])
        who = (f"individual {i} (population {pops[i]}, score {inst.scores[i]:.4g}) is selected with chance "
               f"{b['pa'][idx]:.3f} on the raw scores but {b['pb'][idx]:.3f} after '{comp.meta['transform']}'")
        rng_txt = f"|difference| in [{b['abs_lo'][idx]:.3f}, {b['abs_hi'][idx]:.3f}]"
        msgs = {"fail": f"Not oblivious: {who} ({rng_txt}); within-population ranks are unchanged, so the allocator "
                        f"uses raw scores across populations.",
                "pass": f"Oblivious within tau {tau:g}: chances move by at most {stat.ci[1]:.3f} under every "
                        f"ECDF-preserving transform; the largest: {who}.",
                "inconclusive": f"Cannot yet tell whether chances move by more than {tau:g}: {who} ({rng_txt})."}
        rows = [{"transform": c.meta["transform"], "max_difference": float(np.max(np.abs(c.bounds["d"]))),
                 "abs_diff_lo": float(np.max(c.bounds["abs_lo"])), "abs_diff_hi": float(np.max(c.bounds["abs_hi"]))}
                for c in study.comps]
        evidence = {"worst": {"individual": i, "population": str(pops[i]), "score": float(inst.scores[i]),
                              "chance_raw": float(b["pa"][idx]), "chance_transformed": float(b["pb"][idx]),
                              "transform": comp.meta["transform"],
                              "abs_difference_ci": [float(b["abs_lo"][idx]), float(b["abs_hi"][idx])]},
                    "populations": where, "looks": study.looks_done}
        tables = {"transforms": pd.DataFrame(rows),
                  "worst_transform_members": member_table("selection", comp, inst.scores, inst.groups)}
        return self.judged(stat, msgs, draws, evidence=evidence, tables=tables, method=stat.method,
                           components=study.components())
