"""Benchmark: ε̂ with certified bounds in O(n log n) (SPEC §3, issue 5).

For n = 1,000 … 100,000 candidates (paper's setup, k = 10% of n) and B = 10,000 draws:
counts → simultaneous beta-binomial confidence sequences (Bonferroni over n) →
ε̂, lower and upper bounds with the attaining pairs (sort on quality + running maxima).
Counts come from a NOISYTOP-like chance profile via binomial sampling (for n ≤ 10,000
also from an actual (B, k) draw matrix through ``inclusion_counts``, the check's path).
Prints seconds and seconds / (n log n); the last column staying flat is the claim.
The O(n²) brute force is timed up to n = 3,000 for contrast.

    python benchmarks/bench_ex_interim.py
"""
from __future__ import annotations

import math
import time

import numpy as np

from fairaudit.populations import epsilon_hat, epsilon_hat_bruteforce, pool_generator, simulate_pool
from fairaudit.sampler import inclusion_counts
from fairaudit.stats import beta_binomial_cs, per_member_confidence

B = 10_000


def best_of(f, reps=3):
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = f()
        t.append(time.perf_counter() - t0)
    return min(t), out


def main():
    print(f"{'n':>8} {'k':>6} {'draws→counts s':>15} {'ε̂ pipeline s':>13} {'of which sweep s':>16} "
          f"{'µs/(n log n)':>13} {'brute O(n²) s':>14}")
    for n in (1_000, 3_000, 10_000, 30_000, 100_000):
        pool = simulate_pool("paper", n, pool_generator(0, 0))
        k = pool.k
        rng = np.random.default_rng(1)
        # A smooth chance profile in quality with noise across populations (like NOISYTOP).
        y = 1 - pool.quality + 0.05 * rng.standard_normal(n)
        w = np.exp(-2 * y)
        pi = np.minimum(k * w / w.sum(), 1)
        t_counts = float("nan")
        if n <= 10_000:
            # Draw matrix (B, k) as the check sees it: sample without replacement via Gumbel-top-k.
            keys = np.log(w)[None, :] + rng.gumbel(size=(B, n))
            draws = np.argpartition(-keys, k - 1, axis=1)[:, :k]
            t_counts, counts = best_of(lambda: inclusion_counts(draws, n))
            del keys, draws
        else:
            counts = rng.binomial(B, pi)
        conf = per_member_confidence(0.99, n)

        def pipeline():
            lo, hi = beta_binomial_cs(counts, B, conf, iters=42)
            p = counts / B
            return epsilon_hat(p, pool.quality, np.minimum(lo, p), np.maximum(hi, p))

        t_pipe, eh = best_of(pipeline)
        lo, hi = beta_binomial_cs(counts, B, conf, iters=42)
        p = counts / B
        t_sweep, _ = best_of(lambda: epsilon_hat(p, pool.quality, np.minimum(lo, p), np.maximum(hi, p)))
        brute = float("nan")
        if n <= 3_000:
            brute, val = best_of(lambda: epsilon_hat_bruteforce(p, pool.quality), reps=1)
            assert val == eh.estimate
        print(f"{n:>8,} {k:>6,} {t_counts:>15.4f} {t_pipe:>13.4f} {t_sweep:>16.4f} "
              f"{1e6 * t_pipe / (n * math.log(n)):>13.3f} {brute:>14.4f}")


if __name__ == "__main__":
    main()
