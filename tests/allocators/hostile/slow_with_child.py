"""Not hostile in itself: each call takes 50 ms, and the first starts a `sleep 300` child;
for interrupting an audit mid-way (Ctrl-C, SIGTERM)."""
import subprocess
import time

import numpy as np

_kids = []


def select(scores, k, rng):
    if not _kids:
        _kids.append(subprocess.Popen(["sleep", "300"]))
    time.sleep(0.05)
    return rng.choice(len(scores), size=k, replace=False)
