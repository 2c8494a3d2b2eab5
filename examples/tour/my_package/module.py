"""The README tour's allocator in a package, audited as module:function (the same
weighted lottery as ../my_allocator.py)."""
import numpy as np

import fairaudit as fa


@fa.selector(k=10)
def allocate(scores, k, rng):
    w = np.clip(np.asarray(scores, dtype=float), 0, None) + 1e-9
    return rng.choice(len(w), size=k, replace=False, p=w / w.sum())
