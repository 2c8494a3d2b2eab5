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

Measured on the 2-core dev box (seed 0), idle: 100 years × T = 2,000 × N = 40 in
240 s (2.4 s per year), 98% of it in 400 LPs (three Proportionally Optimized group
LPs and one 80,000-variable unconstrained LP per year, ≈0.6 s each; OPT needed no
LP of its own because the unconstrained optimum met the requirement); the greedy
assigner took 1%. Under a load average of ~9 the same run took 932 s; rerun at a load
average of ~4: 309.5 s (3.09 s per year), 400 LPs in 305.0 s = 99%, assigner 1.7 s = 1%.
``--defaults`` (idle-ish): group_bid_price 184 s (pass), greedy_assign 75 s (fail).
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

import numpy as np
import pandas as pd

from fairaudit import assignment as A
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
    print(f"  total {total:.1f} s ({total / years:.2f} s per year); LPs {A.LP_STATS['count']} solved in "
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
