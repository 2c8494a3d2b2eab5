"""A uniform lottery that sleeps 0.1 ms a call: a stand-in for a slow allocator (benchmarks/progress_eta.py)."""
import time
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    time.sleep(0.0001)
    return rng.choice(len(scores), size=k, replace=False)
