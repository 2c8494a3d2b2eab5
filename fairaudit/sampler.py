"""The sampler: B seeded draws of an allocator's outcome per input.

Reproducibility contract (SPEC §0): draw ``j`` of stream ``s`` under seed ``seed`` uses
the generator of ``SeedSequence(seed, spawn_key=(h(s), j))`` — exactly the ``j``-th
child that ``SeedSequence(seed, spawn_key=(h(s),)).spawn(...)`` would produce — so a
draw does not depend on batch size, worker count or backend. A vectorised allocator
(one that accepts ``size``) is called once per *chunk* of ``chunk`` consecutive draws,
chunk ``c`` seeded with spawn key ``(h(s), c)``; chunks are fixed, so again the result
does not depend on how the work is batched or spread over workers.

Checks never call the allocator: they ask the sampler for draws.
"""
from __future__ import annotations

import functools
import signal
import threading
import time
import weakref
import zlib
from typing import Callable

import numpy as np

from .allocator_notes import PROCESS_NOTES, AllocatorNotes, count_nan, recording
from .errors import AllocatorError, AllocatorTimeout, BudgetExhausted
from .instance import Instance
from .targets import PER_PERSON_HINT, Target, load_target, validate_outcomes
from .text import exception_text
from .workers import DEFAULT_MEMORY_LIMIT


def stream_key(stream: str) -> int:
    """A stable 32-bit key for a stream name (same on every platform and run)."""
    return zlib.crc32(stream.encode("utf-8"))


def draw_generator(seed: int, stream: str, j: int) -> np.random.Generator:
    """The generator of draw (or chunk) ``j`` of ``stream`` — public so a failure can be replayed."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(stream_key(stream), j))))


class _CallTimeout(BaseException):
    """Raised by the alarm handler; a BaseException so allocator code catching
    ``Exception`` cannot swallow it (in-process only: worker processes are killed instead)."""


@functools.lru_cache(maxsize=8)
def _worker_target(spec: str) -> Target:
    return load_target(spec)


def _resolve(target_or_spec) -> Target:
    return _worker_target(target_or_spec) if isinstance(target_or_spec, str) else target_or_spec


def _raised(e: BaseException) -> str:
    if isinstance(e, SystemExit):
        return (f"allocator raised SystemExit (sys.exit({e.code!r})): it tried to end the process; "
                f"fairaudit does not let an allocator end the audit or set its exit code")
    if isinstance(e, KeyboardInterrupt):
        return "allocator raised KeyboardInterrupt"
    return f"allocator raised {type(e).__name__}: {exception_text(e)}"


class _Alarm:
    """Per-call timeout. In the main thread a SIGALRM interrupts the call; elsewhere
    (thread backends) the timeout is enforced after the call returns, since a thread
    cannot be interrupted. ``contain``: also turn KeyboardInterrupt into an allocator
    error (in a worker process; in-process a KeyboardInterrupt is the user's Ctrl-C)."""

    def __init__(self, timeout: float, contain: bool = False):
        self.timeout = timeout
        self.contain = contain
        self.active = bool(timeout and timeout > 0 and hasattr(signal, "setitimer")
                           and threading.current_thread() is threading.main_thread())
        self._old = None

    def __enter__(self):
        if self.active:
            def _alarm(signum, frame):
                raise _CallTimeout()
            self._old = signal.signal(signal.SIGALRM, _alarm)
        return self

    def __exit__(self, *exc):
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old)
        return False

    def call(self, func, kwargs, on_timeout: Callable[[float], Exception], on_error: Callable[[BaseException], Exception]):
        t0 = time.perf_counter()
        try:
            if self.active:
                signal.setitimer(signal.ITIMER_REAL, self.timeout)
            try:
                out = func(**kwargs)
            finally:
                if self.active:
                    signal.setitimer(signal.ITIMER_REAL, 0)
        except _CallTimeout:
            raise on_timeout(time.perf_counter() - t0) from None
        except AllocatorError:
            raise
        except (Exception, SystemExit) as e:
            raise on_error(e) from e
        except KeyboardInterrupt as e:
            if not self.contain:
                raise
            raise on_error(e) from e
        if not self.active and self.timeout and time.perf_counter() - t0 > self.timeout:
            raise on_timeout(time.perf_counter() - t0)
        return out


# -- argument mutation ---------------------------------------------------------

_NOT_CHECKED = frozenset({"rng", "size", "k", "n"})


def _snapshot(v):
    if isinstance(v, np.ndarray):
        return v.copy()
    if hasattr(v, "columns") and hasattr(v, "equals") and hasattr(v, "copy"):   # a DataFrame
        return v.copy(deep=True)
    if isinstance(v, (list, dict)):
        import copy
        return copy.deepcopy(v)
    return None


def _unchanged(v, snap, snap_bytes=None) -> bool:
    if isinstance(snap, np.ndarray):   # bitwise: NaNs equal themselves, a written -0.0 is a change
        return (isinstance(v, np.ndarray) and v.shape == snap.shape and v.dtype == snap.dtype
                and v.tobytes() == (snap_bytes if snap_bytes is not None else snap.tobytes()))
    if hasattr(snap, "equals"):
        return list(v.columns) == list(snap.columns) and v.shape == snap.shape and v.equals(snap)
    return v == snap


def _restore(v, snap) -> None:
    """Put a mutated argument back as it was (in-process: the input is the check's own)."""
    try:
        if isinstance(snap, np.ndarray) and v.shape == snap.shape:
            np.copyto(v, snap, casting="unsafe")
        elif hasattr(snap, "equals"):
            for c in [c for c in v.columns if c not in snap.columns]:
                del v[c]
            for c in snap.columns:
                v[c] = snap[c].to_numpy(copy=True)
        elif isinstance(snap, list):
            v[:] = snap
        elif isinstance(snap, dict):
            v.clear()
            v.update(snap)
    except Exception:  # noqa: BLE001 - best effort; the check reports the mutation either way
        pass


class _ArgGuard:
    """Copies of the array/table arguments of a task's calls, compared after every call:
    an allocator that changes its input in place would change every later draw."""

    def __init__(self, kwargs: dict):
        self.items = []
        seen = set()
        for name, v in kwargs.items():
            if name in _NOT_CHECKED or id(v) in seen:
                continue
            seen.add(id(v))
            snap = _snapshot(v)
            if snap is not None:
                self.items.append((name, v, snap, snap.tobytes() if isinstance(snap, np.ndarray) else None))

    def changed(self) -> str | None:
        for name, v, snap, snap_bytes in self.items:
            try:
                same = _unchanged(v, snap, snap_bytes)
            except Exception:  # noqa: BLE001 - e.g. a column replaced by something uncomparable
                same = False
            if not same:
                _restore(v, snap)
                return name
        return None


def _run_task(target_or_spec, inst: Instance, seed: int, stream: str, start: int, stop: int,
              chunk: int, timeout: float, deadline: float | None = None, watch=None) -> tuple[np.ndarray, int]:
    """Draws ``start..stop-1``; returns (outcomes, number of allocator calls made).

    The same function runs in-process, in worker processes and on Dask workers.
    ``deadline`` (``time.monotonic``): past it, raise :class:`BudgetExhausted` with the
    draws made so far. ``watch(j, g, size)`` is told about each call before it starts
    and ``watch(None)`` after it (the worker's shared state the audit process watches)."""
    target = _resolve(target_or_spec)
    k = target.effective_k(inst)
    alarm = _Alarm(timeout, contain=watch is not None)
    guard = None
    func = target.func

    def where(j, g, size):
        return dict(input_label=inst.label, draw=j, stream=stream, inputs=inst.to_jsonable(),
                    generator_index=g, size=size)

    def call(g, j, size=None):
        nonlocal guard
        kwargs = target.call_kwargs(inst, draw_generator(seed, stream, g), size)
        if guard is None:
            guard = _ArgGuard(kwargs)
        if watch is not None:
            watch(j, g, size)
        try:
            out = alarm.call(
                func, kwargs,
                on_timeout=lambda dt: AllocatorTimeout(
                    f"allocator call exceeded the {timeout:g} s per-call timeout", **where(j, g, size)),
                on_error=lambda e: AllocatorError(_raised(e), **where(j, g, size)))
        finally:
            if watch is not None:
                watch(None)
        name = guard.changed()
        if name is not None:
            e = AllocatorError(f"allocator modified its argument '{name}' in place; fairaudit passes the same "
                               f"input to every call, so later draws would see the change (copy it before changing it)",
                               **where(j, g, size))
            e.mutated = True
            raise e
        return out

    def watched(j, g, size, fn):
        """``fn()`` (validating an outcome: numpy conversion runs the allocator's
        ``__array__``) inside the window the watchdog times, as the call itself."""
        if watch is None:
            return fn()
        watch(j, g, size)
        try:
            return fn()
        finally:
            watch(None)

    def over(done_parts, calls, done):
        arr = np.concatenate(done_parts, axis=0) if done_parts else None
        return BudgetExhausted(f"the time budget ran out after {done} of {stop - start} draws of a batch",
                               done=done, outcomes=arr, calls=calls)

    # the allocator's warnings are recorded (fairaudit.allocator_notes), not printed
    with alarm, recording():
        if target.vectorized:
            parts, calls = [], 0
            c0, c1 = start // chunk, (stop - 1) // chunk
            for c in range(c0, c1 + 1):
                if deadline is not None and time.monotonic() > deadline:
                    raise over(parts, calls, sum(len(p) for p in parts))
                a, b = c * chunk, min((c + 1) * chunk, stop)
                size = b - a
                out = call(c, a, size=size)
                calls += 1

                def check_chunk():      # the error itself (with the input) is built outside the window
                    try:
                        return validate_outcomes(target.kind, out, inst, size, k), None
                    except ValueError as e:
                        count_nan(out)
                        return None, str(e)
                arr, problem = watched(a, c, size, check_chunk)
                if problem is not None:
                    raise AllocatorError(f"allocator (vectorised, size={size}) {problem}", **where(a, c, size))
                parts.append(arr[max(start - a, 0):])
            return np.concatenate(parts, axis=0), calls
        outs = []
        for j in range(start, stop):
            if deadline is not None and time.monotonic() > deadline:
                break
            outs.append(call(j, j))
        def check_all():
            try:
                return (validate_outcomes(target.kind, outs, inst, len(outs), k) if outs else None), None
            except ValueError:
                # Find the first offending draw to name it.
                for j, o in zip(range(start, stop), outs):
                    try:
                        validate_outcomes(target.kind, o, inst, 1, k)
                    except ValueError as e:
                        count_nan(o)
                        return None, (str(e), j)
                return None, ("returned outcomes of inconsistent length across draws"
                              + (PER_PERSON_HINT if target.kind == "selection" else ""), start)
        arr, problem = watched(start, start, None, check_all)
        if problem is not None:
            raise AllocatorError(f"allocator {problem[0]}", **where(problem[1], problem[1], None))
        if len(outs) < stop - start:
            raise over([arr] if arr is not None else [], len(outs), len(outs))
        return arr, len(outs)


def _repro_outcomes(target, inst: Instance, seed: int, timeout: float = 0.0, watch=None) -> dict | None:
    """Call the allocator twice with the same generator; did the outcomes differ, and did
    numpy's or Python's global random state change? None when a call failed (the failure
    surfaces, named, when the checks draw)."""
    import random
    target = _resolve(target)

    def np_state():   # MT19937's key and position (the key alone changes only every 624 numbers)
        st = np.random.get_state()
        return st[1].copy(), st[2]
    np_before = np_state()
    py_state = random.getstate()
    size = 2 if target.vectorized else None

    class _Skip(Exception):
        pass

    def once(alarm):
        kwargs = target.call_kwargs(inst, draw_generator(seed, "reproducibility", 0), size)
        if watch is not None:
            watch(0, 0, size)
        try:
            out = alarm.call(target.func, kwargs, on_timeout=lambda dt: _Skip(), on_error=lambda e: _Skip())
            return np.asarray(out)          # the allocator's __array__: inside the watched window
        finally:
            if watch is not None:
                watch(None)
    try:
        # its warnings are the draws' to report (they recur there); not printed here
        with _Alarm(timeout, contain=watch is not None) as alarm, recording(AllocatorNotes()):
            a = once(alarm)
            b = once(alarm)
    except Exception:
        return None
    if watch is not None:
        watch(0, 0, size)        # comparing object outcomes runs the allocator's __eq__
    try:
        differ = a.shape != b.shape or not np.array_equal(a, b)
    except Exception:  # noqa: BLE001 - garbage outcomes: validation will name them
        return None
    finally:
        if watch is not None:
            watch(None)
    np_after = np_state()
    return {"differ": bool(differ),
            "numpy_global": np_after[1] != np_before[1] or not np.array_equal(np_after[0], np_before[0]),
            "python_global": random.getstate() != py_state}


#: aim of a task's length in seconds of allocator work (task sizes come from the measured cost of a call)
TASK_SECONDS = 0.25
#: start more worker processes (up to --jobs) only when the work left is worth their start-up
_GROW_SECONDS = 0.6


class Sampler:
    """Draws outcomes of ``target`` on instances, reproducibly from ``seed``.

    With ``isolate=True`` (what :func:`fairaudit.audit` and ``fairaudit check`` use
    unless told ``in_process``; also :meth:`open`) allocator calls run in worker
    processes (:mod:`fairaudit.workers`): up to ``jobs`` of them, or the workers of the
    Dask cluster at ``scheduler``; close the sampler (or use it as a context manager)
    to release them. Tasks are sized from the measured cost of a call (about
    :data:`TASK_SECONDS` of work each). ``isolate=False`` calls the allocator in this
    process — the default for a sampler constructed directly — (``jobs`` > 1: joblib
    over tasks of ``task_size`` draws, ``backend`` as in :class:`joblib.Parallel`). ``timeout`` is per call, in seconds; ``memory_limit`` is
    the address-space cap per worker (bytes; None = none). ``budget_seconds`` sets a
    deadline that sampling respects. ``calls`` counts allocator calls made. Results do
    not depend on any of these settings.
    """

    def __init__(self, target: Target, seed: int = 0, *, jobs: int = 1, timeout: float = 30.0,
                 chunk: int = 256, task_size: int | None = None, backend: str | None = None,
                 budget_seconds: float | None = None, progress: object | None = None,
                 isolate: bool | None = None, memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
                 scheduler=None, pool=None, source=None):
        self.target = target
        self.source = source        # draws come from it, not from workers (a deployed service: fairaudit.service)
        self.seed = int(seed)
        if int(jobs) < 0:
            import os
            jobs = os.cpu_count() or 1
        self.jobs = max(1, int(jobs))
        self.timeout = float(timeout) if timeout else 0.0
        self.chunk = int(chunk)
        self._fixed_task = task_size is not None
        self.task_size = max(int(task_size or 2048), self.chunk) // self.chunk * self.chunk
        self.backend = backend
        self.budget_seconds = budget_seconds
        self.deadline = time.monotonic() + budget_seconds if budget_seconds else None
        self.budget_cut = False          # set when --budget stopped sampling (reset per check by the engine)
        self.progress = progress
        self.memory_limit = memory_limit
        self.scheduler = scheduler
        self.calls = 0
        self.draws_made = 0
        self.warnings: list[str] = []
        self.notes = AllocatorNotes()     # the allocator's warnings and NaN outputs (see take_notes)
        self._repro_checked = False
        self._cost: float | None = None       # seconds of allocator work per draw
        self.pool = pool
        self._payload = None
        if isolate is None:   # constructed directly: in-process, as before (fairaudit.audit isolates)
            isolate = False
        if pool is None and isolate:
            from .workers import payload_for
            self._payload, why = payload_for(target, ship_source=scheduler is not None)
            if self._payload is None:
                isolate = False
                self.warnings.append(
                    f"The allocator could not be sent to worker processes ({why}), so it ran inside the audit's "
                    f"own process: a hang, exit or crash there is not contained. Audit it from a file or an "
                    f"importable module:function to isolate it.")
        self.isolated = bool(isolate or pool is not None) and source is None

    @classmethod
    def open(cls, spec: str, seed: int = 0, **kw) -> "Sampler":
        """A sampler for the allocator file or ``module:function`` ``spec``, loaded only in
        worker processes (or on the Dask cluster ``scheduler=``): this process does not
        import it. ``.target`` describes it (kind, signature, hash). Raises
        :class:`~fairaudit.errors.TargetError` when it cannot be loaded."""
        from .workers import DaskPool, acquire_pool, payload_for
        scheduler = kw.get("scheduler")
        payload, _ = payload_for(str(spec), ship_source=scheduler is not None)
        timeout = float(kw.get("timeout", 30.0) or 0.0)
        mem = kw.get("memory_limit", DEFAULT_MEMORY_LIMIT)
        if scheduler is not None:
            pool = DaskPool(payload, scheduler, timeout=timeout, memory_limit=mem)
        else:
            import os
            jobs = int(kw.get("jobs", 1))
            pool = acquire_pool(payload, jobs=jobs if jobs > 0 else (os.cpu_count() or 1), timeout=timeout,
                                memory_limit=mem)
        try:
            meta = pool.probe()
        except BaseException:
            pool.close()
            raise
        target = remote_target(meta)
        s = cls(target, seed, pool=pool, **kw)
        s._payload = payload
        return s

    def for_target(self, target: "Target | str") -> "Sampler":
        """A sampler for another allocator with this one's execution settings (isolation,
        jobs, timeout, memory limit, cluster, the same budget deadline). A string is
        loaded only in the workers, like :meth:`open`."""
        kw = dict(jobs=self.jobs, timeout=self.timeout, chunk=self.chunk, memory_limit=self.memory_limit,
                  scheduler=self.scheduler, progress=self.progress)
        if isinstance(target, str):
            s = Sampler.open(target, self.seed, **kw) if self.isolated else Sampler(load_target(target), self.seed,
                                                                                    isolate=False, **kw)
        else:
            s = Sampler(target, self.seed, isolate=self.isolated, **kw)
        s.deadline = self.deadline
        return s

    def close(self) -> None:
        """Stop the worker processes (a new draw starts them again)."""
        self.source is not None and self.source.close()     # a service's client and its recording
        if self.pool is not None:
            from .workers import WorkerPool, release_pool
            if isinstance(self.pool, WorkerPool):
                release_pool(self.pool)      # kept warm for the next audit of the same allocator
            else:
                self.pool.close()
            self.pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def take_output(self) -> dict | None:
        """The allocator's stdout/stderr captured since the last call (first lines and
        a count of the rest), or None. In-process calls are not captured."""
        return self.pool.take_output() if self.pool is not None else None

    def take_notes(self) -> dict | None:
        """The allocator's Python warnings (distinct ones counted) and NaN outputs since
        the last call, or None (:mod:`fairaudit.allocator_notes`). In-process and in
        isolated workers alike; calls spread by joblib over processes (in-process with
        ``jobs`` > 1) are not recorded."""
        if self.pool is not None:
            self.notes.merge(self.pool.take_notes())
        return self.notes.take()

    # -- public API ---------------------------------------------------------
    def time_left(self) -> float:
        """Seconds left of ``--budget`` (inf without one). Finding it spent marks
        ``budget_cut``: the caller stops sampling because of the budget."""
        left = float("inf") if self.deadline is None else self.deadline - time.monotonic()
        left = 0.0 if self.source is not None and self.source.spent() else left     # --max-queries spent
        if left <= 0:
            self.budget_cut = True
        return left

    def draw(self, inst: Instance, n: int, stream: str, start: int = 0) -> np.ndarray:
        """Outcomes of draws ``start .. start+n-1`` of ``stream`` on ``inst``, validated.

        Raises :class:`AllocatorError` naming the input and draw on the first bad call,
        and :class:`BudgetExhausted` when the ``budget_seconds`` deadline passes first."""
        return self._draw(inst, n, stream, start, partial=False)

    def _draw(self, inst: Instance, n: int, stream: str, start: int, partial: bool) -> np.ndarray:
        if n <= 0:
            return np.zeros((0, 0), dtype=np.int64)
        if self.source is not None: return self.source.draw(self, [(inst, stream, start, n)], partial)[0]  # noqa: E701
        if not self._repro_checked:
            self._repro_checked = True
            self.check_reproducible(inst)
        self._hook("expect", [stream], [n])
        try:
            if self.isolated:
                out = self._draw_isolated(inst, n, stream, start)
            else:
                try:
                    out = self._draw_in_process(inst, n, stream, start)
                finally:
                    self.notes.merge(PROCESS_NOTES.take())
        except BudgetExhausted as e:
            self.calls += e.calls
            if not partial or e.outcomes is None or not len(e.outcomes):
                raise BudgetExhausted(
                    f"the time budget (--budget {self.budget_seconds:g} s) ran out while drawing {n:,} outcomes on "
                    f"input '{inst.label}' (stream '{stream}'; {e.done:,} made): the allocator is too slow for this "
                    f"budget — raise --budget or lower --draws", done=e.done, outcomes=e.outcomes) from None
            self.draws_made += len(e.outcomes)
            return e.outcomes
        self.draws_made += n
        return out

    def _draw_in_process(self, inst, n, stream, start):
        bounds = list(range(start, start + n, self.task_size)) + [start + n]
        tasks = list(zip(bounds[:-1], bounds[1:]))
        if self.jobs == 1 or len(tasks) == 1:
            results = []
            for a, b in tasks:
                try:
                    results.append(_run_task(self.target, inst, self.seed, stream, a, b, self.chunk, self.timeout,
                                             deadline=self.deadline))
                except BudgetExhausted as e:
                    self.calls += sum(c for _, c in results)
                    parts = [r for r, _ in results] + ([e.outcomes] if e.outcomes is not None else [])
                    raise BudgetExhausted(str(e), done=(a - start) + e.done, calls=e.calls,
                                          outcomes=np.concatenate(parts, axis=0) if parts else None) from None
                self._hook("advance", stream, b - a)
        else:
            from joblib import Parallel, delayed
            ref = self.target.load_spec if (self.target.load_spec and self.backend not in ("threading",)) else self.target
            par = Parallel(n_jobs=self.jobs, backend=self.backend)
            results = par(delayed(_run_task)(ref, inst, self.seed, stream, a, b, self.chunk, self.timeout)
                          for a, b in tasks)
            self._hook("advance", stream, n)
        self.calls += sum(c for _, c in results)
        return np.concatenate([r for r, _ in results], axis=0)

    # -- isolated: tasks over worker processes --------------------------------
    def _ensure_pool(self):
        if self.pool is None:
            from .workers import DaskPool, acquire_pool
            if self.scheduler is not None:
                self.pool = DaskPool(self._payload, self.scheduler, timeout=self.timeout, memory_limit=self.memory_limit)
            else:
                self.pool = acquire_pool(self._payload, jobs=self.jobs, timeout=self.timeout,
                                         memory_limit=self.memory_limit)
            self.pool.probe()
        return self.pool

    def _task_end(self, a: int, end: int, slots: int) -> int:
        """Where the task starting at draw ``a`` ends: about TASK_SECONDS of work at the
        measured cost per draw, at most an even share of what is left, on a chunk
        boundary for vectorised allocators. (Any split gives the same draws.)"""
        left = end - a
        if self._fixed_task:
            size = self.task_size
        elif self._cost is None:
            size = self.chunk if self.target.vectorized else 4
        else:
            size = TASK_SECONDS / max(self._cost, 1e-9)
        size = max(1, min(int(size), -(-left // max(slots, 1))))
        b = a + size
        if self.target.vectorized:
            b = -(-b // self.chunk) * self.chunk
        return min(max(b, a + 1), end)

    def _error(self, info: dict, inst: Instance, stream: str) -> AllocatorError:
        from .workers import format_memory
        problem = info.get("problem") or "the allocator failed"
        if "MemoryError" in problem and self.memory_limit:
            problem += f" (memory limit per worker: {format_memory(self.memory_limit)}; --memory-limit)"
        cls = AllocatorTimeout if info.get("timeout") else AllocatorError
        return cls(problem, input_label=inst.label, draw=info.get("draw"), stream=stream,
                   inputs=inst.to_jsonable(), generator_index=info.get("generator_index"), size=info.get("size"),
                   frames=info.get("frames"))

    def _wire(self, inst: Instance) -> Instance:
        """The instance as sent to workers: only the arguments the allocator takes (a
        group table it never reads would cost a pandas import and pickling per worker)."""
        cache = self.__dict__.setdefault("_wired", weakref.WeakKeyDictionary())
        try:
            return cache[inst]
        except KeyError:
            pass
        t = self.target
        drop = {} if t.accepts_var_kwargs else {
            f: None for f in ("groups", "features", "labels") if f not in t.arg_names and getattr(inst, f) is not None}
        w = cache[inst] = inst.replace(**drop) if drop else inst
        return w

    def _draw_isolated(self, inst, n, stream, start):
        pool = self._ensure_pool()
        wire = self._wire(inst)
        end = start + n
        nxt = start
        pending: dict[int, tuple[int, int]] = {}
        done: dict[int, np.ndarray] = {}
        err: tuple[int, dict] | None = None
        stop_at: int | None = None            # budget: first draw not made
        partial: tuple[int, np.ndarray | None, int] | None = None
        made = 0
        while True:
            while nxt < end and err is None and stop_at is None:
                if self.deadline is not None and self.time_left() <= 0:
                    stop_at = nxt
                    break
                work_left = (end - nxt) * self._cost if self._cost is not None else 0.0
                grow = self._cost is not None and work_left > _GROW_SECONDS
                slots = pool.jobs if grow else max(1, min(pool.jobs, len(getattr(pool, "workers", ())) or 1))
                if len(pending) >= slots:
                    break
                b = self._task_end(nxt, end, slots)
                left = self.time_left() if self.deadline is not None else None
                tid = pool.submit("task", wire, (self.seed, stream, nxt, b, self.chunk, left), grow=grow)
                pending[tid] = (nxt, b)
                nxt = b
            if not pending:
                break
            for tid, msg in pool.poll(1.0):
                if tid not in pending:
                    continue
                a, b = pending.pop(tid)
                kind = msg[0]
                if kind == "done":
                    arr, calls, secs = msg[2], msg[3], msg[4]
                    done[a] = arr
                    self.calls += calls
                    self._learn(secs, b - a)
                    made += b - a
                    self._hook("advance", stream, b - a)
                elif kind == "budget":
                    _, _, k_done, arr, calls, secs = msg
                    self.calls += calls
                    if partial is None or a < partial[0]:
                        partial = (a, arr, k_done)
                    if stop_at is None or a + k_done < stop_at:
                        stop_at = a + k_done
                else:
                    if err is None or a < err[0]:
                        err = (a, msg[2])
                        later = [t for t, (x, _) in pending.items() if x > a]
                        if later:
                            pool.cancel(later)
                            for t in later:
                                pending.pop(t)
        if err is not None:
            raise self._error(err[1], inst, stream)
        if stop_at is not None and stop_at < end:
            parts, a = [], start
            while a in done and a < stop_at:
                parts.append(done[a])
                a += len(done[a])
            if partial is not None and partial[0] == a and partial[1] is not None:
                parts.append(partial[1])
            arr = np.concatenate(parts, axis=0) if parts else None
            raise BudgetExhausted("budget", done=0 if arr is None else len(arr), outcomes=arr, calls=0)
        return np.concatenate([done[a] for a in sorted(done)], axis=0)

    def _learn(self, seconds: float, draws: int):
        if draws <= 0:
            return
        c = max(seconds, 0.0) / draws
        self._cost = c if self._cost is None else 0.5 * (self._cost + c)

    def draw_streams(self, requests, *, partial: bool = False) -> list[np.ndarray | None]:
        """Several draw ranges at once: ``requests`` are ``(instance, stream, start, n)``;
        returns the outcomes of each (None where n is 0), as :meth:`draw` would — the same
        draws whatever the grouping. With ``partial``, a range the budget cut short
        returns the draws made (possibly fewer, and nothing for the ranges after it)."""
        requests = [(inst, stream, int(start), int(n)) for inst, stream, start, n in requests]
        if self.source is not None:
            return self.source.draw(self, requests, partial)
        if self._batchable(requests):
            return self._draw_batched(requests)
        out: list[np.ndarray | None] = []
        for inst, stream, start, n in requests:
            if n <= 0 or (partial and out and self.budget_cut):
                out.append(None)
                continue
            try:
                out.append(self._draw(inst, int(n), stream, int(start), partial=partial))
            except BudgetExhausted:
                if not partial:
                    raise
                self.budget_cut = True
                out.append(None)
        return out

    def _batchable(self, requests) -> bool:
        """Several ranges for this process's worker pool and no ``--budget`` (a budget cut
        keeps the sequential path's rule of which draws were made): draw them as batches."""
        from .workers import WorkerPool
        if not self.isolated or self.deadline is not None or sum(1 for r in requests if r[3] > 0) < 2:
            return False
        return self.pool is None and self.scheduler is None or isinstance(self.pool, WorkerPool)

    def _draw_batched(self, requests) -> list[np.ndarray | None]:
        """The draws of several ranges, packed into batches of about :data:`TASK_SECONDS` of
        work (at most an even share per worker), each batch one round trip to a worker —
        the same draws as one :meth:`draw` per range. On a failure, the error of the first
        failing range in request order (every range before it has been drawn), as if the
        ranges had been drawn one after the other."""
        first = next(r for r in requests if r[3] > 0)
        if not self._repro_checked:
            self._repro_checked = True
            self.check_reproducible(first[0])
        pool = self._ensure_pool()
        total = sum(n for *_, n in requests if n > 0)
        self._hook("expect", [s for _, s, _, _ in requests], [max(n, 0) for *_, n in requests])
        cursor = [0, requests[0][2]]          # next range: request index, draw
        batches: list[list[tuple[int, int, int]]] = []

        def next_batch():
            # ranges of about TASK_SECONDS at the cost measured so far (:meth:`_task_end`),
            # packed until the batch holds that much work (at most an even share per worker)
            per = (TASK_SECONDS / max(self._cost, 1e-9)) if self._cost is not None else 32.0
            per = max(1.0, min(per, total / max(pool.jobs, 1)))
            batch, size = [], 0
            while size < per and cursor[0] < len(requests):
                r = cursor[0]
                start, n = requests[r][2], requests[r][3]
                if cursor[1] >= start + n:
                    cursor[0] += 1
                    if cursor[0] < len(requests):
                        cursor[1] = requests[cursor[0]][2]
                    continue
                a = cursor[1]
                b = self._task_end(a, start + n, pool.jobs)
                batch.append((r, a, b))
                size += b - a
                cursor[1] = b
            return batch
        wires = {}

        def items(batch):
            out = []
            for r, a, b in batch:
                inst, stream = requests[r][0], requests[r][1]
                w = wires.get(r)
                if w is None:
                    w = wires[r] = self._wire(inst)
                out.append((w, self.seed, stream, a, b, self.chunk))
            return out

        pending: dict[int, int] = {}
        done: dict[int, list] = {}
        err: tuple[tuple[int, int], dict] | None = None
        made = 0
        while True:
            while err is None:
                work = (total - made) * self._cost if self._cost is not None else 0.0
                grow = self._cost is not None and work > _GROW_SECONDS
                slots = pool.jobs if grow else max(1, min(pool.jobs, len(getattr(pool, "workers", ())) or 1))
                if len(pending) >= slots:
                    break
                batch = next_batch()
                if not batch:
                    break
                batches.append(batch)
                tid = pool.submit("tasks", None, (items(batch),), grow=grow)
                pending[tid] = len(batches) - 1
                made += sum(b - a for _, a, b in batch)
            if not pending:
                break
            for tid, msg in pool.poll(1.0):
                bi = pending.pop(tid, None)
                if bi is None:
                    continue
                if msg[0] == "done":
                    done[bi] = msg[2]
                    self.calls += msg[3]
                    self._learn(msg[4], sum(b - a for _, a, b in batches[bi]))
                    for r, a, b in batches[bi]:
                        self._hook("advance", requests[r][1], b - a)
                    continue
                pos = (bi, int(msg[2].get("item") or 0))
                if err is None or pos < err[0]:
                    err = (pos, msg[2])
                    later = [t for t, x in pending.items() if x > bi]
                    if later:
                        pool.cancel(later)
                        for t in later:
                            pending.pop(t)
        if err is not None:
            (bi, item), info = err
            r = batches[bi][item][0]
            raise self._error(info, requests[r][0], requests[r][1])
        parts: list[list] = [[] for _ in requests]
        for bi, batch in enumerate(batches):
            for (r, _, _), arr in zip(batch, done[bi]):
                parts[r].append(arr)
        out: list[np.ndarray | None] = []
        for (inst, stream, start, n), p in zip(requests, parts):
            if n <= 0:
                out.append(None)
                continue
            self.draws_made += n
            out.append(np.concatenate(p, axis=0))
        return out

    def draw_many(self, requests, n: int = 1) -> np.ndarray:
        """Episode- and replicate-style draws: the first ``n`` draws of each
        ``(instance, stream)`` in ``requests`` (one stream per episode), stacked:
        shape ``(len(requests), n, …)``."""
        outs = self.draw_streams([(inst, stream, 0, n) for inst, stream in requests])
        return np.stack(outs) if outs else np.zeros((0, n, 0), dtype=np.int64)

    def sample_until_many(self, items, decided: Callable[[list[np.ndarray]], bool], max_draws: int, *,
                          first: int | None = None, schedule=None, have=None) -> list[np.ndarray]:
        """Sequential sampling of several streams together: ``items`` are ``(instance,
        stream)``; every stream is drawn to the same total, in looks — ``schedule`` (the
        totals, e.g. 512, 2048, 8192, … for a Bonferroni-over-looks family) or, without
        one, ``first`` and then doubling, each a whole number of chunks — until
        ``decided(draws per stream)`` is true, ``max_draws`` is reached, or ``--budget``
        is spent (then :attr:`budget_cut` is set and the draws made so far are kept).
        ``have``: draws already taken on each stream (their prefixes are kept, not
        redrawn). ``decided`` must use anytime-valid intervals, since it is re-checked
        after every look."""
        draws = list(have) if have is not None else [None] * len(items)
        if schedule is None:
            b = max(self.chunk, ((first or self.chunk) // self.chunk) * self.chunk)
            schedule = []
            while b < max_draws:
                schedule.append(b)
                b *= 2
            schedule.append(max_draws)
        schedule = sorted({min(int(t), int(max_draws)) for t in schedule})
        self._hook("plan", [stream for _, stream in items], int(max_draws))   # display: looks toward max_draws
        for look, total in enumerate(schedule):
            if look and self.time_left() <= 0:
                break
            sizes = [0 if d is None else len(d) for d in draws]
            more = self.draw_streams([(inst, stream, sz, total - sz) for (inst, stream), sz in zip(items, sizes)],
                                     partial=True)
            draws = [m if d is None else (d if m is None or not len(m) else np.concatenate([d, m]))
                     for d, m in zip(draws, more)]
            if any(d is None or not len(d) for d in draws):
                break                                  # the budget ran out before every stream had a draw
            if decided(draws) or self.budget_cut:
                break
        return draws

    def sample_until(self, inst: Instance, stream: str, decided: Callable[[np.ndarray], bool],
                     max_draws: int, first: int | None = None, have: np.ndarray | None = None) -> np.ndarray:
        """Sequential sampling of one stream: draw in growing batches (``first``, then
        doubling, each a whole number of chunks) until ``decided(all_draws)`` is true,
        ``max_draws`` is reached, or the time budget runs out (see
        :meth:`sample_until_many`). Returns all draws taken."""
        first = min(first or self.chunk, max_draws)
        if have is not None and len(have):
            first = max(first, len(have))
        out = self.sample_until_many([(inst, stream)], lambda ds: decided(ds[0]), max_draws, first=first,
                                     have=None if have is None else [have])[0]
        if out is None:
            raise BudgetExhausted(f"the time budget (--budget {self.budget_seconds:g} s) ran out before the first "
                                  f"draw on input '{inst.label}' (stream '{stream}')")
        return out

    def check_reproducible(self, inst: Instance) -> None:
        """Call the allocator twice with the same generator. Different outcomes mean it
        ignores the supplied ``rng`` — its results cannot be reproduced from the seed —
        and add a warning (saying whether numpy's or Python's global random state moved).
        An allocator that touches global state without it changing its outcomes is fine."""
        if self.isolated:
            pool = self._ensure_pool()
            tid = pool.submit("repro", self._wire(inst), (self.seed,))
            res = None
            while True:
                got = pool.poll(max(self.timeout, 1.0) + 1.0)
                hit = [m for t, m in got if t == tid]
                if hit:
                    res = hit[0][2] if hit[0][0] == "done" else None
                    self.calls += 2 if hit[0][0] == "done" else 0
                    break
                if not got and not any(w.task for w in getattr(pool, "workers", [])) and not getattr(pool, "futures", None):
                    break
        else:
            res = _repro_outcomes(self.target, inst, self.seed, self.timeout)
            if res is not None:
                self.calls += 2
        if not res or not res["differ"]:
            return
        why = [w for w, flag in (("numpy's global random state", res["numpy_global"]),
                                 ("Python's global 'random' module", res["python_global"])) if flag]
        self.warnings.append(
            "The allocator ignores the supplied rng (it returned different outcomes for the same generator"
            + (f"; it uses {' and '.join(why)}" if why else "") + "): its draws are not reproducible "
            "from --seed, so a rerun will not give the same numbers. Draw randomness from the 'rng' argument.")

    # -- helpers -------------------------------------------------------------
    def _hook(self, name: str, *args) -> None:  # the progress display's plan/expect/advance (fairaudit.progress)
        fn = getattr(self.progress, name, None)
        if fn is not None:
            fn(*args)


def remote_target(meta: dict) -> Target:
    """A :class:`Target` described by a worker that loaded it; its ``func`` cannot be
    called here (the allocator was never imported into this process)."""
    def not_here(**kwargs):
        raise RuntimeError("this allocator was loaded only in worker processes; load it with "
                           "fairaudit.load_target to call it here")
    return Target(func=not_here, kind=meta["kind"], name=meta["name"], path=meta["path"], sha256=meta["sha256"],
                  k=meta["k"], vectorized=meta["vectorized"], arg_names=frozenset(meta["arg_names"]),
                  accepts_var_kwargs=meta["accepts_var_kwargs"], doc=meta["doc"], load_spec=meta.get("load_spec"),
                  claims=meta.get("claims", "real"), kind_guessed=meta.get("kind_guessed", False), remote=True,
                  columns=tuple(meta.get("columns", ())), n_inputs=meta.get("n_inputs"))


# Vectorised summaries of outcome arrays live in fairaudit.outcomes (re-exported here).
from .outcomes import inclusion_counts, inclusion_matrix, position_counts  # noqa: E402,F401
