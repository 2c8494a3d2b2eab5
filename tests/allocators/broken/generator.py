"""Broken on purpose: a generator function (yields instead of returning)."""
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    for i in rng.choice(len(scores), size=k, replace=False):
        yield int(i)
