"""User-derived text made safe to show: one place for escaping, capping and exception text.

Everything fairaudit prints or renders that came from the user (an allocator's exception
message, group names, column names, cell values, a check's message built from them) goes
through these functions:

``inert(text)``
    control characters other than newline shown as escapes (``\\r``, ``\\x1b``,
    ``\\u202e``), so user text cannot move the cursor, recolour or retitle a terminal,
    reorder text with bidi overrides, or hide characters. Used by the CLI for every line
    it prints and by the terminal tables.
``cap(text, limit)``
    at most ``limit`` characters, with the full length stated (``… [5,000,000
    characters; first 500 shown]``).
``exception_text(exc)``
    ``str(exc)`` that cannot raise (an exception whose ``__str__`` raises is described,
    not propagated) and is capped.

Limits: :data:`TERMINAL_CHARS` for a message on the terminal, :data:`REPORT_CHARS` in the
HTML report, :data:`JSON_CHARS` in the JSON result (which also keeps the original length).
"""
from __future__ import annotations

import math
import re
import unicodedata

#: a message on the terminal is cut after this many characters
TERMINAL_CHARS = 500
#: a message in the HTML report is cut after this many characters
REPORT_CHARS = 2_000
#: a message in the JSON result is cut after this many characters (its full length is kept)
JSON_CHARS = 20_000

_NAMED = {"\r": "\\r", "\t": "\\t", "\x1b": "\\x1b", "\x00": "\\x00", "\b": "\\b", "\f": "\\f", "\v": "\\v"}
# Cc control, Cf format (bidi embeddings/overrides/isolates, zero-width, soft hyphen),
# Zl/Zp line and paragraph separators, Cs lone surrogates, Co private use, Cn unassigned
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}
# Fast path: plain printable ASCII and newline need no per-character look-up.
_PLAIN = re.compile(r"[\n\x20-\x7e]*")


def is_unsafe_char(ch: str) -> bool:
    """True for a character that :func:`inert` escapes: any control or format character
    (including bidi controls) or separator other than newline, and unassigned/private code points."""
    return ch != "\n" and unicodedata.category(ch) in _UNSAFE_CATEGORIES


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    o = ord(ch)
    if o < 0x100:
        return f"\\x{o:02x}"
    if o < 0x10000:
        return f"\\u{o:04x}"
    return f"\\U{o:08x}"


def inert(text, limit: int | None = None) -> str:
    """``text`` (anything; ``str()`` is taken safely) with every control character other
    than newline escaped, optionally capped at ``limit`` characters first (see :func:`cap`)."""
    s = text if isinstance(text, str) else safe_str(text)
    if limit is not None:
        s = cap(s, limit)
    if _PLAIN.fullmatch(s):
        return s
    return "".join(_escape(ch) if is_unsafe_char(ch) else ch for ch in s)


def cap(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with its full length stated, or unchanged."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text):,} characters; first {limit:,} shown]"


def safe_str(obj) -> str:
    """``str(obj)``, or a description when its ``__str__`` raises or returns a non-string."""
    try:
        s = str(obj)
        if isinstance(s, str):
            return s
    except Exception as e:  # noqa: BLE001 - user objects may raise anything from __str__
        try:
            inner = type(e).__name__
        except Exception:  # pragma: no cover - pathological
            inner = "an exception"
        return f"<{type(obj).__name__} whose str() raised {inner}>"
    return f"<{type(obj).__name__} whose str() returned a non-string>"


def exception_text(exc: BaseException, limit: int = REPORT_CHARS) -> str:
    """The message of an exception raised by user code: never raises, at most ``limit``
    characters (with the full length stated)."""
    return cap(safe_str(exc), limit)


def indent_lines(text: str, indent: str) -> str:
    """Every line of ``text`` after the first prefixed with ``indent``, so continuation
    lines of user text never start at column 0, where fairaudit writes its verdicts."""
    return text.replace("\n", "\n" + indent)


def show_value(v) -> str:
    """A cell value for a message: plain Python numbers (``2``, ``inf``, not
    ``np.int64(2)``), strings quoted (``'maybe'``, control characters escaped by repr),
    ``missing`` for NaN/None/NA."""
    import sys
    pd = sys.modules.get("pandas")      # not imported for it: a worker validating an outcome would
    try:                                # pay pandas' import inside its timed window
        if v is None:
            return "missing"
        if pd is not None:
            if not isinstance(v, (str, bytes)) and bool(pd.isna(v)):
                return "missing"
        elif isinstance(v, float) or type(v).__module__ == "numpy":
            import math
            if math.isnan(float(v)):
                return "missing"
    except (TypeError, ValueError, OverflowError):
        pass
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            v = v.item()
        except Exception:  # noqa: BLE001 - not a numpy scalar after all
            pass
    if isinstance(v, str):
        return repr(cap(v, 200))
    if isinstance(v, (bool, int, float)):
        return str(v)
    return repr(cap(safe_str(v), 200))


def fmt_number(x, digits: int = 3) -> str:
    """A figure as the report and terminal show it: ``—`` for none, thousands separators
    for integers, ``digits`` decimals (or significant digits for tiny and huge numbers)."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
        if math.isnan(x):
            return "—"
        if x != 0 and (abs(x) < 10 ** -digits or abs(x) >= 1e6):
            return f"{x:.{digits}g}"
        return f"{x:.{digits}f}"
    return str(x)


def fmt_interval(ci) -> str:
    """``[low, high]`` with :func:`fmt_number`'s figures; ``—`` for none."""
    if not ci:
        return "—"
    return f"[{fmt_number(ci[0])}, {fmt_number(ci[1])}]"
