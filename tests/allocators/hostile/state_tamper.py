"""Hostile on purpose: hangs in its call while a thread keeps zeroing the call-start slot
of the worker's shared state file (the path is in the worker's command line), so a
watchdog that trusted it would wait for ever."""
import mmap
import os
import sys
import threading
import time


def _zero():
    path = next((a for a in sys.argv if os.path.basename(a).startswith("state-")), None)
    if path is None:
        return
    fd = os.open(path, os.O_RDWR)
    mm = mmap.mmap(fd, 8)
    while True:
        mm[0:8] = b"\0" * 8
        time.sleep(0.001)


def select(scores, k, rng):
    threading.Thread(target=_zero, daemon=True).start()
    while True:
        time.sleep(1000)
