"""Replay, owned by the engine: re-draw exactly what an audit drew.

Two things can be replayed with ``fairaudit replay RESULT.json CHECK_ID``:

* a **counterexample** — a check records, with
  :func:`fairaudit.draw_records.draw_record`, what it drew for it
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

from pathlib import Path

import numpy as np

from .draw_records import saved_instance, summarise
from .engine import AuditConfig, open_sampler
from .errors import FairauditError
from .sampler import draw_generator
from .targets import load_target, validate_outcomes


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


# ---------------------------------------------------------------------------
# Counterexamples: record what was drawn, re-draw it
# ---------------------------------------------------------------------------

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
    result, chk = _result_and_check(result, check_id)
    records = ((chk.get("evidence") or {}).get("redraw") or {}).get("records")
    if not records:
        raise FairauditError(f"check '{check_id}' recorded no counterexample draws to replay "
                             f"(verdict {chk.get('verdict')})")
    seed = int(result["config"]["seed"])
    sampler = open_sampler(_target_spec(result), AuditConfig(seed=seed, timeout=float(
        result["config"].get("timeout") or 30.0)))
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


