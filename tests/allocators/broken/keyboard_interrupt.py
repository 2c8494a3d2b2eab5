"""Hostile on purpose: raises KeyboardInterrupt."""
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    raise KeyboardInterrupt
