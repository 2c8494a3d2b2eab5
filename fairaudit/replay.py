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


