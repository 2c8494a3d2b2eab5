"""Broken on purpose: sleeps far past any sensible timeout."""
import time
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    time.sleep(60)
    return list(range(k))
