"""Words checked by tests (issue 31, item 4): every message template of every check, rendered
on real results, reads as words a reviewer can use.

Each check is run (in-process, with small budgets) on bundled examples that make it pass,
fail or stay inconclusive; :meth:`Check.judged` is wrapped to record the sentences it is
given for *every* verdict, not only the one that was reached, so a template that is never
the verdict here is still rendered on real numbers. On each check's texts — the templates,
the final message (for a check that words its verdict itself rather than through
``judged``, the sentence it chose), the headline, title, summary, definition, method, figure titles and
captions, table titles, the counterexample in words — and on the rendered HTML report:

- no citation by the seeds' file names ("seed 002 Prop 7" reads like ``--seed``);
- no internal id (a table id such as ``partial_broome`` or ``bins_0``, a column or
  statistic id) where a reader expects words;
- no empty parameter value (``protected=``);
- one interval per figure: the same figure is never given two different intervals in one
  finding ([0.816, 1.000] and [0.815, 1.000] for the same minimum).

The detectors have positive controls (``test_detectors_catch_*``) so that a detector that
silently stopped matching would fail here too.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"

SEED_NAME = re.compile(r"\bseeds? 00\d\b")
EMPTY_PARAM = re.compile(r"(?<![\w.-])([a-z][a-z0-9_]*)=(?=\s*(?:[,;)]|\.(?:\s|$)|$))", re.M)
# a figure followed by its interval: "0.816, interval [0.815, 1.000]", "0.92 [0.46, 1.49]"
FIGURE_INTERVAL = re.compile(r"(?<![\w.\[])(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)(?:,? interval| \(interval)? "
                             r"\[(-?[\d.e+-]+|−?∞), (-?[\d.e+-]+|∞)\]")


def seed_names(text: str) -> list[str]:
    return [m.group() for m in SEED_NAME.finditer(text)]


def empty_params(text: str) -> list[str]:
    return [m.group(1) + "=" for m in EMPTY_PARAM.finditer(text)]


def internal_ids(text: str, ids: set[str]) -> list[str]:
    return sorted(i for i in ids if re.search(rf"(?<![\w.]){re.escape(i)}(?![\w])", text))


def figures_with_two_intervals(text: str) -> dict[str, set[tuple[str, str]]]:
    """Figures (as printed) given more than one different interval in ``text``."""
    seen: dict[str, set[tuple[str, str]]] = {}
    for m in FIGURE_INTERVAL.finditer(text):
        fig = m.group(1)
        if fig in (m.group(2), m.group(3)) and fig in ("0", "1", "0.000", "1.000"):
            continue        # a bound written as an estimate ("0.000 [0.000, 0.021]") is not a figure of the finding
        seen.setdefault(fig, set()).add((m.group(2), m.group(3)))
    return {f: iv for f, iv in seen.items() if len(iv) > 1}


# -- positive controls: each detector catches what the issue quotes -----------------------------

def test_detectors_catch_seed_names():
    assert seed_names("cannot be anonymous (seed 002 Prop 7)") == ["seed 002"]
    assert seed_names("Devic et al., Prop 7; --seed 2") == []


def test_detectors_catch_empty_parameter_values():
    assert empty_params("parameters: tau=0.05, protected=, n=8.") == ["protected="]
    assert empty_params("parameters: models=.") == ["models="]
    assert empty_params("tau=0.05, scale=1") == []


def test_detectors_catch_internal_ids():
    assert internal_ids("Table: partial_broome (1 row); bins_0", {"partial_broome", "bins_0", "utility"}) == \
        ["bins_0", "partial_broome"]
    assert internal_ids("the partial-lottery reading", {"partial_broome"}) == []


def test_detectors_catch_two_intervals_for_one_figure():
    quoted = ("the lowest is sex = F (impact ratio 0.816, interval [0.816, 1.000]); the smallest impact ratio over "
              "all groups is 0.816, interval [0.815, 1.000]")
    assert figures_with_two_intervals(quoted) == {"0.816": {("0.816", "1.000"), ("0.815", "1.000")}}
    assert figures_with_two_intervals("ratio 0.98 [0.46, 1.49]; smallest 0.920, interval [0.456, 1.041]") == {}


# -- every check's words on real results ---------------------------------------------------------

#: (scenario, target, data, checks, params): together every registered check, with verdicts
#: pass, fail and inconclusive among them; budgets small so that each runs in seconds
SCENARIOS = [
    ("selection-fail", "allocators/top_k.py", "data/population.csv",
     ["selection_rates", "anonymity", "determinism", "broome", "tv_stability", "obliviousness", "systemic_exclusion"],
     {"tv_stability": {"probes": 4, "search_examples": 20}, "anonymity": {"search_examples": 20}}),
    ("selection-pass", "allocators/broome_lottery.py", "data/population.csv",
     ["selection_rates", "anonymity", "broome", "determinism"], {"anonymity": {"search_examples": 20}}),
    ("ranking", "allocators/prp_ranking.py", None, ["tv_stability", "ua_conformance", "determinism"],
     {"tv_stability": {"probes": 4, "search_examples": 20}}),
    ("multiaccuracy", "allocators/ua_ranking.py", "data/multiaccuracy_population.csv", ["multiaccuracy"], {}),
    ("cross-population", "allocators/greedy_cdf.py", None, ["ex_interim", "ex_post", "ex_ante"],
     {"ex_interim": {"pools": 8}, "ex_post": {"pools": 40, "draws": 50}, "ex_ante": {"pools": 300}}),
    ("assignment", "allocators/greedy_assign.py", None, ["min_requirement"],
     {"min_requirement": {"T": 60, "years": 8, "seeds": 1, "scenarios": "iid,unequal", "trend_years": 4}}),
    ("decision-rule", "models/credit_models.py:pipeline", "models/credit.csv",
     ["error_rate_parity", "anonymity", "tv_stability", "selection_rates"], {"tv_stability": {"probes": 4}}),
    ("log", "logs/selection_log.csv", None, ["selection_rates", "anonymity", "broome"], {}),
    ("multiplicity", "allocators/top_k.py", "data/healthcare.csv", ["multiplicity"],
     {"multiplicity": {"max_draws": 256, "min_draws": 128, "reference_draws": 256}}),
    ("ranking-groups", "allocators/prp_ranking.py", "data/multiaccuracy_population.csv",
     ["exposure", "ranked_representation"], {}),
]


def test_the_scenarios_run_every_registered_check():
    from fairaudit.check import discover
    assert set(discover()) <= {c for s in SCENARIOS for c in s[3]}, "a check no scenario runs"


def _run(scenario, target, data, checks, params, monkeypatch):
    """The audit's result dict and, per check id, every message template it was given."""
    import fairaudit
    from fairaudit.check import Check
    templates: dict[str, list[str]] = {}
    judged = Check.judged

    def recording(self, statistic, messages, draws, **kw):
        templates.setdefault(self.id, []).extend(str(m) for m in messages.values())
        return judged(self, statistic, messages, draws, **kw)

    result = Check.result

    def recording_result(self, verdict, message, **kw):       # checks that word their verdict themselves
        templates.setdefault(self.id, []).append(str(message))
        return result(self, verdict, message, **kw)

    monkeypatch.setattr(Check, "judged", recording)
    monkeypatch.setattr(Check, "result", recording_result)
    kw = {"k": 250} if scenario == "multiplicity" else {}
    res = fairaudit.audit(str(EX / target), checks=checks, data=str(EX / data) if data else None, in_process=True,
                          draws=256, params=params, **kw)
    return res.to_dict(), templates


def _internal_ids(check: dict, data_words: set[str]) -> set[str]:
    """The ids of a check's result a reader should never see in prose: its table ids and
    column ids, its statistic and component ids (those with an underscore or a digit suffix;
    a data file's own column names and values are the user's words and excluded)."""
    ids = set(check.get("tables") or {})
    for t in (check.get("tables") or {}).values():
        ids |= {str(c) for c in t.get("columns") or []}
    if check.get("statistic"):
        ids.add(check["statistic"]["name"])
    ids |= {str(k).split("/")[-1] for k in (check.get("components") or {})}
    return {i for i in ids if re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+|[A-Za-z]+_?\d+", i)
            and i not in data_words}


def _data_words(d: dict) -> set[str]:
    import pandas as pd
    words: set[str] = set()
    path = (d.get("data") or {}).get("path") or (d.get("target") or {}).get("path")
    if path and str(path).endswith(".csv"):
        df = pd.read_csv(path, nrows=2000)
        words |= set(map(str, df.columns))
        for c in df.columns:
            if df[c].dtype == object:
                words |= set(map(str, df[c].dropna().unique()[:200]))
    return words


def _texts(check: dict, templates: list[str], d: dict) -> dict[str, str]:
    from fairaudit.counterexamples import counterexample_table
    from fairaudit.headline import headline
    from fairaudit.labels import table_title
    from fairaudit.report import observations
    from fairaudit.check import discover
    cls = discover()[check["id"]]
    out = {f"template {i}": t for i, t in enumerate(templates)}
    out.update({"message": check.get("message", ""), "headline": headline(check, 0.95, observations(d)),
                "title": check.get("title", ""), "summary": cls.summary, "definition": check.get("definition", ""),
                "method": str(check.get("method") or (check.get("statistic") or {}).get("method") or "")})
    for i, f in enumerate(check.get("figures") or []):
        out[f"figure {i} title"] = str(f.get("title", ""))
        out[f"figure {i} caption"] = str(f.get("caption", ""))
    for name in check.get("tables") or {}:
        out[f"table {name} title"] = table_title(check["id"], name)
    cx = counterexample_table((check.get("evidence") or {}).get("counterexample"))
    if cx:
        out["counterexample"] = " ".join([cx["caption"], *cx["columns"], *(str(v) for r in cx["rows"] for v in r)])
    for k, p in cls.params.items():
        out[f"param {k}"] = str(p.help) if hasattr(p, "help") else ""
    return out


@pytest.mark.slow      # runs every check on real examples (about a minute in all)
@pytest.mark.parametrize("scenario, target, data, checks, params", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_every_message_template_reads_as_words(scenario, target, data, checks, params, monkeypatch):
    from fairaudit.report import render_html
    d, templates = _run(scenario, target, data, checks, params, monkeypatch)
    data_words = _data_words(d)
    problems = []
    for c in d["checks"]:
        if c["verdict"] == "skipped":
            problems.append(f"{c['id']}: skipped ({c['message'][:120]}): the scenario does not exercise it")
            continue
        ids = _internal_ids(c, data_words)
        for where, text in _texts(c, templates.get(c["id"], []), d).items():
            for s in seed_names(text):
                problems.append(f"{c['id']} {where}: cites by seed file name {s!r}: {text[:160]!r}")
            for p in empty_params(text):
                problems.append(f"{c['id']} {where}: empty parameter value {p!r}: {text[:160]!r}")
            if where not in ("method",) and not where.startswith("param"):
                for i in internal_ids(text, ids):
                    problems.append(f"{c['id']} {where}: internal id {i!r}: {text[:200]!r}")
            for fig, ivs in figures_with_two_intervals(text).items():
                problems.append(f"{c['id']} {where}: figure {fig} given {len(ivs)} intervals {sorted(ivs)}")
    page = render_html(d)
    visible = re.sub(r"<[^>]+>", " ", re.sub(r'<blockquote class="doc".*?</blockquote>|<pre>.*?</pre>|<code[^>]*>.*?</code>',
                                            " ", page, flags=re.S))
    problems += [f"report: seed file name {s!r}" for s in seed_names(visible)]
    problems += [f"report: empty parameter {p!r}" for p in empty_params(visible)]
    titles = [re.sub(r"<[^>]+>", "", t) for t in re.findall(r'<span class="table-title">(.*?)</span>', page, re.S)]
    assert len(titles) == sum(len(c.get("tables") or {}) for c in d["checks"])
    every = set().union(*(_internal_ids(c, data_words) | set(c.get("tables") or {}) for c in d["checks"]))
    problems += [f"report: table titled by an id: {t!r}" for t in titles if t.strip() in every]
    headers = {re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", page, re.S)}
    problems += [f"report: column titled by an id: {h!r}" for h in sorted(headers)
                 if re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+", h) and h not in data_words]
    assert not problems, "\n".join(problems)
    # the sentences were recorded: every check left its templates (or its own worded message)
    assert [c["id"] for c in d["checks"] if c["id"] not in templates] == [], "the recording wrappers saw nothing"


# -- the sentences the issue quotes, each on a real result ---------------------------------------

def test_determinism_says_identical_on_every_draw_for_a_deterministic_rule():
    """top_k is deterministic: the check fails (the property audited is randomisation) and its
    sentences say why in those words, not "Largest variation is 0.000 … below the tolerance"."""
    import fairaudit
    from fairaudit.headline import headline
    c = fairaudit.audit(str(EX / "allocators" / "top_k.py"), checks=["determinism"], in_process=True).to_dict()["checks"][0]
    assert c["verdict"] == "fail" and c["statistic"]["estimate"] == 0
    h = headline(c)
    assert h.startswith("The outcome is identical on every draw") and "below the required share 0.010" in h, h
    assert "identical on every draw" in c["message"] and "Largest variation" not in h


def test_threshold_is_named_by_its_value_and_the_minimum_has_one_interval():
    """--param selection_rates.threshold=0.9: no "four-fifths line (0.900)"; the smallest impact
    ratio is given one interval in the finding."""
    import fairaudit
    from fairaudit.headline import headline
    out = {}
    for t in (0.8, 0.9):
        c = fairaudit.audit(str(EX / "allocators" / "broome_lottery.py"), checks=["selection_rates"], in_process=True,
                            data=str(EX / "data" / "population.csv"), draws=256,
                            params={"selection_rates": {"threshold": t}}).to_dict()["checks"][0]
        out[t] = (headline(c), c["message"])
        assert figures_with_two_intervals(c["message"]) == {}, c["message"]
        s = c["statistic"]
        assert f"[{s['ci'][0]:.3f}, {s['ci'][1]:.3f}]" in c["message"], c["message"]
    assert "the four-fifths line (0.800)" in out[0.8][0]
    assert "four-fifths" not in out[0.9][0] and "the impact-ratio threshold (0.900)" in out[0.9][0], out[0.9][0]


def test_terminal_wraps_a_long_finding_instead_of_cutting_it(monkeypatch, capsys):
    """A 1,200-character finding reads whole on an 90-column terminal, wrapped at words, each
    continuation line indented under the verdict column."""
    from fairaudit.cli import MESSAGE_INDENT, _print_summary
    monkeypatch.setenv("COLUMNS", "90")
    words = [f"word{i}" for i in range(200)]
    c = {"id": "broome", "title": "B", "verdict": "pass", "message": " ".join(words) + ".", "draws": 1,
         "statistic": None, "tables": {}, "figures": [], "evidence": {}}
    _print_summary({"config": {"confidence": 0.95}, "checks": [c], "target": {}}, None, None)
    out = capsys.readouterr().out
    assert "characters; first" not in out and "word199." in out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 90, max(lines, key=len)
    body = [line for line in lines if "word" in line]
    assert len(body) > 5 and all(line.startswith(MESSAGE_INDENT) for line in body)
    assert " ".join(" ".join(body).split()).endswith(" ".join(words[-50:]) + ".")      # nothing lost, in order
