"""The sampler: B seeded draws of an allocator's outcome per input.

Reproducibility contract (SPEC §0): draw ``j`` of stream ``s`` under seed ``seed`` uses
the generator of ``SeedSequence(seed, spawn_key=(h(s), j))`` — exactly the ``j``-th
child that ``SeedSequence(seed, spawn_key=(h(s),)).spawn(...)`` would produce — so a
draw does not depend on batch size, worker count or backend. A vectorised allocator
(one that accepts ``size``) is called once per *chunk* of ``chunk`` consecutive draws,
chunk ``c`` seeded with spawn key ``(h(s), c)``; chunks are fixed, so again the result
does not depend on how the work is batched or spread over workers.

Checks never call the allocator: they ask the sampler for draws.

Where the draws are made is the pool's business (:mod:`fairaudit.run.workers`: local
worker processes or a Dask cluster, behind one protocol); the sampler decides the tasks
in one scheduling loop (:meth:`Sampler._schedule`) for :meth:`Sampler.draw` and
:meth:`Sampler.draw_streams` alike, and re-validates every outcome a pool returns.
"""
from __future__ import annotations

import time
import weakref
from typing import Callable

import numpy as np

from ..errors import AllocatorError, AllocatorTimeout, BudgetExhausted
from . import wire
from .allocator_notes import PROCESS_NOTES, AllocatorNotes
from .load import load_target
from ..instance import Instance
from .targets import Target, validate_outcomes
from .task import draw_generator, repro_outcomes, run_task, stream_key  # noqa: F401  (draw_generator, stream_key: public here)
from .pools import open_pool, worker_count
from .workers import DEFAULT_MEMORY_LIMIT, format_memory, payload_for


#: aim of a task's length in seconds of allocator work (task sizes come from the measured cost of a call)
TASK_SECONDS = 0.25
#: start more worker processes (up to --jobs) only when the work left is worth their start-up
_GROW_SECONDS = 0.6


class Sampler:
    """Draws outcomes of ``target`` on instances, reproducibly from ``seed``.

    With ``isolate=True`` (what :func:`fairaudit.audit` and ``fairaudit check`` use
    unless told ``in_process``; also :meth:`open`) allocator calls run in a pool
    (:mod:`fairaudit.run.pools`): up to ``jobs`` worker processes, or the workers of the
    Dask cluster at ``scheduler``; close the sampler (or use it as a context manager)
    to release them. ``jobs`` is read by :func:`~fairaudit.run.pools.worker_count`
    (0 or -1: one per core). Tasks are sized from the measured cost of a call (about
    :data:`TASK_SECONDS` of work each). ``isolate=False`` calls the allocator in this
    process — the default for a sampler constructed directly — (``jobs`` > 1: joblib
    over tasks of ``task_size`` draws, ``backend`` as in :class:`joblib.Parallel`).
    ``timeout`` is per call, in seconds; ``memory_limit`` is the address-space cap per
    worker (bytes; None = none). ``budget_seconds`` sets a deadline that sampling
    respects. ``calls`` counts allocator calls made. Results do
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
        self.jobs = worker_count(jobs)
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
        scheduler = kw.get("scheduler")
        payload, _ = payload_for(str(spec), ship_source=scheduler is not None)
        pool = open_pool(payload, jobs=worker_count(kw.get("jobs", 1)), timeout=float(kw.get("timeout", 30.0) or 0.0),
                         memory_limit=kw.get("memory_limit", DEFAULT_MEMORY_LIMIT), scheduler=scheduler)
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
            self.pool.release()      # spare workers (no allocator loaded) stay warm for the next audit
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
        the last call, or None (:mod:`fairaudit.run.allocator_notes`). In-process and in
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
                    results.append(run_task(self.target, inst, self.seed, stream, a, b, self.chunk, self.timeout,
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
            results = par(delayed(run_task)(ref, inst, self.seed, stream, a, b, self.chunk, self.timeout)
                          for a, b in tasks)
            self._hook("advance", stream, n)
        self.calls += sum(c for _, c in results)
        return np.concatenate([r for r, _ in results], axis=0)

    # -- isolated: tasks over worker processes --------------------------------
    def _ensure_pool(self):
        if self.pool is None:
            self.pool = open_pool(self._payload, jobs=self.jobs, timeout=self.timeout, memory_limit=self.memory_limit,
                                  scheduler=self.scheduler)
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

    def _error(self, info: wire.Failure, inst: Instance, stream: str) -> AllocatorError:
        problem = info.problem or "the allocator failed"
        if "MemoryError" in problem and self.memory_limit:
            problem += f" (memory limit per worker: {format_memory(self.memory_limit)}; --memory-limit)"
        cls = AllocatorTimeout if info.timeout else AllocatorError
        return cls(problem, input_label=inst.label, draw=info.draw, stream=stream,
                   inputs=inst.to_jsonable(), generator_index=info.generator_index, size=info.size,
                   frames=info.frames)

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
        """One range on the pool, ``--budget`` respected (:meth:`_schedule` of one request)."""
        return self._schedule([(inst, stream, start, n)], budget=True)[0]

    def _checked(self, arr, inst: Instance, rows: int) -> np.ndarray:
        """An outcome array a pool returned, validated again here: the audit process takes
        nothing from a worker on trust (issue 26.1)."""
        if arr is None or np.ndim(arr) < 1 or len(arr) != rows:
            raise ValueError(f"returned {0 if arr is None or np.ndim(arr) < 1 else len(arr)} outcomes for a task "
                             f"of {rows} draws")
        return validate_outcomes(self.target.kind, arr, inst, rows, self.target.effective_k(inst))

    def _schedule(self, requests, *, budget: bool = False) -> list:
        """The one scheduling loop of isolated draws, for :meth:`draw` and
        :meth:`draw_streams` alike: the draws of ``requests`` (``(instance, stream, start,
        n)``) as tasks on the pool, each a batch of draw ranges of about
        :data:`TASK_SECONDS` of work — one range per task for a single request, ranges
        packed together for several (one round trip for many one-draw episodes; at most
        an even share per worker) — with at most ``pool.slots(grow)`` in flight. The same
        draws as one :meth:`draw` per range, whatever the split. On a failure: the error
        of the first failing range in request order (every range before it drawn), as if
        the ranges had been drawn one after the other. ``budget`` (a single request):
        past ``--budget``, :class:`BudgetExhausted` with the contiguous draws made."""
        pool = self._ensure_pool()
        live = [r for r, req in enumerate(requests) if req[3] > 0]
        several = len(live) > 1
        total = sum(requests[r][3] for r in live)
        cursor = [0, requests[live[0]][2] if live else 0]      # next range (index into live), next draw
        wires: dict[int, Instance] = {}

        def next_batch(slots: int) -> list[tuple[int, int, int]]:
            # ranges of about TASK_SECONDS at the cost measured so far (:meth:`_task_end`);
            # several requests: packed until the batch holds that much work
            per = 0.0
            if several:
                per = (TASK_SECONDS / max(self._cost, 1e-9)) if self._cost is not None else 32.0
                per = max(1.0, min(per, total / max(pool.jobs, 1)))
            batch, size = [], 0
            while cursor[0] < len(live):
                r = live[cursor[0]]
                start, n = requests[r][2], requests[r][3]
                if cursor[1] >= start + n:
                    cursor[0] += 1
                    if cursor[0] < len(live):
                        cursor[1] = requests[live[cursor[0]]][2]
                    continue
                if batch and size >= per:
                    break
                a = cursor[1]
                b = self._task_end(a, start + n, pool.jobs if several else slots)
                batch.append((r, a, b))
                size += b - a
                cursor[1] = b
            return batch

        def item(r, a, b) -> wire.DrawItem:
            w = wires.get(r)
            if w is None:
                w = wires[r] = self._wire(requests[r][0])
            return wire.DrawItem(w, self.seed, requests[r][1], a, b, self.chunk)

        pending: dict[int, list[tuple[int, int, int]]] = {}
        done: dict[tuple[int, int], np.ndarray] = {}
        err: tuple[tuple[int, int], wire.Failure, int] | None = None
        stop_at: tuple[int, int] | None = None             # budget: first draw not made
        partial: dict[tuple[int, int], np.ndarray] = {}
        made = 0

        def fail(pos, failure, r):
            nonlocal err
            if err is None or pos < err[0]:
                err = (pos, failure, r)
                later = [t for t, batch in pending.items() if (batch[0][0], batch[0][1]) > pos]
                if later:
                    pool.cancel(later)
                    for t in later:
                        pending.pop(t)

        def take(r, a, b, arr) -> bool:
            try:
                done[(r, a)] = self._checked(arr, wires[r], b - a)
            except ValueError as e:
                fail((r, a), wire.Failure(f"allocator {e} (caught when the audit process validated what the "
                                          f"worker sent back)", draw=a, generator_index=None), r)
                return False
            return True

        while True:
            while err is None and stop_at is None:
                if budget and self.deadline is not None and self.time_left() <= 0:
                    if cursor[0] < len(live):
                        stop_at = (live[cursor[0]], cursor[1])
                    break
                work = (total - made) * self._cost if self._cost is not None else 0.0
                grow = self._cost is not None and work > _GROW_SECONDS
                slots = pool.slots(grow)
                if len(pending) >= slots:
                    break
                batch = next_batch(slots)
                if not batch:
                    break
                left = self.time_left() if budget and self.deadline is not None else None
                tid = pool.submit(wire.DrawTask([item(*x) for x in batch], left), grow=grow)
                pending[tid] = batch
                made += sum(b - a for _, a, b in batch)
            if not pending:
                break
            for tid, reply in pool.poll(1.0):
                batch = pending.pop(tid, None)
                if batch is None:
                    continue
                if isinstance(reply, wire.Failed):
                    i = min(max(reply.failure.item, 0), len(batch) - 1)
                    r, a, _ = batch[i]
                    fail((r, a), reply.failure, r)
                    continue
                if isinstance(reply, wire.Done) and len(reply.outcomes) == len(batch):
                    self.calls += reply.calls
                    self._learn(reply.seconds, sum(b - a for _, a, b in batch))
                    for (r, a, b), arr in zip(batch, reply.outcomes):
                        if not take(r, a, b, arr):
                            break
                        self._hook("advance", requests[r][1], b - a)
                    continue
                if isinstance(reply, wire.BudgetCut) and reply.item < len(batch):
                    self.calls += reply.calls
                    for (r, a, b), arr in zip(batch, reply.outcomes):
                        if not take(r, a, b, arr):
                            break
                    r, a, b = batch[reply.item]
                    if reply.partial is not None and reply.done:
                        try:
                            partial[(r, a)] = self._checked(reply.partial, wires[r], reply.done)
                        except ValueError as e:
                            fail((r, a), wire.Failure(f"allocator {e} (caught when the audit process validated "
                                                      f"what the worker sent back)", draw=a), r)
                    pos = (r, a + reply.done)
                    if stop_at is None or pos < stop_at:
                        stop_at = pos
                    continue
                r, a, _ = batch[0]
                fail((r, a), wire.Failure("the worker's reply does not match the task it was given", draw=a), r)
        if err is not None:
            _, failure, r = err
            raise self._error(failure, requests[r][0], requests[r][1])
        if stop_at is not None:
            r, stop = stop_at
            end = requests[r][2] + requests[r][3]
            if stop < end:
                parts, a = [], requests[r][2]
                while (r, a) in done and a < stop:
                    parts.append(done[(r, a)])
                    a += len(done[(r, a)])
                if (r, a) in partial:
                    parts.append(partial[(r, a)])
                arr = np.concatenate(parts, axis=0) if parts else None
                raise BudgetExhausted("budget", done=0 if arr is None else len(arr), outcomes=arr, calls=0)
        out: list[np.ndarray | None] = [None] * len(requests)
        for r in live:
            out[r] = np.concatenate([done[k] for k in sorted(k for k in done if k[0] == r)], axis=0)
        return out

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
        """Several ranges for the pool and no ``--budget`` (a budget cut keeps the
        sequential path's rule of which draws were made): one :meth:`_schedule` of them all."""
        return self.isolated and self.deadline is None and sum(1 for r in requests if r[3] > 0) >= 2

    def _draw_batched(self, requests) -> list[np.ndarray | None]:
        first = next(r for r in requests if r[3] > 0)
        if not self._repro_checked:
            self._repro_checked = True
            self.check_reproducible(first[0])
        self._hook("expect", [s for _, s, _, _ in requests], [max(n, 0) for *_, n in requests])
        out = self._schedule(requests)
        self.draws_made += sum(n for *_, n in requests if n > 0)
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
            tid = pool.submit(wire.ReproTask(self._wire(inst), self.seed))
            res = None
            while True:
                got = pool.poll(max(self.timeout, 1.0) + 1.0)
                hit = [reply for t, reply in got if t == tid]
                if hit:
                    if isinstance(hit[0], wire.Repro):
                        res = hit[0].result
                        self.calls += 2
                    break
                if not got and not pool.busy():
                    break
        else:
            res = repro_outcomes(self.target, inst, self.seed, self.timeout)
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
from ..outcomes import inclusion_counts, inclusion_matrix, position_counts  # noqa: E402,F401
