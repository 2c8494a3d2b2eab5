"""Hostile on purpose: raises its address-space limit and allocates 1.5 GiB (run under
--memory-limit 512M)."""
import resource

import numpy as np

raised = "no"
try:
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    raised = "yes"
except (ValueError, OSError):
    pass


def select(scores, k, rng):
    big = np.ones(3 * 2**27)           # 1.5 GiB of float64
    return rng.choice(len(scores), size=k, replace=False) + int(big[0]) - 1
