"""What a check records for a replay: the saved input and the draw records of a
counterexample (the input, the stream, the range of draws, and the figures the check read
off them: selection chances of the individuals it names, position chances of the
(individual, position) entries, or the locations of the named arrivals), and the command
that re-creates a simulated pool.

Recording is part of every audit and needs no allocator; re-drawing (:mod:`fairaudit.replay`)
loads the target again and lives with the run wing's users.
"""
from __future__ import annotations

import shlex

import numpy as np
import pandas as pd

from .inputs import parse_ratio
from .instance import Instance
from .outcomes import inclusion_counts, position_counts


def saved_instance(inp: dict) -> Instance:
    """The Instance saved in a result's replay evidence."""
    kw = {}
    for name in ("scores", "predictions", "labels", "capacities"):
        if isinstance(inp.get(name), list):
            kw[name] = np.asarray(inp[name])
    for name in ("groups", "features"):
        v = inp.get(name)
        if isinstance(v, dict):
            kw[name] = pd.DataFrame(v)
        elif isinstance(v, list):
            kw[name] = np.asarray(v)
    if inp.get("k") is not None:
        kw["k"] = int(inp["k"])
    return Instance(inp.get("label", "replayed input"), **kw)


def pool_replay_command(ctx, setup, n, r, target_path, check_id, ratio="2,1"):
    """The CLI commands that re-create simulated pool ``r`` as a data file and audit it alone."""
    rat = ",".join(f"{v:g}" for v in parse_ratio(ratio))
    extra = f" --ratio {rat}" if rat != "2,1" else ""
    cmd = (f"fairaudit simulate --setup {setup} --n {int(n)} --pools 1 --start {r} --seed {ctx.config.seed}{extra} "
           f"--out pool{r}.csv && fairaudit check {shlex.quote(target_path)} --data pool{r}.csv "
           f"--checks {check_id}")
    return cmd


def summarise(kind: str, draws: np.ndarray, n: int, members=None) -> list:
    """The figures a check reads off ``draws`` for its counterexample: selection chance of
    each member individual, chance of each member ``[individual, position]`` entry
    (rankings), or each member arrival's location in every draw (assignments). Without
    ``members``, every individual (every entry of the position matrix)."""
    B = max(int(draws.shape[0]), 1)
    if kind == "selection":
        p = inclusion_counts(draws, n) / B
        return [float(p[int(i)]) for i in members] if members is not None else p.tolist()
    if kind == "ranking":
        P = position_counts(draws, n) / B
        return [float(P[int(i), int(q)]) for i, q in members] if members is not None else P.tolist()
    d = np.asarray(draws)
    return (d[:, [int(a) for a in members]] if members is not None else d).tolist()


def draw_record(kind: str, label: str, inst: Instance, stream: str, draws, *, start: int = 0,
                members=None, observed=None) -> dict:
    """What a check drew for a counterexample, and the figures it read off the draws.

    ``draws``: the outcome array, or — when the check kept only summaries — the number
    of draws, with ``observed`` the figures it computed (as :func:`summarise` would)."""
    if members is not None:
        members = [[int(v) for v in m] if isinstance(m, (list, tuple, np.ndarray)) else int(m) for m in members]
    return {"label": label, "kind": kind, "input": inst.to_jsonable(limit=10**6), "stream": stream, "start": int(start),
            "draws": int(draws if np.ndim(draws) == 0 else np.shape(draws)[0]), "members": members,
            "observed": list(observed) if observed is not None else summarise(kind, draws, inst.n, members)}


def has_counterexample_draws(chk: dict) -> bool:
    return bool(((chk.get("evidence") or {}).get("redraw") or {}).get("records"))
