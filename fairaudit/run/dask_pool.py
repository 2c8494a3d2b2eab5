"""The Dask pool: the audit's tasks on a ``dask.distributed`` cluster.

Each task is a Dask task that runs, on one of the cluster's machines, in a local worker
process of that machine (a :class:`~fairaudit.run.workers.WorkerPool` there), so a hang,
exit or crash is contained exactly as locally and the worker's reply is read there as
data only; it comes back to the audit process as the same data-only frame
(:mod:`fairaudit.run.wire`), with the audit's secret. Each audit has its own worker
processes on the cluster (keyed by an audit id, stopped when the audit releases the
pool): no state of one audit reaches the next.
"""
from __future__ import annotations

import itertools
import json
import secrets
import threading
import time

from ..errors import TargetError
from . import wire
from .allocator_notes import AllocatorNotes
from .workers import _LINE_CHARS, DEFAULT_MEMORY_LIMIT, OUTPUT_LINES, OutputLog, WorkerPool

_DASK_POOLS: dict = {}
_DASK_LOCK = threading.Lock()


def _dask_task(audit_id: str, payload, timeout: float, memory_limit, secret: bytes, task):
    """Runs on a Dask worker: the task in a local worker process of that machine (so a
    hang, exit or crash there is contained exactly as locally, and its reply read as data
    only). Returns the reply as a frame with the audit's secret, the captured output as
    JSON and the restarts — data the audit process reads without unpickling anything the
    allocator made."""
    key = (audit_id, threading.get_ident())
    with _DASK_LOCK:
        pool = _DASK_POOLS.get(key)
        if pool is None:
            pool = _DASK_POOLS[key] = WorkerPool(payload, jobs=1, timeout=timeout, memory_limit=memory_limit)
    try:
        pool.probe()
        reply = pool.run_one(task)
    except Exception as e:  # noqa: BLE001
        with _DASK_LOCK:
            _DASK_POOLS.pop(key, None)
        pool.close()
        reply = wire.Failed(None, wire.Failure(f"the allocator could not be loaded on the Dask worker: {e}"))
    frame = wire.encode_reply(reply, secret, pool.take_notes())
    return frame, json.dumps(pool.take_output()), int(pool.restarts)


def _dask_release(audit_id: str) -> int:
    """Runs on every Dask worker when an audit ends: stop its worker processes there."""
    with _DASK_LOCK:
        keys = [k for k in _DASK_POOLS if k[0] == audit_id]
        pools = [_DASK_POOLS.pop(k) for k in keys]
    for p in pools:
        p.close()
    return len(pools)


def _output(text) -> dict | None:
    """The captured output a Dask task reported, re-typed (lines of text and counts)."""
    try:
        d = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if not isinstance(d, dict):
        return None
    out = {}
    for s in ("stdout", "stderr"):
        lines = d.get(s)
        if isinstance(lines, list):
            out[s] = [str(x)[:_LINE_CHARS + 2] for x in lines[:OUTPUT_LINES]]
            more = d.get(f"{s}_more_lines", 0)
            out[f"{s}_more_lines"] = more if type(more) is int and more >= 0 else 0
    return out or None


class DaskPool:
    """The same tasks on a Dask cluster (``dask.distributed``): each task is a Dask task
    that runs in a worker process on one of the cluster's machines (see
    :func:`_dask_task`). ``scheduler`` is the scheduler's address (``tcp://HOST:PORT``)
    or a :class:`distributed.Client`."""

    def __init__(self, payload, scheduler, *, timeout: float = 30.0, memory_limit: int | None = DEFAULT_MEMORY_LIMIT):
        try:
            from distributed import Client
        except ImportError:
            from ..extras import install_hint
            raise TargetError(f"--scheduler needs dask.distributed, from the 'dask' extra: {install_hint('dask')}") from None
        if isinstance(scheduler, str):
            try:
                self.client = Client(scheduler, timeout=30, set_as_default=False)
            except Exception as e:  # noqa: BLE001
                raise TargetError(f"cannot connect to the Dask scheduler at {scheduler}: {type(e).__name__}: {e}") from None
            self._own = True
        else:
            self.client, self._own = scheduler, False
        self.payload = payload
        self.audit_id = secrets.token_hex(16)      # this audit's worker processes on the cluster (fresh state)
        self.secret = secrets.token_bytes(wire.SECRET_BYTES)
        self.timeout = float(timeout or 0.0)
        self.memory_limit = memory_limit
        self.output = OutputLog()
        self.notes = AllocatorNotes()
        self.tids = itertools.count()
        self.futures: dict = {}
        self.restarts = 0
        self.meta: dict | None = None
        try:
            self.jobs = max(1, sum(self.client.nthreads().values()))
        except Exception:  # noqa: BLE001
            self.jobs = 1

    def probe(self) -> dict:
        if self.meta is None:
            fut = self.client.submit(_dask_probe, self.payload, self.memory_limit, pure=False)
            ok, meta = fut.result()
            if not ok:
                raise TargetError(str(meta))
            try:
                self.meta = wire.decode_reply({"t": "loaded", "meta": json.loads(meta)}, [])[0].meta
            except (ValueError, wire.WireError) as e:
                raise TargetError(f"the Dask worker described the allocator in a form fairaudit cannot read ({e})") \
                    from None
        return self.meta

    def slots(self, grow: bool) -> int:
        return self.jobs if grow else 1

    def busy(self) -> bool:
        return bool(self.futures)

    def submit(self, task, grow: bool = True) -> int:
        tid = next(self.tids)
        fut = self.client.submit(_dask_task, self.audit_id, self.payload, self.timeout, self.memory_limit,
                                 self.secret, task, pure=False, retries=0)
        self.futures[fut] = tid
        return tid

    def poll(self, timeout: float) -> list:
        if not self.futures:
            return []
        end = time.monotonic() + timeout
        pause = 0.002
        while True:
            done = [f for f in self.futures if f.done()]
            if done or time.monotonic() >= end:
                break
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        out = []
        for fut in done:
            tid = self.futures.pop(fut)
            try:
                frame, output, restarts = fut.result()
            except Exception as e:  # noqa: BLE001 - the Dask worker itself was lost
                out.append((tid, wire.Failed(tid, wire.Failure(
                    f"the Dask task failed ({type(e).__name__}: {e}); the cluster's worker running it was lost"))))
                continue
            try:
                reply, notes = wire.decode_reply(*wire.frame_from_bytes(frame, self.secret))
            except wire.WireError as e:
                reply, notes = wire.Failed(tid, wire.Failure(f"the Dask task's reply cannot be read ({e})")), None
            self.output.merge(_output(output))
            self.notes.merge(notes)
            self.restarts = max(self.restarts, restarts if type(restarts) is int else 0)
            if isinstance(reply, (wire.Done, wire.BudgetCut, wire.Failed, wire.Repro)):
                reply.tid = tid
            else:
                reply = wire.Failed(tid, wire.Failure("the Dask task answered with something other than a result"))
            out.append((tid, reply))
        return out

    def cancel(self, tids) -> None:
        tids = set(tids)
        for fut, t in list(self.futures.items()):
            if t in tids:
                fut.cancel()
                self.futures.pop(fut, None)

    def take_output(self):
        return self.output.take()

    def take_notes(self):
        return self.notes.take()

    def release(self) -> None:
        self.close()

    def close(self):
        for fut in list(self.futures):
            fut.cancel()
        self.futures.clear()
        try:
            self.client.run(_dask_release, self.audit_id)
        except Exception:  # noqa: BLE001 - the cluster is gone: so are its processes
            pass
        if self._own:
            try:
                self.client.close()
            except Exception:  # noqa: BLE001
                pass


def _dask_probe(payload, memory_limit):
    pool = WorkerPool(payload, jobs=1, timeout=0, memory_limit=memory_limit)
    try:
        return True, json.dumps(pool.probe())
    except Exception as e:  # noqa: BLE001
        return False, str(e)
    finally:
        pool.close()
