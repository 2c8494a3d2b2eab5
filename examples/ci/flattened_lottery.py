"""The "pull request" of the regression demo: the Broome lottery (seed 000, Example 4.3)
with its weights *slightly* flattened over a band of claims.

    w_i = c_i                               outside the band
    w_i = m + (1 − FLATTEN) · (c_i − m)      inside the band, m = the band's mean claim

The band is the 30th–70th percentile of claims; ``FLATTEN = 0.5`` pulls those weights
halfway towards their mean (the same construction as
``examples/allocators/flat_band_lottery.py``, kept self-contained here so the committed
demo does not move when that file does). Weights still rise strictly with claims, so
BF.1 and BF.2 hold in the letter, but stronger claims inside the band gain only about
half the extra chance the Broome lottery gives them. ``fairaudit compare`` against the
baseline audit of ``examples/allocators/broome_lottery.py`` flags it (``README.md`` here).
Vectorised (accepts ``size``); picks are returned in pick order.
"""
import numpy as np
import fairaudit as fa

BAND = (0.3, 0.7)   # quantiles of the claims whose weights are flattened
FLATTEN = 0.5       # halfway towards the band's mean claim


def band_weights(scores) -> np.ndarray:
    c = np.asarray(scores, dtype=float)
    n = len(c)
    rank = np.empty(n, dtype=int)
    rank[np.argsort(c, kind="stable")] = np.arange(n)
    q = (rank + 0.5) / n
    inside = (q >= BAND[0]) & (q < BAND[1])
    w = c.copy()
    if inside.any():
        m = c[inside].mean()
        w[inside] = m + (1.0 - FLATTEN) * (c[inside] - m)
    return w


@fa.selector
def allocate(scores, k, rng, size=None):
    w = band_weights(scores)
    if size is None:
        return rng.choice(len(w), size=k, replace=False, p=w / w.sum())
    # Successive weighted sampling without replacement == Gumbel-top-k (keeps pick order).
    with np.errstate(divide="ignore"):
        logw = np.log(w)
    keys = logw[None, :] + rng.gumbel(size=(size, len(w)))
    part = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(keys, part, axis=1), axis=1)
    return np.take_along_axis(part, order, axis=1)
