"""Validation study and timings of ``multiplicity``. Run: ``python benchmarks/bench_multiplicity.py [--seeds N]``.

1. The exact uniform sampler of R_0(o_0) vectorised (random keys ranked, one call for
   all draws) against drawing each allocation with ``rng.choice`` in a Python loop
   (the same distribution), side by side: time per 2,000 draws on n = 1000, k = 250.
2. The exact least-discriminatory range (``ratio_range``) on n = 1000: two groups, and
   three groups (the "others" enumeration over m_A × m_B).
3. Verdicts by seed on the 200-person population of tests/test_multiplicity.py: the
   definition's lottery (false fails), and mixtures "equal-utility lottery with chance W,
   else top k" (pairwise-consistency excess over the reference known exactly) — where
   detection sets in against the tolerance 0.05.
4. CPU time of the README command's audit (bootstrap-refit logistic top k).

Measured (``--seeds 40``; 2-core machine shared with other jobs, CPU times):
  sampler: vectorised 0.05 s vs loop 0.03 s per 2,000 draws (0.6×: numpy's rng.choice
  without replacement is already fast, so the one-call form buys nothing here; both are
  negligible next to an allocator, and the vectorised one is kept for its single call).
  ratio_range: 0.03 s with two groups, 0.07 s with three (others enumerated).
  lottery: pass 40/40. Mixtures W (exact excess over the reference; tolerance 0.05):
  0.9 (0.002) pass 40/40; 0.6 (0.036) pass 31, inconclusive 9; 0.5 (0.056, just past the
  tolerance) inconclusive 40/40 at the default 2,000 draws; 0.2 (0.143) fail 40/40.
  No mixture within the tolerance failed.
  bootstrap selector (README command): fail at 512 draws, 3.0 s CPU.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

import fairaudit as fa
from fairaudit.data import population_from_frame
from fairaudit.checks.multiplicity.equal_utility import (band, pairwise_consistency_of_marginals, ratio_range, reference_marginals,
                                     reference_pairwise_consistency, sample_band)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_multiplicity import definition_lottery, small_population  # noqa: E402


def sampler_side_by_side(B=2000):
    rng = np.random.default_rng(0)
    q = np.arange(1000) < 320
    t0 = time.process_time()
    sample_band(rng, q, 250, 219, 219, size=B)
    vec = time.process_time() - t0
    qi, ui = np.flatnonzero(q), np.flatnonzero(~q)
    t0 = time.process_time()
    for _ in range(B):
        np.concatenate([rng.choice(qi, 219, replace=False), rng.choice(ui, 31, replace=False)])
    loop = time.process_time() - t0
    print(f"sampler: vectorised {vec:.2f} s vs loop {loop:.2f} s per {B:,} draws ({loop / vec:.1f}×)")


def ratio_range_timing():
    rng = np.random.default_rng(1)
    q = rng.random(1000) < 0.32
    v = rng.integers(0, 8, 1000).astype(float)
    for groups in (2, 3):
        g = rng.integers(0, groups, 1000)
        t0 = time.process_time()
        ratio_range(q, g == 0, g == 1, 250, 219, 219, v)
        print(f"ratio_range with {groups} groups: {time.process_time() - t0:.2f} s")


def mixture(W):
    @fa.selector(k=50)
    def mix(scores, labels, k, rng, size):
        qq = np.asarray(labels) == 1
        top = np.sort(np.argsort(-np.asarray(scores), kind="stable")[:k])
        kq = int(qq[top].sum())
        lot = sample_band(rng, qq, k, kq, kq, size=size)
        return np.where((rng.random(size) < W)[:, None], lot, top[None, :])
    return mix


def verdicts(seeds):
    frame = small_population(seed=7)
    pop = population_from_frame(frame)
    c = Counter(fa.audit(definition_lottery, checks=["multiplicity"], data=population_from_frame(
        small_population(seed=100 + s)), seed=s).checks[0].verdict for s in range(seeds))
    print(f"lottery: {dict(c)}")
    qq = frame["label"].to_numpy() == 1
    top = np.argsort(-frame["score"].to_numpy(), kind="stable")[:50]
    b = band(200, int(qq.sum()), 50, int(qq[top].sum()))
    pq, pu = reference_marginals(b)
    for W in (0.9, 0.6, 0.5, 0.2):
        pi = W * np.where(qq, pq, pu)
        pi[top] += 1 - W
        excess = pairwise_consistency_of_marginals(pi) - reference_pairwise_consistency(b)
        c = Counter(fa.audit(mixture(W), checks=["multiplicity"], data=pop, seed=s).checks[0].verdict
                    for s in range(seeds))
        print(f"mixture W={W} (exact excess {excess:.3f}): {dict(c)}")


def readme_command():
    t0 = time.process_time()
    r = fa.audit(str(ROOT / "examples" / "allocators" / "bootstrap_logistic_top_k.py"), checks=["multiplicity"],
                 data=str(ROOT / "examples" / "data" / "healthcare.csv")).checks[0]
    print(f"bootstrap selector: {r.verdict} at {r.draws} draws, {time.process_time() - t0:.1f} s CPU")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=40)
    a = ap.parse_args()
    sampler_side_by_side()
    ratio_range_timing()
    verdicts(a.seeds)
    readme_command()
