"""The worker process: loads the allocator and runs tasks for the audit process.

Started by :func:`fairaudit.run.workers.start_worker` as a fresh Python process
(``python -c "from fairaudit.run.worker_main import main; main()" RFD WFD STATE MEM``).
It reads requests (:mod:`fairaudit.run.wire`: ``load``, ``draw``, ``repro``) from the
audit process and answers each with one data-only frame; it runs the task with the
very functions the in-process sampler uses (:mod:`fairaudit.run.task`).

A worker is started *before* it knows its allocator (a spare, warm: Python and numpy
imported) and loads exactly one allocator, once: a worker that has loaded an allocator
is never given another audit (issue 26.3: no state of one audit reaches the next).
"""
from __future__ import annotations

import mmap
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from ..errors import AllocatorError, AllocatorTimeout, BudgetExhausted, FairauditError
from . import wire
from .allocator_notes import PROCESS_NOTES
from .load import load_target
from .spec import TargetSpec
from .task import repro_outcomes, run_task

#: slots of the shared state block: [call start (time.monotonic, 0 = not in a call), draw,
#: generator index, size, item of a batch]
STATE_SLOTS = 5
#: inputs a worker keeps (sent once, then named by key); the audit process mirrors this
INSTS_KEPT = 8


def load_payload(payload):
    """A Target from what the audit process sent: ``("spec", spec)``, ``("pickle", cloudpickle
    bytes)`` (a callable; the audit process made these bytes) or ``("source", spec, filename,
    source, func)`` (a file's bytes, for another machine)."""
    kind = payload[0]
    if kind == "spec":
        return load_target(payload[1])
    if kind == "pickle":
        import pickle
        return pickle.loads(payload[1])
    if kind == "source":
        _, spec, filename, source, func_name = payload
        parsed = TargetSpec.parse(spec)
        p = Path(parsed.location)
        try:
            same = p.is_file() and p.read_bytes() == source
        except OSError:
            same = False
        if not same:   # another machine: a copy of the file in a private directory
            d = Path(tempfile.mkdtemp(prefix="fairaudit-allocator-"))
            p = d / filename
            p.write_bytes(source)
        t = load_target(str(parsed.replace_location(str(p))))
        t.path = parsed.location if func_name else spec
        return t
    raise ValueError(f"unknown payload {kind!r}")


def target_meta(t) -> dict:
    return {"kind": t.kind, "name": t.name, "path": t.path, "sha256": t.sha256, "k": t.k,
            "vectorized": t.vectorized, "arg_names": sorted(t.arg_names),
            "accepts_var_kwargs": t.accepts_var_kwargs, "doc": t.doc, "load_spec": t.load_spec,
            "claims": getattr(t, "claims", "real"), "kind_guessed": getattr(t, "kind_guessed", False),
            "columns": list(getattr(t, "columns", ())), "n_inputs": getattr(t, "n_inputs", None)}


def _set_memory_limit(limit: int | None) -> None:
    if not limit:
        return
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))   # hard too: the allocator cannot raise it
    except (ImportError, ValueError, OSError):   # not Linux/macOS, or not allowed: run without a cap
        pass


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when the audit process dies; elsewhere a
    thread polls for the parent."""
    parent = os.getppid()
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except Exception:
        pass

    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)
    threading.Thread(target=watch, daemon=True).start()


def _failure(e: AllocatorError, item: int = 0) -> wire.Failure:
    from ..frames import user_frames
    return wire.Failure(problem=e.problem, draw=e.draw, generator_index=e.generator_index, size=e.size,
                        timeout=isinstance(e, AllocatorTimeout), item=item,
                        frames=getattr(e, "frames", None) or user_frames(e.__cause__))


class _Worker:
    """The worker's side: its allocator, the inputs it holds, and the state block."""

    def __init__(self, state):
        self.state = state
        self.target = None
        self.insts: dict = {}

    def watch(self, j, g=None, size=None):
        state = self.state
        if j is None:
            state[0] = 0.0
            return
        state[1] = j
        state[2] = j if g is None else g
        state[3] = -1 if size is None else size
        state[0] = time.monotonic()

    def hold(self, key, inst):
        """The input named ``key`` (storing ``inst`` when it came with the request)."""
        if inst is not None:
            self.insts[key] = inst
            while len(self.insts) > INSTS_KEPT:      # the audit process mirrors this eviction
                self.insts.pop(next(iter(self.insts)))
        return self.insts.get(key)

    def load(self, payload, path):
        sys.path[:] = list(path) + [p for p in sys.path if p not in path]
        try:
            self.target = load_payload(payload)
            return wire.Loaded(target_meta(self.target))
        except FairauditError as e:
            return wire.LoadFailed(str(e))
        except BaseException as e:  # noqa: BLE001 - the user's module, whatever it raises
            return wire.LoadFailed(f"loading the allocator raised {type(e).__name__}: {e}")

    def draw(self, tid, items, budget_left):
        """A batch of draw ranges; the first failure (or the budget) ends the batch."""
        deadline = time.monotonic() + budget_left if budget_left is not None else None
        outs, calls, t0 = [], 0, time.perf_counter()
        for idx, (key, inst, seed, stream, start, stop, chunk) in enumerate(items):
            self.state[4] = idx
            held = self.hold(key, inst)
            if held is None:
                return wire.Resend(tid)
            try:
                arr, c = run_task(self.target, held, seed, stream, start, stop, chunk, 0.0, deadline=deadline,
                                  watch=self.watch)
            except BudgetExhausted as e:
                return wire.BudgetCut(tid, outs, idx, e.done, e.outcomes, calls + e.calls, time.perf_counter() - t0)
            except AllocatorError as e:
                if getattr(e, "mutated", False):
                    self.insts.pop(key, None)          # this copy of the input is spoiled
                return wire.Failed(tid, _failure(e, idx))
            outs.append(arr)
            calls += c
        return wire.Done(tid, outs, calls, time.perf_counter() - t0)

    def repro(self, tid, key, inst, seed):
        held = self.hold(key, inst)
        if held is None:
            return wire.Resend(tid)
        return wire.Repro(tid, repro_outcomes(self.target, held, seed, timeout=0.0, watch=self.watch))


def main() -> None:  # pragma: no cover - runs in the worker process
    rfd, wfd, state_path, mem = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    _set_memory_limit(mem or None)
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the audit's to handle
    from multiprocessing.connection import Connection
    inp = Connection(rfd, writable=False)
    fd = os.open(state_path, os.O_RDWR)
    mm = mmap.mmap(fd, STATE_SLOTS * 8)
    state = np.frombuffer(mm, dtype=np.float64)
    worker = _Worker(state)
    secret = b"\0" * wire.SECRET_BYTES
    try:                    # what loading any allocator needs, imported while the worker waits as a spare
        import cloudpickle  # noqa: F401
    except ImportError:
        pass
    while True:
        try:
            msg = inp.recv()
        except (EOFError, OSError):
            os._exit(0)
        op = msg[0]
        tid = msg[1] if op in ("draw", "repro") else None
        try:
            if op == "load":
                if worker.target is not None:        # one allocator per worker process, ever
                    os._exit(0)
                _, payload, path, secret, cwd, env = msg
                try:
                    os.chdir(cwd)
                except OSError:
                    pass
                os.environ.clear()
                os.environ.update(env)
                reply = worker.load(payload, path)
            elif op == "draw":
                _, tid, items, budget_left = msg
                reply = worker.draw(tid, items, budget_left)
            elif op == "repro":
                _, tid, key, inst, seed = msg
                reply = worker.repro(tid, key, inst, seed)
            else:
                reply = wire.Failed(tid, wire.Failure(f"unknown request {op!r}"))
        except BaseException as e:  # noqa: BLE001 - a fairaudit bug in the worker: report, do not die
            import traceback
            reply = wire.Failed(tid, wire.Failure(f"fairaudit's worker failed: {type(e).__name__}: {e}",
                                                  traceback=traceback.format_exc()[-3000:]))
        finally:
            state[0] = 0.0
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        notes = PROCESS_NOTES.take()         # the allocator's warnings, with the reply they belong to
        try:
            frame = wire.encode_reply(reply, secret, notes)
        except Exception as e:  # noqa: BLE001 - an outcome or description that is not plain data
            frame = wire.encode_reply(wire.Failed(tid, wire.Failure(
                f"the allocator's outcome could not be sent back: {type(e).__name__}: {e}")), secret, notes)
        try:
            wire.write_frame(wfd, frame)
        except OSError:
            os._exit(0)
