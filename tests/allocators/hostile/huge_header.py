"""Hostile on purpose: writes a 2 GiB length header into the worker's reply pipe (its
file descriptor is in the worker's command line) and then hangs."""
import os
import struct
import sys
import time


def select(scores, k, rng):
    for a in sys.argv[1:3]:
        try:
            os.write(int(a), struct.pack("!i", 2**31 - 1))
        except (OSError, ValueError):
            pass
    while True:
        time.sleep(1000)
