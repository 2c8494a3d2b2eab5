"""Broome's conditions for per-person decision rules (issue 17; used by ``broome`` on
``decision`` targets), in the data's claim (score) column ``c``:

* **BF.1, chances rise with claims** — raising one person's claim by half a standard
  deviation of ``c``, everything else in the row fixed, must not lower their chance of
  a yes. The original and raised inputs are drawn on one stream (common random numbers);
  each person's drop ``π(x) − π(x↑)`` = P(yes, then no) − P(no, then yes) gets the
  difference of two Clopper–Pearson intervals, Bonferroni over the people. Exact
  monotonicity cannot be certified by sampling, so this part can only refute: it fails
  when some drop is certainly positive (a pass has looked for one in ``DRAWS`` draws).
* **BF.2, no positive claim excluded** — everyone with ``c > 0`` must have a chance of at
  least ``min_chance`` (absolute, for a decision rule); each chance gets a Clopper–Pearson
  interval, Bonferroni over the people. It fails when some positive claim's chance is
  certainly below ``min_chance`` (a deterministic cut-off excludes everyone below it) and
  passes when every one is certainly above.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from fairaudit.instance import Instance
from fairaudit.result import Statistic, combine
from fairaudit.stats import per_member_confidence, proportion_ci

#: draws of each input (one look; BF.1 refutes only, so a pass is "no drop found in this many draws")
DRAWS = 4096

DEFINITION = (
    "For a per-person decision rule, Broome-Fairness reads: chances rise with claims — raising one person's claim "
    "(the data's score column), all else in their row fixed, never lowers their chance of a yes (BF.1; sampling can "
    "only refute it) — and no positive claim is excluded: everyone with a positive claim has at least min_chance of "
    "a yes (BF.2). Intervals hold simultaneously over the people tested.")


def raised(inst: Instance, column: str, amount: float) -> Instance:
    f = inst.features.copy()
    f[column] = f[column].astype(float) + amount
    scores = None if inst.scores is None else np.asarray(inst.scores, dtype=float) + amount
    return inst.replace(label=f"{inst.label}: {column} raised by {amount:.4g}", features=f, scores=scores)


def judge(base: np.ndarray, up: np.ndarray, claims: np.ndarray, min_chance: float, confidence: float):
    """The two components, the verdict and a per-person table, from ``B`` draws on the
    original (``base``) and the raised (``up``) input (one look: Clopper–Pearson)."""
    B, n = base.shape
    positive = claims > 0
    conf = per_member_confidence(confidence, 2)                # BF.1 and BF.2 families
    # BF.1: drop = P(yes now, no when raised) − P(no now, yes when raised); each a
    # Clopper–Pearson interval, Bonferroni over 2 × people
    a, b = base.astype(bool), up.astype(bool)
    plo, phi = proportion_ci((a & ~b).sum(axis=0), B, per_member_confidence(conf, 2 * n))
    mlo, mhi = proportion_ci((~a & b).sum(axis=0), B, per_member_confidence(conf, 2 * n))
    drop = ((a & ~b).sum(axis=0) - (~a & b).sum(axis=0)) / B
    dlo, dhi = plo - mhi, phi - mlo
    clo, chi = proportion_ci(a.sum(axis=0), B, per_member_confidence(conf, max(int(positive.sum()), 1)))
    chance = a.mean(axis=0)
    comps = {"bf1_max_drop": Statistic("bf1_max_drop", float(drop.max()), (float(dlo.max()), float(dhi.max())),
                                       tolerance=0.0, method="paired draws, clopper-pearson, bonferroni",
                                       refutation_only=True)}
    if positive.any():
        comps["bf2_min_chance"] = Statistic(
            "bf2_min_chance", float(chance[positive].min()),
            (float(clo[positive].min()), float(chi[positive].min())),
            tolerance=min_chance, method="clopper-pearson, bonferroni", violation="below")
    table = pd.DataFrame({"individual": np.arange(n), "claim": claims, "chance": chance,
                          "chance_lo": clo, "chance_hi": chi, "drop": drop, "drop_lo": dlo, "drop_hi": dhi})
    return comps, combine(comps), table


def audit(ctx, min_chance: float, max_draws: int, stream: str):
    """Draw the data's rows (up to 200) and the same rows with each claim raised by half a
    standard deviation, ``min(max_draws, DRAWS)`` times each on one stream: (headline
    statistic, components, verdict, the 12 lowest chances, draws, the row the verdict rests on)."""
    from fairaudit.inputs import data_instance
    inst = data_instance(ctx, "decision", 200, ctx.rng(stream), "claim probes")
    up = raised(inst, ctx.population.score_col, 0.5 * (float(np.std(inst.scores)) or 1.0))
    B = min(int(max_draws), DRAWS)
    base, upped = ctx.sampler.draw_streams([(inst, stream, 0, B), (up, stream, 0, B)])
    comps, verdict, table = judge(base, upped, inst.scores, min_chance, ctx.confidence)
    bf1 = comps["bf1_max_drop"]
    stat = bf1 if bf1.verdict() == "fail" else comps.get("bf2_min_chance", bf1)
    w = table.sort_values("drop_lo", ascending=False).iloc[0] if stat is bf1 else \
        table[inst.scores > 0].sort_values("chance_hi").iloc[0]
    return stat, comps, verdict, table.sort_values("chance").head(12), B, w
