"""Exceptions with messages a person can act on.

``TargetError`` / ``DataError`` / ``LogError`` / ``UsageError`` (``ParamError``) stop an
audit before it starts (exit 2);
``AllocatorError`` is raised while sampling and becomes the ``error`` verdict of the
check that asked for the draws, with the offending input kept for replay.
"""
from __future__ import annotations

from typing import Any


class FairauditError(Exception):
    """Base class of fairaudit's own errors."""


class TargetError(FairauditError):
    """The target (allocator file, module:function, log) cannot be loaded."""


class DataError(FairauditError):
    """A data file (population, config) is missing, unreadable or malformed."""


class LogError(DataError):
    """A decisions log is malformed; the message names the row and column at fault."""

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None):
        super().__init__(message)
        self.row = row
        self.column = column


class UsageError(FairauditError, ValueError):
    """The audit was asked for something that does not exist or is out of range (an
    unknown check id, parameter name or an invalid parameter value); caught before
    anything is drawn. Also a ``ValueError``: it is a bad argument."""


class ParamError(UsageError):
    """A check parameter is unknown, unparseable or out of range. ``check`` and ``name``
    say which (``name`` is None for an unknown check id)."""

    def __init__(self, message: str, *, check: str | None = None, name: str | None = None):
        super().__init__(message)
        self.check = check
        self.name = name


class AllocatorError(FairauditError):
    """The allocator raised, timed out, or returned an invalid outcome.

    ``problem`` says what went wrong, ``input_label`` which input caused it, ``draw``
    which draw (its generator is reproducible from the seed and ``stream``), and
    ``inputs`` the arguments it was called with, so the failure can be replayed.
    """

    def __init__(self, problem: str, *, input_label: str = "", draw: int | None = None,
                 stream: str = "", inputs: dict[str, Any] | None = None, generator_index: int | None = None,
                 size: int | None = None, frames: list[str] | None = None):
        where = f" on input '{input_label}'" if input_label else ""
        at = f" (draw {draw}" + (f" of stream '{stream}')" if stream else ")") if draw is not None else ""
        super().__init__(f"{problem}{where}{at}")
        self.problem = problem
        self.input_label = input_label
        self.draw = draw
        self.stream = stream
        self.inputs = inputs or {}
        # The call's generator is draw_generator(seed, stream, generator_index); a
        # vectorised call (size given) is seeded per chunk, not per draw.
        self.generator_index = draw if generator_index is None else generator_index
        self.size = size
        #: the allocator's own frames of its traceback ("file:line in function: code"), when it raised
        self.frames = list(frames or [])


class AllocatorTimeout(AllocatorError):
    """One allocator call took longer than the per-call timeout."""


class BudgetExhausted(FairauditError):
    """The ``--budget`` ran out in the middle of a batch of draws. ``done`` draws of the
    batch were made (``outcomes``), so sequential sampling can keep them."""

    def __init__(self, message: str, *, done: int = 0, outcomes=None, calls: int = 0):
        super().__init__(message)
        self.done = done
        self.outcomes = outcomes
        self.calls = calls


class InputsTooSmall(FairauditError):
    """A check's built-in inputs cannot hold what the allocator declares (``k`` larger than
    the people an input has): the check is skipped with this reason, never an error."""
