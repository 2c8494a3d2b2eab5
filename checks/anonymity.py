"""``anonymity`` (Devic et al., Def 2, Prop 7), with ``determinism`` and ``obliviousness`` (Kearns, Roth and Wu, Def 2.6).

Anonymity: ``R(ΠP) = Π R(P)`` for every permutation Π — relabelling the individuals
relabels the outcome distribution and nothing else (selection: ``π(Πc) = Π π(c)``).

Allocator audit. Every probe is a comparison of outcome distributions, member by
member (an individual's selection chance; for rankings an individual's chance of each
position), and gives each member an interval for the difference in chance:

* **equal-inputs** — ``n`` identical claims / prediction rows (and identical group and
  feature rows), and the smallest such input, a pair: every individual must get the
  same chance, ``k/n`` (selection) or ``1/n`` per position (ranking). Decision: each
  individual is judged by its largest difference to another individual (what
  exchanging the two would change — the same quantity as the permutation probe's),
  bounded from simultaneous Clopper–Pearson intervals; the pair input makes an index
  bias show at full size (the first of two equal claims at 0.6 moves by 0.2). A deterministic allocator can
  only break such ties by position in the list (Prop 7); it fails here, reported as
  "ties broken by position" with the outcome it always returns.
* **permutation** — random relabellings Π (the first is the reversal of the list, which
  exposes any index gradient); ``π(Πc)`` against ``Π π(c)`` per individual, Newcombe's
  two-sample interval, on the ``--data`` instance (subsampled to ``max_n`` rows) or a
  generated one (uniform claims / Dirichlet prediction rows).
* **attribute-swap** — when the allocator receives the protected attributes (``groups``,
  or ``features`` listed in ``protected``): pairs of individuals in different groups
  are given equal claims at the selection cut (ranking: at the top) and their protected
  attributes are exchanged; each one's chances must not change (the counterfactual test
  of black-box fairness testers, on outcome distributions rather than single outputs).
* **search** — Hypothesis (:mod:`fairaudit.strategies`) generates small instances with
  ties and relabellings (permutations; attribute swaps when applicable); an instance
  that looks violating (heuristic filter on ``search_draws`` draws) is shrunk to the
  smallest that still does, then *certified* with fresh draws like every other probe.
  The shrunk instance goes into the evidence; ``fairaudit replay RESULT.json anonymity``
  re-draws it and the worst member's draws (:mod:`fairaudit.replay`).

Statistic: the largest difference in chance over all members of all probes; its
interval is ``[max of lower bounds of |d|, max of upper bounds of |d|]``. Decision
(SPEC is silent): the family is simultaneous by Bonferroni — α is split equally between
the probes that run, then over the probe's members and over the *looks*: draws are
taken in looks of 512, 2048, 8192, … up to ``max_draws`` per input and the check stops
at the first look whose interval decides the verdict (Bonferroni over looks keeps the
intervals valid under this optional stopping). Tolerance ``tau`` (default 0.05) is an
absolute difference in chance. The search's own filtering does not spend α: only the
certification draws of its counterexample do.

Hypothesis runs derandomised from ``ctx.config.seed`` (``hypothesis.find`` with a
seeded ``random``; ``database=None``), bounded by ``search_examples`` examples and
``search_draws`` draws per side — never by the clock, so the same seed gives the same
search on an idle or a busy machine. Per-example draws use streams named by a hash of
the instance, and each example's judgement is memoised, so an example the filter
judged once is judged the same way when Hypothesis replays it while shrinking. Only
``--budget`` can cut the search short: the search then ends where it is (recorded as
``budget_exhausted``) and the probes certify what they have.

Decision rules (kind ``decision``): counterfactual fairness — each tested individual's
protected attribute (and its exact copies) is swapped, the rest of the row fixed; paired
draws give each change in chance an interval (:mod:`fairaudit.counterfactual`). Statistic:
the share of individuals moved by more than ``tau``; fail above ``max_share`` (default 0).

Log audit (selection logs with group columns): individuals with binned scores must be
selected at equal rates across groups. For each category (vs the rest of its
attribute) a 2×2×K table over ``bins`` score strata; Mantel–Haenszel risk difference
with Sato's variance (normal interval, Bonferroni over categories) decides against
``tau``; the Cochran–Mantel–Haenszel χ² (continuity-corrected, ``scipy.stats.chi2``)
p-values are reported with Holm; the strata contributing most to the MH difference are
listed.
"""
from __future__ import annotations

import random as _random
from dataclasses import replace

import numpy as np
import pandas as pd

from fairaudit.check import Check, Param
from fairaudit.two_sample import (FIRST_LOOK, Comparison, Stream, Study, compare, constant_outcome,
                                   describe_member, member_table)
from fairaudit.instance import Instance
from fairaudit.inputs import (attach_rows, data_instance, generated_instance, instance_digest, jsonable_instance,
                              permute_instance, population_frames, prediction_columns, swap_attributes, wants)
from fairaudit.result import Statistic, decide
from fairaudit.logs.duckdb import stratified_category_counts
from fairaudit.counterfactual import DEFINITION as COUNTERFACTUAL_DEFINITION, counterfactuals, PairedShifts, \
    row_pair, share_moved, shrink
from fairaudit.stats import cmh_from_counts


class Anonymity(Check):
    id = "anonymity"
    # -- words for readers (the report and the terminal read these from the registry) --
    statistic_labels = {
        'share_moved_by_attribute': 'share of people whose chance moves when only the protected attribute changes',
        'max_mh_rate_difference': 'largest rate difference (Mantel–Haenszel)',
        'max_chance_difference': 'largest change of a chance under relabelling',
    }
    headlines = {
        'max_chance_difference': ("Relabelling people (reordering the list, or swapping protected attributes between equal claims) moves someone's chance by {est}",
                                  'the tolerance {tol}'),
        'max_mh_rate_difference': ('Selection rates of groups differ by {est} once the strata are accounted for',
                                   'the tolerance {tol}'),
    }
    column_labels = {
        'chance_swapped': 'chance, attribute swapped',
        # a log's equal-score comparison (Mantel–Haenszel within score bins)
        'rd_mh': 'rate difference (Mantel–Haenszel)', 'rd': 'rate difference (Mantel–Haenszel)',
        'abs_rd': '|rate difference|', 'cmh_chi2': 'CMH χ²', 'cmh_p': 'CMH p-value',
        'holm_reject': 'rejected (Holm)', 'stratum': 'score bin', 'score_range': 'score range',
        'n_in': 'members (n)', 'n_out': 'others (n)', 'rate_in': "members' rate", 'rate_out': "others' rate",
    }
    data_needs = ('nothing: built-in inputs, plus --data FILE when given (group columns for the attribute swaps); a selection log needs group columns',
                  'fairaudit check my_allocator.py --checks anonymity --data people.csv')
    title = "Anonymity"
    summary = "Outcomes depend on claims, not on who or where someone is in the list (Devic et al., Def 2)."
    definition = ("An allocator is anonymous when relabelling the individuals relabels the outcome distribution "
                  "and nothing else: listing the same people in another order, or exchanging the protected "
                  "attributes of two people with equal claims, must leave each person's chances unchanged; "
                  "identical claims must get identical chances. A deterministic allocator can only break ties by "
                  "position in the list, so it cannot be anonymous (Devic et al., Prop 7). The statistic is the "
                  "largest difference in a person's chance (of selection, or of each position) between the "
                  "original and the relabelled input, with intervals simultaneous over every probe.")
    kinds = ("selection", "ranking", "decision")
    sources = ("allocator", "log")
    table_titles = {
        "probes": "Probe inputs: largest change of a chance under relabelling",
        "worst_probe_members": "People of the worst probe: chance before and after the relabelling",
        "most_affected": "People whose chance moves most when only the protected attribute changes",
        "categories": "Selection-rate difference per group within score bins (Mantel–Haenszel)",
        "strata": "Score bins behind the largest difference",
    }
    params = {
        "tau": Param(0.05, "tolerated difference in chance (absolute)", type=float, min=0, max=1),
        "n": Param(8, "individuals in the equal-inputs and generated probes", type=int, min=2),
        "permutations": Param(3, "random relabellings in the permutation probe (the first is the reversal)",
            type=int, min=0),
        "max_n": Param(200, "largest data instance used as is (larger ones are subsampled; rankings use at most 12)",
            type=int, min=2),
        "swap_pairs": Param(2, "pairs whose protected attributes the attribute-swap probe exchanges", type=int, min=0),
        "protected": Param("", "comma-separated protected columns (default: every group column)",
            parse=Param.csv_of(min_items=0, what="column names")),
        "search": Param(1, "1: Hypothesis search for a small violating instance; 0: off", type=int, choices=(0, 1)),
        "search_examples": Param(60, "Hypothesis examples at most (shrinking comes on top)", type=int, min=0),
        "search_draws": Param(512, "draws per input while searching (a heuristic filter; findings are certified)",
            type=int, min=1),
        "max_draws": Param(16384, "draws per input at most (looks of 512, 2048, 8192, … stop once decided)",
            type=int, min=1),
        "bins": Param(5, "logs: score strata (quantile bins; exact scores when fewer distinct values)",
            type=int, min=1),
        "max_share": Param(0.0, "decision rules: share of individuals whose chance may move by more than tau",
            type=float, min=0, max=1),
    }

    def skip_reason(self, ctx):
        if ctx.kind == "decision" and ctx.log is None:
            pop = ctx.population
            if pop is None or not pop.group_cols:
                return "the counterfactual test swaps protected attributes: give --data with group columns"
        if ctx.log is not None:
            if ctx.kind != "selection":
                return "the stratified log test needs a selection log (ranking logs are not covered)"
            if not ctx.log.group_cols:
                return "the log has no group columns (name them with --groups)"
        return None

    # ------------------------------------------------------------------
    def run(self, ctx, tau, n, permutations, max_n, swap_pairs, protected, search, search_examples,
            search_draws, max_draws, bins, max_share):
        if ctx.log is not None:
            return self._run_log(ctx, tau, bins)
        if ctx.kind == "decision":
            return self._run_counterfactual(ctx, tau, max_n, protected, max_draws, max_share)
        kind = ctx.kind
        rng = ctx.rng(self.id)
        study = Study(ctx, kind, tau)
        study.reserved = []
        k_fixed = ctx.target.k if ctx.target.k is not None else ctx.config.k
        n_eq = max(int(n), 2 * int(k_fixed) if k_fixed else 2)
        if kind == "ranking":
            n_eq = max(2, min(n_eq, 12))
        evidence: dict = {"probes": {}}

        # -- equal-inputs probe: n_eq identical inputs, and the smallest case (a pair) --
        n_pair = max(2, (int(k_fixed) + 1) if k_fixed and kind == "selection" else 2)
        for t, ne in enumerate(dict.fromkeys([n_eq, n_pair])):
            if kind == "ranking":
                m = prediction_columns(ctx)
                eq = Instance(f"equal-inputs probe (n={ne}, identical prediction rows)", scores=np.full(ne, 0.5),
                              predictions=np.full((ne, m), 1.0 / m))
                expected = 1.0 / ne
            else:
                k_eq = ctx.selection_k(ne)
                eq = Instance(f"equal-inputs probe (n={ne}, k={k_eq}, all claims 0.5)", scores=np.full(ne, 0.5),
                              k=k_eq)
                expected = k_eq / ne
            eq = attach_rows(ctx, eq, rng, identical=True)
            study.add(Comparison("equal-inputs", eq.label,
                                  study.stream(eq, f"{self.id}/equal" + (f"/{ne}" if t else "")), expected=expected))

        # -- permutation probe -------------------------------------------------
        base_max = min(int(max_n), 12) if kind == "ranking" else int(max_n)
        base = data_instance(ctx, kind, base_max, rng, "permutation probe")
        if base is None:
            nb = max(int(n), (int(k_fixed) + 1) if k_fixed else 2)
            nb = min(nb, 12) if kind == "ranking" else nb
            base = generated_instance(ctx, kind, max(nb, 10) if kind == "selection" else max(nb, 6), rng,
                                       "permutation probe")
        nb = base.n
        a = study.stream(base, f"{self.id}/perm/base")
        for r in range(int(permutations)):
            perm = np.arange(nb)[::-1].copy() if r == 0 else rng.permutation(nb)
            lab = f"permutation probe {r + 1}/{permutations} ({'reversed list' if r == 0 else 'random order'}, n={nb})"
            pinst = permute_instance(base, perm, lab)
            study.add(Comparison("permutation", lab, a, study.stream(pinst, f"{self.id}/perm/{r}"),
                                  mapping=np.argsort(perm),
                                  meta={"perm": perm.tolist() if nb <= 30 else f"seeded permutation of {nb}"}))

        # -- attribute-swap probe ----------------------------------------------
        prot = self._protected(ctx, protected)
        if prot and int(swap_pairs) > 0:
            comps = self._swap_probe(ctx, study, kind, prot, int(swap_pairs), base_max, rng)
            for comp in comps:
                study.add(comp)
            if not comps:
                evidence["probes"]["attribute-swap"] = "no pair of individuals in different protected groups"
        else:
            evidence["probes"]["attribute-swap"] = ("not run: the allocator does not receive protected attributes"
                                                    if not prot else "not run: swap_pairs = 0")

        # -- search ------------------------------------------------------------
        search_info = None
        if int(search):
            # The fixed probes' first look comes first, so that an allocator that crashes
            # or misbehaves on them is reported under their names, not the search's.
            study.prefetch(min(FIRST_LOOK, ctx.max_draws(max_draws)))
            study.reserved.append("search")
            ctx.phase("search for a counterexample", 1, 2)
            search_info = self._search(ctx, kind, tau, prot, int(search_examples), int(search_draws), k_fixed)
            if search_info.get("found"):
                ex = search_info["found"]
                sa = study.stream(ex["a"], f"{self.id}/search/certify/a")
                sb = study.stream(ex["b"], f"{self.id}/search/certify/b")
                study.add(Comparison("search", ex["a"].label, sa, sb, mapping=ex["mapping"], meta=ex["meta"]))

        ctx.phase("relabelling probes", 2 if int(search) else 1, 2 if int(search) else 1)
        stat, verdict, draws = study.run(ctx.max_draws(max_draws))
        return self._finish(ctx, study, stat, draws, evidence, search_info)

    # ------------------------------------------------------------------
    def _protected(self, ctx, protected: str) -> list[str]:
        """Protected columns the allocator actually receives."""
        g, f = population_frames(ctx)
        wanted = [c.strip() for c in str(protected or "").split(",") if c.strip()]
        out = []
        if wants(ctx, "groups"):
            cols = list(g.columns) if g is not None else ["group"]
            out += [c for c in cols if not wanted or c in wanted]
        if wants(ctx, "features") and wanted:
            cols = list(f.columns) if f is not None else ["x"]
            out += [c for c in cols if c in wanted and c not in out]
        return out

    def _swap_probe(self, ctx, study, kind, prot, n_pairs, base_max, rng) -> list[Comparison]:
        """One comparison per pair, each on its own input: the individual at the
        selection cut (ranking: at the top) and the nearest one below it whose protected
        attribute ``prot[t mod len(prot)]`` differs are given equal claims; the input is
        compared with the same input after exchanging the two people's protected
        attributes (all of ``prot``). Only the two people's chances are judged."""
        base = data_instance(ctx, kind, base_max, rng, "attribute-swap probe")
        if base is None:
            base = generated_instance(ctx, kind, 10 if kind == "selection" else 6, rng, "attribute-swap probe")
        n = base.n
        if kind == "ranking":
            score = base.scores if base.scores is not None else base.predictions @ np.arange(base.predictions.shape[1])
            order = np.argsort(-np.asarray(score, float), kind="stable")
            cut = 0
        else:
            order = np.argsort(-np.asarray(base.scores, float), kind="stable")
            cut = int(base.k if base.k is not None else ctx.selection_k(n)) - 1
        i = int(order[cut])
        pairs: list[tuple[int, int, str]] = []
        for t in range(n_pairs):
            col = prot[t % len(prot)]
            key = self._protected_key(base, [col])
            for r in range(cut + 1, n):
                j = int(order[r])
                if key[j] != key[i] and all(j != p[1] for p in pairs):
                    pairs.append((i, j, col))
                    break
        comps = []
        for t, (i, j, col) in enumerate(pairs):
            ch = {}
            if base.scores is not None:
                s = np.array(base.scores, dtype=float)
                s[j] = s[i]
                ch["scores"] = s
            if base.predictions is not None:
                P = np.array(base.predictions, dtype=float)
                P[j] = P[i]
                ch["predictions"] = P
            label = (f"attribute-swap probe {t + 1}/{len(pairs)} (individuals {i} and {j}, differing in {col}, "
                     f"given equal claims at the {'top' if kind == 'ranking' else 'selection cut'}, n={n})")
            a_inst = base.replace(label=label, **ch)
            b_inst = swap_attributes(a_inst, [(i, j)], prot, label + ", protected attributes swapped")
            a = study.stream(a_inst, f"{self.id}/swap/{t}/a")
            b = study.stream(b_inst, f"{self.id}/swap/{t}/b")
            comps.append(Comparison("attribute-swap", label, a, b, mapping=np.arange(n),
                                     meta={"pair": [i, j], "differs_in": col, "columns_swapped": prot},
                                     only=np.array(sorted((i, j)), dtype=int)))
        return comps

    @staticmethod
    def _protected_key(inst, prot):
        parts = []
        for df in (inst.groups, inst.features):
            if df is not None:
                cols = [c for c in prot if c in df.columns]
                if cols:
                    parts.append(df[cols].astype(str).agg("|".join, axis=1).to_numpy())
        if not parts:
            return np.zeros(inst.n, dtype=object)
        out = parts[0]
        for p in parts[1:]:
            out = np.char.add(np.char.add(out.astype(str), "|"), p.astype(str))
        return out

    # ------------------------------------------------------------------
    def _search(self, ctx, kind, tau, prot, examples, draws, k_fixed) -> dict:
        from hypothesis import HealthCheck, Phase, Verbosity, find, settings
        from hypothesis.errors import NoSuchExample

        from fairaudit import strategies as fst

        g, f = population_frames(ctx)
        group_values = feature_values = None
        if wants(ctx, "groups"):
            if g is not None:
                group_values = {c: sorted(g[c].astype(str).unique().tolist())[:3] for c in g.columns}
            else:
                group_values = {"group": ["A", "B"]}
        if wants(ctx, "features"):
            if f is not None:
                feature_values = {c: sorted(np.unique(np.round(f[c].to_numpy(float), 3)).tolist())[:3]
                                  for c in f.columns}
            else:
                feature_values = {"x": [0.0, 1.0]}
        if kind == "ranking":
            m = prediction_columns(ctx)
            rows = fst.PREDICTION_ROWS_2 if m == 2 else tuple(
                tuple(r) for r in (np.full(m, 1.0 / m), np.eye(m)[-1], np.eye(m)[0],
                                   np.linspace(1, 2, m) / np.linspace(1, 2, m).sum()))
            inst_st = fst.ranking_instances(max_n=6, rows=rows, group_values=group_values,
                                            feature_values=feature_values, label="search probe")
        else:
            kk = int(k_fixed) if k_fixed else None
            inst_st = fst.selection_instances(max_n=8 if not kk else kk + 6, k=kk, group_values=group_values,
                                              feature_values=feature_values, label="search probe")
        strategy = fst.relabellings(inst_st, swap=bool(prot) and group_values is not None)
        tried = [0]
        judged: dict[tuple, bool] = {}

        class _BudgetSpent(Exception):
            """--budget ran out: end the search where it is (not a verdict on the example)."""
        prot_cols = prot or []

        def realise(ex, tag=""):
            inst = ex["instance"]
            n = inst.n
            if ex["relation"] == "permute":
                perm = np.asarray(ex["perm"], int)
                a = inst.replace(label=f"search probe{tag} (n={n}, original order)")
                b = permute_instance(inst, perm, f"search probe{tag} (n={n}, listed in order {perm.tolist()})")
                return a, b, np.argsort(perm), {"relation": "permute", "perm": perm.tolist()}
            i, j = ex["pair"]
            a = inst.replace(label=f"search probe{tag} (n={n}, individuals {i} and {j} with equal claims)")
            b = swap_attributes(a, [(i, j)], prot_cols or list(inst.groups.columns),
                                f"search probe{tag} (n={n}, protected attributes of {i} and {j} swapped)")
            return a, b, np.arange(n), {"relation": "swap", "pair": [i, j]}

        def violates(ex) -> bool:
            """Heuristic filter (spends no α; findings are certified afterwards): draws in
            stages of 32, 128, … up to ``draws`` per side; stops early when the example is
            clearly violating or clearly not, and judges an example on which both sides
            gave one outcome in every draw by its point difference."""
            a, b, mapping, _ = realise(ex)
            key = (instance_digest(a), instance_digest(b), tuple(np.asarray(mapping).tolist()))
            if key in judged:           # a replay while shrinking: the same answer as before
                return judged[key]
            if ctx.sampler.time_left() <= 0:
                raise _BudgetSpent()
            tried[0] += 1
            ctx.step("searched input", min(tried[0], max(1, examples)), max(1, examples))
            judged[key] = verdict = _judge(a, b, mapping)
            return verdict

        def _judge(a, b, mapping) -> bool:
            sa = Stream(a, f"{self.id}/search/{instance_digest(a)}")
            sb = Stream(b, f"{self.id}/search/{instance_digest(b)}/{instance_digest(a)}")
            comp = Comparison("search", a.label, sa.name, sb.name, mapping=mapping)
            conf = 1.0 - 0.01 / comp.members(kind, a.n)
            stages = [B for B in (32, 128) if B < draws] + [draws]
            for B in stages:
                for st_ in (sa, sb):
                    more = ctx.sampler.draw(st_.inst, B - st_.size, st_.name, start=st_.size)
                    st_.draws = more if st_.draws is None else np.concatenate([st_.draws, more])
                res = compare(comp, {sa.name: sa, sb.name: sb}, kind, conf)
                if constant_outcome(sa.draws, kind) and constant_outcome(sb.draws, kind):
                    return bool(np.max(np.abs(res["d"])) > tau)
                if np.max(res["abs_lo"]) > tau:
                    return True
                if np.max(res["abs_hi"]) <= tau:
                    return False
            return False

        st_settings = settings(max_examples=max(1, examples), database=None, deadline=None,
                               derandomize=False, verbosity=Verbosity.quiet,
                               phases=[Phase.generate, Phase.shrink],
                               suppress_health_check=list(HealthCheck))
        info: dict = {"examples": 0, "found": None}
        try:
            ex = find(strategy, violates, settings=st_settings, random=_random.Random(int(ctx.config.seed)))
        except NoSuchExample:
            info["examples"] = tried[0]
            return info
        except _BudgetSpent:
            info["examples"] = tried[0]
            info["budget_exhausted"] = True
            return info
        info["examples"] = tried[0]
        a, b, mapping, meta = realise(ex, " counterexample")
        meta["instance"] = jsonable_instance(a)
        info["found"] = {"a": a, "b": b, "mapping": mapping, "meta": meta}
        return info

    # ------------------------------------------------------------------
    def _finish(self, ctx, study, stat, draws, evidence, search_info):
        kind = study.kind
        tau = study.tau
        verdict = decide(stat.ci, tau, "above")
        comp, idx = study.worst()
        who = describe_member(kind, comp, idx)
        b = comp.bounds
        diff_txt = (f"difference {float(b['d'][idx]):+.3f}, |difference| in "
                    f"[{float(b['abs_lo'][idx]):.3f}, {float(b['abs_hi'][idx]):.3f}]")
        # Per-probe summary.
        rows = []
        for c in study.comps:
            rows.append({"probe": c.probe, "input": c.label, "n": study.streams[c.a].inst.n,
                         "draws": study.streams[c.a].size,
                         "max_difference": float(np.max(np.abs(c.bounds["d"]))),
                         "abs_diff_lo": float(np.max(c.bounds["abs_lo"])),
                         "abs_diff_hi": float(np.max(c.bounds["abs_hi"]))})
            # the probe's own verdict by the check's rule (the check fails iff some probe fails)
            rows[-1]["verdict"] = decide((rows[-1]["abs_diff_lo"], rows[-1]["abs_diff_hi"]), tau, "above")
        summary = pd.DataFrame(rows)
        # Equal-inputs: certain tie-breaking by position?
        eq = next(c for c in study.comps if c.probe == "equal-inputs")
        eqs = study.streams[eq.a]
        eq_out = eqs.draws if kind == "ranking" else np.sort(eqs.draws, axis=1)
        deterministic_eq = bool(np.all(eq_out == eq_out[0]))
        evidence["equal_inputs"] = {"n": eqs.inst.n, "draws": eqs.size, "required_chance": eq.expected,
                                    "identical_outcome_in_every_draw": deterministic_eq}
        if deterministic_eq:
            evidence["equal_inputs"]["outcome"] = eqs.draws[0].tolist()
        for c in study.comps:
            evidence["probes"].setdefault(c.probe, [])
            if isinstance(evidence["probes"][c.probe], list):
                evidence["probes"][c.probe].append({"input": c.label, **{k: v for k, v in c.meta.items()
                                                                       if k != "instance"},
                                                    "max_difference": float(np.max(np.abs(c.bounds["d"]))),
                                                    "abs_diff_ci": [float(np.max(c.bounds["abs_lo"])),
                                                                    float(np.max(c.bounds["abs_hi"]))]})
        evidence["worst"] = {"probe": comp.probe, "input": comp.label,
                             "individual": int(idx[0]), "position": int(idx[1]) + 1 if kind == "ranking" else None,
                             "chance_original": float(b["pa"][idx]),
                             **({"chance_relabelled": float(b["pb"][idx])} if comp.b is not None else
                                {"other_individual": int(np.broadcast_to(b["ref"], b["pa"].shape)[idx]),
                                 "chance_other": float(b["pb"][idx]), "chance_required": float(comp.expected)}),
                             "difference": float(b["d"][idx]),
                             "abs_difference_ci": [float(b["abs_lo"][idx]), float(b["abs_hi"][idx])]}
        evidence["looks"] = study.looks_done
        if search_info is not None:
            evidence["search"] = {"examples_tried": search_info["examples"],
                                  "found": bool(search_info.get("found")),
                                  "budget_exhausted": bool(search_info.get("budget_exhausted", False))}
            found = search_info.get("found")
            sc = next((c for c in study.comps if c.probe == "search"), None)
            if found and sc is not None:
                sb = sc.bounds
                j = int(np.unravel_index(int(np.argmax(sb["abs_lo"] + 1e-9 * np.abs(sb["d"]))), sb["d"].shape)[0])
                ce = dict(found["meta"])
                ce.update({"n": found["a"].n,
                           "chance_original": np.round(sb["pa"], 4).tolist(),
                           "chance_relabelled": np.round(sb["pb"], 4).tolist(),
                           "worst_individual": j,
                           "max_difference": float(np.max(np.abs(sb["d"]))),
                           "abs_difference_ci": [float(np.max(sb["abs_lo"])), float(np.max(sb["abs_hi"]))],
                           "certified": bool(np.max(sb["abs_lo"]) > tau),
                           "draws": study.streams[sc.a].size})
                evidence["counterexample"] = ce
        evidence.update(self._redraw(ctx, study, comp, idx, sc if search_info and search_info.get("found") else None))
        tables = {"probes": summary,
                  "worst_probe_members": member_table(kind, comp, study.streams[comp.a].inst.scores
                                                       if kind == "selection" else None,
                                                       study.streams[comp.a].inst.groups)}
        figures = [{"kind": "interval_bars", "title": "Largest difference in chance per probe input",
                    "labels": [r["input"] for r in rows],      # whole: the figure wraps long labels
                    "estimate": [r["max_difference"] for r in rows],
                    "lo": [r["abs_diff_lo"] for r in rows], "hi": [r["abs_diff_hi"] for r in rows],
                    "xlabel": "|difference in chance|", "reference": tau, "reference_label": f"tau {tau:g}"}]
        if kind == "ranking":
            n = comp.bounds["pa"].shape[0]
            figures.append({"kind": "heatmap", "title": f"Position chances, {comp.probe} probe",
                            "matrices": [comp.bounds["pa"].tolist(), comp.bounds["pb"].tolist(),
                                         comp.bounds["d"].tolist()],
                            "subtitles": ["original", "relabelled" if comp.b else "required", "difference"],
                            "xlabel": "position (1 = top)", "ylabel": "individual", "x0": 1})
        elif 5 <= comp.bounds["pa"].shape[0] <= 400:   # smaller: the counterexample lists every chance
            n = comp.bounds["pa"].shape[0]
            claims = np.asarray(study.streams[comp.a].inst.scores, float)
            by_claim = len(np.unique(claims)) >= 3
            figures.append({"kind": "scatter_ci", "title": f"Difference in chance per individual ({comp.probe} probe)",
                            "x": (claims if by_claim else np.arange(n)).tolist(), "estimate": comp.bounds["d"].tolist(),
                            "lo": comp.bounds["lo"].tolist(), "hi": comp.bounds["hi"].tolist(),
                            "xlabel": "claim" if by_claim else "individual (index)", "ylabel": "chance difference"})
        where = f"{comp.probe} probe, input '{comp.label}'"
        tie_note = ""
        if deterministic_eq:
            tie_note = (f" On {eqs.inst.n} identical inputs the allocator returned the same outcome "
                        f"{eqs.draws[0].tolist()} in all {eqs.size} draws: ties are broken by position in the "
                        f"list (a deterministic allocator cannot be anonymous, Devic et al., Prop 7).")
        search_txt = ""
        if search_info is not None:
            search_txt = (f"(after a Hypothesis search of {search_info['examples']} small instances found none "
                          f"that looked violating) " if not search_info.get("found") else "")
        ce_note = ""
        if evidence.get("counterexample", {}).get("certified"):
            ce = evidence["counterexample"]
            ce_note = (f" Smallest counterexample found: {ce['n']} individuals ({ce['relation']}); replay it with "
                       f"the command in the report.")
        msgs = {
            "fail": f"Not anonymous: {who} ({where}; {diff_txt}, above tau {tau:g} with confidence).{tie_note}{ce_note}",
            "pass": (f"No violation beyond tau {tau:g} found: in each of the {len(study.comps)} probe inputs "
                     f"{search_txt}every person's chance moves by at most {stat.ci[1]:.3f} under relabelling "
                     f"(certified at {ctx.confidence:g} jointly); the largest difference: {who} ({where}). "
                     f"Anonymity over all inputs can only be refuted by sampling, not proven."),
            "inconclusive": (f"Cannot yet tell whether chances change by more than tau {tau:g}: the worst case, "
                             f"{who} ({where}; {diff_txt})."),
        }
        return self.judged(stat, msgs, draws, evidence=evidence, tables=tables, figures=figures,
                           method=stat.method, components=study.components())

    def _redraw(self, ctx, study, comp, idx, search_comp) -> dict:
        """Draw records of the worst member's chances (and of every chance on the shrunk
        search counterexample), on the original input and — for the same individuals —
        on the relabelled one."""
        ranking = study.kind == "ranking"
        records = []

        def add(c, who):
            sa = study.streams[c.a]
            ma = [[i, q] for i in who for q in range(sa.inst.n)] if ranking and who is not None else who
            if who is not None and ranking and c is comp and search_comp is None:
                ma = [[i, int(idx[1])] for i in who]
            records.append(ctx.draw_record(f"{c.probe} probe: {c.label}", sa.inst, sa.name, sa.draws, members=ma))
            if c.b is not None:
                sb = study.streams[c.b]
                mb = [[int(c.mapping[i]), q] for i, q in ma] if ranking else [int(c.mapping[i]) for i in ma]
                records.append(ctx.draw_record(f"{c.probe} probe, relabelled (same individuals): {sb.inst.label}",
                                               sb.inst, sb.name, sb.draws, members=mb))

        if search_comp is not None:
            add(search_comp, list(range(study.streams[search_comp.a].inst.n)))
        if comp is not search_comp:
            who = [int(idx[0])]
            if comp.b is None:   # identical inputs: the individual and the one it is compared with
                who.append(int(np.broadcast_to(comp.bounds["ref"], comp.bounds["pa"].shape)[idx]))
            add(comp, who)
        what = ("chances on the original and on the relabelled input (same individuals) of "
                + ("every individual of the shrunk search counterexample" if search_comp is not None else "")
                + (" and " if search_comp is not None and comp is not search_comp else "")
                + ("the worst-treated individual" if comp is not search_comp else ""))
        return ctx.replay_evidence(self.id, records, what)

    # ------------------------------------------------------------------
    def _run_counterfactual(self, ctx, tau, max_n, protected, max_draws, max_share):
        """Decision rules: counterfactual fairness (:mod:`fairaudit.counterfactual`) — swap
        each protected attribute (and its exact copies) keeping the rest of every row fixed;
        the share of individuals whose chance of a yes moves by more than tau."""
        inst = data_instance(ctx, "decision", int(max_n), ctx.rng(self.id), "counterfactual test")
        wanted = [c.strip() for c in str(protected or "").split(",") if c.strip()]
        prot = [c for c in inst.groups.columns if not wanted or c in wanted]
        cfs = counterfactuals(inst, prot)
        if not cfs:
            return self.result("skipped", "Skipped: no protected column has two values to swap.")
        stream = f"{self.id}/counterfactual"           # one stream for all: common random numbers
        items = [(inst, stream)] + [(cf, stream) for _, _, cf in cfs]
        last: dict = {}
        shifts = PairedShifts(len(cfs), inst.n, ctx.confidence)     # carried across looks

        def judge(draws):
            if last.get("n") != len(draws[0]):
                est, lo, hi = shifts.update(draws)
                last.update(n=len(draws[0]), est=est, lo=lo, hi=hi, share=share_moved(est, lo, hi, tau))
            return last

        def decided(draws):
            _, ci, _, _ = judge(draws)["share"]
            return decide(ci, max_share, "above") != "inconclusive"

        draws = ctx.sampler.sample_until_many(items, decided, ctx.max_draws(max_draws), first=256)
        j = judge(draws)
        draws = [d[:shifts.n] for d in draws]          # the paired draws (a budget cut can leave some inputs short)
        share, ci, abs_lo, abs_hi = j["share"]
        est = j["est"]
        method = (f"paired draws (common random numbers), betting confidence sequence per individual, "
                  f"bonferroni over {est.size}")
        stat = Statistic("share_moved_by_attribute", share, ci, tolerance=max_share, method=method)
        c, i = np.unravel_index(np.argmax(np.abs(est)), est.shape)
        p0 = draws[0][:, i].mean()
        order = np.argsort(-np.abs(est), axis=None)[:10]
        rows = [{"individual": int(ii), "swap": cfs[cc][1], "chance": float(draws[0][:, ii].mean()),
                 "chance_swapped": float(draws[1 + cc][:, ii].mean()), "difference": float(est[cc, ii]),
                 "lo": float(j["lo"][cc, ii]), "hi": float(j["hi"][cc, ii])}
                for cc, ii in (np.unravel_index(o, est.shape) for o in order)]
        pair = row_pair(inst, cfs[c][2], int(i))
        evidence = {"counterexample": {"individual": int(i), "swap": cfs[c][1], "rows": pair,
                                       "chance": float(p0), "chance_swapped": float(p0 + est[c, i])},
                    "individuals": inst.n, "swaps": [w for _, w, _ in cfs], "tau": tau}
        if decide(ci, max_share, "above") == "fail":       # Hypothesis shrinks the counterexample row
            evidence["counterexample"]["shrunk"] = shrink(ctx, inst, cfs[c][2], int(i), tau, f"{stream}/search")
        ex = (f"individual {int(i)}'s chance of a yes goes from {p0:.3f} to {p0 + est[c, i]:.3f} when "
              f"{cfs[c][1]}")
        msgs = {"fail": f"Counterfactual unfairness: changing only the protected attribute moves the chance of a yes "
                        f"by more than {tau:g} for at least {ci[0]:.1%} of the {inst.n} individuals tested; e.g. {ex}.",
                "pass": f"Changing only the protected attribute moves no tested individual's chance of a yes by more "
                        f"than {tau:g} (share at most {ci[1]:.1%}, with confidence; {inst.n} individuals).",
                "inconclusive": f"Up to {ci[1]:.1%} of the {inst.n} individuals may have a chance that moves by more "
                                f"than {tau:g} when only the protected attribute changes; none is certain yet. "
                                f"Largest so far: {ex}."}
        res = self.judged(stat, msgs, len(draws[0]), evidence=evidence, tables={"most_affected": pd.DataFrame(rows)},
                          method=method)
        return replace(res, definition=COUNTERFACTUAL_DEFINITION)

    def _run_log(self, ctx, tau, bins):
        # per (category, score stratum) counts from one GROUPING SETS query where the log is
        cats, counts, edges, K = stratified_category_counts(ctx.log.table, ctx.log.group_cols, int(bins))
        res = cmh_from_counts(cats, counts, edges, K, ctx.confidence)
        table, strata, stat_rows = res["table"], res["strata"], res
        if table.empty:
            return self.result("inconclusive", "No category has members and non-members within the same score "
                                               "stratum, so equal-score comparisons are impossible.",
                               tables={"categories": table})
        worst = table.iloc[int(np.argmax(table["abs_rd_lo"].to_numpy() + 1e-9 * np.abs(table["rd_mh"].to_numpy())))]
        stat = Statistic("max_mh_rate_difference", float(np.max(np.abs(table["rd_mh"]))),
                         (float(table["abs_rd_lo"].max()), float(table["abs_rd_hi"].max())), tolerance=tau,
                         method=res["method"])
        name = f"{worst['attribute']} = {worst['category']}"
        top = strata[strata["category"] == name].head(3)
        drive = "; ".join(f"score bin {r['stratum']}: {r['rate_in']:.2f} vs {r['rate_out']:.2f} "
                          f"(n={int(r['n_in'])}/{int(r['n_out'])})" for r in top.to_dict("records"))
        core = (f"{name} is selected at a rate {worst['rd_mh']:+.3f} different from others with scores in the same "
                f"bins (Mantel–Haenszel, interval [{worst['rd_lo']:.3f}, {worst['rd_hi']:.3f}], CMH p = "
                f"{worst['cmh_p']:.2g})")
        msgs = {"fail": f"Equal scores, unequal treatment: {core}; strata driving it: {drive}.",
                "pass": f"Within score bins, every group's selection rate is within {tau:g} of the others'; the "
                        f"largest difference: {core}.",
                "inconclusive": f"Cannot yet tell whether equal-score selection rates differ by more than {tau:g}: "
                                f"{core}."}
        evidence = {"worst": {k: (v.item() if hasattr(v, "item") else v) for k, v in worst.to_dict().items()},
                    "bins": res["bin_edges"], "strata_driving_worst": top.to_dict("records")}
        figures = [{"kind": "interval_bars", "title": "Mantel–Haenszel selection-rate difference within score bins",
                    "labels": (table["attribute"] + " = " + table["category"]).tolist(),
                    "estimate": table["rd_mh"].tolist(), "lo": table["rd_lo"].tolist(), "hi": table["rd_hi"].tolist(),
                    "xlabel": "rate difference (category − rest)", "reference": 0.0}]
        return self.judged(stat, msgs, ctx.log.n_rows, from_log=True, evidence=evidence,
                           tables={"categories": table, "strata": strata.head(60)}, figures=figures,
                           method=res["method"])




# ---------------------------------------------------------------------------
# Cochran–Mantel–Haenszel across score strata (logs)
