"""A *slightly flattened* Broome lottery: weights pulled half-way to flat over a band of claims.

The variant of ``flat_band_lottery.py`` with ``FLATTEN = 0.5`` (the code is the same;
only the constant differs). Weights still rise strictly with claims, so it satisfies
Broome-Fairness and the ``broome`` check passes it, but inside the band (claims
between the 30th and 70th percentile) stronger claims gain only about half the extra
chance the Broome lottery gives them: ``min_gain_ratio`` falls from about 0.9 to about
0.5. It is the "regression" of the CI-gate example: audit ``broome_lottery.py`` as the
baseline and this file as the current version, and ``fairaudit compare`` should flag
the drop of ``min_gain_ratio`` with its interval.

Original description (shared with ``flat_band_lottery.py``) follows.

A Broome lottery whose weights are flattened over a band of claims.

Like the Broome lottery (Jain et al., Example 4.3: k rounds, each picking one of the
remaining individuals with probability proportional to its weight), except that
inside a band of claims the weights are pulled towards the band's mean claim:

    w_i = c_i                                  outside the band
    w_i = m + (1 − FLATTEN) · (c_i − m)         inside the band, m = mean claim in the band

The band is a range of claim *ranks* (quantiles of the claims in the pool), so it
means the same thing for every claim distribution: ``BAND = (0.3, 0.7)`` flattens
the individuals between the 30th and 70th percentile of claims.

* ``FLATTEN = 1.0`` (this file): weights are exactly equal across the band, so
  stronger claims inside it get no greater chance — BF.1 is violated (a *flat band*),
  while BF.2 still holds (every weight is positive). The ``broome`` check fails it.
* ``0 < FLATTEN < 1``: a *slightly flattened* lottery. Weights still rise strictly with
  claims, so it satisfies Broome-Fairness, but stronger claims in the band gain less
  than under the Broome lottery; the ``broome`` statistic ``min_gain_ratio`` drops to
  about ``1 − FLATTEN`` in the band — the kind of regression ``fairaudit compare``
  should catch. ``slightly_flattened_lottery.py`` is that variant (``FLATTEN = 0.5``);
  a file is self-contained because fairaudit audits the function defined in it.

Vectorised (accepts ``size``); picks are returned in pick order.
"""
import numpy as np
import fairaudit as fa

BAND = (0.3, 0.7)   # quantiles of the claims whose weights are flattened
FLATTEN = 0.5       # slightly flattened: still strictly increasing weights (BF holds)


def band_weights(scores, band=BAND, flatten=FLATTEN) -> np.ndarray:
    """The lottery's weights: claims, flattened towards their mean inside the band of ranks."""
    c = np.asarray(scores, dtype=float)
    n = len(c)
    rank = np.empty(n, dtype=int)
    rank[np.argsort(c, kind="stable")] = np.arange(n)
    q = (rank + 0.5) / n
    inside = (q >= band[0]) & (q < band[1])
    w = c.copy()
    if inside.any():
        m = c[inside].mean()
        w[inside] = m + (1.0 - flatten) * (c[inside] - m)
    return w


@fa.selector
def allocate(scores, k, rng, size=None):
    w = band_weights(scores, BAND, FLATTEN)
    if size is None:
        return rng.choice(len(w), size=k, replace=False, p=w / w.sum())
    # Successive weighted sampling without replacement via Gumbel-top-k (keeps pick order).
    with np.errstate(divide="ignore"):
        logw = np.log(w)
    keys = logw[None, :] + rng.gumbel(size=(size, len(w)))
    part = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(keys, part, axis=1), axis=1)
    return np.take_along_axis(part, order, axis=1)
