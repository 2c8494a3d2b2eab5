"""Importable as a module (tests/allocators on sys.path): a deterministic selector that
breaks ties by index, audited as a plain callable from Python."""
import numpy as np


def pick_first(scores, k, rng):
    return np.argsort(-np.asarray(scores), kind="stable")[:k]
