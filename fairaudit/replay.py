"""Replay the allocator call behind an ``error`` verdict: same input, same generator.

``fairaudit replay RESULT.json CHECK_ID`` (or :func:`replay`) reloads the target named
in the result, rebuilds the input saved in the check's evidence, seeds the generator
exactly as the failing call was seeded, calls the allocator once, and validates the
outcome — so the failure can be debugged outside fairaudit.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import FairauditError
from .sampler import draw_generator
from .targets import Instance, load_target, validate_outcomes


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
    if not isinstance(result, dict):
        from .result import load_result
        result = load_result(result)
    chk = next((c for c in result.get("checks", []) if c.get("id") == check_id), None)
    if chk is None:
        raise FairauditError(f"the result has no check '{check_id}'")
    rep = (chk.get("evidence") or {}).get("replay")
    if not rep:
        raise FairauditError(f"check '{check_id}' has no saved failing call to replay (verdict {chk.get('verdict')})")
    tgt = result["target"]
    spec = tgt["path"] if not tgt.get("function") or ":" in tgt["path"] else f"{tgt['path']}:{tgt['function']}"
    target = load_target(spec)
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
