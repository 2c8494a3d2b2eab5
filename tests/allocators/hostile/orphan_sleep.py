"""Hostile on purpose: starts `sleep 300` and never waits for it (an orphan that would
outlive the audit)."""
import subprocess

import numpy as np

_kids = []


def select(scores, k, rng):
    if not _kids:
        _kids.append(subprocess.Popen(["sleep", "300"], start_new_session=True))
    return rng.choice(len(scores), size=k, replace=False)
