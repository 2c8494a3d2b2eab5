"""tv_stability and ua_conformance (seed 002, Devic et al.: Def 3/20, Props 7, 14, 18, 21,
Theorem 11). Oracles are the paper's statements and exact UA marginals (fairaudit.ua)."""
import collections
import functools
import json
from pathlib import Path

import numpy as np
import pytest

import fairaudit as fa
from fairaudit.checks.tv_stability import TVStability
from fairaudit.engine import AuditConfig, AuditContext
from fairaudit.run.sampler import Sampler
from fairaudit.run.load import import_file, load_target

ROOT = Path(__file__).resolve().parents[1]
ALLOC = ROOT / "examples" / "allocators"
DATA = ROOT / "examples" / "data" / "predictions.csv"


def run(name, checks=("tv_stability",), seed=0, params=None, data=None):
    return _run(name, tuple(checks), seed, json.dumps(params or {}, sort_keys=True), data)


@functools.lru_cache(maxsize=None)
def _run(name, checks, seed, params, data):
    # cached: several tests look at the same default run
    res = fa.audit(str(ALLOC / f"{name}.py"), checks=list(checks), seed=seed, data=data,
                   params=json.loads(params))
    return {c.id: c for c in res.checks}, res


def make_tester(name, seed, **params):
    cfg = AuditConfig(seed=seed)
    t = load_target(str(ALLOC / f"{name}.py"))
    ctx = AuditContext(cfg, target=t, sampler=Sampler(t, seed))
    chk = TVStability()
    chk.setup(ctx, **params)
    return chk


def prop14(n):
    """Seed 002, Prop 14 (m = 2): individual 0 predicted (1/2, 1/2) vs surely good, the
    rest surely good. Exact ratio (n−1)/(2n)."""
    P = np.tile([0.0, 1.0], (n, 1))
    Q = P.copy()
    P[0] = [0.5, 0.5]
    return P, Q


# ---------------------------------------------------------------------------
# Seed 0, defaults (the "Done when")
# ---------------------------------------------------------------------------

def test_ua_ranking_passes_at_L1():
    r, _ = run("ua_ranking")
    c = r["tv_stability"]
    assert c.verdict == "pass", c.message
    assert "no violation" in c.message.lower() and "certified probes" in c.message
    assert c.statistic.ci[1] <= 1.0
    # Theorem 11 / Prop 14: UA's ratio is at most 1 and in practice ≤ 1/2
    assert c.statistic.estimate <= 0.5
    ev = c.evidence
    assert ev["tv_lower_bound"]["certified"] <= ev["tv_lower_bound"]["estimate"]
    kinds = [f["kind"] for f in c.figures]
    assert kinds.count("heatmap") == 2 and "interval_bars" in kinds


def test_prp_fails_with_shrunk_counterexample_of_two_or_three():
    r, _ = run("prp_ranking")
    c = r["tv_stability"]
    assert c.verdict == "fail", c.message
    cx = c.evidence["counterexample"]
    assert cx["source"] == "hypothesis"
    assert len(cx["P"]) in (2, 3)
    assert cx["ratio"]["ci"][0] > 1.0
    # the pair differs in one row only and the deterministic ranking jumps by a whole position
    P, Q = np.array(cx["P"]), np.array(cx["P_prime"])
    assert (np.abs(P - Q).sum(axis=1) > 0).sum() == 1
    assert cx["max_marginal_change"]["estimate"] == pytest.approx(1.0)
    assert "replay_command" in c.evidence
    # Prop 7: bisection finds the jump; its pair is arbitrarily close
    t = c.tables["probes"]
    bis = t[t["source"] == "bisection"]
    assert (bis["verdict"] == "fail").any()
    assert bis["l1_change"].min() < 1e-4


@pytest.mark.slow      # out of the fast lane (kept under 2 min): runs in the full suite
@pytest.mark.xfail(strict=False, reason="open: after the last merges replay refuses a result written from Python without its target's sha256 / content digest (issue 26's check vs the Python writer); see the closing note")
def test_prp_replay_command_reproduces_the_jump(tmp_path):
    """The engine's replay re-draws the certified pair: the jump of a whole position."""
    import subprocess
    import sys
    from fairaudit.result import dumps
    r, _ = run("prp_ranking")
    c = r["tv_stability"]
    assert c.evidence["replay_command"] == "fairaudit replay RESULT.json tv_stability"
    a, b = c.evidence["redraw"]["records"]
    assert abs(a["observed"][0] - b["observed"][0]) == pytest.approx(1.0)
    res = tmp_path / "r.json"
    res.write_text(dumps({"target": {"path": str(ALLOC / "prp_ranking.py")}, "config": {"seed": 0},
                          "checks": [c.to_dict()]}))
    out = subprocess.run([sys.executable, "-m", "fairaudit.cli", "replay", str(res), "tv_stability"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr + out.stdout
    assert "Identical to the audit." in out.stdout


def test_ua_mixture_half_fails_exact_and_passes_approximate():
    # Seed 002, Prop 21: φ = 0.5 mixture is (0.5, 0.5)-approximately stable, not 1-stable.
    r, _ = run("ua_mixture")
    assert r["tv_stability"].verdict == "fail", r["tv_stability"].message
    r, _ = run("ua_mixture", params={"tv_stability": {"L": 0.5, "delta": 0.5}})
    c = r["tv_stability"]
    assert c.verdict == "pass", c.message
    assert "0.5·‖ΔP‖₁ + 0.5" in c.message


def test_ua_mixture_phi_factory():
    mod = import_file(ALLOC / "ua_mixture.py")
    P = np.array([[0.2, 0.8], [0.3, 0.7]])
    rank1 = mod.make_ranker(1.0)
    draws = rank1(P, np.random.default_rng(0), size=40000)
    C = fa.outcomes.position_counts(draws, 2) / 40000
    R = fa.ua_marginals(P)
    assert np.abs(C - R).max() < 0.02                  # φ = 1 is UA
    rank0 = mod.make_ranker(0.0)
    assert (rank0(P, np.random.default_rng(0), size=5) == [0, 1]).all()   # φ = 0 is the sort
    with pytest.raises(ValueError):
        mod.make_ranker(1.5)


# ---------------------------------------------------------------------------
# The tester: paper instances and validation by simulation
# ---------------------------------------------------------------------------

def test_prop14_certified_ratio_contains_exact():
    # Seed 002, Prop 14: m = 3 embedding gives ratio exactly 1/2; m = 2 gives (n−1)/(2n).
    chk = make_tester("ua_ranking", 1, L=1.0)
    n = 4
    P3 = np.tile([0.0, 1.0, 0.0], (n, 1))
    Q3 = P3.copy()
    P3[0] = [1.0, 0.0, 0.0]
    Q3[0] = [0.0, 0.0, 1.0]
    P2, Q2 = prop14(n)
    res = chk.certify([(P3, Q3), (P2, Q2)])
    t = res.tables["probes"]
    exact = [0.5, (n - 1) / (2 * n)]
    for row, r in zip(t.itertuples(), exact):
        assert row.ratio_lo <= r <= row.ratio_hi
    assert t["ratio"].iloc[0] == pytest.approx(0.5, abs=0.05)
    assert res.verdict == "pass"


@pytest.mark.slow
def test_false_fail_rate_at_the_boundary_is_at_most_alpha():
    # Validation by simulation: UA on Prop 14's instance (n = 3, exact ratio 1/3) audited
    # with L = 1/3 exactly — the hardest case, every fail is a false fail. 150 seeds;
    # α = 0.05; allow binomial slack: fail count ≤ 15 (P[Bin(150, .05) > 15] < 0.02).
    # Also the certified interval must cover the exact ratio (coverage ≥ 95% − slack).
    P, Q = prop14(3)
    fails = covered = 0
    seeds = 150
    for seed in range(seeds):
        chk = make_tester("ua_ranking", seed, L=1.0 / 3.0)
        res = chk.certify([(P, Q)])
        fails += res.verdict == "fail"
        covered += res.statistic.ci[0] <= 1 / 3 <= res.statistic.ci[1]
    assert fails <= 15
    assert covered >= 135


@pytest.mark.slow
def test_ua_full_check_never_fails_over_seeds():
    # False failures of the whole check on UA at L = 1 over seeds (light settings so
    # the test stays fast; benchmarks/bench_ua.py --validation runs a longer study).
    light = {"tv_stability": {"probes": 3, "bisections": 1, "search_examples": 15, "max_draws": 4000}}
    verdicts = [run("ua_ranking", seed=s, params=light)[0]["tv_stability"].verdict for s in range(1, 9)]
    assert verdicts.count("fail") == 0
    assert verdicts.count("pass") >= 7


@pytest.mark.slow      # out of the fast lane (kept under 2 min): runs in the full suite
def test_selection_kind():
    light = {"tv_stability": {"probes": 3, "bisections": 1, "search_examples": 30}}
    r, _ = run("uniform_lottery", params=light)
    assert r["tv_stability"].verdict == "pass"
    r, _ = run("top_k", params=light)
    c = r["tv_stability"]
    assert c.verdict == "fail"
    assert len(c.evidence["counterexample"]["P"]) <= 3
    # the report shows the pair's inclusion probabilities and their difference (on a diverging scale)
    heat = [f for f in c.figures if f["kind"] == "heatmap"]
    assert len(heat) == 2 and not heat[0].get("diverging") and heat[1]["diverging"]
    assert "selection distributions" in c.message


@pytest.mark.slow      # out of the fast lane (kept under 2 min): runs in the full suite
def test_json_deterministic():
    light = {"tv_stability": {"probes": 2, "bisections": 1, "search_examples": 10}}
    a = _run.__wrapped__("ua_mixture", ("tv_stability",), 0, json.dumps(light), None)[1].to_dict()
    b = _run.__wrapped__("ua_mixture", ("tv_stability",), 0, json.dumps(light), None)[1].to_dict()
    a.pop("created")
    b.pop("created")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@pytest.mark.slow      # out of the fast lane (kept under 2 min): runs in the full suite
def test_with_prediction_data():
    r, _ = run("ua_ranking", checks=("tv_stability", "ua_conformance"), data=str(DATA),
               params={"tv_stability": {"probes": 3, "bisections": 1, "search_examples": 10}})
    assert r["tv_stability"].verdict == "pass"
    assert "predictions.csv" in r["tv_stability"].tables["probes"]["probe"].iloc[0]
    assert r["ua_conformance"].verdict == "pass"


# ---------------------------------------------------------------------------
# ua_conformance
# ---------------------------------------------------------------------------

def test_ua_conformance_pass_and_fail():
    r, _ = run("ua_ranking", checks=("ua_conformance",))
    assert r["ua_conformance"].verdict == "pass", r["ua_conformance"].message
    r, _ = run("plackett_luce", checks=("ua_conformance",))
    c = r["ua_conformance"]
    assert c.verdict == "fail"
    assert c.statistic.ci[0] > 0.02
    assert TVStability.id in fa.check.discover()
    assert fa.check.discover()["ua_conformance"].default is False


# ---------------------------------------------------------------------------
# ua_conformance: validation by simulation over seeds (the project's bar)
# ---------------------------------------------------------------------------

def _ua_conf(target, seed, **params):
    return fa.audit(target, checks=["ua_conformance"], seed=seed, params={"ua_conformance": params}).checks[0]


@pytest.mark.slow
def test_ua_conformance_band_zero_false_fails_on_ua_ranking():
    """The UA ranking itself (true deviation 0), ``band = 0``: a ``fail`` then means a
    confidence sequence of the simultaneous family excluded the exact UA marginal, so
    the fail rate is 1 − joint coverage and must be ≤ α = 0.05. ``max_draws = 4096`` (the
    sequence is checked at 1024, 2048, 4096), 100 seeds (≈ 3 s): allowed ≤ 10
    (P(Binomial(100, 0.05) ≥ 11) ≈ 0.01). Measured: 0 fails (0/200 in a longer run —
    anytime-valid beta-binomial sequences with Bonferroni are conservative)."""
    v = collections.Counter(_ua_conf(str(ALLOC / "ua_ranking.py"), s, band=0.0, max_draws=4096).verdict
                            for s in range(100))
    print("ua_conformance band 0:", dict(v))
    assert v["fail"] <= 10, v


def _ua_mixture(phi):
    mod = import_file(ALLOC / "ua_mixture.py")
    return mod.make_ranker(phi)


def _ua_mixture_truth(seed, phi):
    """Exact statistic for ``ua_mixture`` with weight ``phi`` on UA: its marginals are
    φ·R + (1 − φ)·G (G the permutation matrix of the expected-utility sort), so the
    largest deviation from UA is (1 − φ)·max|G − R| over the check's generated inputs,
    rebuilt from the check's seeded stream."""
    from fairaudit.ua import ua_marginals
    rng = AuditContext(AuditConfig(seed=seed)).rng("ua_conformance/inputs")
    xs = [rng.dirichlet(np.full(2, 0.7), size=5), rng.dirichlet(np.full(3, 0.7), size=6),
          np.repeat(rng.dirichlet(np.full(3, 0.7), size=4), 2, axis=0)]
    out = 0.0
    for x in xs:
        n, m = x.shape
        G = np.zeros((n, n))
        G[np.argsort(-(x @ np.arange(m)), kind="stable"), np.arange(n)] = 1.0
        out = max(out, float(np.abs((1 - phi) * (G - ua_marginals(x))).max()))
    return out


@pytest.mark.slow
def test_ua_conformance_interval_covers_exact_deviation_and_detects():
    """UA mixed with the expected-utility sort (weight φ = 0.95 on UA): exact marginals,
    so the true statistic is known — 0.041–0.047 on these seeds' inputs, about twice the
    default band 0.02. Defaults, 100 seeds (≈ 7 s). Coverage (nominal 0.95): misses
    allowed ≤ 10 (P(Binomial(100, 0.05) ≥ 11) ≈ 0.01); measured 0. Detection: measured
    100/100 fail (require ≥ 95). At φ = 0.97 (truth 0.025–0.028, just above the band)
    a longer run gave 21 fail, 79 inconclusive, 0 misses — the resolution near the band.
    Plackett–Luce (far from UA) fails on 30/30 seeds."""
    rk = _ua_mixture(0.95)
    v, miss = collections.Counter(), 0
    for s in range(100):
        c = _ua_conf(rk, s)
        t = _ua_mixture_truth(s, 0.95)
        v[c.verdict] += 1
        miss += not (c.statistic.ci[0] <= t <= c.statistic.ci[1])
    pl = collections.Counter(_ua_conf(str(ALLOC / "plackett_luce.py"), s).verdict for s in range(100, 130))
    print("ua_conformance phi=0.95:", dict(v), miss, "misses; plackett_luce:", dict(pl))
    assert miss <= 10, (v, miss)
    assert v["fail"] >= 95, v
    assert pl == {"fail": 30}, pl


def _prop14_m3_frame(n=4):
    import pandas as pd
    P3 = np.tile([0.0, 1.0, 0.0], (n, 1))
    P3[0] = [1.0, 0.0, 0.0]
    return pd.DataFrame({f"p_{j}": P3[:, j] for j in range(3)})


@pytest.mark.slow      # out of the fast lane (kept under 2 min): runs in the full suite
def test_finder_moves_mass_between_distant_labels_ua_fails_at_L04():
    """Issue 18 defect 4: seed 002's Prop 14 instance (m = 3, one row moving all its mass
    between the non-adjacent labels 0 and 2) gives UA the ratio ½; at L = 0.4 the finder
    must find it — with that instance as --data (the data's rows as anchors, moves to
    vertices of the simplex) and without data (vertex configurations, transfers between
    any two labels)."""
    from fairaudit.data import population_from_frame
    light = {"probes": 4, "bisections": 1, "search_examples": 20, "L": 0.4}
    data = population_from_frame(_prop14_m3_frame())
    for seed in range(3):
        res = fa.audit(str(ALLOC / "ua_ranking.py"), checks=["tv_stability"], seed=seed, data=data,
                       params={"tv_stability": light})
        c = res.checks[0]
        assert c.verdict == "fail", (seed, c.message)
        assert c.evidence["counterexample"]["ratio"]["ci"][0] > 0.4
    for seed in range(3):
        r, _ = run("ua_ranking", seed=seed, params={"tv_stability": light})
        assert r["tv_stability"].verdict == "fail", (seed, r["tv_stability"].message)


@pytest.mark.slow      # out of the fast lane (kept under 2 min): runs in the full suite
def test_discontinuity_headline_reads_unbounded():
    """A deterministic ranker's jump: the headline says "unbounded (discontinuity at …)",
    not a ratio that only reflects how deep the bisection went."""
    r, _ = run("prp_ranking")
    c = r["tv_stability"]
    assert c.verdict == "fail"
    assert "unbounded (discontinuity at" in c.message
