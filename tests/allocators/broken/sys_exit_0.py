"""Hostile on purpose: ends the process with status 0 (a CI gate would read a pass)."""
import sys
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    sys.exit(0)
