"""The task: what runs in whichever process calls the allocator — this one
(``--in-process``), an isolated worker process, or a worker process on a Dask machine.

It holds no pool and knows nothing of processes: the seeded generator of each draw
(:func:`draw_generator`, the reproducibility contract of SPEC §0), the per-call alarm
(:class:`Alarm`), the guard that catches an allocator changing its arguments in place
(:class:`ArgGuard`), the draw loop with validation of every outcome (:func:`run_task`)
and the reproducibility probe (:func:`repro_outcomes`). The same functions run in every
process, so outcomes, validation and messages are the same whichever way draws are made.
"""
from __future__ import annotations

import functools
import signal
import threading
import time
import zlib
from typing import Callable

import numpy as np

from ..errors import AllocatorError, AllocatorTimeout, BudgetExhausted
from ..text import exception_text
from .allocator_notes import AllocatorNotes, count_nan, recording
from .load import load_target
from ..instance import Instance
from .targets import PER_PERSON_HINT, Target, validate_outcomes


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


class Alarm:
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


class ArgGuard:
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


def run_task(target_or_spec, inst: Instance, seed: int, stream: str, start: int, stop: int,
              chunk: int, timeout: float, deadline: float | None = None, watch=None) -> tuple[np.ndarray, int]:
    """Draws ``start..stop-1``; returns (outcomes, number of allocator calls made).

    The same function runs in-process, in worker processes and on Dask workers.
    ``deadline`` (``time.monotonic``): past it, raise :class:`BudgetExhausted` with the
    draws made so far. ``watch(j, g, size)`` is told about each call before it starts
    and ``watch(None)`` after it (the worker's shared state the audit process watches)."""
    target = _resolve(target_or_spec)
    k = target.effective_k(inst)
    alarm = Alarm(timeout, contain=watch is not None)
    guard = None
    func = target.func

    def where(j, g, size):
        return dict(input_label=inst.label, draw=j, stream=stream, inputs=inst.to_jsonable(),
                    generator_index=g, size=size)

    def call(g, j, size=None):
        nonlocal guard
        kwargs = target.call_kwargs(inst, draw_generator(seed, stream, g), size)
        if guard is None:
            guard = ArgGuard(kwargs)
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

    # the allocator's warnings are recorded (fairaudit.run.allocator_notes), not printed
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


def repro_outcomes(target, inst: Instance, seed: int, timeout: float = 0.0, watch=None) -> dict | None:
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
        with Alarm(timeout, contain=watch is not None) as alarm, recording(AllocatorNotes()):
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
