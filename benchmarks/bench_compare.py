"""Validation of ``fairaudit compare`` on real audits, over many seeds (too long for the
test suite; run ``python benchmarks/bench_compare.py [N_SEEDS]``).

1. False regressions of a behaviour-preserving change. BASELINE audits the vectorised
   Broome lottery (``examples/allocators/broome_lottery.py``, Gumbel-top-k); CURRENT
   audits the same lottery written differently (``rng.choice`` one draw at a time), so
   the outcome *distribution* is identical but every draw differs — the worst case for
   a same-seed gate (an unchanged file gives identical JSON and can never trip it).
   Checks: ``selection_rates`` on ``examples/data/population.csv`` and ``broome`` with the
   CI example's settings. The rate must be at most 2α = 0.10 per statistic (the union
   bound), and is expected far below it.
2. Detection of the regression demo: BASELINE the Broome lottery, CURRENT the slightly
   flattened lottery of ``examples/ci/flattened_lottery.py``, both with the CI example's
   settings (``examples/ci/fairaudit.toml``), over the same seeds.

Measured (40 seeds, 2026-11-22, CI settings with ``stop_early = false``): equivalent
rewrite flagged 0/40 for ``selection_rates`` and 0/40 for ``broome`` (95 % CI [0, 0.088]
each); the flattened lottery caught 40/40 (95 % CI [0.912, 1]). Wall time 485 s on a
loaded 2-core machine. Re-measured 2026-12-01 (20 seeds, 159 s): 0/20 and 0/20 false
regressions, the flattened lottery caught 20/20.
"""
from __future__ import annotations

import sys
import time
import tomllib
from pathlib import Path

import numpy as np

import fairaudit as fa
from fairaudit.compare import compare
from fairaudit.engine import AuditConfig, audit
from fairaudit.stats import proportion_ci
from fairaudit.run.targets import target_from_callable
from fairaudit.run.load import load_target

ROOT = Path(__file__).resolve().parents[1]
POP = str(ROOT / "examples" / "data" / "population.csv")
CFG = tomllib.loads((ROOT / "examples" / "ci" / "fairaudit.toml").read_text())["tool"]["fairaudit"]


@fa.selector
def broome_by_choice(scores, k, rng):
    c = np.asarray(scores, dtype=float)
    return rng.choice(len(c), size=k, replace=False, p=c / c.sum())


def run(target, seed, checks, data=None, params=None):
    return audit(target, checks=checks, data=data,
                 config=AuditConfig(seed=seed, confidence=0.95, params=params or {})).to_dict()


def main(n_seeds: int = 40):
    base_t = load_target(str(ROOT / "examples" / "allocators" / "broome_lottery.py"))
    same_t = target_from_callable(broome_by_choice, path="broome_by_choice")
    flat_t = load_target(str(ROOT / "examples" / "ci" / "flattened_lottery.py"))
    same_t.kind = base_t.kind
    settings = {
        "selection_rates": dict(checks=["selection_rates"], data=POP),
        "broome (CI settings)": dict(checks=["broome"], params=CFG["params"]),
    }
    t0 = time.perf_counter()
    false = {name: 0 for name in settings}
    hits = 0
    for s in range(n_seeds):
        for name, kw in settings.items():
            b = run(base_t, s, **kw)
            c = run(same_t, s, **kw)
            c["target"]["path"] = b["target"]["path"]
            false[name] += compare(b, c).exit_code == 1
            if name.startswith("broome"):
                hits += compare(b, run(flat_t, s, **kw)).exit_code == 1
    for name in settings:
        lo, hi = proportion_ci(false[name], n_seeds, 0.95)
        print(f"{name}: equivalent rewrite flagged as a regression in {false[name]}/{n_seeds} seeds "
              f"(rate {false[name] / n_seeds:.3f}, 95% CI [{lo:.3f}, {hi:.3f}]; bound 2α = 0.10)")
    lo, hi = proportion_ci(hits, n_seeds, 0.95)
    print(f"regression demo (flatten 0.5 over the 30th-70th percentile): caught in {hits}/{n_seeds} seeds "
          f"(rate {hits / n_seeds:.3f}, 95% CI [{lo:.3f}, {hi:.3f}])")
    print(f"wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
