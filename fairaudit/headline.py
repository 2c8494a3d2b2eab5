"""One plain sentence per check a non-statistician can act on, made from the check's
result as written to JSON (its statistic: estimate, interval, tolerance, which side is a
violation; its verdict). The figures in the sentence are the statistic's own, formatted as
the report formats them, so the headline and the statistic cannot disagree.

The statistical sentence (the check's message) stays below it in the report and terminal.
"""
from __future__ import annotations

import math
import re

from .labels import cite, headline_words, statistic_label
from .text import fmt_number

#: statistic → its subject when the estimate is exactly 0, a sentence that says what 0 means
#: (a deterministic rule's variation: "identical on every draw", not "Largest variation is 0.000")
ZERO_SUBJECTS: dict[str, str] = {
    "max_variation": "The outcome is identical on every draw ({est} of the draws differ from the most common one)",
}

#: statistic → (the value its tolerance line's usual words belong to, the words at any other
#: value): "the four-fifths line" is the 0.8 line; at 0.9 it is named by its value
USUAL_LINES: dict[str, tuple[float, str]] = {
    "min_impact_ratio": (0.8, "the impact-ratio threshold ({tol})"),
}

#: statistics that are shares, shown as percentages
PERCENT = {"violation_rate", "ex_post_violation_rate", "max_group_p_regret_over_eps", "failing_share"}


def _f(x, percent: bool = False) -> str:
    if percent and isinstance(x, (int, float)) and math.isfinite(x):
        return f"{x * 100:.1f}%"
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return fmt_number(x)


def _first_sentence(text: str, limit: int = 160) -> str:
    s = cite(" ".join(str(text or "").split()), short=True)
    m = re.search(r"(?<=[a-z0-9)\]])[.;:](\s|$)", s[20:])
    if m:
        s = s[: 20 + m.start()]
    if len(s) > limit:
        s = s[: limit - 1].rsplit(" ", 1)[0] + "…"
    return s.rstrip(" .") + "."


def headline(check: dict, confidence: float = 0.95, observations: str = "draws") -> str:
    """The check's plain sentence (see the module docstring). ``observations``: what more
    of would decide an inconclusive verdict — ``"draws"`` of an allocator, or ``"logged
    records"`` when a log was audited (a log gets no more draws)."""
    verdict = check.get("verdict")
    if verdict == "skipped":
        return "Not applicable here: " + _first_sentence(str(check.get("message", "")).removeprefix("Skipped: "))
    if verdict == "error":
        return "Could not be tested: " + _first_sentence(check.get("message", ""))
    s = check.get("statistic")
    if not s or s.get("estimate") is None:
        return _first_sentence(check.get("message", ""))
    name, est, (lo, hi) = s["name"], s["estimate"], (s.get("ci") or [None, None])
    lo = -math.inf if lo is None else lo
    hi = math.inf if hi is None else hi
    tol, below = s.get("tolerance"), s.get("violation") == "below"
    label = statistic_label(name, check.get("id"))
    subject, line = headline_words(name, check.get("id")) or (label[:1].upper() + label[1:] + " is {est}",
                                                              "the tolerance {tol}")
    conf = f"{confidence * 100:g}%"
    pct = name in PERCENT
    f = (lambda x: _f(x, pct))
    if est == 0 and name in ZERO_SUBJECTS:
        subject = ZERO_SUBJECTS[name]
    text = subject.format(est=f(est))
    if tol is None:
        return f"{text} ({f(lo)} to {f(hi)} with {conf} confidence)."
    if name in USUAL_LINES and not math.isclose(float(tol), USUAL_LINES[name][0]):
        line = USUAL_LINES[name][1]
    line = line.format(tol=f(tol))
    from .result import decide
    own = decide((lo, hi), tol, "below" if below else "above")   # the statistic's own verdict
    tail = ""
    if own != verdict:      # the check was decided by another of its components
        tail = f" The check's verdict, {verdict}, comes from another part: " + _first_sentence(check.get("message", ""))
        tail = tail.rstrip(".") + "."
    verdict = own
    if verdict == "fail":
        bound = f"at most {f(hi)}" if below else f"at least {f(lo)}"
        side = "below" if below else "above"
    elif verdict == "pass":
        bound = f"at least {f(lo)}" if below else f"at most {f(hi)}"
        side = "above" if below else "within"
    else:
        return (f"{text} ({f(lo)} to {f(hi)} with {conf} confidence) — too close to {line} to tell; "
                f"more {observations} would decide.{tail}")
    return f"{text} ({bound} with {conf} confidence) — {side} {line}.{tail}"
