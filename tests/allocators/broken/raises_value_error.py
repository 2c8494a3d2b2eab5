"""Broken on purpose: raises on every call."""
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    raise ValueError("the model file is missing")
