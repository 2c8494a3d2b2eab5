"""Hostile on purpose: os._exit(1) skips every handler."""
import os
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    os._exit(1)
