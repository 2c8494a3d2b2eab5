"""Decision logs at scale (issue 15): fairaudit's log checks against DuckDB's own scan.

Writes the issue's synthetic selection log — ``decision_id, score, selected, sex,
age_band``, 100 candidates per decision, 10 selected (the 10 best of score + noise, with a
penalty on one sex) — as Parquet at 1M and 10M rows (``--huge``: also 100M), streamed in
chunks so writing it does not hold the log in memory. Then, per size:

* in this (warm) process, side by side: ``fairaudit.audit(path, checks=["selection_rates"])``
  through the Python API, and DuckDB's ``GROUP BY CUBE(sex, age_band)`` of count and
  sum(selected) over the same file; the ratio is the Done-when figure (≤ 10×);
* in a fresh process each (so ``resource.getrusage`` peak RSS is that run's own): every
  applicable log check alone, all of them together, and the CLI
  ``fairaudit check LOG`` (its start-up cost reported separately: ``fairaudit --version``).

``--engine dask`` / ``--engine spark``: the same per-check runs with the log handed over as
a Dask DataFrame (``dd.read_parquet`` on a LocalCluster of two worker processes) or a
PySpark DataFrame (``local[2]``), each in a fresh process; the peak RSS is the Python
driver's, and ``collected`` says whether the rows were ever collected whole (they should
not be). DuckDB's own scan is timed beside it for scale.

Usage: ``python benchmarks/bench_logs.py [--rows 1000000 10000000] [--huge] [--dir DIR]
[--engine duckdb|dask|spark]``.
Times are wall-clock seconds on whatever else the machine is doing; say so when quoting.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PER_DECISION, K = 100, 10


def write_log(path: Path, rows: int, seed: int = 0, chunk_decisions: int = 20_000) -> None:
    if path.exists():
        return
    rng = np.random.default_rng(seed)
    decisions = rows // PER_DECISION
    tmp = path.with_suffix(".tmp")
    writer = None
    for start in range(0, decisions, chunk_decisions):
        d = min(chunk_decisions, decisions - start)
        score = rng.random((d, PER_DECISION))
        sex = rng.random((d, PER_DECISION)) < 0.5
        age = rng.integers(0, 3, (d, PER_DECISION))
        merit = score + 0.3 * rng.standard_normal((d, PER_DECISION)) - 0.05 * sex
        top = np.argsort(-merit, axis=1)[:, :K]
        selected = np.zeros((d, PER_DECISION), dtype=np.int8)
        np.put_along_axis(selected, top, 1, axis=1)
        table = pa.table({
            "decision_id": np.repeat(np.arange(start, start + d, dtype=np.int64), PER_DECISION),
            "score": score.ravel().round(4),
            "selected": selected.ravel(),
            "sex": pa.array(np.where(sex.ravel(), "F", "M")),
            "age_band": pa.array(np.array(["under_30", "30_49", "50_plus"])[age.ravel()]),
        })
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
        writer.write_table(table, row_group_size=1_000_000)
    writer.close()
    tmp.rename(path)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB


def duckdb_cube(path: Path) -> float:
    import duckdb
    con = duckdb.connect()
    t = time.perf_counter()
    con.sql(f"SELECT sex, age_band, count(*), sum(selected) FROM read_parquet('{path}') "
            f"GROUP BY CUBE(sex, age_band)").fetchall()
    return time.perf_counter() - t


def engine_log(path: str, engine: str):
    """The log at ``path`` as ``engine`` holds it (and what to close afterwards)."""
    if engine == "dask":
        import warnings

        import dask.dataframe as dd
        import distributed
        warnings.simplefilter("ignore", FutureWarning)
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        client = distributed.Client(cluster)
        return dd.read_parquet(path, split_row_groups=True), lambda: (client.close(), cluster.close())
    if engine == "spark":
        from pyspark.sql import SparkSession
        s = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").config("spark.sql.shuffle.partitions", "4")
             .getOrCreate())
        s.sparkContext.setLogLevel("ERROR")
        return s.read.parquet(path), s.stop
    return path, lambda: None


def one(path: str, checks: str, engine: str = "duckdb") -> None:
    """Child process: one audit; prints JSON {seconds, rss_mb, verdicts, collected}."""
    import fairaudit as fa
    from fairaudit.logs.load import log_from_any
    source, close = engine_log(path, engine)
    t = time.perf_counter()
    log = log_from_any(source) if engine != "duckdb" else None
    which = None if checks == "all" else checks.split(",")
    res = fa.audit(path, checks=which) if log is None else fa.audit(log=log, checks=which)
    sec = time.perf_counter() - t
    collected = bool(getattr(getattr(log, "table", None), "materialised", False))
    close()
    print(json.dumps({"seconds": sec, "rss_mb": peak_rss_mb(), "collected": collected,
                      "verdicts": {c.id: c.verdict for c in res.checks}}))


def child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def timed_cli(args: list[str], workdir: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one CLI run: measured by a fresh intermediate
    process whose only child is the CLI (so earlier children do not count)."""
    exe = str(Path(sys.executable).parent / "fairaudit")
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "subprocess.run(sys.argv[1:], capture_output=True); "
             "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", probe, exe, *args], cwd=workdir, capture_output=True, text=True)
    sec, rss = out.stdout.split()
    return float(sec), float(rss)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="*", default=[1_000_000, 10_000_000])
    ap.add_argument("--huge", action="store_true", help="also 100M rows")
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "fairaudit_bench_logs"))
    ap.add_argument("--one", nargs=2, metavar=("PATH", "CHECKS"), help=argparse.SUPPRESS)
    ap.add_argument("--engine", choices=["duckdb", "dask", "spark"], default="duckdb",
                    help="hand the log over as a Dask or PySpark DataFrame (per-check runs only)")
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--checks", help="only these log checks (comma-separated; default every applicable one)")
    a = ap.parse_args()
    if a.one:
        return one(*a.one, a.engine)
    import fairaudit as fa
    rows = list(a.rows) + ([100_000_000] if a.huge else [])
    d = Path(a.dir)
    d.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores (shared: other work may be running); times are wall seconds\n")
    for n in rows:
        path = d / f"log{n // 1_000_000}m.parquet"
        t = time.perf_counter()
        write_log(path, n)
        print(f"== {n:,} rows ({path}, {path.stat().st_size / 2**20:.0f} MB; written/reused in "
              f"{time.perf_counter() - t:.1f} s)")
        if a.engine != "duckdb":
            print(f"  DuckDB GROUP BY CUBE on the file {duckdb_cube(path):7.3f} s (for scale)")
            eng = ["--engine", a.engine]
            allres = child(["--one", str(path), a.checks or "all", *eng])
            checks = [c for c, v in allres["verdicts"].items() if v != "skipped"]
            for c in checks:
                r = child(["--one", str(path), c, *eng])
                print(f"  {a.engine}: {c:<26} {r['seconds']:7.2f} s   driver peak RSS {r['rss_mb']:7.0f} MB   "
                      f"{r['verdicts'][c]}   rows collected: {'yes' if r['collected'] else 'no'}")
            print(f"  {a.engine}: all ({', '.join(checks)}) {allres['seconds']:7.2f} s   driver peak RSS "
                  f"{allres['rss_mb']:7.0f} MB   rows collected: {'yes' if allres['collected'] else 'no'}\n")
            continue
        # warm, side by side, in this process
        fa.audit(str(path), checks=["selection_rates"])          # warm-up (imports, caches)
        duckdb_cube(path)
        reps = 3
        fs = [0.0] * reps
        ds = [0.0] * reps
        for r in range(reps):
            t = time.perf_counter()
            res = fa.audit(str(path), checks=["selection_rates"])
            fs[r] = time.perf_counter() - t
            ds[r] = duckdb_cube(path)
        f_best, d_best = min(fs), min(ds)
        print(f"  selection_rates (Python API, warm)  {f_best:7.3f} s   DuckDB GROUP BY CUBE {d_best:7.3f} s   "
              f"ratio {f_best / d_best:5.1f}x   verdict {res.checks[0].verdict}")
        # each applicable log check in its own process (peak RSS of that run alone)
        allres = child(["--one", str(path), a.checks or "all"])
        checks = [c for c, v in allres["verdicts"].items() if v != "skipped"]
        for c in checks:
            r = child(["--one", str(path), c])
            print(f"  {c:<34} {r['seconds']:7.2f} s   peak RSS {r['rss_mb']:7.0f} MB   {r['verdicts'][c]}")
        print(f"  {'all applicable (' + ', '.join(checks) + ')':<34} {allres['seconds']:7.2f} s   "
              f"peak RSS {allres['rss_mb']:7.0f} MB")
        if not a.skip_cli:
            with tempfile.TemporaryDirectory() as w:
                start, _ = timed_cli(["--version"], w)
                sec, rss = timed_cli(["check", str(path), "--html", str(Path(w) / "r.html"),
                                           "--json", str(Path(w) / "r.json")], w)
            print(f"  CLI fairaudit check LOG (all)       {sec:7.2f} s   peak RSS {rss:7.0f} MB   "
                  f"(start-up alone: {start:.2f} s)")
        print()


if __name__ == "__main__":
    main()
