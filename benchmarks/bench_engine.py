"""Engine overhead benchmarks. Run: ``python benchmarks/bench_engine.py``.

0. ``--jobs 2`` vs ``--jobs 1`` (isolated workers) on a 10 ms and a 0.1 ms allocator, 600 draws.
1. fairaudit vs a bare loop: ``selection_rates`` on a CPU-bound allocator (~1 ms of
   arithmetic a call: under load it slows exactly as the audit's own work does, where a
   wait on the clock would not — the earlier busy-wait allocator once gave an impossible
   in-process ratio of 0.838) for the draws the verdict actually used (read from the
   result), against a bare Python loop making the same number of allocator calls with
   fresh generators. Paired: each round times the bare loop and then the in-process,
   isolated (a new worker) and warm-worker audits; the median of the within-round ratios
   is printed, with each round's. Then the ``fairaudit check`` command (interpreter
   start-up, imports and the report: a fixed cost, measured with ``--draws 1`` in the
   same round, and the per-draw ratio left after it).
   ``python benchmarks/bench_engine.py overhead`` runs this part alone.
2. Vectorised vs per-call draws of the Broome lottery (n=1000, k=100, 20,000 draws).
3. Sequential vs fixed-size sampling: draws used by ``selection_rates`` on clear cases.

Measured 2026-12-01 15:04 UTC on the 2-core machine, load average 0.9 (nothing else running):
in-process overhead ratio 1.038 (aim ≤ 1.05; 1.126 at 12:26 before selection_rates' impact ratios
went to numpy and its betting sequence was carried across looks); isolated (a new worker process)
1.115 (aim ≤ 1.10; was 1.186), warm (parked) worker 1.040; the command 4.46 s, per-draw ratio after
its fixed 2.18 s 1.070. --jobs 2 vs --jobs 1, 600 draws: 10 ms allocator 1.86x, 0.1 ms allocator
1.04x. Vectorised draws 3.2x faster than per-call; sequential sampling used 1024 and 256 of 20,000
draws on a clear pass and a clear fail.
4. Many one-draw streams: multiaccuracy's 10,000 episodes, in-process vs isolated (batched: one
   round trip per ~0.25 s of work). 15:06 UTC: in-process 2.25 s, isolated 2.37 s (ratio 1.05),
   --jobs 2 2.01 s; before the batches (one round trip per episode), at load 3–5: isolated 13.9 s
   against in-process 5.6 s.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import fairaudit as fa
from fairaudit.data import population_from_frame
from fairaudit.sampler import Sampler

ROOT = Path(__file__).resolve().parents[1]
POP = ROOT / "examples" / "data" / "population.csv"

CPU_BOUND = '''
import fairaudit as fa

WORK = {work}


@fa.selector
def allocate(scores, k, rng):
    # a fixed amount of arithmetic per call (not a wait on the clock): under load it takes
    # longer in wall time exactly as the audit's own work does, so paired ratios hold
    s = 0
    for i in range(WORK):
        s += i * i
    return rng.choice(len(scores), size=k, replace=False)
'''


def bare_loop(func, scores, k, calls):
    t0 = time.perf_counter()
    for j in range(calls):
        rng = np.random.default_rng(j)
        func(scores=scores, k=k, rng=rng)
    return time.perf_counter() - t0


def bench_overhead(draws=3000, pairs=5, work=30000):
    """fairaudit against a bare loop of the same allocator calls, on a CPU-bound allocator
    (~1 ms of arithmetic a call on an idle core). Paired: each round times the bare loop,
    then the in-process audit, the isolated audit (a new worker) and the warm-worker audit,
    and the ratios are taken within the round; the median over ``pairs`` rounds is
    printed, with every round's ratio, so a burst of load on the shared machine moves one
    round, not the result. The bare loop makes as many calls as the audit actually made
    (the draws the verdict used, read from the result, + the reproducibility probe)."""
    from fairaudit.data import load_population
    from fairaudit.workers import close_parked
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "cpu_bound.py"
        path.write_text(CPU_BOUND.format(work=work))
        target = fa.load_target(str(path))
        pop = load_population(POP)
        k = max(1, pop.n // 10)
        # threshold 0.9 sits inside the impact ratios' intervals: not decided early
        params = {"selection_rates": {"max_draws": draws, "threshold": 0.9}}
        res = fa.audit(target, checks=["selection_rates"], data=pop, params=params, in_process=True)  # warm-up
        used = res.checks[0].draws
        calls = used + 2  # + the reproducibility probe
        ratios = {"in-process": [], "isolated": [], "warm worker": []}
        bare = []
        for _ in range(pairs):
            t_bare = bare_loop(target.func, pop.scores, k, calls)
            bare.append(t_bare)
            t0 = time.perf_counter()
            r = fa.audit(target, checks=["selection_rates"], data=pop, params=params, in_process=True)
            ratios["in-process"].append((time.perf_counter() - t0) / t_bare)
            assert r.checks[0].draws == used
            close_parked()   # cold: a new worker process, as one `fairaudit check` starts
            t0 = time.perf_counter()
            fa.audit(str(path), checks=["selection_rates"], data=pop, params=params)
            ratios["isolated"].append((time.perf_counter() - t0) / t_bare)
            t0 = time.perf_counter()   # warm: the worker parked by the audit just before
            fa.audit(str(path), checks=["selection_rates"], data=pop, params=params)
            ratios["warm worker"].append((time.perf_counter() - t0) / t_bare)
        print(f"[overhead] CPU-bound allocator, {used} draws used of {draws} allowed ({calls} calls); bare loop "
              f"median {np.median(bare):.2f} s; paired ratios audit / bare loop, median of {pairs} rounds:")
        for label, aim in (("in-process", 1.05), ("isolated", 1.10), ("warm worker", None)):
            v = ratios[label]
            print(f"[overhead]   {label:<12} {np.median(v):.3f}" + (f" (aim <= {aim})" if aim else "") +
                  "   rounds: " + ", ".join(f"{x:.3f}" for x in v))

        def cli(n_draws):
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "fairaudit.cli", "check", str(path), "--checks",
                                "selection_rates", "--data", str(POP), "--draws", str(n_draws), "--param",
                                "selection_rates.threshold=0.9", "--html", str(Path(d) / "r.html")],
                               capture_output=True, cwd=d)
            assert p.returncode in (0, 1), p.stderr.decode()[-2000:]
            return time.perf_counter() - t0

        rounds = []
        for _ in range(max(2, pairs // 2)):
            t_b = bare_loop(target.func, pop.scores, k, calls)
            t_cli, t_fixed = cli(used), cli(1)   # --draws 1: start-up, imports, the report
            rounds.append((t_cli, t_fixed, t_b))
        t_cli, t_fixed = np.median([r[0] for r in rounds]), np.median([r[1] for r in rounds])
        per = np.median([(r[0] - r[1]) / r[2] for r in rounds])
        print(f"[overhead] `fairaudit check` command: median {t_cli:.2f} s, of which fixed {t_fixed:.2f} s (the same "
              f"command with --draws 1); per-draw ratio (command − fixed) / bare loop, paired, median {per:.3f}")
        return float(np.median(ratios["in-process"]))


BUSY = '''
import time
import fairaudit as fa

@fa.selector
def allocate(scores, k, rng):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < {secs!r}:
        pass
    return rng.choice(len(scores), size=k, replace=False)
'''


def bench_jobs(draws=600, repeats=2):
    """--jobs 2 against --jobs 1 (isolated, the default) on a 10 ms and a 0.1 ms
    allocator, ``draws`` draws of selection_rates (sequential sampling, all draws used)."""
    from fairaudit.workers import close_parked
    params = {"selection_rates": {"max_draws": draws, "threshold": 0.9}}
    with tempfile.TemporaryDirectory() as d:
        for secs, label in ((0.01, "10 ms"), (0.0001, "0.1 ms")):
            path = Path(d) / f"busy_{label.replace(' ', '').replace('.', '_')}.py"
            path.write_text(BUSY.format(secs=secs))
            best = {1: float("inf"), 2: float("inf")}
            for _ in range(repeats):
                for jobs in (1, 2):
                    close_parked()   # cold, as one `fairaudit check --jobs N`: its workers start inside the timing
                    t0 = time.perf_counter()
                    r = fa.audit(str(path), checks=["selection_rates"], data=str(POP), params=params, jobs=jobs)
                    best[jobs] = min(best[jobs], time.perf_counter() - t0)
                    assert r.checks[0].draws == draws
            print(f"[jobs] {label} allocator, {draws} draws: --jobs 1 {best[1]:.2f} s, --jobs 2 {best[2]:.2f} s; "
                  f"jobs-2-vs-1 speed-up {best[1] / best[2]:.2f}x (best of {repeats}; aim: >= 1.8 at 10 ms, "
                  f">= 1.0 at 0.1 ms)")


def bench_vectorised(n=1000, k=100, draws=20000):
    target = fa.load_target(str(ROOT / "examples" / "allocators" / "broome_lottery.py"))
    from fairaudit.data import generate_claims
    c = generate_claims("uniform", n, np.random.default_rng(0))
    inst = fa.Instance("bench", scores=c, k=k)
    t0 = time.perf_counter()
    Sampler(target, seed=0, isolate=False).draw(inst, draws, "v")
    t_vec = time.perf_counter() - t0
    per_call = fa.target_from_callable(lambda scores, k, rng: target.func(scores, k, rng), kind="selection")
    t0 = time.perf_counter()
    Sampler(per_call, seed=0, isolate=False).draw(inst, draws, "p")
    t_pc = time.perf_counter() - t0
    print(f"[vectorised] Broome lottery n={n}, k={k}, {draws} draws: vectorised {t_vec:.2f} s, "
          f"per-call {t_pc:.2f} s; per-call / vectorised = {t_pc / t_vec:.1f}x")


def bench_sequential():
    import pandas as pd
    g = ["a"] * 50 + ["b"] * 50
    equal = population_from_frame(pd.DataFrame({"score": np.ones(100), "g": g}))
    split = population_from_frame(pd.DataFrame({"score": np.r_[np.ones(50), np.full(50, 0.5)], "g": g}))
    # a uniform lottery passes the four-fifths rule clearly; top-k on scores that split by group fails it
    for alloc, pop, label in (("uniform_lottery.py", equal, "clear pass"), ("top_k.py", split, "clear fail")):
        r = fa.audit(str(ROOT / "examples" / "allocators" / alloc), checks=["selection_rates"], data=pop, k=10)
        c = r.checks[0]
        print(f"[sequential] {label} ({alloc}): verdict {c.verdict} after {c.draws} draws; "
              f"fixed-size sampling would use {c.params['max_draws']} → ratio {c.draws / c.params['max_draws']:.3f}")


def bench_episodes():
    """Many one-draw streams (multiaccuracy's 10,000 episodes on the README's UA ranking):
    isolated workers get them in batches, one round trip per ~0.25 s of work."""
    kw = dict(checks=["multiaccuracy"], data=str(ROOT / "examples" / "data" / "multiaccuracy_population.csv"), seed=0)
    target = str(ROOT / "examples" / "allocators" / "ua_ranking.py")
    times = {}
    for label, extra in (("in-process", {"in_process": True}), ("isolated", {}), ("isolated --jobs 2", {"jobs": 2})):
        t0 = time.perf_counter()
        r = fa.audit(target, **kw, **extra).checks[0]
        times[label] = time.perf_counter() - t0
    print(f"[episodes] multiaccuracy, {r.draws:,} one-draw episodes: " +
          ", ".join(f"{k} {v:.2f} s" for k, v in times.items()) +
          f"; isolated / in-process = {times['isolated'] / times['in-process']:.2f}")


if __name__ == "__main__":
    import os
    print(f"load average before: {os.getloadavg()[0]:.2f} (2-core machine shared with other work)")
    bench_overhead()
    if sys.argv[1:] == ["overhead"]:
        raise SystemExit(0)
    bench_jobs()
    bench_vectorised()
    bench_sequential()
    bench_episodes()
