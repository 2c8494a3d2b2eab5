"""``systemic_exclusion`` (Def 4.4; an extra, ``default = False``, because it needs m
runs per replicate and is a structural comparison rather than a property of one
allocator): m decision-makers are m independent runs of the allocator (or the
allocator plus the files in ``others``), each seeing the claims plus ``N(0, σ²)``
noise (σ = 0.025 as in Jain, Creel and Wilson, Fig. (b)); SER = share excluded by all m, per
replicate, Student-t interval over replicates, next to deterministic top-k on the
same noisy claims. Verdict on the relative reduction ``1 − SER/SER_top-k`` (interval
from the box of the two): fail when certified below ``min_reduction`` (0.1).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from fairaudit.check import Check, Param
from fairaudit.inputs import build_instances
from fairaudit.result import Statistic
from fairaudit.stats import t_interval


class SystemicExclusion(Check):
    id = "systemic_exclusion"
    # -- words for readers (the report and the terminal read these from the registry) --
    statistic_labels = {
        'ser_reduction_vs_top_k': 'reduction of systemic exclusion vs top-k',
    }
    title = "Systemic exclusion rate"
    summary = "Share of people rejected by all m decision-makers (Jain, Creel and Wilson, Def 4.4), next to deterministic top-k."
    definition = ("The systemic exclusion rate is the share of individuals who receive a negative outcome from every "
                  "one of m decision-makers (m independent runs of the allocator, or several allocators, each "
                  "seeing the claims with its own noise). Deterministic top-k excludes everyone below its cut every time; randomising in "
                  "proportion to claims spreads the chances. The check reports the rate with its interval next to "
                  "top-k's on the same claims and noise, and asks for a reduction of at least a set fraction.")
    kinds = ("selection",)
    sources = ("allocator",)
    column_labels = {
        'ser': 'systemic exclusion (share rejected by all)', 'top_k_ser': 'systemic exclusion under top-k',
        'top_k': 'systemic exclusion under top-k', 'reduction': 'reduction vs top-k', 'sigma': 'noise (σ)',
        'replicates': 'replicates',
    }
    table_titles = {
        "ser": "Share rejected by every decision-maker (systemic exclusion)",
    }
    default = False
    params = {
        "instances": Param("uniform:1000:0.25", "without --data: claim instances distribution:n:k_over_n",
            parse=Param.claim_instances),
        "m": Param(3, "number of decision-makers (independent runs)", type=int, min=1),
        "sigma": Param(0.025, "each decision-maker sees claims + N(0, sigma²) noise (Jain, Creel and Wilson, §4.1.1), clipped at 0",
            type=float, min=0),
        "replicates": Param(50, "replicates of the m runs (with noise each is m allocator calls on fresh noisy claims)",
            type=int, min=2),
        "min_reduction": Param(0.1, "least relative reduction of the exclusion rate against top-k", type=float, max=1),
        "others": Param("", "more decision-makers: comma-separated allocator files; then m = 1 + their number",
            parse=Param.csv_of(min_items=0, what="allocator files")),
    }

    def run(self, ctx, instances, m, sigma, replicates, min_reduction, others):
        other_paths = [p.strip() for p in str(others or "").split(",") if p.strip()]
        if other_paths:
            makers = [ctx.sampler] + [ctx.sampler_for(p) for p in other_paths]
            m = len(makers)
        else:
            makers = [ctx.sampler] * int(m)
        insts = build_instances(ctx, instances, self.id)
        conf = 1 - ctx.alpha / len(insts)
        rows, per = [], []
        for j, inst in enumerate(insts):
            claims = np.asarray(inst.scores, dtype=float)
            n = len(claims)
            k = int(ctx.target.effective_k(inst) or ctx.selection_k(n))
            inst = inst.replace(k=k)
            rng = ctx.rng(f"{self.id}/noise/{j}")
            R = int(replicates)
            noisy = np.clip(claims[None, None, :] + sigma * rng.standard_normal((R, m, n)), 0, None) if sigma > 0 else None
            excl = np.ones((R, n), dtype=bool)
            excl_top = np.ones((R, n), dtype=bool)
            if noisy is None:
                for jj, smp in enumerate(makers):
                    d = smp.draw(inst, R, f"{self.id}/{j}/dm{jj}")
                    excl[np.arange(R)[:, None], d] = False
                top = np.argsort(-claims, kind="stable")[:k]
                excl_top[:, top] = False
            else:
                for jj, smp in enumerate(makers):
                    # one decision-maker per noise draw: its own claims, one outcome per replicate
                    d = smp.draw_many([(inst.replace(scores=noisy[r, jj], label=f"{inst.label}, noisy claims"),
                                        f"{self.id}/{j}/dm{jj}/{r}") for r in range(R)], 1)[:, 0]
                    excl[np.arange(R)[:, None], d] = False
                    top = np.argsort(-noisy[:, jj, :], axis=1, kind="stable")[:, :k]
                    excl_top[np.arange(R)[:, None], top] = False
            ser_r = excl.mean(axis=1)
            top_r = excl_top.mean(axis=1)
            diff = top_r - ser_r
            ser, s_lo, s_hi = t_interval(ser_r, 1 - (1 - conf) / 2, bounds=(0.0, 1.0))
            tser, t_lo, t_hi = t_interval(top_r, 1 - (1 - conf) / 2, bounds=(0.0, 1.0))
            # reduction = 1 − SER/SER_top, interval from the box of the two intervals
            red = 1 - ser / tser if tser > 0 else 0.0
            red_lo = 1 - s_hi / t_lo if t_lo > 0 else -np.inf
            red_hi = 1 - s_lo / t_hi if t_hi > 0 else 1.0
            if np.all(diff == 0):   # the allocator excludes exactly whom top-k excludes
                red_lo = red_hi = red = 0.0
            rows.append({"instance": inst.label, "m": m, "sigma": sigma, "replicates": R, "ser": ser, "ser_lo": s_lo,
                         "ser_hi": s_hi, "top_k_ser": tser, "top_k_lo": t_lo, "top_k_hi": t_hi,
                         "reduction": red, "reduction_lo": red_lo, "reduction_hi": red_hi})
            per.append((red, red_lo, red_hi))
        table = pd.DataFrame(rows)
        i = int(np.argmin([p[2] for p in per]))
        stat = Statistic("ser_reduction_vs_top_k", float(min(p[0] for p in per)),
                         (float(min(p[1] for p in per)), float(min(p[2] for p in per))), tolerance=min_reduction,
                         method=f"Student-t over {int(replicates)} replicates (each a mean over n individuals), "
                                f"bonferroni over 2·{len(insts)}; ratio from the box of both intervals",
                         violation="below")
        w = rows[i]
        msgs = {"fail": f"Systemic exclusion on {w['instance']}: {w['ser']:.3f} of individuals are rejected by all {m} "
                        f"decision-makers vs {w['top_k_ser']:.3f} under top-k — a reduction of {w['reduction']:.2f} "
                        f"[{w['reduction_lo']:.2f}, {w['reduction_hi']:.2f}], short of {min_reduction:g}; "
                        f"randomise more of the allocation.",
                "pass": f"Randomisation cuts systemic exclusion: {w['ser']:.3f} rejected by all {m} decision-makers vs "
                        f"{w['top_k_ser']:.3f} under top-k (reduction ≥ {w['reduction_lo']:.2f}).",
                "inconclusive": f"Cannot yet tell whether systemic exclusion ({w['ser']:.3f}) is at least "
                                f"{min_reduction:g} below top-k's ({w['top_k_ser']:.3f})."}
        figures = [{"kind": "interval_bars", "title": f"Systemic exclusion rate across {m} decision-makers",
                    "labels": [f"{r['instance']} — allocator" for r in rows] + [f"{r['instance']} — top-k" for r in rows],
                    "estimate": [r["ser"] for r in rows] + [r["top_k_ser"] for r in rows],
                    "lo": [r["ser_lo"] for r in rows] + [r["top_k_lo"] for r in rows],
                    "hi": [r["ser_hi"] for r in rows] + [r["top_k_hi"] for r in rows],
                    "highlight": [False] * len(rows) + [True] * len(rows), "xlabel": "systemic exclusion rate"}]
        return self.judged(stat, msgs, sum(r["replicates"] * m for r in rows), evidence={"instances": rows},
                           tables={"ser": table}, figures=figures, method=stat.method)
