"""Vectorised summaries of outcome arrays: who was selected, who held which position."""
from __future__ import annotations

import numpy as np

def inclusion_matrix(draws: np.ndarray, n: int) -> np.ndarray:
    """(B, k) selected indices → (B, n) boolean inclusion indicators."""
    B = draws.shape[0]
    out = np.zeros((B, n), dtype=bool)
    out[np.arange(B)[:, None], draws] = True
    return out


def inclusion_counts(draws: np.ndarray, n: int) -> np.ndarray:
    """Number of draws in which each individual was selected (length n)."""
    return np.bincount(draws.ravel(), minlength=n)


def position_counts(draws: np.ndarray, n: int) -> np.ndarray:
    """(B, n) permutations (position → individual) → n×n counts ``C[i, p]`` of
    individual ``i`` at position ``p`` (0-based)."""
    B = draws.shape[0]
    pos = np.broadcast_to(np.arange(n), draws.shape)
    flat = draws.ravel() * n + pos.ravel()
    return np.bincount(flat, minlength=n * n).reshape(n, n)
