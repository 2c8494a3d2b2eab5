"""The pools behind one protocol, built in one place; ``--jobs`` read in one place.

A pool runs the sampler's tasks (:mod:`fairaudit.run.wire`) somewhere other than the
audit process: local worker processes (:class:`~fairaudit.run.workers.WorkerPool`) or a
Dask cluster (:class:`~fairaudit.run.dask_pool.DaskPool`). The sampler sees only
:class:`Pool`.
"""
from __future__ import annotations

import os
from typing import Protocol

from .dask_pool import DaskPool
from .workers import WorkerPool


def worker_count(jobs) -> int:
    """The one reading of ``--jobs``: N ≥ 1 workers as given; 0 or -1 (any negative) one per
    core; None 1. The same for a file, a callable and every other
    allocator an audit opens."""
    if jobs is None:
        return 1
    jobs = int(jobs)
    if jobs >= 1:
        return jobs
    return max(1, os.cpu_count() or 1)


class Pool(Protocol):
    """What the sampler needs of a pool: submit tasks (:class:`~fairaudit.run.wire.DrawTask`,
    :class:`~fairaudit.run.wire.ReproTask`), poll for named replies, cancel, and release."""

    jobs: int
    restarts: int

    def probe(self) -> dict:
        """Load the allocator (in one worker) and return its description."""

    def slots(self, grow: bool) -> int:
        """Tasks worth keeping in flight (``grow``: the work left is worth starting every worker)."""

    def submit(self, task, grow: bool = True) -> int:
        """Queue a task; its id."""

    def poll(self, timeout: float) -> list:
        """Finished tasks within ``timeout`` s: ``[(tid, reply)]`` with a named reply."""

    def busy(self) -> bool:
        """Is any task queued or running?"""

    def cancel(self, tids) -> None:
        """Forget the given tasks (stopping whatever runs them)."""

    def take_output(self) -> dict | None:
        """The allocator's stdout/stderr since the last take."""

    def take_notes(self) -> dict | None:
        """The allocator's warnings and NaN outputs since the last take."""

    def release(self) -> None:
        """The audit is done with the pool."""

    def close(self) -> None:
        """Stop everything now."""


def open_pool(payload, *, jobs: int, timeout: float, memory_limit, scheduler=None) -> Pool:
    """The one place pools are built: on the Dask cluster at ``scheduler``, else local
    worker processes (``jobs`` of them at most; see :func:`worker_count`)."""
    if scheduler is not None:
        return DaskPool(payload, scheduler, timeout=timeout, memory_limit=memory_limit)
    return WorkerPool(payload, jobs=jobs, timeout=timeout, memory_limit=memory_limit)
