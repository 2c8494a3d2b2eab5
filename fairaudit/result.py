"""Result types and the verdict rule of SPEC §0 — which lives here, once.

A check returns a :class:`CheckResult`; the engine collects them in an
:class:`AuditResult`, which serialises to the JSON of DESIGN.md (schema_version 2, the
JSON Schema ``fairaudit/schema/result-v2.schema.json``).
Tables are pandas DataFrames inside and ``{"columns": [...], "rows": [[...]]}`` in JSON.
Figures are *data* (a small spec per figure); the report draws them.

Strict JSON. The result never contains ``NaN`` or ``Infinity`` (which ``JSON.parse``
and most JSON tools reject). An undefined figure (NaN) is written as ``null``. An
unbounded one (±∞, e.g. an interval's open end or ε̂ of a pool where one chance is 0)
is written as ``null`` too, and the nearest enclosing JSON object says so in a member
``"unbounded"``: a map from the JSON Pointer (RFC 6901) of each such value, relative to
that object, to ``"+inf"`` or ``"-inf"``::

    "statistic": {"name": "epsilon_hat", "estimate": null, "ci": [2.3, null], …,
                  "unbounded": {"/estimate": "+inf", "/ci/1": "+inf"}}

(An object that already has a member named ``unbounded`` passes its markers to its
parent, prefixed with its own pointer.) :func:`dumps` writes this form and refuses
anything non-strict (``allow_nan=False``); :func:`loads` / :func:`load_result` read it
back with the infinities restored, which is what the report, ``fairaudit report`` and
``fairaudit compare`` work on. In memory (``to_dict()``) values stay floats, ±∞ included.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from .text import JSON_CHARS, cap

VERDICTS = ("pass", "fail", "inconclusive", "error", "skipped")
SCHEMA_VERSION = 2
#: schema versions :func:`loads` can read (1: before strict JSON; it may hold Infinity)
READABLE_SCHEMA_VERSIONS = (1, 2)
UNBOUNDED_KEY = "unbounded"


class ConfidenceInterval(NamedTuple):
    """Ends of an interval (SciPy's shape: ``low``, ``high``)."""

    low: float
    high: float


@dataclass(frozen=True)
class Statistic:
    """A number a check is judged on: its estimate, interval, the tolerance it is judged
    against, and which side of the tolerance is a violation (``"above"``: larger is
    worse; ``"below"``: smaller is worse). A *refutation-only* component can refute the
    property but never certify it (e.g. "no reversal found among the claims drawn"): its
    ``inconclusive`` counts as "no refutation" when components are combined."""

    name: str
    estimate: float
    ci: tuple[float, float]
    tolerance: float | None = None
    method: str = ""
    violation: str = "above"
    refutation_only: bool = False

    def confidence_interval(self) -> ConfidenceInterval:
        return ConfidenceInterval(float(self.ci[0]), float(self.ci[1]))

    def verdict(self) -> str:
        """This statistic's own verdict by the SPEC §0 rule (:func:`decide`)."""
        v = decide(self.ci, self.tolerance, self.violation)
        return "pass" if self.refutation_only and v == "inconclusive" else v

    def to_dict(self) -> dict:
        d = {"name": self.name, "estimate": jsonable(self.estimate),
             "ci": [jsonable(self.ci[0]), jsonable(self.ci[1])],
             "tolerance": jsonable(self.tolerance), "method": self.method, "violation": self.violation}
        if self.refutation_only:
            d["refutation_only"] = True
        return d


def combine(components: dict[str, "Statistic"]) -> str:
    """The one rule combining a check's component statistics into its verdict: a property
    that is a conjunction of its components fails when any component fails, passes when
    every component passes and at least one of them can certify (is not
    refutation-only), and is inconclusive otherwise."""
    verdicts = [c.verdict() for c in components.values()]
    if any(v == "fail" for v in verdicts):
        return "fail"
    if verdicts and all(v == "pass" for v in verdicts) and any(not c.refutation_only for c in components.values()):
        return "pass"
    return "inconclusive"


def decide(ci: tuple[float, float], tolerance: float, violation: str = "above") -> str:
    """SPEC §0 verdict from an interval valid at the check's confidence.

    ``violation="above"``: fail when the whole interval is above ``tolerance``, pass
    when the whole interval is at or below it, else inconclusive. ``"below"`` mirrors it.
    An undefined (NaN) bound or tolerance decides nothing: inconclusive. Infinite bounds
    compare as numbers (an interval [0.9, ∞) lies above 0.8).

    >>> decide((0.02, 0.04), 0.05)                      # a difference, at most 0.05 tolerated
    'pass'
    >>> decide((0.55, 0.72), 0.8, "below")              # an impact ratio, at least 0.8 wanted
    'fail'
    >>> decide((0.75, 0.90), 0.8, "below")
    'inconclusive'
    """
    lo, hi, tolerance = float(ci[0]), float(ci[1]), float(tolerance)
    if violation not in ("above", "below"):
        raise ValueError(f"violation must be 'above' or 'below', not {violation!r}")
    if math.isnan(lo) or math.isnan(hi) or math.isnan(tolerance):
        return "inconclusive"
    if violation == "above":
        if lo > tolerance:
            return "fail"
        if hi <= tolerance:
            return "pass"
        return "inconclusive"
    if hi < tolerance:
        return "fail"
    if lo >= tolerance:
        return "pass"
    return "inconclusive"


def more_draws_hint(ci: tuple[float, float], estimate: float, tolerance: float, draws: int) -> int | None:
    """Rough total number of draws that would decide an inconclusive verdict, assuming the
    interval shrinks like 1/√draws and the estimate stays put. None when it cannot tell
    (no draws, or an undefined or infinite bound, estimate or tolerance)."""
    try:
        lo, hi, est, tol = float(ci[0]), float(ci[1]), float(estimate), float(tolerance)
    except (TypeError, ValueError):
        return None
    if not draws or not all(math.isfinite(v) for v in (lo, hi, est, tol)):
        return None
    half = 0.5 * (hi - lo)
    gap = abs(est - tol)
    if half <= 0 or gap <= 0:
        return None
    hint = draws * (half / gap) ** 2 * 1.2
    return int(math.ceil(hint)) if math.isfinite(hint) else None


@dataclass(frozen=True)
class CheckResult:
    """What one check found (frozen, as SciPy's result objects). ``statistic`` is the
    headline; ``components`` the named sub-properties it was combined from (by
    :func:`combine`), ``evidence`` the counterexample and other details; ``tables``
    named DataFrames; ``figures`` specs for the report (see report.py).
    ``budget_exhausted`` says that ``--budget`` cut this check's sampling short.
    ``allocator_warnings``: the Python warnings the allocator raised while this check
    drew (distinct ones counted) and how many of its calls returned NaN
    (:mod:`fairaudit.run.allocator_notes`), or None."""

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
    components: dict[str, Statistic] = field(default_factory=dict)
    budget_exhausted: bool = False
    allocator_warnings: dict[str, Any] | None = None
    #: a service target: the HTTP requests this check made, how many were retries, the draws answered
    queries: dict[str, int] | None = None

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {self.verdict!r}")

    def to_dict(self) -> dict:
        """The JSON of this result. A message longer than ``text.JSON_CHARS`` is kept
        capped, with its full length in ``message_length``."""
        d = {"id": self.id, "title": self.title, "verdict": self.verdict,
             "statistic": self.statistic.to_dict() if self.statistic else None,
             "components": {k: {**v.to_dict(), "verdict": v.verdict()} for k, v in self.components.items()},
             "budget_exhausted": bool(self.budget_exhausted),
             "allocator_warnings": jsonable(self.allocator_warnings),
             "draws": int(self.draws), "message": cap(self.message, JSON_CHARS), "params": jsonable(self.params),
             "definition": self.definition, "method": self.method,
             "evidence": jsonable(self.evidence),
             "tables": {k: table_to_json(v) for k, v in self.tables.items()},
             "figures": jsonable(self.figures)}
        if len(self.message) > JSON_CHARS:
            d["message_length"] = len(self.message)
        if self.queries is not None:
            d["queries"] = jsonable(self.queries)
        return d

    # -- in a notebook ---------------------------------------------------------
    @property
    def passed(self) -> bool:
        """True when this check passed."""
        return self.verdict == "pass"

    @property
    def failed(self) -> bool:
        """True when this check failed or could not run (``error``)."""
        return self.verdict in ("fail", "error")

    def __bool__(self):
        raise ValueError(_AMBIGUOUS.format(what="a CheckResult", passed="this check passed",
                                           failed="it failed or errored"))

    def __repr__(self) -> str:
        return f"<CheckResult {summary_line(self, 0)}>"

    def _repr_html_(self) -> str | None:
        html = PRESENTERS.get("html")
        return html([self]) if html else None

    def to_frame(self):
        """One row (see :meth:`AuditResult.to_frame`)."""
        import pandas as pd
        return pd.DataFrame([frame_row(self)], columns=FRAME_COLUMNS)


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
                             bool(self.config.get("require", False)), bool(self.config.get("allow_skip", False)))

    def required_but_skipped(self) -> list[CheckResult]:
        """Checks that were skipped although the audit was run with ``require``."""
        return [c for c in self.checks if c.verdict == "skipped"] if self.config.get("require") else []

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "tool_version": self.tool_version, "created": self.created,
                "target": jsonable(self.target), "data": jsonable(self.data), "config": jsonable(self.config),
                "command": self.command, "warnings": [cap(w, JSON_CHARS) for w in self.warnings],
                "checks": [c.to_dict() for c in self.checks]}

    def to_json(self) -> str:
        return dumps(self.to_dict())

    # -- in a notebook ---------------------------------------------------------
    @property
    def passed(self) -> bool:
        """True when every check that ran passed (skipped checks aside, unless the audit
        was run with ``require``)."""
        ran = [c for c in self.checks if c.verdict != "skipped" or self.config.get("require")]
        return bool(ran) and all(c.verdict == "pass" for c in ran)

    @property
    def failed(self) -> bool:
        """True when some check failed or could not run (``error``). An audit can be
        neither passed nor failed: a check was inconclusive."""
        return any(c.failed for c in self.checks)

    def __bool__(self):
        raise ValueError(_AMBIGUOUS.format(what="an AuditResult", passed="every check passed",
                                           failed="some check failed or errored"))

    def __repr__(self) -> str:
        t = self.target or {}
        name = target_name(t)
        counts = [c.verdict for c in self.checks]
        tally = " · ".join(f"{counts.count(v)} {v}" for v in VERDICTS if counts.count(v)) or "no checks"
        head = f"<AuditResult {name}" + (f" ({t['kind']})" if t.get("kind") else "") + f": {tally}>"
        return "\n".join([head] + ["  " + summary_line(c) for c in self.checks])

    def _repr_html_(self) -> str | None:
        html = PRESENTERS.get("html")
        return html(self.checks, self) if html else None

    def to_frame(self):
        """The results as a pandas DataFrame, one row per check: ``id``, ``verdict``,
        ``statistic`` (its name), ``estimate``, ``low`` / ``high`` (the interval),
        ``tolerance``, ``draws``. A check without a statistic has NaN there."""
        import pandas as pd
        return pd.DataFrame([frame_row(c) for c in self.checks], columns=FRAME_COLUMNS)

    def write_json(self, path) -> None:
        """Write the JSON result (as ``fairaudit check --json``) to ``path``."""
        from pathlib import Path
        Path(path).write_text(self.to_json(), encoding="utf-8")

    def write_html(self, path) -> None:
        """Write the HTML report (as ``fairaudit check --html``) to ``path``."""
        if "report" not in PRESENTERS:
            raise RuntimeError("the HTML report is written by fairaudit.notebook: import fairaudit.notebook first")
        PRESENTERS["report"](self.to_dict(), path)


#: How results show themselves — ``"html"``: the notebook's summary, ``"report"``: the HTML
#: report writer. Set by :mod:`fairaudit.notebook` (loaded by the engine and with
#: ``fairaudit.AuditResult``): the words it shows come from the check registry, which
#: imports this module, so this module cannot import them.
PRESENTERS: dict[str, Any] = {}


FRAME_COLUMNS = ["id", "verdict", "statistic", "estimate", "low", "high", "tolerance", "draws"]

_AMBIGUOUS = ("The truth value of {what} is ambiguous: a check can be inconclusive. Use .passed "
              "({passed}) or .failed ({failed}), or .exit_code.")


def frame_row(c: CheckResult) -> list:
    s = c.statistic
    nan = float("nan")
    if s is None:
        return [c.id, c.verdict, None, nan, nan, nan, nan, int(c.draws)]
    tol = nan if s.tolerance is None else float(s.tolerance)
    return [c.id, c.verdict, s.name, float(s.estimate), float(s.ci[0]), float(s.ci[1]), tol, int(c.draws)]


def target_name(t: dict) -> str:
    """``examples/allocators/top_k.py:allocate``, a log's path, or "a DataFrame"."""
    name = t.get("path") or t.get("name") or "a DataFrame"
    if t.get("function") and ":" not in str(name) and name != t["function"]:
        name = f"{name}:{t['function']}"
    return str(name)


def _num(x) -> str:
    if x is None:
        return "—"
    x = float(x)
    if math.isnan(x):
        return "—"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.3g}" if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e6) else f"{x:.3f}"


def summary_line(c: CheckResult, width: int = 12) -> str:
    """``FAIL  selection_rates  min_ratio = 0.612 [0.551, 0.680] (tolerance 0.800), 2,048 draws``
    (the verdict padded to ``width``)."""
    line = f"{c.verdict.upper():<{width}} {c.id}"
    s = c.statistic
    if s is not None:
        line += f"  {s.name} = {_num(s.estimate)} [{_num(s.ci[0])}, {_num(s.ci[1])}]"
        if s.tolerance is not None:
            line += f" (tolerance {_num(s.tolerance)})"
    elif c.verdict in ("skipped", "error"):
        from .text import inert
        line += "  " + inert(c.message, 100)
    if c.draws:
        line += f", {int(c.draws):,} draws"
    return line


def exit_code_for(verdicts, fail_on: str = "fail", require: bool = False, allow_skip: bool = False) -> int:
    """DESIGN.md exit codes: 1 on any fail or error (or inconclusive under
    ``fail_on="inconclusive"``, or skipped under ``require``), else 0; 2 when every check
    was skipped (nothing was audited) unless ``allow_skip``."""
    verdicts = list(verdicts)
    if verdicts and all(v == "skipped" for v in verdicts) and not allow_skip:
        return 2
    bad = ({"fail", "error"} | ({"inconclusive"} if fail_on == "inconclusive" else set())
           | ({"skipped"} if require else set()))
    return 1 if any(v in bad for v in verdicts) else 0


def dumps(d: dict) -> str:
    """Strict JSON text of a result (or comparison) dict: ±∞ written as ``null`` with
    ``"unbounded"`` markers, NaN as ``null``; ``ValueError`` on anything else non-strict."""
    return json.dumps(encode_unbounded(jsonable(d)), indent=2, allow_nan=False, ensure_ascii=False)


def loads(text: str) -> dict:
    """A result dict from JSON text written by :func:`dumps`, with ±∞ restored from the
    ``"unbounded"`` markers (a schema_version 1 file's ``Infinity`` is read as well)."""
    return restore_unbounded(json.loads(text))


def load_result(path) -> dict:
    """:func:`loads` of a file."""
    from pathlib import Path
    return loads(Path(path).read_text(encoding="utf-8"))


def result_schema() -> dict:
    """The JSON Schema of the result (schema_version 2) shipped in the package."""
    from importlib import resources
    return json.loads(resources.files("fairaudit").joinpath(f"schema/result-v{SCHEMA_VERSION}.schema.json")
                      .read_text(encoding="utf-8"))


def _escape(token) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def encode_unbounded(x):
    """``x`` (plain JSON values, floats possibly ±∞ or NaN) in the strict form described
    in the module docstring."""
    out, pending = _encode(x)
    if pending:
        raise ValueError("an infinite value has no enclosing JSON object to record it in")
    return out


def _encode(x):
    """(strict copy of x, [(pointer tokens relative to x, "+inf"|"-inf")] not yet recorded)."""
    if isinstance(x, float):
        if math.isinf(x):
            return None, [((), "+inf" if x > 0 else "-inf")]
        if math.isnan(x):
            return None, []
        return x, []
    if isinstance(x, dict):
        out, pending = {}, []
        for k, v in x.items():
            out[k], sub = _encode(v)
            pending += [((k,) + ptr, sign) for ptr, sign in sub]
        if pending and UNBOUNDED_KEY not in x:
            out[UNBOUNDED_KEY] = {"/" + "/".join(_escape(t) for t in ptr): sign for ptr, sign in pending}
            pending = []
        return out, pending
    if isinstance(x, (list, tuple)):
        out, pending = [], []
        for i, v in enumerate(x):
            e, sub = _encode(v)
            out.append(e)
            pending += [((i,) + ptr, sign) for ptr, sign in sub]
        return out, pending
    return x, []


def _is_marker_map(m) -> bool:
    return (isinstance(m, dict) and bool(m) and all(isinstance(k, str) and k.startswith("/") for k in m)
            and all(v in ("+inf", "-inf") for v in m.values()))


def restore_unbounded(x):
    """The inverse of :func:`encode_unbounded` (in place; returns ``x``)."""
    if isinstance(x, list):
        for v in x:
            restore_unbounded(v)
    elif isinstance(x, dict):
        for v in x.values():
            restore_unbounded(v)
        marks = x.get(UNBOUNDED_KEY)
        if _is_marker_map(marks):
            del x[UNBOUNDED_KEY]
            for ptr, sign in marks.items():
                tokens = [_unescape(t) for t in ptr[1:].split("/")]
                node = x
                try:
                    for t in tokens[:-1]:
                        node = node[int(t)] if isinstance(node, list) else node[t]
                    last = int(tokens[-1]) if isinstance(node, list) else tokens[-1]
                    if node[last] is None:
                        node[last] = math.inf if sign == "+inf" else -math.inf
                except (KeyError, IndexError, ValueError, TypeError):
                    continue   # a marker that points nowhere is ignored, not fatal
    return x


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
    significant digits (so equal computations give byte-identical JSON), NaN → null;
    ±∞ stay floats here (:func:`dumps` writes them as null with an ``unbounded`` marker)."""
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
