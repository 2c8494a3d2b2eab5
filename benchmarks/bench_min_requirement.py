"""Benchmark of the ``min_requirement`` audit (seed 003; SPEC §6).

Default: audit ``examples/allocators/greedy_assign.py`` on 100 simulated years of
T = 2,000 arrivals and N = 40 locations (the ``iid`` feature world with 40 locations,
Proportionally Optimized rule, no trend or non-anticipation extras) and print the total
time and the share of it spent in the LPs (requirement, OPT, unconstrained optimum;
the assigner's own time is printed separately).

``--defaults``: instead, run the full default audit (seed 0, every default parameter:
five scenarios, T = 500, 100 years, trend, non-anticipation) of each example assigner
and print verdicts, the worst group and the price of fairness per scenario — the
figures quoted in the check's report.

Measured on the 2-core dev box (seed 0), load average ~1.5 (another engineer's tests on
the other core): 100 years × T = 2,000 × N = 40 in 42.5 s (0.43 s per year), 95% of it
in 400 LPs (40.2 s; 807 linprog calls) — three Proportionally Optimized group LPs and
one 80,000-variable unconstrained LP per year, solved by column generation (see
``fairaudit.checks.min_requirement.assignment._colgen``; OPT needs no LP of its own: the shortcut "the
unconstrained optimum meets every requirement" fires in all 100 years); the greedy
assigner took 0.8 s = 2%. The same run just before, with the full LPs (HiGHS IPM on
every column): 142.6 s (1.43 s per year), 400 LPs in 140.6 s = 99%, assigner 0.8 s;
results identical (check output compared field by field on 15 years of iid:40 and
unequal:40: every number equal). Earlier full-LP runs: 240 s idle (2.4 s per year);
932 s at load ~9; 309.5 s at load ~4.

What was timed per LP on real years of this generator (iid:40, T = 2,000; per year =
the 3 group LPs of ≈1,000/600/400 arrivals + the unconstrained LP):

* full LP, ``highs-ipm`` (the old setting): unconstrained 0.76–0.94 s, groups 0.30 /
  0.15 / 0.08 s → 1.41–1.43 s per year;
* ``highs-ds`` (dual simplex; also what ``method="highs"`` chose): unconstrained 3.7 s,
  groups 1.0 / 0.4 / 0.2 s → 5.3 s per year (3.7× slower); presolve off: 5.1 s;
* ``highs-ipm`` with presolve off: 1.25–1.29 s per year (−10%, not worth a change);
* formulation: arrival rows as equalities 1.45 s, capacity rows scaled to 1 1.34 s,
  CSC instead of CSR 1.39 s per year (noise); building the sparse matrices takes
  0.004 s per year, so reusing them across a year's LPs cannot matter;
* column generation started from each arrival's top-k scores: adding every column of
  positive reduced profit 3.1–3.6 s per year (IPM; 70–90% of the columns end up in);
  adding only each row's best 1.4–1.6 s per year (8–10 rounds) — no gain;
* column generation seeded with capacity duals from the same LP on a random subsample
  of 150–300 arrivals, keeping the columns within δ of each row's best ``w − λ̂``
  (≈13% of the columns), 1–2 rounds: 0.33–0.46 s per year over a grid of sample sizes
  and δ (dual simplex for the restricted LPs instead: 1.0 s); chosen: 150 arrivals,
  δ = 0.08 of the score range → 0.43 s per year (unconstrained 0.12–0.25 s, groups
  0.06–0.09 s), objective values equal to the full LPs' to ~1e-15 relative. Against
  the full LP on the unconstrained problem: 1.3× faster at T·N = 5,000, 2–3× at
  20,000–40,000, 6× at 200,000 (T = 5,000, N = 40).

The LPs' duals are not unique (capacity prices differ by up to 4e-3 between the two
methods), so column generation is used only where values and x are read (the
benchmarks of a year and the Proportionally Optimized rule), not for the assigners'
bid prices. ``--defaults`` on greedy_assign (T = 500, N = 10: mostly small LPs with
group constraints, unchanged): 28 s → 26 s, same output.

Earlier, full LPs: ``--defaults`` (idle-ish): group_bid_price 184 s (pass), greedy_assign 75 s (fail).
Rerun at load ~5: group_bid_price pass (171 s; 13,350 LPs, 140 s), price of fairness
9.2% antagonistic (OPT's own 8.8%), 0.3% benign, 1.4% collaborative, 3.0% iid, 4.3%
unequal, every group 0 of 100 years over ε; bid_price fail (unequal g2, 25 of 500
arrivals, over ε in 100/100 years); random_assign fail (iid and unequal, Proportionally
Optimized asks more than random assignment gives); greedy_assign fail (unequal g0).

    python benchmarks/bench_min_requirement.py [--years 100 --T 2000 --N 40]
    python benchmarks/bench_min_requirement.py --defaults [--assigners group_bid_price,greedy_assign]
"""
import argparse
import time
from pathlib import Path

import pandas as pd

from fairaudit.checks.min_requirement import assignment as A
from fairaudit.engine import AuditConfig, audit

ROOT = Path(__file__).resolve().parents[1]
ALLOC = ROOT / "examples" / "allocators"


def table(chk, name):
    t = chk.to_dict()["tables"][name]
    return pd.DataFrame(t["rows"], columns=t["columns"])


def timed_target(path):
    """The assigner wrapped to accumulate its own wall time."""
    from fairaudit.targets import load_target, target_from_callable
    t = load_target(str(path))
    spent = {"seconds": 0.0}
    f = t.func

    def wrapped(**kw):
        t0 = time.perf_counter()
        try:
            return f(**kw)
        finally:
            spent["seconds"] += time.perf_counter() - t0
    wrapped.__signature__ = __import__("inspect").signature(f)
    wrapped.__name__ = f.__name__
    wrapped.__fairaudit__ = getattr(f, "__fairaudit__", {})
    return target_from_callable(wrapped, path=str(path)), spent


def bench(years, T, N, assigner):
    target, spent = timed_target(ALLOC / f"{assigner}.py")
    A.reset_lp_stats()
    t0 = time.perf_counter()
    res = audit(target, checks=["min_requirement"], config=AuditConfig(seed=0, params={"min_requirement": {
        "scenarios": f"iid:{N}", "T": T, "years": years, "trend_years": 0, "anticipation_cuts": 0}}))
    total = time.perf_counter() - t0
    chk = res.checks[0]
    print(f"min_requirement on {assigner}: {years} years × T={T} arrivals × N={N} locations")
    print(f"  total {total:.1f} s ({total / years:.2f} s per year); LPs {A.LP_STATS['count']} solved "
          f"({A.LP_STATS.get('calls', A.LP_STATS['count'])} linprog calls) in "
          f"{A.LP_STATS['seconds']:.1f} s = {A.LP_STATS['seconds'] / total:.0%} of the audit; "
          f"assigner {spent['seconds']:.1f} s = {spent['seconds'] / total:.0%}")
    print(f"  verdict {chk.verdict}: {chk.message}")


def defaults(assigners):
    for name in assigners:
        t0 = time.perf_counter()
        A.reset_lp_stats()
        chk = audit(str(ALLOC / f"{name}.py"), checks=["min_requirement"], config=AuditConfig(seed=0)).checks[0]
        print(f"\n== {name}: {chk.verdict} ({time.perf_counter() - t0:.0f} s, {A.LP_STATS['count']} LPs "
              f"{A.LP_STATS['seconds']:.0f} s)\n{chk.message}")
        s = table(chk, "scenarios")
        g = table(chk, "groups")
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(s[["scenario", "mean_global_regret", "price_of_fairness", "benchmark_price_of_fairness",
                     "trend_slope_per_decade"]].round(4).to_string(index=False))
            print(g[["scenario", "group", "mean_size", "requirement", "mean_regret", "regret_hi", "years_over_eps",
                     "p_hi"]].round(4).to_string(index=False))
        print("non-anticipation:", chk.evidence.get("nonanticipation"))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--years", type=int, default=100)
    ap.add_argument("--T", type=int, default=2000)
    ap.add_argument("--N", type=int, default=40)
    ap.add_argument("--assigner", default="greedy_assign")
    ap.add_argument("--defaults", action="store_true")
    ap.add_argument("--assigners", default="group_bid_price,greedy_assign,bid_price,random_assign")
    a = ap.parse_args()
    if a.defaults:
        defaults(a.assigners.split(","))
    else:
        bench(a.years, a.T, a.N, a.assigner)
