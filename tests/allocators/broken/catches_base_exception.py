"""Hostile on purpose: swallows any exception (a timeout included) around a long sleep."""
import time
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    while True:
        try:
            time.sleep(60)
        except BaseException:
            pass
