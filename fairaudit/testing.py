"""fairaudit in your own test suite (the pytest plugin's public half).

::

    from fairaudit.testing import assert_fair, parametrize_with_checks

    def test_my_lottery_is_broome_fair():
        assert_fair(my_allocator, checks=["broome", "anonymity"], data="people.csv")

    @parametrize_with_checks([my_allocator], checks=["broome", "selection_rates"], data="people.csv")
    def test_fairness(allocator, check):          # one test per (allocator, check)
        check(allocator)

:func:`assert_fair` runs an audit (:func:`fairaudit.audit`) and raises ``AssertionError``
when a check fails or errors (or is inconclusive, with ``fail_on="inconclusive"``); the
message carries each offending check's verdict, message, statistic with its estimate,
interval, tolerance and method, and the counterexample with its replay command.
:func:`parametrize_with_checks` follows scikit-learn's decorator of the same name: it
expands into one pytest test per allocator and check, with readable ids
(``allocate-broome``); a check that does not apply to the allocator is reported as a
pytest *skip* with its reason. The plugin (``fairaudit.pytest_plugin``, loaded through
the ``pytest11`` entry point) adds the ``fairaudit`` fixture and command-line options
``--fairaudit-seed``, ``--fairaudit-draws``, ``--fairaudit-confidence``.

Defaults are the CLI's: seed 0, confidence 0.95, each check's default budget. Runs are
deterministic: the same test gives the same verdict every time.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .text import fmt_number

__all__ = ["assert_fair", "audit_allocator", "parametrize_with_checks", "format_failure", "FairnessAssertionError"]


#: settings from the pytest plugin's command-line options (``--fairaudit-seed`` etc.) for the
#: current pytest session; set and cleared by :mod:`fairaudit.pytest_plugin`. They are the
#: lowest-priority defaults of the checks made by :func:`parametrize_with_checks`.
SESSION_DEFAULTS: dict = {}

#: ``{"dir": DIR}`` while a pytest session runs with ``--fairaudit-json DIR``: every audit
#: made through this module (assert_fair, parametrize_with_checks, the fixture) is saved there
SESSION_JSON: dict = {}


def _save_json(result) -> None:
    """Write ``result`` into the session's ``--fairaudit-json`` folder, named after the
    running test (``PYTEST_CURRENT_TEST``) and numbered within it."""
    folder = SESSION_JSON.get("dir")
    if not folder:
        return
    test = os.environ.get("PYTEST_CURRENT_TEST", "audit").rsplit(" (", 1)[0]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", test).strip("_") or "audit"
    counts = SESSION_JSON.setdefault("counts", {})
    counts[stem] = counts.get(stem, 0) + 1
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}-{counts[stem]}.json").write_text(result.to_json(), encoding="utf-8")


def _caller_dir() -> Path | None:
    """The folder of the innermost calling file outside fairaudit (the test file)."""
    f = sys._getframe(1)
    while f is not None:
        name = f.f_globals.get("__name__", "")
        if name != "fairaudit" and not name.startswith("fairaudit."):
            file = f.f_globals.get("__file__")
            return Path(file).resolve().parent if file else None
        f = f.f_back
    return None


def _relative_to(data, base: Path | None):
    """A relative ``data`` path is read relative to the test file's folder (``base``), as
    a test author expects; a path that exists only relative to the current folder still
    works as before."""
    if base is None or not isinstance(data, (str, os.PathLike)):
        return data
    p = Path(data)
    if p.is_absolute():
        return data
    here = base / p
    return str(here) if here.exists() or not p.exists() else data


class FairnessAssertionError(AssertionError):
    """Raised by :func:`assert_fair`; ``.result`` is the :class:`~fairaudit.result.AuditResult`."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


def _population(data, config):
    """data: None, a path, a pandas DataFrame or a UserPopulation."""
    if data is None:
        return None
    import pandas as pd
    from .data import UserPopulation, population_from_frame
    if isinstance(data, UserPopulation):
        return data
    if isinstance(data, pd.DataFrame):
        return population_from_frame(data, columns=config.columns, groups=config.groups, path="DataFrame")
    return str(data)


def audit_allocator(allocator, checks: Sequence[str] | None = None, data=None, **config):
    """Run an audit and return the :class:`~fairaudit.result.AuditResult` (never raises on
    a verdict). ``allocator``: a callable (optionally decorated with ``@fa.selector`` etc.),
    an allocator file path, ``module:function``, or a decisions log path. ``config``:
    :class:`~fairaudit.engine.AuditConfig` fields (``seed``, ``confidence``, ``draws``,
    ``k``, ``groups``, ``params``, ...)."""
    from .engine import AuditConfig, audit
    # a check that does not apply is this module's pytest skip (or, with require=True, a
    # failure), so the audit reports it rather than refusing it (issue 32's allow_skip)
    config.setdefault("allow_skip", True)
    cfg = AuditConfig(**config)
    data = _relative_to(data, _caller_dir())
    result = audit(allocator, checks=list(checks) if checks else None, data=_population(data, cfg), config=cfg)
    _save_json(result)
    return result


def format_failure(check: dict, confidence: float) -> str:
    """The failure text of one check result (a dict as in the JSON)."""
    lines = [f"fairaudit check '{check['id']}' ({check.get('title', '')}): verdict {check['verdict'].upper()}",
             f"  {check.get('message', '')}"]
    s = check.get("statistic")
    if s:
        ci = s.get("ci") or [None, None]
        tol = s.get("tolerance")
        side = "above" if s.get("violation", "above") == "above" else "below"
        lines.append(f"  statistic {s['name']} = {fmt_number(s.get('estimate'))}, interval [{fmt_number(ci[0])}, {fmt_number(ci[1])}] "
                     f"at confidence {confidence:g}" + (f", tolerance {fmt_number(tol)} (a value {side} it is a violation)"
                                                         if tol is not None else "")
                     + (f"; method: {s['method']}" if s.get("method") else ""))
    lines.append(f"  draws: {check.get('draws', 0):,}")
    ev = check.get("evidence") or {}
    if ev.get("counterexample") is not None:
        txt = json.dumps(ev["counterexample"], default=str)
        lines.append("  counterexample: " + (txt if len(txt) <= 2000 else txt[:2000] + " …"))
    if ev.get("replay_command"):
        lines.append(f"  replay: {ev['replay_command']}")
    if ev.get("replay"):
        r = ev["replay"]
        lines.append(f"  input that caused the error: draw {r.get('draw')} of stream {r.get('stream')!r}; "
                     f"generator {r.get('generator')}")
    return "\n".join(lines)


def _bad_verdicts(fail_on: str) -> set[str]:
    if fail_on not in ("fail", "inconclusive"):
        raise ValueError(f"fail_on must be 'fail' or 'inconclusive', not {fail_on!r}")
    return {"fail", "error"} | ({"inconclusive"} if fail_on == "inconclusive" else set())


def assert_fair(allocator, checks: Sequence[str] | None = None, data=None, *, fail_on: str = "fail",
                require: bool = False, **config):
    """Audit ``allocator`` with ``checks`` (default: all applicable) and raise
    :class:`FairnessAssertionError` (an ``AssertionError``) when any check fails or errors
    — or is inconclusive, with ``fail_on="inconclusive"``. With ``require=True`` a
    requested check that was skipped (not applicable, e.g. no group columns) also fails
    the assertion. Returns the :class:`~fairaudit.result.AuditResult` otherwise.

    The message has one block per offending check: verdict, the check's own sentence,
    the statistic's estimate, interval, tolerance and method, the number of draws, and
    the counterexample with its replay command when the check found one.

    Unknown check ids or parameter names in ``checks``/``params`` and parameter values a
    check does not accept raise :class:`fairaudit.errors.ParamError` (a ``ValueError``)
    before anything is drawn."""
    __tracebackhide__ = True          # a failure shows the test's line, not fairaudit's source
    bad = _bad_verdicts(fail_on)
    result = audit_allocator(allocator, checks=checks, data=data, fail_on=fail_on, require=require, **config)
    d = result.to_dict()
    conf = float(d["config"]["confidence"])
    offending = [c for c in d["checks"] if c["verdict"] in bad or (require and c["verdict"] == "skipped")]
    if offending:
        who = d["target"].get("path") or d["target"].get("function") or "allocator"
        head = (f"fairaudit: {len(offending)} of {len(d['checks'])} check(s) did not pass for {who} "
                f"(seed {d['config']['seed']}, confidence {conf:g}):")
        raise FairnessAssertionError("\n".join([head] + [format_failure(c, conf) for c in offending]), result)
    return result


# ---------------------------------------------------------------------------
# parametrize_with_checks (after sklearn.utils.estimator_checks.parametrize_with_checks)

class _CheckCallable:
    """``check(allocator)`` for one check id: runs :func:`assert_fair` on it; a skipped
    check becomes ``pytest.skip`` with the reason."""

    def __init__(self, check_id: str, data, fail_on: str, config: dict):
        self.check_id = check_id
        self.data = data
        self.fail_on = fail_on
        self.config = config
        self.__name__ = f"check_{check_id}"

    def __call__(self, allocator, **overrides):
        __tracebackhide__ = True
        cfg = {**SESSION_DEFAULTS, **self.config, **overrides}
        result = assert_fair(allocator, checks=[self.check_id], data=self.data, fail_on=self.fail_on, **cfg)
        c = result.checks[0]
        if c.verdict == "skipped":
            import pytest
            pytest.skip(f"fairaudit check '{self.check_id}' does not apply: {c.message}")
        return result

    def __repr__(self):
        return f"check_{self.check_id}"


def _name(allocator) -> str:
    if isinstance(allocator, str):
        from .run.spec import TargetSpec
        return TargetSpec.parse(allocator).name
    return getattr(allocator, "__name__", type(allocator).__name__)


def _check_ids(checks: Iterable[str] | None, allocators: Sequence) -> list[str]:
    """The requested ids (validated), or every default check for the allocators' kinds."""
    from .check import discover
    registry = discover()
    if checks:
        ids = list(checks)
        unknown = [i for i in ids if i not in registry]
        if unknown:
            from .params import unknown_checks
            raise unknown_checks(unknown, registry, what="fairaudit check(s)")
        return ids
    return [cid for cid, cls in sorted(registry.items()) if cls.default]


def _kind(allocator) -> str | None:
    """The allocator's kind (selection, ranking, assignment), or None when it cannot be
    loaded now (the error then shows in its tests)."""
    from .engine import resolve_target
    try:
        tgt, log = resolve_target(allocator)
    except Exception:
        return None
    return tgt.kind if tgt is not None else log.kind


def parametrize_with_checks(allocators: Sequence[Any], checks: Iterable[str] | None = None, data=None, *,
                            fail_on: str = "fail", **config) -> Callable:
    """A pytest ``parametrize`` decorator giving one test per (allocator, check), like
    scikit-learn's ``parametrize_with_checks``. The decorated test takes ``allocator``
    and ``check`` and calls ``check(allocator)``; ids read ``<allocator>-<check id>``.
    ``checks`` default to every default check. A check that cannot apply to an
    allocator's kind (a ranking check for a selector) makes no test; one that does not
    apply for another reason (no group columns in the data) is skipped with its reason.
    A relative ``data`` path is read relative to the test file. ``data`` and ``config``
    are passed to :func:`assert_fair`."""
    import pytest
    _bad_verdicts(fail_on)
    allocators = list(allocators)
    ids_checks = _check_ids(checks, allocators)
    data = _relative_to(data, _caller_dir())
    from .check import discover
    registry = discover()
    if config.get("params"):   # a typo in a parameter fails at collection, not in every test
        from .check import discover
        from .params import resolve_params
        resolve_params(config["params"], discover())
    params, ids = [], []
    for a in allocators:
        kind = _kind(a)
        for cid in ids_checks:
            if kind is not None and kind not in registry[cid].kinds:
                continue            # cannot apply to this allocator: no test
            params.append((a, _CheckCallable(cid, data, fail_on, dict(config))))
            ids.append(f"{_name(a)}-{cid}")
    return pytest.mark.parametrize("allocator, check", params, ids=ids)
