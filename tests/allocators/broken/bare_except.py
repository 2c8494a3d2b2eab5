"""Hostile on purpose: a bare except around a sleep, retried forever."""
import time
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    while True:
        try:
            time.sleep(30)
            return list(range(k))
        except:  # noqa: E722
            continue
