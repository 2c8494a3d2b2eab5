"""Hostile on purpose: crashes the interpreter (reads address 0)."""
import ctypes
import fairaudit as fa


@fa.selector
def allocate(scores, k, rng):
    ctypes.string_at(0)
    return list(range(k))
