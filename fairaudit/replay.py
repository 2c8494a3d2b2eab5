"""Replay, owned by the engine: re-draw exactly what an audit drew.

Two things can be replayed with ``fairaudit replay RESULT.json CHECK_ID``:

* a **counterexample** — a check records, with :func:`draw_record`, what it drew for it
  (the input, the stream, the range of draws, and the figures it summarised from them:
  selection chances of the individuals it names, position chances of the (individual,
  position) entries, or the locations of the named arrivals). :func:`redraw` reloads the
  target, re-draws the same draws on the same streams (the sampler's reproducibility
  contract makes them identical) and recomputes the figures; the CLI prints both and
  exits 1 if they differ.
* an **error** — the input and generator of the failing call are saved; :func:`replay`
  calls the allocator once exactly as the failing call was made and validates the
  outcome, so the failure can be debugged outside fairaudit.
"""
from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import FairauditError
from .inputs import parse_ratio
from .outcomes import inclusion_counts, position_counts
from .run.sampler import Sampler, draw_generator
from .run.targets import Instance, validate_outcomes
from .run.load import load_target


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


def replay(result: dict | str | Path, check_id: str):
    """Call the allocator once as the failing call was made. Returns ``(outcome,
    problem)`` where ``problem`` is None when the outcome now validates; exceptions
    from the allocator propagate (that is the point)."""
    result, chk = _result_and_check(result, check_id)
    rep = (chk.get("evidence") or {}).get("replay")
    if not rep:
        raise FairauditError(f"check '{check_id}' has no saved failing call to replay (verdict {chk.get('verdict')})")
    target = load_target(_target_spec(result))
    inst = saved_instance(rep["input"])
    rng = draw_generator(int(rep["seed"]), rep["stream"], int(rep["generator_index"]))
    out = target.func(**target.call_kwargs(inst, rng, rep.get("size")))
    rows = rep.get("size") or 1
    try:
        validate_outcomes(target.kind, out, inst, rows, target.effective_k(inst))
        problem = None
    except ValueError as e:
        problem = str(e)
    return out, problem


def pool_replay_command(ctx, setup, n, r, target_path, check_id, ratio="2,1"):
    """The CLI commands that re-create simulated pool ``r`` as a data file and audit it alone."""
    rat = ",".join(f"{v:g}" for v in parse_ratio(ratio))
    extra = f" --ratio {rat}" if rat != "2,1" else ""
    cmd = (f"fairaudit simulate --setup {setup} --n {int(n)} --pools 1 --start {r} --seed {ctx.config.seed}{extra} "
           f"--out pool{r}.csv && fairaudit check {shlex.quote(target_path)} --data pool{r}.csv "
           f"--checks {check_id}")
    return cmd


# ---------------------------------------------------------------------------
# Counterexamples: record what was drawn, re-draw it
# ---------------------------------------------------------------------------

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


def _result_and_check(result, check_id):
    if not isinstance(result, dict):
        from .result import load_result
        result = load_result(result)
    chk = next((c for c in result.get("checks", []) if c.get("id") == check_id), None)
    if chk is None:
        raise FairauditError(f"the result has no check '{check_id}'")
    return result, chk


def _target_spec(result) -> str:
    from .run.spec import is_model_path, with_threshold
    tgt = result["target"]
    plain = not tgt.get("function") or ":" in tgt["path"] or is_model_path(tgt["path"])   # a model file: its path
    spec = tgt["path"] if plain else f"{tgt['path']}:{tgt['function']}"
    return with_threshold(spec, (result.get("config") or {}).get("threshold"))     # a model's --threshold


def redraw(result: dict | str | Path, check_id: str) -> list[dict]:
    """Re-draw every draw record of ``check_id``'s counterexample in ``result``; returns,
    per record, ``{"label", "members", "observed", "replayed", "identical"}``."""
    result, chk = _result_and_check(result, check_id)
    records = ((chk.get("evidence") or {}).get("redraw") or {}).get("records")
    if not records:
        raise FairauditError(f"check '{check_id}' recorded no counterexample draws to replay "
                             f"(verdict {chk.get('verdict')})")
    seed = int(result["config"]["seed"])
    # loaded only in worker processes, as an audit's allocator (the run wing, not the engine: no import circle)
    sampler = Sampler.open(_target_spec(result), seed, timeout=float(result["config"].get("timeout") or 30.0))
    out = []
    try:
        for rec in records:
            inst = saved_instance(rec["input"])
            d = sampler.draw(inst, int(rec["draws"]), rec["stream"], start=int(rec["start"]))
            got = summarise(rec["kind"], d, inst.n, rec["members"])
            same = np.allclose(np.asarray(got, float), np.asarray(rec["observed"], float), rtol=0, atol=1e-9)
            out.append({"label": rec["label"], "members": rec["members"], "observed": rec["observed"],
                        "replayed": got, "identical": bool(same), "draws": int(rec["draws"]),
                        "stream": rec["stream"]})
    finally:
        sampler.close()
    return out


def has_counterexample_draws(chk: dict) -> bool:
    return bool(((chk.get("evidence") or {}).get("redraw") or {}).get("records"))
