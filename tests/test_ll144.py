"""The complete LL144 table (issue 28): scoring rates on a log with scores (the share of each
category above the median score of all rows) and their impact ratios; individuals of
unknown category (a missing group value) counted and kept out of every ratio, never
dropped; categories under 2% listed but not in a ratio; sex × race intersections by
default; ``--export-ll144`` writes the DCWP-layout CSV with the audit's date, data source
and size."""
import csv

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import fairaudit as fa
from fairaudit.cli import main


def score_log(n=800, seed=0):
    rng = np.random.default_rng(seed)
    f = pd.DataFrame({"decision_id": np.arange(n) // 10, "score": rng.random(n).round(3),
                      "sex": rng.choice(["F", "M", None], n, p=[.45, .5, .05]),
                      "race": rng.choice(["White", "Black", "Asian", "Other"], n, p=[.5, .3, .19, .01])})
    f.loc[f["sex"] == "F", "score"] = (f.loc[f["sex"] == "F", "score"] * 0.8).round(3)
    f["selected"] = (f["score"] > 0.5).astype(int)
    return f


def test_scoring_rates_and_unknown_count_equal_the_rows():
    f = score_log()
    res = fa.audit(log=f, checks=["selection_rates"], seed=0).checks[0]
    med = float(np.median(f["score"]))
    assert res.evidence["scoring"]["median_score"] == pytest.approx(med, abs=0)
    sc = res.tables["scoring"]
    sex = f["sex"].fillna("(unknown)")
    for cat in ("F", "M", "(unknown)"):
        row = sc[(sc["attribute"] == "sex") & (sc["category"] == cat)].iloc[0]
        want = (f.loc[sex == cat, "score"] > med).mean()
        assert row["scoring_rate"] == pytest.approx(want, rel=1e-12)
        assert row["scoring_rate_lo"] <= want <= row["scoring_rate_hi"]
    # impact ratio of the scoring rates: F's rate over the highest known category's
    f_rate = sc.loc[(sc["attribute"] == "sex") & (sc["category"] == "F"), "scoring_rate"].iloc[0]
    m_rate = sc.loc[(sc["attribute"] == "sex") & (sc["category"] == "M"), "scoring_rate"].iloc[0]
    assert sc.loc[(sc["attribute"] == "sex") & (sc["category"] == "F"), "impact_ratio"].iloc[0] == pytest.approx(
        min(f_rate, m_rate) / max(f_rate, m_rate) if f_rate < m_rate else 1.0)
    # unknown: counted, in the table, never in a ratio or the verdict, nobody dropped
    assert res.evidence["unknown_category"]["sex"] == int(f["sex"].isna().sum()) > 0
    g = res.tables["groups"]
    unk = g[(g["attribute"] == "sex") & (g["category"] == "(unknown)")].iloc[0]
    assert not unk["in_verdict"] and unk["verdict"] == "not judged (unknown category)"
    assert g.loc[g["attribute"] == "sex", "n"].sum() == len(f)
    assert "unknown" in res.message and "in no ratio" in res.message
    # under 2% listed, not judged; sex × race intersections by default
    other = g[(g["attribute"] == "race") & (g["category"] == "Other")].iloc[0]
    assert other["share"] < 0.02 and not other["in_verdict"]
    assert "sex × race" in set(g["attribute"])


def test_a_missing_group_value_in_data_is_the_unknown_category():
    from fairaudit.data import population_from_frame
    f = score_log(200).drop(columns=["selected", "decision_id"])
    pop = population_from_frame(f)
    assert (pop.groups["sex"] == "(unknown)").sum() == f["sex"].isna().sum()


def test_export_ll144_writes_the_dcwp_table(tmp_path):
    f = score_log()
    log = tmp_path / "score_log.csv"
    f.to_csv(log, index=False)
    out = tmp_path / "ll144.csv"
    r = CliRunner().invoke(main, ["check", str(log), "--checks", "selection_rates", "--no-html", "--export-ll144",
                                  str(out), "--json", str(tmp_path / "r.json")], catch_exceptions=False)
    assert r.exit_code in (0, 1), r.output
    rows = list(csv.reader(out.open(encoding="utf-8")))
    meta = {r[0]: r[1] for r in rows[:4] if len(r) == 2}
    import json
    d = json.loads((tmp_path / "r.json").read_text())
    assert meta["Audit date"] == d["created"][:10]
    assert meta["Data source"].endswith("score_log.csv")
    assert meta["Number of individuals assessed (logged rows)"] == str(len(f))
    titles = [r[0] for r in rows if len(r) == 1 and r[0].endswith("categories") or (len(r) == 1 and r[0].startswith("Intersectional"))]
    assert titles == ["sex categories", "race categories", "Intersectional categories (sex × race)"]
    header = rows[rows.index(["sex categories"]) + 1]
    assert header[:7] == ["Category", "# of Applicants", "# Selected", "Selection Rate", "Impact Ratio", "Scoring Rate",
                          "Impact Ratio (scoring)"]
    fem = next(r for r in rows if r and r[0] == "F")
    assert int(fem[1]) == int((f["sex"] == "F").sum()) and int(fem[2]) == int(f.loc[f["sex"] == "F", "selected"].sum())
    other = next(r for r in rows if r and r[0] == "Other")
    assert other[4] == "" and "under 2%" in other[7]
    notes = [r[0] for r in rows if r and r[0].startswith("Note:")]
    assert notes[0].startswith(f"Note: {int(f['sex'].isna().sum())} individuals assessed have an unknown category for sex")
    assert all("(unknown)" != r[0] for r in rows if r)              # counted in the note, not a ratio row


def test_export_ll144_without_selection_rates_is_a_one_line_error(tmp_path):
    f = score_log(100)
    log = tmp_path / "l.csv"
    f.to_csv(log, index=False)
    r = CliRunner().invoke(main, ["check", str(log), "--checks", "anonymity", "--no-html", "--export-ll144",
                                  str(tmp_path / "x.csv")])
    assert r.exit_code == 2
    assert "needs a selection_rates result" in r.output


def test_a_log_of_scores_without_selections_is_judged_on_its_scoring_rates(tmp_path):
    """A scoring tool's log (scores and groups, no 'selected'): every rate is the LL144 scoring
    rate — the share of the category above the median of all rows' scores — and the four-fifths
    verdict is on those; the same from a CSV file and a pandas frame."""
    f = score_log().drop(columns=["selected", "decision_id"])
    path = tmp_path / "scores.csv"
    f.to_csv(path, index=False)
    med = float(np.median(f["score"]))
    for src in (f, str(path)):
        res = fa.audit(log=src, checks=["selection_rates"], seed=0).checks[0]
        assert res.evidence["scores_only"]["median_score"] == pytest.approx(med, rel=1e-12)
        g = res.tables["groups"]
        for cat in ("F", "M"):
            row = g[(g["attribute"] == "sex") & (g["category"] == cat)].iloc[0]
            assert row["rate"] == pytest.approx((f.loc[f["sex"] == cat, "score"] > med).mean(), rel=1e-12)
        assert res.message.startswith("The log has scores and no selections")
        assert res.evidence["unknown_category"]["sex"] == int(f["sex"].isna().sum())
