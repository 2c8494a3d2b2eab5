"""Hostile on purpose: returns an object whose __array__ never returns (it would block
validation outside a watched window)."""
import time


class Forever:
    def __array__(self, dtype=None, copy=None):
        while True:
            time.sleep(1000)

    def __len__(self):
        return 1


def select(scores, k, rng):
    return Forever()
