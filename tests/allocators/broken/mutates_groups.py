"""Broken on purpose: overwrites a group column of its input in place."""
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng, groups):
    col = groups.columns[0]
    groups[col] = groups[col].iloc[::-1].to_numpy()
    return rng.choice(len(scores), size=k, replace=False)
