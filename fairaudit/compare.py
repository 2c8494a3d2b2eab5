"""``fairaudit compare BASELINE.json CURRENT.json``: the regression gate.

Check by check and statistic by statistic, decide whether CURRENT has got *worse* than
BASELINE by more than a tolerance, **with confidence**, from the two results' intervals
(not from their point estimates).

The rule (and its error rate)
-----------------------------
Each statistic θ carries an interval ``ci`` valid at the result's confidence 1−α and a
``violation`` side (``"above"``: larger is worse; ``"below"``: smaller is worse). Write the
*worsening* as ``w = θ_cur − θ_base`` (``"above"``) or ``w = θ_base − θ_cur`` (``"below"``).
From the two intervals ``[lb, hb]`` (BASELINE) and ``[lc, hc]`` (CURRENT) the interval

    above:  [lc − hb,  hc − lb]        below:  [lb − hc,  hb − lc]

contains ``w`` whenever both intervals contain their θ, so by the union bound it holds with
probability at least 1 − (α_base + α_cur) = 1 − 2α **whatever the dependence between the
two runs** — in particular when both used the same seed (common random numbers), which
is what a CI gate does. A statistic is a *regression* when the whole interval lies above
the tolerance (``lower > tol``), i.e. CURRENT's interval lies entirely on the worse side of
BASELINE's interval shifted by the tolerance. When the true worsening is at most ``tol``
this can only happen if one of the two intervals misses its θ on one side, so the
false-regression rate per statistic is at most 2α (at most α when each interval is
equal-tailed, as Clopper–Pearson and the symmetric bounds are). It is *improved* when the
whole interval lies below 0. Everything else is "no significant change".

Comparing a result with itself gives the interval ``[−(hb − lb), hb − lb]``, which never
lies above a tolerance ≥ 0: self-comparison always exits 0. With the same seed and an
unchanged allocator the draws are identical, so an unchanged allocator never trips the
gate; with different seeds the rate above applies.

Verdict flips count too: a check that was not ``fail``/``error`` in BASELINE and is
``fail`` or ``error`` in CURRENT is a regression ("pass → fail"); one that went from
``pass`` to ``inconclusive`` is flagged *newly inconclusive* (exit 1 only with
``--fail-on inconclusive``). A check absent from BASELINE that arrives ``fail`` or ``error``
in CURRENT is a *new failure*, a regression (exit 1) unless ``allow_new_failures``
(``--allow-new-failures``); a new check with any other verdict is listed for information.
A check present in BASELINE but missing from CURRENT is reported (*missing*: the gate
cannot vouch for it) and is a regression under ``strict`` (``--strict``).

Besides the headline ``statistic``, a check may list further statistics as
``evidence["statistics"]`` (dicts with ``name``, ``estimate``, ``ci``, ``violation``,
optional ``tolerance``); they are compared by name in the same way.

Refusals (exit 2)
-----------------
Results are incomparable — and compare says why — when their schema versions differ,
their targets make different kinds of decisions, their seeds or confidence levels
differ, they audited different data (population or log sha256), or a setting that
changes what a statistic means differs: ``k``, ``groups``, ``columns``, a common check's
parameters, or a statistic's tolerance or violation side. The same target path with a
different sha256 (the allocator changed) is the normal case; a different target path is
allowed too (noted), so a variant can be compared with its original. Settings that only
change precision or speed (``draws``, ``budget``, ``timeout``, ``jobs``, ``fail_on``, the
list of checks) may differ.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .errors import FairauditError

BAD = ("fail", "error")
#: the verdicts a result may carry; any other (a tampered or foreign file) counts as an error
KNOWN_VERDICTS = ("pass", "fail", "inconclusive", "error", "skipped")
#: config keys whose difference makes statistics mean different things
MEANING_KEYS = ("k", "groups", "columns")


class IncomparableError(FairauditError):
    """The two results cannot be compared meaningfully (exit 2)."""


@dataclass(frozen=True)
class StatComparison:
    """One statistic of one check, compared. ``worsening`` is oriented so that positive
    means CURRENT is worse; ``worsening_ci`` holds with confidence ≥ 1 − 2α."""

    check: str
    name: str
    violation: str
    baseline: float | None
    baseline_ci: tuple[float | None, float | None]
    current: float | None
    current_ci: tuple[float | None, float | None]
    worsening: float | None
    worsening_ci: tuple[float, float]
    tolerance: float
    status: str          # "regression" | "improved" | "no significant change" | "not comparable"
    #: confidence of ``worsening_ci`` (at least 1 − 2α of the results' α), when known
    confidence: float | None = None

    @property
    def regression(self) -> bool:
        return self.status == "regression"

    def to_dict(self) -> dict:
        from .result import jsonable
        return jsonable({"check": self.check, "name": self.name, "violation": self.violation,
                         "baseline": self.baseline, "baseline_ci": list(self.baseline_ci),
                         "current": self.current, "current_ci": list(self.current_ci),
                         "worsening": self.worsening, "worsening_ci": list(self.worsening_ci),
                         "tolerance": self.tolerance, "status": self.status,
                         "worsening_ci_confidence": self.confidence})


@dataclass
class CheckComparison:
    id: str
    title: str
    baseline_verdict: str | None
    current_verdict: str | None
    statistics: list[StatComparison] = field(default_factory=list)
    status: str = "no significant change"   # regression | new failure | newly inconclusive | improved | missing | new | ...
    reasons: list[str] = field(default_factory=list)
    #: a missing check fails the gate only under ``strict``
    strict: bool = False

    @property
    def regression(self) -> bool:
        return self.status in ("regression", "new failure") or (self.status == "missing" and self.strict)

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "baseline_verdict": self.baseline_verdict,
                "current_verdict": self.current_verdict, "status": self.status, "reasons": list(self.reasons),
                "statistics": [s.to_dict() for s in self.statistics]}


@dataclass
class Comparison:
    baseline: dict
    current: dict
    checks: list[CheckComparison]
    notes: list[str]
    confidence: float
    fail_on: str = "regression"
    allow_new_failures: bool = False
    strict: bool = False

    @property
    def regressions(self) -> list[CheckComparison]:
        return [c for c in self.checks if c.regression]

    @property
    def newly_inconclusive(self) -> list[CheckComparison]:
        return [c for c in self.checks if c.status == "newly inconclusive"]

    @property
    def exit_code(self) -> int:
        if self.regressions:
            return 1
        if self.fail_on == "inconclusive" and self.newly_inconclusive:
            return 1
        return 0

    def to_dict(self) -> dict:
        def side(d):
            return {"path": d.get("target", {}).get("path"), "sha256": d.get("target", {}).get("sha256"),
                    "created": d.get("created"), "tool_version": d.get("tool_version")}
        return {"baseline": side(self.baseline), "current": side(self.current), "confidence": self.confidence,
                "rule": RULE, "notes": list(self.notes), "exit_code": self.exit_code,
                "allow_new_failures": self.allow_new_failures, "strict": self.strict,
                "checks": [c.to_dict() for c in self.checks]}

    def summary_lines(self) -> list[str]:
        """One sentence per regression / flag, naming the statistic and the change with its interval."""
        out = []
        for c in self.checks:
            for r in c.reasons:
                out.append(f"{c.status.upper()}: {_one_line(c.id)}: {r}")
        return out


RULE = ("A statistic regressed when the interval for its worsening (CURRENT minus BASELINE, oriented so that "
        "positive is worse), built from the two results' intervals, lies entirely above the tolerance; the "
        "interval holds with confidence at least 1 − 2α whatever the dependence between the runs, so the "
        "false-regression rate per statistic is at most 2α.")


# ---------------------------------------------------------------------------

def load_result(path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise IncomparableError(f"{path}: no such file")
    from .result import loads
    try:
        d = loads(p.read_text(encoding="utf-8"))   # strict JSON with ±∞ restored from its markers
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IncomparableError(f"{path} is not a fairaudit JSON result ({e})")
    if not isinstance(d, dict) or "checks" not in d:
        raise IncomparableError(f"{path} is not a fairaudit JSON result (no 'checks')")
    return d


def _num(x) -> float | None:
    if x is None:
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _ci(s: dict) -> tuple[float | None, float | None]:
    ci = s.get("ci") or [None, None]
    return _num(ci[0]), _num(ci[1])


def worsening_interval(base_ci, cur_ci, violation: str) -> tuple[float, float]:
    """Interval for the worsening (positive = CURRENT worse) from the two intervals; a
    missing bound is unbounded. Valid at ≥ 1 − (α_b + α_c) under any dependence."""
    lb, hb = (-math.inf if base_ci[0] is None else base_ci[0]), (math.inf if base_ci[1] is None else base_ci[1])
    lc, hc = (-math.inf if cur_ci[0] is None else cur_ci[0]), (math.inf if cur_ci[1] is None else cur_ci[1])
    if violation == "below":
        lo, hi = lb - hc, hb - lc
    else:
        lo, hi = lc - hb, hc - lb
    lo = -math.inf if math.isnan(lo) else lo
    hi = math.inf if math.isnan(hi) else hi
    return lo, hi


def compare_statistic(check: str, b: dict, c: dict, tolerance: float, confidence: float | None = None) -> StatComparison:
    """Compare one statistic; ``confidence`` is that of the two results' intervals (the
    worsening interval then holds at ``1 − 2(1 − confidence)`` or more)."""
    violation = b.get("violation") or "above"
    bci, cci = _ci(b), _ci(c)
    lo, hi = worsening_interval(bci, cci, violation)
    be, ce = _num(b.get("estimate")), _num(c.get("estimate"))
    w = None
    if be is not None and ce is not None:
        w = (ce - be) if violation == "above" else (be - ce)
    if lo > tolerance:
        status = "regression"
    elif hi < 0:
        status = "improved"
    else:
        status = "no significant change"
    return StatComparison(check=check, name=str(b.get("name", "")), violation=violation, baseline=be,
                          baseline_ci=bci, current=ce, current_ci=cci, worsening=w, worsening_ci=(lo, hi),
                          tolerance=float(tolerance), status=status,
                          confidence=None if confidence is None else _worsening_confidence(confidence))


def _worsening_confidence(confidence: float) -> float:
    return max(0.0, 1.0 - 2.0 * (1.0 - float(confidence)))


def _stats_of(c: dict) -> dict[str, dict]:
    out: dict[str, dict] = {}
    if c.get("statistic"):
        out[c["statistic"].get("name", "statistic")] = c["statistic"]
    extra = (c.get("evidence") or {}).get("statistics")
    if isinstance(extra, list):
        for s in extra:
            if isinstance(s, dict) and "name" in s and "ci" in s:
                out.setdefault(str(s["name"]), s)
    return out


def _fmt(x) -> str:
    if x is None:
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.3g}" if abs(x) < 1e-3 and x != 0 else f"{x:.3f}"


def describe_change(s: StatComparison) -> str:
    worse = "higher" if s.violation == "above" else "lower"
    return (f"{s.name} went from {_fmt(s.baseline)} {_ci_txt(s.baseline_ci)} to {_fmt(s.current)} "
            f"{_ci_txt(s.current_ci)} ({worse} is worse): worse by {_fmt(s.worsening)}, interval "
            f"{_ci_txt(s.worsening_ci)}{_conf_txt(s.confidence)}, beyond the tolerance {_fmt(s.tolerance)}")


def _conf_txt(conf: float | None) -> str:
    return "" if conf is None else f" (confidence ≥ {conf:.0%})"


def _ci_txt(ci) -> str:
    return f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"


def check_comparable(base: dict, cur: dict) -> list[str]:
    """Raise :class:`IncomparableError` (saying why) when the comparison is meaningless;
    return notes about differences that are fine."""
    notes: list[str] = []
    if base.get("schema_version") != cur.get("schema_version"):
        raise IncomparableError(f"schema versions differ ({base.get('schema_version')} vs "
                                f"{cur.get('schema_version')}); re-run both audits with the same fairaudit")
    bt, ct = base.get("target") or {}, cur.get("target") or {}
    if bt.get("kind") != ct.get("kind"):
        raise IncomparableError(f"the targets make different kinds of decisions ({bt.get('kind')} vs {ct.get('kind')}); "
                                "their statistics measure different things")
    bc, cc = base.get("config") or {}, cur.get("config") or {}
    if bc.get("seed") != cc.get("seed"):
        raise IncomparableError(
            f"the seeds differ ({bc.get('seed')} vs {cc.get('seed')}); audit CURRENT with --seed {bc.get('seed')} so that "
            "an unchanged allocator gives identical draws and cannot trip the gate by chance")
    if _num(bc.get("confidence")) != _num(cc.get("confidence")):
        raise IncomparableError(f"the confidence levels differ ({bc.get('confidence')} vs {cc.get('confidence')}); "
                                f"audit CURRENT with --confidence {bc.get('confidence')}")
    bd, cd = base.get("data") or {}, cur.get("data") or {}
    if (bd.get("sha256") or None) != (cd.get("sha256") or None):
        raise IncomparableError(
            f"they audited different data ({bd.get('path') or 'none'} sha256 {str(bd.get('sha256'))[:12]} vs "
            f"{cd.get('path') or 'none'} sha256 {str(cd.get('sha256'))[:12]}); audit both on the same --data file")
    if bt.get("decisions") is not None or ct.get("decisions") is not None:
        if bt.get("sha256") != ct.get("sha256"):
            notes.append("the decision logs differ (different sha256): this compares two logs, as intended for a "
                         "new period of decisions")
    for key in MEANING_KEYS:
        if bc.get(key) != cc.get(key):
            raise IncomparableError(f"the setting '{key}' differs ({bc.get(key)!r} vs {cc.get(key)!r}), which changes "
                                    "what the statistics mean; audit both with the same setting")
    bp, cp = bc.get("params") or {}, cc.get("params") or {}
    bchk, cchk = {c["id"]: c for c in base["checks"]}, {c["id"]: c for c in cur["checks"]}
    for cid in sorted(set(bchk) & set(cchk)):
        # the parameters each check ran with (defaults included) when recorded, else the overrides
        b_par, c_par = bchk[cid].get("params"), cchk[cid].get("params")
        if not b_par or not c_par:
            b_par, c_par = bp.get(cid) or {}, cp.get(cid) or {}
        if b_par != c_par:
            diff = {k: (b_par.get(k), c_par.get(k)) for k in sorted(set(b_par) | set(c_par)) if b_par.get(k) != c_par.get(k)}
            hint = ("; a parameter present on one side only means the two were made by different fairaudit "
                    "versions: re-audit the baseline with this one") if any(None in v for v in diff.values()) else ""
            raise IncomparableError(f"the parameters of check '{cid}' differ (baseline vs current: {diff}); "
                                    f"audit both with the same --param / config{hint}")
    if bt.get("path") != ct.get("path"):
        notes.append(f"different target files: {bt.get('path')} (baseline) vs {ct.get('path')} (current)")
    elif bt.get("sha256") != ct.get("sha256"):
        notes.append(f"{ct.get('path')} changed (sha256 {str(bt.get('sha256'))[:12]} → {str(ct.get('sha256'))[:12]})")
    for key in ("draws", "budget"):
        if bc.get(key) != cc.get(key):
            notes.append(f"'{key}' differs ({bc.get(key)} vs {cc.get(key)}): this changes precision, not meaning")
    if base.get("tool_version") != cur.get("tool_version"):
        notes.append(f"fairaudit versions differ ({base.get('tool_version')} vs {cur.get('tool_version')})")
    return notes


def _tolerance_for(tolerance, check_id: str, stat_name: str) -> float:
    if isinstance(tolerance, dict):
        for key in (f"{check_id}.{stat_name}", check_id, stat_name, "*"):
            if key in tolerance:
                return float(tolerance[key])
        return 0.0
    return float(tolerance or 0.0)


def compare(base: dict, cur: dict, tolerance: float | dict[str, float] = 0.0,
            fail_on: str = "regression", *, allow_new_failures: bool = False, strict: bool = False) -> Comparison:
    """Compare two result dicts (as written by ``--json``). ``tolerance``: a number (in each
    statistic's own units) or a mapping ``{"check.statistic" | "check" | "*": tol}``.
    A check new in CURRENT that fails or errors is a regression unless
    ``allow_new_failures``; a check missing from CURRENT is one only under ``strict``.
    Raises :class:`IncomparableError` when the comparison would be meaningless."""
    notes = check_comparable(base, cur)
    conf = float(base.get("config", {}).get("confidence", 0.95))
    bmap = {c["id"]: c for c in base["checks"]}
    cmap = {c["id"]: c for c in cur["checks"]}
    rows: list[CheckComparison] = []
    for cid in list(bmap) + [i for i in cmap if i not in bmap]:
        b, c = bmap.get(cid), cmap.get(cid)
        row = CheckComparison(id=cid, title=(b or c).get("title", cid), baseline_verdict=b and b.get("verdict"),
                              current_verdict=c and c.get("verdict"), strict=strict)
        rows.append(row)
        if c is None:
            row.status = "missing"
            row.reasons.append("present in BASELINE but missing from CURRENT, so the gate cannot vouch for it; "
                               "audit CURRENT with the same --checks" + (
                                   " (a regression under --strict)" if strict else
                                   " (this fails the gate only with --strict)"))
            continue
        if b is None:
            cv = c.get("verdict")
            if cv in BAD and not allow_new_failures:
                row.status = "new failure"
                msg = str(c.get("message") or "").strip()
                row.reasons.append(f"absent from BASELINE and {cv} in CURRENT" + (f": {msg}" if msg else "") +
                                   ("" if msg.endswith((".", "!", "?")) or not msg else ".") +
                                   " A new check that fails is a regression (--allow-new-failures lets it through).")
            else:
                row.status = "new"
                row.reasons.append(f"new in CURRENT (verdict {cv})" + (
                    "; let through by --allow-new-failures" if cv in BAD else ""))
            continue
        bstats, cstats = _stats_of(b), _stats_of(c)
        for name, bs in bstats.items():
            cs = cstats.get(name)
            if cs is None:
                continue
            for attr in ("violation", "tolerance"):
                if bs.get(attr) != cs.get(attr) and not (attr == "violation" and not cs.get(attr)):
                    raise IncomparableError(f"check '{cid}', statistic '{name}': the {attr} differs "
                                            f"({bs.get(attr)!r} vs {cs.get(attr)!r}); the statistics are judged differently")
            row.statistics.append(compare_statistic(cid, bs, cs, _tolerance_for(tolerance, cid, name), conf))
        bv, cv = row.baseline_verdict, row.current_verdict
        unknown = cv not in KNOWN_VERDICTS       # e.g. "maybe": the gate cannot vouch for it
        flipped = (cv in BAD or unknown) and bv not in BAD
        stat_reg = [s for s in row.statistics if s.regression]
        if flipped or stat_reg:
            row.status = "regression"
            if flipped:
                msg = f"verdict {bv} → {cv}" + (" (not a verdict fairaudit writes: counted as an error)" if unknown else "")
                if cv == "error":
                    msg += f": {c.get('message', '')}"
                row.reasons.append(msg)
            for s in stat_reg:
                row.reasons.append(describe_change(s))
        elif bv == "pass" and cv == "inconclusive":
            row.status = "newly inconclusive"
            s0 = row.statistics[0] if row.statistics else None
            row.reasons.append("verdict pass → inconclusive" + (
                f"; {s0.name} now {_fmt(s0.current)} {_ci_txt(s0.current_ci)}" if s0 else "") +
                (f": {c.get('message', '')}" if c.get("message") else ""))
        elif row.statistics and all(s.status == "improved" for s in row.statistics) or (bv in BAD and cv == "pass"):
            row.status = "improved"
        elif bv != cv:
            row.status = "verdict changed"
            row.reasons.append(f"verdict {bv} → {cv}")
        else:
            row.status = "no significant change"
    return Comparison(baseline=base, current=cur, checks=rows, notes=notes, confidence=conf, fail_on=fail_on,
                      allow_new_failures=allow_new_failures, strict=strict)


def compare_files(baseline, current, tolerance=0.0, fail_on: str = "regression", *,
                  allow_new_failures: bool = False, strict: bool = False) -> Comparison:
    return compare(load_result(baseline), load_result(current), tolerance=tolerance, fail_on=fail_on,
                   allow_new_failures=allow_new_failures, strict=strict)


# ---------------------------------------------------------------------------
# Output

def _one_line(text) -> str:
    """A name from a result on one terminal line: line breaks shown escaped."""
    return (str(text).replace("\n", "\\n").replace("\r", "\\r")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\x85"))


def terminal_table(cmp: Comparison) -> str:
    """A plain-text table (one row per statistic, or per check without one)."""
    head = ("check", "statistic", "baseline", "current",
            f"worse by [{_worsening_confidence(cmp.confidence):.0%} interval]", "tol", "status")
    rows = []
    for c in cmp.checks:
        if not c.statistics:
            rows.append((c.id, "—", c.baseline_verdict or "—", c.current_verdict or "—", "—", "—", c.status))
            continue
        for i, s in enumerate(c.statistics):
            rows.append((c.id if i == 0 else "", s.name,
                         f"{_fmt(s.baseline)} {_ci_txt(s.baseline_ci)}" + (f" {c.baseline_verdict}" if i == 0 else ""),
                         f"{_fmt(s.current)} {_ci_txt(s.current_ci)}" + (f" {c.current_verdict}" if i == 0 else ""),
                         f"{_fmt(s.worsening)} {_ci_txt(s.worsening_ci)}", _fmt(s.tolerance),
                         c.status if i == 0 else s.status))
    rows = [tuple(_one_line(v) for v in r) for r in rows]      # a cell cannot start a line
    widths = [max(len(str(r[j])) for r in rows + [head]) for j in range(len(head))]
    line = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    out = [line(head), line(tuple("-" * w for w in widths))] + [line(r) for r in rows]
    return "\n".join(out)


def figure_spec(cmp: Comparison) -> dict | None:
    """The compare report's figure: each compared statistic's baseline and current
    interval on one row (its own scale), titled with the gate's status."""
    rows = [{"label": f"{c.id} · {s.name} ({'higher' if s.violation == 'above' else 'lower'} is worse)",
             "baseline": s.baseline, "baseline_ci": list(s.baseline_ci), "current": s.current,
             "current_ci": list(s.current_ci), "status": c.status if len(c.statistics) == 1 else s.status,
             "violation": s.violation} for c in cmp.checks for s in c.statistics]
    if not rows:
        return None
    return {"kind": "compare_intervals", "title": f"Baseline and current intervals (confidence {cmp.confidence:g} each)",
            "rows": rows}


#: the gate's verdict on a check, from its status (what the exit code follows)
GATE = {"regression": "fail", "new failure": "fail", "missing": "fail", "newly inconclusive": "inconclusive",
        "improved": "pass", "no significant change": "pass", "verdict changed": "pass", "new": "skipped"}


def gate_verdict(c: CheckComparison) -> str:
    """The gate's verdict on one compared check (a missing check fails only under strict)."""
    if c.status == "missing" and not c.strict:
        return "skipped"
    return GATE.get(c.status, "pass")


def render_html(cmp: Comparison) -> str:
    from .report import _env
    return _env().get_template("compare.html.j2").render(cmp=cmp, d=cmp.to_dict(), b=cmp.baseline,
                                                         c=cmp.current, rule=RULE, figure=figure_spec(cmp), gate=GATE,
                                                         gate_of=gate_verdict)


def write_html(cmp: Comparison, path) -> None:
    from .outputs import write_text
    write_text(path, render_html(cmp))
