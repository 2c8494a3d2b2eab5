"""Allocator calls in isolated worker processes (and on a Dask cluster).

The audit process never runs the allocator's code. Each worker is a fresh Python
process (``subprocess``, not ``fork``: nothing of the audit is inherited) that loads the
allocator itself and runs *tasks* — draws ``start..stop`` of one stream on one input —
with the very function the in-process sampler uses (:func:`fairaudit.sampler._run_task`),
so outcomes, validation and messages are the same whichever way the draws are made.

What the audit process does that an allocator cannot undo:

- **Timeouts.** Before each call the worker writes the call's start time and draw into a
  small shared-memory block; the audit process reads it while it waits and, when a call
  has run longer than the per-call timeout, kills the worker (``SIGKILL``) and starts a
  new one. No exception is raised inside the allocator, so ``except BaseException``,
  busy loops and C code holding the GIL make no difference.
- **Exits and crashes.** ``SystemExit`` and ``KeyboardInterrupt`` raised by the allocator
  are caught in the worker like any exception; ``os._exit``, a segfault or a kill by the
  operating system end only the worker, and the audit process, seeing its pipe close,
  reports the call that was running (input and draw) from the shared block.
- **Memory.** Each worker caps its address space (``resource.setrlimit(RLIMIT_AS)``,
  ``--memory-limit``), so a runaway allocation is a ``MemoryError`` in the worker.
- **Output.** A worker's stdout and stderr (file descriptors 1 and 2, so C-level output
  and crash messages too) go to files the audit process reads after each task; the first
  lines are kept for the report, the rest counted. Nothing reaches the terminal.
- **Signals.** Workers run in their own session, so a Ctrl-C at the terminal interrupts
  the audit, which then kills its workers; a worker whose parent is gone exits.

The executors (:class:`WorkerPool`, :class:`DaskPool`) only run what they are given;
the sampler decides the tasks (their sizes come from the measured cost of a call), so a
draw's generator — and therefore every result — does not depend on the executor.
"""
from __future__ import annotations

import atexit
import itertools
import mmap
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path

import numpy as np

from .allocator_notes import AllocatorNotes

#: default ``--memory-limit``: address space per worker process
DEFAULT_MEMORY_LIMIT = 4 * 2**30
#: lines of an allocator's stdout / stderr kept per check (the rest are counted)
OUTPUT_LINES = 20
_LINE_CHARS = 300
_INSTS_KEPT = 8           # inputs a worker keeps (sent once, then named by key)
_STATE_SLOTS = 5          # [call start (time.monotonic, 0 = not in a call), draw, generator index, size,
                          #  item of a batch of tasks]


def parse_memory(value) -> int | None:
    """``"4G"``, ``"512M"``, ``"1.5GiB"``, ``2**30`` → bytes; ``0`` / ``"none"`` → no limit."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value) if value > 0 else None
    s = str(value).strip().lower().replace(" ", "")
    if s in ("", "0", "none", "off", "unlimited"):
        return None
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    for suffix in ("ib", "b"):
        if s.endswith(suffix) and len(s) > len(suffix) and s[-len(suffix) - 1] in units:
            s = s[: -len(suffix)]
            break
    mult = 1
    if s and s[-1] in units:
        mult, s = units[s[-1]], s[:-1]
    try:
        v = float(s)
    except ValueError:
        raise ValueError(f"not a memory size: {value!r} (use e.g. 4G, 512M or 0 for no limit)") from None
    if v <= 0:
        return None
    return int(v * mult)


def format_memory(nbytes: int | None) -> str:
    if not nbytes:
        return "no limit"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= size:
            return f"{nbytes / size:g} {unit}"
    return f"{nbytes} bytes"


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def death_reason(returncode: int | None, memory_limit: int | None) -> str:
    """What ended a worker process, in words."""
    if returncode is None:
        return "the worker process running the allocator stopped responding"
    if returncode < 0:
        sig = -returncode
        name = _signal_name(sig)
        what = {signal.SIGSEGV: "a segmentation fault", signal.SIGBUS: "a bus error",
                signal.SIGABRT: "an abort", signal.SIGFPE: "a floating-point exception",
                signal.SIGILL: "an illegal instruction"}.get(sig)
        if what:
            return f"the allocator crashed the worker process ({what}, {name})"
        if sig == signal.SIGKILL:
            return ("the worker process running the allocator was killed (SIGKILL) — by the operating system, "
                    f"e.g. out of memory (memory limit per worker: {format_memory(memory_limit)})")
        return f"the worker process running the allocator was ended by {name}"
    return (f"the worker process running the allocator exited with code {returncode} during the call "
            f"(the allocator called os._exit or ended the process)")


# ---------------------------------------------------------------------------
# Output capture (shared by the local workers and the Dask path)
# ---------------------------------------------------------------------------

class OutputLog:
    """The first lines of an allocator's stdout and stderr, and how many more there were."""

    def __init__(self):
        self.lines = {"stdout": [], "stderr": []}
        self.more = {"stdout": 0, "stderr": 0}
        self._partial = {"stdout": "", "stderr": ""}

    def add(self, stream: str, text: str) -> None:
        if not text:
            return
        text = self._partial[stream] + text
        parts = text.split("\n")
        self._partial[stream] = parts.pop()          # an unterminated last line waits for its end
        if len(self._partial[stream]) > 64 * _LINE_CHARS:
            parts.append(self._partial[stream])
            self._partial[stream] = ""
        self._keep(stream, parts)

    def _keep(self, stream, parts):
        room = OUTPUT_LINES - len(self.lines[stream])
        for line in parts[:max(room, 0)]:
            line = line.rstrip("\r")
            self.lines[stream].append(line if len(line) <= _LINE_CHARS else line[:_LINE_CHARS] + " …")
        self.more[stream] += max(len(parts) - max(room, 0), 0)

    def merge(self, other: dict | None) -> None:
        if not other:
            return
        for s in ("stdout", "stderr"):
            self._keep(s, list(other.get(s, [])))
            self.more[s] += int(other.get(f"{s}_more_lines", 0))

    def take(self) -> dict | None:
        """What was captured since the last take (None when nothing), as JSON-ready data."""
        for s in ("stdout", "stderr"):
            if self._partial[s]:
                self._keep(s, [self._partial[s]])
                self._partial[s] = ""
        if not any(self.lines.values()) and not any(self.more.values()):
            return None
        out = {}
        for s in ("stdout", "stderr"):
            if self.lines[s] or self.more[s]:
                out[s] = list(self.lines[s])
                out[f"{s}_more_lines"] = self.more[s]
        self.__init__()
        return out


# ---------------------------------------------------------------------------
# The worker process
# ---------------------------------------------------------------------------

def _load_payload(payload):
    """A Target from what the audit process sent: ``("spec", spec, sys_path)``,
    ``("pickle", cloudpickle bytes)`` or ``("source", spec, filename, source, func)``."""
    from .targets import load_target
    kind = payload[0]
    if kind == "spec":
        return load_target(payload[1])
    if kind == "pickle":
        return pickle.loads(payload[1])
    if kind == "source":
        _, spec, filename, source, func_name = payload
        p = Path(spec.rsplit(":", 1)[0] if func_name else spec)
        try:
            same = p.is_file() and p.read_bytes() == source
        except OSError:
            same = False
        if not same:   # another machine: a copy of the file in a private directory
            d = Path(tempfile.mkdtemp(prefix="fairaudit-allocator-"))
            p = d / filename
            p.write_bytes(source)
        t = load_target(f"{p}:{func_name}" if func_name else str(p))
        t.path = spec.rsplit(":", 1)[0] if func_name and spec.endswith(":" + func_name) else spec
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


def _worker_main() -> None:  # pragma: no cover - runs in the worker process
    rfd, wfd, state_path, mem = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    _set_memory_limit(mem or None)
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the audit's to handle
    from multiprocessing.connection import Connection
    inp, out = Connection(rfd, writable=False), Connection(wfd, readable=False)
    fd = os.open(state_path, os.O_RDWR)
    mm = mmap.mmap(fd, _STATE_SLOTS * 8)
    state = np.frombuffer(mm, dtype=np.float64)

    def watch(j, g=None, size=None):
        if j is None:
            state[0] = 0.0
            return
        state[1] = j
        state[2] = j if g is None else g
        state[3] = -1 if size is None else size
        state[0] = time.monotonic()

    from .errors import AllocatorError, BudgetExhausted, FairauditError
    from .sampler import _run_task, _repro_outcomes
    from .allocator_notes import PROCESS_NOTES
    target = None
    insts: dict = {}
    while True:
        try:
            msg = inp.recv()
        except (EOFError, OSError):
            os._exit(0)
        op = msg[0]
        try:
            if op == "load":
                _, payload, path = msg
                sys.path[:] = list(path) + [p for p in sys.path if p not in path]
                try:
                    target = _load_payload(payload)
                    reply = ("loaded", target_meta(target))
                except FairauditError as e:
                    reply = ("load_error", str(e))
                except BaseException as e:  # noqa: BLE001 - the user's module, whatever it raises
                    reply = ("load_error", f"loading the allocator raised {type(e).__name__}: {e}")
            elif op == "tasks":
                # a batch of small draw ranges (several streams or inputs) in one message: one
                # round trip for many one-draw episodes; the first failure ends the batch
                tid, items = msg[1], msg[2]
                outs, calls, t0 = [], 0, time.perf_counter()
                reply = None
                for idx, (inst, seed, stream, start, stop, chunk) in enumerate(items):
                    state[4] = idx
                    try:
                        arr, c = _run_task(target, inst, seed, stream, start, stop, chunk, 0.0, watch=watch)
                    except AllocatorError as e:
                        reply = ("fail", tid, {**_error_info(e), "item": idx})
                        break
                    outs.append(arr)
                    calls += c
                if reply is None:
                    reply = ("done", tid, outs, calls, time.perf_counter() - t0)
            elif op in ("task", "repro"):
                tid, key, inst = msg[1], msg[2], msg[3]
                if inst is not None:
                    insts[key] = inst
                    while len(insts) > _INSTS_KEPT:      # the audit process mirrors this eviction
                        insts.pop(next(iter(insts)))
                inst = insts.get(key)
                if inst is None:
                    reply = ("resend", tid)
                elif op == "repro":
                    reply = ("done", tid, _repro_outcomes(target, inst, msg[4], timeout=0.0, watch=watch), 2, 0.0)
                else:
                    seed, stream, start, stop, chunk, budget_left = msg[4:10]
                    deadline = time.monotonic() + budget_left if budget_left is not None else None
                    t0 = time.perf_counter()
                    try:
                        arr, calls = _run_task(target, inst, seed, stream, start, stop, chunk, 0.0,
                                               deadline=deadline, watch=watch)
                        reply = ("done", tid, arr, calls, time.perf_counter() - t0)
                    except BudgetExhausted as e:
                        reply = ("budget", tid, e.done, e.outcomes, e.calls, time.perf_counter() - t0)
                    except AllocatorError as e:
                        if getattr(e, "mutated", False):
                            insts.pop(key, None)          # this copy of the input is spoiled
                        reply = ("fail", tid, _error_info(e))
            else:
                reply = ("fail", msg[1] if len(msg) > 1 else None, {"problem": f"unknown request {op!r}"})
        except BaseException as e:  # noqa: BLE001 - a fairaudit bug in the worker: report, do not die
            import traceback
            reply = ("fail", msg[1] if len(msg) > 1 else None,
                     {"problem": f"fairaudit's worker failed: {type(e).__name__}: {e}",
                      "traceback": traceback.format_exc()[-3000:]})
        finally:
            state[0] = 0.0
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        try:
            notes = PROCESS_NOTES.take()
            if notes is not None:             # the allocator's warnings, before the reply they belong to
                out.send(("notes", notes))
            out.send(reply)
        except (EOFError, OSError):
            os._exit(0)
        except Exception as e:  # an outcome that does not pickle
            out.send(("fail", reply[1], {"problem": f"the allocator's outcome could not be sent back: {e}"}))


def _task_calls(op, args) -> int:
    from .run.containment import task_calls
    return task_calls(op, args)


def _payload_files(payload) -> tuple:
    """The allocator file a worker must be able to read (for running it as ``nobody``)."""
    if payload and payload[0] in ("spec", "source"):
        spec = payload[1]
        file_part = spec.rsplit(":", 1)[0] if ":" in spec and not spec.endswith(".py") else spec
        if Path(file_part).is_file():
            return (str(Path(file_part).resolve()),)
    return ()


def _error_info(e) -> dict:
    from .errors import AllocatorTimeout
    from .frames import user_frames
    return {"problem": e.problem, "draw": e.draw, "generator_index": e.generator_index, "size": e.size,
            "timeout": isinstance(e, AllocatorTimeout), "frames": e.frames or user_frames(e.__cause__)}


# ---------------------------------------------------------------------------
# The audit side: a pool of worker processes
# ---------------------------------------------------------------------------

_LIVE_POOLS: "weakref.WeakSet[WorkerPool]" = weakref.WeakSet()


@atexit.register
def _close_all():  # pragma: no cover - interpreter exit
    for p in list(_LIVE_POOLS):
        p.close()


class _Worker:
    _ids = itertools.count()

    def __init__(self, pool: "WorkerPool"):
        self.id = next(self._ids)
        d = pool.tmpdir
        self.state_path = os.path.join(d, f"state-{self.id}")
        with open(self.state_path, "wb") as f:
            f.write(b"\0" * (_STATE_SLOTS * 8))
        self.out_path = os.path.join(d, f"stdout-{self.id}")
        self.err_path = os.path.join(d, f"stderr-{self.id}")
        fout = open(self.out_path, "ab")
        ferr = open(self.err_path, "ab")
        r1, w1 = os.pipe()      # audit → worker
        r2, w2 = os.pipe()      # worker → audit
        env = dict(os.environ)
        pkg_root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join([pkg_root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env.pop("PYTHONFAULTHANDLER", None)
        env["FAIRAUDIT_WORKER"] = "1"      # import fairaudit without scipy (fairaudit/__init__.py)
        from .run import containment
        argv = containment.launch(
            [sys.executable, "-c", "from fairaudit.workers import _worker_main; _worker_main()",
             str(r1), str(w2), self.state_path, str(pool.memory_limit or 0)],
            env, memory_limit=pool.memory_limit, keep_fds=(r1, w2), readable=pool.readable,
            writable=(self.state_path,), private_tmp=os.path.join(d, "tmp"))
        try:
            self.proc = subprocess.Popen(argv, pass_fds=(r1, w2), stdin=subprocess.DEVNULL, stdout=fout, stderr=ferr,
                                         start_new_session=True, env=env, close_fds=True)
            scope = containment.current_scope()
            if scope is not None:
                scope.register(self.proc.pid)
        finally:
            os.close(r1)
            os.close(w2)
            fout.close()
            ferr.close()
        from multiprocessing.connection import Connection
        self.send_conn = Connection(w1, readable=False)
        self.recv_conn = Connection(r2, writable=False)
        fd = os.open(self.state_path, os.O_RDWR)
        try:
            self._mm = mmap.mmap(fd, _STATE_SLOTS * 8)
        finally:
            os.close(fd)
        self.state = np.frombuffer(self._mm, dtype=np.float64)
        self.pos = {"stdout": 0, "stderr": 0}
        self.ready = False          # loaded the target
        self.task = None            # tid running
        self.insts: dict = {}       # keys of the inputs the worker holds, oldest first
        self.started = time.monotonic()
        self.watch = containment.CallWatch(pool.timeout)

    def send(self, msg):
        self.send_conn.send(msg)

    def read_output(self, log: OutputLog):
        for stream, path in (("stdout", self.out_path), ("stderr", self.err_path)):
            try:
                with open(path, "rb") as f:
                    f.seek(self.pos[stream])
                    data = f.read(4 * 2**20)
                    self.pos[stream] = f.tell()
                    rest = os.fstat(f.fileno()).st_size - self.pos[stream]
            except OSError:
                continue
            if data:
                log.add(stream, data.decode("utf-8", errors="replace"))
            if rest > 0:     # a flood: count the lines we skip reading
                log.more[stream] += rest // 80 + 1
                self.pos[stream] += rest
            if self.pos[stream] > 2**24:          # keep the file small: start it over
                try:
                    os.truncate(path, 0)
                    self.pos[stream] = 0
                except OSError:
                    pass

    def kill(self):
        try:
            self.proc.kill()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for c in (self.send_conn, self.recv_conn):
            try:
                c.close()
            except OSError:
                pass
        try:
            self.state = None
            self._mm.close()
        except (BufferError, ValueError):
            pass

    def returncode(self, wait: float = 2.0):
        try:
            return self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return None


class WorkerLost(Exception):
    pass


class WorkerPool:
    """Up to ``jobs`` worker processes that load the allocator described by ``payload``
    and run tasks; see the module docstring. ``timeout`` is per allocator call."""

    def __init__(self, payload, *, jobs: int = 1, timeout: float = 30.0, memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
                 load_timeout: float = 120.0):
        self.payload = payload
        self.jobs = max(1, int(jobs))
        self.timeout = float(timeout or 0.0)
        self.memory_limit = memory_limit
        self.load_timeout = max(float(load_timeout), self.timeout)
        self.tmpdir = tempfile.mkdtemp(prefix="fairaudit-workers-")
        self.readable = _payload_files(payload)
        self.workers: list[_Worker] = []
        self.output = OutputLog()
        self.notes = AllocatorNotes()
        self.meta: dict | None = None
        self.tids = itertools.count()
        self._inst_keys: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
        self._inst_counter = itertools.count()
        self.pending: dict[int, tuple[_Worker, tuple]] = {}
        self.queue: list[tuple[int, tuple]] = []
        self.restarts = 0
        self.closed = False
        _LIVE_POOLS.add(self)
        self._finalizer = weakref.finalize(self, WorkerPool._cleanup, self.workers, self.tmpdir)

    # -- lifecycle -------------------------------------------------------------
    def _spawn(self) -> _Worker:
        w = _Worker(self)
        w.send(("load", self.payload, list(sys.path)))
        self.workers.append(w)
        return w

    def probe(self) -> dict:
        """Start the first worker, load the allocator there and return its description
        (kind, signature, …). Raises :class:`TargetError` when it cannot be loaded."""
        from .errors import TargetError
        if self.meta is not None:
            return self.meta
        w = self.workers[0] if self.workers else self._spawn()
        self._await_loaded(w)
        if self.meta is None:
            raise TargetError("the allocator could not be loaded in a worker process")
        return self.meta

    def _await_loaded(self, w: _Worker):
        from .errors import TargetError
        what = self.payload[1] if self.payload[0] in ("spec", "source") else "the allocator"
        deadline = time.monotonic() + self.load_timeout
        while not w.ready:
            left = deadline - time.monotonic()
            if left <= 0:
                w.read_output(self.output)
                self._drop(w)
                raise TargetError(f"{what}: loading it took longer than {self.load_timeout:g} s")
            if not w.recv_conn.poll(min(left, 0.5)):
                continue
            try:
                msg = w.recv_conn.recv()
            except (EOFError, OSError):
                rc = w.returncode()
                w.read_output(self.output)
                self._drop(w)
                raise TargetError(f"{what}: importing it ended the worker process "
                                  f"({death_reason(rc, self.memory_limit).replace('during the call ', '')})") from None
            self._on_message(w, msg)

    def close(self):
        if self.closed:
            return
        self.closed = True
        self._finalizer()
        _LIVE_POOLS.discard(self)

    @staticmethod
    def _cleanup(workers, tmpdir):
        from .run.containment import keep_alive
        for w in list(workers):
            keep_alive.discard(w.proc.pid)
            w.kill()
        workers.clear()
        import shutil
        shutil.rmtree(tmpdir, ignore_errors=True)

    def _drop(self, w: _Worker):
        w.kill()
        if w in self.workers:
            self.workers.remove(w)

    def reuse(self, *, jobs: int, timeout: float) -> None:
        """Make a parked pool ready for a new audit: every worker loads the allocator
        afresh (its module is executed again, as a first audit would see it)."""
        self.jobs = max(1, int(jobs))
        self.timeout = float(timeout or 0.0)
        while len(self.workers) > self.jobs:
            self._drop(self.workers[-1])
        self.meta = None
        self.output = OutputLog()
        self.notes = AllocatorNotes()
        for w in self.workers:
            w.ready = False
            w.insts.clear()
            w.read_output(OutputLog())          # what an earlier audit left is not this one's
            w.send(("load", self.payload, list(sys.path)))

    # -- tasks -------------------------------------------------------------------
    def inst_key(self, inst) -> int:
        try:
            return self._inst_keys[inst]
        except KeyError:
            k = self._inst_keys[inst] = next(self._inst_counter)
            return k

    def capacity(self) -> int:
        """Tasks that could start now without waiting (idle workers plus room to spawn)."""
        return sum(1 for w in self.workers if w.task is None) + (self.jobs - len(self.workers))

    def idle(self) -> int:
        return sum(1 for w in self.workers if w.task is None)

    def submit(self, op: str, inst, args: tuple, grow: bool = True) -> int:
        """Queue a task (``op`` "task": args = seed, stream, start, stop, chunk,
        budget_left; "repro": args = (seed,)); returns its id."""
        tid = next(self.tids)
        self.queue.append((tid, (op, inst, args)))
        self._dispatch(grow)
        return tid

    def _dispatch(self, grow: bool = True):
        while self.queue:
            w = next((w for w in self.workers if w.task is None and w.ready), None)
            if w is None:
                loading = sum(1 for x in self.workers if not x.ready)
                if grow and len(self.workers) < self.jobs and loading < len(self.queue):
                    self._spawn()
                return
            tid, (op, inst, args) = self.queue.pop(0)
            w.watch.timeout = self.timeout
            w.watch.start(_task_calls(op, args))
            if op == "tasks":                  # the batch carries its inputs (args: the items)
                w.task = (tid, op, inst, args)
                try:
                    w.send((op, tid) + tuple(args))
                except (OSError, EOFError):
                    w.task = None
                    self.queue.insert(0, (tid, (op, inst, args)))
                    self._replace(w, None)
                continue
            key = self.inst_key(inst)
            send_inst = None if key in w.insts else inst
            if send_inst is not None:
                w.insts[key] = True
                while len(w.insts) > _INSTS_KEPT:
                    w.insts.pop(next(iter(w.insts)))
            w.task = (tid, op, inst, args)
            try:
                w.send((op, tid, key, send_inst) + tuple(args))
            except (OSError, EOFError):
                w.task = None
                self.queue.insert(0, (tid, (op, inst, args)))
                self._replace(w, None)

    def _replace(self, w: _Worker, log_rc):
        """A worker died or was killed: drop it (a new one is spawned when needed)."""
        w.read_output(self.output)
        self._drop(w)
        self.restarts += 1

    def cancel(self, tids) -> None:
        """Forget queued tasks and kill the workers running the given ones."""
        tids = set(tids)
        self.queue = [(t, x) for t, x in self.queue if t not in tids]
        for w in list(self.workers):
            if w.task is not None and w.task[0] in tids:
                w.task = None
                self._replace(w, None)

    def _on_message(self, w: _Worker, msg):
        op = msg[0]
        if op == "notes":                 # the allocator's warnings during the task that replies next
            self.notes.merge(msg[1])
            return None
        if op == "loaded":
            w.ready = True
            if self.meta is None:
                self.meta = msg[1]
            return None
        if op == "load_error":
            from .errors import TargetError
            w.read_output(self.output)
            self._drop(w)
            raise TargetError(msg[1])
        tid = msg[1]
        task = w.task
        w.task = None
        if op == "resend" and task is not None and task[0] == tid:   # the worker no longer holds the input
            w.insts.clear()
            self.queue.insert(0, (tid, task[1:]))
            self._dispatch()
            return None
        w.read_output(self.output)
        if task is None or task[0] != tid:
            return None
        return tid, msg

    def poll(self, timeout: float) -> list[tuple[int, tuple]]:
        """Wait up to ``timeout`` s for finished tasks; return ``[(tid, message)]``. A
        message is ``("done", tid, outcomes, calls, seconds)``, ``("fail", tid, info)``,
        ``("budget", tid, done, outcomes, calls, seconds)`` or, from the pool itself,
        ``("fail", tid, info)`` for a timeout or a dead worker."""
        from multiprocessing.connection import wait
        self._dispatch()
        out: list = []
        end = time.monotonic() + timeout
        while not out:
            busy = [w for w in self.workers if w.task is not None or not w.ready]
            if not busy:
                self._dispatch()
                if not any(w.task is not None or not w.ready for w in self.workers):
                    return out
                continue
            now = time.monotonic()
            tick = min(max(end - now, 0.0), 0.25)
            if self.timeout:
                starts = [w.state[0] for w in busy if w.task is not None and w.state[0] > 0]
                if starts:
                    tick = min(tick, max(min(starts) + self.timeout - now, 0.0) + 0.005)
                deadlines = [w.watch.deadline() for w in busy if w.task is not None]
                if deadlines:       # the audit's own clock (the shared state is the worker's to write)
                    tick = min(tick, max(min(deadlines) - now, 0.0) + 0.005)
            ready = wait([w.recv_conn for w in busy], timeout=tick)
            for conn in ready:
                w = next(x for x in busy if x.recv_conn is conn)
                try:
                    msg = w.recv_conn.recv()
                except (EOFError, OSError):
                    out.extend(self._died(w))
                    continue
                except Exception as e:   # an outcome that cannot be unpickled here
                    task = w.task
                    w.task = None
                    if task is not None:
                        out.append((task[0], ("fail", task[0], {"problem": f"returned an outcome that could not be "
                                                                           f"read back from the worker: {e}"})))
                    continue
                r = self._on_message(w, msg)
                if r is not None:
                    out.append(r)
            out.extend(self._check_timeouts())
            if out or time.monotonic() >= end:
                break
        self._dispatch()
        return out

    def _where(self, w: _Worker) -> dict:
        s = w.state
        task = w.task
        item = {"item": int(s[4])} if s is not None and task is not None and task[1] == "tasks" else {}
        if s is not None and s[0] > 0:
            size = int(s[3])
            return {"draw": int(s[1]), "generator_index": int(s[2]), "size": None if size < 0 else size, **item}
        if task is not None and task[1] == "tasks":
            return {"draw": None, "generator_index": None, "size": None, **item}
        if task is not None and task[1] == "task":
            return {"draw": int(task[3][2]), "generator_index": None, "size": None}
        return {"draw": None, "generator_index": None, "size": None}

    def _died(self, w: _Worker) -> list:
        task = w.task
        where = self._where(w)
        rc = w.returncode()
        self._replace(w, rc)
        if task is None:
            if not w.ready:
                from .errors import TargetError
                raise TargetError(f"{self.payload[1] if self.payload[0] != 'pickle' else 'the allocator'}: importing "
                                  f"it ended the worker process ({death_reason(rc, self.memory_limit)})")
            return []
        info = {"problem": death_reason(rc, self.memory_limit), **where}
        return [(task[0], ("fail", task[0], info))]

    def _check_timeouts(self) -> list:
        if not self.timeout:
            return []
        out = []
        now = time.monotonic()
        for w in list(self.workers):
            if w.task is None or w.state is None:
                continue
            t0 = w.state[0]
            w.watch.observe(w.state, now)
            if (t0 > 0 and now - t0 > self.timeout) or w.watch.expired(now):
                task = w.task
                where = self._where(w)
                if task[1] == "repro":
                    info = {"problem": "timeout in the reproducibility probe", "timeout": True, **where}
                else:
                    info = {"problem": f"allocator call exceeded the {self.timeout:g} s per-call timeout "
                                       f"(its worker process was killed and replaced)", "timeout": True, **where}
                w.task = None
                self._replace(w, None)
                out.append((task[0], ("fail", task[0], info)))
        return out

    def take_output(self) -> dict | None:
        for w in self.workers:
            if w.task is None:
                w.read_output(self.output)
        return self.output.take()

    def take_notes(self) -> dict | None:
        """The allocator's warnings and NaN outputs the workers reported since the last call."""
        return self.notes.take()

    def run_one(self, op: str, inst, args: tuple) -> tuple:
        """Run one task and wait for it (used on Dask workers)."""
        tid = self.submit(op, inst, args)
        while True:
            for t, msg in self.poll(3600.0):
                if t == tid:
                    return msg


# ---------------------------------------------------------------------------
# Dask
# ---------------------------------------------------------------------------

_DASK_POOLS: dict = {}
_DASK_LOCK = threading.Lock()


def _dask_task(payload_key: str, payload, timeout: float, memory_limit, op: str, inst, args: tuple):
    """Runs on a Dask worker: the task in a local worker process of that machine (so a
    hang, exit or crash there is contained exactly as locally), returning the message and
    the captured output."""
    key = (payload_key, threading.get_ident(), timeout, memory_limit)
    with _DASK_LOCK:
        pool = _DASK_POOLS.get(key)
        if pool is None:
            pool = _DASK_POOLS[key] = WorkerPool(payload, jobs=1, timeout=timeout, memory_limit=memory_limit)
    try:
        pool.probe()
    except Exception as e:  # noqa: BLE001
        with _DASK_LOCK:
            _DASK_POOLS.pop(key, None)
        pool.close()
        return ("fail", None, {"problem": f"the allocator could not be loaded on the Dask worker: {e}"}), None, 0, None
    msg = pool.run_one(op, inst, args)
    return msg, pool.take_output(), pool.restarts, pool.take_notes()


class DaskPool:
    """The same tasks on a Dask cluster (``dask.distributed``): each task is a Dask task
    that runs in a worker process on one of the cluster's machines (see
    :func:`_dask_task`). ``scheduler`` is the scheduler's address (``tcp://HOST:PORT``)
    or a :class:`distributed.Client`."""

    def __init__(self, payload, scheduler, *, timeout: float = 30.0, memory_limit: int | None = DEFAULT_MEMORY_LIMIT):
        from .errors import TargetError
        try:
            from distributed import Client
        except ImportError:
            from .extras import install_hint
            raise TargetError(f"--scheduler needs dask.distributed, from the 'dask' extra: {install_hint('dask')}") from None
        if isinstance(scheduler, str):
            try:
                self.client = Client(scheduler, timeout=30, set_as_default=False)
            except Exception as e:  # noqa: BLE001
                raise TargetError(f"cannot connect to the Dask scheduler at {scheduler}: {type(e).__name__}: {e}") from None
            self._own = True
        else:
            self.client, self._own = scheduler, False
        import hashlib
        self.payload = payload
        self.payload_key = hashlib.sha256(pickle.dumps(payload)).hexdigest()
        self.timeout = float(timeout or 0.0)
        self.memory_limit = memory_limit
        self.output = OutputLog()
        self.notes = AllocatorNotes()
        self.tids = itertools.count()
        self.futures: dict = {}
        self.restarts = 0
        self.meta: dict | None = None
        self._scattered: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
        try:
            self.jobs = max(1, sum(self.client.nthreads().values()))
        except Exception:  # noqa: BLE001
            self.jobs = 1

    def probe(self) -> dict:
        from .errors import TargetError
        if self.meta is None:
            fut = self.client.submit(_dask_probe, self.payload, self.memory_limit, pure=False)
            ok, meta = fut.result()
            if not ok:
                raise TargetError(meta)
            self.meta = meta
        return self.meta

    def capacity(self) -> int:
        return max(self.jobs - len(self.futures), 0)

    def idle(self) -> int:
        return self.capacity()

    def submit(self, op: str, inst, args: tuple, grow: bool = True) -> int:
        tid = next(self.tids)
        fut = self.client.submit(_dask_task, self.payload_key, self.payload, self.timeout, self.memory_limit, op,
                                 inst, tuple(args), pure=False, retries=0)
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
                msg, output, restarts, notes = fut.result()
                self.output.merge(output)
                self.notes.merge(notes)
                self.restarts = max(self.restarts, restarts)
                msg = (msg[0], tid) + tuple(msg[2:])
            except Exception as e:  # noqa: BLE001 - the Dask worker itself was lost
                msg = ("fail", tid, {"problem": f"the Dask task failed ({type(e).__name__}: {e}); the cluster's "
                                                f"worker running it was lost"})
            out.append((tid, msg))
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

    def close(self):
        for fut in list(self.futures):
            fut.cancel()
        self.futures.clear()
        if self._own:
            try:
                self.client.close()
            except Exception:  # noqa: BLE001
                pass


def _dask_probe(payload, memory_limit):
    pool = WorkerPool(payload, jobs=1, timeout=0, memory_limit=memory_limit)
    try:
        return True, pool.probe()
    except Exception as e:  # noqa: BLE001
        return False, str(e)
    finally:
        pool.close()


# ---------------------------------------------------------------------------
# From a target spec or a callable to a payload
# ---------------------------------------------------------------------------

def payload_for(target_or_spec, *, ship_source: bool = False):
    """How a worker loads the allocator: by its spec (a file or module:function), or the
    cloudpickled :class:`Target` for a callable. Returns ``(payload, None)`` or
    ``(None, reason)`` when the callable cannot be sent to another process."""
    from .targets import Target
    spec = target_or_spec if isinstance(target_or_spec, str) else getattr(target_or_spec, "load_spec", None)
    if spec:
        if ship_source:
            file_part, func = spec, None
            if ":" in spec and not spec.endswith(".py"):
                file_part, func = spec.rsplit(":", 1)
            if file_part.endswith(".py") and Path(file_part).is_file():
                return ("source", spec, Path(file_part).name, Path(file_part).read_bytes(), func), None
        return ("spec", spec), None
    if isinstance(target_or_spec, Target):
        func = target_or_spec.func
        mod = sys.modules.get(getattr(func, "__module__", None) or "")
        qual = getattr(func, "__qualname__", "")
        if (mod is not None and mod.__name__.startswith("fairaudit_target_") and getattr(mod, "__file__", None)
                and "." not in qual and "<" not in qual and getattr(mod, qual, None) is func):
            # a function of a file imported by fairaudit.targets.import_file: its module name
            # exists only in this process, so the worker imports the same file itself
            return ("spec", f"{mod.__file__}:{qual}"), None
        try:
            import cloudpickle
            return ("pickle", cloudpickle.dumps(target_or_spec)), None
        except Exception as e:  # noqa: BLE001 - closures over locks, sockets, …
            return None, f"{type(e).__name__}: {e}"
    return None, "not a target"


# ---------------------------------------------------------------------------
# Warm pools: reused by the next audit of the same allocator in this process
# ---------------------------------------------------------------------------

#: pools kept warm after an audit (a test suite auditing one allocator a thousand times
#: would otherwise start a thousand worker processes)
PARKED_POOLS = 2
_PARKED: "dict[tuple, WorkerPool]" = {}
_PARKED_LOCK = threading.Lock()


def _pool_key(payload, memory_limit):
    import hashlib
    if payload[0] == "spec":
        spec = payload[1]
        file_part = spec.rsplit(":", 1)[0] if ":" in spec and not spec.endswith(".py") else spec
        p = Path(file_part)
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if file_part.endswith(".py") and p.is_file() else ""
        return ("spec", spec, str(p.resolve()) if digest else "", digest, memory_limit)
    return (payload[0], hashlib.sha256(pickle.dumps(payload)).hexdigest(), memory_limit)


def acquire_pool(payload, *, jobs: int, timeout: float, memory_limit) -> WorkerPool:
    """A pool for ``payload``: a parked one of the same allocator (its workers load the
    allocator afresh, as a new audit would) or a new one."""
    try:
        key = _pool_key(payload, memory_limit)
    except OSError:
        key = None
    with _PARKED_LOCK:
        pool = _PARKED.pop(key, None) if key is not None else None
    if pool is not None and not pool.closed and all(w.proc.poll() is None for w in pool.workers):
        pool.reuse(jobs=jobs, timeout=timeout)
        pool._key = key
        return pool
    if pool is not None:
        pool.close()
    pool = WorkerPool(payload, jobs=jobs, timeout=timeout, memory_limit=memory_limit)
    pool._key = key
    return pool


def release_pool(pool: WorkerPool) -> None:
    """Park a pool whose workers are idle (else close it)."""
    key = getattr(pool, "_key", None)
    healthy = (key is not None and not pool.closed and not pool.queue and pool.workers
               and all(w.task is None and w.ready and w.proc.poll() is None for w in pool.workers))
    if not healthy or PARKED_POOLS <= 0:
        pool.close()
        return
    pool.take_output()
    from .run.containment import keep_alive
    keep_alive.update(w.proc.pid for w in pool.workers)     # the audit's end spares the parked workers
    with _PARKED_LOCK:
        old = _PARKED.pop(key, None)
        _PARKED[key] = pool
        evict = []
        while len(_PARKED) > PARKED_POOLS:
            evict.append(_PARKED.pop(next(iter(_PARKED))))
    for p in evict + ([old] if old is not None and old is not pool else []):
        p.close()


def close_parked() -> None:
    """Stop every parked pool's workers."""
    with _PARKED_LOCK:
        pools = list(_PARKED.values())
        _PARKED.clear()
    for p in pools:
        p.close()
