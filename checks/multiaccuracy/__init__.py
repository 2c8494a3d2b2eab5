"""``multiaccuracy``: does a ranking inherit its predictor's multigroup guarantee?
(Devic et al. §4: Def 15, Theorem 16, Props 19, 21, 22; SPEC §5)

Inputs: a pool of individuals (``--data``, or the rows of a ranking log) with
predictions ``f(x)`` (``p_*`` columns, an n×m label distribution, the last column the
best label; or one ``p_*`` column / a score in [0, 1] for binary labels), observed
labels ``y`` and group columns; a ranker (or the logged rankings).

Decisions taken here (SPEC and seed are silent on them; each is tested)
------------------------------------------------------------------------
* **D is the pool.** Individuals are drawn uniformly, with replacement, from the pool
  (as Theorem 16's i.i.d. setting requires); the unknown ground truth ``f*(x)`` is
  the distribution of x's label, of which the data hold one draw per row. So
  ``α_{S,ℓ} = mean_{x∈S} (f(x)_ℓ − f*(x)_ℓ)``: the first term is known exactly, the
  second is estimated by the label frequency ``p̂(ℓ|S)``. Its interval is a
  Clopper–Pearson interval for that frequency (exact when the members of S share one
  ``f*``; conservative otherwise, since a Poisson-binomial count is less spread than
  the binomial one — Hoeffding 1956), simultaneous (Bonferroni) over every
  (set, label) of C (for binary labels one interval per set serves both labels).
* **Â(S, p) averages over the index** of the individual: ``Pr[σ_I = p | x_I ∈ S]``
  with I uniform. It equals the paper's ``Pr[σ_1 = p | x_1 ∈ S]`` for anonymous
  rankers, and uses every member of S in every episode. Since exactly one person
  holds position p, ``Â(S,p) = q_{S,p} / (n·w_S)`` with ``q_{S,p} = Pr[the person at
  p belongs to S]`` (a Bernoulli proportion per episode, Clopper–Pearson) and
  ``w_S = |S|/|pool|`` known exactly.
* **The verdict is on the share gap** ``Δ(S,p) = n·w_S·(Â(S,p) − A*(S,p))`` — the
  change in the chance that position p goes to a member of S, against the UA ranking
  of the ground truth. It is Prop 19's unit (its gap ``½ − 2^{−n}`` at the top is
  exactly this), lies in [−1, 1] whatever n is, and one tolerance fits every n.
  Sets below ``min_size`` rows are shown and flagged but do not decide the verdict.
* **The reference's uncertainty is propagated.** ``A*(S,p) = Σ_ℓ a_{S,ℓ}·G_ℓ(p; π)``
  (individual interpolation, :func:`fairaudit.ua.ua_position_given_label`) with
  ``a_S`` the label distribution in S and ``π`` the whole pool's (the set "everyone",
  which C always contains). Its interval is the range of that expression over the
  simultaneous box of label frequencies (intersected with the simplex; exact linear
  programme in ``a_S``, a grid of ``π`` values in the box — G is smooth in π and the
  box is small). Half of α goes to this family, half to the ranker's positions; all
  gap intervals then hold simultaneously at the audit's confidence.
* **Diagnosis.** ``Δ = ranker term + predictor term`` with ``A_f(S,p)``, the UA ranking
  of the *predictions* (computable exactly, by the same interpolation): the ranker
  term ``n·w_S·(Â − A_f)`` says whether the ranker carries the predictions through as
  UA would (no label noise in it, only Monte-Carlo error); the predictor term
  ``n·w_S·(A_f − A*)`` is what Theorem 16 bounds by ``n·m·α``. The report separates
  "the predictor is not multiaccurate" (an ``|α̂_{S,ℓ}|`` certified above
  ``alpha_tolerance``) from "the ranker does not carry the predictor's accuracy
  through" (a ranker term certified above half the tolerance, or a conditional gap
  certified above Theorem 16's bound).
* **Theorem 16's bound**, from its proof: per set,
  ``B(S) = Σ_ℓ |α_{S,ℓ}| + (n−1)·Σ_ℓ |α_{X,ℓ}|`` (the group term, ≤ mα, plus Lemma
  12's ``2(n−1)·TV(f̄, f̄*)`` for the whole population X, ≤ (n−1)mα), and the global
  ``n·m·α`` of the theorem; computed from the upper ends of the α̂ intervals (α over
  X and the non-tiny sets), and marked vacuous when ≥ 1 (it bounds a difference of
  probabilities).
* **Exposure** (DCG weights ``1/log2(1+p)``, p = 1 top) of a member of S under the
  ranker, under UA of the predictions and under UA of the ground truth; its interval
  is the range over the simultaneous box of position probabilities (∑ = 1).
* **Multicalibration** (optional): cells (S, ℓ, bin of ``f_ℓ`` of width λ); error
  ``mean f_ℓ − p̂(ℓ)`` with Clopper–Pearson intervals simultaneous over the cells;
  cells with fewer than ``min_cell`` rows flagged sparse. Reported, not judged.
* **Logs.** A ranking log (``decision_id``, ``position``, ``p_*``, ``label``, groups)
  gives the same figures: each decision is an episode, all logged rows form the pool;
  episodes must all rank the same number of people (the most common size is used and
  the others are reported). ``w_S`` is then the share of rows, so the intervals treat
  it as known (an approximation the report states).
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from fairaudit.check import Check, Param
from fairaudit.errors import DataError
from fairaudit.checks.multiaccuracy import findings
from fairaudit.checks.multiaccuracy.groupsets import collection, weighted
from fairaudit.checks.multiaccuracy.ranking_log import MAX_BINNED_LABELS, cells_valid, position_counts, ranking_cells
from fairaudit.stats import abs_interval, per_member_confidence, proportion_ci
from fairaudit.instance import Instance
from fairaudit.inputs import prediction_order, predictions_and_labels
from fairaudit.ua import box_simplex_range, dcg_weights

EPISODE_BLOCK = 256   # episodes drawn per call of the sampler (each its own stream: results do not depend on it)

# ---------------------------------------------------------------------------
# Pure functions (tested directly)
# ---------------------------------------------------------------------------


def predictor_audit(P: np.ndarray, y: np.ndarray, masks: np.ndarray, confidence: float, weights=None):
    """α̂ per (set, label) with simultaneous Clopper–Pearson-based intervals.

    ``masks`` (G, N) booleans. Returns dict of arrays (G, m): ``fbar`` (mean prediction),
    ``freq`` / ``freq_lo`` / ``freq_hi`` (label frequency and interval), ``alpha``,
    ``alpha_lo``, ``alpha_hi``, ``count``, and ``size`` (G,), ``method``. With ``weights``
    the columns are cells of that many rows and ``P`` holds each cell's prediction sums."""
    G, N = masks.shape
    m = P.shape[1]
    Mf = masks.astype(float)
    w = np.ones(N) if weights is None else np.asarray(weights, dtype=float)
    size = Mf @ w
    onehot = np.zeros((N, m))
    onehot[np.arange(N), y] = 1.0
    count = Mf @ (onehot * w[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        fbar = np.where(size[:, None] > 0, (Mf @ P) / np.maximum(size, 1)[:, None], np.nan)
        freq = np.where(size[:, None] > 0, count / np.maximum(size, 1)[:, None], np.nan)
    fam = G * (1 if m == 2 else m)
    conf = per_member_confidence(confidence, fam)
    flo, fhi = proportion_ci(count, np.broadcast_to(size[:, None], count.shape), conf)
    flo, fhi = np.asarray(flo, dtype=float).reshape(G, m), np.asarray(fhi, dtype=float).reshape(G, m)
    return {"fbar": fbar, "freq": freq, "freq_lo": flo, "freq_hi": fhi, "alpha": fbar - freq,
            "alpha_lo": fbar - fhi, "alpha_hi": fbar - flo, "count": count, "size": size,
            "method": f"clopper-pearson on label frequencies, bonferroni over {fam}"}


def composition(counts: np.ndarray, episodes: int, n: int, share: np.ndarray, ref: tuple, A_f: np.ndarray,
                confidence: float, full=None):
    """Everything about Â vs A*, from position counts.

    ``counts`` (G, n): in how many episodes the person at position p belonged to set S;
    ``share`` (G,): w_S; ``ref``: (estimate, lo, hi) of A* (a band at 1 − α/2, see
    :func:`reference_band`); ``A_f`` (G, n): UA of the predictions. The positions get
    the other α/2 (Clopper–Pearson, Bonferroni over G·n). Returns (G, n) arrays.

    ``full`` (G,) marks sets holding the whole pool ("everyone"): every position is
    theirs, under the ranker and under any UA ranking, so their position share is
    exactly 1, Â = A* = A_f = 1/n and every gap exactly 0 — no interval width from
    the positions' or the reference's uncertainty (issue 18)."""
    G = counts.shape[0]
    conf_pos = per_member_confidence(1 - (1 - confidence) / 2, G * n)
    q = counts / episodes
    qlo, qhi = proportion_ci(counts, episodes, conf_pos)
    qlo, qhi = np.asarray(qlo, dtype=float).reshape(G, n), np.asarray(qhi, dtype=float).reshape(G, n)
    scale = (n * share)[:, None]
    r, r_lo, r_hi = (np.array(x, dtype=float) for x in ref)
    if full is not None and np.any(full):
        A_f = np.array(A_f, dtype=float)
        q[full], qlo[full], qhi[full] = 1.0, 1.0, 1.0
        scale[full] = n
        r[full], r_lo[full], r_hi[full], A_f[full] = 1.0 / n, 1.0 / n, 1.0 / n, 1.0 / n
    with np.errstate(invalid="ignore", divide="ignore"):
        A_hat, A_lo, A_hi = q / scale, qlo / scale, qhi / scale
    return {"q": q, "q_lo": qlo, "q_hi": qhi, "A": A_hat, "A_lo": A_lo, "A_hi": A_hi,
            "ref": r, "ref_lo": r_lo, "ref_hi": r_hi, "A_f": A_f,
            "gap": scale * (A_hat - r), "gap_lo": scale * (A_lo - r_hi), "gap_hi": scale * (A_hi - r_lo),
            "ranker": scale * (A_hat - A_f), "ranker_lo": scale * (A_lo - A_f), "ranker_hi": scale * (A_hi - A_f),
            "predictor": scale * (A_f - r), "predictor_lo": scale * (A_f - r_hi), "predictor_hi": scale * (A_f - r_lo),
            "cgap": A_hat - r, "cgap_lo": A_lo - r_hi, "cgap_hi": A_hi - r_lo,
            "full": full, "method": f"clopper-pearson on position shares, bonferroni over {G * n} (α/2)"}


def exposure(comp: dict, pred: dict, n: int, Gp: np.ndarray):
    """DCG exposure of a member of each set under the ranker, UA of the predictions and
    UA of the ground truth, with intervals (box ranges). Returns dict of (G,) arrays."""
    v = dcg_weights(n)
    A = np.nan_to_num(comp["A"])
    r_lo, r_hi = box_simplex_range(np.broadcast_to(v, A.shape), np.nan_to_num(comp["A_lo"]),
                                   np.minimum(np.nan_to_num(comp["A_hi"], nan=1.0), 1.0))
    e_ref_l = Gp @ v                                      # (m,) exposure given label at π̂
    ref_lo, ref_hi = box_simplex_range(np.broadcast_to(e_ref_l, pred["freq"].shape), pred["freq_lo"], pred["freq_hi"])
    # Σ_p Â(S,p) is 1 only on average (the denominator n·w_S is the expected group
    # count), so the point estimate is normalised; the interval is the box range.
    tot = A.sum(axis=-1)
    r_est = np.where(tot > 0, (A @ v) / np.where(tot > 0, tot, 1.0), np.nan)
    out = {"ranker": np.clip(r_est, r_lo, r_hi), "ranker_lo": np.minimum(r_lo, r_hi), "ranker_hi": r_hi,
           "ua_predictions": comp["A_f"] @ v,
           "truth": comp["ref"] @ v, "truth_lo": np.minimum(ref_lo, comp["ref"] @ v),
           "truth_hi": np.maximum(ref_hi, comp["ref"] @ v), "uniform": float(v.mean())}
    full = comp.get("full")
    if full is not None and np.any(full):            # the whole pool: exposure exactly the mean weight
        for key in ("ranker", "ranker_lo", "ranker_hi", "ua_predictions", "truth", "truth_lo", "truth_hi"):
            out[key] = np.array(out[key], dtype=float)
            out[key][full] = float(v.mean())
    return out


def multicalibration_cells(P, y, masks, names, set_names, lam: float, min_cell: int, confidence: float,
                           weights=None, bins=None) -> pd.DataFrame:
    """Cells (set, label, bin of the predicted probability of that label, width λ):
    mean prediction − label frequency, with Clopper–Pearson intervals simultaneous over
    all cells; cells below ``min_cell`` rows flagged sparse. On a log's cells of identical
    rows (``weights`` rows each, P their summed predictions) the bins come with the
    cells (``bins``, the rows' own)."""
    m = P.shape[1]
    nb = max(1, int(math.ceil(1.0 / lam - 1e-9)))
    if bins is None:
        bins = np.minimum((P / lam).astype(int), nb - 1)           # (N, m)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    rows = []
    for g, mask in enumerate(masks):
        for ell in range(m if m > 2 else 1):
            ell_ = ell if m > 2 else 1
            b = bins[mask, ell_]
            f = P[mask, ell_]
            hit = (y[mask] == ell_) * w[mask]
            cnt = np.rint(np.bincount(b, weights=w[mask], minlength=nb)).astype(np.int64)
            fs = np.bincount(b, weights=f, minlength=nb)
            hs = np.bincount(b, weights=hit, minlength=nb)
            for k in np.flatnonzero(cnt):
                rows.append((set_names[g], names[ell_], k * lam, min((k + 1) * lam, 1.0), int(cnt[k]),
                             fs[k] / cnt[k], hs[k], hs[k] / cnt[k]))
    df = pd.DataFrame(rows, columns=["group", "label", "bin_lo", "bin_hi", "n", "mean_prediction", "hits", "frequency"])
    if len(df) == 0:
        return df
    conf = per_member_confidence(confidence, len(df))
    lo, hi = proportion_ci(df["hits"].to_numpy(), df["n"].to_numpy(), conf)
    df["error"] = df["mean_prediction"] - df["frequency"]
    df["error_lo"] = df["mean_prediction"] - np.asarray(hi)
    df["error_hi"] = df["mean_prediction"] - np.asarray(lo)
    df["sparse"] = df["n"] < min_cell
    return df.drop(columns=["hits"])


def _more_hint(comp, share, n, judged, tolerance, E, unit, from_log) -> str:
    """What would decide an inconclusive verdict. The gap's interval has two parts: the
    ranker's (shrinks like 1/√episodes) and the ground-truth reference's (fixed by the
    number of labelled rows). Looks at the cell whose interval straddles the tolerance
    most and says which part must shrink."""
    a_lo, a_hi = abs_interval(comp["gap_lo"], comp["gap_hi"])
    est = np.abs(comp["gap"])
    straddle = judged[:, None] & (a_lo <= tolerance) & (a_hi > tolerance)
    if not straddle.any():
        return ""
    need = np.where(straddle, np.abs(est - tolerance), np.inf)
    g, p = np.unravel_index(int(np.argmin(need)), need.shape)
    scale = n * share[g]
    r_half = 0.5 * scale * (comp["A_hi"][g, p] - comp["A_lo"][g, p])
    ref_half = 0.5 * scale * (comp["ref_hi"][g, p] - comp["ref_lo"][g, p])
    room = abs(est[g, p] - tolerance) - ref_half
    if room <= 0 or not np.isfinite(r_half) or r_half <= 0:
        return (f"More {unit} cannot decide it: the ground-truth reference alone is uncertain by ±{ref_half:.3f} "
                f"there (from the labels); more labelled rows would narrow it.")
    total = int(math.ceil(E * (r_half / room) ** 2 * 1.2))
    if total <= E:
        return ""
    if from_log:
        return f"Roughly {total:,} logged rankings might decide it."
    return f"Roughly {total:,} episodes might decide it (rerun with --draws {total})."


# ---------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------

class Multiaccuracy(Check):
    id = "multiaccuracy"
    # -- words for readers (the report and the terminal read these from the registry) --
    statistic_labels = {
        'max_position_share_gap': "largest gap in a group's share of a position",
    }
    headlines = {
        'max_position_share_gap': ("A group's share of some position differs from what the true labels give it by {est}",
                                   'the tolerance {tol}'),
    }
    column_labels = {
        'bound_vacuous': 'bound says nothing',
        'exposure': 'exposure',
        'exposure_truth': 'exposure under the true labels',
        'exposure_ua_predictions': 'exposure under the UA ranking',
        'gap': 'gap',
        'label_frequency': 'label frequency',
        'mean_prediction': 'mean prediction',
        'not_multiaccurate': 'not multiaccurate',
        'predictor_term': "predictor's term",
        'ranker_term': "ranker's term",
        'share_gap': 'share gap',
        'theorem16_bound': 'bound of Devic et al. Thm 16',
        'tiny': 'too small to judge',
        'top_share': 'share at the top',
        'top_share_gap': 'gap in share at the top',
        'top_share_truth': 'share at the top, true labels',
        'truth': 'under the true labels',
        'ua_predictions': 'under the UA ranking',
    }
    data_needs = ('--data FILE with p_<label> prediction columns, a label column and group columns (or a ranking log with them)',
                  'fairaudit check my_ranker.py --checks multiaccuracy --data predictions.csv')
    title = "Multiaccuracy composition"
    summary = ("Does the ranking inherit the predictor's group guarantees? α̂ per group and label, and each group's "
               "position distribution against the UA ranking of the ground truth (Devic et al., §4).")
    definition = ("A predictor is α-multiaccurate on a collection of groups when, in every group and for every label, "
                  "its average predicted probability of the label is within α of the label's true frequency. "
                  "Theorem 16 of Devic et al. shows that the uncertainty-aware (UA) ranking of such a predictor gives "
                  "every group almost the same chance of every position as the UA ranking of the ground truth would "
                  "(within n·m·α); a deterministic sort by predicted quality does not (Prop 19). The check estimates, "
                  "for every group and position, the chance that the position goes to a member of the group under "
                  "the audited ranker, compares it with the ground-truth UA reference computed from label "
                  "frequencies, and splits the gap into the predictor's share and the ranker's share. "
                  "The gap intervals hold simultaneously for all groups and positions, the α̂ intervals for all "
                  "groups and labels.")
    kinds = ("ranking",)
    table_titles = {
        "groups": "Share of each position per group: ranker against the ground truth",
        "alpha": "Group bias of the predictor (α)",
        "positions": "Chance of each position: ranker against the UA ranking",
        "multicalibration": "Multicalibration cells",
    }
    params = {
        "tolerance": Param(0.1, "largest allowed gap, over groups and positions, in the chance that a position goes "
                                "to a member of the group (ranker vs ground-truth UA)", type=float, min=0, max=1),
        "alpha_tolerance": Param(0.05, "|α̂| certified above this marks the predictor as not multiaccurate on a group",
            type=float, min=0),
        "n": Param(50, "individuals drawn from the pool per episode (allocator audits)", type=int, min=2),
        "episodes": Param(10000, "episodes (rankings of n drawn individuals); --draws overrides", type=int, min=1),
        "depth": Param(2, "intersections of up to this many group columns", type=int, min=1),
        "groups": Param("", "extra groups: 'name: pandas expression; ...' evaluated on the data (or, from Python, "
                            "a dict of expressions / callables)", type=object),
        "min_size": Param(30, "groups with fewer rows are flagged and left out of the verdict", type=int, min=0),
        "multicalibration": Param(False, "also report multicalibration cells on a λ-grid of predicted probabilities",
            type=bool),
        "lam": Param(0.1, "width λ of the multicalibration grid", type=float, min=0, max=1, min_open=True),
        "min_cell": Param(20, "multicalibration cells with fewer rows are flagged sparse", type=int, min=0),
        "max_figures": Param(6, "per-group position figures for at most this many groups (worst gap first)",
            type=int, min=0),
    }

    # ------------------------------------------------------------------
    def skip_reason(self, ctx):
        if ctx.log is not None:
            log = ctx.log
            if not log.pred_cols and "score" not in log.columns:
                return "the ranking log has no prediction columns (p_<label>)"
            if "label" not in log.columns:
                return "the ranking log has no 'label' column (observed outcomes are needed for α̂)"
            return None
        pop = ctx.population
        if pop is None:
            return "no population data (give --data FILE with p_<label> predictions, a label column and group columns)"
        if not pop.pred_cols and pop.score_col is None:
            return f"{pop.path} has no prediction columns (p_<label>)"
        if pop.label_col is None:
            return f"{pop.path} has no 'label' column (observed outcomes are needed for α̂)"
        return None

    # ------------------------------------------------------------------
    def run(self, ctx, tolerance, alpha_tolerance, n, episodes, depth, groups, min_size, multicalibration, lam,
            min_cell, max_figures):
        n = int(n)
        if ctx.log is not None:
            return self._run_log(ctx, tolerance, alpha_tolerance, depth, groups, min_size, multicalibration, lam,
                                 min_cell, max_figures)
        pop = ctx.population
        where = pop.path or "data"
        P, y, names = predictions_and_labels(pop.frame, pop.pred_cols, pop.label_col,
                                             pop.score_col if not pop.pred_cols else None, where)
        sets = collection(pop.frame, pop.group_cols, int(depth), groups, int(min_size))
        masks = np.stack([s.mask for s in sets])
        N = len(y)
        if n < 2:
            raise DataError("multiaccuracy: n (individuals per episode) must be at least 2")
        E = ctx.max_draws(episodes)
        rng = ctx.rng(f"{self.id}/episodes")
        idx = rng.integers(0, N, size=(E, n))
        wants = ctx.target.arg_names if not ctx.target.accepts_var_kwargs else {"groups", "features", "scores"}
        gframe = pop.groups if ("groups" in wants and pop.groups is not None) else None
        fframe = pop.features if ("features" in wants and pop.features is not None) else None
        scores = pop.scores
        # Each episode is its own instance and stream: episode e's ranking is draw 0 of
        # stream "multiaccuracy/episode/e", so it is reproducible whatever else runs.
        held = np.empty((E, n), dtype=np.int64)

        def episode(e):
            rows = idx[e]
            return Instance(f"multiaccuracy episode {e} (n={n} drawn from {where})", predictions=P[rows],
                            scores=None if scores is None else scores[rows],
                            groups=None if gframe is None else gframe.iloc[rows].reset_index(drop=True),
                            features=None if fframe is None else fframe.iloc[rows].reset_index(drop=True))

        done = 0
        for e0 in range(0, E, EPISODE_BLOCK):       # one draw per episode, a block of episodes at a time
            es = range(e0, min(E, e0 + EPISODE_BLOCK))
            perms = ctx.sampler.draw_many([(episode(e), f"{self.id}/episode/{e}") for e in es], 1)[:, 0]
            held[list(es)] = np.take_along_axis(idx[list(es)], perms, axis=1)
            done = es.stop
            if ctx.sampler.time_left() <= 0 and done >= 100:
                break
        held = held[:done]
        counts = np.stack([s.mask[held].sum(axis=0) for s in sets]).astype(float)   # (G, n)
        share = masks.sum(axis=1) / N
        return self._finish(ctx, sets, P, y, names, counts, done, n, share, tolerance, alpha_tolerance,
                            multicalibration, lam, min_cell, max_figures, unit="episodes", from_log=False,
                            extra_evidence={"pool": N, "episode_size": n, "sampling": "n individuals drawn uniformly "
                                            "with replacement from the pool per episode"})

    # ------------------------------------------------------------------
    def _run_log(self, ctx, tolerance, alpha_tolerance, depth, groups, min_size, multicalibration, lam, min_cell,
                 max_figures):
        log = ctx.log
        args = (ctx, tolerance, alpha_tolerance, depth, groups, min_size, multicalibration, lam, min_cell, max_figures)
        if not groups and "label" in log.columns and cells_valid(log) and \
                (not multicalibration or max(2, len(log.pred_cols)) <= MAX_BINNED_LABELS):
            try:
                return self._run_log_cells(*args)
            except DataError:
                pass                        # the rows' reading below names the offending row and column
        return self._run_log_rows(*args)

    def _run_log_cells(self, ctx, tolerance, alpha_tolerance, depth, groups, min_size, multicalibration, lam,
                       min_cell, max_figures):
        # the log aggregated where it is (fairaudit.checks.multiaccuracy.ranking_log): the same sizes, counts and
        # mean predictions as its rows, a bootstrap of the same distribution
        log = ctx.log
        value_cols = prediction_order(log.pred_cols) or ["score"]
        cells = ranking_cells(log.table, log.group_cols, value_cols, "label", float(lam) if multicalibration else None)
        means = pd.DataFrame(cells.pred_sums / cells.weights[:, None], columns=value_cols)
        means["label"] = cells.frame["label"].to_numpy()
        P, y, names = predictions_and_labels(means, log.pred_cols, "label", "score" if not log.pred_cols else None,
                                             log.path or "log")
        P = P * cells.weights[:, None]
        sets = weighted(collection(cells.frame, log.group_cols, int(depth), None, int(min_size)), cells.weights,
                        int(min_size))
        masks = np.stack([s.mask for s in sets])
        share = (masks.astype(float) @ cells.weights) / cells.weights.sum()
        counts = position_counts(cells, masks)
        return self._finish(ctx, sets, P, y, names, counts, cells.episodes, cells.n, share, tolerance, alpha_tolerance,
                            multicalibration, lam, min_cell, max_figures, unit="logged rankings", from_log=True,
                            extra_evidence={"pool": int(cells.weights.sum()), "episode_size": cells.n,
                                            "rows_in_other_sized_rankings_ignored": cells.dropped,
                                            "sampling": "each logged decision is an episode; the pool is every "
                                                        "logged row; group shares are taken as known",
                                            "aggregation": f"{len(cells.weights)} cells of identical rows, counted "
                                                           f"in the log engine (the rows were not read)"},
                            weights=cells.weights, bins=cells.bins)

    def _run_log_rows(self, ctx, tolerance, alpha_tolerance, depth, groups, min_size, multicalibration, lam, min_cell,
                      max_figures):
        log = ctx.log
        fr = log.frame.sort_values(["decision_id", "position"], kind="stable").reset_index(drop=True)
        where = log.path or "log"
        P, y, names = predictions_and_labels(fr, log.pred_cols, "label" if "label" in fr.columns else None,
                                             "score" if not log.pred_cols else None, where)
        sizes = fr.groupby("decision_id", sort=False)["position"].transform("size").to_numpy()
        vals, cnts = np.unique(sizes, return_counts=True)
        n = int(vals[np.argmax(cnts)])
        keep = sizes == n
        dropped = int((~keep).sum())
        sets = collection(fr, log.group_cols, int(depth), groups, int(min_size))
        masks = np.stack([s.mask for s in sets])
        rows = np.flatnonzero(keep).reshape(-1, n)                       # (E, n) in position order
        E = rows.shape[0]
        counts = np.stack([s.mask[rows].sum(axis=0) for s in sets]).astype(float)
        share = masks.sum(axis=1) / len(y)
        return self._finish(ctx, sets, P, y, names, counts, E, n, share, tolerance, alpha_tolerance,
                            multicalibration, lam, min_cell, max_figures, unit="logged rankings", from_log=True,
                            extra_evidence={"pool": len(y), "episode_size": n,
                                            "rows_in_other_sized_rankings_ignored": dropped,
                                            "sampling": "each logged decision is an episode; the pool is every "
                                                        "logged row; group shares are taken as known"})

    # ------------------------------------------------------------------
    def _finish(self, ctx, sets, P, y, names, counts, E, n, share, tolerance, alpha_tolerance, multicalibration,
                lam, min_cell, max_figures, unit, from_log, extra_evidence, weights=None, bins=None):
        """Measure (:func:`findings.measure`), judge the statistic, and read the tables,
        messages, figures and evidence off the findings."""
        f = findings.measure(sets, P, y, names, counts, E, n, share, tolerance, alpha_tolerance, ctx.confidence,
                             ctx.rng(f"{self.id}/bootstrap"), predictor_audit=predictor_audit,
                             composition=composition, exposure=exposure, weights=weights)
        if f is None:
            return self.result("skipped", "Skipped: no group other than the whole population has at least "
                               f"{sets[0].size if len(sets) == 1 else 'min_size'} rows; name group columns with "
                               "--groups or define groups with --param multiaccuracy.groups=...")
        alphas = findings.alpha_rows(f, alpha_tolerance)
        tables = findings.tables(f, alphas)
        multicalibration_table = None
        if multicalibration:
            masks = np.stack([s.mask for s in sets])
            tables["multicalibration"] = multicalibration_table = multicalibration_cells(
                P, y, masks, names, f.names_s, float(lam), int(min_cell), 1 - (1 - ctx.confidence) / 2, weights, bins)
        msgs = findings.messages(f)
        figures = findings.figures(f, alphas, max_figures)
        evidence = findings.evidence(f, unit, extra_evidence, multicalibration_table, lam)
        stat = f.stat
        method = (f"{E} {unit} of n={n}; {stat.method}; confidence {ctx.confidence:g} for the whole family")
        res = self.judged(stat, msgs, E, from_log=from_log, evidence=evidence, tables=tables, figures=figures,
                          method=method)
        if res.verdict == "inconclusive":
            res = replace(res, message=msgs["inconclusive"] + " "
                          + _more_hint(f.comp, share, n, f.judged, tolerance, E, unit, from_log))
        return res
