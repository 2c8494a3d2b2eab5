"""Draws to verdict of the sequentially sampled checks on the bundled examples.

    python benchmarks/bench_sequential.py [--out FILE]

For each (check, bundled allocator) at seed 0 and default parameters: the verdict, the
draws the check took (``CheckResult.draws``: per input for the looks-based checks) and
the audit's wall time. Run it before and after a change to the intervals: fewer draws
for the same verdicts is the gain; a changed verdict needs explaining.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import fairaudit as fa

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "allocators"
POP = str(ROOT / "examples" / "data" / "population.csv")

CASES = [
    ("selection_rates", "top_k", POP), ("selection_rates", "broome_lottery", POP),
    ("selection_rates", "uniform_lottery", POP), ("selection_rates", "group_tiebreak", POP),
    ("selection_rates", "noisy_top", POP),
    ("anonymity", "uniform_lottery", None), ("anonymity", "broome_lottery", None),
    ("anonymity", "group_tiebreak", POP), ("anonymity", "position_biased", None), ("anonymity", "ua_ranking", None),
    ("obliviousness", "greedy_cdf", None), ("obliviousness", "broome_lottery", None),
    ("obliviousness", "uniform_lottery", None),
    ("broome", "broome_lottery", None), ("broome", "partial_lottery", None), ("broome", "uniform_lottery", None),
    ("broome", "flat_band_lottery", None),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="")
    ap.add_argument("--only", default="")
    a = ap.parse_args(argv)
    only = {c for c in a.only.split(",") if c}
    lines = ["| check | allocator | data | verdict | draws | seconds |", "|---|---|---|---|---|---|"]
    for check, name, data in CASES:
        if only and check not in only:
            continue
        t = time.perf_counter()
        kw = {"data": data} if data else {}
        c = fa.audit(str(EX / f"{name}.py"), checks=[check], seed=0, **kw).checks[0]
        secs = time.perf_counter() - t
        lines.append(f"| {check} | {name} | {'population.csv' if data else '—'} | {c.verdict} | {c.draws:,} | {secs:.1f} |")
        print(lines[-1], flush=True)
    if a.out:
        Path(a.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
