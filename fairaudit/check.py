"""The check contract and the registry.

A check is a subclass of :class:`Check` in a module of ``fairaudit.checks`` (one
module per property) or in a third-party package registered under the entry-point
group ``fairaudit.checks``::

    [project.entry-points."fairaudit.checks"]
    my_check = "my_pkg.checks:MyCheck"

It declares ``id``, ``title``, ``summary`` (one line for ``fairaudit checks``),
``definition`` (one paragraph for the report), the decision ``kinds`` it applies to,
whether it can audit an allocator and/or a log (``sources``), its ``params`` with
defaults, and its words for readers (``statistic_labels``, ``headlines``,
``column_labels``, ``table_titles``, ``data_needs``). ``run(ctx, **params)`` returns a :class:`~fairaudit.result.CheckResult`; it
asks ``ctx.sampler`` for draws, never calls the allocator and never renders anything.
The verdict rule is :func:`fairaudit.result.decide`; checks do not re-implement it.

Typed parameters. Each entry of ``params`` is a :class:`Param` (defined in
:mod:`fairaudit.params`, importable from here) that declares how the parameter is
parsed and what it accepts, so the engine can refuse a bad value before any draw::

    params = {
        "bins": Param(10, "claim bins", type=int, min=2),                       # an integer ≥ 2
        "tau": Param(0.05, "tolerated difference", type=float, min=0, max=1),   # a number in [0, 1]
        "rule": Param("proportional", "requirement rule", choices=RULES),      # one of …
        "stop_early": Param(True, "stop once decided"),                        # bool ("false", "no", 0 …)
        "scenarios": Param("iid", "scenarios", parse=csv_of(SCENARIOS)),     # validated text
    }

``type`` defaults to the default's type (``int``, ``float``, ``str``, ``bool``, ``list``;
``object`` accepts anything); ``min``/``max`` are inclusive unless ``min_open``/``max_open``;
``parse(value)`` returns the value the check receives and raises ``ValueError`` saying
what it accepts (shared parsers: :func:`fairaudit.params.csv_of`, ``numbers``,
``claim_instances``). ``run`` receives parsed values. Unknown check ids or parameter
names and unacceptable values are a :class:`~fairaudit.errors.ParamError` (exit 2), with
a "did you mean" suggestion for typos.
"""
from __future__ import annotations

import importlib
import pkgutil
from importlib import metadata
from typing import ClassVar

from .params import Param, defaults_with
from .result import CheckResult, Statistic, decide, more_draws_hint

__all__ = ["Check", "Param", "discover"]


class Check:
    id: ClassVar[str] = ""
    title: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    definition: ClassVar[str] = ""
    kinds: ClassVar[tuple[str, ...]] = ("selection", "ranking", "assignment")
    sources: ClassVar[tuple[str, ...]] = ("allocator", "log")
    params: ClassVar[dict[str, Param]] = {}
    #: run by default when no --checks are given (extras such as ``determinism`` may opt out)
    default: ClassVar[bool] = True
    #: set by the engine before ``run``: whether this run reads a decisions log (no more draws to ask for)
    on_log: bool = False

    # -- words for readers ----------------------------------------------------
    # The report and the terminal read these from the registry (:mod:`fairaudit.labels`):
    # a check's ids stay in the JSON, its readers see these words. Adding a check is
    # adding its folder; no dictionary elsewhere needs an entry.
    #: statistic id → a reader's name ("largest reversal")
    statistic_labels: ClassVar[dict[str, str]] = {}
    #: statistic id → (the headline's subject with ``{est}``, the tolerance line with ``{tol}``)
    headlines: ClassVar[dict[str, tuple[str, str]]] = {}
    #: table column id → its header, for the columns only this check's tables use
    #: (shared ones are in :data:`fairaudit.labels.COLUMNS`)
    column_labels: ClassVar[dict[str, str]] = {}
    #: table id → the title a reader sees (a key ``"bins_{n}"`` titles ``bins_0``, ``bins_1`` … with
    #: ``{n}`` the input's number counted from 1)
    table_titles: ClassVar[dict[str, str]] = {}
    #: (what the check needs beyond the target, an example command) for ``fairaudit checks CHECK``;
    #: None: built-in inputs are enough
    data_needs: ClassVar[tuple[str, str] | None] = None

    def skip_reason(self, ctx) -> str | None:
        """Why this check does not apply to ``ctx`` (None when it does). The engine has
        already checked ``kinds`` and ``sources``."""
        return None

    def run(self, ctx, **params) -> CheckResult:  # pragma: no cover - interface
        raise NotImplementedError

    # -- helpers every check uses -------------------------------------------
    def resolved_params(self, overrides: dict | None) -> dict:
        """Every parameter: its default, or the override parsed by its :class:`Param`
        (raises :class:`~fairaudit.errors.ParamError` on an unknown name or a bad value)."""
        return defaults_with(type(self), overrides)

    def result(self, verdict: str, message: str, **kw) -> CheckResult:
        return CheckResult(id=self.id, title=self.title, verdict=verdict, message=message,
                           definition=self.definition, **kw)

    def judged(self, statistic: Statistic, messages: dict[str, str], draws: int, *, from_log: bool | None = None,
               **kw) -> CheckResult:
        """A result whose verdict is decided from ``statistic`` by the SPEC §0 rule.
        ``messages`` maps verdict → sentence; for ``inconclusive`` the number of draws
        (or, for a log, logged records) that might decide is appended. ``from_log``
        defaults to whether the engine runs this check on a log (``on_log``)."""
        from_log = self.on_log if from_log is None else from_log
        verdict = decide(statistic.ci, statistic.tolerance, statistic.violation)
        msg = messages.get(verdict, "")
        if verdict == "inconclusive":
            hint = more_draws_hint(statistic.ci, statistic.estimate, statistic.tolerance, draws)
            if hint and hint > draws:
                msg += (f" Roughly {hint:,} logged records might decide it." if from_log else
                        f" Roughly {hint:,} draws might decide it (rerun with --draws {hint}).")
        return self.result(verdict, msg, statistic=statistic, draws=draws, **kw)


def _is_check_class(obj) -> bool:
    return isinstance(obj, type) and issubclass(obj, Check) and obj is not Check and bool(getattr(obj, "id", ""))


def discover() -> dict[str, type[Check]]:
    """All checks: the modules of ``fairaudit.checks`` and the ``fairaudit.checks``
    entry-point group, by id. A broken third-party entry point is skipped, not fatal."""
    from . import checks as pkg
    found: dict[str, type[Check]] = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        for obj in vars(mod).values():
            if _is_check_class(obj) and obj.__module__ == mod.__name__:
                found[obj.id] = obj
    try:
        eps = metadata.entry_points(group="fairaudit.checks")
    except TypeError:  # pragma: no cover - very old importlib.metadata
        eps = metadata.entry_points().get("fairaudit.checks", [])
    for ep in eps:
        try:
            obj = ep.load()
        except Exception:
            continue
        if _is_check_class(obj):
            found.setdefault(obj.id, obj)
    return found
