"""Broken on purpose: names instead of indices."""
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    return [f"person-{i}" for i in rng.choice(len(scores), size=k, replace=False)]
