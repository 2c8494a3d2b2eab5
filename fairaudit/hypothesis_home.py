"""Hypothesis's storage kept out of the user's folder while an audit runs.

Checks that search with Hypothesis set ``database=None``, but Hypothesis 6.1xx also writes a
cache of the constants found in local source files (``.hypothesis/constants/``) and its
unicode tables (``.hypothesis/unicode_data/``) under its *home directory*, by default
``./.hypothesis``. :func:`scratch_hypothesis_home` points that home at a temporary folder
for the duration of an audit (unless the user chose one with ``HYPOTHESIS_STORAGE_DIRECTORY``)
and restores Hypothesis's previous setting afterwards, so a test session that uses
Hypothesis around an audit keeps its own database where it was.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile

_scratch: str | None = None


def _scratch_dir() -> str:
    global _scratch
    if _scratch is None or not os.path.isdir(_scratch):
        _scratch = tempfile.mkdtemp(prefix="fairaudit-hypothesis-")
        atexit.register(shutil.rmtree, _scratch, True)
    return _scratch


@contextlib.contextmanager
def scratch_hypothesis_home():
    """Within the block, Hypothesis stores nothing in the current folder."""
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        yield
        return
    from hypothesis import configuration as hc
    name = "__hypothesis_home_directory"          # the module global set_hypothesis_home_dir sets
    previous = getattr(hc, name, None)
    hc.set_hypothesis_home_dir(_scratch_dir())
    try:
        yield
    finally:
        hc.set_hypothesis_home_dir(previous)
