"""``ex_post``: ex-post fairness across populations (Kearns, Roth and Wu, Def 2.5); see the class docstring."""
from __future__ import annotations


import numpy as np
import pandas as pd

from fairaudit.check import Check, Param
from fairaudit.inputs import audit_pools, pools_skip_reason
from fairaudit.populations import (POPULATION_COLUMN, QUALITY_COLUMN, SETUPS, selected_is_true_top_k)
from fairaudit.draw_records import pool_replay_command
from fairaudit.result import Statistic
from fairaudit.stats import (proportion_ci)


class ExPost(Check):
    """Ex-post fairness (Kearns, Roth and Wu, Def 2.5): in a run, every selected candidate has true
    quality at least that of every rejected one — i.e. the run selected the true top k.

    Simulator: one run on each of ``pools`` fresh pools, so runs are i.i.d. over (X,
    coins) and the violation rate gets an exact Clopper–Pearson interval. Data: ``draws``
    runs on each given pool; the rate is conditional on those pools (runs on different
    pools are independent but not identically distributed; the binomial interval is
    then conservative, Hoeffding 1956). The paper shows ex-post fairness is impossible
    from samples, so every realistic allocator fails at the default tolerance; for a
    deterministic allocator the rate is the fraction of pools where it misses the true
    top k (§7: GREEDY ≈ 87% in the paper's text, exactly 77.4% for our GREEDY at m = 100 + 50;
    plug-in ≈ 53% in the paper, 54.6% ± 0.4% here over 20,000 pools)."""

    id = "ex_post"
    # -- words for readers (the report and the terminal read these from the registry) --
    statistic_labels = {
        'ex_post_violation_rate': 'share of runs unfair ex post',
    }
    headlines = {
        'ex_post_violation_rate': ('In {est} of the runs, a worse candidate is chosen over a better one',
                                   'the allowed share {tol}'),
    }
    column_labels = {
        'runs': 'runs',
        'true_top_k_share': 'share of the true top-k',
        'unfair_runs': 'unfair runs',
    }
    data_needs = ("built-in cross-population pools, or --data FILE with a 'quality' column",
                  'fairaudit check my_allocator.py --checks ex_post')
    title = "Ex-post fairness across populations"
    summary = "Ex-post fairness (Kearns–Roth–Wu Def 2.5): how often a run selects someone worse than someone it rejects."
    definition = ("A run is ex-post fair if every selected candidate has a true CDF value (within their own "
                  "population) at least that of every rejected candidate — the run picked the true top k. The "
                  "statistic is the fraction of runs that are not, over random pools and the allocator's coins.")
    kinds = ("selection",)
    sources = ("allocator",)
    table_titles = {
        "pools": "Runs unfair ex post, per pool",
    }
    default = False
    params = {
        "tolerance": Param(0.05, "largest acceptable fraction of ex-post unfair runs", type=float, min=0, max=1),
        "quality": Param(QUALITY_COLUMN, "data column with the true CDF value of each candidate", type=str),
        "population": Param(POPULATION_COLUMN, "data column naming each candidate's population", type=str),
        "setup": Param("paper", f"simulator setup when there is no --data ({', '.join(SETUPS)}, or none)",
            choices=(*SETUPS, "none", "off")),
        "n": Param(150, "simulated pool size (the paper's §7: 100 + 50, k = 15)", type=int, min=2),
        "ratio": Param("2,1", "simulated population size ratio (d = number of entries)",
            parse=Param.numbers(min=0, min_open=True, min_items=1, what="population sizes")),
        "pools": Param(400, "simulated pools (one run each)", type=int, min=1),
        "draws": Param(400, "runs per pool when pools come from --data", type=int, min=1),
    }

    def skip_reason(self, ctx):
        p = self.resolved_params(ctx.config.params.get(self.id))
        return pools_skip_reason(ctx, p["quality"], p["setup"])

    def run(self, ctx, tolerance, quality, population, setup, n, ratio, pools, draws):
        specs, source = audit_pools(ctx, quality, population, setup, n, pools, self.id, ratio)
        per_run = 1 if source == "simulator" else ctx.max_draws(draws)
        total = bad = 0
        rows, example = [], None
        for i, spec in enumerate(specs):
            ctx.step("pool", i + 1, len(specs))
            d = ctx.sampler.draw(spec.inst, per_run, f"{self.id}/pool/{spec.index}")
            ok = selected_is_true_top_k(d, spec.quality)
            nb = int((~ok).sum())
            total += len(ok)
            bad += nb
            rows.append({"pool": spec.index, "n": spec.n, "k": spec.k, "runs": len(ok), "unfair_runs": nb,
                         "true_top_k_share": float(np.isin(d, np.argsort(-spec.quality)[:spec.k]).mean())})
            if nb and example is None:
                j_bad = int(np.flatnonzero(~ok)[0])
                run_ = d[j_bad]
                sel = np.asarray(run_)
                rej = np.setdiff1d(np.arange(spec.n), sel)
                w = int(sel[np.argmin(spec.quality[sel])])
                b = int(rej[np.argmax(spec.quality[rej])])
                example = {"pool": spec.index,
                           "selected": {"index": w, "population": spec.names[spec.population[w]],
                                        "quality": float(spec.quality[w])},
                           "rejected": {"index": b, "population": spec.names[spec.population[b]],
                                        "quality": float(spec.quality[b])}}
                record = ctx.draw_record(f"{spec.inst.label}, run {j_bad}", spec.inst, f"{self.id}/pool/{spec.index}",
                                         d[j_bad:j_bad + 1], start=j_bad, members=[w, b])
        lo, hi = proportion_ci(bad, total, ctx.confidence)
        rate = bad / max(total, 1)
        stat = Statistic("ex_post_violation_rate", rate, (lo, hi), tolerance=float(tolerance),
                         method=f"clopper-pearson over {total} runs"
                                + (" (one per fresh pool)" if source == "simulator" else f" on {len(specs)} given pool(s)"),
                         violation="above")
        ex = ""
        if example:
            ex = (f"e.g. pool {example['pool']} selected candidate {example['selected']['index']} (population "
                  f"{example['selected']['population']}, true CDF {example['selected']['quality']:.3f}) but rejected "
                  f"candidate {example['rejected']['index']} (population {example['rejected']['population']}, true CDF "
                  f"{example['rejected']['quality']:.3f})")
        msgs = {"fail": f"{bad} of {total} runs ({rate:.1%}) select someone of lower true quality than someone they "
                        f"reject — above the tolerated {tolerance:.1%}; {ex}.",
                "pass": f"Only {bad} of {total} runs are ex-post unfair; the rate is at most {tolerance:.1%} with "
                        f"confidence.",
                "inconclusive": f"{bad} of {total} runs are ex-post unfair; the rate cannot yet be placed against "
                                f"{tolerance:.1%}" + (f"; {ex}" if ex else "") + "."}
        table = pd.DataFrame(rows)
        evidence = {"source": source, "runs": total, "unfair_runs": bad, "counterexample": example}
        if ctx.target is not None and example is not None:
            evidence.update(ctx.replay_evidence(self.id, [record], "whether the run selected the worse candidate "
                                                f"{example['selected']['index']} (1) and the better candidate "
                                                f"{example['rejected']['index']} (0)"))
            if source == "simulator":
                evidence["reaudit_command"] = pool_replay_command(ctx, setup, n, example["pool"], ctx.target.path,
                                                                  self.id, ratio)
        fig = {"kind": "interval_bars", "title": "Ex-post unfair runs", "labels": ["all runs"],
               "estimate": [rate], "lo": [lo], "hi": [hi], "reference": float(tolerance),
               "reference_label": f"tolerance {tolerance:g}", "xlabel": "fraction of runs not selecting the true top k",
               "xlim": [0, 1]}
        return self.judged(stat, msgs, total, evidence=evidence, tables={"pools": table}, figures=[fig],
                           method=stat.method)


# ---------------------------------------------------------------------------
# ex_ante (Def 2.1)
# ---------------------------------------------------------------------------
