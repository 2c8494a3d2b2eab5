"""What an allocator said while it was called: Python warnings and NaN outputs.

An allocator fed inputs outside its domain often does not fail: ``np.log`` of a
negative claim gives a ``RuntimeWarning`` and NaN weights, and the draws that follow
are silently wrong. Every allocator call runs under :func:`recording` (in this process,
in isolated worker processes and on Dask workers alike); what it records is merged
into the sampler's :class:`AllocatorNotes` and lands, per check, in the JSON
(``allocator_warnings``) and the report.

A note is ``{"category", "message", "where", "count"}``: distinct warnings (by category,
message and source line) are counted, the first :data:`KEPT` kept, the rest counted in
``more``. ``nan_outputs`` counts calls whose output held a NaN.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from typing import Iterator

#: distinct warnings kept per check (more are counted)
KEPT = 10
#: characters of a warning's message kept
MESSAGE_CHARS = 300


class AllocatorNotes:
    """Warnings (distinct ones counted) and NaN outputs of allocator calls."""

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        self.counts: dict[tuple[str, str, str], int] = {}
        self.more = 0
        self.nan_outputs = 0

    def __bool__(self) -> bool:
        return bool(self.counts or self.more or self.nan_outputs)

    def add_warning(self, category: str, message: str, where: str, count: int = 1) -> None:
        key = (category, message[:MESSAGE_CHARS], where)
        if key in self.counts:
            self.counts[key] += count
        elif len(self.counts) < KEPT:
            self.counts[key] = count
        else:
            self.more += count

    def merge(self, data: dict | None) -> None:
        """Add what :meth:`to_dict` of another log (e.g. a worker's) holds."""
        if not data:
            return
        for w in data.get("warnings", ()):
            self.add_warning(w["category"], w["message"], w["where"], int(w["count"]))
        self.more += int(data.get("more", 0))
        self.nan_outputs += int(data.get("nan_outputs", 0))

    def to_dict(self) -> dict | None:
        if not self:
            return None
        return {"warnings": [{"category": c, "message": m, "where": w, "count": n}
                             for (c, m, w), n in self.counts.items()],
                "more": int(self.more), "nan_outputs": int(self.nan_outputs)}

    def take(self) -> dict | None:
        """What was recorded since the last take (None when nothing), and clear it."""
        out = self.to_dict()
        self.clear()
        return out


#: the notes of this process's allocator calls (a worker sends them with each reply)
PROCESS_NOTES = AllocatorNotes()


@contextlib.contextmanager
def recording(notes: AllocatorNotes | None = None) -> Iterator[AllocatorNotes]:
    """Record every warning raised inside (each occurrence, not once per line) into
    ``notes`` (default :data:`PROCESS_NOTES`) instead of printing it."""
    notes = PROCESS_NOTES if notes is None else notes
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        try:
            yield notes
        finally:
            for w in got:
                notes.add_warning(w.category.__name__, str(w.message),
                                  f"{os.path.basename(str(w.filename))}:{w.lineno}")


def count_nan(out, notes: AllocatorNotes | None = None) -> None:
    """Count ``out`` as a NaN output when it is a float array (or list) holding a NaN."""
    import numpy as np
    notes = PROCESS_NOTES if notes is None else notes
    try:
        a = np.asarray(out)
        if a.dtype.kind in "fc" and np.isnan(a).any():
            notes.nan_outputs += 1
    except Exception:  # noqa: BLE001 - garbage output: validation names it
        pass

