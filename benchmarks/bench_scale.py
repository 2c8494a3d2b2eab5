"""Scaling curves (issue 30): time and peak memory against the number of people.

    python benchmarks/bench_scale.py                      # selection n = 200 … 200,000; ranking n = 10 … 10,000
    python benchmarks/bench_scale.py --quick              # selection up to 20,000; ranking up to 1,000
    python benchmarks/bench_scale.py --part ranking --max-n 2000

Each point runs in a fresh child process (its peak resident memory is that process's,
``ru_maxrss``) and reports CPU seconds as well as wall seconds: the machine is shared, and
CPU time is the figure that load does not inflate. The fitted exponent is the slope of
log(CPU time) on log(n) over the points with n ≥ the third size (where fixed costs no
longer dominate).

- selection: ``selection_rates`` and ``broome`` in-process audits of the uniform lottery
  (examples/allocators/uniform_lottery.py) on a generated population of n people (a score
  and two group columns), k = n/10, at most 2,048 draws;
- ranking: the exact UA marginals (``fairaudit.ua_marginals``, O(n³m)) of n people with
  m = 3 labels, and the ``ua_conformance`` audit of the UA ranker on them up to
  ``--audit-max`` (default 1,000).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _point(part: str, n: int) -> dict:
    """One measurement, run in this (child) process."""
    import pandas as pd

    import fairaudit as fa
    from fairaudit.data import population_from_frame
    rng = np.random.default_rng(0)
    c0, t0 = time.process_time(), time.perf_counter()
    if part == "selection":
        frame = pd.DataFrame({"score": rng.random(n), "sex": rng.choice(["F", "M"], n),
                              "age_band": rng.choice(["<30", "30-50", ">50"], n)})
        pop = population_from_frame(frame)
        target = str(ROOT / "examples" / "allocators" / "uniform_lottery.py")
        c0, t0 = time.process_time(), time.perf_counter()
        res = fa.audit(target, checks=["selection_rates", "broome"], data=pop, k=max(1, n // 10), draws=2048,
                       in_process=True)
        verdicts = {c.id: c.verdict for c in res.checks}
    elif part == "ua_marginals":
        P = rng.dirichlet(np.ones(3), size=n)
        c0, t0 = time.process_time(), time.perf_counter()
        fa.ua_marginals(P)
        verdicts = {}
    elif part == "ua_conformance":
        P = rng.dirichlet(np.ones(3), size=n)
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_scale_ua_{os.getpid()}.csv"
        pd.DataFrame({"p_0": P[:, 0], "p_1": P[:, 1], "p_2": P[:, 2]}).to_csv(path, index=False)
        target = str(ROOT / "examples" / "allocators" / "ua_ranking.py")
        c0, t0 = time.process_time(), time.perf_counter()
        res = fa.audit(target, checks=["ua_conformance"], data=str(path), params={"ua_conformance": {"max_n": n}},
                       in_process=True)
        path.unlink()
        verdicts = {c.id: c.verdict for c in res.checks}
    else:
        raise ValueError(part)
    return {"part": part, "n": n, "cpu": time.process_time() - c0, "wall": time.perf_counter() - t0,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "verdicts": verdicts}


def measure(part: str, n: int, timeout: float) -> dict:
    try:
        p = subprocess.run([sys.executable, __file__, "--point", part, str(n)], capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"part": part, "n": n, "cpu": float("nan"), "wall": float("inf"), "peak_mb": float("nan"),
                "verdicts": {"timeout": f">{timeout:.0f} s"}}
    lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"part": part, "n": n, "cpu": float("nan"), "wall": float("nan"), "peak_mb": float("nan"),
                "verdicts": {"error": p.stderr.strip().splitlines()[-1][:80] if p.stderr.strip() else "?"}}
    return json.loads(lines[-1])


def exponent(rows: list[dict]) -> float:
    pts = [(r["n"], r["cpu"]) for r in rows[2:] if np.isfinite(r["cpu"]) and r["cpu"] > 0]
    if len(pts) < 2:
        return float("nan")
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(x, y, 1)[0])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--point", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--part", choices=["selection", "ranking", "all"], default="all")
    ap.add_argument("--max-n", type=int, default=None)
    ap.add_argument("--audit-max", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=1800.0)
    args = ap.parse_args(argv)
    if args.point:
        print(json.dumps(_point(args.point[0], int(args.point[1]))))
        return
    sel = [200, 600, 2000, 6000, 20000] + ([] if args.quick else [60000, 200000])
    rank = [10, 30, 100, 300, 1000] + ([] if args.quick else [3000, 10000])
    if args.max_n:
        sel, rank = [n for n in sel if n <= args.max_n], [n for n in rank if n <= args.max_n]
    print(f"# load average {os.getloadavg()[0]:.1f} at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
          f"(2 shared cores: CPU seconds are the figure load does not inflate)")
    plan = []
    if args.part in ("selection", "all"):
        plan.append(("selection", sel))
    if args.part in ("ranking", "all"):
        plan.append(("ua_marginals", rank))
        plan.append(("ua_conformance", [n for n in rank if n <= args.audit_max]))
    for part, sizes in plan:
        rows = []
        print(f"{part:<15} {'n':>8} {'CPU s':>9} {'wall s':>9} {'peak MB':>9}  verdicts")
        for n in sizes:
            r = measure(part, n, args.timeout)
            rows.append(r)
            print(f"{part:<15} {n:>8} {r['cpu']:>9.2f} {r['wall']:>9.2f} {r['peak_mb']:>9.0f}  "
                  f"{','.join(f'{k}={v}' for k, v in r['verdicts'].items())}", flush=True)
        print(f"{part:<15} fitted exponent of CPU time in n (n ≥ {sizes[2] if len(sizes) > 2 else '-'}): "
              f"{exponent(rows):.2f}\n", flush=True)


if __name__ == "__main__":
    main()
