"""``broome``: Broome-Fairness (Jain, Creel and Wilson, Defs 4.1–4.3, 4.7–4.9).

Broome-Fairness of an iterative weighted selection (Def 4.2): for every round and
every pair of remaining individuals, BF.1 ``c_i > c_j ⇒ w_i > w_j`` and BF.2
``c_i > 0 ⇒ w_i > 0``; Broome also asks equal chances for equal claims. The weights
are not observed; the audit sees outcomes. BF implies that the inclusion
probabilities ``π_i`` rise with claims, so everything below tests consequences of BF
on ``π`` (and, when picks come in order, on the first-round weights): agreement is
necessary, not sufficient, and the report says so.

Design (decisions where SPEC §1 and the seed are silent)
--------------------------------------------------------
*Why not a reversal between individuals.* With n = 1000 the family of individual
intervals is large (Bonferroni over n) and the true chance gap between adjacent claims
is tiny, so a pairwise reversal between individuals can only ever *refute*; it can
never certify that chances rise, and it cannot see a *flat* allocator (the uniform
lottery has no reversal at all, only equality). The headline BF.1 statistic is
therefore computed on **claim bins**:

* Individuals are sorted by claim and cut into ``bins`` bins (default 10) of (nearly)
  equal size, equal claims never split; at least 25 individuals per bin (fewer bins
  for small pools; one individual per bin when n ≤ ``bins``). For bins ``g`` below
  ``h`` (``c̄_g < c̄_h``) the per-draw difference ``D = X_h − X_g`` of the fractions
  of each bin selected is a bounded variable whose mean is the chance gain
  ``π̄_h − π̄_g``; correlation between bins within a draw is accounted for.
* That gain is divided by the gain the **Broome lottery** (``w ∝ c``, Example 4.3)
  would give on the same claims, ``π^BF`` — exact: the Broome lottery is an exponential
  race (keys ``E_i / c_i``, the k smallest picked), so ``π_i = ∫ c_i e^{−c_i t} ·
  P(fewer than k others below t) dt``, a Poisson-binomial count under a one-dimensional
  integral (:func:`fairaudit.checks.broome.lottery.broome_reference`, Σπ = k checked to 1e-9·k;
  Rosén's ``1 − exp(−λ c_i)`` was 0.058 off on (0.6, 0.3, 0.1), k = 2, and ~7× off on
  tiny claims). The ratio ``r_gh`` is 1 for the Broome lottery,
  0 for a flat lottery, negative for a reversal. Statistic ``min_gain_ratio = min r_gh``
  over **all** bin pairs (far pairs give power against global flatness — the uniform
  lottery; adjacent pairs against local flatness — a band of equal weights), with an
  anytime-valid betting confidence sequence per pair, carried across the instance's
  looks (Bonferroni over the pairs), so sampling may stop as soon as the verdict is
  certain (empirical-Bernstein before: about half the draws now on the bundled examples,
  ``benchmarks/bench_sequential_result.txt``).
* Verdict on BF.1: fail when ``min r`` is certified below ``min_gain`` (default 0.1:
  stronger claims must get at least a tenth of the extra chance the Broome lottery
  gives them — the resolution at which "greater chance" is tested; any strictly
  increasing weighting passes once its gain is at least that), pass when certified at
  or above it. A certified negative ``r`` is a reversal: some stronger claim has a
  smaller chance than some weaker one. Pairs whose Broome gain is below
  ``0.001·k/n`` (both bins chosen almost surely or almost never) are not informative
  and are left out of the verdict.

Refutations (each can only fail, never needed for a pass; all from one family of
simultaneous anytime-valid beta-binomial confidence sequences on every ``π_i``):

* *largest certified reversal between individuals*: ``max over c_i > c_j of
  LCB(π_j) − UCB(π_i) > 0`` (O(n log n) with running maxima);
* *equal claims, unequal chances*: a tie group with ``max LCB > min UCB``;
* *BF.2, effectively excluded*: a positive claim with ``UCB(π_i) < min_chance ·
  π^BF_i``. The floor is **relative to the Broome lottery's chance for that claim**
  (default ``min_chance = 0.1``): an absolute floor would fail the Broome lottery
  itself on tiny claims (a claim of 1e-5 deserves a chance of about 1e-6), while a
  positive claim that gets less than a tenth of what the Broome lottery would give it
  is overridden in all but name. In practice it flags never-selected individuals whose
  Broome chance is at least ~10/(min_chance · draws). Because the bins can certify BF.1
  long before an excluded weak claim is certified, sampling does not stop on a pass
  while a positive claim never selected so far could still be certified excluded within
  the budget (for the Broome lottery no such claim remains after a few thousand draws,
  so it costs nothing there).
* *deterministic allocator*: the first 256 draws identical ⇒ the chance of any other
  outcome is below ``1 − α_i^{1/255}`` ≈ 1.2 % at α_i = 0.05 (Clopper–Pearson with zero
  deviations, conditioning on draw 0; α_i the instance's share of α). That fails BF.2
  outright (SPEC §1) — no large budget needed — for the positive claims outside that
  outcome whose Broome chance exceeds that bound / ``min_chance`` (the same relative
  floor as BF.2 for lotteries). Identical draws alone are not evidence: the Broome
  lottery itself repeats its likeliest set when the other claims are tiny (claims
  (1, 1, 1e-4, 1e-4), k = 2: 256 identical draws with chance ≈ 0.93); then sampling
  goes on as for any lottery. A fair lottery reaches the shortcut only if it gives some
  claim outside the set a chance above the bound yet showed 256 identical draws —
  Clopper–Pearson's α_i (spent separately from the sequential analysis' α_i, so the
  instance's false-fail bound is 2α_i in the worst case).
* *first-round weights* (when the first column is the first pick; output sorted by
  index in every draw is recognised and ignored; ``pick_order=no`` turns it off):
  per-bin first-pick frequencies with simultaneous confidence sequences; a bin of
  stronger claims whose average first-round weight is certified below a weaker bin's
  proves an individual reversal in round 1 (max ≥ mean);
* *later rounds* (n ≤ 10): the next pick's frequencies given the *set* already picked
  (every set seen ≥ 30 times), a certified reversal among the remaining is a BF.1
  violation in that round.

α is split equally between instances; within an instance ½ to the bin pairs, 0.3 to the
individual family and 0.2 to the pick-order families (0.5 to individuals when the
order is not read). Any failing component fails
the check; a pass needs the BF.1 bins certified and no refutation.

Partial Broome-Fairness (Def 4.9, Algorithm 1; seed Tables 1–6): the always-selected
set, the never-selected positive claims, the randomised pool between them. Exact 0 and
1 cannot be certified by sampling, so: ``π ≥ 1−η`` (``η = 0.05``) counts as always, and
a positive claim counts as never when its chance is below ``min_chance`` of the Broome
lottery's chance for it — BF.2's "effectively excluded" (an absolute ``π ≤ η`` would
put the weak claims of the Broome lottery itself, small by design, outside its pool).
``k'/k = (k − |always|)/k`` and ``n'/n = |pool|/n``, point estimates from ``π̂`` and
simultaneous bounds from the individual intervals (a never-drawn tiny claim whose
Broome chance is too small to certify anything widens the upper bound of ``n'/n``, so
once full BF has failed, sampling goes on — up to ``PARTIAL_DRAWS`` — while BF.1 inside
the pool is undecided or the ``n'/n`` interval is wider than ``PARTIAL_WIDTH`` = 0.05);
BF.1 is re-tested inside the pool (Broome lottery of the ``k'`` seats over the pool as
yardstick). When the pool is a contiguous range of claim ranks and it passes, the
message says "partial Broome-Fairness over ranks a..b"; the table ``partial_broome``
and each figure's caption give the reading per instance.

Utility (Defs 4.7/4.8): expected utility ``(1/k) Σ p_i 1[o_i=1]`` with ``p_i`` the
claims when they lie in [0, 1], precision with labels when the data has them; per
draw, with empirical-Bernstein intervals, next to top-k's (exact) — the cost of
randomisation. Reported, not judged.

Logs: when every decision event has the same pool (same individuals, same claims) the
events are draws and everything above applies (pick order from ``pick_order``);
otherwise the rows are binned by claim (at least 2000 rows per bin) and the selection
rate per bin (Clopper–Pearson, simultaneous; rows as independent trials, conservative
under the negative dependence of k-of-n selection) is compared with the Broome
lottery's rate computed event by event — the same ``min_gain_ratio`` across bins, and
BF.2 across bins. ``evidence["log_mode"]`` says which was possible.

Measured timings, the 3×3 grid, the 100-seed study and the resolution study: the docstring
of ``benchmarks/bench_broome.py``.
``stop_early=false`` takes the whole budget: the Broome lottery's ``min_gain_ratio`` is
then 0.97 [0.82, 1.00] and the slightly flattened lottery's 0.44 [0.31, 0.47].

Inputs: ``--data`` claims when given; otherwise claims from
:func:`fairaudit.data.generate_claims` — the parameter ``instances`` lists
``distribution:n:k_over_n`` items (default one instance per distribution family
of the issue at each k/n, three in all, to keep the default audit fast).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from fairaudit.checks.broome.lottery import (analyse, claim_bands, deterministic_certificate,
                                      deterministic_result,
                                      deterministic_excluded, resolution_statement,
                                      partial_analysis, partial_row, utility_analysis,
                                      utility_row)
from fairaudit.checks.broome.log import same_pool, same_pool_draws, streamed_claim_bin_rates
from fairaudit.check import Check, Param
from fairaudit.checks.broome import monotonicity as mono
from fairaudit.instance import Instance
from fairaudit.inputs import build_instances
from fairaudit.result import Statistic

DEFAULT_INSTANCES = "uniform:1000:0.1,truncated_normal:1000:0.25,pareto:1000:0.5"
DET_DRAWS = 256          # draws inspected for determinism
PARTIAL_DRAWS = 20000    # draws at most spent characterising a partial lottery after full BF has failed
                         # (the default budget: at 8192 BF.1 inside a pool of 100 narrow claims was left open)
LOG_ROWS_PER_BIN = 2000       # claim bins of a log with varying pools hold at least this many rows
INDIVIDUALS_TABLE_MAX = 200   # per-individual table in the result for instances up to this size



def _triple(stat) -> str:
    """A statistic as the headline quotes it: estimate and interval at three decimals."""
    f = (lambda x: ("∞" if x > 0 else "−∞") if np.isinf(x) else f"{x:.3f}")
    return f"{f(stat.estimate)}, interval [{f(stat.ci[0])}, {f(stat.ci[1])}]"

class Broome(Check):
    id = "broome"
    # -- words for readers (the report and the terminal read these from the registry) --
    statistic_labels = {
        'min_gain_ratio': 'smallest gain ratio between claim bins',
        'min_chance_ratio': 'smallest chance ratio',
        'bf1_max_drop': 'largest drop of chance when a claim rises (BF.1)',
        'bf2_min_chance': 'lowest chance of a positive claim (BF.2)',
        'max_reversal': 'largest reversal',
        'max_equal_claims_gap': 'largest chance gap between equal claims',
        'later_round_reversal': 'reversal in later rounds',
        'first_round_reversal': 'reversal in the first round',
    }
    headlines = {
        'min_gain_ratio': ('Between claim bins, the stronger claims get {est} of the extra chance a Broome lottery gives them',
                           'the tolerance {tol}'),
        'min_chance_ratio': ('The weakest positive claim gets {est} of its chance under a Broome lottery',
                             'the tolerance {tol}'),
    }
    column_labels = {
        'bin': 'claim bin',
        'selection_rate': 'selection rate', 'broome_rate': 'rate under the Broome lottery',
        'broome_chance': 'chance under the Broome lottery',
        'broome_weight': 'Broome lottery weight',
        'claim_max': 'highest claim',
        'claim_mean': 'mean claim',
        'claim_min': 'lowest claim',
        'cost': 'cost',
        'cost_vs_top_k': 'cost vs top-k',
        'expected_utility': 'expected utility',
        'first_round_weight': 'first-round weight',
        'k_prime_ci': 'k′ interval',
        'k_prime_over_k': 'k′ / k (share selected by lottery)',
        'n_prime_ci': 'n′ interval',
        'n_prime_over_n': 'n′ / n (share in the lottery)',
        'pool_ranks': 'ranks in the pool',
        'precision': 'precision',
        'precision_cost': 'precision cost',
        'reading': 'reading',
    }
    data_needs = ("nothing: the seeds' claim distributions, plus --data FILE's score column when given",
                  'fairaudit check my_allocator.py --checks broome')
    title = "Broome-Fairness"
    summary = ("Chances rise with claims (BF.1), no positive claim overridden (BF.2), equal claims equal chances; "
               "partial lotteries characterised (Jain, Creel and Wilson).")
    definition = ("A lottery is Broome-fair when, in every round, a stronger claim has a strictly greater chance "
                  "of being picked than a weaker one (BF.1) and every positive claim has some chance (BF.2); equal "
                  "claims get equal chances. The audit sees outcomes, not weights: it estimates each person's chance "
                  "of selection and, in claim bins, certifies that chances rise by at least a set fraction of what "
                  "Broome's lottery (chance in proportion to claim) gives, with no reversal, no unequal treatment of "
                  "equal claims and no positive claim effectively excluded. Agreement of the chances is necessary "
                  "for Broome-Fairness, not sufficient.")
    kinds = ("selection", "decision")
    table_titles = {
        "partial_broome": "Partial-lottery reading of each input (who is always, never or by lottery selected)",
        "utility": "Expected utility against top-k",
        "bins_{n}": "Chance by claim bin, input {n}",
        "first_round_{n}": "First-round chances, input {n}",
        "individuals_{n}": "Each individual’s chance against the Broome lottery, input {n}",
        "claims": "Chance against claim (per-person rule)",
        "bins": "Selection rate by claim bin in the log",
    }
    params = {
        "instances": Param(DEFAULT_INSTANCES, "without --data: claim instances distribution:n:k_over_n, comma-separated",
            parse=Param.claim_instances),
        "bins": Param(10, "claim bins for the BF.1 test", type=int, min=2),
        "min_gain": Param(0.1, "BF.1 resolution: least chance gain between claim bins, as a fraction of the Broome lottery's",
            type=float, min=0),
        "min_chance": Param(0.1, "BF.2: a positive claim whose chance is certified below this fraction of the Broome lottery's is effectively excluded",
            type=float, min=0, max=1),
        "pick_order": Param("auto", "read the first column as the first pick: auto (unless output is sorted), yes, no",
            choices=("auto", "yes", "no")),
        "max_draws": Param(20000, "draws per instance at most (sequential sampling stops earlier once decided)",
            type=int, min=1),
        "stop_early": Param(True, "stop sampling an instance once its verdict is certain; false: always take max_draws "
                                  "(narrower intervals, e.g. for comparing two results)", type=bool),
    }

    def _run_decision(self, ctx, min_chance, max_draws):      # per-person rules: fairaudit.checks.broome.monotonicity
        stat, comps, verdict, table, draws, w = mono.audit(ctx, min_chance, max_draws, f"{self.id}/decision")
        who = f"individual {int(w['individual'])} (claim {w['claim']:.4g}, chance {w['chance']:.3f})"
        msgs = {"fail": (f"BF.1 refuted: raising {who}'s claim lowers the chance by {w['drop']:.3f}." if
                         stat.name == "bf1_max_drop" else f"BF.2 refuted: {who} has a positive claim and a chance "
                         f"certainly below {min_chance:g} — effectively excluded."),
                "pass": f"No positive claim has a chance below {min_chance:g}, no raised claim lowered one; lowest: {who}.",
                "inconclusive": f"Not decided: the lowest chance of a positive claim, {who}, is near {min_chance:g}."}
        return replace(self.result(verdict, msgs[verdict], statistic=stat, components=comps, draws=draws,
                                   tables={"claims": table}, method=stat.method), definition=mono.DEFINITION)

    def skip_reason(self, ctx):
        if ctx.log is not None:
            return None
        if ctx.kind == "decision" and ctx.population is None:   # a per-person rule's chances by claim need data
            return "a per-person rule's chances are compared by claim on the population: give --data FILE with a score column"
        if ctx.population is not None and ctx.population.scores is None:
            return f"{ctx.population.path} has no score (claim) column"
        return None

    # ------------------------------------------------------------------
    def run(self, ctx, instances, bins, min_gain, min_chance, pick_order, max_draws, stop_early=True):
        self._min_gain, self._min_chance = min_gain, min_chance
        stop_early = str(stop_early).strip().lower() not in ("0", "false", "no", "off")
        if ctx.log is not None:
            return self._run_log(ctx, bins, min_gain, min_chance)
        if ctx.kind == "decision":
            return self._run_decision(ctx, min_chance, ctx.max_draws(max_draws))
        insts = build_instances(ctx, instances, self.id)
        conf_i = 1 - ctx.alpha / len(insts)
        budget = ctx.max_draws(max_draws)
        results = []
        for j, inst in enumerate(insts):
            ctx.step("input", j + 1, len(insts))
            claims = np.asarray(inst.scores, dtype=float)
            if np.any(claims < 0):
                return self.result("error", f"{inst.label}: claims must be non-negative for Broome-Fairness "
                                            f"(smallest is {claims.min():g}); rescale the score column.")
            k = int(ctx.target.effective_k(inst) if ctx.target.effective_k(inst) is not None else ctx.selection_k(len(claims)))
            if inst.k is None:
                inst = inst.replace(k=k)
            stream = f"{self.id}/{j}"
            first = ctx.sampler.draw(inst, min(DET_DRAWS, budget), stream)
            det = deterministic_certificate(first, conf_i) if len(first) >= 2 else None
            if det is not None:
                outside = np.setdiff1d(np.flatnonzero(claims > 0), first[0])
                excluded = deterministic_excluded(first, claims, det, min_chance)
                if len(outside) == 0 or len(excluded):
                    results.append({**deterministic_result(inst, first, det, excluded, min_chance), "stream": stream,
                                    "draw_array": first})
                    continue
                # identical so far, but the Broome lottery itself would look the same: sample on
            kw = dict(n_bins=bins, min_gain=min_gain, min_chance=min_chance, pick_order=pick_order,
                      labels=inst.labels)
            last, seqs = {}, {}          # seqs: the confidence sequences, carried from look to look

            def decided(draws, claims=claims, k=k, kw=kw, seqs=seqs):
                res = last["res"] = analyse(draws, claims, k, conf_i, final=False, budget=budget, sequences=seqs, **kw)
                open_ = (not stop_early or res["verdict"] == "inconclusive" or res["bf2_open"] or res["within_open"]
                         or (res["partial_open"] and len(draws) < PARTIAL_DRAWS))
                return not open_

            # the sampler's sequential sampling: looks of 256, 512, 1024, … draws, the first already taken
            draws = ctx.sampler.sample_until(inst, stream, decided, budget, first=len(first), have=first)
            res = last["res"]
            if "partial" not in res:
                res["partial"] = partial_analysis(draws, res["counts"], len(draws), claims, k, res["ind"],
                                                  1 - (0.5 * (1 - conf_i)), bins)
            res["utility"] = utility_analysis(draws, claims, k, inst.labels, conf_i)
            res["inst"], res["stream"], res["draw_array"] = inst, stream, draws
            results.append(res)
        res = self._finish(ctx, results, min_gain, min_chance)
        reso = [(r["inst"].label, resolution_statement(r["bins"])) for r in results if r.get("bins")]
        notes = sorted({x.get("reduced") for _, x in reso} - {None})
        res = replace(res, method=res.method + "; resolution: " + "; ".join(f"{lab}: {x['statement']}" for lab, x in reso)) if reso else res
        return replace(res, message=res.message + " Note: " + "; ".join(notes) + ".") if notes else res

    # ------------------------------------------------------------------
    def _finish(self, ctx, results, min_gain, min_chance):
        tables, figures, ev_inst = {}, [], []
        # the sub-properties each instance was decided on (fairaudit.result.combine), by instance
        comps = {f"{j}/{name}": s for j, r in enumerate(results) for name, s in r.get("stats", {}).items()}
        draws_total = sum(r["draws"] for r in results)
        fails = [r for r in results if r["verdict"] == "fail"]
        # Headline BF.1 statistic across instances (simultaneous: α split over instances).
        bf1 = [r["stats"]["bf1_bins"] for r in results if "stats" in r and "bf1_bins" in r["stats"]]
        headline = None
        if bf1:
            headline = Statistic("min_gain_ratio", min(s.estimate for s in bf1),
                                 (min(s.ci[0] for s in bf1), min(s.ci[1] for s in bf1)), tolerance=min_gain,
                                 method=bf1[0].method + f"; bonferroni over {len(results)} instances", violation="below")
        tables["partial_broome"] = pd.DataFrame([partial_row(r, min_gain) for r in results])
        util = [utility_row(r) for r in results if r.get("utility")]
        if util:
            tables["utility"] = pd.DataFrame(util)
        for j, r in enumerate(results):
            ev_inst.append(self._instance_evidence(r))
            t, f = self._instance_tables_figures(r, j)
            tables.update(t)
            figures.extend(f)
        evidence = {"instances": ev_inst,
                    "note": "Agreement of the chances with Broome-Fairness is necessary, not sufficient: BF is a "
                            "property of the round-by-round weights, which outcomes reveal only in part."}
        method = ("; ".join(sorted({s.method for r in results if "stats" in r for s in r["stats"].values()}))
                  or "identical outcomes across draws (Clopper–Pearson on deviations)")
        if fails:
            r = fails[0]
            msg, stat, cx = self._fail_message(r, min_gain, min_chance)
            summ = ev_inst[results.index(r)].get("partial_summary")
            if summ:
                msg += f" The outcomes show {summ}."
            evidence["counterexample"] = cx
            if ctx.target is not None and not getattr(self, "_from_log", False) and "draw_array" in r:
                who = cx_individuals(cx)
                evidence.update(ctx.replay_evidence(self.id, [ctx.draw_record(
                    f"{r['inst'].label}", r["inst"], r["stream"], r["draw_array"], members=who)],
                    f"selection chances of individuals {who} (claims "
                    f"{[round(float(r['inst'].scores[i]), 4) for i in who]})"))
            if r.get("deterministic"):
                return self.result("fail", msg, statistic=stat, draws=draws_total, evidence=evidence, components=comps, tables=tables,
                                   figures=figures, method=method)
            return self.judged(stat, {"fail": msg}, draws_total, evidence=evidence, components=comps, tables=tables, figures=figures,
                               method=method)
        if all(r["verdict"] in ("pass", "pass_deterministic") for r in results) and headline is not None:
            w = min((r for r in results if r.get("bins") is not None), key=lambda r: r["bins"]["stat"][1])
            p = w["bins"]["pairs"].iloc[int(np.argmin(w["bins"]["pairs"]["ratio_lo"]))]
            msg = (f"Chances rise with claims on every instance: between any two claim bins the stronger gets at least "
                   f"{headline.ci[0]:.2f} of the Broome lottery's extra chance (smallest gain ratio over all bin pairs "
                   f"{_triple(headline)}; tolerance {min_gain:g}) — least certainly between claims "
                   f"≈{p['claim_weaker']:.3g} and ≈{p['claim_stronger']:.3g} on {w['inst'].label} (that pair's own "
                   f"ratio {p['ratio']:.2f} [{p['ratio_lo']:.2f}, {p['ratio_hi']:.2f}]); no reversal, no unequal "
                   f"chances for equal claims, no positive claim effectively excluded.")
            return self.judged(headline, {"pass": msg}, draws_total, evidence=evidence, components=comps, tables=tables, figures=figures,
                               method=method)
        stat = headline or Statistic("min_gain_ratio", float("nan"), (float("-inf"), float("inf")), tolerance=min_gain,
                                     violation="below")
        worst = min((r for r in results if "bins" in r and r["bins"] is not None),
                    key=lambda r: r["bins"]["stat"][1], default=None)
        where = ""
        if worst is not None:
            p = worst["bins"]["lowest_pair"]
            where = (f" The weakest rise is on {worst['inst'].label}: claims ≈{p['claim_weaker']:.3g} → "
                     f"≈{p['claim_stronger']:.3g}, that pair's own gain ratio {p['ratio']:.2f} "
                     f"[{p['ratio_lo']:.2f}, {p['ratio_hi']:.2f}].")
        if headline is not None:
            where = f" The smallest gain ratio over all bin pairs is {_triple(headline)}." + where
        msg = (f"Cannot yet certify that chances rise with claims by at least {min_gain:g} of the Broome lottery's "
               f"gain, nor a violation.{where}")
        if headline is None:
            msg = ("The claims do not differ enough between claim bins to test BF.1 (they are equal, zero, or "
                   "chosen almost surely); no reversal, no unequal chances for equal claims and no excluded positive "
                   "claim was found.")
            return self.result("inconclusive", msg, statistic=stat, draws=draws_total, evidence=evidence,
                               tables=tables, figures=figures, method=method)
        if stat.ci[0] >= min_gain:   # bins passed but something else was left open
            return self.result("inconclusive", msg, statistic=stat, draws=draws_total, evidence=evidence,
                               tables=tables, figures=figures, method=method)
        return self.judged(stat, {"inconclusive": msg, "pass": msg, "fail": msg}, draws_total, evidence=evidence,
                           tables=tables, figures=figures, method=method)

    def _fail_message(self, r, min_gain, min_chance):
        inst = r["inst"]
        claims = np.asarray(inst.scores, dtype=float)
        lab = inst.label
        if r.get("deterministic"):
            i = r["excluded"]
            stat = r["stats"]["bf2_deterministic"]
            msg = (f"Deterministic allocator on {lab}: the same {r['k']} were selected in all {r['draws']} draws, so "
                   f"{r['n_excluded']} positive claims are never selected (BF.2), e.g. individual {i} with claim "
                   f"{claims[i]:.4g} (the Broome lottery would give it chance {r['ref'][i]:.3f}); randomise, e.g. "
                   f"weights in proportion to claims.")
            return msg, stat, {"instance": lab, "individual": int(i), "claim": float(claims[i]),
                               "chance_upper_bound": r["deviation_ucb"], "broome_chance": float(r["ref"][i])}
        comp = r["components"]
        S = r["stats"]
        ind = r["ind"]
        if comp.get("bf2") == "fail":
            b = ind["bf2"]
            i = b["individual"]
            msg = (f"BF.2 violated on {lab}: individual {i} with claim {b['claim']:.4g} was selected {int(r['counts'][i])} "
                   f"times in {r['draws']} draws (chance ≤ {b['chance_hi']:.2g}, below {min_chance:g} of the Broome "
                   f"lottery's {b['broome_chance']:.3f}); {len(b['excluded'])} positive claims are certified effectively excluded — "
                   f"give every positive claim a chance.")
            cx = {"instance": lab, "individual": i, "claim": b["claim"], "selected": int(r["counts"][i]),
                  "draws": r["draws"], "chance_upper_bound": b["chance_hi"], "broome_chance": b["broome_chance"]}
            return msg, S["bf2"], cx
        if comp.get("reversal") == "fail":
            v = ind["reversal"]
            i, j = v["stronger"], v["weaker"]
            msg = (f"Reversal on {lab}: individual {i} (claim {claims[i]:.4g}) has chance at most {ind['hi'][i]:.3f} while "
                   f"individual {j} with the weaker claim {claims[j]:.4g} has at least {ind['lo'][j]:.3f} (BF.1).")
            cx = {"instance": lab, "stronger": i, "weaker": j, "claims": [float(claims[i]), float(claims[j])],
                  "chances": [float(ind["est"][i]), float(ind["est"][j])]}
            return msg, S["reversal"], cx
        if comp.get("bf1_bins") == "fail":
            p = r["bins"]["worst_pair"]
            if p["ratio_hi"] < 0:
                what = f"a smaller chance than claims around {p['claim_weaker']:.3g}"
            else:
                what = (f"at most {max(p['ratio_hi'], 0):.2f} of the extra chance the Broome lottery gives them over "
                        f"claims around {p['claim_weaker']:.3g}")
            msg = (f"BF.1 violated on {lab}: claims around {p['claim_stronger']:.3g} get {what} — gain "
                   f"{p['gain']:+.4f} [{p['gain_lo']:+.4f}, {p['gain_hi']:+.4f}] against the Broome lottery's "
                   f"{p['broome_gain']:.4f} (tolerance {min_gain:g} of it); make chances rise with claims.")
            cx = {"instance": lab, "weaker_bin": int(p["weaker_bin"]), "stronger_bin": int(p["stronger_bin"]),
                  "claims": [p["claim_weaker"], p["claim_stronger"]], "gain": p["gain"],
                  "gain_ci": [p["gain_lo"], p["gain_hi"]], "broome_gain": p["broome_gain"]}
            return msg, S["bf1_bins"], cx
        if comp.get("bf1_within_bins") == "fail":
            w = r["bins"]["within"]["worst"]
            msg = (f"BF.1 violated on {lab} inside the claim bin {w['claim_min']:.3g}–{w['claim_max']:.3g} "
                   f"({int(w['n'])} individuals): chances rise with claims there by at most {max(w['ratio_hi'], 0):.2f} "
                   f"of the Broome lottery's rise (contrast {w['contrast']:+.4f} [{w['contrast_lo']:+.4f}, "
                   f"{w['contrast_hi']:+.4f}] against {w['broome_contrast']:.4f}) — a flat band; make chances rise with claims.")
            return msg, S["bf1_within_bins"], {"instance": lab, "bin": int(w["bin"]), "claims": [w["claim_min"], w["claim_max"]],
                                               "contrast": w["contrast"], "broome_contrast": w["broome_contrast"]}
        if comp.get("equal_claims") == "fail":
            e = ind["equal"]
            hi_i, lo_i = e["highest"], e["lowest"]
            msg = (f"Equal claims, unequal chances on {lab}: individuals {hi_i} and {lo_i} both have claim {e['claim']:.4g} "
                   f"but chances {ind['est'][hi_i]:.3f} and {ind['est'][lo_i]:.3f} (certified gap ≥ {e['certified']:.3f}).")
            return msg, S["equal_claims"], {"instance": lab, "individuals": [hi_i, lo_i], "claim": e["claim"]}
        if comp.get("later_rounds") == "fail":
            L = r["later"]
            i, j = L["stronger"], L["weaker"]
            msg = (f"Round-{L['round']} reversal on {lab}: after {L['already_picked']} were picked ({L['given_draws']} draws), "
                   f"individual {i} (claim {claims[i]:.4g}) is picked next less often than individual {j} with the weaker "
                   f"claim {claims[j]:.4g}, with confidence (BF.1 in that round).")
            return msg, S["later_rounds"], {"instance": lab, "round": L["round"], "already_picked": L["already_picked"],
                                            "stronger": i, "weaker": j}
        f = r["first"]
        msg = (f"First-round reversal on {lab}: claim bin {f['stronger_bin']} gets a smaller first-pick weight than the "
               f"weaker bin {f['weaker_bin']} (certified gap {f['certified_reversal']:.4f}), so some stronger claim has a "
               f"smaller round-1 weight than a weaker one (BF.1).")
        return msg, S["first_round"], {"instance": lab, "bins": [f["weaker_bin"], f["stronger_bin"]]}

    def _instance_evidence(self, r):
        inst = r["inst"]
        ev = {"instance": inst.label, "n": r["n"], "k": r["k"], "draws": r["draws"], "verdict": r["verdict"]}
        if r.get("deterministic"):
            ev.update(deterministic=True, other_outcome_chance_ucb=r["deviation_ucb"], excluded_positive=r["n_excluded"],
                      statistics={k: s.to_dict() for k, s in r["stats"].items()})
            return ev
        ev["components"] = r["components"]
        ev["statistics"] = {k: s.to_dict() for k, s in r["stats"].items()}
        ev["resolution"] = resolution_statement(r.get("bins"))
        ev["pick_order_used"] = r["use_order"]
        if r.get("later") is not None:
            ev["later_rounds"] = r["later"]
        ev["largest_reversal"] = r["ind"]["reversal"]
        ev["equal_claims"] = r["ind"]["equal"]
        b2 = dict(r["ind"]["bf2"])
        b2["excluded"] = b2["excluded"][:20]
        ev["bf2"] = b2
        p = r["partial"]
        ev["partial"] = {key: v for key, v in p.items() if not key.startswith("_")}
        if r["verdict"] == "fail" and p["partial"] and p["pool_ranks"] and r["components"].get("bf2") == "fail":
            reading = partial_row(r, self._min_gain)["reading"]
            ev["partial_summary"] = (f"{reading}: "
                                     f"{p['always_selected']} always selected, {p['pool']} in the lottery, "
                                     f"{p['never_selected_positive']} positive claims (almost) never selected; "
                                     f"k'/k = {p['k_prime_rate']['estimate']:.3f}, n'/n = {p['pool_share']['estimate']:.3f}")
        ev["utility"] = r["utility"]
        return ev

    def _instance_tables_figures(self, r, j):
        inst = r["inst"]
        claims = np.asarray(inst.scores, dtype=float)
        tables, figs = {}, []
        counts = r["counts"]
        B = r["draws"]
        if r.get("deterministic"):
            n = len(claims)
            sel = counts > 0
            ucb = r["deviation_ucb"]
            order = np.argsort(claims, kind="stable")
            show = order[np.unique(np.linspace(0, n - 1, min(n, 200)).astype(int))]
            if r.get("excluded") is not None:
                show = np.unique(np.r_[show, r["excluded"]])
                show = show[np.argsort(claims[show], kind="stable")]
            est = sel.astype(float)
            callouts = []
            if r.get("excluded") is not None:
                i = r["excluded"]
                callouts.append({"x": float(claims[i]), "y": 0.0, "text": f"never selected: c={claims[i]:.3g}"})
            caption = (f"{_short(inst.label)}: deterministic — the same {r['k']} selected in all {B} draws (any other "
                       f"outcome has chance ≤ {ucb:.3f}), {r['n_excluded']} positive claims never selected; "
                       f"k'/k = 0, n'/n = 0.")
            figs.append({"kind": "scatter_ci", "title": f"Chance against claim — {_short(inst.label)} (deterministic)",
                         "caption": caption,
                         "x": claims[show].tolist(), "estimate": est[show].tolist(),
                         "lo": np.where(sel, 1 - ucb, 0.0)[show].tolist(), "hi": np.where(sel, 1.0, ucb)[show].tolist(),
                         "bands": claim_bands(claims, est, claims > 0), "callouts": callouts,
                         "line": {"x": claims[order][_line_idx(n)].tolist(),
                                  "y": r["ref"][order][_line_idx(n)].tolist(), "label": "Broome lottery (w ∝ c)"},
                         "xlabel": "claim", "ylabel": "chance of selection"})
            return tables, figs
        ind = r["ind"]
        if r["bins"] is not None:
            tables[f"bins_{j}"] = r["bins"]["table"]
        if r["first"] is not None:
            tables[f"first_round_{j}"] = r["first"]["table"]
        n = len(claims)
        if n <= INDIVIDUALS_TABLE_MAX:
            tables[f"individuals_{j}"] = pd.DataFrame({"individual": np.arange(n), "claim": claims, "selected": counts,
                                                       "chance": ind["est"], "chance_lo": ind["lo"],
                                                       "chance_hi": ind["hi"], "broome_chance": r["ref"]})
        order = np.argsort(claims, kind="stable")
        show = order[np.unique(np.linspace(0, n - 1, min(n, 200)).astype(int))]
        callouts = []
        rev = ind["reversal"]
        extra = []
        if rev["certified"] > 0 and rev.get("stronger") is not None:      # only a certified reversal is called out
            i = rev["stronger"]
            extra.append(i)
            callouts.append({"x": float(claims[i]), "y": float(ind["est"][i]),
                             "text": f"reversal: c={claims[i]:.3g} < c={claims[rev['weaker']]:.3g}"})
        b2 = ind["bf2"]
        if b2["excluded"]:
            i = b2["individual"]
            extra.append(i)
            callouts.append({"x": float(claims[i]), "y": float(ind["est"][i]),
                             "text": f"excluded: c={claims[i]:.3g}"})
        if r["components"].get("bf1_bins") == "fail" and not b2["excluded"]:
            p = r["bins"]["worst_pair"]
            t = r["bins"]["table"]
            y = float(t["chance"][int(p["stronger_bin"])])
            callouts.append({"x": float(p["claim_stronger"]), "y": y,
                             "text": f"no rise: c≈{p['claim_weaker']:.2g}→{p['claim_stronger']:.2g}"})
        show = np.unique(np.r_[show, np.array(extra, dtype=int)])
        show = show[np.argsort(claims[show], kind="stable")]
        bands = claim_bands(claims, ind["est"], claims > 0, never=r["partial"].get("_never_mask"))
        pr = partial_row(r, getattr(self, "_min_gain", 0.1))
        caption = (f"{_short(inst.label)}: {pr['reading']}; {pr['always']} almost always selected, "
                   f"{pr['pool']} randomised, {pr['never']} positive claims (almost) never selected "
                   f"(chance below {getattr(self, '_min_chance', 0.1):g} of the Broome lottery's); k'/k = {pr['k_prime_over_k']:.3f} {pr['k_prime_ci']}, "
                   f"n'/n = {pr['n_prime_over_n']:.3f} {pr['n_prime_ci']}.")
        figs.append({"kind": "scatter_ci", "title": f"Chance against claim — {_short(inst.label)}", "caption": caption,
                     "x": claims[show].tolist(), "estimate": ind["est"][show].tolist(), "lo": ind["lo"][show].tolist(),
                     "hi": ind["hi"][show].tolist(), "bands": bands, "callouts": callouts,
                     "line": {"x": claims[order][_line_idx(n)].tolist(),
                              "y": r["ref"][order][_line_idx(n)].tolist(), "label": "Broome lottery (w ∝ c)"},
                     "xlabel": "claim", "ylabel": "chance of selection (simultaneous intervals)"})
        return tables, figs

    # ------------------------------------------------------------------
    def _run_log(self, ctx, n_bins, min_gain, min_chance):
        log = ctx.log
        if same_pool(log.table):     # one fingerprint query per event, in the log engine
            return self._log_same_pool(ctx, n_bins, min_gain, min_chance)
        return self._log_bins(ctx, n_bins, min_gain, min_chance)

    def _log_same_pool(self, ctx, n_bins, min_gain, min_chance):
        # the pool's claims and each event's selected pool positions, aggregated in the
        # log engine (fairaudit.checks.broome.log.same_pool_draws): each event is one draw
        claims, rows = same_pool_draws(ctx.log.table)
        has_order = "pick_order" in ctx.log.columns
        if len({len(r) for r in rows}) != 1:
            return self._log_bins(ctx, n_bins, min_gain, min_chance)
        draws = np.array(rows, dtype=int)
        k = draws.shape[1]
        res = analyse(draws, claims, k, ctx.confidence, n_bins=n_bins, min_gain=min_gain, min_chance=min_chance,
                      pick_order="auto" if has_order else "no", labels=None)
        res["inst"] = Instance(f"{ctx.log.path or 'log'} (the same pool of {len(claims)} in {len(draws)} decisions)",
                               scores=claims, k=k)
        out = self._finish(ctx, [res], min_gain, min_chance)
        out.evidence["log_mode"] = "same pool repeated: each decision event is a draw of the allocator"
        for f in out.figures:    # the report says what the log allowed
            f["caption"] = (f"From the log: the same pool of {len(claims)} in all {len(draws)} decision events, so each "
                            f"event is a draw and individual chances{' and first-round weights' if has_order else ''} "
                            f"are estimated as for an allocator. " + f.get("caption", ""))
        return out

    def _log_bins(self, ctx, n_bins, min_gain, min_chance):
        # pools differ: per claim bin, rows, selected, claims and Broome chances, from the
        # score/selected columns streamed event by event (fairaudit.checks.broome.log)
        lb = streamed_claim_bin_rates(ctx.log.table, n_bins, ctx.alpha, LOG_ROWS_PER_BIN)
        n_obs = int(np.sum(lb["rows"]))
        table, G, n_b, s_b, cbar, rbar, rate, lo, hi, meth, gi, hj, refgain = (
            lb[k] for k in ("table", "G", "rows", "selected", "claim_mean", "broome_rate", "rate", "lo", "hi",
                            "method", "lower", "higher", "broome_gain"))
        rc = lb.get("rosen_check") or {}
        if rc.get("events"):
            meth = (f"{meth}; Broome chances by Rosén's approximation, off the exact ones by at most "
                    f"{rc['max_row_difference']:.2g} a row and {rc['max_bin_rate_difference']:.2g} a bin's rate "
                    f"on {rc['events']} events sampled across the log")
        exact = lb.get("yardstick") == "exact"
        if exact:
            meth = f"{meth}; Broome chances exact (the exponential race's integral), event by event"
        evidence = {"log_mode": "pools differ between decision events: selection rate per claim bin across all rows "
                                "(rows treated as independent trials), compared with the Broome lottery's rate computed "
                                "event by event; individual chances and first-round weights cannot be estimated",
                    "note": "Agreement of the chances with Broome-Fairness is necessary, not sufficient.",
                    "yardstick": ("the Broome lottery's exact chances, event by event" if exact else
                                  "Rosén's approximation of the Broome lottery's chances, event by event (the exact "
                                  "chances of every event cost more than the log budget); its error measured against "
                                  "the exact chances on a sample of events"),
                    "rosen_check": lb.get("rosen_check")}
        figures = [{"kind": "scatter_ci", "title": "Selection rate against claim (claim bins, from the log)",
                    "caption": "From the log: pools differ between decision events, so only the selection rate per "
                               "claim bin (all rows) can be compared with the Broome lottery's rate; individual chances "
                               "and first-round weights cannot be estimated.",
                    "x": cbar.tolist(), "estimate": rate.tolist(), "lo": lo.tolist(), "hi": hi.tolist(),
                    "line": {"x": cbar.tolist(), "y": rbar.tolist(), "label": "Broome lottery (w ∝ c)"},
                    "xlabel": "claim (bin mean)", "ylabel": "selection rate"}]
        # BF.2 across bins: a bin of positive claims never selected with rate certified below min_chance of Broome's.
        excl = np.flatnonzero((cbar > 0) & (rbar > 0) & (hi < min_chance * rbar))
        if len(excl):
            g = int(excl[np.argmax(rbar[excl])])
            stat = Statistic("min_chance_ratio", float(rate[g] / rbar[g]), (float(lo[g] / rbar[g]), float(hi[g] / rbar[g])),
                             tolerance=min_chance, method=meth, violation="below")
            msg = (f"BF.2 violated in the log: claims {table['claim_mean'][g]:.3g} on average (bin {g}) were selected "
                   f"{int(s_b[g])} times in {int(n_b[g])} rows, rate ≤ {hi[g]:.3g}, below {min_chance:g} of the Broome "
                   f"lottery's {rbar[g]:.3g}.")
            return self.judged(stat, {"fail": msg}, n_obs, from_log=True, evidence=evidence, tables={"bins": table},
                               figures=figures, method=meth)
        if len(gi) == 0:
            return self.result("inconclusive", "The log's claims do not spread over enough bins to test whether "
                               "selection rates rise with claims.", draws=n_obs, evidence=evidence,
                               tables={"bins": table}, figures=figures)
        r = (rate[hj] - rate[gi]) / refgain
        rlo = (lo[hj] - hi[gi]) / refgain
        rhi = (hi[hj] - lo[gi]) / refgain
        stat = Statistic("min_gain_ratio", float(r.min()), (float(rlo.min()), float(rhi.min())), tolerance=min_gain,
                         method=meth + " (box of simultaneous intervals)", violation="below")
        j = int(np.argmin(rhi))
        msgs = {"fail": f"Selection rates in the log do not rise with claims: claims ≈{cbar[hj[j]]:.3g} are selected at "
                        f"{rate[hj[j]]:.3f} vs {rate[gi[j]]:.3f} for claims ≈{cbar[gi[j]]:.3g}, at most {rhi[j]:.2f} of "
                        f"the Broome lottery's gain (tolerance {min_gain:g}).",
                "pass": f"Selection rates in the log rise with claims across {G} claim bins, by at least "
                        f"{rlo.min():.2f} of the Broome lottery's gain; no bin of positive claims is excluded.",
                "inconclusive": f"The log is too small to tell whether selection rates rise with claims by at least "
                                f"{min_gain:g} of the Broome lottery's gain."}
        return self.judged(stat, msgs, n_obs, from_log=True, evidence=evidence, tables={"bins": table},
                           figures=figures, method=stat.method)


def _line_idx(n: int) -> np.ndarray:
    """At most ~400 evenly spaced points of a claim-sorted curve, the last one included."""
    return np.unique(np.r_[np.arange(0, n, max(1, n // 400)), n - 1])


def _short(label: str) -> str:
    """A figure title's instance name: a data file's base name, else the label."""
    import os
    return os.path.basename(label) if os.sep in label else label


def cx_individuals(cx: dict) -> list[int]:
    """The individuals a counterexample names (their draws are recorded for replay)."""
    for key in ("individual", "stronger", "individuals"):
        if key in cx:
            v = cx[key]
            out = list(v) if isinstance(v, list) else [v]
            if key == "stronger":
                out.append(cx["weaker"])
            return out
    return []
