"""The engine: resolve the target and data, run the checks, collect an AuditResult.

Errors inside one check (an allocator that raises, times out or returns garbage; a
check that crashes) become that check's ``error`` verdict; the other checks still
run and the report still renders.
"""
from __future__ import annotations

import math
import traceback
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ._version import __version__
from .run.allocator_notes import AllocatorNotes
from .check import Check, discover
from .data import UserPopulation, load_population, population_from_frame
from .errors import AllocatorError, BudgetExhausted, DataError, FairauditError, InputsTooSmall, TargetError, UsageError
from .hypothesis_home import scratch_hypothesis_home
from .draw_records import draw_record
from .labels import kinds_phrase
from .logs.load import DecisionLog, is_log_frame, is_log_path, load_log, log_from_any
from .params import resolve_params, unknown_checks
from .result import AuditResult, CheckResult
from . import notebook as _notebook  # noqa: F401 - shows the results it returns (result.PRESENTERS)
from .run.sampler import Sampler, draw_generator
from .service import is_service_spec, open_service_sampler
from .text import JSON_CHARS, exception_text
from .run.workers import DEFAULT_MEMORY_LIMIT, parse_memory
from .run.targets import Target, target_from_callable
from .run.load import load_target
from .run.spec import with_threshold
from .instance import Instance


_RUN_SETTINGS = ("jobs", "progress", "in_process", "memory_limit", "scheduler", "record", "from_recording")


@dataclass
class AuditConfig:
    """Settings that shape results (all go into the JSON ``config``), plus ``jobs`` and
    ``progress`` which do not change results and are left out of it."""

    seed: int = 0
    confidence: float = 0.95
    draws: int | None = None            # max draws per input (each check has a default)
    budget: float | None = None         # seconds; sequential sampling stops when spent
    timeout: float = 30.0               # per allocator call, seconds
    fail_on: str = "fail"
    require: bool = False               # a check that is skipped exits 1 (--require)
    allow_skip: bool = False            # a requested check that cannot run is skipped, not refused (--allow-skip)
    config_file: str | None = None      # the configuration file the options came from (recorded in the JSON)
    k: int | None = None                # k for selection when neither the data nor the decorator fixes it
    groups: list[str] | None = None
    columns: dict[str, str] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)   # per-check parameter overrides
    jobs: int = 1
    progress: Callable | None = None
    encoding: str | None = None         # text encoding of CSV logs/data (default UTF-8)
    threshold: float | None = None      # a fitted model decides by predict_proba[:, 1] >= threshold (--threshold)
    # How the allocator is run; none of these changes a result (left out of the JSON):
    in_process: bool = False            # call it in this process (no isolation; for debugging)
    memory_limit: int | str | None = DEFAULT_MEMORY_LIMIT   # per worker process ("4G", bytes; 0/None = none)
    scheduler: Any = None               # Dask scheduler address "tcp://HOST:PORT" (or a distributed.Client)
    # A service target (fairaudit.service): the query budget shapes results (in the JSON when set);
    # where its answers are recorded, or the recording they are replayed from, do not
    max_queries: int | None = None      # at most this many HTTP requests in the whole audit (--max-queries)
    record: str | None = None           # the recording's path (default beside the JSON)
    from_recording: str | None = None   # replay offline from this recording (--from-recording)

    def to_json(self, checks: list[str]) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in _RUN_SETTINGS
             and not (k in ("encoding", "threshold", "max_queries", "config_file") and v is None)
             and not (k == "allow_skip" and not v)}
        d["checks"] = checks
        return d


class AuditContext:
    """What a check sees: the target (allocator or log), the data, the sampler, the
    configuration, and seeded generators for its own randomness."""

    def __init__(self, config: AuditConfig, target: Target | None = None, log: DecisionLog | None = None,
                 population: UserPopulation | None = None, sampler: Sampler | None = None):
        self.config = config
        self.target = target
        self.log = log
        self.population = population
        self.sampler = sampler
        self.other_samplers: list[Sampler] = []

    def sampler_for(self, spec: str) -> Sampler:
        """A sampler for another allocator (``spec``: a file or ``module:function``) that a
        check compares with the target (e.g. more decision-makers): same seed, jobs,
        timeout, budget deadline and progress as the audit's own; its warnings are the
        audit's. Load errors raise :class:`~fairaudit.errors.TargetError`."""
        s = self.sampler.for_target(spec) if self.sampler is not None else open_sampler(spec, self.config)
        self.other_samplers.append(s)
        return s

    # -- conveniences --------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.log.kind if self.log is not None else self.target.kind

    @property
    def source(self) -> str:
        return "log" if self.log is not None else "allocator"

    @property
    def confidence(self) -> float:
        return self.config.confidence

    @property
    def alpha(self) -> float:
        return 1.0 - self.config.confidence

    def draw_record(self, label: str, inst: Instance, stream: str, draws, *, start: int = 0,
                    members=None, observed=None) -> dict:
        """Record what was drawn for a counterexample (see :mod:`fairaudit.draw_records`): put
        the records under ``evidence["redraw"] = {"records": [...]}`` with
        :meth:`replay_evidence`, and ``fairaudit replay RESULT.json CHECK`` re-draws them."""
        return draw_record(self.kind, label, inst, stream, draws, start=start, members=members,
                           observed=observed)

    @staticmethod
    def replay_evidence(check_id: str, records: list[dict], what: str) -> dict:
        """Evidence entries for a counterexample's draw records: the records, what they
        show, and the one command that replays them."""
        return {"redraw": {"records": records, "what": what},
                "replay_command": f"fairaudit replay RESULT.json {check_id}"}

    def phase(self, words: str, k: int, n: int, shares=None) -> None:
        """Tell the progress display that the check's ``k``-th (from 1) of ``n`` parts
        begins, in words ("bisection", 2, 4 → "bisection (part 2 of 4)"); the bar gives each
        part an equal share, or ``shares`` (the parts' relative sizes, e.g. expected draws).
        Display only: no effect on a result."""
        _notify(self.config.progress, "phase", words, k, n, shares)

    def step(self, words: str, i: int, n: int) -> None:
        """Tell the progress display that the ``i``-th (from 1) of ``n`` equal steps of the
        current part (or of the check) begins, in words ("pool", 3, 12 → "pool 3 of 12").
        Display only: no effect on a result."""
        _notify(self.config.progress, "step", words, i, n)

    def max_draws(self, default: int) -> int:
        """Draws per input: ``--draws`` when given, else the check's default."""
        return int(self.config.draws) if self.config.draws else int(default)

    def rng(self, key: str) -> np.random.Generator:
        """A generator for a check's own randomness (instances, bootstrap), seeded from
        the audit seed and ``key``; independent of the allocator's draw streams."""
        return draw_generator(self.config.seed, "check-internal/" + key, 0)

    def selection_k(self, n: int) -> int:
        """k for a selection instance of size n: the decorator's, else ``config.k``, else
        ``ceil(n/10)`` (Kearns, Roth and Wu's k = 10% of n). A declared k larger than ``n`` cannot be
        honoured: :class:`~fairaudit.errors.InputsTooSmall` (the engine skips the check)."""
        if self.target is not None and self.target.k is not None:
            k = int(self.target.k)
            if k > n:
                raise InputsTooSmall(
                    f"the allocator selects k={k}, but this check's {'data' if self.population is not None else 'built-in inputs'}"
                    f" have n={n} people" + ("" if self.population is not None else
                                             f"; give --data with at least {k} rows to audit it"))
            return k
        if self.config.k:
            return int(self.config.k)
        return max(1, math.ceil(n / 10))

    def population_instance(self) -> Instance | None:
        """The instance the ``--data`` file describes (None without data)."""
        pop = self.population
        if pop is None:
            return None
        label = pop.path or "data"
        if self.kind == "selection":
            if pop.scores is None:
                return None
            return Instance(label, scores=pop.scores, k=self.selection_k(pop.n), groups=pop.groups,
                            features=pop.features, labels=pop.labels)
        if self.kind == "ranking":
            return Instance(label, scores=pop.scores, predictions=pop.predictions, groups=pop.groups,
                            features=pop.features, labels=pop.labels)
        if self.kind == "decision":        # per-person rules: every row, any number of yeses
            feats = pop.features
            if pop.score_col is not None:  # the score is one more column a rule (a model) may read by name
                feats = pop.frame[pop.feature_cols + [pop.score_col]].reset_index(drop=True)
            return Instance(label, scores=pop.scores, groups=pop.groups, features=feats, labels=pop.labels)
        return None


def make_sampler(target: Target, config: AuditConfig) -> Sampler:
    """The sampler of ``target`` under ``config``: its calls in isolated worker processes
    unless ``config.in_process``."""
    return Sampler(target, config.seed, isolate=not config.in_process, **_run_options(config))


def resolve_target(spec, *, columns=None, groups=None, encoding=None, threshold=None):
    """A target spec (path, module:function, callable, fitted estimator, Target, DecisionLog)
    → (Target|None, DecisionLog|None)."""
    from .run.models import estimator_target, is_estimator
    if isinstance(spec, Target):
        return spec, None
    if isinstance(spec, DecisionLog):
        return None, spec
    if is_log_frame(spec):
        return None, log_from_any(spec, columns=columns, groups=groups)
    if is_estimator(spec):
        return estimator_target(spec, path=type(spec).__name__, threshold=threshold), None
    if callable(spec):
        return target_from_callable(spec, path=callable_spec(spec)), None
    spec = str(spec)
    if is_log_path(spec):
        return None, load_log(spec, columns=columns, groups=groups, encoding=encoding)
    return load_target(with_threshold(spec, threshold)), None


def callable_spec(func) -> str:
    """How a callable audited from Python is named in results and replay commands:
    ``module:qualname`` when ``load_target`` could import it that way (a module-level
    function of an importable module), else its bare name (replay then needs a file)."""
    mod, qual = getattr(func, "__module__", None), getattr(func, "__qualname__", "")
    if mod and qual and mod != "__main__" and "<" not in qual and "." not in qual:
        return f"{mod}:{qual}"
    return getattr(func, "__name__", "callable")


def error_result(check: type[Check] | Check, exc: BaseException, seed: int) -> CheckResult:
    """The ``error`` result of a check that could not run, with replay evidence."""
    evidence: dict[str, Any] = {}
    if isinstance(exc, BudgetExhausted):
        # --budget (seconds) and --max-queries are limits, not failures: the check could not decide within them
        return CheckResult(id=check.id, title=check.title, verdict="inconclusive", budget_exhausted=True,
                           message=f"Not decided within the budget: {exception_text(exc, JSON_CHARS)}.",
                           definition=check.definition)
    if isinstance(exc, AllocatorError):
        msg = f"{exception_text(exc, JSON_CHARS)} — fix the allocator for this input; the input and draw are saved for replay."
        evidence["replay"] = {"input": exc.inputs, "draw": exc.draw, "stream": exc.stream, "seed": seed,
                              "generator_index": exc.generator_index, "size": exc.size,
                              "generator": f"fairaudit.run.sampler.draw_generator({seed}, {exc.stream!r}, "
                                           f"{exc.generator_index})"}
        evidence["replay_command"] = f"fairaudit replay RESULT.json {check.id}"
        from .frames import user_frames
        frames = exc.frames or user_frames(exc.__cause__)
        if frames:         # where in the user's code it raised (issue 32)
            evidence["allocator_traceback"] = frames
    elif isinstance(exc, FairauditError):
        msg = exception_text(exc, JSON_CHARS)
    else:
        msg = f"the check itself failed with {type(exc).__name__}: {exception_text(exc, JSON_CHARS)} (a fairaudit bug; please report it)"
        evidence["traceback"] = traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:]
    return CheckResult(id=check.id, title=check.title, verdict="error", message=msg, evidence=evidence,
                       definition=check.definition)


def select_checks(ids: list[str] | None, registry: dict[str, type[Check]]) -> list[type[Check]]:
    """The checks to run: ``ids`` (validated; a ``UsageError`` naming the closest id
    for a typo), else every default check."""
    if not ids:
        return [c for _, c in sorted(registry.items()) if c.default]
    unknown = [i for i in ids if i not in registry]
    if unknown:
        raise unknown_checks(unknown, registry)
    return [registry[i] for i in ids]


def audit(target=None, checks: list[str] | None = None, data=None, config: AuditConfig | None = None,
          command: str = "", *, log=None, **config_kw) -> AuditResult:
    """Run ``checks`` (default: all applicable) on ``target`` and return the result.

    ``target``: an allocator file path, ``module:function``, a callable, a fitted
    scikit-learn-style model, a :class:`Target`, a decisions-log path, a dataframe of
    decisions or a :class:`DecisionLog`. ``data``: a population file path, a pandas
    (or Polars, PyArrow) DataFrame, or :class:`~fairaudit.data.UserPopulation`. Keyword arguments set
    :class:`AuditConfig` fields. ``log``: a decisions log given as a dataframe — pandas,
    Polars or PyArrow table, DuckDB relation, Dask or PySpark DataFrame (or a path /
    :class:`DecisionLog`) — in place of ``target``; its aggregations run in DuckDB over
    the frame's own memory, or on Dask / Spark where the rows are
    (:mod:`fairaudit.logs.lazy`).

    Check ids and parameters are validated first, before the target is loaded or
    anything drawn: an unknown check id or parameter name, or a value its
    :class:`~fairaudit.params.Param` does not accept, raises
    :class:`~fairaudit.errors.ParamError` (a :class:`~fairaudit.errors.UsageError`).
    A check named in ``checks`` that cannot run on this target and data raises
    :class:`~fairaudit.preflight.NotApplicableError` (a ``UsageError``, one line per check
    with the option that supplies what is missing), also before anything is drawn, unless
    ``allow_skip=True`` (then it is ``skipped``); so does an audit in which no check can run."""
    config = config or AuditConfig(**config_kw)
    if (target is None) == (log is None):
        raise TypeError("audit() takes a target (allocator or log) or log=, exactly one")
    target = log if target is None else target
    from .run.containment import AuditScope
    # every process the allocator started ends with the audit (fairaudit.run.containment)
    with AuditScope(), scratch_hypothesis_home():     # nothing written to the current folder but the outputs
        return _audit(target, checks, data, config, command)


def _run_options(config: AuditConfig) -> dict:
    """How the sampler runs the allocator (none of it changes a result)."""
    try:
        memory_limit = parse_memory(config.memory_limit)
    except ValueError as e:
        raise TargetError(str(e)) from None
    return dict(jobs=config.jobs, timeout=config.timeout, budget_seconds=config.budget, progress=config.progress,
                memory_limit=memory_limit, scheduler=None if config.in_process else config.scheduler)


def open_sampler(spec: str, config: AuditConfig) -> Sampler:
    """A sampler for the allocator file or ``module:function`` ``spec``, loaded only in worker
    processes unless ``config.in_process`` (then loaded here)."""
    if config.in_process:
        return make_sampler(load_target(spec), config)
    return Sampler.open(str(spec), config.seed, **_run_options(config))


def load_data(data, *, columns=None, groups=None, encoding=None) -> UserPopulation:
    """The population of ``data=``: a file path, or a dataframe (pandas, or anything with
    ``to_pandas()`` — Polars, PyArrow) read with the same column roles and checks as a
    file. A frame's ``path`` in the result is empty and its ``sha256`` is of its contents
    (column names, dtypes and values), so the same frame gives the same result."""
    if isinstance(data, (str, Path)):
        return load_population(data, columns=columns, groups=groups, encoding=encoding)
    import pandas as pd
    frame = data
    if not isinstance(frame, pd.DataFrame) and callable(getattr(frame, "to_pandas", None)):
        frame = frame.to_pandas()
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"data= takes a file path or a DataFrame, not {type(data).__name__}")
    if len(frame) == 0:
        raise DataError("the data frame has no rows")
    return population_from_frame(frame, columns=columns, groups=groups, path="", sha256=frame_sha256(frame))


def frame_sha256(frame) -> str:
    """SHA-256 of a DataFrame's column names, dtypes and values (row order counts; the
    index does not)."""
    import hashlib

    import pandas as pd
    h = hashlib.sha256()
    h.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(frame.reset_index(drop=True), index=False).to_numpy().tobytes())
    return h.hexdigest()


def _audit(target, checks, data, config: AuditConfig, command: str) -> AuditResult:
    registry = discover()
    selected = select_checks(checks, registry)
    # parsed values replace what was written (``"10"`` → 10), so the JSON config and
    # every check see the same typed values; the caller's config is not modified
    config = replace(config, params=resolve_params(config.params, registry))
    run = _run_options(config)        # a bad --memory-limit is refused before anything is loaded
    sampler = None
    if is_service_spec(target):
        # a deployed service: drawn over HTTP (or from a recording) in place of worker processes
        sampler = open_service_sampler(target, config, command)
        tgt, log = sampler.target, None
        command = getattr(sampler.source, "recorded_command", None) or command
    elif config.max_queries is not None or config.record or config.from_recording:
        raise UsageError("--max-queries, --record and --from-recording apply to a service target (a .toml file)")
    elif isinstance(target, (str, Path)) and not config.in_process and not is_log_path(str(target)):
        # Loaded only in worker processes: the audit never runs the allocator's code.
        sampler = Sampler.open(with_threshold(str(target), config.threshold), config.seed, **run)
        tgt, log = sampler.target, None
    else:
        tgt, log = resolve_target(target, columns=config.columns, groups=config.groups, encoding=config.encoding,
                                  threshold=config.threshold)
        if tgt is not None:
            sampler = make_sampler(tgt, config)
    try:
        return _run_checks(config, selected, data, tgt, log, sampler, command, requested=bool(checks))
    finally:
        if sampler is not None:
            sampler.close()


def _run_checks(config, selected, data, tgt, log, sampler, command, requested: bool = False) -> AuditResult:
    population = None
    if data is not None:
        population = data if isinstance(data, UserPopulation) else load_data(
            data, columns=None if log is not None else config.columns, groups=config.groups,
            encoding=config.encoding)
    if tgt is not None and tgt.columns and population is not None:
        have = population.feature_cols + population.group_cols + [c for c in [population.score_col] if c]
        missing = [c for c in tgt.columns if c not in have]
        if missing:      # one line, before any draw (exit 2)
            from .run.models import missing_columns_message
            raise TargetError(missing_columns_message(tgt.path, tgt.name, missing, have))
    if tgt is not None and getattr(tgt, "n_inputs", None) is not None and population is not None:
        # a model fitted without column names reads the data's features in file order (and the score)
        cols = population.feature_cols + ([population.score_col] if population.score_col else [])
        if len(cols) != tgt.n_inputs:      # before any draw (exit 2)
            raise TargetError(f"{tgt.path}: the model was fitted without column names (no feature_names_in_) on "
                              f"{tgt.n_inputs} features, and {population.path or 'the data'} has {len(cols)} "
                              f"feature columns ({', '.join(map(str, cols)) or 'none'}); refit it on a pandas "
                              f"DataFrame (model.fit(df[columns], y)) so its columns are matched by name")
    ctx = AuditContext(config, target=tgt, log=log, population=population, sampler=sampler)
    # what was asked must be audited: a requested check that cannot run stops here, before any draw
    from .preflight import preflight
    ctx.skip_fixes = {cid: fix for cid, (_, fix) in
                      preflight(ctx, selected, requested=requested, allow_skip=config.allow_skip).items()}
    try:
        return _run_each(ctx, config, selected, tgt, log, sampler, population, command)
    finally:
        for s in ctx.other_samplers:
            s.close()


def _run_each(ctx, config, selected, tgt, log, sampler, population, command) -> AuditResult:
    results: list[CheckResult] = []
    for index, cls in enumerate(selected, 1):
        _notify(config.progress, "check_started", index, len(selected), cls.id)
        results.append(_run_one(cls, ctx, config, sampler))
        _notify(config.progress, "check_finished", results[-1])
    target_info = tgt.describe() if tgt is not None else log.describe()
    notes = []
    if tgt is not None and getattr(tgt, "kind_guessed", False):
        deco = {"selection": "@fa.selector", "ranking": "@fa.ranker", "assignment": "@fa.assigner",
                "decision": "@fa.decider"}[tgt.kind]
        notes.append(f"The kind of '{tgt.name}' ({tgt.kind}) was guessed from its name; if it does not make "
                     f"{tgt.kind} decisions, mark it (e.g. {deco}) so the right checks run.")
    return AuditResult(target=target_info, config=config.to_json([c.id for c in selected]), checks=results,
                       warnings=notes + [w for s in ([sampler] if sampler else []) + ctx.other_samplers for w in s.warnings],
                       data=population.describe() if population is not None else None,
                       command=command, tool_version=__version__)


def _notify(progress, hook: str, *args) -> None:
    """Tell a progress display (``config.progress``, e.g. :class:`fairaudit.terminal.AuditProgress`)
    that a check started or finished, when it has that hook; display only."""
    fn = getattr(progress, hook, None)
    if fn is not None:
        fn(*args)


def _run_one(cls, ctx: AuditContext, config: AuditConfig, sampler) -> CheckResult:
    """Run (or skip) one check: its result, with the parameters used."""
    chk = cls()
    reason = None
    if ctx.kind not in cls.kinds:
        reason = (f"applies to {kinds_phrase(cls.kinds)}; this target makes "
                  + ("per-person yes/no decisions (kind decision)" if ctx.kind == "decision" else f"{ctx.kind} decisions"))
    elif ctx.source not in cls.sources:
        reason = f"cannot be computed from a {ctx.source}" + (" (it needs an allocator to call)" if ctx.source == "log" else "")
    else:
        try:
            reason = chk.skip_reason(ctx)
        except Exception as e:  # a crash in skip_reason is still this check's error
            return error_result(cls, e, config.seed)
    if reason:
        from .preflight import with_fix
        return CheckResult(id=cls.id, title=cls.title, verdict="skipped",
                           message=with_fix(reason, getattr(ctx, "skip_fixes", {}).get(cls.id)),
                           definition=cls.definition)
    params = chk.resolved_params(config.params.get(cls.id))   # validated above: cannot raise
    samplers = ([sampler] if sampler else []) + ctx.other_samplers
    for s in samplers:
        s.budget_cut = False
    chk.on_log = ctx.log is not None
    try:
        res = chk.run(ctx, **params)
    except InputsTooSmall as e:      # what the allocator declares does not fit the check's inputs: not a bug
        res = CheckResult(id=cls.id, title=cls.title, verdict="skipped", message=f"Skipped: {e}.",
                          definition=cls.definition)
    except Exception as e:  # noqa: BLE001 - one check's failure must not stop the others
        if not isinstance(e, (AllocatorError, BudgetExhausted)) and any(s.budget_cut for s in samplers):
            # the budget cut sampling before the check had draws to judge (a check that expects
            # them may then fail): a budget is a limit, not a failure — inconclusive, never error
            e = BudgetExhausted(f"the {'query' if getattr(sampler, 'source', None) is not None and config.max_queries else 'time'} "
                                f"budget ran out before this check had the draws to judge")
        res = error_result(cls, e, config.seed)
    if res.verdict == "error" and sampler is not None:
        from .preflight import setup_problem
        problem = setup_problem(res.message, ctx)
        if problem:           # not a finding about the allocator: how the audit was set up (exit 2)
            raise TargetError(problem)
    cut = res.budget_exhausted or any(s.budget_cut for s in ([sampler] if sampler else []) + ctx.other_samplers)
    output = sampler.take_output() if sampler is not None else None
    # a service's cost: the HTTP requests this check made, the retries among them, the draws answered
    queries = sampler.source.take_usage() if getattr(sampler, "source", None) is not None else None
    # what the allocator printed while this check drew (first lines; the rest counted)
    evidence = {**(res.evidence or {}), "allocator_output": output} if output else res.evidence
    # and the Python warnings it raised and NaN outputs it returned (of every sampler the check used)
    notes = AllocatorNotes()
    for s in ([sampler] if sampler else []) + ctx.other_samplers:
        notes.merge(s.take_notes())
    return replace(res, params=params, budget_exhausted=cut, evidence=evidence, allocator_warnings=notes.to_dict(),
                   queries=queries)
