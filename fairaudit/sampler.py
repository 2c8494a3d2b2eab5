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
import zlib
from typing import Callable

import numpy as np

from .errors import AllocatorError, AllocatorTimeout
from .targets import Instance, Target, load_target, validate_outcomes
from .text import exception_text


def stream_key(stream: str) -> int:
    """A stable 32-bit key for a stream name (same on every platform and run)."""
    return zlib.crc32(stream.encode("utf-8"))


def draw_generator(seed: int, stream: str, j: int) -> np.random.Generator:
    """The generator of draw (or chunk) ``j`` of ``stream`` — public so a failure can be replayed."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(stream_key(stream), j))))


class _CallTimeout(BaseException):
    """Raised by the alarm handler; a BaseException so allocator code catching
    ``Exception`` cannot swallow it."""


@functools.lru_cache(maxsize=8)
def _worker_target(spec: str) -> Target:
    return load_target(spec)


def _resolve(target_or_spec) -> Target:
    return _worker_target(target_or_spec) if isinstance(target_or_spec, str) else target_or_spec


class _Alarm:
    """Per-call timeout. In the main thread (also of a loky worker process) a SIGALRM
    interrupts the call; elsewhere (thread backends) the timeout is enforced after the
    call returns, since a thread cannot be interrupted."""

    def __init__(self, timeout: float):
        self.timeout = timeout
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

    def call(self, func, kwargs, on_timeout: Callable[[float], Exception], on_error: Callable[[Exception], Exception]):
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
        except Exception as e:
            raise on_error(e) from e
        if not self.active and self.timeout and time.perf_counter() - t0 > self.timeout:
            raise on_timeout(time.perf_counter() - t0)
        return out


def _run_task(target_or_spec, inst: Instance, seed: int, stream: str, start: int, stop: int,
              chunk: int, timeout: float) -> tuple[np.ndarray, int]:
    """Draws ``start..stop-1``; returns (outcomes, number of allocator calls made)."""
    target = _resolve(target_or_spec)
    k = target.effective_k(inst)
    alarm = _Alarm(timeout)

    def where(j, g, size):
        return dict(input_label=inst.label, draw=j, stream=stream, inputs=inst.to_jsonable(),
                    generator_index=g, size=size)

    def call(g, j, size=None):
        return alarm.call(
            target.func, target.call_kwargs(inst, draw_generator(seed, stream, g), size),
            on_timeout=lambda dt: AllocatorTimeout(
                f"allocator call exceeded the {timeout:g} s per-call timeout", **where(j, g, size)),
            on_error=lambda e: AllocatorError(f"allocator raised {type(e).__name__}: {exception_text(e)}",
                                              **where(j, g, size)))

    def bad(msg, j, g=None, size=None):
        return AllocatorError(f"allocator {msg}", **where(j, j if g is None else g, size))

    with alarm:
        if target.vectorized:
            parts, calls = [], 0
            c0, c1 = start // chunk, (stop - 1) // chunk
            for c in range(c0, c1 + 1):
                a, b = c * chunk, min((c + 1) * chunk, stop)
                size = b - a
                out = call(c, a, size=size)
                calls += 1
                try:
                    arr = validate_outcomes(target.kind, out, inst, size, k)
                except ValueError as e:
                    raise bad(f"(vectorised, size={size}) {e}", a, c, size) from None
                parts.append(arr[max(start - a, 0):])
            return np.concatenate(parts, axis=0), calls
        outs = [call(j, j) for j in range(start, stop)]
        try:
            return validate_outcomes(target.kind, outs, inst, len(outs), k), len(outs)
        except ValueError:
            # Find the first offending draw to name it.
            for j, o in zip(range(start, stop), outs):
                try:
                    validate_outcomes(target.kind, o, inst, 1, k)
                except ValueError as e:
                    raise bad(str(e), j) from None
            raise bad("returned outcomes of inconsistent length across draws", start) from None


class Sampler:
    """Draws outcomes of ``target`` on instances, reproducibly from ``seed``.

    ``jobs`` > 1 spreads tasks of ``task_size`` draws over joblib workers (``backend``
    as in :class:`joblib.Parallel`; default loky processes). ``timeout`` is per call, in
    seconds. ``budget_seconds`` sets a deadline that sequential sampling respects.
    ``calls`` counts allocator calls made.
    """

    def __init__(self, target: Target, seed: int = 0, *, jobs: int = 1, timeout: float = 30.0,
                 chunk: int = 256, task_size: int = 2048, backend: str | None = None,
                 budget_seconds: float | None = None, progress: Callable[[str, int, int], None] | None = None):
        self.target = target
        self.seed = int(seed)
        self.jobs = int(jobs)
        self.timeout = float(timeout) if timeout else 0.0
        self.chunk = int(chunk)
        self.task_size = max(int(task_size), self.chunk) // self.chunk * self.chunk
        self.backend = backend
        self.deadline = time.monotonic() + budget_seconds if budget_seconds else None
        self.progress = progress
        self.calls = 0
        self.draws_made = 0
        self.warnings: list[str] = []
        self.budget_cut = False          # set when --budget stopped sampling (reset per check by the engine)
        self._repro_checked = False

    # -- public API ---------------------------------------------------------
    def time_left(self) -> float:
        """Seconds left of ``--budget`` (inf without one). Finding it spent marks
        ``budget_cut``: the caller stops sampling because of the budget."""
        left = float("inf") if self.deadline is None else self.deadline - time.monotonic()
        if left <= 0:
            self.budget_cut = True
        return left

    def draw(self, inst: Instance, n: int, stream: str, start: int = 0) -> np.ndarray:
        """Outcomes of draws ``start .. start+n-1`` of ``stream`` on ``inst``, validated.

        Raises :class:`AllocatorError` naming the input and draw on the first bad call."""
        if n <= 0:
            return np.zeros((0, 0), dtype=np.int64)
        if not self._repro_checked:
            self._repro_checked = True
            self.check_reproducible(inst)
        bounds = list(range(start, start + n, self.task_size)) + [start + n]
        tasks = list(zip(bounds[:-1], bounds[1:]))
        ref = self.target.path if (self.jobs != 1 and self.target.path.endswith(".py")) else self.target
        if self.jobs == 1 or len(tasks) == 1:
            results = []
            for a, b in tasks:
                results.append(_run_task(ref, inst, self.seed, stream, a, b, self.chunk, self.timeout))
                self._report(stream, b - start, n)
        else:
            from joblib import Parallel, delayed
            par = Parallel(n_jobs=self.jobs, backend=self.backend)
            results = par(delayed(_run_task)(ref, inst, self.seed, stream, a, b, self.chunk, self.timeout)
                          for a, b in tasks)
            self._report(stream, n, n)
        self.calls += sum(c for _, c in results)
        self.draws_made += n
        return np.concatenate([r for r, _ in results], axis=0)

    def draw_streams(self, requests) -> list[np.ndarray]:
        """Several draw ranges at once: ``requests`` are ``(instance, stream, start, n)``;
        returns the outcomes of each, as :meth:`draw` would (the same draws whatever the
        grouping). One place where a check's many small streams are spread over workers."""
        return [self.draw(inst, int(n), stream, start=int(start)) if n > 0 else None
                for inst, stream, start, n in requests]

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
        is spent (after the first look; then :attr:`budget_cut` is set). ``have``: draws
        already taken on each stream (their prefixes are kept, not redrawn). ``decided``
        must use anytime-valid intervals, since it is re-checked after every look."""
        draws = list(have) if have is not None else [None] * len(items)
        if schedule is None:
            b = max(self.chunk, ((first or self.chunk) // self.chunk) * self.chunk)
            schedule = []
            while b < max_draws:
                schedule.append(b)
                b *= 2
            schedule.append(max_draws)
        schedule = sorted({min(int(t), int(max_draws)) for t in schedule})
        for look, total in enumerate(schedule):
            if look and self.time_left() <= 0:
                break
            sizes = [0 if d is None else len(d) for d in draws]
            more = self.draw_streams([(inst, stream, sz, total - sz) for (inst, stream), sz in zip(items, sizes)])
            draws = [m if d is None else (d if m is None else np.concatenate([d, m])) for d, m in zip(draws, more)]
            if decided(draws):
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
        return self.sample_until_many([(inst, stream)], lambda ds: decided(ds[0]), max_draws, first=first,
                                      have=None if have is None else [have])[0]

    def check_reproducible(self, inst: Instance) -> None:
        """Call the allocator twice with the same generator. Different outcomes, or a
        change of numpy's or Python's global random state, mean it ignores the supplied
        ``rng`` — its results cannot be reproduced from the seed. Adds a warning."""
        import random
        np_state = np.random.get_state()[1].copy()
        py_state = random.getstate()
        target = self.target
        size = 2 if target.vectorized else None

        class _Skip(Exception):
            pass

        def once(alarm):
            out = alarm.call(target.func,
                             target.call_kwargs(inst, draw_generator(self.seed, "reproducibility", 0), size),
                             on_timeout=lambda dt: _Skip(), on_error=lambda e: _Skip())
            return np.asarray(out)
        try:
            with _Alarm(self.timeout) as alarm:
                a = once(alarm)
                b = once(alarm)
        except Exception:
            return  # errors and timeouts surface, named, when the checks draw
        self.calls += 2
        msgs = []
        if not np.array_equal(np.random.get_state()[1], np_state):
            msgs.append("uses numpy's global random state")
        if random.getstate() != py_state:
            msgs.append("uses Python's global 'random' module")
        if a.shape != b.shape or not np.array_equal(a, b):
            msgs.append("returned different outcomes for the same generator")
        if msgs:
            self.warnings.append(
                f"The allocator ignores the supplied rng ({'; '.join(msgs)}): its draws are not reproducible "
                f"from --seed, so a rerun will not give the same numbers. Draw randomness from the 'rng' argument.")

    # -- helpers -------------------------------------------------------------
    def _report(self, stream, done, total):
        if self.progress is not None:
            self.progress(stream, done, total)


# Vectorised summaries of outcome arrays live in fairaudit.outcomes (re-exported here).
from .outcomes import inclusion_counts, inclusion_matrix, position_counts  # noqa: E402,F401
