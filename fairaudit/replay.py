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
from .targets import Instance


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
    """Make the failing call once more, as it was made — in an isolated worker process,
    with the audit's timeout and memory limit (nothing the result names is imported or
    unpickled here). Returns ``(outcome, problem)``: the validated outcome and None when
    it now validates, else None and what is wrong (the allocator's exception included)."""
    from .workers import WorkerPool, payload_for
    result, chk = _result_and_check(result, check_id)
    rep = (chk.get("evidence") or {}).get("replay")
    if not isinstance(rep, dict) or not isinstance(rep.get("input"), dict):
        raise FairauditError(f"check '{check_id}' has no saved failing call to replay (verdict {chk.get('verdict')})")
    try:
        seed, g = int(rep["seed"]), int(rep["generator_index"])
        size = None if rep.get("size") is None else int(rep["size"])
        stream = str(rep["stream"])
    except (KeyError, TypeError, ValueError):
        raise FairauditError(f"check '{check_id}': its saved failing call lacks the seed, stream or generator") from None
    inst = saved_instance(rep["input"])
    timeout, memory_limit = _run_limits(result)
    payload, _ = payload_for(_target_spec(result))
    pool = WorkerPool(payload, jobs=1, timeout=timeout, memory_limit=memory_limit)
    try:
        vectorized = bool(pool.probe().get("vectorized"))
        # the very call: draw_generator(seed, stream, g), with the batch size when vectorised
        start, stop, chunk = (g * size, g * size + size, size) if vectorized and size else (g, g + 1, 1)
        msg = pool.run_one("task", inst, (seed, stream, start, stop, chunk, None))
    finally:
        pool.close()
    if msg[0] == "done":
        return msg[2], None
    info = msg[2] if len(msg) > 2 and isinstance(msg[2], dict) else {}
    return None, str(info.get("problem") or "the call failed")


def _run_limits(result) -> tuple[float, int | None]:
    """The audit's per-call timeout and memory limit, from its result."""
    from .workers import DEFAULT_MEMORY_LIMIT, parse_memory
    cfg = result.get("config") or {}
    try:
        timeout = float(cfg.get("timeout") or 30.0)
    except (TypeError, ValueError):
        timeout = 30.0
    try:
        mem = parse_memory(cfg.get("memory_limit", DEFAULT_MEMORY_LIMIT))
    except ValueError:
        mem = DEFAULT_MEMORY_LIMIT
    return timeout, mem


def target_file(result) -> Path | None:
    """The file the result's target was loaded from, found without importing anything:
    a ``.py`` or model file, or the module of ``module:function`` searched for on
    ``sys.path`` (None when not found)."""
    import sys
    path = str((result.get("target") or {}).get("path") or "")
    if not path:
        return None
    file_part = path
    if ":" in path and not path.endswith(".py") and not Path(path).is_file():
        file_part = path.rsplit(":", 1)[0]
    p = Path(file_part)
    if p.suffix or p.is_file():
        return p if p.is_file() else None
    parts = file_part.split(".")
    if not all(part.isidentifier() for part in parts):
        return None
    for base in [""] + [b for b in sys.path if isinstance(b, str)]:
        stem = Path(base or ".").joinpath(*parts)
        for cand in (stem.with_suffix(".py"), stem / "__init__.py"):
            if cand.is_file():
                return cand
    return None


def verify_target(result, *, accept_changed: bool = False) -> tuple[str, str, str | None]:
    """``(target path, recorded sha256, sha256 of the file now)``; raises a one-line
    :class:`FairauditError` when the file is missing or its hash differs from the one the
    result records (or the result records none), unless ``accept_changed``."""
    import hashlib
    tgt = result.get("target") or {}
    path, recorded = str(tgt.get("path") or ""), str(tgt.get("sha256") or "")
    f = target_file(result)
    actual = hashlib.sha256(f.read_bytes()).hexdigest() if f is not None else None
    if accept_changed:
        return path, recorded, actual
    hint = " (--accept-changed-target runs it anyway)"
    if f is None:
        raise FairauditError(f"the result's target {path!r} is not found from here; replay runs only the file "
                             f"the audit ran" + hint)
    if not recorded:
        raise FairauditError(f"the result records no sha256 of its target {path!r}, so replay cannot tell whether "
                             f"{f} is the file the audit ran" + hint)
    if actual != recorded:
        raise FairauditError(f"the target {path!r} changed since the audit: {f} has sha256 {actual[:16]}…, the "
                             f"result records {recorded[:16]}…; replay refuses to run another allocator" + hint)
    return path, recorded, actual


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
    from .models import is_model_path
    from .targets import with_threshold
    tgt = result["target"]
    plain = not tgt.get("function") or ":" in tgt["path"] or is_model_path(tgt["path"])   # a model file: its path
    spec = tgt["path"] if plain else f"{tgt['path']}:{tgt['function']}"
    return with_threshold(spec, (result.get("config") or {}).get("threshold"))     # a model's --threshold


def redraw(result: dict | str | Path, check_id: str) -> list[dict]:
    """Re-draw every draw record of ``check_id``'s counterexample in ``result``; returns,
    per record, ``{"label", "members", "observed", "replayed", "identical"}``."""
    from .engine import AuditConfig, open_sampler
    result, chk = _result_and_check(result, check_id)
    records = ((chk.get("evidence") or {}).get("redraw") or {}).get("records")
    if not records:
        raise FairauditError(f"check '{check_id}' recorded no counterexample draws to replay "
                             f"(verdict {chk.get('verdict')})")
    seed = int(result["config"]["seed"])
    timeout, memory_limit = _run_limits(result)
    sampler = open_sampler(_target_spec(result), AuditConfig(seed=seed, timeout=timeout, memory_limit=memory_limit,
                                                             in_process=False, jobs=1))
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
