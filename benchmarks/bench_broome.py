"""Timing and validation study of ``broome``. Run: ``python benchmarks/bench_broome.py [--grid] [--study SEEDS]``.

1. (always) Wall time of the ``broome`` audit of the vectorised Broome lottery
   (``examples/allocators/broome_lottery.py``) on one instance, n = 1000, k = 100
   (uniform claims), at the default budget, and the ratio to the raw sampling time of
   the same number of draws (the allocator called directly, same chunking).
2. ``--grid``: the issue's "Done when" grid — claims from the built-in generators
   (uniform, truncated normal, Pareto) × k/n ∈ {0.1, 0.25, 0.5}, n = 1000, seed 0 — for
   top-k, the uniform lottery, the Broome lottery and the partial lottery, with the
   partial lottery's k'/k and n'/n estimates.
3. ``--study SEEDS``: verdict rates over SEEDS seeds at n = 1000 (the default
   instance set, a fresh claim vector per seed) for the Broome lottery (false fails),
   the uniform lottery, top-k, the flat-band lottery and the slightly flattened one
   (``--only`` picks some of them; ``--no-timing`` skips part 1).

Measured (this commit's code, 2 cores shared with other jobs):
  1. pass after 4096 draws, 0.24 s (quiet machine) to 0.54 s (loaded); raw sampling
     0.13-0.30 s; ratio 1.8-1.9x. stop_early=false: 20000 draws, 0.96-2.0 s; raw
     0.63-0.97 s; ratio 1.5-2.1x.
  2. grid: top-k fails all 9 (256 draws each), uniform lottery fails all 9 on BF.1, Broome
     lottery passes all 9, partial lottery fails all 9 with k'/k = 0.500 [0.5, 0.5] and
     n'/n = k/n exactly (upper bounds: uniform 0.149/0.288/0.547, truncated normal
     0.1/0.25/0.504, Pareto 0.21/0.285/0.526 for k/n = 0.1/0.25/0.5).
  3. --study 100 (seeds 1000-1099): Broome lottery pass 100/100 (median 8704 draws,
     1.5 s/audit); uniform lottery fail 100/100; top-k fail 100/100 (768 draws); flat-band
     lottery fail 100/100 (median 34816 draws, 3.1 s); slightly flattened pass 100/100.
  4. --resolution 20 (seeds 2000-2019; default instances): a flat band over the 40th-60th
     claim percentile fails 20/20 (median 44096 draws); over the 45th-55th (one bin wide at
     bins = 10) it passes 20/20 - not seen; with bins = 20 it fails 16/20, inconclusive 4/20
     (median 56384 draws), and the Broome lottery still passes 20/20 at bins = 20.

From the check's docstring (checks/broome.py), as measured when it was written:

Measured (``benchmarks/bench_broome.py --grid --study 100``, default settings, 2 shared
cores): the Broome lottery audit at n = 1000, k = 100 passes after 4096 draws in
0.24–0.54 s against 0.13–0.30 s of raw sampling (1.8–1.9×; ``stop_early=false``: 20000
draws, 0.96–2.0 s, 1.5–2.1×). On the 3×3 grid (uniform / truncated normal / Pareto ×
k/n 0.1, 0.25, 0.5, n = 1000, seed 0) top-k fails (256 draws per instance), the uniform
lottery fails BF.1, the Broome lottery passes and the partial lottery fails with
k'/k = 0.500 and n'/n = k/n exactly (upper bounds of n'/n at most +0.11, Pareto k = 100).
Over 100 seeds of the default instances (n = 1000, a fresh claim vector per seed): the
Broome lottery passed 100/100 (0 false fails; Clopper–Pearson 95% upper bound 3.6%),
top-k and the uniform lottery failed 100/100, the flat-band lottery (weights flat
between the 30th and 70th claim percentile, BF.2 intact) failed 100/100 (median 34816
draws over its three instances), the slightly flattened one (still BF) passed 100/100.
Within bins (issue 18): a refutation on the per-draw contrast ``Σ_{i∈g} u_i 1[i selected]``, ``u_i =
(c_i − c̄_g)/Σ|c − c̄_g|``, against the Broome lottery's (in the pairs' EB family; sampling stays open while
a bin looks flat and is undecided): the bottom 20 % of n = 200 on one weight, which the pairs passed 20/20,
fails 5/5 (16384 draws). Each instance states its resolution (bins used, "a flat band narrower than about
two bins may go unseen unless it covers a whole bin") and a reduced ``bins``. ``--resolution 5``: a
40th–60th band fails 5/5, a 45th–55th one (a bin wide, straddling two) passes 5/5; at bins=20 it fails
3/5 (inconclusive 2/5), the Broome lottery passes 5/5 — before the contrast: 20/20, 20/20, 16/20, 20/20.
"""
from __future__ import annotations

import argparse
import collections
import time
from pathlib import Path

import numpy as np

from fairaudit.engine import audit
from fairaudit.targets import import_file, load_target
from fairaudit.instance import Instance
from fairaudit.sampler import Sampler

ROOT = Path(__file__).resolve().parents[1]
ALLOC = ROOT / "examples" / "allocators"
GRID = ",".join(f"{d}:1000:{r}" for d in ("uniform", "truncated_normal", "pareto") for r in (0.1, 0.25, 0.5))


def timing(repeats: int = 3):
    path = str(ALLOC / "broome_lottery.py")
    params = {"broome": {"instances": "uniform:1000:0.1"}}
    audit(path, checks=["broome"], params=params)       # warm-up (imports, registry)
    best, res = np.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        res = audit(path, checks=["broome"], params=params)
        best = min(best, time.perf_counter() - t)
    c = res.checks[0]
    draws = c.draws
    # Raw sampling of the same draws: the allocator through the sampler (same chunks), no analysis.
    from fairaudit.data import generate_claims
    from fairaudit.engine import AuditConfig, AuditContext
    ctx = AuditContext(AuditConfig())
    claims = generate_claims("uniform", 1000, ctx.rng("broome/claims/uniform/1000/0.1"))
    inst = Instance("timing", scores=claims, k=100)
    raw = np.inf
    for _ in range(repeats):
        s = Sampler(load_target(path), 0)
        t = time.perf_counter()
        s.draw(inst, draws, "raw")
        raw = min(raw, time.perf_counter() - t)
    print(f"broome audit, Broome lottery n=1000 k=100: verdict {c.verdict}, {draws} draws, {best:.2f} s "
          f"(raw sampling {raw:.2f} s, ratio {best / raw:.1f}x)")
    # The whole default budget (stop_early=false): the cost per draw of the analysis.
    full = {"broome": {"instances": "uniform:1000:0.1", "stop_early": "false"}}
    best_f, cf = np.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        cf = audit(path, checks=["broome"], params=full).checks[0]
        best_f = min(best_f, time.perf_counter() - t)
    raw_f = np.inf
    for _ in range(repeats):
        s = Sampler(load_target(path), 0)
        t = time.perf_counter()
        s.draw(inst, cf.draws, "raw")
        raw_f = min(raw_f, time.perf_counter() - t)
    print(f"  same, stop_early=false: {cf.draws} draws, {best_f:.2f} s (raw sampling {raw_f:.2f} s, "
          f"ratio {best_f / raw_f:.1f}x)")


def grid():
    for name in ("top_k", "uniform_lottery", "broome_lottery", "partial_lottery"):
        t = time.perf_counter()
        c = audit(str(ALLOC / f"{name}.py"), checks=["broome"], params={"broome": {"instances": GRID}}).checks[0]
        print(f"{name}: {c.verdict}, {c.draws} draws, {time.perf_counter() - t:.1f} s — {c.message[:140]}")
        for e in c.evidence["instances"]:
            line = f"    {e['instance']:<40} {e['verdict']:<5} draws {e['draws']:>6}"
            p = e.get("partial")
            if name == "partial_lottery" and p:
                line += (f"  k'/k {p['k_prime_rate']['estimate']:.3f} {p['k_prime_rate']['ci']}"
                         f"  n'/n {p['pool_share']['estimate']:.3f} {p['pool_share']['ci']}")
            print(line)


STUDY = ("broome_lottery", "uniform_lottery", "top_k", "flat_band_lottery", "slightly_flattened_lottery")


def study(seeds: int, names=STUDY):
    for name in names:
        v, draws = collections.Counter(), []
        t = time.perf_counter()
        for s in range(seeds):
            c = audit(str(ALLOC / f"{name}.py"), checks=["broome"], seed=1000 + s).checks[0]
            v[c.verdict] += 1
            draws.append(c.draws)
        print(f"{name}: {dict(v)} over {seeds} seeds (n=1000, default instances), median draws "
              f"{int(np.median(draws))}, {(time.perf_counter() - t) / seeds:.1f} s per audit", flush=True)


def _flat_band(band):
    """The flat-band lottery of ``examples/allocators/flat_band_lottery.py`` over another band."""

    import fairaudit as fa
    mod = import_file(ALLOC / "flat_band_lottery.py")

    @fa.selector
    def allocate(scores, k, rng, size=None):
        w = mod.band_weights(scores, band, 1.0)
        keys = np.log(w)[None, :] + rng.gumbel(size=(size or 1, len(w)))
        out = np.argsort(-keys, axis=1)[:, :k]
        return out if size is not None else out[0]
    return allocate


def resolution(seeds: int):
    """How narrow a flat band the default audit sees (bins = 10: each bin is 10% of claims)."""
    cases = [((0.4, 0.6), 10), ((0.45, 0.55), 10), ((0.45, 0.55), 20), (None, 20)]   # None: the Broome lottery
    for band, bins in cases:
        v, draws = collections.Counter(), []
        target = str(ALLOC / "broome_lottery.py") if band is None else _flat_band(band)
        for s in range(seeds):
            c = audit(target, checks=["broome"], seed=2000 + s, params={"broome": {"bins": bins}}).checks[0]
            v[c.verdict] += 1
            draws.append(c.draws)
        print(f"flat band {band}, bins={bins}: {dict(v)} over {seeds} seeds, median draws {int(np.median(draws))}",
              flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", action="store_true")
    ap.add_argument("--study", type=int, default=0)
    ap.add_argument("--only", default=",".join(STUDY), help="allocators of the study, comma-separated")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--resolution", type=int, default=0, help="seeds for the narrow flat-band study")
    a = ap.parse_args()
    if not a.no_timing:
        timing()
    if a.grid:
        grid()
    if a.study:
        study(a.study, [x for x in a.only.split(",") if x])
    if a.resolution:
        resolution(a.resolution)


if __name__ == "__main__":
    main()
