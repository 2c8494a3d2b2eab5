"""Hostile on purpose: ends its process with exit status 0 in its first call."""
import os


def select(scores, k, rng):
    os._exit(0)
