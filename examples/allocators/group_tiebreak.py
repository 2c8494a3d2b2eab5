"""Top-k by claim with ties broken in favour of a group (a *non-anonymous* allocator).

Selects the k highest claims. Among exactly equal claims it prefers members of the
favoured group — the first category, in sorted order, of the first group column
(``sex = F`` in ``examples/data/population.csv``; ``A`` for fairaudit's synthetic
``group`` column) — and breaks the remaining ties uniformly at random (so it is not
tie-breaking by index: relisting the people in another order changes nothing).

It is invariant under permutations of the whole rows, yet fails the attribute-swap
probe of ``anonymity``: exchanging the group of two people with equal claims at the
selection cut moves the seat from one to the other (the counterfactual test). Needs
``groups`` (run with ``--data`` or let fairaudit synthesise a group column).
Vectorised (accepts ``size``).
"""
import numpy as np
import fairaudit as fa


def favoured_mask(groups) -> np.ndarray:
    col = groups.columns[0]
    vals = groups[col].astype(str).to_numpy()
    return vals == sorted(set(vals))[0] if len(vals) else np.zeros(0, bool)


@fa.selector
def allocate(scores, k, groups, rng, size=None):
    c = np.asarray(scores, dtype=float)
    fav = favoured_mask(groups)
    B = 1 if size is None else size
    # Sort key: claim first, then group preference, then a random tie-break.
    u = rng.random((B, len(c)))
    key = np.lexsort((u, np.broadcast_to(~fav, u.shape), np.broadcast_to(-c, u.shape)), axis=1)
    out = key[:, :k]
    return out[0] if size is None else out
