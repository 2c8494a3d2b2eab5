"""Words for readers: human names of the ids in results (table columns, statistics), a
glossary of the symbols the checks' texts use, and citations by author and title.

The JSON keeps the ids; the report and the terminal show these names. An id not named
here is shown as it is (a table may carry the user's own data column names, which are
the user's words, not ours).
"""
from __future__ import annotations

import functools
import re

#: table column id → what a reader sees in the header, for the columns several checks (or the
#: engine's shared tables) use; a check declares its own columns in ``Check.column_labels``
COLUMNS: dict[str, str] = {
    "n": "individuals (n)", "k": "selected (k)", "m": "labels (m)", "lo": "lower bound", "hi": "upper bound",
    "estimate": "estimate", "ratio_lo": "ratio (lower)", "ratio_hi": "ratio (upper)",
    "abs_lo": "|change|, lower bound", "abs_hi": "|change|, upper bound", "swap": "attribute change",
    "probe": "probe", "abs_diff": "|difference|", "alpha": "group bias (α)", "always": "always selected",
    "never": "never selected", "attribute": "attribute", "bound": "bound", "category": "group", "chance": "chance",
    "chance_original": "chance, original list", "chance_relabelled": "chance, relabelled list", "claim": "claim",
    "dev": "deviation", "difference": "difference", "draws": "draws",
    "expected_utility_top_k": "expected utility of top-k", "global": "global regret", "group": "group",
    "in_verdict": "counts in the verdict", "individual": "individual", "input": "input", "instance": "input",
    "ir": "impact ratio", "label": "label", "max_abs_alpha": "largest |α|", "max_difference": "largest difference",
    "method": "method", "min_size": "smallest size", "mmc": "largest change of a chance", "p": "regret rate",
    "pool": "pool", "population": "population", "position": "position (1 = top)",
    "precision_top_k": "precision of top-k", "quantity": "quantity", "ranker": "ranker", "rate": "selection rate",
    "ratio": "ratio", "reference": "reference group", "regret": "regret", "rule": "rule", "selected": "selected",
    "share": "share", "source": "source", "status": "status", "verdict": "verdict", "weight": "weight",
    "worst_individual": "worst individual", "worst_position": "worst position (1 = top)",
    # the words of counterexamples (fairaudit.counterexamples), whichever check wrote them
    "ratio_log": "log of the chance ratio", "chance_upper_bound": "chance (upper bound)", "index": "individual",
    "quality": "quality", "quality_bin": "quality bin", "lower_or_equal_quality": "lower or equal quality",
    "higher_quality": "higher quality", "better": "better candidate", "worse": "worse candidate",
    "rejected": "rejected", "pair": "pair", "relation": "relabelling",
}

_BOUNDS = {"_lo": "lower", "_hi": "upper", "_lower": "lower", "_upper": "upper"}

def _registry():
    """The installed checks by id (the registry imports every check on first use)."""
    from .check import discover
    return discover()


@functools.lru_cache(maxsize=1)
def _words() -> tuple[dict[str, str], dict[str, str], dict[str, tuple[str, str]]]:
    """Columns, statistics and headline subjects of every check, joined (for a caller that
    does not say which check a name belongs to)."""
    cols, stats, heads = dict(COLUMNS), {}, {}
    for cls in _registry().values():
        cols.update({k: v for k, v in cls.column_labels.items() if k not in COLUMNS})
        stats.update(cls.statistic_labels)
        heads.update(cls.headlines)
    return cols, stats, heads


def _own(check_id: str | None, attr: str) -> dict:
    cls = _registry().get(check_id) if check_id else None
    return getattr(cls, attr, {}) if cls is not None else {}


def column_label(col, check_id: str | None = None) -> str:
    """The header a reader sees for table column ``col`` of check ``check_id``: the
    check's own words (``Check.column_labels``), the shared :data:`COLUMNS`, a bound suffix
    (``_lo``, ``_hi``) of a named column; unknown names unchanged (a user's own data
    column names are the user's words)."""
    c = str(col)
    cols = {**_words()[0], **_own(check_id, "column_labels")}
    if c in cols:
        return cols[c]
    for suffix, word in _BOUNDS.items():
        if c.endswith(suffix) and c[: -len(suffix)] in cols:
            return f"{cols[c[: -len(suffix)]]} ({word})"
    return c


def statistic_label(name, check_id: str | None = None) -> str:
    """A reader's name for statistic ``name`` (``Check.statistic_labels``)."""
    stats = {**_words()[1], **_own(check_id, "statistic_labels")}
    return stats.get(str(name), str(name).replace("_", " "))


def headline_words(name, check_id: str | None = None) -> tuple[str, str] | None:
    """(subject with ``{est}``, the tolerance line with ``{tol}``) a check declares for its
    statistic ``name`` in ``Check.headlines``; None when it declares none."""
    return {**_words()[2], **_own(check_id, "headlines")}.get(str(name))


_INDEXED = re.compile(r"^(.*?)_?(\d+)$")


def table_title(check_id, name) -> str:
    """The title a reader sees for table ``name`` of check ``check_id``: the check's
    ``Check.table_titles`` (an entry ``"bins_{n}"`` titles ``bins_0``, ``bins_1`` … with
    ``{n}`` the input's number counted from 1), else the name in words."""
    titles = _own(str(check_id), "table_titles")
    name = str(name)
    if name in titles:
        return titles[name]
    m = _INDEXED.match(name)
    if m:
        for key in (f"{m.group(1)}_{{n}}", f"{m.group(1)}{{n}}"):
            if key in titles:
                return titles[key].format(n=int(m.group(2)) + 1)
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def data_needs(check_id: str) -> tuple[str, str] | None:
    """(what check ``check_id`` needs beyond the target, an example command), as the check
    declares it in ``Check.data_needs``."""
    cls = _registry().get(check_id)
    return getattr(cls, "data_needs", None) if cls is not None else None


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
_SEED_REF = re.compile(r"\bseeds? (00[0-4]),? (?=(?:Defs?|Props?|Figs?|Figure|Table|Theorem|Thm|Lemma|Example)\b|§)")


def cite(text: str, *, short: bool = False) -> str:
    """A citation by seed file name, as older results hold it, in words: ``seed 002 Prop 7`` →
    ``Devic, Korolova, Kempe and Sharan, “Stability and …” Prop 7`` (``short``: ``Devic et al.,
    Prop 7``). fairaudit's own texts cite by :data:`SHORT_NAMES` already."""
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


#: what each decision kind is, in words (``fairaudit checks`` and skip reasons)
KIND_PHRASES = {"selection": "selections (k of n)", "ranking": "rankings", "assignment": "assignments to places",
                "decision": "per-person yes/no decisions"}


def kinds_phrase(kinds) -> str:
    """``("selection", "decision")`` → "selections (k of n) and per-person yes/no decisions"."""
    names = [KIND_PHRASES.get(k, f"{k} decisions") for k in kinds]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
