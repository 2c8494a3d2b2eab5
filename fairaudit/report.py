"""The HTML report: one self-contained file rendered from a result dict (the JSON).

The report never computes statistics; it renders what the results hold. Templates
live in ``report_templates/`` (installed as ``fairaudit.report_templates``) and are
rendered with Jinja2 autoescaping, so every user-supplied string is escaped.

User text is also isolated and capped (issue 20): a value that is wholly the user's (a
name, a path, a table cell, a counterexample) goes through the ``user`` filter — wrapped in
``<bdi>`` so its bidi controls cannot reorder fairaudit's text around it, control characters
other than newline/tab shown escaped (they are not valid in HTML), cut at
:data:`~fairaudit.text.REPORT_CHARS` with its length stated. A message mixes fairaudit's
words with user values, so no element can isolate the user's part: the ``message`` filter
shows its bidi controls escaped too (``\\u202e``), like the terminal does.
"""
from __future__ import annotations

import json
import re
from importlib import resources

import jinja2
from markupsafe import Markup, escape

from .counterexamples import counterexample_table
from .figures import render_svg
from .headline import headline
from .labels import cite, column_label, glossary_for, kinds_phrase, sources_cited, statistic_label, table_title
from .text import REPORT_CHARS, cap, fmt_interval, fmt_number, inert, safe_str

VERDICT_ORDER = ["fail", "error", "inconclusive", "pass", "skipped"]


def _compact_json(x, indent: int = 0, width: int = 100) -> str:
    """JSON for a person: what fits in ``width`` characters stays on one line, and a
    list of plain values always does (the ``<pre>`` wraps it), so a counterexample's
    vectors read as vectors rather than one number per line. Returned as plain text:
    the template escapes it."""
    flat = json.dumps(x, ensure_ascii=False, default=str)
    if not isinstance(x, (dict, list)) or len(flat) + indent <= width:
        return flat
    if isinstance(x, list) and not any(isinstance(v, (dict, list)) for v in x):
        return flat
    pad = " " * (indent + 1)
    if isinstance(x, dict):
        items = [f"{pad}{json.dumps(str(k), ensure_ascii=False)}: {_compact_json(v, indent + 1, width)}"
                 for k, v in x.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    return "[\n" + ",\n".join(pad + _compact_json(v, indent + 1, width) for v in x) + "\n" + " " * indent + "]"


_HTML_INVALID = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _user(text, limit: int = REPORT_CHARS) -> Markup:
    """A value wholly the user's, escaped, capped and isolated in ``<bdi>`` (its bidi
    controls kept, so RTL names show as written, but confined to the element)."""
    s = cap(text if isinstance(text, str) else safe_str(text), limit)
    s = _HTML_INVALID.sub(lambda m: inert(m.group()), s)
    return Markup("<bdi>") + escape(s) + Markup("</bdi>")


def _user_path(text, limit: int = REPORT_CHARS) -> Markup:
    """A user's path or name, as :func:`_user`, that may wrap after each ``/`` (and only
    there), so a long path never breaks inside a folder name."""
    inner = _user(text, limit)[len("<bdi>"):-len("</bdi>")]
    return Markup("<bdi>") + Markup(str(inner).replace("/", "/<wbr>")) + Markup("</bdi>")


def _message(text, limit: int = REPORT_CHARS) -> Markup:
    """A message (fairaudit's words with user values inside): every control and bidi
    character shown escaped, capped, isolated."""
    s = cite(text if isinstance(text, str) else safe_str(text), short=True)   # an old result's "seed 002" → "Devic et al."
    return Markup("<bdi>") + escape(inert(s, limit)) + Markup("</bdi>")


def _cell(v) -> Markup | str:
    """A table cell: numbers formatted, text as a user value."""
    return _user(v) if isinstance(v, str) else fmt_number(v)


def _svg(spec) -> Markup:
    try:
        return Markup(render_svg(spec))  # our own SVG: matplotlib escapes the text it writes
    except Exception as e:  # a figure must never stop the report
        title = spec.get("title") if isinstance(spec, dict) else None
        return (Markup("<p class='note'>Figure ") + (_message(title, 200) + " " if title else "")
                + Markup("could not be drawn: ") + _message(f"{type(e).__name__}: {safe_str(e)}", 500)
                + Markup("</p>"))


def _breakable(name) -> Markup:
    """An identifier that may wrap after its underscores (escaped, then <wbr> inserted):
    long statistic names wrap on narrow screens without breaking mid-word."""
    return Markup("_<wbr>").join(escape(inert(part)) for part in cap(safe_str(name), 200).split("_"))


def _row_class(verdict) -> str:
    """CSS class of a table row from its own verdict cell."""
    v = str(verdict)
    return "row-" + v if v in VERDICTS else ("row-reference" if v.startswith("reference")
                                                                     else "row-other")


def _references(table) -> list[tuple[str, str]]:
    """(attribute, reference group) pairs of a table with ``attribute`` and ``reference``
    columns, in order of appearance (what the table holds, not computed)."""
    cols = table.get("columns") or [] if isinstance(table, dict) else []
    if "reference" not in cols or "attribute" not in cols:
        return []
    a, r = cols.index("attribute"), cols.index("reference")
    out: list[tuple[str, str]] = []
    for row in table.get("rows") or []:
        pair = (safe_str(row[a]), safe_str(row[r]))
        if pair not in out:
            out.append(pair)
    return out


VERDICTS = ("pass", "fail", "inconclusive")

#: a table of more rows than FOLD_ABOVE shows its first SHOW_ROWS (failing rows first);
#: the rest are behind a <details> (no scroll box can hide a failing row)
SHOW_ROWS = 10
FOLD_ABOVE = 12
MAX_FAILING_SHOWN = 40
#: row order by the row's own verdict: what needs action first, the rest as the check wrote them
_ROW_RANK = {"fail": 0, "error": 0, "inconclusive": 1}
#: a table without a verdict column whose ``status`` column judges each row (ex_interim's pools)
_STATUS_RANK = {"violates": 0, "undecided": 1}


def _param_value(v) -> Markup:
    """A parameter's value for the method line: empty ones (``""``, ``{}``, ``[]``, None) are
    said to be unset rather than shown as ``protected=``."""
    if v is None or (isinstance(v, (str, list, dict, tuple)) and len(v) == 0):
        return Markup("<em>not set</em>")
    return Markup("<code>") + _user(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
                                    if isinstance(v, (list, dict)) else fmt_number(v) if isinstance(v, float) else str(v),
                                    200) + Markup("</code>")


def _bounds_of(est: str, lower: str, upper: str) -> bool:
    """Whether columns named ``lower`` and ``upper`` are the bounds of the estimate ``est``
    ("impact ratio" → "impact ratio (lower)"; "mean regret" → "regret (lower)")."""
    if not (lower.endswith(" (lower)") and upper.endswith(" (upper)")):
        return False
    stem = lower[: -len(" (lower)")]
    bare = stem.strip("|")          # "largest difference" → "|difference| (lower)"
    return (stem == upper[: -len(" (upper)")] and bool(bare)
            and (est in (stem, bare) or est.endswith(" " + stem) or est.endswith(" " + bare)))


def _display_table(table: dict, limit: int = 500) -> dict:
    """A result table as the report shows it (the JSON keeps it as it is): human column
    names; an estimate followed by its "(lower)" and "(upper)" columns shown as one
    "estimate [lower, upper]" column, so a per-group table fits a narrow screen; a
    ``verdict`` column shown first, as a badge, and each row coloured by it."""
    cols = list(table.get("columns") or [])
    labels = [column_label(c) for c in cols]
    vi = cols.index("verdict") if "verdict" in cols else -1
    rows = list(table.get("rows") or [])
    si = cols.index("status") if vi < 0 and "status" in cols else -1
    if vi >= 0:     # failing rows first, then inconclusive ones, the rest in the check's order
        rows.sort(key=lambda r: _ROW_RANK.get(str(r[vi]) if vi < len(r) else "", 2))
    elif si >= 0:   # violating rows first, then undecided ones
        rows.sort(key=lambda r: _STATUS_RANK.get(str(r[si]) if si < len(r) else "", 2))
    rows = rows[:limit]
    plan, j = [], 0            # (header, title, [column indices]) in display order
    while j < len(cols):
        if j + 2 < len(cols) and _bounds_of(labels[j], labels[j + 1], labels[j + 2]):
            plan.append((labels[j] + " [interval]", f"{cols[j]} [{cols[j + 1]}, {cols[j + 2]}]", [j, j + 1, j + 2]))
            j += 3
            continue
        if j != vi:
            plan.append((labels[j], str(cols[j]), [j]))
        j += 1
    if vi >= 0:
        plan.insert(0, (labels[vi], str(cols[vi]), [vi]))
    out_rows = []
    for row in rows:
        cells = []
        for _, _, idx in plan:
            if len(idx) == 3:
                est, lo, hi = (row[i] for i in idx)
                cells.append((Markup(escape(fmt_number(est))) + Markup(" <small>") + escape(fmt_interval([lo, hi])) + Markup("</small>"),
                              True))
            else:
                v = row[idx[0]]
                if idx[0] == vi and v in VERDICTS:
                    cells.append((Markup(f'<span class="verdict v-{v}">{v}</span>'), False))
                elif isinstance(v, str) and len(v) <= 24:
                    # a short name ("age_band = 30_to_50") stays on one line rather than one word a line
                    cells.append((Markup('<span class="nw">') + _cell(v) + Markup("</span>"), False))
                else:
                    cells.append((_cell(v), isinstance(v, (int, float)) and not isinstance(v, bool)))
        out_rows.append((_row_class(row[vi]) if vi >= 0 else "", cells))
    failing = (sum(1 for cls, _ in out_rows if cls in ("row-fail", "row-error")) if si < 0 else
               sum(1 for r in rows if str(r[si]) == "violates"))
    # every failing row is shown (up to MAX_FAILING_SHOWN), and at least SHOW_ROWS rows
    shown = len(out_rows) if len(out_rows) <= FOLD_ABOVE else max(SHOW_ROWS, min(failing, MAX_FAILING_SHOWN))
    return {"headers": [(h, t) for h, t, _ in plan], "rows": out_rows[:shown], "more": out_rows[shown:],
            "verdicts": vi >= 0, "refs": _references(table), "failing": failing}


def _small_heatmap(spec) -> dict | None:
    """A heatmap of tiny matrices (an n = 2 instance: at most 3 rows, 4 columns) as a table
    the template shows instead of 2-cell colour maps: ``{"title", "groups": [(subtitle,
    [column names])], "corner", "rows": [(row name, [cells])]}``; None for any other figure."""
    if not isinstance(spec, dict) or spec.get("kind") != "heatmap":
        return None
    mats = spec.get("matrices") or []
    if not mats or not all(isinstance(m, list) and 0 < len(m) <= 3 and all(isinstance(r, list) and 0 < len(r) <= 4
                                                                            for r in m) for m in mats):
        return None
    x0 = int(spec.get("x0", 0) or 0)
    xl, yl = str(spec.get("xlabel") or ""), str(spec.get("ylabel") or "")
    ylabels = spec.get("ylabels")
    subs = list(spec.get("subtitles") or []) + [""] * len(mats)
    xl = xl.split(" (")[0]          # "position (1 = top)" → "position 1", "position 2"
    groups = [(subs[i], [f"{xl} {x0 + j}".strip() for j in range(len(m[0]))]) for i, m in enumerate(mats)]
    rows = []
    for r in range(max(len(m) for m in mats)):
        name = str(ylabels[r]) if ylabels and r < len(ylabels) else f"{yl} {r}".strip()
        cells = []
        for m in mats:
            cells += [fmt_number(float(v)) if isinstance(v, (int, float)) else "—" for v in m[r]] if r < len(m) else ["—"] * len(m[0])
        rows.append((name, cells))
    return {"title": spec.get("title"), "groups": groups, "rows": rows}


def _env() -> jinja2.Environment:
    def load(name):
        try:
            return resources.files("fairaudit.report_templates").joinpath(name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
    env = jinja2.Environment(loader=jinja2.FunctionLoader(load), autoescape=True, trim_blocks=True,
                             lstrip_blocks=True, undefined=jinja2.ChainableUndefined)
    env.filters["fmt"] = fmt_number
    env.filters["ci"] = fmt_interval
    env.filters["svg"] = _svg
    env.filters["compactjson"] = _compact_json
    env.filters["breakable"] = _breakable
    env.filters["user"] = _user
    env.filters["userpath"] = _user_path
    env.filters["message"] = _message
    env.filters["cell"] = _cell
    env.filters["rowclass"] = _row_class
    env.filters["kinds"] = lambda kind: kinds_phrase([kind])
    env.filters["display_table"] = _display_table
    env.filters["cxtable"] = counterexample_table
    env.filters["paramvalue"] = _param_value
    env.filters["small_heatmap"] = _small_heatmap
    env.globals["table_title"] = table_title
    env.filters["inert"] = lambda t, limit=200: inert(t, limit)
    env.filters["collabel"] = lambda c: inert(column_label(c), 200)
    env.filters["statlabel"] = lambda n: inert(statistic_label(n), 200)
    return env


def ordered_checks(checks: list[dict]) -> list[dict]:
    """Checks in the order a reviewer acts on them: fail and error first, then
    inconclusive, pass, skipped (each group in run order)."""
    rank = {v: i for i, v in enumerate(VERDICT_ORDER)}
    return sorted(checks, key=lambda c: rank.get(c.get("verdict"), len(rank)))


def _glossary(result: dict) -> list[tuple[str, str]]:
    parts = []
    for c in result.get("checks", []):
        parts += [str(c.get("message", "")), str(c.get("definition", "")), str(c.get("method", "")),
                  str((c.get("statistic") or {}).get("method", ""))]
        parts += [column_label(col) for t in (c.get("tables") or {}).values() for col in t.get("columns", [])]
    return glossary_for("\n".join(parts))


def _sources(result: dict) -> list[tuple[str, str]]:
    """The papers the report's text cites (short names in the text; authors and title listed)."""
    parts = []
    for c in result.get("checks", []):
        parts += [str(c.get(k, "")) for k in ("title", "message", "definition", "method")]
        parts += [str(f.get(k, "")) for f in c.get("figures") or [] if isinstance(f, dict) for k in ("title", "caption")]
    return sources_cited("\n".join(parts))


def observations(result: dict) -> str:
    """What a result's checks observed: "logged records" for an audit of a log, else
    "draws" (the report template's ``obs``)."""
    return "logged records" if (result.get("target") or {}).get("decisions") else "draws"


def render_html(result: dict, template: str = "report.html.j2") -> str:
    """HTML text of a result dict (as written to JSON)."""
    checks = ordered_checks(result.get("checks", []))
    counts = {v: sum(1 for c in checks if c.get("verdict") == v) for v in VERDICT_ORDER}
    confidence = float((result.get("config") or {}).get("confidence", 0.95))
    obs = observations(result)
    headlines = {c.get("id"): headline(c, confidence, obs) for c in checks}
    return _env().get_template(template).render(r=result, checks=checks, counts=counts, headlines=headlines,
                                                glossary=_glossary(result), sources=_sources(result))


def write_html(result: dict, path) -> None:
    """The report, written atomically (:func:`fairaudit.outputs.write_text`)."""
    from .outputs import write_text
    write_text(path, render_html(result))
