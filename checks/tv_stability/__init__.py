"""``tv_stability`` (Devic et al.; SPEC §4).

``tv_stability`` — a ranking function R is (L, δ)-stable (Def 3; Def 20 with δ > 0) if
for all prediction matrices P, P′ (entry-wise norms)::

    ‖R(P) − R(P′)‖_∞ ≤ L · ‖P − P′‖₁ + δ

where R(P) is the n×n position-marginal matrix. For a selector, R is the vector of
inclusion probabilities π and P the claims c. The property quantifies over *all*
pairs, so sampling can only refute it: a ``pass`` reads "no violation in N certified
probes".

How it works — a *finder* proposes pairs, a *tester* certifies each one (the two
halves of DP-Auditorium):

Finder (screening draws on their own streams; no statement rests on them)
  - random perturbations of the audited inputs (the ``--data`` predictions ``p_*`` /
    scores, or generated random prediction matrices / claims): a few rows moved
    part of the way toward random rows;
  - extreme moves (:func:`fairaudit.paired_draws.extreme_moves`): one row moved to a
    vertex of the simplex, all of one label's mass moved to any other label (adjacent or
    not), one row replaced by another of the input (the data's rows as anchors), the same
    on the input's vertex configuration, and every row at one vertex but one moved
    between two others (Devic et al.'s Prop 14 pair: UA's ratio ½); each screened on its own
    stream, the ``EXTREME_CERTIFIED`` most violating certified;
  - bisection (Prop 7's argument): along the segment from an input to another whose
    output differs (two individuals' rows swapped; an independent random input), keep
    the half whose screened ratio is larger. A deterministic ranker's jump survives
    every halving, so the ratio doubles each step; the walk stops when the pair
    could no longer be certified (L·‖ΔP‖₁ below the half-width reachable with
    ``max_draws``) unless the screened violation is already certain;
  - a Hypothesis search over small instances (n ≤ ``search_n``; m the data's number of
    labels, else 2 or 3; probabilities
    on a 1/10 grid, one row moved by ε) maximising the screened lower-bound ratio
    (``hypothesis.target``) and, when a screened violation exists, shrinking it to a
    minimal pair (``hypothesis.find``; seeded from ``--seed``, ``database=None``).

Tester (certification, fresh draws)
  Each probe (P, P′) is drawn B times on *one* stream for both inputs — common random
  numbers: draw j of P and draw j of P′ use the same generator, so for rankers that
  spend their randomness the same way (UA, mixtures, Plackett–Luce) the outcomes are
  coupled and the paired differences ``D_j = 1[σ_j(i)=p] − 1[σ′_j(i)=p]`` have small
  variance. The draws stay i.i.d. across j, so the statistics are valid for any
  ranker. For every entry, ``R − R′ = Pr[D=+1] − Pr[D=−1]``; each of the two
  probabilities gets a Clopper–Pearson interval, and the family is Bonferroni over
  2 × entries × probes, so every probe's interval on ``‖R(P) − R(P′)‖_∞`` holds
  simultaneously at ``--confidence``. B is chosen per probe, from a pilot on another
  stream, so that the half-width is about ``resolution · L·‖ΔP‖₁`` (or half the
  screened distance to the bound, if larger), between 512 and ``max_draws``.

A certified ``‖ΔR‖∞ ≥ 0.05`` over ``‖ΔP‖₁ ≤ 1e-4`` is reported as "unbounded
(discontinuity at …)": the ratio of such a pair only reflects the bisection's depth.

Statistic: the worst certified ratio ``(‖ΔR‖_∞ − δ) / ‖ΔP‖₁`` over probes, with the
interval [max of lower ratios, max of upper ratios]; judged against L (fail when some
probe's lower ratio exceeds L, pass when every upper ratio is ≤ L). Also reported: the
ranking-level total-variation lower bound the marginals give — the position of one
individual is a function of the ranking, so ``TV(R(P), R(P′)) ≥ max_i ½ Σ_p |ΔR_ip|``
(selection: ``≥ max(max_i |Δπ_i|, Σ_i |Δπ_i| / 2k)``) — with its certified lower bound.

Inputs honour the target and the data (tested): every generated or searched matrix has
the data's number of labels; when the allocator takes ``groups`` or ``features``, each
input carries rows of them (the data's rows for the data's individuals, else rows drawn
from the data or a synthetic ``group``/``x``), the same for P and P′.

Decisions where SPEC/seed are silent (tested): positions are 0-indexed; predictions
with data larger than ``max_n`` rows are audited on a seeded random subset of
``max_n`` individuals; ‖ΔP‖₁ for selectors uses the raw claims (no rescaling);
deterministic rankers need no special case (their paired differences have zero
variance and certify with few draws).
"""
from __future__ import annotations

import hashlib
import math
import random
from dataclasses import replace

import numpy as np
import pandas as pd

from fairaudit.check import Check, Param
from fairaudit.result import Statistic, decide
from fairaudit.stats import per_member_confidence
from fairaudit.instance import Instance
from fairaudit.inputs import data_instance, wants
from fairaudit.checks.tv_stability.individual_fairness import DEFINITION as IF_DEFINITION, PairChanges, parse_scale, \
    probes as if_probes
from fairaudit.counterfactual import row_pair
from fairaudit.paired_draws import PairSpace, extreme_moves, summarise_pair
from fairaudit.ua import validate_predictions

MIN_DRAWS = 512
EXTREME_CERTIFIED = 2   # extreme moves certified (the best screened ones)
JUMP_CHANGE, JUMP_L1 = 0.05, 1e-4   # a certified ‖ΔR‖∞ this large over ‖ΔP‖₁ this small reads as a discontinuity
CHUNK = 256


def _required_draws(hw: float, var: float, ell: float) -> int:
    """Draws so that a Clopper–Pearson-pair half-width is about ``hw`` (normal/Poisson
    approximation: z·√(V/B) + ℓ/B with z² = 2ℓ)."""
    hw = max(hw, 1e-9)
    z = math.sqrt(2 * ell)
    s = z * math.sqrt(max(var, 0.0))
    root = (s + math.sqrt(s * s + 4 * hw * ell)) / (2 * hw)
    return int(math.ceil(root * root))


def _round_up(b: int) -> int:
    return int(math.ceil(b / CHUNK) * CHUNK)


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(np.asarray(a, dtype=float)).tobytes())
    return h.hexdigest()[:12]


# ---------------------------------------------------------------------------
# tv_stability
# ---------------------------------------------------------------------------

class TVStability(Check):
    id = "tv_stability"
    # -- words for readers (the report and the terminal read these from the registry) --
    statistic_labels = {
        'worst_certified_ratio': 'largest certified change ratio',
        'max_lipschitz_ratio': 'largest change of chance per unit of feature distance',
        'max_ratio_adversarial_steps': 'largest change of chance per unit distance (adversarial steps)',
        'max_ratio_data_neighbours': 'largest change of chance per unit distance (data neighbours)',
    }
    headlines = {
        'worst_certified_ratio': ('A small change of the inputs moves the outcome chances by {est} times the size of the change',
                                  'the allowed factor {tol}'),
    }
    column_labels = {
        'move': 'move',
        'other': 'other individual',
        'change': 'change of chance',
        'draws_per_input': 'draws per input',
        'l1_change': 'input change ‖ΔP‖₁',
        'max_marginal_change': 'largest change of a chance',
        'tv_lb_certified': 'total-variation distance (certified lower bound)',
        'tv_lower_bound': 'total-variation distance (lower bound)',
    }
    title = "TV-stability (small input changes, small outcome changes)"
    summary = ("Searches for input pairs whose outcome marginals move more than L·‖P − P′‖₁ + δ "
               "(Devic et al., Def 3/20), certifying each probe.")
    definition = ("A ranking function is L-stable when changing the predictions by ‖P − P′‖₁ (summed absolute "
                  "change) changes no individual's chance of any position by more than L·‖P − P′‖₁ (plus δ for "
                  "approximate stability); for selectors, chances of being selected against changes of claims. "
                  "Stability can only be refuted by examples: fairaudit searches for violating pairs (random "
                  "perturbations, bisection toward jumps, a Hypothesis search with shrinking) and certifies every "
                  "probe with intervals that hold simultaneously; a pass means no violation was found in the "
                  "certified probes. The uncertainty-aware ranking is 1-stable; no non-constant deterministic "
                  "ranking is stable.")
    kinds = ("ranking", "selection", "decision")
    sources = ("allocator",)
    table_titles = {
        "probes": "Probes: change of the outcome chances against the change of the inputs",
        "pairs": "Pairs of people: change of chance per unit of feature distance",
    }
    params = {
        "L": Param(1.0, "Lipschitz constant L of ‖R(P) − R(P′)‖_∞ ≤ L‖P − P′‖₁ + δ", type=float, min=0),
        "delta": Param(0.0, "additive slack δ (approximate stability, Def 20)", type=float, min=0),
        "probes": Param(8, "random-perturbation probes of the audited inputs", type=int, min=0),
        "bisections": Param(3, "bisection walks toward jumps (Prop 7)", type=int, min=0),
        "search_examples": Param(80, "Hypothesis examples in the adversarial search (0 = off)", type=int, min=0),
        "search_n": Param(4, "largest number of individuals in the Hypothesis search", type=int, min=2),
        "screen_draws": Param(256, "draws per input when screening candidate pairs", type=int, min=1),
        "max_draws": Param(20000, "most draws per input of a certified probe", type=int, min=1),
        "resolution": Param(0.25, "target interval half-width as a fraction of L·‖P − P′‖₁",
            type=float, min=0, min_open=True),
        "max_n": Param(50, "audit data with more individuals on a seeded subset of this size", type=int, min=2),
        "max_depth": Param(24, "most halvings in a bisection walk", type=int, min=1),
        "step": Param(0.25, "decision rules: adversarial step, in scale units of one column", type=float, min=0,
            min_open=True),
        "scale": Param({}, "decision rules: per-column scale COL=S,... (default: each column's standard deviation)",
            type=object, parse=parse_scale),
    }

    def skip_reason(self, ctx):
        if ctx.kind == "decision" and (ctx.population is None or not ctx.population.feature_cols):
            return "individual fairness compares people by their numeric features: give --data with feature columns"
        return None

    # ------------------------------------------------------------------
    def run(self, ctx, L, delta, probes, bisections, search_examples, search_n, screen_draws, max_draws,
            resolution, max_n, max_depth, step, scale):
        if ctx.kind == "decision":
            return self._run_individual(ctx, L, delta, max_draws, 4 * int(max_n), step, scale)
        space = self.setup(ctx, L=L, delta=delta, screen_draws=screen_draws, max_draws=max_draws,
                           resolution=resolution, max_depth=max_depth)
        rng = ctx.rng(f"{self.id}/inputs")
        bases, notes = self._bases(ctx, space, rng, int(max_n))
        cands = []
        # 1. random perturbations of the audited inputs
        for j in range(int(probes)):
            name, x = bases[j % len(bases)]
            y_full, t = self._perturb(space, x, rng, j)
            cands.append({"source": "perturbation", "label": f"perturbation {j + 1} of {name}", "x": x,
                          "y": space.normalise(x + t * (y_full - x)), "y_full": y_full, "t": t})
        # 1b. moves to and between vertices of the simplex, transfers between any two labels, the inputs' own
        # rows as anchors — screened on their own streams, the most violating few certified
        ext = []
        for bi, (name, x) in enumerate(bases):
            for lab, p, q in extreme_moves(space, x, rng):
                ext.append((f"{lab} (on {name})", p, q))
        scored = []
        # the parts' expected draws (for the progress bar only): screening pairs, bisection walks of
        # about 6 screened pairs, the search's screened pairs, certification (pilot + B ≈ 2·MIN_DRAWS)
        sd = self.screen_draws
        n_cands = int(probes) + EXTREME_CERTIFIED + int(bisections) + 1
        shares = [2 * sd * len(ext), 12 * sd * int(bisections), 2 * sd * int(search_examples),
                  2 * n_cands * (sd + 2 * MIN_DRAWS)]
        ctx.phase("screening extreme moves", 1, 4, shares)
        for e, (lab, p, q) in enumerate(ext):
            ctx.step("extreme move", e + 1, len(ext))
            X, Y = self._draw_pair(p, q, f"{self.id}/screen/extreme/{e}", self.screen_draws, lab, screening=True)
            s = summarise_pair(space, p, q, X, Y, per_member_confidence(0.99, 2 * space.entries(len(p))))
            scored.append((self._score(s, float(np.abs(p - q).sum())), e))
        for (_, e) in sorted(scored, key=lambda t: (-t[0][0], -t[0][1], t[1]))[:EXTREME_CERTIFIED]:
            lab, p, q = ext[e]
            cands.append({"source": "extreme move", "label": lab, "x": p, "y": q})
        # 2. bisection toward jumps
        ctx.phase("bisection", 2, 4)
        for b in range(int(bisections)):
            ctx.step("bisection", b + 1, int(bisections))
            name, x0 = bases[b % len(bases)]
            x1, how = self._far_point(space, x0, rng, b)
            x, y, info = self._bisect(space, x0, x1, f"{self.id}/bisect/{b}")
            cands.append({"source": "bisection",
                          "label": f"bisection {b + 1} on {name} toward {how} (t ∈ [{info['a']:.9g}, {info['b']:.9g}])",
                          "x": x, "y": y, "search": info})
        # 3. Hypothesis search
        ctx.phase("search for a jump", 3, 4)
        if int(search_examples) > 0:
            found = self._hypothesis(space, int(search_examples), int(search_n))
            if found is not None:
                x, y, info = found
                cands.append({"source": "hypothesis", "label": info["label"], "x": x, "y": y, "search": info})
        cands = [c for c in cands if np.abs(c["x"] - c["y"]).sum() > 0]
        return self._certify(ctx, space, cands, notes)

    def _run_individual(self, ctx, L, delta, max_draws, max_n, step, scale):
        """Decision rules: individual fairness (:mod:`fairaudit.checks.tv_stability.individual_fairness`)."""
        inst = data_instance(ctx, "decision", max_n, ctx.rng(self.id), "individual-fairness probes")
        cols, s, moved, pairs = if_probes(inst, tuple(ctx.target.columns), scale, step)
        if not cols:
            return self.result("skipped", "Skipped: the rule reads no numeric feature column to move.")
        items = [(inst, f"{self.id}/individual")] + [(m, f"{self.id}/individual") for _, _, m in moved]
        changes = PairChanges(inst.n, moved, pairs, step, L, delta, ctx.confidence)    # carried across looks
        draws = ctx.sampler.sample_until_many(items, lambda d: changes.update(d)[1] != "inconclusive",
                                              ctx.max_draws(max_draws), first=256)
        comps, verdict = changes.update(draws)
        table = changes.table()
        worst = table.sort_values(["ratio_lo", "ratio"], ascending=False).iloc[0]
        failing = [c for c in comps.values() if c.verdict() == "fail"]   # the component that decides is the headline
        stat = max(failing, key=lambda c: c.ci[0]) if failing else comps.get("adversarial_steps", next(iter(comps.values())))
        rows = [row_pair(inst, inst, int(worst["individual"]))[0], row_pair(inst, inst, int(worst["other"]))[0]]
        if worst["probe"] == "adversarial step":
            mv = next(m for c, sg, m in moved if f"{c} {'+' if sg > 0 else '−'}{step:g} scale" == worst["move"])
            rows[1] = row_pair(inst, mv, int(worst["individual"]))[1]
        ex = (f"{worst['probe']} ({worst['move']}, distance {worst['distance']:.3g}): the chance of a yes changes by "
              f"{abs(worst['change']):.3f}, ratio {worst['ratio']:.2f} [{worst['ratio_lo']:.2f}, {worst['ratio_hi']:.2f}]")
        if (round(worst["ratio"], 2), round(worst["ratio_lo"], 2), round(worst["ratio_hi"], 2)) != tuple(
                round(v, 2) for v in (stat.estimate, *stat.ci)):
            # the statistic (the largest over one kind of probe) is not this pair's own ratio
            kind = "adversarial steps" if stat.name.endswith("adversarial_steps") else "data neighbours"
            ex += f"; the largest ratio over the {kind} is {stat.estimate:.2f}, interval [{stat.ci[0]:.2f}, {stat.ci[1]:.2f}]"
        msgs = {"fail": f"Not individually fair at L={L:g}: similar people get chances further apart than L × their "
                        f"distance; {ex}.",
                "pass": f"Every adversarial step and every pair of data neighbours has chances within L={L:g} × the "
                        f"distance (+δ), with confidence; the largest is {ex}.",
                "inconclusive": f"Not decided at L={L:g}; the largest ratio so far: {ex}."}
        evidence = {"counterexample": {"rows": rows, "probe": worst["probe"], "move": worst["move"]},
                    "scales": dict(zip(cols, map(float, s))), "individuals": inst.n}
        top = table.sort_values("ratio_lo", ascending=False).head(12)
        res = self.result(verdict, msgs[verdict], statistic=stat, components=comps, draws=changes.seen,
                          evidence=evidence, tables={"pairs": top}, method=stat.method)
        return replace(res, definition=IF_DEFINITION)

    def setup(self, ctx, L=1.0, delta=0.0, screen_draws=256, max_draws=20000, resolution=0.25, max_depth=24):
        """Bind the context and parameters (also used by tests to certify given pairs
        with :meth:`certify`)."""
        space = PairSpace(ctx.kind, ctx)
        self.space, self.ctx = space, ctx
        self.L, self.delta = float(L), float(delta)
        self.screen_draws = _round_up(max(int(screen_draws), 64))
        self.max_draws = max(ctx.max_draws(max_draws), MIN_DRAWS)
        self.resolution = float(resolution)
        self.max_depth = int(max_depth)
        return space

    def certify(self, pairs, label="given pair"):
        """Certify explicit pairs [(P, P′), …] after :meth:`setup` (the tester alone)."""
        cands = [{"source": "given", "label": f"{label} {j + 1}", "x": self.space.normalise(x),
                  "y": self.space.normalise(y)} for j, (x, y) in enumerate(pairs)]
        return self._certify(self.ctx, self.space, cands, [])

    # -- inputs ------------------------------------------------------------
    def _bases(self, ctx, space, rng, max_n):
        notes = []
        pop = ctx.population
        x = None
        if pop is not None:
            if space.kind == "ranking" and pop.predictions is not None:
                x = validate_predictions(pop.predictions)
            elif space.kind == "selection" and pop.scores is not None:
                x = np.asarray(pop.scores, dtype=float)
            elif space.kind == "ranking":
                notes.append(f"{pop.path} has no prediction columns p_*; generated prediction matrices were used")
        if x is not None:
            name = pop.path or "data"
            keep = np.arange(len(x))
            if len(x) > max_n:
                keep = np.sort(rng.choice(len(x), size=max_n, replace=False))
                notes.append(f"{name} has {len(x)} individuals; probes use a seeded random subset of {max_n} "
                             f"(rows {keep[:10].tolist()}{'…' if max_n > 10 else ''})")
                x = x[keep]
            rows = {k: v.iloc[keep].reset_index(drop=True) for k, v in (("groups", pop.groups), ("features", pop.features))
                    if v is not None and wants(ctx, k)}
            space.set_rows(len(x), Instance("data rows", scores=np.zeros(len(x)), **rows))
            if space.kind == "selection" and space.k(len(x)) >= len(x):
                x = None
                notes.append("k ≥ n on the data; generated claims were used")
            else:
                return [(name, space.normalise(x))], notes
        bases = []
        shapes = ([(5, space.m or 2), (6, space.m or 3), (8, space.m or 3)] if space.kind == "ranking"
                  else [(8, 1), (12, 1), (20, 1)])
        for n, m in shapes:
            if space.kind == "selection":
                while space.k(n) >= n:
                    n *= 2
            x = space.normalise(space.random_input(rng, n, m))
            bases.append((f"random input n={n}" + (f", m={m}" if space.kind == "ranking" else f", k={space.k(n)}"), x))
        return bases, notes

    def _perturb(self, space, x, rng, j):
        n = len(x)
        rows = rng.choice(n, size=1 + int(rng.integers(0, max(1, min(3, n // 2)))), replace=False)
        t = (0.05, 0.15, 0.4)[j % 3]
        y = x.copy()
        if space.kind == "ranking":
            y[rows] = rng.dirichlet(np.full(x.shape[1], 0.7), size=len(rows))
        else:
            y[rows] = np.clip(x[rows] + rng.choice([-1.0, 1.0], size=len(rows)) * np.maximum(x[rows], 0.1), 1e-6, None)
        # the probe is x + t·(y − x); t grows at certification if the pair is too close
        # to be certified within max_draws
        return space.normalise(y), t

    def _far_point(self, space, x0, rng, b):
        n = len(x0)
        if b % 2 == 0 and n >= 2:
            # swap the two individuals whose rows differ most: an anonymous ranker swaps
            # their outcomes, a deterministic one must jump somewhere on the way
            key = x0[:, -1] if space.kind == "ranking" else x0
            i, j = int(np.argmax(key)), int(np.argmin(key))
            if i == j:
                i, j = 0, 1
            x1 = x0.copy()
            x1[[i, j]] = x0[[j, i]]
            if np.abs(x1 - x0).sum() > 0:
                return x1, f"individuals {i} and {j} swapped"
        m = x0.shape[1] if x0.ndim == 2 else 1
        return space.normalise(space.random_input(rng, n, m)), "an independent random input"

    # -- screening ------------------------------------------------------------
    def _screen_ell(self, entries):
        return math.log(2 * 2 * entries / 0.01)

    def _draw_pair(self, x, y, stream, B, label, screening=False):
        """B paired draws of (P, P′) on one stream (common random numbers). When
        screening a non-vectorised allocator, 32 draws that are all identical on both
        inputs (a deterministic allocator) stand for the B (screening only: certified
        probes always use the planned B)."""
        sp = self.space
        ip, iq = sp.instance(f"{label} (P)", x), sp.instance(f"{label} (P′)", y)
        draw = self.ctx.sampler.draw_streams      # P and P′ on one stream, drawn together
        if screening and not self.ctx.target.vectorized and B > 32:
            X, Y = draw([(ip, stream, 0, 32), (iq, stream, 0, 32)])
            if (X == X[0]).all() and (Y == Y[0]).all():
                return X, Y
            X2, Y2 = draw([(ip, stream, 32, B - 32), (iq, stream, 32, B - 32)])
            return np.concatenate([X, X2]), np.concatenate([Y, Y2])
        X, Y = draw([(ip, stream, 0, B), (iq, stream, 0, B)])
        return X, Y

    def _score(self, s, d):
        """(screened lower-bound ratio, screened ratio) of a pair."""
        return ((s["delta_lo"] - self.delta) / d, (s["delta"] - self.delta) / d)

    def _bisect(self, space, x0, x1, stream):
        """Walk toward the largest screened ratio by halving the segment x0 → x1. All points
        of one walk share a stream, so every pair along it is coupled."""
        D = float(np.abs(x1 - x0).sum())
        n = len(x0)
        conf = per_member_confidence(0.99, 2 * space.entries(n))
        cache = {}

        def at(t):
            if t not in cache:
                x = space.normalise((1 - t) * x0 + t * x1) if t not in (0.0, 1.0) else (x0 if t == 0.0 else x1)
                inst = space.instance(f"bisection point t={t:.6g}", x)
                X = self.ctx.sampler.draw(inst, 32 if not self.ctx.target.vectorized else self.screen_draws, stream)
                if len(X) < self.screen_draws and not (X == X[0]).all():
                    X = np.concatenate([X, self.ctx.sampler.draw(inst, self.screen_draws - 32, stream, start=32)])
                cache[t] = (x, X)
            return cache[t]

        def pair(a, b):
            (xa, Xa), (xb, Xb) = at(a), at(b)
            B = min(len(Xa), len(Xb))                  # draws are aligned by index on one stream
            s = summarise_pair(space, xa, xb, Xa[:B], Xb[:B], conf)
            d = float(np.abs(xb - xa).sum())
            return s, d

        a, b = 0.0, 1.0
        s, d = pair(a, b)
        best = (self._score(s, d), a, b)
        ell = math.log(2 * 2 * space.entries(n) * 64 / max(self.ctx.alpha, 1e-6))
        steps = 0
        for _ in range(self.max_depth):
            mid = 0.5 * (a + b)
            s1, d1 = pair(a, mid)
            s2, d2 = pair(mid, b)
            if d1 <= 0 or d2 <= 0:
                break
            c1, c2 = self._score(s1, d1), self._score(s2, d2)
            (s_, d_, a_, b_, c_) = (s1, d1, a, mid, c1) if c1 >= c2 else (s2, d2, mid, b, c2)
            violating = s_["delta_lo"] > self.L * d_ + self.delta
            hw_floor = _required_hw(self.max_draws, s_["var"], ell)
            certifiable = self.L * d_ * self.resolution >= hw_floor
            if not (violating or certifiable):
                break
            a, b = a_, b_
            steps += 1
            if c_ > best[0]:
                best = (c_, a, b)
        (_, a, b) = best
        x, y = at(a)[0], at(b)[0]
        return x, y, {"a": a, "b": b, "steps": steps, "segment_l1": D, "screen_draws": self.screen_draws}

    # -- Hypothesis search -----------------------------------------------------
    def _hypothesis(self, space, examples, search_n):
        from hypothesis import HealthCheck, find, settings, strategies as st, target
        from hypothesis.errors import NoSuchExample, Unsatisfiable

        kind = space.kind
        grid = 10

        @st.composite
        def pairs(draw):
            if kind == "ranking":
                n = draw(st.integers(2, max(2, search_n)))
                m = draw(st.just(space.m) if space.m else st.integers(2, 3))
                rows = draw(st.lists(st.lists(st.integers(0, grid), min_size=m, max_size=m),
                                     min_size=n, max_size=n))
                x = np.array(rows, dtype=float)
                x[x.sum(axis=1) == 0, 0] = 1.0          # an all-zero row means "surely the worst label"
                x = x / x.sum(axis=1, keepdims=True)
                r = draw(st.integers(0, n - 1))
                to = draw(st.integers(0, m - 1))
                eps = draw(st.sampled_from([0.1, 0.03, 0.01, 0.003, 0.001, 0.3]))
                y = x.copy()
                y[r] = (1 - eps) * x[r] + eps * np.eye(m)[to]
                return x, y
            kmin = space.k(2)
            n = draw(st.integers(max(2, kmin + 1), max(kmin + 2, search_n + 2)))
            # claims on a grid in [0.1, 1]: all-zero claims leave most selectors undefined
            x = np.array(draw(st.lists(st.integers(1, grid), min_size=n, max_size=n)), dtype=float) / grid
            r = draw(st.integers(0, n - 1))
            eps = draw(st.sampled_from([0.1, 0.03, 0.01, 0.003, 0.001, 0.3]))
            sign = draw(st.sampled_from([1.0, -1.0]))
            y = x.copy()
            y[r] = max(0.0, x[r] + sign * eps)
            return x, y

        seen = {"best": None, "evaluated": 0}

        def screened(p):
            x, y = p
            d = float(np.abs(x - y).sum())
            if d <= 0 or (kind == "selection" and space.k(len(x)) >= len(x)):
                return None
            stream = f"{self.id}/search/{_digest(x, y)}"
            X, Y = self._draw_pair(x, y, stream, self.screen_draws, "search pair", screening=True)
            s = summarise_pair(space, x, y, X, Y, per_member_confidence(0.99, 2 * space.entries(len(x))))
            seen["evaluated"] += 1
            self.ctx.step("searched pair", min(seen["evaluated"], max(1, examples)), max(1, examples))
            score = self._score(s, d)
            # the reported best pair (when no violation is found) must be certifiable
            ell = math.log(2 * 2 * space.entries(len(x)) * 64 / max(self.ctx.alpha, 1e-6))
            ok = self.L * d * self.resolution >= _required_hw(self.max_draws, s["var"], ell)
            if ok and (seen["best"] is None or score > seen["best"][0]):
                seen["best"] = (score, x, y)
            return s, d, score

        def condition(p):
            out = screened(p)
            if out is None:
                return False
            s, d, score = out
            target(float(max(min(score[0], 1e6), -1e6)), label="screened lower-bound ratio")
            target(float(max(min(score[1], 1e6), -1e6)), label="screened ratio")
            return s["delta_lo"] > self.L * d + self.delta

        cfg = settings(database=None, max_examples=examples, deadline=None, derandomize=False,
                       suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
        shrunk = True
        try:
            x, y = find(pairs(), condition, settings=cfg, random=random.Random(int(self.ctx.config.seed)))
        except (NoSuchExample, Unsatisfiable):
            if seen["best"] is None:
                return None
            _, x, y = seen["best"]
            shrunk = False
        n = len(x)
        label = (f"Hypothesis search: {'shrunk violating' if shrunk else 'highest-ratio'} pair, n={n}"
                 + (f", m={x.shape[1]}" if x.ndim == 2 else ""))
        return x, y, {"label": label, "shrunk_violation": shrunk, "examples_evaluated": seen["evaluated"]}

    # -- certification ---------------------------------------------------------
    def _certify(self, ctx, space, cands, notes):
        if not cands:
            return self.result("inconclusive", "No probe pair could be formed from the inputs.", evidence={"notes": notes})
        fam = sum(2 * space.entries(len(c["x"])) for c in cands)
        member = per_member_confidence(ctx.confidence, fam)
        ell = math.log(2.0 / (1.0 - member))
        rows, sums = [], []
        total = 0
        ctx.phase("certifying", 4, 4)
        for j, c in enumerate(cands):
            ctx.step("certifying candidate", j + 1, len(cands))
            x, y = c["x"], c["y"]
            d = float(np.abs(x - y).sum())
            for attempt in range(8):
                # pilot on its own stream: sets B (and the size of a random perturbation) only
                Xp, Yp = self._draw_pair(x, y, f"{self.id}/pilot/{j}/{attempt}", self.screen_draws, c["label"],
                                         screening=True)
                sp = summarise_pair(space, x, y, Xp, Yp, per_member_confidence(0.99, 2 * space.entries(len(x))))
                Bp = len(Xp)
                fixed = (Xp == Xp[0]).all() and (Yp == Yp[0]).all()   # looks deterministic
                var = 0.0 if fixed else min(1.0, sp["var"] + 2 * math.sqrt(sp["var"] / Bp) + 3.0 / Bp)
                margin = abs(self.L * d + self.delta - sp["delta"])
                hw = max(self.resolution * self.L * d, 0.5 * margin)
                need = _required_draws(hw, var, ell)
                if need <= self.max_draws or "y_full" not in c or c["t"] >= 1.0:
                    break
                c["t"] = min(1.0, 2 * c["t"])
                y = c["y"] = space.normalise(x + c["t"] * (c["y_full"] - x))
                d = float(np.abs(x - y).sum())
            B = _round_up(min(max(need, MIN_DRAWS), self.max_draws))
            X, Y = self._draw_pair(x, y, f"{self.id}/certify/{j}", B, c["label"])
            c["drawn"] = (f"{self.id}/certify/{j}", X, Y)     # recorded for replay if this pair is shown
            total += 2 * B
            s = summarise_pair(space, x, y, X, Y, member)
            ratio = ((s["delta"] - self.delta) / d, (s["delta_lo"] - self.delta) / d, (s["delta_hi"] - self.delta) / d)
            verdict = decide((ratio[1], ratio[2]), self.L, "above")
            sums.append((c, s, d, ratio, verdict))
            rows.append({"probe": c["label"], "source": c["source"], "n": len(x), "l1_change": d,
                         "max_marginal_change": s["delta"], "mmc_lo": s["delta_lo"], "mmc_hi": s["delta_hi"],
                         "ratio": ratio[0], "ratio_lo": ratio[1], "ratio_hi": ratio[2],
                         "bound": self.L * d + self.delta, "tv_lower_bound": s["tv"], "tv_lb_certified": s["tv_lo"],
                         "draws_per_input": s["B"], "verdict": verdict})
        table = pd.DataFrame(rows)
        lo = float(table["ratio_lo"].max())
        hi = float(table["ratio_hi"].max())
        est = float(table["ratio"].max())
        method = (f"paired draws with common random numbers; Clopper–Pearson for Pr[ΔD=+1] and Pr[ΔD=−1], "
                  f"bonferroni over {fam} (2 × entries × {len(cands)} probes)")
        stat = Statistic("worst_certified_ratio", est, (lo, hi), tolerance=self.L, method=method, violation="above")
        # the pair to show: a certified violation with the fewest individuals (the shrunk
        # one), else the probe with the largest lower ratio
        fails = [i for i, r in enumerate(rows) if r["verdict"] == "fail"]
        if fails:
            w = min(fails, key=lambda i: (rows[i]["n"], -rows[i]["ratio_lo"]))
        else:
            w = max(range(len(rows)), key=lambda i: (rows[i]["ratio_lo"], rows[i]["ratio"]))
        c, s, d, ratio, verdict = sums[w]
        return self._finish(ctx, space, stat, table, c, s, d, ratio, notes, total, method, len(cands))

    def _finish(self, ctx, space, stat, table, c, s, d, ratio, notes, total, method, nprobes):
        L, dl = self.L, self.delta
        bound = f"{L:g}·‖ΔP‖₁" + (f" + {dl:g}" if dl else "")
        if space.kind == "ranking":
            i, p = s["worst_entry"]
            what = f"individual {i}'s chance of position {p + 1} (1 = top)"
            before, after = float(s["Rx"][i, p]), float(s["Ry"][i, p])
        else:
            (i,) = s["worst_entry"]
            p = None
            what = f"individual {i}'s chance of selection"
            before, after = float(s["Rx"][i]), float(s["Ry"][i])
        where = (f"on {c['label']}, changing the inputs by ‖ΔP‖₁ = {d:.4g} moves {what} from {before:.3f} to "
                 f"{after:.3f} (max change {s['delta']:.3f}, certified ≥ {s['delta_lo']:.3f}; ratio "
                 f"{ratio[0]:.3g}, interval [{ratio[1]:.3g}, {ratio[2]:.3g}]; the two {space.kind} distributions are "
                 f"≥ {s['tv_lo']:.3g} apart in total variation, certified)")
        top = table.loc[table["ratio_lo"].idxmax()]
        worst_txt = ""
        if top["probe"] != c["label"]:
            # the statistic is the worst probe, which need not be the (shrunk) pair shown
            worst_txt = (f" The largest certified ratio over the {nprobes} probes is ≥ {top['ratio_lo']:.3g} "
                         f"({top['probe']}, ‖ΔP‖₁ = {top['l1_change']:.2g}).")
        # a jump: a certified change of the outcome over an arbitrarily small change of the input — the ratio is
        # unbounded, and its figure only reflects how deep the bisection went
        jumps = table[(table["verdict"] == "fail") & (table["mmc_lo"] - dl >= JUMP_CHANGE) & (table["l1_change"] <= JUMP_L1)]
        head = ""
        if len(jumps):
            j = jumps.loc[jumps["l1_change"].idxmin()]
            head = (f" — unbounded (discontinuity at {j['probe']}: ‖ΔR‖∞ ≥ {j['mmc_lo']:.3g} certified for "
                    f"‖ΔP‖₁ = {j['l1_change']:.2g})")
            evidence_jump = {"probe": j["probe"], "l1_change": float(j["l1_change"]),
                             "max_marginal_change_certified": float(j["mmc_lo"])}
        msgs = {
            "fail": f"Not {L:g}-stable{f' with slack {dl:g}' if dl else ''}{head}: {where}, above {bound}.{worst_txt}",
            "pass": (f"No violation of ‖ΔR‖∞ ≤ {bound} in {nprobes} certified probes; the worst certified ratio is "
                     f"{stat.ci[1]:.3g} at most (estimate {stat.estimate:.3g}) against L = {L:g}."),
            "inconclusive": (f"No certified violation in {nprobes} probes, but not every probe could be certified "
                             f"within {bound}; the closest: {where}."),
        }
        n = len(c["x"])
        cx = {"P": np.round(c["x"], 12).tolist(), "P_prime": np.round(c["y"], 12).tolist(),
              "individual": int(i), "position": None if p is None else int(p) + 1,   # 1 = top
              "marginal_P": before, "marginal_P_prime": after, "l1_change": d,
              "max_marginal_change": {"estimate": s["delta"], "ci": [s["delta_lo"], s["delta_hi"]]},
              "ratio": {"estimate": ratio[0], "ci": [ratio[1], ratio[2]]}, "L": L, "delta": dl,
              "draws_per_input": s["B"], "source": c["source"]}
        evidence = {"counterexample": cx,
                    "worst_ratio": {"estimate": stat.estimate, "ci": list(stat.ci)},
                    "tv_lower_bound": {"estimate": s["tv"], "certified": s["tv_lo"],
                                       "note": "TV(R(P), R(P′)) ≥ max_i ½ Σ_p |ΔR_ip| (one individual's position is a "
                                               "function of the ranking)" if space.kind == "ranking" else
                                               "TV ≥ max(max_i |Δπ_i|, Σ|Δπ|/2k)"},
                    "probes": nprobes, "notes": notes, "search": c.get("search")}
        if head:
            evidence["discontinuity"] = evidence_jump
        if "drawn" in c:
            stream, X, Y = c["drawn"]
            who = [[int(i), int(p)]] if space.kind == "ranking" else [int(i)]
            recs = [ctx.draw_record(f"{c['label']} ({tag})", space.instance(f"{c['label']} ({tag})", v), stream, D,
                                    members=who) for tag, v, D in (("P", c["x"], X), ("P′", c["y"], Y))]
            evidence.update(ctx.replay_evidence(self.id, recs, (
                f"the marginal of individual {int(i)}" + (f" at position {int(p) + 1} (1 = top)" if p is not None else "")
                + " under P and under P′ (common random numbers: one stream for both)")))
        figs = []
        if space.kind == "ranking":
            both = np.concatenate([np.ravel(s["Rx"]), np.ravel(s["Ry"])])
            # short titles: long probe labels are cut by the figure's width (the full label is in the message)
            figs.append({"kind": "heatmap", "title": f"Position marginals of the worst pair ({c['source']}, n={n})",
                         "matrices": [np.round(s["Rx"], 4).tolist(), np.round(s["Ry"], 4).tolist()],
                         "subtitles": ["R(P)", "R(P′)"], "xlabel": "position (1 = top)", "ylabel": "individual", "x0": 1,
                         # one colour scale for both, so equal colours mean equal chances
                         "vmin": float(both.min()), "vmax": float(both.max())})
            figs.append({"kind": "heatmap", "title": "Difference R(P) − R(P′)",
                         "matrices": [np.round(s["diff"], 4).tolist()], "subtitles": ["R(P) − R(P′)"],
                         "xlabel": "position (1 = top)", "ylabel": "individual", "diverging": True, "x0": 1})
        else:
            figs.append({"kind": "heatmap", "title": "Inclusion probabilities of the worst pair",
                         "matrices": [np.round(np.vstack([s["Rx"], s["Ry"]]), 4).tolist()],
                         "subtitles": [f"{c['source']} pair, n={n}: chances under c and c′"], "xlabel": "individual",
                         "ylabels": ["π(c)", "π(c′)"]})   # colour scale fitted to the two rows
            figs.append({"kind": "heatmap", "title": "Difference π(c) − π(c′)",
                         "matrices": [np.round(s["diff"][None, :], 4).tolist()], "subtitles": ["π(c) − π(c′)"],
                         "xlabel": "individual", "ylabels": ["π(c) − π(c′)"], "diverging": True})
        top = table.sort_values("ratio_lo", ascending=False).head(15)
        figs.append({"kind": "interval_bars", "title": "Certified ratio ‖ΔR‖∞ / ‖ΔP‖₁ per probe"
                     + (f" (after subtracting δ = {dl:g})" if dl else ""),
                     "labels": [f"{r.source} #{i}, n={r.n}, ‖ΔP‖₁={r.l1_change:.2g}" for i, r in zip(top.index, top.itertuples())],
                     "estimate": [float(v) for v in top["ratio"]],
                     "lo": [float(v) for v in top["ratio_lo"]],
                     "hi": [float(v) for v in top["ratio_hi"]],
                     "xlabel": "ratio (axis cut at 10·L; larger ratios run off the right edge)",
                     "xlim": [float(max(min(0.0, top["ratio_lo"].min()), -2 * max(L, 0.1))), float(min(max(top["ratio_hi"].max(), L) * 1.05, 10 * max(L, 0.1)))],
                     "reference": L, "reference_label": f"L = {L:g}"})
        return self.judged(stat, msgs, total, evidence=evidence, tables={"probes": table}, figures=figs, method=method)


def _required_hw(B: int, var: float, ell: float) -> float:
    return math.sqrt(2 * ell * max(var, 1.0 / B) / B) + ell / B
