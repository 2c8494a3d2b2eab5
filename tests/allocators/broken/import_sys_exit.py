"""Hostile on purpose: ends the process as soon as it is imported."""
import sys

sys.exit(4)


def allocate(scores, k, rng):
    return list(range(k))
