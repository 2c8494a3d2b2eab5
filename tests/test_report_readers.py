"""The report for its readers (issue 19): fail and error first, skipped folded; a
plain headline per check whose figures are the statistic's; human column names in every
rendered table (ids stay in the JSON); a glossary; citations by author and title."""
import html
import math
import json
import re
from pathlib import Path


from fairaudit.headline import headline
from fairaudit.labels import SOURCES, cite, column_label
from fairaudit.report import render_html
from fairaudit.text import fmt_number as _fmt
from fairaudit.result import decide

ROOT = Path(__file__).resolve().parents[1]
ID_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)+")


def _check(cid, verdict, est=0.5, ci=(0.4, 0.6), tol=0.3, violation="above", message="Finding text here. More."):
    return {"id": cid, "title": cid.title(), "verdict": verdict, "message": message, "draws": 100,
            "statistic": {"name": "max_chance_difference", "estimate": est, "ci": list(ci), "tolerance": tol,
                          "method": "m", "violation": violation},
            "tables": {"t": {"columns": ["ir_lo", "in_verdict", "sex"], "rows": [[0.1, True, "F"]]}},
            "figures": [], "evidence": {}, "params": {}, "definition": "d (seed 002 Def 2)"}


def _result(checks):
    return {"schema_version": 2, "target": {"path": "a.py", "kind": "selection"}, "config": {"confidence": 0.95, "seed": 0},
            "checks": checks, "warnings": [], "data": {"path": "p.csv", "n": 3, "groups": ["sex"]},
            "command": "fairaudit check a.py", "tool_version": "x", "created": "2026-01-01T00:00:00Z"}


def _summary_ids(page: str) -> list[str]:
    summary = page.split('<table class="summary">', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr class="row-(\w+)">', summary)


def test_summary_puts_fail_and_error_first_and_folds_skipped():
    checks = [_check("a", "pass", est=0.1, ci=(0, 0.2)), _check("b", "skipped"), _check("c", "fail", ci=(0.4, 0.6)),
              _check("d", "inconclusive", ci=(0.2, 0.6)), _check("e", "error")]
    page = render_html(_result(checks))
    assert _summary_ids(page) == ["fail", "error", "inconclusive", "pass"]
    folded = page.split('<details class="skipped"', 1)[1].split("</details>", 1)[0]
    assert "1 check skipped" in folded and 'href="#check-b"' in folded
    # the sections follow the same order, the skipped one inside a closed <details>
    order = re.findall(r'<section class="check" id="check-(\w)">', page)
    assert order == ["c", "e", "d", "a", "b"]
    assert re.search(r'<details class="skipped-sections">\s*<summary>[^<]*</summary>\s*<section class="check" id="check-b"', page)


def rendered_headers(page: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", h)) for h in re.findall(r"<th[^>]*>(.*?)</th>", page, re.S)]


def assert_readable(d: dict, page: str) -> None:
    """What the issue asks of a rendered report, on any result: no result ids as table
    headers (a data file's own column names excepted), a headline per check whose
    figures are its statistic's, no "seed 00N" citations."""
    own = set((d.get("data") or {}).get("groups") or [])
    bad = [h for h in rendered_headers(page) if ID_LIKE.fullmatch(h) and h not in own]
    assert not bad, f"ids shown as table headers: {sorted(set(bad))}"
    ours = re.sub(r'<blockquote class="doc".*?</blockquote>', "", page, flags=re.S)   # the allocator's docstring is its own
    assert not re.search(r"\bseed 00\d", ours), re.search(r".{60}\bseed 00\d.{20}", ours).group()
    conf = float(d["config"]["confidence"])
    from fairaudit.report import observations
    for c in d["checks"]:
        h = headline(c, conf, observations(d))
        assert html.escape(h, quote=False) in page or h in html.unescape(page), (c["id"], h)
        assert_headline_agrees(c, h)


def assert_headline_agrees(c: dict, h: str) -> None:
    s = c.get("statistic")
    if c["verdict"] in ("skipped", "error") or not s or s.get("estimate") is None or s.get("tolerance") is None:
        return
    from fairaudit.headline import PERCENT
    pct = s["name"] in PERCENT
    f = (lambda x: f"{x * 100:.1f}%") if pct else (lambda x: "∞" if x is None else _fmt(x))
    lo, hi = s["ci"]
    assert f(s["estimate"]) in h, (h, s)
    own = decide((float("-inf") if lo is None else lo, float("inf") if hi is None else hi), s["tolerance"], s["violation"])
    below = s["violation"] == "below"
    if own == "fail":
        assert (f"at most {f(hi)}" if below else f"at least {f(lo)}") in h and (" below " if below else " above ") in h
    elif own == "pass":
        assert (f"at least {f(lo)}" if below else f"at most {f(hi)}") in h
        assert (" above " if below else " within ") in h
    else:
        assert f"{f(lo)} to {f(hi)}" in h and "too close" in h
    if own != c["verdict"]:
        assert f"verdict, {c['verdict']}, comes from another part" in h


def test_synthetic_report_is_readable_and_keeps_ids_in_the_json():
    d = _result([_check("c", "fail"), _check("a", "pass", est=0.1, ci=(0, 0.2)), _check("d", "inconclusive", ci=(0.2, 0.6))])
    page = render_html(d)
    assert_readable(d, page)
    assert "lower bound" in rendered_headers(page)[-3] or "impact ratio (lower)" in rendered_headers(page)
    assert "counts in the verdict" in rendered_headers(page) and "sex" in rendered_headers(page)
    assert d["checks"][0]["tables"]["t"]["columns"] == ["ir_lo", "in_verdict", "sex"]     # ids kept in the result
    assert "Devic, Korolova, Kempe and Sharan, “Stability and Multigroup Fairness" in html.unescape(page)


def test_headline_figures_follow_the_statistic_on_every_verdict():
    for verdict, ci, violation in [("fail", (0.4, 0.6), "above"), ("pass", (0.0, 0.2), "above"),
                                   ("inconclusive", (0.2, 0.6), "above"), ("fail", (0.1, 0.25), "below"),
                                   ("pass", (0.35, 0.9), "below"), ("fail", (0.0, 0.2), "above")]:
        c = _check("x", verdict, est=sum(ci) / 2, ci=ci, violation=violation)
        assert_headline_agrees(c, headline(c))
    # a check failed by another component: its statistic's own reading, and the verdict's source
    c = _check("x", "fail", est=0.1, ci=(0.0, 0.2), message="A reversal between claims 0.2 and 0.3. Details.")
    h = headline(c)
    assert "at most 0.200" in h and "within" in h and "comes from another part: A reversal between claims 0.2 and 0.3." in h


def test_glossary_lists_the_symbols_the_text_uses():
    c = _check("x", "fail", message="changing the inputs by ‖ΔP‖₁ = 0.1 moves a chance; BF.1 holds")
    page = render_html(_result([c]))
    gloss = page.split('<section id="glossary">', 1)[1].split("</section>", 1)[0]
    assert "‖ΔP‖₁" in gloss and "BF.1" in gloss and "ε̂" not in gloss


def test_citations_name_authors_and_titles():
    assert cite("cannot be anonymous, seed 002 Prop 7") == (
        "cannot be anonymous, Devic, Korolova, Kempe and Sharan, “Stability and Multigroup Fairness in Ranking "
        "with Uncertain Predictions” Prop 7")
    assert cite("(seed 004 §2)", short=True) == "(Kearns, Roth and Wu, §2)"
    assert cite("seed 002 Prop 7", short=True) == "Devic et al., Prop 7"
    assert set(SOURCES) == {"000", "001", "002", "003", "004"}


def test_every_column_id_in_the_committed_results_has_a_label():
    for name in ("baseline.json", "flattened_current.json"):
        d = json.loads((ROOT / "examples" / "ci" / name).read_text())
        assert_readable(d, render_html(d))
        for c in d["checks"]:
            for t in c["tables"].values():
                for col in t["columns"]:
                    assert not ID_LIKE.fullmatch(column_label(col)), col


def _group_table():
    cols = ["attribute", "category", "n", "rate", "rate_lo", "rate_hi", "impact_ratio", "ir_lo", "ir_hi",
            "reference", "verdict"]
    rows = [["sex", "F", 103, 0.058, 0.049, 0.1, 0.404, 0.271, 0.733, "M", "fail"],
            ["sex", "M", 97, 0.144, 0.136, 0.182, 1.0, 0.746, 1.0, "M", "inconclusive"],
            ["age_band", "under_40", 120, 0.117, 0.108, 0.155, 1.0, 0.85, 1.0, "under_40", "pass"],
            ["age_band", "40_plus", 2, 0.1, 0.0, 0.9, 0.9, 0.0, 1.0, "under_40", "not judged (too small)"]]
    return {"columns": cols, "rows": rows}


def test_per_group_table_is_coloured_by_verdict_and_names_the_reference_group():
    c = _check("selection_rates", "fail")
    c["tables"] = {"groups": _group_table()}
    page = render_html(_result([c]))
    table = page.split('<table class="data by-verdict">', 1)[1].split("</table>", 1)[0]
    assert re.findall(r'<tr class="(row-\w+)">', table) == ["row-fail", "row-inconclusive", "row-pass", "row-other"]
    heads = rendered_headers("<table>" + table)
    # the verdict first (it is what a reviewer reads), an estimate and its bounds as one column
    assert heads[0] == "verdict" and "impact ratio [interval]" in heads and "selection rate [interval]" in heads
    assert not any("(lower)" in h or "(upper)" in h for h in heads) and "reference group" in heads
    assert '<span class="verdict v-fail">fail</span>' in table and "0.404 <small>[0.271, 0.733]</small>" in table
    key = " ".join(html.unescape(re.sub(r"<[^>]+>", "", page.split('class="note table-key">', 1)[1]
                                        .split("</p>", 1)[0])).split())
    assert "reference group of its attribute" in key and "sex = M" in key and "age_band = under_40" in key
    assert key.count(" = ") == 2
    # the JSON's table is unchanged
    assert c["tables"]["groups"]["columns"][-2:] == ["reference", "verdict"]


def test_selection_rates_row_verdicts_agree_with_the_check():
    """Each group's verdict is its own impact-ratio interval against the threshold; the
    check fails iff a judged group fails, passes iff all pass; the reference group is the
    most-selected group of its attribute."""
    import fairaudit as fa
    pop = ROOT / "examples" / "data" / "population.csv"
    for allocator, expected in (("top_k.py", "fail"), ("broome_lottery.py", None)):
        r = fa.audit(str(ROOT / "examples" / "allocators" / allocator), data=str(pop), checks=["selection_rates"],
                     draws=256).checks[0]
        t = r.tables["groups"]
        judged = t[t["in_verdict"]]
        for row in judged.itertuples():
            assert row.verdict == decide((row.ir_lo, row.ir_hi), 0.8, "below")
        for attr, g in t.groupby("attribute"):
            assert set(g["reference"]) == {g.loc[g["rate"].idxmax(), "category"]}
        v = set(judged["verdict"])
        assert r.verdict == ("fail" if "fail" in v else "pass" if v == {"pass"} else "inconclusive")
        if expected:
            assert r.verdict == expected


NUM = r"[−+-]?(?:\d+(?:\.\d+)?%?|∞)"
TRIPLE = re.compile(rf"({NUM})(?:,? interval)? \[({NUM}), ({NUM})\]")


def _num(text: str) -> tuple[float, int]:
    """A printed number and its decimals (percentages as shares)."""
    t = text.replace("−", "-").replace("+", "")
    if t.lstrip("-") == "∞":
        return (float("-inf") if t.startswith("-") else float("inf")), 0
    pct = t.endswith("%")
    t = t.rstrip("%")
    d = len(t.split(".")[1]) if "." in t else 0
    return (float(t) / 100 if pct else float(t)), d + (2 if pct else 0)


def _same(printed: str, value) -> bool:
    x, d = _num(printed)
    v = float("inf") if value is None else float(value)
    if math.isinf(x) or math.isinf(v):
        return x == v
    return abs(x - v) <= 0.5 * 10 ** -d + 1e-9


def finding_conflicts(c: dict) -> list[str]:
    """Intervals in a check's finding that read as its statistic but are not: a quoted
    "estimate [lo, hi]" sharing a figure with the statistic (its estimate or a bound) must
    be the statistic's own, unless the finding quotes the statistic's own too (then both
    are there, each said of what it is). The headline's figures are the statistic's
    (assert_headline_agrees), so this is what keeps headline and finding from disagreeing."""
    s = c.get("statistic")
    if c.get("verdict") in ("skipped", "error") or not s or s.get("estimate") is None or not s.get("ci"):
        return []
    est, (lo, hi) = s["estimate"], s["ci"]
    triples = TRIPLE.findall(str(c.get("message", "")))
    own = [t for t in triples if _same(t[0], est) and _same(t[1], lo) and _same(t[2], hi)]
    # a figure printed to two or more decimals reads as the statistic's; "0" and "1" (a chance's
    # ends, printed bare) are too common to say so
    reads = (lambda printed, v: _num(printed)[1] >= 2 and _same(printed, v))
    bad = [t for t in triples if (reads(t[0], est) or reads(t[1], lo) or reads(t[2], hi)) and t not in own]
    return [] if own or not bad else [f"{c['id']}: finding quotes {b[0]} [{b[1]}, {b[2]}] but the statistic "
                                      f"{s['name']} is {est} {lo, hi}" for b in bad]


def test_finding_conflict_rule_catches_the_broome_case():
    c = _check("broome", "pass", est=0.9197, ci=(0.2804, 1.0639), tol=0.1, violation="below",
               message="the stronger gets at least 0.28 of the Broome lottery's extra chance — least certainly "
                       "between claims ≈0.514 and ≈0.586 (ratio 0.98 [0.28, 1.69]); no reversal.")
    assert finding_conflicts(c)
    c["message"] = c["message"].replace("(ratio", "(smallest gain ratio over all bin pairs 0.920, interval "
                                                  "[0.280, 1.064]; that pair's own ratio")
    assert finding_conflicts(c) == []


def test_headline_and_finding_agree_on_audited_checks():
    """On real results: the committed ones and a fresh broome/anonymity/selection_rates run
    on the Broome lottery (the summary once said 0.920 [0.280, 1.064] where the finding said
    0.98 [0.28, 1.69]). tests/test_readme.py applies the same to every check the README runs."""
    import fairaudit as fa
    results = [json.loads((ROOT / "examples" / "ci" / n).read_text()) for n in ("baseline.json", "flattened_current.json")]
    r = fa.audit(str(ROOT / "examples" / "allocators" / "broome_lottery.py"), data=str(ROOT / "examples" / "data" /
                 "population.csv"), checks=["broome", "anonymity", "selection_rates"], draws=1024)
    from fairaudit.result import loads
    results.append(loads(r.to_json()))
    seen = set()
    for j, d in enumerate(results):
        for c in d["checks"]:
            h = headline(c, float(d["config"]["confidence"]))
            assert_headline_agrees(c, h)
            assert not finding_conflicts(c), finding_conflicts(c)
            seen.add(c["id"])
    assert {"broome", "anonymity", "selection_rates"} <= seen


def test_bounds_are_merged_only_into_their_own_estimate():
    from fairaudit.report import _bounds_of
    assert _bounds_of("impact ratio", "impact ratio (lower)", "impact ratio (upper)")
    assert _bounds_of("mean regret", "regret (lower)", "regret (upper)")
    assert _bounds_of("largest difference", "|difference| (lower)", "|difference| (upper)")
    assert not _bounds_of("share", "impact ratio (lower)", "impact ratio (upper)")
    assert not _bounds_of("regret", "regret (lower)", "gap (upper)")
    assert not _bounds_of("mean regret", "lower bound", "upper bound")


def test_an_inconclusive_log_result_asks_for_more_records_not_draws():
    """A log gets no more draws: its inconclusive message, headline and report do not
    tell the reader to rerun with --draws (the same-pool Broome log reads its events as
    draws, so it used to)."""
    import fairaudit as fa
    from fairaudit.report import observations
    from test_log_engines import same_pool_log
    d = json.loads(fa.audit(log=same_pool_log(), checks=["broome"], seed=3).to_json())
    c = d["checks"][0]
    assert c["verdict"] == "inconclusive", c["message"]
    assert "--draws" not in c["message"] and "logged records might decide" in c["message"]
    assert observations(d) == "logged records"
    assert headline(c, 0.95, observations(d)).endswith("more logged records would decide.")
    page = render_html(d)
    assert "more draws would decide" not in page and "rerun with --draws" not in page
