"""Broken on purpose: two decorated allocators; which one to audit?"""
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    return rng.choice(len(scores), size=k, replace=False)


@fa.selector
def allocate_too(scores, k, rng):
    return rng.choice(len(scores), size=k, replace=False)
