"""The LP benchmarks of a simulated year (requirement, OPT, unconstrained optimum), computed
once and kept (issue 30).

A year's benchmarks depend only on the year itself (its arrivals' scores and groups, the
capacities) and on the requirement rule — never on the assigner under audit — and the
years come from the audit's seed alone, so every assigner audited with the same seed and
scenarios, and every rerun, needs the same LPs. They are kept on disk under a key that
is a digest of exactly those inputs (and of :data:`VERSION`, bumped whenever the LPs'
formulation changes): a changed year, rule or code can only miss, never return another
year's numbers. The values are stored as the exact floats (JSON round-trips them), so a
cached audit's report is byte-identical to a computed one.

Where: ``$FAIRAUDIT_CACHE_DIR/min_requirement/`` or, without it,
``$XDG_CACHE_HOME/fairaudit/min_requirement/`` (``~/.cache/...``);
``FAIRAUDIT_CACHE_DIR=off`` turns the cache off. A file that cannot be read or written is
ignored (the LPs are then solved), and writes are atomic (a temporary file renamed), so
concurrent audits sharing the folder are safe.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fairaudit.checks.min_requirement import assignment as A

#: bump when :func:`assignment.benchmarks` would give other numbers for the same year
VERSION = "min_requirement-benchmarks-1"


def cache_dir() -> Path | None:
    env = os.environ.get("FAIRAUDIT_CACHE_DIR")
    if env is not None and env.strip().lower() in ("off", "0", "no", "none", ""):
        return None
    if env:
        return Path(env) / "min_requirement"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fairaudit" / "min_requirement"


def year_key(year: A.Year, rule: str, given) -> str:
    h = hashlib.sha256()
    h.update(VERSION.encode())
    h.update(repr((rule, None if given is None else [float(v) for v in np.ravel(given)],
                   int(year.n_groups))).encode())
    for arr in (year.scores, year.groups, year.capacities):
        a = np.ascontiguousarray(arr)
        h.update(repr((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _to_json(b: A.PathBenchmarks) -> dict:
    return {"m": [float(v) for v in b.m], "opt": float(b.opt), "opt_unc": float(b.opt_unc),
            "sizes": [int(v) for v in b.sizes], "feasible": bool(b.feasible)}


def _from_json(d: dict) -> A.PathBenchmarks:
    return A.PathBenchmarks(np.asarray(d["m"], dtype=float), float(d["opt"]), float(d["opt_unc"]),
                            np.asarray(d["sizes"], dtype=np.int64), bool(d["feasible"]))


def _read(path: Path) -> A.PathBenchmarks | None:
    try:
        return _from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write(path: Path, b: A.PathBenchmarks) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w") as f:
            json.dump(_to_json(b), f)
        os.replace(tmp, path)
    except OSError:
        pass


def benchmarks(year: A.Year, rule: str, given=None) -> A.PathBenchmarks:
    """:func:`assignment.benchmarks` of ``year``, from the cache when it holds them."""
    d = cache_dir()
    if d is None:
        return A.benchmarks(year, rule, given)
    key = year_key(year, rule, given)
    path = d / key[:2] / f"{key}.json"
    got = _read(path) if path.is_file() else None
    if got is not None and len(got.m) == year.n_groups:
        return got
    b = A.benchmarks(year, rule, given)
    _write(path, b)
    return b


class Background:
    """The benchmarks of many years, solved in a thread while the caller waits for the
    assigner's draws (the workers draw in other processes; the wait releases the GIL).
    ``result()`` returns them in order; an exception in an LP is raised there."""

    def __init__(self, years: list, rule: str, given=None):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="min_requirement-lp")
        self._fut = self._pool.submit(lambda: [benchmarks(y, rule, given) for y in years])

    def result(self) -> list[A.PathBenchmarks]:
        try:
            return self._fut.result()
        finally:
            self._pool.shutdown(wait=True)
