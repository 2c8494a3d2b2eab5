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

Measured (2 shared cores, load ≈ 3; times vary by ×2 with the load):

   n  m   dp [s] poly [s]   B(ε=0.01) sampler s     err  B(ε=0.001) sampler s     err
  10  2   0.0008   0.0008      20,508     0.027  0.0077   2,050,701     1.298  0.0006
  25  2   0.0029   0.0015      11,503     0.013  0.0084   1,150,218     1.876  0.0006
  50  2   0.0176   0.0036       7,268     0.021  0.0068     726,795     1.886  0.0007
 100  2   0.3140   0.0146       4,162     0.028  0.0079     416,110     2.405  0.0008
 200  2  10.6256   0.2786       2,434     0.031  0.0078     243,309     3.233  0.0007
  10  3   0.0009   0.0009      25,734     0.011  0.0066   2,573,350     1.316  0.0005
  25  3   0.0037   0.0022      16,727     0.027  0.0069   1,672,655     2.150  0.0006
  50  3   0.0262   0.0054       9,709     0.025  0.0069     970,884     2.649  0.0007
 100  3   0.4294   0.0208       6,081     0.037  0.0066     608,083     3.695  0.0006
 200  3  21.3568   0.2581       3,351     0.069  0.0075     335,055     5.843  0.0008

At ε = 0.01 the sampler is as fast as the DP at n = 50 and faster beyond (×11 at 100,
×300 at 200); at ε = 0.001 the DP wins up to n = 100 (×8 there, far more below) and loses at 200 (×3–4). The
O(n³m) poly method beats the sampler at ε = 0.001 everywhere and at ε = 0.01 up to n = 100.
The DP's time grows ≈ n⁴ (×34 from n = 100 to 200 at m = 2: memory-bound).

--validation (100 seeds): UA at L = 1, light settings 100/100 pass; at defaults (200
seeds) 200/200 pass, largest ratio estimate 0.472, largest certified upper bound 0.958;
Prop 14 boundary (exact ratio 1/3 audited at L = 1/3), 1000 seeds: false-fail rate 0,
coverage of the exact ratio 0.998; ua_mixture and prp_ranking fail in 30/30 seeds.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import norm

from fairaudit.run.sampler import position_counts
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
    from fairaudit.run.sampler import Sampler
    from fairaudit.run.load import load_target
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
