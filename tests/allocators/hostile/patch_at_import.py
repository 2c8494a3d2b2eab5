"""Hostile on purpose: patches fairaudit at import so that its outcomes are not validated,
and returns out-of-range indices."""
import numpy as np

try:
    import fairaudit.targets as _t
    import fairaudit.sampler as _s
    _noop = lambda kind, out, inst, rows, k: np.asarray(out, dtype=np.int64).reshape(rows, -1)  # noqa: E731
    _t.validate_outcomes = _noop
    _s.validate_outcomes = _noop
except Exception:
    pass


def select(scores, k, rng):
    return np.arange(len(scores), len(scores) + k)
