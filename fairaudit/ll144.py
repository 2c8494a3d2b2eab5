"""The NYC Local Law 144 bias-audit table (DCWP rules, 6 RCNY §5-301) from a
``selection_rates`` result: ``fairaudit check … --export-ll144 table.csv``.

The CSV follows the layout of the rules' published examples: the audit's date, the data's
source and the number of individuals assessed first; then one table per attribute ("Sex
categories", "Race/Ethnicity categories", …, then the intersectional categories), each row a
category with the number of applicants, the number selected (logs), the selection rate
and its impact ratio, and — for a tool that outputs scores — the scoring rate (the share
scoring above the sample's median score) and its impact ratio. Categories under 2% of the
data are listed with their counts and rates, their ratio left out and the row saying so; the
individuals whose category is unknown are counted in a note under each table, never
dropped. Rates and ratios are the point estimates the law asks for; the intervals
fairaudit computed are in the last columns.
"""
from __future__ import annotations

import csv
from pathlib import Path

from .errors import FairauditError
from .groups import is_unknown


def _rows(table: dict) -> list[dict]:
    """A table as written to JSON (``table_to_json``) → its records."""
    if isinstance(table, dict) and "columns" in table and "rows" in table:
        return [dict(zip(table["columns"], r)) for r in table["rows"]]
    raise FairauditError("--export-ll144: the selection_rates table is not in a form it can read")


def _fmt(x, digits=4) -> str:
    return "" if x is None else f"{float(x):.{digits}f}"


def ll144_rows(result: dict) -> list[list[str]]:
    """The CSV's rows from an audit result's JSON (see the module docstring)."""
    sr = next((c for c in result.get("checks", []) if c.get("id") == "selection_rates"), None)
    if sr is None or sr.get("verdict") in ("skipped", "error") or "groups" not in (sr.get("tables") or {}):
        why = "was not run" if sr is None else f"is {sr.get('verdict')}: {sr.get('message', '')}"
        raise FairauditError(f"--export-ll144 needs a selection_rates result; selection_rates {why}")
    ev = sr.get("evidence") or {}
    groups = _rows(sr["tables"]["groups"])
    scoring = {(r["attribute"], r["category"]): r for r in _rows(sr["tables"]["scoring"])} \
        if "scoring" in sr["tables"] else {}
    data = ev.get("audit_data") or {}
    source = (result.get("data") or {}).get("path") or (result.get("target") or {}).get("path") or ""
    out = [["Audit date", str(result.get("created", ""))[:10]],
           ["Data source", source],
           [f"Number of individuals assessed ({data.get('unit', 'rows')})", str(data.get("size", ""))]]
    if scoring:
        out.append(["Median score (scoring rates: share above it)", _fmt((ev.get("scoring") or {}).get("median_score"), 6)])
    out.append([])
    header = ["Category", "# of Applicants"] + (["# Selected"] if any("selected" in r for r in groups) else []) + \
             ["Selection Rate", "Impact Ratio"] + (["Scoring Rate", "Impact Ratio (scoring)"] if scoring else []) + \
             ["Note", "Selection Rate interval", "Impact Ratio interval"]
    unknown = ev.get("unknown_category") or {}
    attrs = list(dict.fromkeys(r["attribute"] for r in groups))
    for a in sorted(attrs, key=lambda a: " × " in a):
        title = f"Intersectional categories ({a})" if " × " in a else f"{a} categories"
        out += [[title], header]
        for r in (r for r in groups if r["attribute"] == a and not is_unknown(r["category"])):
            judged = bool(r.get("in_verdict"))
            row = [r["category"], str(int(r["n"]))]
            if "# Selected" in header:
                row.append(_fmt(r.get("selected"), 0))
            row += [_fmt(r["rate"]), _fmt(r["impact_ratio"]) if judged else ""]
            if scoring:
                s = scoring.get((a, r["category"]), {})
                row += [_fmt(s.get("scoring_rate")), _fmt(s.get("impact_ratio")) if s.get("in_verdict") else ""]
            row += ["" if judged else "under 2% of the data: excluded from the impact ratios",
                    f"[{_fmt(r['rate_lo'])}, {_fmt(r['rate_hi'])}]",
                    f"[{_fmt(r['ir_lo'])}, {_fmt(r['ir_hi'])}]" if judged else ""]
            out.append(row)
        n_unknown = int(unknown.get(a, 0))
        out.append([f"Note: {n_unknown} individuals assessed have an unknown category for {a}; they are not included "
                    f"in the calculations above."])
        out.append([])
    return out


def write_ll144(result: dict, path) -> None:
    with open(Path(path), "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(ll144_rows(result))
