"""``determinism``: is the output identical across draws? Draws on an equal-claims input,
a generated input and the data; the statistic is the largest share of draws that differ
from the input's most common outcome (selection: as a set), Clopper–Pearson. Decision
(SPEC is silent on the direction): the property audited is *randomisation* — a
deterministic allocator cannot be anonymous (Devic et al., Prop 7) — so the check fails when
that share is below ``min_variation`` with confidence and passes when it is above.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from fairaudit.check import Check, Param
from fairaudit.instance import Instance
from fairaudit.inputs import attach_rows, data_instance, generated_instance, prediction_columns
from fairaudit.result import Statistic
from fairaudit.stats import proportion_ci


class Determinism(Check):
    id = "determinism"
    # -- words for readers (the report and the terminal read these from the registry) --
    statistic_labels = {
        'max_variation': 'largest share of draws unlike the most common outcome',
    }
    headlines = {       # at an estimate of 0, fairaudit.headline says "identical on every draw"
        'max_variation': ("On its most varied input, {est} of the draws differ from the most common outcome",
                          'the required share {tol}'),
    }
    column_labels = {
        'differ_from_mode': 'draws unlike the most common outcome',
        'distinct_outcomes': 'distinct outcomes',
    }
    title = "Determinism (is the allocator randomized?)"
    summary = "Is the output identical across draws? A deterministic allocator cannot be anonymous (Devic et al., Prop 7)."
    definition = ("Draws the allocator repeatedly on the same inputs (identical claims, generated claims, the data) "
                  "and measures how often the outcome differs from the most common one. A deterministic allocator "
                  "returns the same outcome every time; it then cannot be anonymous or stable (Devic et al., Prop 7) and "
                  "must break ties by position. The check passes when the allocator randomizes (varies in at least "
                  "min_variation of draws on some input) and fails when it varies less, with confidence.")
    kinds = ("selection", "ranking", "decision")
    sources = ("allocator",)
    table_titles = {
        "inputs": "Variation of the outcome on each input",
    }
    default = False
    params = {
        "min_variation": Param(0.01, "share of draws that must differ from the most common outcome on some input",
            type=float, min=0, max=1),
        "n": Param(8, "individuals in the equal-claims and generated inputs", type=int, min=2),
        "max_draws": Param(1024, "draws per input", type=int, min=2),
    }

    def run(self, ctx, min_variation, n, max_draws):
        kind = ctx.kind
        rng = ctx.rng(self.id)
        k_fixed = ctx.target.k if ctx.target.k is not None else ctx.config.k
        n_eq = max(int(n), 2 * int(k_fixed) if k_fixed else 2)
        insts = []
        if kind == "decision":                  # a per-person rule: on the data's rows only
            d = data_instance(ctx, kind, 200, rng, "determinism")
            if d is None:
                return self.result("skipped", "Skipped: a decision rule is drawn on the data's rows; give --data FILE.")
            insts.append(d)
        elif kind == "ranking":
            m = prediction_columns(ctx)
            insts.append(Instance(f"determinism: identical prediction rows (n={n_eq})", scores=np.full(n_eq, 0.5),
                                  predictions=np.full((n_eq, m), 1.0 / m)))
        else:
            insts.append(Instance(f"determinism: equal claims (n={n_eq})", scores=np.full(n_eq, 0.5),
                                  k=ctx.selection_k(n_eq)))
        if kind != "decision":
            insts[0] = attach_rows(ctx, insts[0], rng, identical=True)
            insts.append(generated_instance(ctx, kind, max(n_eq, 10) if kind == "selection" else n_eq, rng,
                                             "determinism: generated claims"))
            d = data_instance(ctx, kind, 200 if kind == "selection" else 12, rng, "determinism")
            if d is not None:
                insts.append(d)
        B = ctx.max_draws(max_draws)
        conf = 1 - ctx.alpha / len(insts)
        rows = []
        for j, inst in enumerate(insts):
            ctx.step("input", j + 1, len(insts))
            dr = ctx.sampler.draw(inst, B, f"{self.id}/{j}")
            key = dr if kind in ("ranking", "decision") else np.sort(dr, axis=1)
            uniq, inv, cnt = np.unique(key, axis=0, return_inverse=True, return_counts=True)
            mode = int(np.argmax(cnt))
            differ = int(B - cnt[mode])
            lo, hi = proportion_ci(differ, B, conf)
            rows.append({"input": inst.label, "draws": B, "distinct_outcomes": int(len(uniq)),
                         "differ_from_mode": differ, "variation": differ / B, "lo": lo, "hi": hi,
                         "mode": (f"{int(uniq[mode].sum())} yeses of {inst.n}" if kind == "decision"
                                  else uniq[mode].tolist())})
        table = pd.DataFrame(rows)
        best = table.iloc[int(np.argmax(table["lo"].to_numpy() + 1e-9 * table["variation"].to_numpy()))]
        stat = Statistic("max_variation", float(table["variation"].max()),
                         (float(table["lo"].max()), float(table["hi"].max())), tolerance=float(min_variation),
                         method=f"clopper-pearson, bonferroni over {len(insts)} inputs", violation="below")
        total = int(B * len(insts))
        if table["distinct_outcomes"].max() == 1:
            first = table.iloc[0]
            det = (f"Not randomized: the outcome is identical on every draw — in {total} draws every input gave one "
                   f"outcome every time (e.g. {first['mode']} on '{first['input']}'), so the share of varying draws "
                   f"is at most {stat.ci[1]:.4f}; "
                   + ("a deterministic decision rule gives each person a sure yes or no (it may still be "
                      "counterfactually fair)." if kind == "decision" else
                      "such an allocator breaks ties by position and cannot be anonymous (Devic et al., Prop 7)."))
        else:
            det = ""
        msgs = {"fail": det or (f"Nearly deterministic: outcomes vary in at most {stat.ci[1]:.4f} of draws on every "
                                f"input ({total} draws)."),
                "pass": (f"Randomized: on '{best['input']}' {best['distinct_outcomes']} distinct outcomes in {B} draws; "
                         f"{best['variation']:.3f} of draws differ from the most common one "
                         f"(interval [{best['lo']:.3f}, {best['hi']:.3f}])."),
                "inconclusive": det or (f"Outcomes vary in {best['variation']:.4f} of draws on '{best['input']}'; "
                                        f"not yet clear whether that is above {min_variation:g}.")}
        evidence = {"deterministic_in_all_draws": bool(table["distinct_outcomes"].max() == 1), "draws_total": total}
        return self.judged(stat, msgs, total, evidence=evidence, tables={"inputs": table.drop(columns=["mode"])},
                           method=stat.method)


# ---------------------------------------------------------------------------
