"""Words for readers: human names of the ids in results (table columns, statistics), a
glossary of the symbols the checks' texts use, and citations by author and title.

The JSON keeps the ids; the report and the terminal show these names. An id not named
here is shown as it is (a table may carry the user's own data column names, which are
the user's words, not ours).
"""
from __future__ import annotations

import re

#: table column id → what a reader sees in the header
COLUMNS: dict[str, str] = {
    "T": "arrivals per year (T)", "n": "individuals (n)", "k": "selected (k)", "m": "labels (m)",
    "lo": "lower bound", "hi": "upper bound", "estimate": "estimate", "estimated": "estimated chance",
    "diff_lo": "difference (lower)", "diff_hi": "difference (upper)", "ratio_lo": "ratio (lower)",
    "error_rate": "rate", "error_rate_lo": "rate (lower)", "error_rate_hi": "rate (upper)",
    "ratio_hi": "ratio (upper)", "labelled": "labelled individuals",
    "measure": "rate (TPR or FPR)",
    "abs_lo": "|change|, lower bound", "abs_hi": "|change|, upper bound", "chance_swapped": "chance, attribute swapped",
    "swap": "attribute change", "move": "move", "probe": "probe", "other": "other individual",
    "change": "change of chance", "differ_from_mode": "draws unlike the most common outcome",
    "distinct_outcomes": "distinct outcomes",
    "abs_diff": "|difference|", "alpha": "group bias (α)", "algorithm_sd": "spread across algorithm runs (sd)",
    "arrival_sd": "spread across arrival orders (sd)", "always": "always selected", "never": "never selected",
    "attribute": "attribute", "benchmark_price_of_fairness": "benchmark price of fairness",
    "better_b": "B has the better quality", "bin": "claim bin", "bound": "bound", "bound_vacuous": "bound says nothing",
    "broome_chance": "chance under the Broome lottery", "broome_weight": "Broome lottery weight",
    "candidates": "candidates", "category": "group", "chance": "chance", "chance_a": "chance of A",
    "chance_b": "chance of B", "chance_original": "chance, original list", "chance_relabelled": "chance, relabelled list",
    "claim": "claim", "claim_max": "highest claim", "claim_mean": "mean claim", "claim_min": "lowest claim",
    "cost": "cost", "cost_vs_top_k": "cost vs top-k", "description": "description", "dev": "deviation",
    "difference": "difference", "draws": "draws", "draws_per_input": "draws per input",
    "draws_per_year": "draws per year", "eps_hat": "estimated ε (ε̂)", "eps_lower": "ε̂ lower bound",
    "eps_upper": "ε̂ upper bound", "exact_ua": "UA ranking's chance", "expected_utility": "expected utility",
    "expected_utility_top_k": "expected utility of top-k", "exposure": "exposure",
    "exposure_truth": "exposure under the true labels", "exposure_ua_predictions": "exposure under the UA ranking",
    "first_round_weight": "first-round weight", "gap": "gap", "global": "global regret", "group": "group",
    "group_average": "group average", "impact_ratio": "impact ratio", "in_verdict": "counts in the verdict",
    "individual": "individual", "infeasible_years": "years without a feasible assignment", "input": "input",
    "instance": "input", "ir": "impact ratio", "k_prime_ci": "k′ interval", "k_prime_over_k": "k′ / k (share selected by lottery)",
    "l1_change": "input change ‖ΔP‖₁", "label": "label", "label_frequency": "label frequency",
    "loss": "loss", "max_abs_alpha": "largest |α|", "max_deviation": "largest deviation",
    "max_difference": "largest difference", "max_marginal_change": "largest change of a chance",
    "mean_global_regret": "mean global regret", "mean_max_regret": "mean worst-group regret",
    "mean_prediction": "mean prediction", "mean_regret": "mean regret", "mean_size": "mean size",
    "method": "method", "min_size": "smallest size", "mmc": "largest change of a chance",
    "n_prime_ci": "n′ interval", "n_prime_over_n": "n′ / n (share in the lottery)",
    "not_multiaccurate": "not multiaccurate", "p": "regret rate", "p_over_eps": "share of years with regret above ε",
    "p_lo": "share of years with regret above ε (lower)", "p_hi": "share of years with regret above ε (upper)",
    "pool": "pool", "pool_ranks": "ranks in the pool", "population": "population", "position": "position (1 = top)",
    "precision": "precision", "precision_cost": "precision cost", "precision_top_k": "precision of top-k",
    "predictor_term": "predictor's term", "price_of_fairness": "price of fairness",
    "quality_a": "quality of A", "quality_b": "quality of B", "quantity": "quantity", "ranker": "ranker",
    "ranker_term": "ranker's term", "rate": "selection rate", "ratio": "ratio", "reading": "reading",
    "reference": "reference group", "regret": "regret", "regret_vs_k_2n": "regret vs k/2n", "regret_vs_top_k": "regret vs top-k",
    "requirement": "requirement", "rule": "rule", "runs": "runs", "scenario": "scenario", "selected": "selected",
    "share": "share", "share_gap": "share gap", "source": "source", "status": "status",
    "theorem16_bound": "bound of Devic et al. Thm 16", "tiny": "too small to judge", "top_share": "share at the top",
    "top_share_gap": "gap in share at the top", "top_share_truth": "share at the top, true labels",
    "true_top_k_share": "share of the true top-k", "truth": "under the true labels",
    "tv_lb_certified": "total-variation distance (certified lower bound)",
    "tv_lower_bound": "total-variation distance (lower bound)", "ua_predictions": "under the UA ranking",
    "unfair_runs": "unfair runs", "verdict": "verdict", "weight": "weight", "worse_a": "A has the worse quality",
    "worst_individual": "worst individual", "worst_position": "worst position (1 = top)", "years": "years",
    "years_over_eps": "years above ε",
    "ratio_log": "log of the chance ratio", "chance_upper_bound": "chance (upper bound)", "index": "individual",
    "quality_bin": "quality bin", "lower_or_equal_quality": "lower or equal quality", "higher_quality": "higher quality",
    "pair": "pair", "relation": "relabelling",
}

_BOUNDS = {"_lo": "lower", "_hi": "upper", "_lower": "lower", "_upper": "upper"}

#: statistic id → a reader's name
STATISTICS: dict[str, str] = {
    "min_gain_ratio": "smallest gain ratio between claim bins",
    "min_chance_ratio": "smallest chance ratio",
    "worst_certified_ratio": "largest certified change ratio",
    "violation_rate": "share of pools with a violation",
    "ser_reduction_vs_top_k": "reduction of systemic exclusion vs top-k",
    "pc_excess_over_reference": "pairwise consistency above the reference",
    "pairwise_consistency_excess": "pairwise consistency above the reference",
    "min_impact_ratio": "lowest impact ratio",
    "min_error_rate_ratio": "lowest error-rate ratio (TPR/FPR vs the group's best)",
    "share_moved_by_attribute": "share of people whose chance moves when only the protected attribute changes",
    "max_lipschitz_ratio": "largest change of chance per unit of feature distance",
    "max_ratio_adversarial_steps": "largest change of chance per unit distance (adversarial steps)",
    "max_ratio_data_neighbours": "largest change of chance per unit distance (data neighbours)",
    "bf1_max_drop": "largest drop of chance when a claim rises (BF.1)",
    "bf2_min_chance": "lowest chance of a positive claim (BF.2)",
    "max_variation": "largest share of draws unlike the most common outcome",
    "max_reversal": "largest reversal",
    "max_position_share_gap": "largest gap in a group's share of a position",
    "max_mh_rate_difference": "largest rate difference (Mantel–Haenszel)",
    "max_group_regret": "largest group regret",
    "max_group_p_regret_over_eps": "worst group's share of years with regret above ε",
    "max_ex_ante_reversal": "largest ex-ante reversal",
    "max_equal_claims_gap": "largest chance gap between equal claims",
    "max_chance_difference": "largest change of a chance under relabelling",
    "max_abs_deviation_from_UA": "largest deviation from the UA ranking",
    "later_round_reversal": "reversal in later rounds",
    "first_round_reversal": "reversal in the first round",
    "ex_post_violation_rate": "share of runs unfair ex post",
    "epsilon_hat": "estimated ε (ε̂)",
}


def column_label(col) -> str:
    """The header a reader sees for table column ``col`` (unknown names unchanged)."""
    c = str(col)
    if c in COLUMNS:
        return COLUMNS[c]
    for suffix, word in _BOUNDS.items():
        if c.endswith(suffix) and c[: -len(suffix)] in COLUMNS:
            return f"{COLUMNS[c[: -len(suffix)]]} ({word})"
    return c


def statistic_label(name) -> str:
    return STATISTICS.get(str(name), str(name).replace("_", " "))


#: (symbol, what it means) — the report's glossary lists those its text uses
GLOSSARY: list[tuple[str, str]] = [
    ("ε̂", "estimated ε: the smallest ε for which the allocator is ε-ex-interim fair on this pool"),
    ("ε", "a tolerance: in ex-interim fairness, how far a better candidate's chance may fall below a worse one's "
          "(a factor e^ε); in minimum requirements, how far a group may fall short of its requirement"),
    ("‖ΔP‖₁", "how much the inputs changed: the sum of absolute changes of the predictions (L1 distance)"),
    ("‖P − P′‖₁", "how much the inputs changed: the sum of absolute changes of the predictions (L1 distance)"),
    ("TV", "total-variation distance: the largest difference in probability the two outcome distributions give any event"),
    ("UA", "uncertainty-aware ranking: each ranking drawn with the probability the predictions give it (Devic et al.)"),
    ("BF.1", "Broome-Fairness part 1: a stronger claim gets at least as high a chance as a weaker one"),
    ("BF.2", "Broome-Fairness part 2: no positive claim is overridden (every positive claim has a positive chance)"),
    ("k′", "number chosen by lottery in a partial lottery (the rest go to the top claims)"),
    ("n′", "number of people in the lottery of a partial lottery"),
    ("τ", "tolerance: the largest difference of chances still counted as no violation"),
    ("tau", "tolerance: the largest difference of chances still counted as no violation"),
    ("δ", "an allowance: the additive slack of the stability bound; in ex-interim fairness and minimum "
          "requirements, the share of pools or years allowed to exceed ε"),
    ("L", "Lipschitz constant of stability: outcome marginals may move at most L times the input change (plus δ)"),
    ("α", "1 − confidence: the chance an interval misses its true value (in the multiaccuracy tables, a group's bias)"),
    ("impact ratio", "a group's selection rate divided by the highest group's rate; below 0.8 fails the four-fifths rule"),
    ("four-fifths", "the rule that a group selected at under 80% of the most-selected group's rate shows adverse impact"),
    ("regret", "how far a group falls short of its minimum requirement, averaged over arrivals"),
    ("price of fairness", "how much total utility the fair assignment gives up against the unconstrained one"),
    ("Mantel–Haenszel", "a difference of rates pooled over strata, so that differences between strata do not confound it"),
]


def glossary_for(text: str) -> list[tuple[str, str]]:
    """The glossary entries whose symbol occurs in ``text`` (one per meaning)."""
    out, seen = [], set()
    for sym, meaning in GLOSSARY:
        pattern = re.escape(sym) if not sym.isalpha() else rf"\b{re.escape(sym)}\b"
        if meaning not in seen and re.search(pattern, text):
            out.append((sym, meaning))
            seen.add(meaning)
    return out


#: source seed → (authors, title)
SOURCES: dict[str, tuple[str, str]] = {
    "000": ("Jain, Creel and Wilson", "Scarce Resource Allocations That Rely On Machine Learning Should Be Randomized"),
    "001": ("Jain, Wang, Creel and Wilson", "Allocation Multiplicity: Evaluating the Promises of the Rashomon Set"),
    "002": ("Devic, Korolova, Kempe and Sharan", "Stability and Multigroup Fairness in Ranking with Uncertain Predictions"),
    "003": ("Freund, Lykouris, Paulson, Sturt and Weng", "Group Fairness in Dynamic Refugee Assignment"),
    "004": ("Kearns, Roth and Wu", "Meritocratic Fairness for Cross-Population Selection"),
}

#: source seed → how user text cites it: author(s) and, where the authors alone are ambiguous,
#: a short title ("Devic et al., Prop 7"; never the seed's file name, which reads like ``--seed``)
SHORT_NAMES: dict[str, str] = {
    "000": "Jain, Creel and Wilson", "001": "Jain et al., Allocation Multiplicity", "002": "Devic et al.",
    "003": "Freund et al.", "004": "Kearns, Roth and Wu",
}

_SEED = re.compile(r"\bseeds? (00[0-4])\b")
_SEED_REF = re.compile(r"\bseeds? (00[0-4]),? (?=(?:Defs?|Props?|§|Figs?|Figure|Table|Theorem|Thm|Lemma|Example)\b|§)")


def cite(text: str, *, short: bool = False) -> str:
    """A citation by seed file name, as older results hold it, in words: ``seed 002 Prop 7`` →
    ``Devic, Korolova, Kempe and Sharan, “Stability and …” Prop 7`` (``short``: ``Devic et al.,
    Prop 7``)."""
    if short:
        s = _SEED_REF.sub(lambda m: SHORT_NAMES[m.group(1)] + ", ", str(text))
        return _SEED.sub(lambda m: SHORT_NAMES[m.group(1)], s)

    def one(m):
        authors, title = SOURCES[m.group(1)]
        return f"{authors}, “{title}”"
    return _SEED.sub(one, str(text))


#: the words by which user text cites each source
_CITED_AS = {"000": ("Jain, Creel and Wilson",), "001": ("Allocation Multiplicity",),
             "002": ("Devic et al.", "Devic, Korolova"), "003": ("Freund et al.", "Freund, Lykouris"),
             "004": ("Kearns, Roth and Wu", "Kearns–Roth–Wu", "Kearns et al.")}


def sources_cited(text: str) -> list[tuple[str, str]]:
    """(authors, title) of each source ``text`` cites (by its short name, or an old result's
    seed number), in seed order: the report's list of sources."""
    return [SOURCES[k] for k in SOURCES if any(w in text for w in _CITED_AS[k]) or re.search(rf"\bseeds? {k}\b", text)]


#: what each check needs beyond the target (for ``fairaudit checks CHECK``); a check not
#: listed runs on built-in generated inputs alone
DATA_NEEDS: dict[str, tuple[str, str]] = {
    "selection_rates": ("--data FILE with a score column and group columns (or a selection log with group columns)",
                        "fairaudit check my_allocator.py --checks selection_rates --data people.csv"),
    "multiaccuracy": ("--data FILE with p_<label> prediction columns, a label column and group columns "
                      "(or a ranking log with them)",
                      "fairaudit check my_ranker.py --checks multiaccuracy --data predictions.csv"),
    "multiplicity": ("--data FILE with a 'label' column (1 = qualified), or a one-decision-per-model log",
                     "fairaudit check my_selector.py --checks multiplicity --data people.csv"),
    "obliviousness": ("optional --data FILE whose group column names the populations (--groups)",
                      "fairaudit check my_allocator.py --checks obliviousness --data people.csv --groups population"),
    "ex_interim": ("built-in cross-population pools, or --data FILE with a 'quality' column (true CDF value "
                   "within the candidate's population)", "fairaudit check my_allocator.py --checks ex_interim"),
    "ex_post": ("built-in cross-population pools, or --data FILE with a 'quality' column",
                "fairaudit check my_allocator.py --checks ex_post"),
    "ex_ante": ("built-in cross-population pools (data files are not used)",
                "fairaudit check my_allocator.py --checks ex_ante"),
    "anonymity": ("nothing: built-in inputs, plus --data FILE when given (group columns for the attribute swaps); "
                  "a selection log needs group columns", "fairaudit check my_allocator.py --checks anonymity --data people.csv"),
    "broome": ("nothing: the seeds' claim distributions, plus --data FILE's score column when given",
               "fairaudit check my_allocator.py --checks broome"),
}


#: what each decision kind is, in words (``fairaudit checks`` and skip reasons)
KIND_PHRASES = {"selection": "selections (k of n)", "ranking": "rankings", "assignment": "assignments to places",
                "decision": "per-person yes/no decisions"}


def kinds_phrase(kinds) -> str:
    """``("selection", "decision")`` → "selections (k of n) and per-person yes/no decisions"."""
    names = [KIND_PHRASES.get(k, f"{k} decisions") for k in kinds]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
