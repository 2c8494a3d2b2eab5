"""Benchmark of the ``multiaccuracy`` check: episodes per second for n = 50, m = 3, and the
time to the verdict at the default budget (10 000 episodes), on the bundled data.

    python benchmarks/bench_multiaccuracy.py [--episodes 10000] [--repeat 1]

Prints, per ranker:
* episodes/s through the sampler (one episode = n = 50 people drawn from the
  8000-person pool, one ranking; every episode is its own seeded stream);
* the same rankings drawn directly with the ranker function, without the sampler
  (the cost of the ranker alone), and the ratio;
* the wall time of the whole check at defaults (episodes + predictor audit + bootstrap
  reference + tables), i.e. the time to the verdict, and the verdict.

Measured on the 2-core dev box (seed 0, load average ≈ 4 from other jobs):
ua_ranking 8,736 episodes/s through the sampler (30,511/s ranker alone), time to
verdict 1.8 s for 10,000 episodes → pass (0.022 [0.000, 0.070]); prp_ranking 11,890
episodes/s (210,261/s alone), 1.2 s → fail (0.599 [0.566, 0.631]).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import fairaudit as fa
from fairaudit.data import load_population
from fairaudit.sampler import Sampler
from fairaudit.instance import Instance

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "data" / "multiaccuracy_population.csv"
RANKERS = ["ua_ranking.py", "prp_ranking.py"]


def episodes_per_second(target_path: str, episodes: int, n: int = 50):
    pop = load_population(DATA)
    P = pop.predictions
    target = fa.load_target(target_path)
    sampler = Sampler(target, seed=0)
    idx = np.random.default_rng(0).integers(0, pop.n, (episodes, n))
    t0 = time.perf_counter()
    for e in range(episodes):
        sampler.draw(Instance(f"episode {e}", predictions=P[idx[e]]), 1, f"multiaccuracy/episode/{e}")
    through_sampler = episodes / (time.perf_counter() - t0)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for e in range(episodes):
        target.func(predictions=P[idx[e]], rng=rng)
    direct = episodes / (time.perf_counter() - t0)
    return through_sampler, direct


def time_to_verdict(target_path: str, episodes: int | None):
    t0 = time.perf_counter()
    res = fa.audit(target_path, checks=["multiaccuracy"], data=str(DATA), draws=episodes)
    return time.perf_counter() - t0, res.checks[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=2000, help="episodes for the throughput measurement")
    ap.add_argument("--verdict-episodes", type=int, default=None, help="episodes for the time to verdict "
                    "(default: the check's default budget)")
    args = ap.parse_args()
    print(f"multiaccuracy benchmark — pool {DATA.name}, n = 50, m = 3")
    for r in RANKERS:
        path = str(ROOT / "examples" / "allocators" / r)
        eps, direct = episodes_per_second(path, args.episodes)
        t, chk = time_to_verdict(path, args.verdict_episodes)
        print(f"{r:16s} {eps:8.0f} episodes/s through the sampler | {direct:8.0f} /s ranker alone "
              f"(sampler overhead ×{direct / eps:.1f}) | time to verdict {t:6.1f} s for {chk.draws} episodes "
              f"→ {chk.verdict} ({chk.statistic.estimate:.3f} [{chk.statistic.ci[0]:.3f}, {chk.statistic.ci[1]:.3f}])")


if __name__ == "__main__":
    main()
