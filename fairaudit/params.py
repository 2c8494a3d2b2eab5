"""Typed, validated check parameters.

A check declares each parameter as a :class:`Param`: its default, a help line, its
type (``int``, ``float``, ``str``, ``bool``, ``list`` or ``object``; inferred from the
default when not given), an optional range (``min``/``max``, closed unless
``min_open``/``max_open``), optional ``choices``, and optionally ``parse``, a callable
that turns what a user wrote into the value the check receives (and raises
``ValueError`` saying what is accepted). For example::

    params = {
        "bins": Param(10, "claim bins", type=int, min=2),
        "min_gain": Param(0.1, "least relative gain", type=float, min=0, max=1),
        "pick_order": Param("auto", "read picks in order", choices=("auto", "yes", "no")),
        "instances": Param("uniform:1000:0.1", "claim instances", parse=claim_instances),
    }

:func:`resolve_params` checks every ``{check_id: {name: value}}`` override — from
``--param CHECK.NAME=VALUE``, ``[tool.fairaudit.params.CHECK]`` / ``--config`` or
``params=`` of :func:`fairaudit.audit` — against the registry before anything is drawn:
an unknown check id or parameter name, an unparseable or out-of-range value raises
:class:`~fairaudit.errors.ParamError` (a usage error: exit 2 on the command line) with
one line naming ``CHECK.PARAM``, what was given, what is accepted and, for a typo, the
closest names (``did you mean `broome.min_gain`?``).

Values arrive as Python objects (``params=``), TOML values, or — from ``--param`` — JSON
when the text parses as JSON, else the text itself; so ``bins=10``, ``bins="10"`` and
``--param broome.bins=10`` all give the integer 10. Parsing is idempotent: a parsed value
parses to itself, so a check may resolve its parameters again.
"""
from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .errors import ParamError, UsageError

_TYPES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list",
          object: "any value"}
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclass(frozen=True)
class Param:
    """One check parameter: default, help, type, range, choices and parser (see module doc)."""

    default: Any
    help: str = ""
    type: Any = None
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    parse: Callable[[Any], Any] | None = None
    #: what the parser accepts, for messages and ``fairaudit checks`` (default: derived)
    accepts: str = ""
    min_open: bool = False
    max_open: bool = False

    def __post_init__(self):
        if self.type is None:
            d = self.default
            t = (bool if isinstance(d, bool) else int if isinstance(d, int) else float if isinstance(d, float)
                 else list if isinstance(d, (list, tuple)) else str if isinstance(d, str) or d is None else object)
            object.__setattr__(self, "type", t)
        if self.type not in _TYPES:
            raise TypeError(f"Param type must be one of int, float, str, bool, list, object; not {self.type!r}")
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))

    # -- what is accepted ------------------------------------------------------
    def describe(self) -> str:
        """What the parameter accepts, in words (e.g. ``an integer ≥ 2``, ``one of auto, yes, no``)."""
        if self.accepts:
            return self.accepts
        if getattr(self.parse, "accepts", None):
            return self.parse.accepts
        if self.choices is not None:
            return "one of " + ", ".join(_num(c) for c in self.choices)
        base = _TYPES[self.type]
        lo = None if self.min is None else ((">" if self.min_open else "≥") + " " + _num(self.min))
        hi = None if self.max is None else (("<" if self.max_open else "≤") + " " + _num(self.max))
        if lo and hi:
            left = "(" if self.min_open else "["
            right = ")" if self.max_open else "]"
            return f"{base} in {left}{_num(self.min)}, {_num(self.max)}{right}"
        return " ".join(p for p in (base, lo or hi) if p)

    # -- parsing ---------------------------------------------------------------
    def coerce(self, value):
        """The value the check receives for ``value``; ``ValueError`` (its message: what is
        accepted) when it is not acceptable."""
        if self.parse is not None:
            try:
                value = self.parse(value)
            except (TypeError, ValueError) as e:
                raise ValueError(str(e) or self.describe()) from None
        value = self._typed(value)
        if value is None and self.default is None:
            return None
        if self.choices is not None:
            value = self._choice(value)
        if self.type in (int, float):
            if self.min is not None and (value < self.min or (self.min_open and value == self.min)):
                raise ValueError(self.describe())
            if self.max is not None and (value > self.max or (self.max_open and value == self.max)):
                raise ValueError(self.describe())
        return value

    def _typed(self, v):
        t = self.type
        if t is object or (v is None and self.default is None):   # a None default means "not set"
            return v
        if t is bool:
            if isinstance(v, bool):
                return v
            if isinstance(v, int) and v in (0, 1):
                return bool(v)
            if isinstance(v, str) and v.strip().lower() in _TRUE + _FALSE:
                return v.strip().lower() in _TRUE
            raise ValueError(self.describe())
        if t is int:
            if isinstance(v, bool):
                raise ValueError(self.describe())
            if isinstance(v, int):
                return int(v)
            if isinstance(v, float) and math.isfinite(v) and v == int(v):
                return int(v)
            if isinstance(v, str):
                try:
                    return int(v.strip())
                except ValueError:
                    try:
                        f = float(v.strip())
                    except ValueError:
                        raise ValueError(self.describe()) from None
                    if math.isfinite(f) and f == int(f):
                        return int(f)
            if hasattr(v, "__index__") and not isinstance(v, float):   # numpy integers
                return int(v)
            raise ValueError(self.describe())
        if t is float:
            if isinstance(v, bool):
                raise ValueError(self.describe())
            try:
                f = float(v.strip() if isinstance(v, str) else v)
            except (TypeError, ValueError):
                raise ValueError(self.describe()) from None
            if not math.isfinite(f):
                raise ValueError(self.describe() + " (finite)")
            return f
        if t is str:
            if isinstance(v, str):
                return v
            if isinstance(v, os.PathLike):
                return os.fspath(v)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return _num(v)
            raise ValueError(self.describe())
        if t is list:
            if isinstance(v, str):
                return [s.strip() for s in v.split(",") if s.strip()]
            if isinstance(v, (list, tuple)):
                return list(v)
            raise ValueError(self.describe())
        raise AssertionError(t)  # pragma: no cover

    def _choice(self, v):
        if v in self.choices:
            return v
        if isinstance(v, str):
            for c in self.choices:
                if isinstance(c, str) and c.lower() == v.strip().lower():
                    return c
        raise ValueError(self.describe())


# ---------------------------------------------------------------------------
# Parsers shared by several checks' declarations

def csv_of(choices=None, *, count_suffix: bool = False, min_items: int = 1, what: str = "names"):
    """A parser for a comma-separated list (a string, or a list from Python/TOML), returned
    as the comma-joined string the check splits. ``choices``: the allowed items (matched
    case-insensitively); ``count_suffix``: an item may end in ``:N`` with N a positive
    integer (``iid:40``)."""
    allowed = None if choices is None else tuple(choices)

    def parse(value):
        value = value.tolist() if hasattr(value, "tolist") else value      # numpy arrays
        items = value if isinstance(value, (list, tuple)) else str(value).split(",")
        items = [str(s).strip() for s in items if str(s).strip()]
        accepted = (f"comma-separated {what}" + (f" from {', '.join(allowed)}" if allowed else "")
                    + (" (each optionally :N)" if count_suffix else ""))
        if len(items) < min_items:
            raise ValueError(accepted + (f", at least {min_items}" if min_items > 1 else ""))
        out = []
        for item in items:
            base, sep, count = item.partition(":") if count_suffix else (item, "", "")
            if sep and not (count.isdigit() and int(count) > 0):
                raise ValueError(f"{accepted}; {item!r} has no positive integer after ':'")
            if allowed is not None:
                match = [c for c in allowed if c.lower() == base.lower()]
                if not match:
                    close = difflib.get_close_matches(base, allowed, n=1)
                    raise ValueError(f"{accepted}; {base!r} is not one of them"
                                     + (f" (did you mean {close[0]!r}?)" if close else ""))
                base = match[0]
            out.append(base + (sep + count if sep else ""))
        return ",".join(out)
    parse.accepts = (f"comma-separated {what}" + (f" from {', '.join(allowed)}" if allowed else "")
                     + (" (each optionally :N)" if count_suffix else "") + ("" if min_items else ", or empty"))
    return parse


def numbers(*, min: float | None = None, min_open: bool = False, min_items: int = 0, integer: bool = False,
            what: str = "numbers"):
    """A parser for a comma-separated list of numbers (a string, a number, or a list),
    returned as the comma-joined string the check reads (``[0.3, 0.4]`` → ``"0.3,0.4"``).
    Empty is allowed when ``min_items`` is 0."""
    def accepted():
        bound = "" if min is None else f" {'>' if min_open else '≥'} {_num(min)}"
        return f"comma-separated {what}{bound}" + (f", at least {min_items}" if min_items > 1 else "")

    def parse(value):
        value = value.tolist() if hasattr(value, "tolist") else value      # numpy arrays and scalars
        if isinstance(value, bool):
            raise ValueError(accepted())
        if isinstance(value, (int, float)):
            items = [value]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            items = [s for s in str(value).strip().strip("[]").replace(";", ",").split(",") if s.strip()]
        vals = []
        for s in items:
            try:
                f = float(s)
            except (TypeError, ValueError):
                raise ValueError(f"{accepted()}; {s!r} is not a number") from None
            if not math.isfinite(f) or (min is not None and (f < min or (min_open and f == min))) \
                    or (integer and f != int(f)):
                raise ValueError(f"{accepted()}; got {s!r}")
            vals.append(f)
        if len(vals) < min_items:
            raise ValueError(accepted())
        return ",".join(str(s).strip() for s in items)
    parse.accepts = accepted() + ("" if min_items else ", or empty")
    return parse


def claim_instances(value):
    """``distribution:n:k_over_n[,...]`` (distributions of :func:`fairaudit.data.generate_claims`,
    n ≥ 2, 0 < k/n ≤ 1), returned as the comma-joined string."""
    from .data import CLAIM_DISTRIBUTIONS
    accepted = (f"distribution:n:k_over_n[,...] with a distribution from {', '.join(CLAIM_DISTRIBUTIONS)}, "
                "n ≥ 2 and 0 < k_over_n ≤ 1 (e.g. uniform:1000:0.1)")
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    items = [str(s).strip() for s in items if str(s).strip()]
    if not items:
        raise ValueError(accepted)
    for item in items:
        parts = item.split(":")
        if len(parts) != 3:
            raise ValueError(f"{accepted}; got {item!r}")
        dist, n, r = parts
        if dist not in CLAIM_DISTRIBUTIONS:
            close = difflib.get_close_matches(dist, CLAIM_DISTRIBUTIONS, n=1)
            raise ValueError(f"{accepted}; unknown distribution {dist!r}"
                             + (f" (did you mean {close[0]!r}?)" if close else ""))
        try:
            nn, rr = int(n), float(r)
        except ValueError:
            raise ValueError(f"{accepted}; got {item!r}") from None
        if nn < 2 or not (0 < rr <= 1):
            raise ValueError(f"{accepted}; got {item!r}")
    return ",".join(items)


def _claim_instances_accepts() -> str:
    from .data import CLAIM_DISTRIBUTIONS
    return (f"comma-separated distribution:n:k_over_n (distributions: {', '.join(CLAIM_DISTRIBUTIONS)}; "
            "n ≥ 2; 0 < k_over_n ≤ 1)")


claim_instances.accepts = _claim_instances_accepts()


# ---------------------------------------------------------------------------
# Resolution against the registry

def _suggest(word: str, options, fmt: Callable[[str], str]) -> str:
    """"; did you mean `X`?" for the option closest to ``word`` (difflib), else ""."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean `{fmt(close[0])}`?" if close else ""


def _show(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def unknown_checks(ids, registry: Mapping[str, Any], what: str = "check(s)") -> UsageError:
    """The error for check ids not in ``registry``, with the closest ids (difflib)."""
    close = [m for i in ids for m in difflib.get_close_matches(str(i), list(registry), n=1)]
    hint = f"; did you mean `{'`, `'.join(close)}`?" if close else ";"
    return UsageError(f"unknown {what}: {', '.join(map(str, ids))}{hint} available: {', '.join(sorted(registry))}")


def resolve_params(overrides: Mapping | None, registry: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Validate ``{check_id: {name: value}}`` against the checks of ``registry`` (id →
    class with ``params``) and return the parsed overrides in the same shape. Raises
    :class:`ParamError` on the first problem (see the module docstring)."""
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise ParamError(f"params must map check ids to {{name: value}} tables, not {type(overrides).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for cid, table in overrides.items():
        cid = str(cid)
        if cid not in registry:
            names = [str(n) for n in table] if isinstance(table, Mapping) else []
            close = difflib.get_close_matches(cid, list(registry), n=1, cutoff=0.6)
            owners = sorted(c for c, cls in registry.items() if cid in cls.params)
            if close:
                sugg = [f"{close[0]}.{n}" for n in names if n in registry[close[0]].params] or [close[0]]
                hint = f"; did you mean `{'`, `'.join(sugg)}`?"
            elif owners and not isinstance(table, Mapping):
                # a flat {name: value} mapping is a common slip: say so
                hint = (f"; params maps a check id to its parameters, e.g. {{{owners[0]!r}: {{{cid!r}: …}}}} "
                        f"for `{owners[0]}.{cid}`")
            else:
                hint = ""
            given = f" (parameter{'s' if len(names) > 1 else ''} {', '.join(f'{cid}.{n}' for n in names)})" \
                if names else ""
            raise ParamError(f"unknown check '{cid}'{given}{hint}{' ' if hint.endswith('?') else '. '}"
                             f"Checks: {', '.join(sorted(registry))}",
                             check=cid)
        if table is None:
            continue
        if not isinstance(table, Mapping):
            raise ParamError(f"parameters of check '{cid}' must be a table of name = value, got {_show(table)}",
                             check=cid)
        declared = registry[cid].params
        parsed: dict[str, Any] = {}
        for name, value in table.items():
            name = str(name)
            if name not in declared:
                hint = _suggest(name, declared, lambda n: f"{cid}.{n}")
                raise ParamError(f"unknown parameter {cid}.{name}{hint}{' ' if hint else '. '}{cid} takes "
                                 f"{', '.join(sorted(declared)) or 'no parameters'}", check=cid, name=name)
            try:
                parsed[name] = declared[name].coerce(value)
            except ValueError as e:
                raise ParamError(f"invalid value for {cid}.{name}: got {_show(value)}; expected {e}",
                                 check=cid, name=name) from None
        out[cid] = parsed
    return out


def defaults_with(check_cls, overrides: Mapping | None) -> dict[str, Any]:
    """Every parameter of ``check_cls``: defaults, overridden by ``overrides`` (parsed)."""
    resolved = resolve_params({check_cls.id: dict(overrides or {})}, {check_cls.id: check_cls})
    return {**{k: p.default for k, p in check_cls.params.items()}, **resolved.get(check_cls.id, {})}


# The shared parsers are reachable from the class too, so a check module that imports
# only ``Param`` can declare ``parse=Param.csv_of(...)``.
Param.csv_of = staticmethod(csv_of)
Param.numbers = staticmethod(numbers)
Param.claim_instances = staticmethod(claim_instances)
