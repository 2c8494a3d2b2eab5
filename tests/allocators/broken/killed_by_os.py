"""Hostile on purpose: its process is killed (SIGKILL), as the out-of-memory killer would."""
import os
import signal
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    os.kill(os.getpid(), signal.SIGKILL)
