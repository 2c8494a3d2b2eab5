"""The allocator's traceback, restricted to the user's own frames (issue 32).

When an allocator raises during the audit, its check's verdict is ``error`` and the
evidence carries ``allocator_traceback``: the frames of the exception's traceback that are
the user's code — not fairaudit's, not the standard library's, not an installed package's
(site-packages) — innermost last, each ``file:line in function`` with its source line. The
terminal prints them under the verdict, the JSON keeps them, the report shows them.
"""
from __future__ import annotations

import os
import sysconfig
import traceback
from pathlib import Path

_FAIRAUDIT = str(Path(__file__).resolve().parent)
_CHECKS = str(Path(__file__).resolve().parent.parent / "checks")
_LIBS = tuple(str(Path(p).resolve()) for p in {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")} if p)
MAX_FRAMES = 12


def is_user_file(filename: str) -> bool:
    if not filename or filename.startswith("<") and filename not in ("<stdin>", "<string>"):
        return False
    try:
        f = str(Path(filename).resolve())
    except (OSError, RuntimeError):
        f = filename
    if f.startswith((_FAIRAUDIT + os.sep, _CHECKS + os.sep)):
        return False
    if any(f.startswith(lib + os.sep) for lib in _LIBS):
        return False
    return "site-packages" not in f and "dist-packages" not in f


def user_frames(exc: BaseException | None) -> list[str]:
    """``["my_allocator.py:12 in allocate: return x / 0", ...]`` of ``exc``'s traceback (innermost last)."""
    if exc is None or exc.__traceback__ is None:
        return []
    out = []
    for fr in traceback.extract_tb(exc.__traceback__):
        if is_user_file(fr.filename):
            line = (fr.line or "").strip()
            out.append(f"{_shown(fr.filename)}:{fr.lineno} in {fr.name}" + (f": {line}" if line else ""))
    return out[-MAX_FRAMES:]


def _shown(filename: str) -> str:
    try:
        rel = os.path.relpath(filename)
        return rel if not rel.startswith("..") else filename
    except ValueError:
        return filename
