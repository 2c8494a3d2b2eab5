"""Broken on purpose: a pure-Python busy loop that never ends."""
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    x = 0
    while True:
        x += 1
