"""Result types and the verdict rule of SPEC §0 — which lives here, once.

A check returns a :class:`CheckResult`; the engine collects them in an
:class:`AuditResult`, which serialises to the JSON of DESIGN.md (schema_version 1).
Tables are pandas DataFrames inside and ``{"columns": [...], "rows": [[...]]}`` in JSON.
Figures are *data* (a small spec per figure); the report draws them.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

VERDICTS = ("pass", "fail", "inconclusive", "error", "skipped")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Statistic:
    """The headline number of a check: its estimate, interval, the tolerance it is judged
    against, and which side of the tolerance is a violation (``"above"``: larger is
    worse; ``"below"``: smaller is worse)."""

    name: str
    estimate: float
    ci: tuple[float, float]
    tolerance: float | None = None
    method: str = ""
    violation: str = "above"

    def to_dict(self) -> dict:
        return {"name": self.name, "estimate": jsonable(self.estimate),
                "ci": [jsonable(self.ci[0]), jsonable(self.ci[1])],
                "tolerance": jsonable(self.tolerance), "method": self.method, "violation": self.violation}


def decide(ci: tuple[float, float], tolerance: float, violation: str = "above") -> str:
    """SPEC §0 verdict from an interval valid at the check's confidence.

    ``violation="above"``: fail when the whole interval is above ``tolerance``, pass
    when the whole interval is at or below it, else inconclusive. ``"below"`` mirrors it.
    """
    lo, hi = float(ci[0]), float(ci[1])
    if violation == "above":
        if lo > tolerance:
            return "fail"
        if hi <= tolerance:
            return "pass"
        return "inconclusive"
    if violation == "below":
        if hi < tolerance:
            return "fail"
        if lo >= tolerance:
            return "pass"
        return "inconclusive"
    raise ValueError(f"violation must be 'above' or 'below', not {violation!r}")


def more_draws_hint(ci: tuple[float, float], estimate: float, tolerance: float, draws: int) -> int | None:
    """Rough total number of draws that would decide an inconclusive verdict, assuming the
    interval shrinks like 1/√draws and the estimate stays put. None when it cannot tell."""
    half = 0.5 * (ci[1] - ci[0])
    gap = abs(estimate - tolerance)
    if not draws or half <= 0 or gap <= 0 or not math.isfinite(half):
        return None
    return int(math.ceil(draws * (half / gap) ** 2 * 1.2))


@dataclass
class CheckResult:
    """What one check found. ``evidence`` holds the counterexample and other details;
    ``tables`` named DataFrames; ``figures`` specs for the report (see report.py)."""

    id: str
    title: str
    verdict: str
    message: str
    statistic: Statistic | None = None
    draws: int = 0
    evidence: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    figures: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    definition: str = ""
    method: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {self.verdict!r}")

    def to_dict(self) -> dict:
        d = {"id": self.id, "title": self.title, "verdict": self.verdict,
             "statistic": self.statistic.to_dict() if self.statistic else None,
             "draws": int(self.draws), "message": self.message, "params": jsonable(self.params),
             "definition": self.definition, "method": self.method,
             "evidence": jsonable(self.evidence),
             "tables": {k: table_to_json(v) for k, v in self.tables.items()},
             "figures": jsonable(self.figures)}
        return d


@dataclass
class AuditResult:
    target: dict
    config: dict
    checks: list[CheckResult]
    warnings: list[str] = field(default_factory=list)
    data: dict | None = None
    command: str = ""
    tool_version: str = ""
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))

    @property
    def exit_code(self) -> int:
        return exit_code_for([c.verdict for c in self.checks], self.config.get("fail_on", "fail"),
                             bool(self.config.get("require", False)))

    def required_but_skipped(self) -> list[CheckResult]:
        """Checks that were skipped although the audit was run with ``require``."""
        return [c for c in self.checks if c.verdict == "skipped"] if self.config.get("require") else []

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "tool_version": self.tool_version, "created": self.created,
                "target": jsonable(self.target), "data": jsonable(self.data), "config": jsonable(self.config),
                "command": self.command, "warnings": list(self.warnings),
                "checks": [c.to_dict() for c in self.checks]}

    def to_json(self) -> str:
        return dumps(self.to_dict())


def exit_code_for(verdicts, fail_on: str = "fail", require: bool = False) -> int:
    """DESIGN.md exit codes: 1 on any fail or error (or inconclusive under
    ``fail_on="inconclusive"``, or skipped under ``require``), else 0."""
    bad = ({"fail", "error"} | ({"inconclusive"} if fail_on == "inconclusive" else set())
           | ({"skipped"} if require else set()))
    return 1 if any(v in bad for v in verdicts) else 0


def dumps(d: dict) -> str:
    return json.dumps(d, indent=2, allow_nan=True, ensure_ascii=False)


def table_to_json(t) -> dict:
    """DataFrame (or list of dicts) → {"columns", "rows"} with plain JSON values."""
    import pandas as pd
    if isinstance(t, dict) and "columns" in t and "rows" in t:
        return jsonable(t)
    if not isinstance(t, pd.DataFrame):
        t = pd.DataFrame(t)
    return {"columns": [str(c) for c in t.columns], "rows": jsonable(t.to_numpy(dtype=object).tolist())}


def jsonable(x):
    """Plain JSON values: numpy scalars and arrays converted, floats rounded to 12
    significant digits (so equal computations give byte-identical JSON), NaN → null."""
    if x is None or isinstance(x, (str, bool)):
        return x
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if math.isnan(x):
            return None
        if math.isinf(x):
            return x
        return float(f"{x:.12g}")
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "to_dict") and callable(x.to_dict):
        return jsonable(x.to_dict())
    return str(x)
