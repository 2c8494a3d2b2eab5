"""Cost of containment (issue 26): time to start a worker and load a trivial allocator
(WorkerPool.probe), and a whole small audit, with the launcher (PID namespace, hard
memory cap) and without it (FAIRAUDIT_NO_CONTAINMENT=1). Paired A B A B runs, each in a
fresh interpreter; reports the median of the per-pair ratios.

    python benchmarks/bench_containment.py [PAIRS]
"""
import os
import statistics
import subprocess
import sys
import tempfile

ALLOC = "import numpy as np\n\ndef select(scores, k, rng):\n    return rng.choice(len(scores), size=k, replace=False)\n"
PROBE = r"""
import sys, time
from fairaudit.workers import WorkerPool
t0 = time.perf_counter()
for _ in range(3):
    p = WorkerPool(("spec", sys.argv[1]), jobs=1, timeout=30)
    p.probe()
    p.close()
print((time.perf_counter() - t0) / 3)
"""
AUDIT = r"""
import sys, time
from fairaudit.engine import audit
t0 = time.perf_counter()
audit(sys.argv[1], checks=["determinism"])
print(time.perf_counter() - t0)
"""


def once(code, alloc, contained):
    env = dict(os.environ)
    env.pop("FAIRAUDIT_NO_CONTAINMENT", None)
    if not contained:
        env["FAIRAUDIT_NO_CONTAINMENT"] = "1"
    out = subprocess.run([sys.executable, "-c", code, alloc], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(pairs=5):
    d = tempfile.mkdtemp()
    alloc = os.path.join(d, "alloc.py")
    with open(alloc, "w") as f:
        f.write(ALLOC)
    for name, code in (("worker start + load (s)", PROBE), ("audit, determinism (s)", AUDIT)):
        a, b = [], []
        for _ in range(pairs):
            a.append(once(code, alloc, True))
            b.append(once(code, alloc, False))
        ratios = [x / y for x, y in zip(a, b)]
        print(f"{name}: contained {statistics.median(a):.3f}, plain {statistics.median(b):.3f}, "
              f"median ratio {statistics.median(ratios):.2f} (pairs: {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
