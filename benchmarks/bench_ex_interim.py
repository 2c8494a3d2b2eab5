"""Benchmark: ε̂ with certified bounds in O(n log n) (SPEC §3, issue 5).

For n = 1,000 … 100,000 candidates (paper's setup, k = 10% of n) and B = 10,000 draws:
counts → simultaneous beta-binomial confidence sequences (Bonferroni over n) →
ε̂, lower and upper bounds with the attaining pairs (sort on quality + running maxima).
Counts come from a NOISYTOP-like chance profile via binomial sampling (for n ≤ 10,000
also from an actual (B, k) draw matrix through ``inclusion_counts``, the check's path).
Prints seconds and seconds / (n log n); the last column staying flat is the claim.
The O(n²) brute force is timed up to n = 3,000 for contrast.

    python benchmarks/bench_ex_interim.py            # scaling
    python benchmarks/bench_ex_interim.py --study    # longer validation study + §7 figures

Measured (2 shared cores, load ≈ 4):

       n      k  draws→counts s ε̂ pipeline s of which sweep s  µs/(n log n)  brute O(n²) s
   1,000    100          0.0018        0.0064           0.0002         0.925         0.0375
   3,000    300          0.0098        0.0239           0.0005         0.995         0.4907
  10,000  1,000          0.0309        0.0419           0.0015         0.455            nan
  30,000  3,000             nan        0.1290           0.0048         0.417            nan
 100,000 10,000             nan        0.4382           0.0179         0.381            nan

--study (53 s): §7 on 2000 pools — GREEDY misses the true top k in 0.766 ± 0.009 (exact
0.774; paper ≈ 0.87), plug-in unbounded ratio in 0.548 ± 0.011 (paper ≈ 0.53); GREEDY's
exact miss rate is 0.839 at m = 200 + 100, 0.868 at 300 + 150, 0.927 at 1000 + 500.
Uniform lottery at ε = 0, δ = 0: 0/300 checks fail, 0/3000 pools falsely certified.
Coverage of [ε̂ lower, upper] (true ε = 0.539): 1.000 over 400 seeds, both stopping rules.
"""
from __future__ import annotations

import math
import time

import numpy as np

from fairaudit.populations import epsilon_hat, epsilon_hat_bruteforce, pool_generator, simulate_pool
from fairaudit.run.sampler import inclusion_counts
from fairaudit.stats import beta_binomial_cs, per_member_confidence
from fairaudit.run.load import import_file

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


def study(seeds_ff: int = 300, seeds_cov: int = 400, pools_s7: int = 2000):
    """Validation numbers quoted in the report (longer than the tests)."""
    from pathlib import Path

    from scipy.stats import hypergeom

    import fairaudit as fa
    from fairaudit.data import population_from_frame
    from fairaudit.populations import selected_is_true_top_k

    ex = Path(__file__).resolve().parents[1] / "examples" / "allocators"

    g, pp = import_file(ex / "greedy_cdf.py"), import_file(ex / "parametric_plugin.py")
    miss_g = miss_p = 0
    for r in range(pools_s7):
        p = simulate_pool("paper", 150, pool_generator(0, r))
        miss_g += not selected_is_true_top_k(g.allocate(p.scores, p.k, p.groups(), np.random.default_rng(r)),
                                             p.quality)[0]
        miss_p += not selected_is_true_top_k(pp.allocate(p.scores, p.k, p.groups(), None), p.quality)[0]
    exact = 1 - hypergeom(150, 100, 15).pmf(10)
    se = lambda q: math.sqrt(q * (1 - q) / pools_s7)
    print(f"§7 on {pools_s7} pools (m = 100 + 50, k = 15): GREEDY misses the true top k in {miss_g / pools_s7:.3f} "
          f"± {se(miss_g / pools_s7):.3f} (exact {exact:.3f}; paper ≈ 0.87); plug-in unbounded ratio in "
          f"{miss_p / pools_s7:.3f} ± {se(miss_p / pools_s7):.3f} (paper ≈ 0.53)")
    for m1 in (200, 300, 1000):
        n = m1 + m1 // 2
        print(f"   GREEDY's exact miss rate at m = {m1} + {m1 // 2}, k = {n // 10}: "
              f"{1 - hypergeom(n, m1, n // 10).pmf(2 * n // 30):.3f}")

    lot = import_file(ex / "uniform_lottery.py").allocate
    fails = false_pools = total = 0
    for seed in range(seeds_ff):
        r = fa.audit(lot, checks=["ex_interim"], seed=seed, params={"ex_interim": dict(
            epsilon=0.0, delta=0.0, n=10, pools=10, max_draws=1024)}).checks[0]
        fails += r.verdict == "fail"
        false_pools += int((r.tables["pools"].status == "violates").sum())
        total += len(r.tables["pools"])
    print(f"false fails, uniform lottery at ε = 0, δ = 0 (n = 10, 10 pools, ≤ 1024 draws): {fails}/{seeds_ff} checks, "
          f"{false_pools}/{total} pools falsely certified violating (α = 0.05, α_p = 0.01)")

    base = simulate_pool("paper", 10, np.random.default_rng(5), k=1)
    w = np.exp(1.5 * base.scores)
    w /= w.sum()
    true_eps = epsilon_hat(w, base.quality).estimate

    @fa.selector(k=1)
    def categorical(scores, k, rng, size=None):
        u = rng.random(size or 1)
        out = np.minimum(np.searchsorted(np.cumsum(w), u), len(w) - 1)[:, None]
        return out if size else out[0]

    pop = population_from_frame(base.frame())
    for offset in (0.0, 0.5):
        miss = 0
        for seed in range(seeds_cov):
            r = fa.audit(categorical, checks=["ex_interim"], data=pop, seed=seed, params={"ex_interim": dict(
                epsilon=true_eps + offset, max_draws=8192)}).checks[0]
            lo, hi = r.statistic.ci
            miss += not (lo <= true_eps <= hi)
        print(f"coverage of [ε̂ lower, upper] (true ε = {true_eps:.3f}, stopping at ε = true + {offset:g}): "
              f"{1 - miss / seeds_cov:.3f} over {seeds_cov} seeds (nominal 0.95)")


if __name__ == "__main__":
    import sys
    if "--study" in sys.argv:
        study()
    else:
        main()
