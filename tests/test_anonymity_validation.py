"""Validation of ``anonymity`` by simulation over many audit seeds (issue 4, "Done when").

* False failures on anonymous allocators are at most α. Sharpest form: ``tau = 0``, so a
  ``fail`` means some interval of the simultaneous family excluded the true difference 0
  (fail rate = 1 − joint coverage). Slack: with α = 0.05 and 100 seeds,
  P(Binomial(100, 0.05) ≥ 11) ≈ 0.011, so up to 10 failures are allowed.
* At the default tolerance the anonymous allocators never fail (and pass).
* Detection of a small index bias: ``position_biased.py`` with the first-listed person's
  weight × (1 + β), β = 0.3 (two equal claims, k = 1: chance 0.565 instead of 0.5, so a
  relabelling moves it by 0.13). ``benchmarks/bench_anonymity.py`` measures the rates
  over more seeds and biases.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import fairaudit as fa
from fairaudit.engine import audit
from fairaudit.run.load import import_file

# A simulation study over many seeds: the full suite (.ci/run, `pytest`) runs it; the fast
# lane (`pytest -m "not slow"`) leaves it out.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ALLOC = ROOT / "examples" / "allocators"


def verdicts(target, seeds, **params):
    # a callable here closes over a module loaded by import_file, which worker processes
    # cannot import: run it in-process (files are audited isolated, as by default)
    return np.array([audit(target, checks=["anonymity"], seed=s, params={"anonymity": params},
                           in_process=callable(target)).checks[0].verdict for s in seeds])


@pytest.mark.parametrize("name", ["uniform_lottery", "broome_lottery", "ua_ranking"])
def test_joint_coverage_tau_zero(name):
    p = ALLOC / f"{name}.py"
    assert p.exists(), f"bundled example {p} is missing"
    v = verdicts(str(p), range(100), tau=0.0, search=0, max_draws=512, permutations=2)
    assert (v == "fail").sum() <= 10, (v == "fail").sum()


def test_no_false_failures_at_defaults_with_search():
    # 6 seeds of the full check (all probes, Hypothesis search; the benchmark runs 40):
    # P(Binomial(6, 0.05) ≥ 2) ≈ 0.03, so allow 1 failure; most should pass.
    v = verdicts(str(ALLOC / "uniform_lottery.py"), range(100, 106))
    assert (v == "fail").sum() <= 1
    assert (v == "pass").sum() >= 5


def _biased(beta):
    mod = import_file(ALLOC / "position_biased.py")

    @fa.selector
    def allocate(scores, k, rng, size=None):
        return mod.allocate_with_bias(scores, k, rng, size=size, bias=beta)
    return allocate


def test_detects_small_index_bias():
    v = verdicts(_biased(0.3), range(15), search=0)
    # benchmarks/bench_anonymity.py, 40 seeds at defaults: beta = 0.3 detected 40/40 (median
    # 2048 draws), 0.2 (moves 0.091) 38/40, 0.15 (0.070) 11/40, 0.1 (0.048 < tau) 0/40 and
    # never passed (inconclusive). Here 15 seeds without the search; require 13.
    assert (v == "fail").sum() >= 13, v
