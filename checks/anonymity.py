"""``anonymity`` (seed 002 Def 2, Prop 7), with ``determinism`` and ``obliviousness`` (seed 004 Def 2.6).

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
  The shrunk instance and a ``python -c`` replay command go into the evidence.

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
seeded ``random``; ``database=None``), bounded by ``search_examples``; a wall-clock
guard (``search_seconds``) stops a search on a very slow allocator early (only then may
two runs differ). Per-example draws use streams named by a hash of the instance, so a
replayed example sees the same draws (no flakiness for the shrinker).

Log audit (selection logs with group columns): individuals with binned scores must be
selected at equal rates across groups. For each category (vs the rest of its
attribute) a 2×2×K table over ``bins`` score strata; Mantel–Haenszel risk difference
with Sato's variance (normal interval, Bonferroni over categories) decides against
``tau``; the Cochran–Mantel–Haenszel χ² (continuity-corrected, ``scipy.stats.chi2``)
p-values are reported with Holm; the strata contributing most to the MH difference are
listed.

``determinism``: is the output identical across draws? Draws on an equal-claims input,
a generated input and the data; the statistic is the largest share of draws that differ
from the input's most common outcome (selection: as a set), Clopper–Pearson. Decision
(SPEC is silent on the direction): the property audited is *randomisation* — a
deterministic allocator cannot be anonymous (seed 002 Prop 7) — so the check fails when
that share is below ``min_variation`` with confidence and passes when it is above.

``obliviousness`` (seed 004 Def 2.6, selection): populations are the categories of one
group column (``population``; without data, seed 004's pools: two populations of sizes
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

import hashlib
import json
import math
import random as _random
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sst

from fairaudit.check import Check, Param
from fairaudit.data import generate_claims
from fairaudit.groups import categories
from fairaudit.result import Statistic, decide
from fairaudit.sampler import inclusion_counts, position_counts
from fairaudit.stats import holm, proportion_ci, two_proportion_diff_ci
from fairaudit.targets import Instance

FIRST_LOOK = 512


# ---------------------------------------------------------------------------
# Instance helpers
# ---------------------------------------------------------------------------

def permute_instance(inst: Instance, perm, label: str) -> Instance:
    """The instance listed in the order ``perm`` (``perm[j]`` = old index now at j)."""
    perm = np.asarray(perm, dtype=int)
    ch: dict = {}
    for name in ("scores", "predictions", "labels"):
        v = getattr(inst, name)
        if v is not None:
            ch[name] = np.asarray(v)[perm]
    for name in ("groups", "features"):
        v = getattr(inst, name)
        if v is not None:
            ch[name] = v.iloc[perm].reset_index(drop=True)
    return inst.replace(label=label, **ch)


def swap_attributes(inst: Instance, pairs, columns, label: str) -> Instance:
    """Exchange the values of ``columns`` (group or feature columns) between the two
    individuals of every pair; everything else stays where it is."""
    ch: dict = {}
    for name in ("groups", "features"):
        df = getattr(inst, name)
        if df is None:
            continue
        cols = [c for c in columns if c in df.columns]
        if not cols:
            continue
        df = df.copy()
        for i, j in pairs:
            a = df.loc[i, cols].copy()
            df.loc[i, cols] = df.loc[j, cols].to_numpy()
            df.loc[j, cols] = a.to_numpy()
        ch[name] = df
    return inst.replace(label=label, **ch)


def instance_digest(inst: Instance) -> str:
    """A short stable hash of an instance's content (names its draw streams)."""
    h = hashlib.sha1()
    for name in ("scores", "predictions", "k"):
        v = getattr(inst, name)
        h.update(name.encode())
        if v is not None:
            h.update(np.ascontiguousarray(np.asarray(v, dtype=float)).tobytes())
    for name in ("groups", "features"):
        v = getattr(inst, name)
        if v is not None:
            h.update(v.to_csv(index=False).encode())
    return h.hexdigest()[:12]


def _jsonable_instance(inst: Instance) -> dict:
    d = inst.to_jsonable()
    d.pop("label", None)
    return d


# ---------------------------------------------------------------------------
# Comparisons of outcome distributions, member by member, over looks
# ---------------------------------------------------------------------------

@dataclass
class _Stream:
    inst: Instance
    name: str
    draws: np.ndarray | None = None

    @property
    def size(self) -> int:
        return 0 if self.draws is None else int(self.draws.shape[0])


@dataclass
class _Comparison:
    """One probe input: stream ``a`` against stream ``b`` (individual i of ``a`` is
    ``mapping[i]`` in ``b``) or against a known chance ``expected``."""

    probe: str
    label: str
    a: str
    b: str | None = None
    mapping: np.ndarray | None = None
    expected: float | None = None
    meta: dict = field(default_factory=dict)
    bounds: dict | None = None
    #: individuals whose chances this comparison judges (None: everyone)
    only: np.ndarray | None = None

    def members(self, kind: str, n: int) -> int:
        m = n if self.only is None else len(self.only)
        return m * n if kind == "ranking" else m


def _counts(kind: str, draws: np.ndarray, n: int) -> np.ndarray:
    return position_counts(draws, n) if kind == "ranking" else inclusion_counts(draws, n)


def _abs_bounds(lo, hi):
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    alo = np.where(lo > 0, lo, np.where(hi < 0, -hi, 0.0))
    ahi = np.maximum(np.abs(lo), np.abs(hi))
    return alo, ahi


def _compare(comp: _Comparison, streams: dict, kind: str, conf: float) -> dict:
    sa = streams[comp.a]
    n = sa.inst.n
    ca = _counts(kind, sa.draws, n)
    Ba = sa.size
    pa = ca / Ba
    ref = None
    if comp.b is None:
        # Identical inputs: exchanging individuals i and j would move i's chance from
        # π_i to π_j, so each member is judged by its largest difference to another
        # individual (per position for rankings), bounded from the simultaneous
        # Clopper–Pearson intervals of all individuals.
        lo, hi = proportion_ci(ca, Ba, conf)
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        pmin, pmax = pa.min(axis=0), pa.max(axis=0)
        up = (pa - pmin) >= (pmax - pa)
        d = np.where(up, pa - pmin, pa - pmax)
        pb = np.where(up, pmin, pmax)
        ref = np.where(up, np.argmin(pa, axis=0), np.argmax(pa, axis=0))
        alo0 = np.maximum(np.maximum(lo - hi.min(axis=0), lo.max(axis=0) - hi), 0.0)
        ahi0 = np.maximum(hi - lo.min(axis=0), hi.max(axis=0) - lo)
        dlo, dhi = np.where(d >= 0, alo0, -ahi0), np.where(d >= 0, ahi0, -alo0)
        Bb = 0
    else:
        sb = streams[comp.b]
        cb = _counts(kind, sb.draws, n)[comp.mapping]
        Bb = sb.size
        pb = cb / Bb
        d, dlo, dhi = two_proportion_diff_ci(ca, Ba, cb, Bb, conf)
    d, dlo, dhi = (np.asarray(v, float) for v in (d, dlo, dhi))
    if comp.only is not None:
        # Only the listed individuals are judged; the others' rows carry no claim.
        keep = np.zeros(n, bool)
        keep[comp.only] = True
        if d.ndim == 2:
            keep = np.broadcast_to(keep[:, None], d.shape)
        d, dlo, dhi = np.where(keep, d, 0.0), np.where(keep, dlo, 0.0), np.where(keep, dhi, 0.0)
    alo, ahi = _abs_bounds(dlo, dhi)
    return {"d": d, "lo": dlo, "hi": dhi, "abs_lo": alo, "abs_hi": ahi, "pa": pa, "pb": pb, "Ba": Ba, "Bb": Bb,
            "ref": ref}


def _constant(draws: np.ndarray, kind: str) -> bool:
    """Did every draw give the same outcome (selection: as a set)?"""
    key = draws if kind == "ranking" else np.sort(draws, axis=1)
    return bool(np.all(key == key[0]))


def _looks(max_draws: int) -> list[int]:
    out, b = [], min(FIRST_LOOK, max_draws)
    while b < max_draws:
        out.append(b)
        b *= 4
    out.append(max_draws)
    return out


class _Study:
    """Streams and comparisons of one check run, sampled in looks until decided."""

    def __init__(self, ctx, kind: str, tau: float):
        self.ctx, self.kind, self.tau = ctx, kind, tau
        self.streams: dict[str, _Stream] = {}
        self.comps: list[_Comparison] = []
        self.looks_done = 0

    def stream(self, inst: Instance, name: str) -> str:
        if name not in self.streams:
            self.streams[name] = _Stream(inst, name)
        return name

    def add(self, comp: _Comparison):
        self.comps.append(comp)

    def member_conf(self, n_looks: int) -> dict[str, float]:
        probes = sorted({c.probe for c in self.comps} | set(getattr(self, "reserved", ())))
        alpha_p = self.ctx.alpha / max(len(probes), 1)
        m: dict[str, int] = {}
        for c in self.comps:
            m[c.probe] = m.get(c.probe, 0) + c.members(self.kind, self.streams[c.a].inst.n)
        return {p: 1.0 - alpha_p / (max(m.get(p, 1), 1) * n_looks) for p in probes}

    def prefetch(self, B: int) -> None:
        """Draw every stream up to ``B`` draws (the same draws the first look uses)."""
        for s in self.streams.values():
            if s.size < B:
                more = self.ctx.sampler.draw(s.inst, B - s.size, s.name, start=s.size)
                s.draws = more if s.draws is None else np.concatenate([s.draws, more])

    def run(self, max_draws: int) -> tuple[Statistic | None, str, int]:
        looks = _looks(max_draws)
        confs = self.member_conf(len(looks))
        verdict, stat = "inconclusive", None
        for B in looks:
            if self.ctx.sampler.time_left() <= 0 and self.looks_done:
                break
            for s in self.streams.values():
                if s.size < B:
                    more = self.ctx.sampler.draw(s.inst, B - s.size, s.name, start=s.size)
                    s.draws = more if s.draws is None else np.concatenate([s.draws, more])
            self.looks_done += 1
            for c in self.comps:
                c.bounds = _compare(c, self.streams, self.kind, confs[c.probe])
            stat = self.statistic(len(looks))
            verdict = decide(stat.ci, self.tau, "above")
            if verdict != "inconclusive":
                break
        return stat, verdict, max(s.size for s in self.streams.values())

    def statistic(self, n_looks: int) -> Statistic:
        est = max(float(np.max(np.abs(c.bounds["d"]))) for c in self.comps)
        lo = max(float(np.max(c.bounds["abs_lo"])) for c in self.comps)
        hi = max(float(np.max(c.bounds["abs_hi"])) for c in self.comps)
        n_members = sum(c.members(self.kind, self.streams[c.a].inst.n) for c in self.comps)
        probes = sorted({c.probe for c in self.comps} | set(getattr(self, "reserved", ())))
        method = (f"Newcombe two-sample / Clopper-Pearson one-sample intervals; bonferroni over "
                  f"{len(probes)} probes, {n_members} members and {n_looks} looks")
        return Statistic("max_chance_difference", est, (lo, hi), tolerance=self.tau, method=method)

    def worst(self) -> tuple[_Comparison, tuple]:
        """The comparison and member with the largest certified (then estimated) difference."""
        best, key = None, None
        for c in self.comps:
            score = c.bounds["abs_lo"] + 1e-9 * np.abs(c.bounds["d"])
            idx = np.unravel_index(int(np.argmax(score)), score.shape)
            k = (float(score[idx]),)
            if key is None or k > key:
                best, key = (c, idx), k
        return best


def _ordinal(i: int) -> str:
    i = int(i)
    suf = "th" if 10 <= i % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(i % 10, "th")
    return f"{i}{suf}"


def _describe_member(kind: str, c: _Comparison, idx) -> str:
    b = c.bounds
    if kind == "ranking":
        i, p = int(idx[0]), int(idx[1])
        what = f"individual {i} is at position {p + 1}"
    else:
        i = int(idx[0])
        what = f"individual {i} is selected"
    pa, pb = float(b["pa"][idx]), float(b["pb"][idx])
    if c.b is None:
        j = int(b["ref"][idx])
        return (f"{what} with chance {pa:.3f} but individual {j}, whose input is identical, with chance {pb:.3f} "
                f"(both should get {c.expected:.3f})")
    if c.probe == "attribute-swap" or c.meta.get("relation") == "swap":
        i, j = c.meta["pair"]
        other = j if int(idx[0]) == i else i
        return (f"{what} with chance {pa:.3f}, but {pb:.3f} once its protected attributes are exchanged with "
                f"those of individual {other}, whose claim is equal")
    return f"{what} with chance {pa:.3f} on the original list but {pb:.3f} after the relabelling"


def _short_label(label: str, width: int = 64) -> str:
    """A probe input's label for a figure axis (it starts with the probe's name): the
    parenthesised detail shortened, the ends kept."""
    return label if len(label) <= width else label[: width - 1].rstrip(" ,") + "…)"


def _member_table(kind: str, c: _Comparison, claims=None, groups=None) -> pd.DataFrame:
    b = c.bounds
    if kind == "ranking":
        n = b["pa"].shape[0]
        ii, pp = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        df = pd.DataFrame({"individual": ii.ravel(), "position": pp.ravel() + 1})
    else:
        n = b["pa"].shape[0]
        df = pd.DataFrame({"individual": np.arange(n)})
        if claims is not None:
            df["claim"] = np.asarray(claims, float)
    if groups is not None and kind != "ranking":
        for col in groups.columns:
            df[col] = groups[col].astype(str).to_numpy()
    df["chance_original"] = b["pa"].ravel()
    if c.b is not None:
        df["chance_relabelled"] = b["pb"].ravel()
    else:   # identical inputs: compared with the individual furthest from it, and with the required chance
        df["other_individual"] = np.broadcast_to(b["ref"], b["pa"].shape).ravel()
        df["chance_other"] = b["pb"].ravel()
        df["chance_required"] = c.expected
    df["difference"] = b["d"].ravel()
    df["abs_diff_lo"] = b["abs_lo"].ravel()
    df["abs_diff_hi"] = b["abs_hi"].ravel()
    return df.sort_values(["abs_diff_lo", "difference"], ascending=[False, False], kind="stable").head(50)


# ---------------------------------------------------------------------------
# Shared: what the target receives
# ---------------------------------------------------------------------------

def _wants(ctx, name: str) -> bool:
    t = ctx.target
    return t is not None and (t.accepts_var_kwargs or name in t.arg_names)


def _pop_frames(ctx):
    pop = ctx.population
    return (pop.groups if pop is not None else None), (pop.features if pop is not None else None)


def _attach_rows(ctx, inst: Instance, rng: np.random.Generator, identical: bool = False) -> Instance:
    """Add ``groups`` / ``features`` rows when the target takes them: drawn from the data's
    rows (or a synthetic ``group`` A/B and feature ``x``), all equal when ``identical``."""
    n = inst.n
    g, f = _pop_frames(ctx)
    ch: dict = {}
    if _wants(ctx, "groups") and inst.groups is None:
        if g is not None and len(g):
            rows = np.zeros(n, int) if identical else rng.integers(0, len(g), n)
            ch["groups"] = g.iloc[rows].reset_index(drop=True)
        else:
            vals = np.array(["A", "B"])
            ch["groups"] = pd.DataFrame({"group": vals[np.zeros(n, int) if identical else rng.integers(0, 2, n)]})
    if _wants(ctx, "features") and inst.features is None:
        if f is not None and len(f):
            rows = np.zeros(n, int) if identical else rng.integers(0, len(f), n)
            ch["features"] = f.iloc[rows].reset_index(drop=True)
        else:
            ch["features"] = pd.DataFrame({"x": np.zeros(n) if identical else np.round(rng.random(n), 3)})
    return inst.replace(**ch) if ch else inst


def _prediction_columns(ctx) -> int:
    pop = ctx.population
    if pop is not None and pop.predictions is not None:
        return int(pop.predictions.shape[1])
    return 3


def _generated_instance(ctx, kind: str, n: int, rng: np.random.Generator, label: str) -> Instance:
    if kind == "ranking":
        m = _prediction_columns(ctx)
        P = np.round(rng.dirichlet(np.ones(m), size=n), 4)
        P = P / P.sum(axis=1, keepdims=True)
        inst = Instance(label, scores=P @ np.arange(m) / max(m - 1, 1), predictions=P)
    else:
        c = np.round(generate_claims("uniform", n, rng), 4)
        inst = Instance(label, scores=c, k=ctx.selection_k(n))
    return _attach_rows(ctx, inst, rng)


def _data_instance(ctx, kind: str, max_n: int, rng: np.random.Generator, what: str) -> Instance | None:
    inst = ctx.population_instance()
    if inst is None:
        return None
    if kind == "ranking" and inst.predictions is None and (inst.scores is None or _wants(ctx, "predictions")):
        return None     # the data has no prediction columns for a ranker that needs them
    n = inst.n
    if n > max_n:
        rows = np.sort(rng.choice(n, size=max_n, replace=False))
        sub = permute_instance(inst, rows, inst.label)   # row selection, same helper
        if kind == "selection":
            sub = sub.replace(k=ctx.selection_k(max_n))
        inst = sub
        label = f"{what} on {max_n} rows sampled from {ctx.population.path or 'the data'}"
    else:
        label = f"{what} on {ctx.population.path or 'the data'} (n={n})"
    inst = inst.replace(label=label)
    if kind == "ranking" and inst.predictions is None:
        # A ranker over scores only: still pass scores; predictions stay None.
        pass
    return _attach_rows(ctx, inst, rng)


# ---------------------------------------------------------------------------
# anonymity
# ---------------------------------------------------------------------------

class Anonymity(Check):
    id = "anonymity"
    title = "Anonymity"
    summary = "Outcomes depend on claims, not on who or where someone is in the list (seed 002 Def 2)."
    definition = ("An allocator is anonymous when relabelling the individuals relabels the outcome distribution "
                  "and nothing else: listing the same people in another order, or exchanging the protected "
                  "attributes of two people with equal claims, must leave each person's chances unchanged; "
                  "identical claims must get identical chances. A deterministic allocator can only break ties by "
                  "position in the list, so it cannot be anonymous (seed 002, Prop 7). The statistic is the "
                  "largest difference in a person's chance (of selection, or of each position) between the "
                  "original and the relabelled input, with intervals simultaneous over every probe.")
    kinds = ("selection", "ranking")
    sources = ("allocator", "log")
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
        "search_seconds": Param(30.0, "wall-clock guard of the search (only a slow allocator reaches it)",
            type=float, min=0, min_open=True),
        "max_draws": Param(16384, "draws per input at most (looks of 512, 2048, 8192, … stop once decided)",
            type=int, min=1),
        "bins": Param(5, "logs: score strata (quantile bins; exact scores when fewer distinct values)",
            type=int, min=1),
    }

    def skip_reason(self, ctx):
        if ctx.log is not None:
            if ctx.kind != "selection":
                return "the stratified log test needs a selection log (ranking logs are not covered)"
            if not ctx.log.group_cols:
                return "the log has no group columns (name them with --groups)"
        return None

    # ------------------------------------------------------------------
    def run(self, ctx, tau, n, permutations, max_n, swap_pairs, protected, search, search_examples,
            search_draws, search_seconds, max_draws, bins):
        if ctx.log is not None:
            return self._run_log(ctx, tau, bins)
        kind = ctx.kind
        rng = ctx.rng(self.id)
        study = _Study(ctx, kind, tau)
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
                m = _prediction_columns(ctx)
                eq = Instance(f"equal-inputs probe (n={ne}, identical prediction rows)", scores=np.full(ne, 0.5),
                              predictions=np.full((ne, m), 1.0 / m))
                expected = 1.0 / ne
            else:
                k_eq = ctx.selection_k(ne)
                eq = Instance(f"equal-inputs probe (n={ne}, k={k_eq}, all claims 0.5)", scores=np.full(ne, 0.5),
                              k=k_eq)
                expected = k_eq / ne
            eq = _attach_rows(ctx, eq, rng, identical=True)
            study.add(_Comparison("equal-inputs", eq.label,
                                  study.stream(eq, f"{self.id}/equal" + (f"/{ne}" if t else "")), expected=expected))

        # -- permutation probe -------------------------------------------------
        base_max = min(int(max_n), 12) if kind == "ranking" else int(max_n)
        base = _data_instance(ctx, kind, base_max, rng, "permutation probe")
        if base is None:
            nb = max(int(n), (int(k_fixed) + 1) if k_fixed else 2)
            nb = min(nb, 12) if kind == "ranking" else nb
            base = _generated_instance(ctx, kind, max(nb, 10) if kind == "selection" else max(nb, 6), rng,
                                       "permutation probe")
        nb = base.n
        a = study.stream(base, f"{self.id}/perm/base")
        for r in range(int(permutations)):
            perm = np.arange(nb)[::-1].copy() if r == 0 else rng.permutation(nb)
            lab = f"permutation probe {r + 1}/{permutations} ({'reversed list' if r == 0 else 'random order'}, n={nb})"
            pinst = permute_instance(base, perm, lab)
            study.add(_Comparison("permutation", lab, a, study.stream(pinst, f"{self.id}/perm/{r}"),
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
            search_info = self._search(ctx, kind, tau, prot, int(search_examples), int(search_draws),
                                       float(search_seconds), k_fixed)
            if search_info.get("found"):
                ex = search_info["found"]
                sa = study.stream(ex["a"], f"{self.id}/search/certify/a")
                sb = study.stream(ex["b"], f"{self.id}/search/certify/b")
                study.add(_Comparison("search", ex["a"].label, sa, sb, mapping=ex["mapping"], meta=ex["meta"]))

        stat, verdict, draws = study.run(ctx.max_draws(max_draws))
        return self._finish(ctx, study, stat, draws, evidence, search_info)

    # ------------------------------------------------------------------
    def _protected(self, ctx, protected: str) -> list[str]:
        """Protected columns the allocator actually receives."""
        g, f = _pop_frames(ctx)
        wanted = [c.strip() for c in str(protected or "").split(",") if c.strip()]
        out = []
        if _wants(ctx, "groups"):
            cols = list(g.columns) if g is not None else ["group"]
            out += [c for c in cols if not wanted or c in wanted]
        if _wants(ctx, "features") and wanted:
            cols = list(f.columns) if f is not None else ["x"]
            out += [c for c in cols if c in wanted and c not in out]
        return out

    def _swap_probe(self, ctx, study, kind, prot, n_pairs, base_max, rng) -> list[_Comparison]:
        """One comparison per pair, each on its own input: the individual at the
        selection cut (ranking: at the top) and the nearest one below it whose protected
        attribute ``prot[t mod len(prot)]`` differs are given equal claims; the input is
        compared with the same input after exchanging the two people's protected
        attributes (all of ``prot``). Only the two people's chances are judged."""
        base = _data_instance(ctx, kind, base_max, rng, "attribute-swap probe")
        if base is None:
            base = _generated_instance(ctx, kind, 10 if kind == "selection" else 6, rng, "attribute-swap probe")
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
            comps.append(_Comparison("attribute-swap", label, a, b, mapping=np.arange(n),
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
    def _search(self, ctx, kind, tau, prot, examples, draws, seconds, k_fixed) -> dict:
        from hypothesis import HealthCheck, Phase, Verbosity, find, settings
        from hypothesis.errors import NoSuchExample

        from fairaudit import strategies as fst

        g, f = _pop_frames(ctx)
        group_values = feature_values = None
        if _wants(ctx, "groups"):
            if g is not None:
                group_values = {c: sorted(g[c].astype(str).unique().tolist())[:3] for c in g.columns}
            else:
                group_values = {"group": ["A", "B"]}
        if _wants(ctx, "features"):
            if f is not None:
                feature_values = {c: sorted(np.unique(np.round(f[c].to_numpy(float), 3)).tolist())[:3]
                                  for c in f.columns}
            else:
                feature_values = {"x": [0.0, 1.0]}
        if kind == "ranking":
            m = _prediction_columns(ctx)
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
        t0 = time.monotonic()
        seconds = min(seconds, max(ctx.sampler.time_left(), 0.0))   # --budget also bounds the search
        tried = [0]
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
            if time.monotonic() - t0 > seconds:
                return False
            tried[0] += 1
            a, b, mapping, _ = realise(ex)
            sa = _Stream(a, f"{self.id}/search/{instance_digest(a)}")
            sb = _Stream(b, f"{self.id}/search/{instance_digest(b)}/{instance_digest(a)}")
            comp = _Comparison("search", a.label, sa.name, sb.name, mapping=mapping)
            conf = 1.0 - 0.01 / comp.members(kind, a.n)
            stages = [B for B in (32, 128) if B < draws] + [draws]
            for B in stages:
                for st_ in (sa, sb):
                    more = ctx.sampler.draw(st_.inst, B - st_.size, st_.name, start=st_.size)
                    st_.draws = more if st_.draws is None else np.concatenate([st_.draws, more])
                res = _compare(comp, {sa.name: sa, sb.name: sb}, kind, conf)
                if _constant(sa.draws, kind) and _constant(sb.draws, kind):
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
            info["timed_out"] = time.monotonic() - t0 > seconds
            return info
        info["examples"] = tried[0]
        a, b, mapping, meta = realise(ex, " counterexample")
        meta["instance"] = _jsonable_instance(a)
        info["found"] = {"a": a, "b": b, "mapping": mapping, "meta": meta}
        return info

    # ------------------------------------------------------------------
    def _finish(self, ctx, study, stat, draws, evidence, search_info):
        kind = study.kind
        tau = study.tau
        verdict = decide(stat.ci, tau, "above")
        comp, idx = study.worst()
        who = _describe_member(kind, comp, idx)
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
                                  "stopped_by_time_guard": bool(search_info.get("timed_out", False))}
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
                evidence["replay_command"] = replay_command(ctx.target.path, kind, found["a"], found["meta"],
                                                            ctx.config.seed)
        tables = {"probes": summary,
                  "worst_probe_members": _member_table(kind, comp, study.streams[comp.a].inst.scores
                                                       if kind == "selection" else None,
                                                       study.streams[comp.a].inst.groups)}
        figures = [{"kind": "interval_bars", "title": "Largest difference in chance per probe input",
                    "labels": [_short_label(r["input"]) for r in rows],
                    "estimate": [r["max_difference"] for r in rows],
                    "lo": [r["abs_diff_lo"] for r in rows], "hi": [r["abs_diff_hi"] for r in rows],
                    "xlabel": "|difference in chance|", "reference": tau, "reference_label": f"tau {tau:g}"}]
        if kind == "ranking":
            n = comp.bounds["pa"].shape[0]
            figures.append({"kind": "heatmap", "title": f"Position chances, {comp.probe} probe",
                            "matrices": [comp.bounds["pa"].tolist(), comp.bounds["pb"].tolist(),
                                         comp.bounds["d"].tolist()],
                            "subtitles": ["original", "relabelled" if comp.b else "required", "difference"],
                            "xlabel": "position", "ylabel": "individual"})
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
                        f"list (a deterministic allocator cannot be anonymous, seed 002 Prop 7).")
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
                           method=stat.method)

    # ------------------------------------------------------------------
    def _run_log(self, ctx, tau, bins):
        res = cmh_by_category(ctx.log.frame, ctx.log.group_cols, int(bins), ctx.confidence)
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
        return self.judged(stat, msgs, len(ctx.log.frame), from_log=True, evidence=evidence,
                           tables={"categories": table, "strata": strata.head(60)}, figures=figures,
                           method=res["method"])


# ---------------------------------------------------------------------------
# Replay
# ---------------------------------------------------------------------------

def replay_command(path: str, kind: str, inst: Instance, meta: dict, seed: int, draws: int = 20000) -> str:
    """A ``python -c`` one-liner that redraws the counterexample and prints each
    individual's chance on the original input and after the relabelling."""
    js = json.dumps
    args = []
    if inst.scores is not None:
        args.append(f"scores=np.array({js(np.asarray(inst.scores, float).tolist())})")
    if inst.predictions is not None:
        args.append(f"predictions=np.array({js(np.asarray(inst.predictions, float).tolist())})")
    if inst.k is not None:
        args.append(f"k={int(inst.k)}")
    if inst.groups is not None:
        args.append(f"groups=pd.DataFrame({js({c: inst.groups[c].astype(str).tolist() for c in inst.groups.columns})})")
    if inst.features is not None:
        args.append(f"features=pd.DataFrame({js({c: inst.features[c].tolist() for c in inst.features.columns})})")
    summ = "position_counts(d,x.n)" if kind == "ranking" else "inclusion_counts(d,x.n)"
    if meta["relation"] == "permute":
        rel = f"p=np.array({js(meta['perm'])});y=A.permute_instance(x,p,\"permuted\");m=np.argsort(p)"
    else:
        i, j = meta["pair"]
        rel = f"y=A.swap_attributes(x,[({i},{j})],list(x.groups.columns),\"swapped\");m=np.arange(x.n)"
    code = ("import numpy as np,pandas as pd;import fairaudit.checks.anonymity as A;"
            "from fairaudit.targets import load_target,Instance;"
            "from fairaudit.sampler import Sampler,inclusion_counts,position_counts;"
            f"t=load_target({js(path)});s=Sampler(t,{int(seed)});"
            f"x=Instance(\"counterexample\",{','.join(args)});{rel};B={draws};"
            f"d=s.draw(x,B,\"a\");a={summ}/B;d=s.draw(y,B,\"b\");b={summ}[m]/B;"
            "print(\"chance on the original list:\",a.round(3));"
            "print(\"chance after the relabelling (same individuals):\",b.round(3))")
    return "python -c " + _shell_quote(code)


def _shell_quote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"


# ---------------------------------------------------------------------------
# Cochran–Mantel–Haenszel across score strata (logs)
# ---------------------------------------------------------------------------

def score_strata(scores: np.ndarray, bins: int) -> tuple[np.ndarray, list]:
    """Stratum index per row: exact scores when there are at most ``bins`` distinct
    values, else quantile bins (edges from the pooled scores; ties stay together)."""
    s = np.asarray(scores, float)
    uniq = np.unique(s)
    if len(uniq) <= bins:
        return np.searchsorted(uniq, s), uniq.tolist()
    edges = np.unique(np.quantile(s, np.linspace(0, 1, bins + 1)))
    idx = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, len(edges) - 2)
    return idx, edges.tolist()


def mantel_haenszel(a, n1, c, n0):
    """Mantel–Haenszel risk difference over strata with Sato's (1989) variance, and the
    Cochran–Mantel–Haenszel χ² (continuity-corrected). ``a``/``n1``: selected / size of
    the category in each stratum; ``c``/``n0``: the same for the rest. Strata without
    both sides carry no information and are dropped. Returns
    ``(rd, var, chi2, p, weights)``."""
    a, n1, c, n0 = (np.asarray(v, float) for v in (a, n1, c, n0))
    ok = (n1 > 0) & (n0 > 0)
    a, n1, c, n0 = a[ok], n1[ok], c[ok], n0[ok]
    N = n1 + n0
    w = n1 * n0 / N
    W = w.sum()
    if W <= 0:
        return float("nan"), float("nan"), float("nan"), 1.0, w
    rd = float(np.sum((a * n0 - c * n1) / N) / W)
    P = np.sum((n1 ** 2 * c - n0 ** 2 * a + n1 * n0 * (n0 - n1) / 2) / N ** 2)
    Q = np.sum((a * (n0 - c) + c * (n1 - a)) / (2 * N))
    var = float(max((rd * P + Q) / W ** 2, 0.0))
    # CMH: sum over strata of a − E[a], variance of the hypergeometric.
    m1 = a + c
    E = n1 * m1 / N
    with np.errstate(invalid="ignore", divide="ignore"):
        V = np.where(N > 1, n1 * n0 * m1 * (N - m1) / (N ** 2 * (N - 1)), 0.0)
    Vs = V.sum()
    if Vs <= 0:
        chi2, p = 0.0, 1.0
    else:
        chi2 = float(max(abs(np.sum(a - E)) - 0.5, 0.0) ** 2 / Vs)
        p = float(sst.chi2.sf(chi2, 1))
    return rd, var, chi2, p, w


def cmh_by_category(frame: pd.DataFrame, group_cols: list[str], bins: int, confidence: float) -> dict:
    """Per category (one value of one group column, against the rest of that column):
    the MH risk difference of selection within score strata, a normal interval with
    Sato's variance (Bonferroni over categories), CMH χ² p-values with Holm, and the
    per-stratum rates with each stratum's contribution to the MH difference."""
    strat, edges = score_strata(frame["score"].to_numpy(float), bins)
    K = int(strat.max()) + 1
    sel = frame["selected"].to_numpy(int)
    cats = categories(frame, list(group_cols), depth=1)
    G = max(len(cats), 1)
    z = sst.norm.ppf(1 - (1 - confidence) / (2 * G))
    rows, srows = [], []
    for cat in cats:
        m = cat.mask
        a = np.bincount(strat[m], weights=sel[m], minlength=K)
        n1 = np.bincount(strat[m], minlength=K)
        c = np.bincount(strat[~m], weights=sel[~m], minlength=K)
        n0 = np.bincount(strat[~m], minlength=K)
        rd, var, chi2, p, _ = mantel_haenszel(a, n1, c, n0)
        if not np.isfinite(rd):
            continue
        half = z * math.sqrt(var)
        lo, hi = max(rd - half, -1.0), min(rd + half, 1.0)
        alo, ahi = _abs_bounds(lo, hi)
        rows.append({"attribute": cat.attribute, "category": cat.value, "n": cat.size, "rd_mh": rd,
                     "rd_lo": lo, "rd_hi": hi, "abs_rd_lo": float(alo), "abs_rd_hi": float(ahi),
                     "cmh_chi2": chi2, "cmh_p": p})
        ok = (n1 > 0) & (n0 > 0)
        N = n1 + n0
        W = np.sum(np.where(ok, n1 * n0 / np.maximum(N, 1), 0.0))
        for s in np.flatnonzero(ok):
            r_in, r_out = a[s] / n1[s], c[s] / n0[s]
            srows.append({"category": cat.name, "stratum": int(s),
                          "score_range": (f"[{edges[s]:.4g}, {edges[s + 1]:.4g}]" if len(edges) > K
                                          else f"{edges[s]:.4g}"),
                          "n_in": int(n1[s]), "n_out": int(n0[s]), "rate_in": r_in, "rate_out": r_out,
                          "contribution": float((n1[s] * n0[s] / N[s]) * (r_in - r_out) / W)})
    table = pd.DataFrame(rows)
    if not table.empty:
        table["holm_reject"] = holm(table["cmh_p"].to_numpy(), 1 - confidence)
    strata = pd.DataFrame(srows)
    if not strata.empty:
        strata = strata.assign(_a=strata["contribution"].abs()).sort_values(
            ["_a"], ascending=False, kind="stable").drop(columns="_a").reset_index(drop=True)
    else:
        strata = pd.DataFrame(columns=["category", "stratum", "score_range", "n_in", "n_out", "rate_in",
                                       "rate_out", "contribution"])
    method = (f"Mantel–Haenszel risk difference over {K} score strata, Sato variance, normal interval, "
              f"bonferroni over {G} categories; CMH chi-square (continuity-corrected) with Holm")
    return {"table": table, "strata": strata, "bin_edges": edges, "method": method}


# ---------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------

class Determinism(Check):
    id = "determinism"
    title = "Determinism (is the allocator randomized?)"
    summary = "Is the output identical across draws? A deterministic allocator cannot be anonymous (seed 002 Prop 7)."
    definition = ("Draws the allocator repeatedly on the same inputs (identical claims, generated claims, the data) "
                  "and measures how often the outcome differs from the most common one. A deterministic allocator "
                  "returns the same outcome every time; it then cannot be anonymous or stable (seed 002, Prop 7) and "
                  "must break ties by position. The check passes when the allocator randomizes (varies in at least "
                  "min_variation of draws on some input) and fails when it varies less, with confidence.")
    kinds = ("selection", "ranking")
    sources = ("allocator",)
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
        if kind == "ranking":
            m = _prediction_columns(ctx)
            insts.append(Instance(f"determinism: identical prediction rows (n={n_eq})", scores=np.full(n_eq, 0.5),
                                  predictions=np.full((n_eq, m), 1.0 / m)))
        else:
            insts.append(Instance(f"determinism: equal claims (n={n_eq})", scores=np.full(n_eq, 0.5),
                                  k=ctx.selection_k(n_eq)))
        insts[0] = _attach_rows(ctx, insts[0], rng, identical=True)
        insts.append(_generated_instance(ctx, kind, max(n_eq, 10) if kind == "selection" else n_eq, rng,
                                         "determinism: generated claims"))
        d = _data_instance(ctx, kind, 200 if kind == "selection" else 12, rng, "determinism")
        if d is not None:
            insts.append(d)
        B = ctx.max_draws(max_draws)
        conf = 1 - ctx.alpha / len(insts)
        rows = []
        for j, inst in enumerate(insts):
            dr = ctx.sampler.draw(inst, B, f"{self.id}/{j}")
            key = dr if kind == "ranking" else np.sort(dr, axis=1)
            uniq, inv, cnt = np.unique(key, axis=0, return_inverse=True, return_counts=True)
            mode = int(np.argmax(cnt))
            differ = int(B - cnt[mode])
            lo, hi = proportion_ci(differ, B, conf)
            rows.append({"input": inst.label, "draws": B, "distinct_outcomes": int(len(uniq)),
                         "differ_from_mode": differ, "variation": differ / B, "lo": lo, "hi": hi,
                         "mode": uniq[mode].tolist()})
        table = pd.DataFrame(rows)
        best = table.iloc[int(np.argmax(table["lo"].to_numpy() + 1e-9 * table["variation"].to_numpy()))]
        stat = Statistic("max_variation", float(table["variation"].max()),
                         (float(table["lo"].max()), float(table["hi"].max())), tolerance=float(min_variation),
                         method=f"clopper-pearson, bonferroni over {len(insts)} inputs", violation="below")
        total = int(B * len(insts))
        if table["distinct_outcomes"].max() == 1:
            first = table.iloc[0]
            det = (f"Deterministic in {total} draws: every input gave one outcome every time (e.g. {first['mode']} on "
                   f"'{first['input']}'), so the share of varying draws is at most {stat.ci[1]:.4f}; such an "
                   f"allocator breaks ties by position and cannot be anonymous (seed 002 Prop 7).")
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
# obliviousness
# ---------------------------------------------------------------------------

def seed004_pool(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Seed 004's simulation pool: two populations of sizes 2:1, scores ``N(μ_j, 1)``
    with ``μ_j ~ N(0, 1)``. Returns (scores, population labels 'P1'/'P2').

    Decision: the raw scores are then mapped by one common increasing affine map into
    [0.05, 1] (claims of seed 000's allocators must be positive). A common increasing
    map changes no empirical CDF value, so obliviousness is unaffected."""
    n1 = int(round(2 * n / 3))
    mu = rng.normal(0, 1, 2)
    s = np.concatenate([rng.normal(mu[0], 1, n1), rng.normal(mu[1], 1, n - n1)])
    s = 0.05 + 0.95 * (s - s.min()) / max(float(s.max() - s.min()), 1e-12)
    pop = np.array(["P1"] * n1 + ["P2"] * (n - n1))
    return np.round(s, 4), pop


def ecdf_preserving_transforms(scores: np.ndarray, pops: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Strictly increasing transforms of each population's scores (so every
    within-population empirical CDF value is kept) that reorder the populations:
    each population (up to three) lifted above all others, then a non-linear map
    (exp for the first population, cube for the next, alternating)."""
    s = np.asarray(scores, float)
    labels = sorted(np.unique(pops).tolist())
    span = float(s.max() - s.min()) + 1.0
    out = []
    for lab in labels[:3]:
        m = pops == lab
        t = s.copy()
        t[m] = s[m] + span + 1.0
        out.append((f"population {lab} lifted above the others (x → x + {span + 1.0:.3g})", t))
    t = s.copy()
    for j, lab in enumerate(labels):
        m = pops == lab
        z = (s[m] - s.min()) / span          # in [0, 1)
        t[m] = np.exp(3 * z) * (j + 1) if j % 2 == 0 else (2 * z - 1) ** 3 + 2 * j
    out.append(("non-linear per population (exp / cube)", t))
    return out


class Obliviousness(Check):
    id = "obliviousness"
    title = "Obliviousness (seed 004 Def 2.6)"
    summary = "Selection depends on within-population empirical CDF values only, not on raw scores (seed 004 Def 2.6)."
    definition = ("An allocator is oblivious when inputs that induce the same empirical CDF values within each "
                  "population get the same outcome distribution (seed 004, Def 2.6). The audit applies strictly "
                  "increasing transforms to each population's raw scores — they keep every within-population "
                  "rank, but reorder individuals across populations — and compares each person's selection chance "
                  "before and after, with intervals simultaneous over people, transforms and looks.")
    kinds = ("selection",)
    sources = ("allocator",)
    default = False
    params = {
        "population": Param("", "group column naming the populations (default: the data's first group column)",
            type=str),
        "tau": Param(0.05, "tolerated difference in chance (absolute)", type=float, min=0, max=1),
        "n": Param(30, "pool size when generating seed 004's two-population pools (no data)", type=int, min=2),
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
        inst = _data_instance(ctx, "selection", int(max_n), rng, "obliviousness") if ctx.population else None
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
            inst = Instance(f"obliviousness: seed 004 pool (n={n}, populations 2:1)", scores=s,
                            k=ctx.selection_k(int(n)), groups=pd.DataFrame({col: pops}))
            where = "seed 004 pool, populations P1/P2"
        if not _wants(ctx, "groups"):
            inst = inst.replace(groups=None)
        if _wants(ctx, "features") and inst.features is None:
            inst = _attach_rows(ctx, inst, rng)
        if len(np.unique(pops)) < 2:
            return self.result("skipped", f"Skipped: only one population in '{col}'.")
        study = _Study(ctx, "selection", float(tau))
        a = study.stream(inst, f"{self.id}/base")
        for j, (desc, t) in enumerate(ecdf_preserving_transforms(inst.scores, pops)):
            lab = f"obliviousness transform {j + 1}: {desc} ({where}, n={inst.n})"
            ti = inst.replace(label=lab, scores=t)
            study.add(_Comparison("transform", lab, a, study.stream(ti, f"{self.id}/t/{j}"),
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
                  "worst_transform_members": _member_table("selection", comp, inst.scores, inst.groups)}
        return self.judged(stat, msgs, draws, evidence=evidence, tables=tables, method=stat.method)
