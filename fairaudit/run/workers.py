"""Allocator calls in isolated worker processes (and on a Dask cluster).

The audit process never runs the allocator's code. Each worker is a fresh Python
process (``subprocess``, not ``fork``: nothing of the audit is inherited; see
:mod:`fairaudit.run.worker_main`) that loads the allocator itself and runs *tasks* —
batches of draw ranges — with the very functions the in-process sampler uses
(:mod:`fairaudit.run.task`), so outcomes, validation and messages are the same whichever
way the draws are made.

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
- **Replies are data.** A worker answers with frames of JSON and raw arrays
  (:mod:`fairaudit.run.wire`) carrying the audit's secret; nothing it sends is unpickled,
  a malformed or stalled reply fails the task (and the worker is killed), and the
  sampler re-validates every outcome.
- **Fresh state per audit.** A worker loads one allocator, once. After an audit its
  workers are stopped and replaced by *spare* workers that have imported Python and
  numpy but no allocator (:func:`release`), so repeated audits start fast and none sees
  what an earlier one left in a process.

The pools (:class:`WorkerPool` here, :class:`~fairaudit.run.dask_pool.DaskPool`) share
one small protocol (:class:`fairaudit.run.pools.Pool`) and only run what they are given; the sampler decides the tasks (their
sizes come from the measured cost of a call), so a draw's generator — and therefore
every result — does not depend on the pool. Pools are built in one place
(:func:`fairaudit.run.pools.open_pool`), and ``--jobs`` becomes a worker count in one
place (:func:`fairaudit.run.pools.worker_count`).
"""
from __future__ import annotations

import atexit
import itertools
import mmap
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path

import numpy as np

from ..errors import TargetError
from . import wire
from .allocator_notes import AllocatorNotes
from .containment import task_calls
from .spec import TargetSpec
from .worker_main import INSTS_KEPT, STATE_SLOTS

#: default ``--memory-limit``: address space per worker process
DEFAULT_MEMORY_LIMIT = 4 * 2**30
#: lines of an allocator's stdout / stderr kept per check (the rest are counted)
OUTPUT_LINES = 20
_LINE_CHARS = 300


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
# Local worker processes
# ---------------------------------------------------------------------------

_LIVE_POOLS: "weakref.WeakSet[WorkerPool]" = weakref.WeakSet()


@atexit.register
def _close_all():  # pragma: no cover - interpreter exit
    for p in list(_LIVE_POOLS):
        p.close()
    close_parked()


class _Worker:
    """The audit's handle on one worker process (see :func:`start_worker`)."""

    def __init__(self, proc, tmpdir, state_path, out_path, err_path, send_conn, recv_fd, memory_limit):
        self.proc = proc
        self.tmpdir = tmpdir
        self.state_path, self.out_path, self.err_path = state_path, out_path, err_path
        self.send_conn = send_conn
        self.recv_fd = recv_fd
        self.memory_limit = memory_limit
        fd = os.open(state_path, os.O_RDWR)
        try:
            self._mm = mmap.mmap(fd, STATE_SLOTS * 8)
        finally:
            os.close(fd)
        self.state = np.frombuffer(self._mm, dtype=np.float64)
        self.pos = {"stdout": 0, "stderr": 0}
        self.ready = False          # loaded the target
        self.loading = False        # asked to load it
        self.task = None            # (tid, task) running
        self.insts: dict = {}       # keys of the inputs the worker holds, oldest first
        self.started = time.monotonic()
        self.dead = False
        from .containment import CallWatch
        self.watch = CallWatch(0.0)     # the audit's own clock for the running task (not the worker's state)

    def send(self, msg):
        self.send_conn.send(msg)

    def alive(self) -> bool:
        return not self.dead and self.proc.poll() is None

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
        self.dead = True
        try:
            self.proc.kill()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        try:
            self.send_conn.close()
        except OSError:
            pass
        try:
            os.close(self.recv_fd)
        except OSError:
            pass
        try:
            self.state = None
            self._mm.close()
        except (BufferError, ValueError):
            pass
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def returncode(self, wait: float = 2.0):
        try:
            return self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return None


def worker_environment() -> dict:
    """The environment a worker runs its allocator in: the audit process's now, with
    fairaudit importable and flagged as a worker (sent again when a spare is given its
    allocator, so an audit's environment is the one its allocator sees)."""
    env = dict(os.environ)
    pkg_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([pkg_root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.pop("PYTHONFAULTHANDLER", None)
    env["FAIRAUDIT_WORKER"] = "1"      # import fairaudit without scipy (fairaudit/__init__.py)
    return env


def start_worker(memory_limit: int | None, readable=None) -> _Worker:
    """Start one worker process (not yet told its allocator): the one place a worker is
    started. A fresh interpreter (not a fork), in its own session, its stdout and stderr
    to files of its own temporary folder, its address space capped at ``memory_limit``
    (soft and hard); requests reach it on one pipe, its data-only replies come back on
    another. It runs contained (:func:`fairaudit.run.containment.launch`: its own PID
    namespace, as ``nobody`` when the audit runs as root and ``nobody`` can read
    ``readable`` — the allocator's file; None for a spare, whose allocator is not known
    yet), and the audit's scope reaps it and everything it starts."""
    d = tempfile.mkdtemp(prefix="fairaudit-workers-")
    state_path = os.path.join(d, "state")
    with open(state_path, "wb") as f:
        f.write(b"\0" * (STATE_SLOTS * 8))
    out_path, err_path = os.path.join(d, "stdout"), os.path.join(d, "stderr")
    fout, ferr = open(out_path, "ab"), open(err_path, "ab")
    r1, w1 = os.pipe()      # audit → worker (requests)
    r2, w2 = os.pipe()      # worker → audit (replies)
    env = worker_environment()
    from . import containment
    argv = containment.launch(
        [sys.executable, "-c", "from fairaudit.run.worker_main import main; main()",
         str(r1), str(w2), state_path, str(memory_limit or 0)],
        env, memory_limit=memory_limit, keep_fds=(r1, w2), readable=readable, writable=(state_path,),
        private_tmp=os.path.join(d, "tmp"))
    try:
        proc = subprocess.Popen(argv, pass_fds=(r1, w2), stdin=subprocess.DEVNULL, stdout=fout, stderr=ferr,
                                start_new_session=True, env=env, close_fds=True)
        scope = containment.current_scope()
        if scope is not None:
            scope.register(proc.pid)
    except BaseException:
        for fd in (w1, r2):
            os.close(fd)
        shutil.rmtree(d, ignore_errors=True)
        raise
    finally:
        os.close(r1)
        os.close(w2)
        fout.close()
        ferr.close()
    from multiprocessing.connection import Connection
    return _Worker(proc, d, state_path, out_path, err_path, Connection(w1, readable=False), r2, memory_limit)


# Spare workers: started, Python and numpy imported, no allocator loaded. An audit takes
# them before starting new ones; a released pool's workers (which loaded an allocator)
# are stopped and replaced by spares.
#: spare worker processes kept after an audit (a test suite auditing one allocator a
#: thousand times would otherwise wait for a thousand interpreter start-ups)
SPARE_WORKERS = 2
_SPARES: "list[_Worker]" = []
_SPARES_LOCK = threading.Lock()


def _take_spare(memory_limit) -> _Worker | None:
    with _SPARES_LOCK:
        for i, w in enumerate(_SPARES):
            if w.memory_limit == memory_limit:
                _SPARES.pop(i)
                break
        else:
            return None
    from .containment import keep_alive
    keep_alive.discard(w.proc.pid)      # the audit's worker now: its scope ends it
    if w.alive():
        # a process that audits again and again: keep a spare warming for the next audit
        _add_spares(memory_limit, 1)
        return w
    w.kill()
    return None


def _add_spares(memory_limit, count: int) -> None:
    with _SPARES_LOCK:
        room = SPARE_WORKERS - len(_SPARES)
    for _ in range(max(min(count, room), 0)):
        try:
            w = start_worker(memory_limit)
        except OSError:
            return
        from .containment import keep_alive
        keep_alive.add(w.proc.pid)      # a spare outlives the audit that started it (no allocator in it)
        with _SPARES_LOCK:
            _SPARES.append(w)
            extra = _SPARES[SPARE_WORKERS:]
            del _SPARES[SPARE_WORKERS:]
        for x in extra:
            keep_alive.discard(x.proc.pid)
            x.kill()


def close_parked() -> None:
    """Stop every spare worker process."""
    with _SPARES_LOCK:
        spares = list(_SPARES)
        _SPARES.clear()
    for w in spares:
        w.kill()


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
        self.secret = secrets.token_bytes(wire.SECRET_BYTES)    # only workers this pool started can answer
        self.readable = _payload_files(payload)                 # the allocator's file (a worker run as nobody reads it)
        self.workers: list[_Worker] = []
        self.output = OutputLog()
        self.notes = AllocatorNotes()
        self.meta: dict | None = None
        self.tids = itertools.count()
        self._inst_keys: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
        self._inst_counter = itertools.count()
        self.queue: list[tuple[int, object]] = []
        self.restarts = 0
        self.closed = False
        _LIVE_POOLS.add(self)
        self._finalizer = weakref.finalize(self, WorkerPool._cleanup, self.workers)

    # -- lifecycle -------------------------------------------------------------
    def _spawn(self) -> _Worker:
        w = _take_spare(self.memory_limit) or start_worker(self.memory_limit, self.readable)
        # the audit's folder and environment now (a spare was started earlier, maybe elsewhere)
        w.send(("load", self.payload, list(sys.path), self.secret, os.getcwd(), worker_environment()))
        w.loading = True
        self.workers.append(w)
        return w

    def _what(self) -> str:
        return self.payload[1] if self.payload[0] in ("spec", "source") else "the allocator"

    def probe(self) -> dict:
        """Start the first worker, load the allocator there and return its description
        (kind, signature, …). Raises :class:`TargetError` when it cannot be loaded."""
        if self.meta is not None:
            return self.meta
        w = self.workers[0] if self.workers else self._spawn()
        self._await_loaded(w)
        if self.meta is None:
            raise TargetError("the allocator could not be loaded in a worker process")
        return self.meta

    def _await_loaded(self, w: _Worker):
        deadline = time.monotonic() + self.load_timeout
        while not w.ready:
            left = deadline - time.monotonic()
            if left <= 0:
                w.read_output(self.output)
                self._drop(w)
                raise TargetError(f"{self._what()}: loading it took longer than {self.load_timeout:g} s")
            if not wire.wait_readable([w.recv_fd], min(left, 0.5)):
                continue
            try:
                reply, notes = self._read(w)
            except EOFError:
                rc = w.returncode()
                w.read_output(self.output)
                self._drop(w)
                raise TargetError(f"{self._what()}: importing it ended the worker process "
                                  f"({death_reason(rc, self.memory_limit).replace('during the call ', '')})") from None
            except wire.WireError as e:
                w.read_output(self.output)
                self._drop(w)
                raise TargetError(f"{self._what()}: loading it, the worker process sent a reply fairaudit cannot "
                                  f"read ({e})") from None
            self._on_reply(w, reply, notes)

    def close(self):
        if self.closed:
            return
        self.closed = True
        self._finalizer()
        _LIVE_POOLS.discard(self)

    def release(self) -> None:
        """The audit is done: stop the workers (they loaded this audit's allocator) and
        leave spares in their place for the next audit."""
        n = len(self.workers)
        self.take_output()
        self.close()
        _add_spares(self.memory_limit, min(n, SPARE_WORKERS))

    @staticmethod
    def _cleanup(workers):
        for w in list(workers):
            w.kill()
        workers.clear()

    def _drop(self, w: _Worker):
        w.kill()
        if w in self.workers:
            self.workers.remove(w)

    def _replace(self, w: _Worker):
        """A worker died or was killed: drop it (a new one is spawned when needed)."""
        w.read_output(self.output)
        self._drop(w)
        self.restarts += 1

    # -- tasks -------------------------------------------------------------------
    def inst_key(self, inst) -> int:
        try:
            return self._inst_keys[inst]
        except KeyError:
            k = self._inst_keys[inst] = next(self._inst_counter)
            return k

    def slots(self, grow: bool) -> int:
        return self.jobs if grow else max(1, min(self.jobs, len(self.workers)))

    def busy(self) -> bool:
        return bool(self.queue) or any(w.task is not None for w in self.workers)

    def submit(self, task, grow: bool = True) -> int:
        tid = next(self.tids)
        self.queue.append((tid, task))
        self._dispatch(grow)
        return tid

    def _hold(self, w: _Worker, inst):
        """(key, the input or None when the worker holds it already), mirroring the worker's eviction."""
        key = self.inst_key(inst)
        if key in w.insts:
            return key, None
        w.insts[key] = True
        while len(w.insts) > INSTS_KEPT:
            w.insts.pop(next(iter(w.insts)))
        return key, inst

    def _request(self, w: _Worker, tid: int, task):
        if isinstance(task, wire.ReproTask):
            key, inst = self._hold(w, task.inst)
            return ("repro", tid, key, inst, task.seed)
        items = []
        for it in task.items:
            key, inst = self._hold(w, it.inst)
            items.append((key, inst, it.seed, it.stream, it.start, it.stop, it.chunk))
        return ("draw", tid, items, task.budget_left)

    def _dispatch(self, grow: bool = True):
        while self.queue:
            w = next((w for w in self.workers if w.task is None and w.ready), None)
            if w is None:
                loading = sum(1 for x in self.workers if not x.ready)
                if grow and len(self.workers) < self.jobs and loading < len(self.queue):
                    self._spawn()
                return
            tid, task = self.queue.pop(0)
            w.task = (tid, task)
            try:
                req = self._request(w, tid, task)
                w.watch.timeout = self.timeout
                w.watch.start(task_calls(req[0], req[2]))
                w.send(req)
            except (OSError, EOFError, ValueError):
                w.task = None
                self.queue.insert(0, (tid, task))
                self._replace(w)

    def cancel(self, tids) -> None:
        """Forget queued tasks and kill the workers running the given ones."""
        tids = set(tids)
        self.queue = [(t, x) for t, x in self.queue if t not in tids]
        for w in list(self.workers):
            if w.task is not None and w.task[0] in tids:
                w.task = None
                self._replace(w)

    def _read(self, w: _Worker):
        header, arrays = wire.read_frame(w.recv_fd, self.secret)
        return wire.decode_reply(header, arrays)

    def _on_reply(self, w: _Worker, reply, notes):
        """A reply read from ``w``: ``(tid, reply)`` for the sampler, or None."""
        self.notes.merge(notes)
        if isinstance(reply, wire.Loaded):
            if not w.loading or w.ready:
                raise wire.WireError("a worker said it loaded the allocator when it was not asked to")
            w.ready, w.loading = True, False
            if self.meta is None:
                self.meta = reply.meta
            return None
        if isinstance(reply, wire.LoadFailed):
            w.read_output(self.output)
            self._drop(w)
            raise TargetError(reply.problem)
        task = w.task
        if task is None or reply.tid != task[0]:
            raise wire.WireError("a worker answered a task it was not running")
        w.task = None
        if isinstance(reply, wire.Resend):      # the worker no longer holds an input: send it again
            w.insts.clear()
            self.queue.insert(0, task)
            self._dispatch()
            return None
        w.read_output(self.output)
        return task[0], reply

    def _unreadable(self, w: _Worker, e: Exception) -> list:
        """A reply that is not a fairaudit frame: the worker process cannot be trusted; it is
        stopped and its task fails (no byte of what it sent is used)."""
        task = w.task
        where = self._where(w)
        w.task = None
        self._replace(w)
        if task is None:
            if not w.ready:
                raise TargetError(f"{self._what()}: loading it, the worker process sent a reply fairaudit cannot "
                                  f"read ({e})")
            return []
        return [(task[0], wire.Failed(task[0], wire.Failure(
            f"the worker process sent a reply fairaudit cannot read ({e}): the allocator may have written into "
            f"fairaudit's reply pipe; nothing it sent was used", **where)))]

    def poll(self, timeout: float) -> list:
        """Wait up to ``timeout`` s for finished tasks; ``[(tid, reply)]`` with a named reply
        (:class:`~fairaudit.run.wire.Done`, :class:`~fairaudit.run.wire.BudgetCut`,
        :class:`~fairaudit.run.wire.Failed`, :class:`~fairaudit.run.wire.Repro`); the pool
        itself answers :class:`~fairaudit.run.wire.Failed` for a timeout or a dead worker."""
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
            ready = set(wire.wait_readable([w.recv_fd for w in busy], tick))
            for w in [x for x in busy if x.recv_fd in ready]:
                try:
                    reply, notes = self._read(w)
                    r = self._on_reply(w, reply, notes)
                except EOFError:
                    out.extend(self._died(w))
                    continue
                except wire.WireError as e:
                    out.extend(self._unreadable(w, e))
                    continue
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
        batch = task is not None and isinstance(task[1], wire.DrawTask)
        item = {"item": int(s[4])} if s is not None and batch else {}
        if s is not None and s[0] > 0:
            size = int(s[3])
            return {"draw": int(s[1]), "generator_index": int(s[2]), "size": None if size < 0 else size, **item}
        return {"draw": None, "generator_index": None, "size": None, **item}

    def _died(self, w: _Worker) -> list:
        task = w.task
        where = self._where(w)
        rc = w.returncode()
        self._replace(w)
        if task is None:
            if not w.ready:
                raise TargetError(f"{self.payload[1] if self.payload[0] != 'pickle' else 'the allocator'}: importing "
                                  f"it ended the worker process ({death_reason(rc, self.memory_limit)})")
            return []
        return [(task[0], wire.Failed(task[0], wire.Failure(death_reason(rc, self.memory_limit), **where)))]

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
                if isinstance(task[1], wire.ReproTask):
                    problem = "timeout in the reproducibility probe"
                else:
                    problem = (f"allocator call exceeded the {self.timeout:g} s per-call timeout "
                               f"(its worker process was killed and replaced)")
                w.task = None
                self._replace(w)
                out.append((task[0], wire.Failed(task[0], wire.Failure(problem, timeout=True, **where))))
        return out

    def take_output(self) -> dict | None:
        for w in self.workers:
            if w.task is None:
                w.read_output(self.output)
        return self.output.take()

    def take_notes(self) -> dict | None:
        """The allocator's warnings and NaN outputs the workers reported since the last call."""
        return self.notes.take()

    def run_one(self, task):
        """Run one task and wait for its reply (used on Dask workers)."""
        tid = self.submit(task)
        while True:
            for t, reply in self.poll(3600.0):
                if t == tid:
                    return reply


def _payload_files(payload) -> tuple:
    """The allocator file a worker must be able to read (for running it as ``nobody``)."""
    if payload and payload[0] in ("spec", "source"):
        spec = str(payload[1])
        file_part = spec.rsplit(":", 1)[0] if ":" in spec and not spec.endswith(".py") else spec
        if Path(file_part).is_file():
            return (str(Path(file_part).resolve()),)
    return ()


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
            parsed = TargetSpec.parse(spec)
            p = parsed.path
            if parsed.is_file and p.is_file():
                return ("source", spec, p.name, p.read_bytes(), parsed.function), None
        return ("spec", spec), None
    if isinstance(target_or_spec, Target):
        func = target_or_spec.func
        mod = sys.modules.get(getattr(func, "__module__", None) or "")
        qual = getattr(func, "__qualname__", "")
        if (mod is not None and mod.__name__.startswith("fairaudit_target_") and getattr(mod, "__file__", None)
                and "." not in qual and "<" not in qual and getattr(mod, qual, None) is func):
            # a function of a file imported by fairaudit.run.load.import_file: its module name
            # exists only in this process, so the worker imports the same file itself
            return ("spec", f"{mod.__file__}:{qual}"), None
        try:
            import cloudpickle
            return ("pickle", cloudpickle.dumps(target_or_spec)), None
        except Exception as e:  # noqa: BLE001 - closures over locks, sockets, …
            return None, f"{type(e).__name__}: {e}"
    return None, "not a target"
