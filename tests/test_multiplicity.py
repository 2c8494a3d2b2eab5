"""The multiplicity check (seed 001; SPEC §8) on allocators written from the definition,
the bundled examples, score columns and a one-decision-per-model log."""
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import fairaudit as fa
from fairaudit.check import discover
from fairaudit.data import population_from_frame
from fairaudit.checks.multiplicity.equal_utility import band, reference_pairwise_consistency
from fairaudit.report import render_html

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"
DATA = str(EX / "data" / "healthcare.csv")


def run(target, data=DATA, k=None, **params):
    return fa.audit(target, checks=["multiplicity"], data=data, k=k, params={"multiplicity": params},
                    allow_skip=True).checks[0]


def small_population(n=200, n_q=80, seed=0):
    rng = np.random.default_rng(seed)
    label = np.zeros(n, int)
    label[rng.choice(n, n_q, replace=False)] = 1
    score = label * 0.6 + rng.random(n)       # a model that is better than chance
    return pd.DataFrame({"score": score, "label": label, "group": rng.choice(["a", "b"], n, p=[0.3, 0.7]),
                         "band": rng.choice(["x", "y", "z"], n), "severity": rng.integers(0, 5, n)})


@fa.selector(k=50)
def definition_lottery(scores, labels, k, rng):
    """From Def 7 with Δ = 0: as many qualified as the top k by score, chosen uniformly,
    and the rest uniformly among the unqualified."""
    q = np.flatnonzero(np.asarray(labels) == 1)
    u = np.flatnonzero(np.asarray(labels) == 0)
    kq = int(np.isin(np.argsort(-np.asarray(scores), kind="stable")[:k], q).sum())
    return np.concatenate([rng.choice(q, kq, replace=False), rng.choice(u, k - kq, replace=False)])


@fa.selector(k=50)
def definition_top_k(scores, k, rng):
    return np.argsort(-np.asarray(scores), kind="stable")[:k]


def test_registered_extra_and_listed_by_the_cli():
    reg = discover()
    assert "multiplicity" in reg and reg["multiplicity"].default is False
    from fairaudit.cli import main
    out = CliRunner().invoke(main, ["checks"])
    assert re.search(r"^multiplicity\s", out.output, re.M)


def test_definition_lottery_passes_and_top_k_fails_on_a_small_population():
    pop = population_from_frame(small_population())
    r = run(definition_lottery, data=pop)
    assert r.verdict == "pass", r.message
    b = band(200, 80, 50, r.evidence["band"]["hi"])
    assert r.evidence["pairwise_consistency"]["reference"] == pytest.approx(reference_pairwise_consistency(b))
    lo, hi = r.evidence["pairwise_consistency"]["ci"]
    assert lo <= reference_pairwise_consistency(b) <= hi
    assert r.evidence["systemic_rejection"]["ci"] == [0.0, 0.0]
    t = run(definition_top_k, data=pop)
    assert t.verdict == "fail" and t.evidence["pairwise_consistency"]["estimate"] == 1.0
    assert t.tables["comparisons"].set_index("quantity").loc["distinct recovered allocations", "recovered"] == 1


def test_bundled_lottery_passes_and_top_k_fails():
    r = run(str(EX / "allocators" / "equal_utility_lottery.py"))
    assert r.verdict == "pass", r.message
    t = run(str(EX / "allocators" / "top_k.py"), k=250)
    assert t.verdict == "fail" and t.components["pairwise_consistency"].verdict() == "fail"
    # the same baseline, so the same reference, and top k never selects a qualified person outside o_0
    assert t.evidence["band"] == r.evidence["band"]
    never = t.evidence["systemic_rejection"]["never"]
    n_q, kq = t.evidence["band"]["n_q"], t.evidence["band"]["hi"]
    assert never == pytest.approx((n_q - kq) / n_q)


def test_score_columns_and_the_one_decision_per_model_log_agree():
    m = run(str(EX / "allocators" / "top_k.py"), k=250, models="score_*", metric_feature="illnesses")
    g = fa.audit(str(EX / "logs" / "multiplicity_log.csv"), checks=["multiplicity"],
                 params={"multiplicity": {"metric_feature": "illnesses"}}).checks[0]
    assert m.draws == g.draws == 20
    for key in ("pairwise_consistency", "systemic_rejection"):
        assert m.evidence[key] == g.evidence[key]
    assert m.evidence["band"] == g.evidence["band"]
    assert m.evidence["least_discriminatory"]["ref_min"] == g.evidence["least_discriminatory"]["ref_min"]
    # 20 models cannot certify a homogenisation the point estimates show: inconclusive, with a hint
    assert m.verdict == "inconclusive" and "models might decide" in m.message
    assert m.evidence["pairwise_consistency"]["estimate"] > 0.9


def test_lda_range_and_entropy_on_the_example():
    r = run(str(EX / "allocators" / "top_k.py"), k=250, metric_feature="illnesses")
    lda = r.evidence["least_discriminatory"]
    assert lda["group"] == "race" and lda["a"] == "black" and lda["b"] == "white"
    assert lda["ref_min"] <= lda["rec_min"] <= lda["rec_max"] <= lda["ref_max"]
    assert lda["ref_min"] < 1 < lda["ref_max"] and lda["ref_best"] == 1.0
    ent = r.evidence["feature_entropy"]
    assert ent["feature"] == "age_band"
    # the model's top k skews old: less entropy than equal-utility allocations (seed 001 Table 3, Fig. 4c)
    assert ent["ensemble"] < ent["ref_expected"] - 0.2


def test_inputs_that_cannot_work_are_named():
    pop = small_population()
    r = run(definition_lottery, data=population_from_frame(pop.drop(columns="label")))
    assert r.verdict == "skipped" and "label" in r.message
    bad = pop.assign(label=pop["label"] * 2)
    r = run(definition_lottery, data=population_from_frame(bad))
    assert r.verdict == "error" and "must be 0 or 1" in r.message
    r = run(definition_top_k, data=population_from_frame(pop), models="nothing_*")
    assert r.verdict == "error" and "matches no column" in r.message
    r = run(definition_top_k, data=population_from_frame(pop), metric_group="group", metric_a="c")
    assert r.verdict == "error" and "has no value 'c'" in r.message
    r = fa.audit(str(EX / "logs" / "selection_log.csv"), checks=["multiplicity"], allow_skip=True).checks[0]
    assert r.verdict in ("skipped", "error")


@pytest.mark.slow      # out of the fast lane (kept under 2 min): runs in the full suite
@pytest.mark.xfail(strict=False, reason="open: the report's figure titles changed with the citations by author (issue 31); the expected caption needs updating")
def test_same_seed_same_result_and_the_report_draws_every_figure():
    pop = population_from_frame(small_population())
    a = fa.audit(definition_top_k, checks=["multiplicity"], data=pop, seed=3).to_dict()
    b = fa.audit(definition_top_k, checks=["multiplicity"], data=pop, seed=3).to_dict()
    a.pop("created"), b.pop("created")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    html = render_html(a)
    c = a["checks"][0]
    assert len(c["figures"]) == 5 and "could not be drawn" not in html
    for f in c["figures"]:
        assert f["title"].split(":")[0] in html
    assert html.count("<svg") >= 5


@pytest.mark.slow
def test_cli_on_the_bootstrap_selector_fails_with_exit_1(tmp_path):
    from fairaudit.cli import main
    res = CliRunner().invoke(main, ["check", str(EX / "allocators" / "bootstrap_logistic_top_k.py"), "--checks",
                                    "multiplicity", "--data", DATA, "--json", str(tmp_path / "r.json"),
                                    "--html", str(tmp_path / "r.html")])
    assert res.exit_code == 1, res.output
    assert "FAIL" in res.output and "multiplicity" in res.output
    c = json.loads((tmp_path / "r.json").read_text())["checks"][0]
    assert c["statistic"]["name"] == "pairwise_consistency_excess" and c["statistic"]["ci"][0] > 0.05
    assert c["evidence"]["systemic_rejection"]["never"] > 0.1


def test_delta_widens_the_set_and_a_broken_allocator_is_an_error():
    pop = population_from_frame(small_population())
    r0 = run(definition_top_k, data=pop)
    r5 = run(definition_top_k, data=pop, delta=5)
    assert r5.evidence["band"]["lo"] == r0.evidence["band"]["lo"] - 5 == r5.evidence["band"]["hi"] - 5
    assert int(r5.evidence["equal_utility_count"]) > int(r0.evidence["equal_utility_count"])
    assert r5.tables["equal_utility_set"]["band k′_δ"].iloc[0] == f"{r5.evidence['band']['lo']}..{r5.evidence['band']['hi']}"

    @fa.selector(k=50)
    def broken(scores, k, rng):
        if rng.random() < 0.5:
            raise RuntimeError("model failed to converge")
        return np.arange(k)

    r = run(broken, data=pop)
    assert r.verdict == "error" and "model failed to converge" in r.message and "replay" in r.evidence
    r = run(definition_top_k, data=pop, delta=-1)
    assert r.verdict == "error" and "delta" in r.message


def test_an_unbounded_ratio_is_null_not_infinity():
    # the selection-rate ratio A/B is unbounded above when an equal-utility allocation can leave B out
    frame = small_population().assign(group=lambda f: np.where(np.arange(len(f)) < 20, "a", "b"))
    r = run(definition_top_k, data=population_from_frame(frame), metric_a="b", metric_b="a")
    lda = r.evidence["least_discriminatory"]
    assert lda["ref_max"] is None and lda["ref_min"] is not None
    assert "Infinity" not in fa.audit(definition_top_k, checks=["multiplicity"], data=population_from_frame(frame),
                                      params={"multiplicity": {"metric_a": "b", "metric_b": "a"}}).to_json()


def test_baseline_column_and_log_consistency(tmp_path):
    frame = pd.read_csv(DATA)
    a = run(str(EX / "allocators" / "top_k.py"), k=250)
    b = run(str(EX / "allocators" / "top_k.py"), k=250, baseline="score_01")
    top = np.argsort(-frame["score_01"].to_numpy(), kind="stable")[:250]
    assert b.evidence["band"]["hi"] == int(frame["label"].to_numpy()[top].sum()) != a.evidence["band"]["hi"]
    log = pd.read_csv(EX / "logs" / "multiplicity_log.csv")
    r = fa.audit(str(EX / "logs" / "multiplicity_log.csv"), checks=["multiplicity"],
                 params={"multiplicity": {"models": "score_*"}}).checks[0]
    assert r.verdict == "error" and "already holds one decision per model" in r.message
    log.loc[0, "label"] = 1 - log.loc[0, "label"]
    log.to_csv(tmp_path / "bad.csv", index=False)
    r = fa.audit(str(tmp_path / "bad.csv"), checks=["multiplicity"]).checks[0]
    assert r.verdict == "error" and "different labels" in r.message


def test_eighty_near_identical_models_fail_with_fixed_sample_intervals():
    """A Rashomon set of 80 score columns that differ by little noise maps (top k) to almost
    the same allocation: certifiably more homogenised than the equal-utility allocations."""
    frame = small_population()
    rng = np.random.default_rng(5)
    for j in range(80):
        frame[f"score_{j:02d}"] = frame["score"] + rng.normal(0, 0.05, len(frame))
    r = run(definition_top_k, data=population_from_frame(frame), models="score_*")
    assert r.draws == 80 and r.verdict == "fail", r.message
    assert "Hoeffding" in r.statistic.method and r.statistic.ci[0] > 0.05


def test_committed_example_data_is_what_the_generator_writes(tmp_path):
    from fairaudit.run.load import import_file
    import_file(EX / "make_multiplicity_data.py").main(tmp_path)
    for rel in ("data/healthcare.csv", "data/healthcare_train.csv", "logs/multiplicity_log.csv"):
        # model scores may differ in the last printed digit across BLAS builds; everything else exactly
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / rel), pd.read_csv(EX / rel), check_exact=False,
                                      atol=2e-4, rtol=0)
    frame = pd.read_csv(DATA)
    assert 0.30 <= frame["label"].mean() <= 0.55 and set(frame["race"]) == {"black", "white"}
    assert frame["age_band"].nunique() == 7


def test_new_figure_kinds_draw_with_missing_values():
    from fairaudit.figures import render_svg
    svg = render_svg({"kind": "ranges", "title": "r", "labels": ["exact", "recovered"], "lo": [0.0, 1.1],
                      "hi": [None, 1.4], "points": [[], [1.1, float("inf"), 1.2]], "reference": 1.0,
                      "reference_label": "parity"})
    assert svg.startswith("<svg") and "parity" in svg
    svg = render_svg({"kind": "grouped_bars", "title": "g", "categories": ["18-24", "75+"],
                      "series": [{"label": "ensemble", "values": [0.1, None]}, {"label": "reference", "values": [0.5, 0.5]}]})
    assert "ensemble" in svg and "75+" in svg
