"""How results show in a notebook: the HTML of :meth:`AuditResult._repr_html_` and
:meth:`CheckResult._repr_html_`.

The summary table of the HTML report (verdict, check, statistic, estimate, interval,
tolerance, draws; failing checks first) and each check's headline sentence, styled with
the report's verdict colours. The styles are scoped to a ``div.fairaudit`` so they do not
restyle the notebook, and there is no script (notebook viewers strip it; the output
must read the same on GitHub and in nbviewer). Every value that could come from the
user is escaped.

Importing this module installs it as the results' presenter
(:data:`fairaudit.result.PRESENTERS`); the engine and ``fairaudit.AuditResult`` import it.
"""
from __future__ import annotations

import html

from .headline import headline
from .labels import statistic_label
from .report import write_html
from .result import PRESENTERS, target_name
from .result import _num as _result_num
from .text import inert

#: the report's verdict colours (report_templates/report.css), scoped to div.fairaudit
STYLE = """<style>
div.fairaudit table { border-collapse: collapse; font-size: 0.9em; margin: 0.3em 0; }
div.fairaudit th, div.fairaudit td { border-bottom: 1px solid #e3e3e3; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
div.fairaudit th { background: #fafafa; }
div.fairaudit td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
div.fairaudit .verdict { display: inline-block; padding: 0.05em 0.55em; border-radius: 0.8em; font-size: 0.85em; font-weight: 600; text-transform: uppercase; }
div.fairaudit .v-pass { background: #d8f0dc; color: #1b5e20; }
div.fairaudit .v-fail { background: #fbd5d5; color: #9b1c1c; }
div.fairaudit .v-error { background: #fde2c4; color: #8a3b00; }
div.fairaudit .v-inconclusive { background: #fff3c4; color: #6b5300; }
div.fairaudit .v-skipped { background: #e6e6e6; color: #444; }
div.fairaudit p.sub { color: #555; margin: 0.2em 0; }
div.fairaudit ul.headlines { margin: 0.3em 0; padding-left: 1.2em; }
</style>"""

ORDER = ("fail", "error", "inconclusive", "pass", "skipped")


def _e(text, limit: int = 300) -> str:
    return html.escape(inert(str(text), limit))


def _num(x) -> str:
    return _result_num(x)


def result_html(checks, audit=None) -> str:
    """HTML for ``checks`` (CheckResults), with the audit's target and tally when
    ``audit`` (an AuditResult) is given."""
    config = getattr(audit, "config", None) or {}
    confidence = float(config.get("confidence", 0.95))
    target = getattr(audit, "target", None) or {}
    obs = "logged records" if target.get("decisions") else "draws"
    rank = {v: i for i, v in enumerate(ORDER)}
    ordered = sorted(checks, key=lambda c: rank.get(c.verdict, len(rank)))
    out = ['<div class="fairaudit">', STYLE]
    if audit is not None:
        verdicts = [c.verdict for c in checks]
        tally = " · ".join(f"{verdicts.count(v)} {v}" for v in ORDER if verdicts.count(v)) or "no checks"
        name = target_name(target)
        kind = f" ({_e(target['kind'], 40)})" if target.get("kind") else ""
        out.append(f'<p class="sub"><b>fairaudit</b> · <code>{_e(name)}</code>{kind} · {tally} · '
                   f'{confidence * 100:g}% confidence · seed {_e(config.get("seed", 0), 40)}</p>')
    out.append("<table><thead><tr><th>verdict</th><th>check</th><th>statistic</th><th>estimate</th>"
               "<th>interval</th><th>tolerance</th><th>draws</th></tr></thead><tbody>")
    for c in ordered:
        s = c.statistic
        cells = [f'<span class="verdict v-{_e(c.verdict, 20)}">{_e(c.verdict, 20)}</span>',
                 f"{_e(c.title, 120)} <code>{_e(c.id, 60)}</code>"]
        nums = ["—", "—", "—"]
        if s is not None:
            cells.append(_e(statistic_label(s.name), 120))
            nums = [_num(s.estimate), f"[{_num(s.ci[0])}, {_num(s.ci[1])}]",
                    "—" if s.tolerance is None else _num(s.tolerance)]
        else:
            cells.append("—")
        row = "".join(f"<td>{x}</td>" for x in cells)
        row += "".join(f'<td class="num">{x}</td>' for x in nums + [f"{int(c.draws):,}"])
        out.append(f"<tr>{row}</tr>")
    out.append("</tbody></table><ul class=\"headlines\">")
    for c in ordered:
        out.append(f"<li><b>{_e(c.id, 60)}</b>: {_e(headline(c.to_dict(), confidence, obs), 600)}</li>")
    out.append("</ul>")
    if audit is not None:
        out.append('<p class="sub">The full report: <code>result.write_html("report.html")</code>; the table: '
                   "<code>result.to_frame()</code>.</p>")
    out.append("</div>")
    return "\n".join(out)


PRESENTERS.update(html=result_html, report=write_html)
