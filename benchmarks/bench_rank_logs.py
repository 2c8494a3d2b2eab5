"""Peak memory and time of ``exposure`` and ``ranked_representation`` on a large ranking log
(issue 28), aggregated by DuckDB where the log is:

    python benchmarks/bench_rank_logs.py --rows 10000000 --out /tmp/rank_log.parquet

writes the log (decisions of 10 rankings each, sex, race, label, p_1/p_0, position) if
absent, then runs each check in its own ``fairaudit check`` process under
``/usr/bin/time -v`` and prints its wall time, peak RSS and verdict.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile


def write_log(path: str, rows: int, n: int = 10, seed: int = 0) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    rng = np.random.default_rng(seed)
    writer = None
    chunk = 1_000_000
    for start in range(0, rows, chunk):
        m = min(chunk, rows - start)
        d = (start + np.arange(m)) // n
        label = rng.integers(0, 2, m)
        p1 = np.clip(0.5 * label + 0.5 * rng.random(m), 0, 1).round(3)
        sex = rng.choice(np.array(["F", "M"]), m)
        key = p1 + 0.3 * rng.standard_normal(m) - 0.05 * (sex == "F")
        # position within each decision of n rows: rank of -key inside blocks of n
        blocks = key.reshape(-1, n)
        pos = np.empty_like(blocks, dtype=np.int64)
        np.put_along_axis(pos, np.argsort(-blocks, axis=1), np.arange(1, n + 1)[None, :], axis=1)
        t = pa.table({"decision_id": d, "position": pos.ravel(), "sex": sex,
                      "race": rng.choice(np.array(["a", "b", "c"]), m), "label": label, "p_1": p1, "p_0": 1 - p1})
        if writer is None:
            writer = pq.ParquetWriter(path, t.schema)
        writer.write_table(t)
    writer.close()


def run(path: str, check: str) -> dict:
    out = os.path.join(tempfile.mkdtemp(), "r.json")
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "fairaudit.cli", "check", path, "--checks", check,
           "--no-html", "--json", out]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if not os.path.exists(out):
        raise SystemExit(f"{check}: the audit wrote no result (exit {p.returncode}):\n{p.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) / 1024
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", p.stderr).group(1)
    res = json.load(open(out))["checks"][0]
    return {"check": check, "wall": wall, "peak_rss_mb": round(rss), "verdict": res["verdict"],
            "statistic": res["statistic"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--out", default="/tmp/fairaudit_rank_log.parquet")
    a = ap.parse_args(argv)
    if not os.path.exists(a.out):
        write_log(a.out, a.rows)
    for check in ("exposure", "ranked_representation"):
        print(json.dumps(run(a.out, check)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
