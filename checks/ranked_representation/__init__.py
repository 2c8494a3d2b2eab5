"""``ranked_representation`` (SPEC §10): FA*IR's ranked group fairness (Zehlike et al.,
CIKM 2017). For a protected group with target proportion p, a ranking passes when, for
every prefix length i ≤ k, the group's count in the top i reaches ``F⁻¹(α_c; i, p)``;
α_c is adjusted exactly (:mod:`.fair_test`: dynamic programming over prefixes) so that a
fair ranking — memberships independent Bernoulli(p) — fails some prefix with the largest
attainable probability not above the test's level.

Groups: every category of every group column (and intersection up to ``depth``) is a
protected group tested against its own p — its share of the individuals ranked (of the
logged rows on a log), or ``p`` when given — one test per group (not FA*IR's multinomial
extension). The tests share the level α (1 − confidence): each runs at α / (number of
tests) (Bonferroni), so a fair ranking fails any of them with probability at most α.
``protected`` restricts the tests to named groups.

A deterministic ranker (every draw the same ranking) gets the test's verdict. A randomized
ranker, a service or a log gets the probability that a served ranking fails, with an
interval (anytime-valid beta-binomial confidence sequence over draws; Clopper–Pearson
over a log's decisions, the rankings being the units), judged against α — what a fair
random ranking fails at. The counterexample is shrunk to its first failing prefix: the
top i of the failing ranking whose failure comes earliest.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from fairaudit.check import Check, Param
from fairaudit.groups import categories, is_unknown
from fairaudit.inputs import data_instance
from fairaudit.result import Statistic
from fairaudit.stats import beta_binomial_cs, proportion_ci

from .fair_test import adjusted_test, first_failing_prefix
from .log import failing_prefixes


def _p_param(value):
    s = str(value).strip().lower()
    if s == "auto":
        return "auto"
    v = float(s)
    if not 0 < v < 1:
        raise ValueError("p: write auto (each group's share) or a proportion strictly between 0 and 1")
    return v


def _protected_param(value):
    items = [s.strip() for s in str(value or "").split(",") if s.strip()]
    for it in items:
        if "=" not in it:
            raise ValueError(f"protected group {it!r}: write column=value (e.g. sex=F), comma-separated")
    return ", ".join(items)


class RankedRepresentation(Check):
    id = "ranked_representation"
    title = "Ranked group representation (FA*IR)"
    summary = ("FA*IR's ranked group fairness: every top-i prefix holds enough of each protected group, with the "
               "multiple-testing adjustment computed exactly; the share of served rankings that fail.")
    definition = ("A ranking represents a protected group fairly when every prefix of it (the top 1, top 2, …, top "
                  "k) holds at least as many of the group's members as a random ranking with the group's proportion "
                  "would hold with high probability (the lower binomial quantile). The per-prefix level is adjusted "
                  "so that a fair random ranking fails some prefix with probability at most α (Zehlike et al., "
                  "CIKM 2017; computed exactly). Each group is tested against its own proportion, the tests sharing "
                  "α. For a randomized ranker or a log, the statistic is the share of served rankings that fail, "
                  "judged against α.")
    kinds = ("ranking",)
    params = {
        "k": Param(10, "prefix lengths tested: 1..k (capped at the ranking's size)", type=int, min=1),
        "p": Param("auto", "target proportion of each protected group: auto (its share of the individuals ranked) "
                           "or a proportion for every group", parse=_p_param),
        "protected": Param("", "protected groups as column=value, comma-separated (default: every group)",
                           parse=_protected_param),
        "depth": Param(1, "intersections of up to this many group columns", type=int, min=1),
        "max_n": Param(200, "rank a seeded subset of this many rows of larger data", type=int, min=2),
        "max_draws": Param(4096, "draws at most (sequential sampling stops earlier once decided)", type=int, min=1),
    }
    statistic_labels = {"failing_share": "share of served rankings failing the FA*IR test"}
    column_labels = {"target_p": "target proportion", "alpha_c": "adjusted level per prefix (α_c)",
                     "exact_fail_probability": "chance a fair random ranking fails",
                     "failing": "failing rankings", "first_failing_prefix": "first failing prefix",
                     "mtable": "least protected count per prefix (m-table)", "decisions": "rankings"}
    table_titles = {"tests": "One FA*IR test per protected group", "prefixes": "Failing rankings by first failing prefix"}
    headlines = {"failing_share": ("{est} of the served rankings under-represent a protected group in some top-i prefix",
                                   "the test's level {tol}")}
    data_needs = ("group columns; a ranking log or --data", "fairaudit check ranker.py --checks ranked_representation "
                  "--data people.csv")

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
    def _tests(self, cats, shares, k, p, protected, alpha):
        """[(category, FairTest)] for the protected groups, each at α / (number of tests)."""
        wanted = None
        if protected:
            wanted = {tuple(x.strip() for x in it.split("=", 1)) for it in protected.split(",")}
        chosen = []
        for c, s in zip(cats, shares):
            if wanted is not None and (c.attribute, c.value) not in wanted:
                continue
            if wanted is None and is_unknown(c.value):       # a missing group value is no protected group
                continue
            chosen.append((c, float(s) if p == "auto" else float(p)))
        if wanted is not None:
            missing = wanted - {(c.attribute, c.value) for c, _ in chosen}
            if missing:
                raise ValueError(f"protected group(s) {', '.join(f'{a}={v}' for a, v in sorted(missing))} not found "
                                 f"among the groups {', '.join(f'{c.attribute}={c.value}' for c in cats)}")
        T = max(len(chosen), 1)
        return [(c, adjusted_test(int(k), round(pp, 12), alpha / T)) for c, pp in chosen]

    def run(self, ctx, k, p, protected, depth, max_n, max_draws):
        alpha = round(ctx.alpha, 12)          # 1 − 0.95 is 0.050000000000000044 in floats
        if ctx.log is not None:
            return self._run_log(ctx, k, p, protected, depth, alpha)
        inst = data_instance(ctx, "ranking", int(max_n), ctx.rng(f"{self.id}/rows"), "ranked_representation")
        if inst is None:
            return self.result("skipped", f"{ctx.population.path or 'the data'} has no p_<label> prediction columns "
                                          "for this ranker")
        n = inst.n
        K = min(int(k), n)
        cats = categories(inst.groups, list(inst.groups.columns), int(depth))
        try:
            tests = self._tests(cats, [c.size / n for c in cats], K, p, protected, alpha)
        except ValueError as e:
            return self.result("error", str(e))
        masks = np.stack([c.mask for c, _ in tests], axis=1)               # (n, T)
        ms = [np.asarray(t.m) for _, t in tests]

        def firsts(draws):                                                # (B, T) first failing prefix per test
            prot = masks[draws[:, :K]]                                    # (B, K, T)
            return np.stack([first_failing_prefix(prot[:, :, t], ms[t]) for t in range(len(tests))], axis=1)

        def bounds(draws):
            f = firsts(draws)
            fails = int((f > 0).any(axis=1).sum())
            lo, hi = beta_binomial_cs(np.array([fails]), len(draws), ctx.confidence)
            return fails, float(np.ravel(lo)[0]), float(np.ravel(hi)[0]), f

        def decided(draws):
            fails, lo, hi, _ = bounds(draws)
            return lo > alpha or hi <= alpha

        draws = ctx.sampler.sample_until(inst, self.id, decided, ctx.max_draws(max_draws), first=64)
        fails, lo, hi, f = bounds(draws)
        B = len(draws)
        deterministic = bool((draws == draws[0]).all())
        any_f = np.where(f > 0, f, np.iinfo(np.int64).max).min(axis=1)
        counter = None
        if fails:
            j = int(np.argmin(any_f))
            t = int(np.argmin(np.where(f[j] > 0, f[j], np.iinfo(np.int64).max)))
            i = int(f[j, t])
            top = draws[j, :i]
            c, test = tests[t]
            counter = {"draw": j, "group": c.name, "prefix": i, "needed": int(test.m[i - 1]),
                       "had": int(c.mask[top].sum()), "top_individuals": [int(x) for x in top],
                       "their_groups": [str(inst.groups.iloc[int(x)][c.attribute.split(" × ")[0]]) for x in top]}
        # the interval stays the confidence sequence's even when every draw was the same ranking:
        # identical draws do not prove a ranker deterministic (it may randomise rarely), but the
        # verdict is then the exact test's verdict on that ranking
        est, ci = fails / B, (lo, hi)
        method = f"beta-binomial confidence sequence (anytime-valid) on the failing share over {B} draws"
        if deterministic:
            method += ("; every draw served the same ranking, so the verdict is the exact test's on it")
        tab = self._test_table(tests, f, B, "draws")
        replay = None
        if counter is not None:            # the failing draw, replayable: who held each place of its top i
            j, i = counter["draw"], counter["prefix"]
            replay = ctx.replay_evidence(self.id, [ctx.draw_record(
                inst.label, inst, self.id, draws[j:j + 1], start=j,
                members=[[int(x), p] for p, x in enumerate(draws[j, :i])])],
                f"the top {i} of draw {j}: {counter['had']} of {counter['group']}, the test needs {counter['needed']}")
        res = self._finish(stat_est=est, ci=ci, alpha=alpha, method=method, tests=tests, tab=tab, counter=counter,
                            n_obs=B, unit="draws", from_log=False, deterministic=deterministic, K=K,
                            prefixes=None)
        if replay:
            res.evidence.update(replay)
        return res

    def _run_log(self, ctx, k, p, protected, depth, alpha):
        from fairaudit.logs.duckdb import category_counts
        log = ctx.log
        counts = category_counts(log.table, log.group_cols, int(depth), value="position")   # sizes only
        total = log.n_rows
        n_max = max(int(s) for s, _ in log.table.ranking_sizes())
        K = min(int(k), n_max)
        try:
            tests = self._tests(counts, [c.size / total for c in counts], K, p, protected, alpha)
        except ValueError as e:
            return self.result("error", str(e))
        spec = [([(col, val) for col, val in zip(c.attribute.split(" × "), c.value.split(" × "))], list(t.m))
                for c, t in tests]
        res = failing_prefixes(log.table, spec, K)
        D = sum(r[1] for r in res)
        fails = sum(r[1] for r in res if r[0] > 0)
        lo, hi = proportion_ci(fails, D, ctx.confidence)
        prefixes = pd.DataFrame([{"first_failing_prefix": f, "decisions": n, "example_decision": str(ex)}
                                 for f, n, ex in res])
        counter = None
        bad = [r for r in res if r[0] > 0]
        if bad:
            f, n, ex = bad[0]
            counter = {"decision_id": str(ex), "prefix": int(f),
                       "what": f"decision {ex}'s top {f} already falls short of some protected group's m-table"}
        tab = pd.DataFrame([{"group": c.name, "target_p": t.p, "alpha_c": t.alpha_c,
                             "exact_fail_probability": t.fail_probability, "mtable": " ".join(map(str, t.m))}
                            for c, t in tests])
        method = (f"Clopper–Pearson on the failing share over {D} logged rankings (independent units); "
                  f"aggregated where the log is")
        return self._finish(stat_est=fails / max(D, 1), ci=(float(lo), float(hi)), alpha=alpha, method=method,
                            tests=tests, tab=tab, counter=counter, n_obs=D, unit="logged rankings", from_log=True,
                            deterministic=False, K=K, prefixes=prefixes)

    @staticmethod
    def _test_table(tests, f, B, unit):
        return pd.DataFrame([{"group": c.name, "target_p": t.p, "alpha_c": t.alpha_c,
                              "exact_fail_probability": t.fail_probability, "mtable": " ".join(map(str, t.m)),
                              "failing": int((f[:, j] > 0).sum()),
                              "first_failing_prefix": int(f[:, j][f[:, j] > 0].min()) if (f[:, j] > 0).any() else 0}
                             for j, (c, t) in enumerate(tests)])

    def _finish(self, stat_est, ci, alpha, method, tests, tab, counter, n_obs, unit, from_log, deterministic, K,
                prefixes):
        T = len(tests)
        method += (f"; {T} FA*IR test{'s' if T != 1 else ''} (one per protected group, against its own p) at "
                   f"α/{T} each, prefixes 1..{K}, α_c adjusted exactly (DP over prefixes)")
        stat = Statistic("failing_share", float(stat_est), (float(ci[0]), float(ci[1])), tolerance=float(alpha),
                         method=method, violation="above")
        where = ""
        if counter is not None:
            where = (f" First failing prefix of the earliest counterexample: the top {counter['prefix']}"
                     + (f" of decision {counter['decision_id']}" if "decision_id" in counter else
                        f" of draw {counter['draw']} holds {counter['had']} of {counter['group']}, "
                        f"the test needs {counter['needed']}") + ".")
        if deterministic:
            msgs = {"fail": f"The ranking fails FA*IR's ranked group fairness test.{where}",
                    "pass": f"The ranking passes FA*IR's ranked group fairness test for all {T} protected groups "
                            f"(every prefix up to {K}).",
                    "inconclusive": "The ranking's test could not be decided."}
        else:
            msgs = {"fail": f"{stat_est:.3f} of the {unit} fail FA*IR's test (interval [{ci[0]:.3f}, {ci[1]:.3f}]), "
                            f"more than the {alpha:g} a fair random ranking fails.{where}",
                    "pass": f"At most {ci[1]:.3f} of the {unit} fail FA*IR's test (estimate {stat_est:.3f}), within "
                            f"the {alpha:g} a fair random ranking fails.",
                    "inconclusive": f"{stat_est:.3f} of the {unit} fail FA*IR's test (interval [{ci[0]:.3f}, "
                                    f"{ci[1]:.3f}]); it cannot yet be placed above or below {alpha:g}.{where}"}
        tables = {"tests": tab}
        if prefixes is not None:
            tables["prefixes"] = prefixes
        evidence = {"deterministic": deterministic, "k": K, "groups_tested": [c.name for c, _ in tests],
                    "counterexample": counter, "unit": unit,
                    "multiple_groups": "one test per protected group against its own p, Bonferroni over the tests"}
        return self.judged(stat, msgs, int(n_obs), from_log=from_log, evidence=evidence, tables=tables,
                           method=method)
