"""Half the time the top k by score, otherwise k uniformly at random: not anonymous
(equal scores are broken by position in the top-k half). ``FAIRAUDIT_TEST_SLOW_MS``
sleeps that long per call, to show that a slower machine does not change the audit."""
import os
import time

import numpy as np

import fairaudit as fa


@fa.selector(k=2)
def allocate(scores, k, rng, size):
    time.sleep(float(os.environ.get("FAIRAUDIT_TEST_SLOW_MS", "0")) / 1000)
    n = len(scores)
    top = np.argsort(-np.asarray(scores, float), kind="stable")[:k]
    keys = rng.random((size, n))
    uniform = np.argsort(keys, axis=1)[:, :k]
    coin = rng.random(size) < 0.5
    return np.where(coin[:, None], top[None, :], uniform)
