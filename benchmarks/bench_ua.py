"""Exact UA marginals vs sampling, and a validation study of ``tv_stability``.

    python benchmarks/bench_ua.py                 # timing table, n = 10 … 200, m = 2, 3 (≈ 2 min)
    python benchmarks/bench_ua.py --quick         # the same without the Prop 10 DP at n = 200 (O(n⁴m))
    python benchmarks/bench_ua.py --validation    # false-fail rates of tv_stability on UA

Timing: for each (n, m) a random prediction matrix (Dirichlet(1) rows). The exact
marginals by ``method="dp"`` (Prop 10's dynamic program, O(u·n³·m) with u distinct
rows) and ``method="poly"`` (O(n³m)); the sampler (``ua_sample`` + position counts) with
the number of draws B that gives a stated accuracy as a guarantee: every one of the
n² entries within ε of the exact value simultaneously at 95% (normal approximation,
Bonferroni over n² entries, variance of the largest entry), i.e.
``B = z² · p(1−p) / ε²`` with ``z = Φ⁻¹(1 − 0.025/n²)`` and ``p`` the entry closest to 1/2,
for ε = 0.01 (the scale of ``ua_conformance``'s band) and ε = 0.001. The exact methods are
accurate to ~1e-12, which no affordable B reaches: "equal accuracy" means the sampler
is given the accuracy a check needs. The observed max error of the sampler is printed.
Complexity: DP O(u·n³·m) ⊆ O(n⁴m) time (u distinct rows), poly O(n³m), sampler
O(B·n(m + log n)) with B ∝ 1/ε² (and, at fixed ε, B falls with n because the entries
≈ 1/n have smaller variance).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import norm

from fairaudit.sampler import position_counts
from fairaudit.ua import ua_marginals, ua_sample


def _time(f, repeat=1):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    return best, out


def timing(full: bool, eps_list=(0.01, 0.001)):
    rng = np.random.default_rng(0)
    head = "".join(f" {'B(ε=' + format(e, 'g') + ')':>11} {'sampler s':>9} {'err':>7}" for e in eps_list)
    print(f"{'n':>4} {'m':>2} {'dp [s]':>8} {'poly [s]':>8}{head}")
    for m in (2, 3):
        for n in (10, 25, 50, 100, 200):
            P = rng.dirichlet(np.ones(m), size=n)
            t_poly, R = _time(lambda: ua_marginals(P, "poly"), repeat=2 if n <= 100 else 1)
            if n <= 100 or full:
                t_dp, R2 = _time(lambda: ua_marginals(P, "dp"))
                assert np.abs(R - R2).max() < 1e-9
            else:
                t_dp = float("nan")
            p = R.flat[np.argmin(np.abs(R - 0.5))]
            z = norm.ppf(1 - 0.025 / n ** 2)
            cells = ""
            for eps in eps_list:
                B = int(np.ceil(z * z * p * (1 - p) / eps ** 2))

                def sample():
                    C = np.zeros((n, n))
                    done = 0
                    chunk = max(1, int(2e7 // (n * max(n, m))))      # bound memory
                    while done < B:
                        b = min(chunk, B - done)
                        C += position_counts(ua_sample(P, rng, size=b), n)
                        done += b
                    return C / B
                t_s, Rh = _time(sample)
                cells += f" {B:>11,} {t_s:>9.3f} {np.abs(Rh - R).max():>7.4f}"
            print(f"{n:>4} {m:>2} {t_dp:>8.4f} {t_poly:>8.4f}{cells}", flush=True)


def validation(seeds: int = 100):
    import fairaudit as fa
    from fairaudit.checks.tv_stability import TVStability
    from fairaudit.engine import AuditConfig, AuditContext
    from fairaudit.sampler import Sampler
    from fairaudit.targets import load_target
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "examples" / "allocators"
    # 1. whole check on UA at L = 1 (light settings), many seeds
    light = {"tv_stability": {"probes": 4, "bisections": 1, "search_examples": 20, "max_draws": 8000}}
    counts = {}
    for s in range(seeds):
        v = fa.audit(str(root / "ua_ranking.py"), checks=["tv_stability"], seed=s, params=light).checks[0].verdict
        counts[v] = counts.get(v, 0) + 1
    print(f"UA, L = 1, {seeds} seeds (light settings {light['tv_stability']}): {counts}")
    # 1b. the same at the check's defaults, with the largest ratio seen (Prop 14: ≤ 1/2 expected)
    counts, est, up = {}, 0.0, 0.0
    for s in range(seeds):
        c = fa.audit(str(root / "ua_ranking.py"), checks=["tv_stability"], seed=s).checks[0]
        counts[c.verdict] = counts.get(c.verdict, 0) + 1
        est, up = max(est, c.statistic.estimate), max(up, c.statistic.ci[1])
    print(f"UA, L = 1, {seeds} seeds (defaults): {counts}; largest ratio estimate {est:.3f}, "
          f"largest certified upper bound {up:.3f}")
    # 2. the tester at the boundary: Prop 14 instance (n = 3, exact ratio 1/3), L = 1/3
    P = np.tile([0.0, 1.0], (3, 1))
    Q = P.copy()
    P[0] = [0.5, 0.5]
    t = load_target(str(root / "ua_ranking.py"))
    fails = cover = 0
    N = 10 * seeds
    for s in range(N):
        ctx = AuditContext(AuditConfig(seed=s), target=t, sampler=Sampler(t, s))
        chk = TVStability()
        chk.setup(ctx, L=1 / 3)
        r = chk.certify([(P, Q)])
        fails += r.verdict == "fail"
        cover += r.statistic.ci[0] <= 1 / 3 <= r.statistic.ci[1]
    print(f"Prop 14 boundary (exact ratio 1/3 audited at L = 1/3), {N} seeds: false-fail rate "
          f"{fails / N:.4f}, coverage of the exact ratio {cover / N:.4f} (nominal 0.95)")
    # 3. detection: mixture φ = 0.5 at L = 1 and PRP, per seed
    for name in ("ua_mixture", "prp_ranking"):
        det = sum(fa.audit(str(root / f"{name}.py"), checks=["tv_stability"], seed=s, params=light).checks[0].verdict
                  == "fail" for s in range(min(seeds, 30)))
        print(f"{name}, L = 1: detected (fail) in {det}/{min(seeds, 30)} seeds")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--validation", action="store_true")
    ap.add_argument("--seeds", type=int, default=100)
    a = ap.parse_args()
    if a.validation:
        validation(a.seeds)
    else:
        timing(not a.quick)
