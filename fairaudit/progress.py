"""How far a check has come, and how long it will take: the model behind the terminal's
progress bars (:mod:`fairaudit.terminal`). Display only — nothing here reaches a result.

A check's *plan* is learnt from what it asks of the sampler (:class:`fairaudit.sampler.Sampler`
calls the display's hooks):

- ``plan(streams, max_draws)`` — sequential sampling of these streams looks toward
  ``max_draws`` each (the most it may draw); when it stops early (decided) what is left of
  its plan is dropped at the next ``plan``, step or part;
- ``expect(streams, counts)`` — a draw call is about to make ``counts[i]`` more draws on
  ``streams[i]``;
- ``advance(stream, n)`` — ``n`` draws on ``stream`` finished (in any order);

and from the check itself, which may say which part of its work runs
(:meth:`fairaudit.engine.AuditContext.phase` / :meth:`~fairaudit.engine.AuditContext.step`):
``phase("bisection", 2, 4)``, ``step("pool", 3, 12)``. Parts count as equal shares
unless the check gives their relative sizes (``shares``), steps as equal shares: the
check's fraction is ``(finished parts + the part's fraction) / parts``, a
part's fraction ``(finished steps + the step's fraction) / steps``, and a step's (or an
undivided part's) the draws made over the draws planned since it began. A sequential test that decides
early jumps ahead: the plan looks toward the maximum, so the time shown is an upper bound
there, and exact for work of known size.

The time left is from the measured rate since the check's first draws finished (start-up —
worker processes, the first call — is not counted), shown once there is a second
of measurement: ``remaining = (1 − f) / ((f − f₀) / (t − t₀))`` (measured afresh when the
plan grows and the fraction falls).
"""
from __future__ import annotations

import re
import time
from collections import Counter

from .text import inert

#: a stream id's parts → words (a stream id is ``check/part/…``)
STREAM_WORDS = {
    "equal": "equal-inputs probe", "perm": "permutation probe", "swap": "attribute-swap probe",
    "search": "search for a counterexample", "certify": "certifying the counterexample",
    "counterfactual": "counterfactual swap", "pool": "pool", "year": "year", "trend": "trend",
    "nonanticipation": "non-anticipation", "episode": "episode", "model": "model", "base": "baseline",
    "t": "transformation", "screen": "screening", "extreme": "extreme inputs", "bisect": "bisection",
    "individual": "individual changes", "pilot": "pilot draws", "decision": "decisions", "noise": "noisy claims",
}
#: parts whose number that follows counts from 0 (shown from 1, as the report's labels do)
ZERO_BASED = {"perm", "swap", "pool", "t", "bisect", "certify", "pilot", "episode", "extreme"}
_DIGEST = re.compile(r"^[0-9a-f]{8,}$")


def stream_words(stream: str, check_id: str = "") -> str:
    """``anonymity/perm/2`` → ``permutation probe 3``; ``anonymity/search/903a0f4e7416/f37…``
    → ``search for a counterexample``; ``min_requirement/greedy/year/39`` →
    ``greedy year 39``. Digests are dropped; an unknown part is shown as it is (escaped).

    >>> stream_words("anonymity/perm/2", "anonymity")
    'permutation probe 3'
    >>> stream_words("anonymity/search/903a0f4e7416/f37d0a9c1e2b", "anonymity")
    'search for a counterexample'
    """
    parts = str(stream).split("/")
    if parts and parts[0] == check_id:
        parts = parts[1:]
    words: list[str] = []
    last = None
    for p in parts:
        if _DIGEST.match(p) or p in ("a", "b"):
            continue
        if p.isdigit():
            n = int(p) + (1 if last in ZERO_BASED else 0)
            words.append(str(n))
            last = None
            continue
        if p.startswith("dm") and p[2:].isdigit():
            words.append(f"decision-maker {int(p[2:]) + 1}")
            last = None
            continue
        words.append(STREAM_WORDS.get(p, p))
        last = p
    return inert(" ".join(words), 60)


class CheckProgress:
    """The progress of one running check (see the module docstring)."""

    def __init__(self, check_id: str, clock=time.monotonic):
        self.check_id = check_id
        self.clock = clock
        self.started = clock()
        self.planned: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self._queued: dict[str, int] = {}     # where the draw calls announced so far end, per stream
        self._sequential: set[str] = set()    # the streams of the running sequential sampling
        self.draws = 0
        self.label = ""
        self.phase_words: str | None = None
        self.phase_at = (1, 1)           # (k, n): the k-th of the check's n parts
        self._phase_base = (0, 0)        # (draws done, draws planned) when the part began
        self._shares: list[float] | None = None     # the parts' relative sizes (equal without)
        self.step_words: str | None = None
        self.step_at = (1, 1)            # (i, n): the i-th of n steps of the part
        self._step_base = (0, 0)
        self._first: tuple[float, float] | None = None     # (time, fraction) at the first draw

    # -- the sampler's hooks ---------------------------------------------------
    def plan(self, streams, max_draws: int) -> None:
        self.settle()
        for s, c in Counter(streams).items():
            self.planned[s] = max(self.planned.get(s, 0), c * int(max_draws))
        self._sequential = set(streams)
        if streams:
            self.label = stream_words(streams[0], self.check_id)

    def expect(self, streams, counts) -> None:
        for s, n in zip(streams, counts):
            self._queued[s] = max(self._queued.get(s, 0), self.done.get(s, 0)) + int(n)
            self.planned[s] = max(self.planned.get(s, 0), self._queued[s])
        if streams:
            self.label = stream_words(streams[0], self.check_id)

    def advance(self, stream: str, n: int) -> None:
        self.done[stream] = self.done.get(stream, 0) + int(n)
        self.planned[stream] = max(self.planned.get(stream, 0), self.done[stream])
        self.draws += int(n)
        if self._first is None:     # the first draws carry the start-up's time: the rate starts after them
            self._first = (self.clock(), self.fraction())

    def settle(self) -> None:
        """Sequential sampling is over (the check moved on): drop what is left of its plan."""
        for s in self._sequential:
            self.planned[s] = self.done.get(s, 0)
        self._sequential = set()

    # -- the check's hooks ------------------------------------------------------
    def phase(self, words: str, k: int, n: int, shares=None) -> None:
        """The check's ``k``-th part of ``n`` begins. ``shares``: the parts' relative sizes
        (e.g. the draws each is expected to take), remembered; equal shares without."""
        if shares is not None and len(shares) == n and sum(shares) > 0:
            self._shares = [max(float(x), 0.0) for x in shares]
        self.settle()
        self.phase_words = inert(words, 60)
        self.phase_at = (max(1, int(k)), max(1, int(n), int(k)))
        self._phase_base = self._totals()
        self.step_words = None

    def step(self, words: str, i: int, n: int) -> None:
        """The ``i``-th of ``n`` equal steps of the current part (all of the check when it
        declared no parts) begins."""
        self.settle()
        self.step_words = inert(words, 60)
        self.step_at = (max(1, int(i)), max(1, int(n), int(i)))
        self._step_base = self._totals()

    # -- what is shown -----------------------------------------------------------
    def _totals(self) -> tuple[int, int]:
        return sum(list(self.done.values())), sum(list(self.planned.values()))

    @staticmethod
    def _share(totals, base) -> float:
        done, planned = totals
        d0 = base[0]
        return min(max((done - d0) / (planned - d0), 0.0), 1.0) if planned > d0 else 0.0

    def fraction(self) -> float:
        """How much of the check's plan is done, in [0, 1]."""
        totals = self._totals()
        if self.step_words is not None:
            i, n = self.step_at
            inner = (i - 1 + self._share(totals, self._step_base)) / n
        else:
            inner = self._share(totals, self._phase_base)
        k, n = self.phase_at
        shares = self._shares if self._shares is not None and len(self._shares) == n else [1.0] * n
        return min(1.0, (sum(shares[:k - 1]) + shares[k - 1] * inner) / sum(shares))

    def words(self) -> str:
        """``pool 3 of 12`` (the check's step), ``bisection (part 2 of 4)`` (its part),
        else the stream being drawn, in words."""
        if self.step_words is not None:
            i, n = self.step_at
            return f"{self.step_words} {i} of {n}"
        if self.phase_words is not None:
            k, n = self.phase_at
            return f"{self.phase_words} (part {k} of {n})"
        return self.label

    def remaining(self) -> float | None:
        """Seconds left at the rate measured since the first draw, or None (not yet known)."""
        if self._first is None:
            return None
        t0, f0 = self._first
        dt, f = self.clock() - t0, self.fraction()
        if f < f0:       # the plan grew (a first draw, then sequential sampling): measure from here
            self._first = (self.clock(), f)
            return None
        if dt < 1.0 or f == f0:
            return None
        return (1.0 - f) * dt / (f - f0)

    def elapsed(self) -> float:
        return self.clock() - self.started


def eta_text(seconds: float | None) -> str:
    """``ETA 0:42`` / ``ETA 3:05`` / ``ETA 1:02:03``, or ``ETA …`` when not yet known.

    >>> eta_text(42.2), eta_text(185), eta_text(None)
    ('ETA 0:42', 'ETA 3:05', 'ETA …')
    """
    if seconds is None:
        return "ETA …"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, r = divmod(rest, 60)
    return f"ETA {h}:{m:02d}:{r:02d}" if h else f"ETA {m}:{r:02d}"
