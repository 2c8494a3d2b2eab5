"""Hostile on purpose: ends the process with status 3."""
import sys
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    sys.exit(3)
