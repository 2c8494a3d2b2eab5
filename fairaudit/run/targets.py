"""Targets: allocator callables loaded from files or modules, their kind, how to call
them, and validation of every outcome they return.

An allocator file needs only a plain function; the decorators make its kind explicit::

    import fairaudit as fa

    @fa.selector(k=10)
    def allocate(scores, k, rng): ...             # k chosen indices (in pick order if known)

    @fa.ranker
    def rank(predictions, rng): ...               # n×m probabilities → permutation, top first

    @fa.assigner
    def assign(scores, groups, capacities, rng): ...   # T×N scores → location per arrival

    @fa.decider
    def decide(features, groups, rng): ...        # per-person yes/no: a boolean vector of length n

A fitted scikit-learn estimator or pipeline is a ``decision`` target too (see
:mod:`fairaudit.run.models`): ``model.joblib``, ``model.skops`` or ``module:pipeline``.

The function is called with keyword arguments chosen by name from its signature:
``scores`` (alias ``claims``), ``k``, ``n``, ``predictions``, ``groups``, ``features``,
``labels``, ``capacities``, ``rng`` and, for the vectorised path, ``size``. A function
that accepts ``size`` is called once per batch and must return ``size`` outcomes.
"""
from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import TargetError
from ..instance import Instance
from ..text import show_value

KINDS = ("selection", "ranking", "assignment", "decision")
_ARG_NAMES = {"scores", "claims", "k", "n", "predictions", "groups", "features", "labels",
              "capacities", "rng", "size"}
_CANDIDATE_NAMES = ("allocate", "allocator", "select", "selector", "rank", "ranker", "assign", "assigner",
                    "decide", "decider", "policy", "lottery")
#: what a selector returning a variable number of people is told (issue 17)
PER_PERSON_HINT = ("; it looks like a per-person rule (any number of yeses), not a k-of-n selection: mark it "
                   "`@fa.decider` and return a boolean vector of length n, e.g.\n"
                   "    import fairaudit as fa\n    @fa.decider\n    def decide(features, groups, rng): ...")


# ---------------------------------------------------------------------------
# Decorators
# ---------------------------------------------------------------------------

def _mark(kind: str, func: Callable | None, **meta):
    def wrap(f: Callable) -> Callable:
        f.__fairaudit__ = {"kind": kind, **{k: v for k, v in meta.items() if v is not None}}
        return f
    return wrap(func) if func is not None else wrap


#: the domains an allocator may declare for the scores (claims) it takes; generated inputs are mapped into it
CLAIM_DOMAINS = ("real", "nonnegative", "positive", "unit")
#: what each kind implies when nothing is declared: a selection's scores are claims (SPEC §1: c_i ≥ 0)
DEFAULT_CLAIMS = {"selection": "nonnegative", "ranking": "real", "assignment": "real", "decision": "real"}


def selector(func: Callable | None = None, *, k: int | None = None, vectorized: bool | None = None,
             claims: str | None = None):
    """Mark a function as a selection allocator (chooses k of n). ``k`` fixes the number
    chosen; otherwise fairaudit passes the configured ``k``. ``claims`` declares the
    domain of the scores it takes — ``"real"``, ``"nonnegative"`` (the default),
    ``"positive"`` or ``"unit"`` ([0, 1]); generated inputs are mapped into it."""
    return _mark("selection", func, k=k, vectorized=vectorized, claims=claims)


def ranker(func: Callable | None = None, *, vectorized: bool | None = None, claims: str | None = None):
    """Mark a function as a ranker (returns a permutation, position 1 first)."""
    return _mark("ranking", func, vectorized=vectorized, claims=claims)


def assigner(func: Callable | None = None, *, vectorized: bool | None = None, claims: str | None = None):
    """Mark a function as an online assigner (returns a location per arrival; −1 = none)."""
    return _mark("assignment", func, vectorized=vectorized, claims=claims)


def decider(func: Callable | None = None, *, vectorized: bool | None = None, claims: str | None = None):
    """Mark a function as a per-person decision rule (kind ``decision``): called as
    ``decide(features=..., scores=..., groups=..., rng=...)`` (any subset, by name) it
    returns one yes/no per individual — a boolean or 0/1 vector of length n, any number
    of yeses. With a ``size`` parameter it is vectorised and returns a ``size × n`` array."""
    return _mark("decision", func, vectorized=vectorized, claims=claims)


# ---------------------------------------------------------------------------
# Instances (the inputs an allocator is called on)
# ---------------------------------------------------------------------------

# Instance lives in fairaudit.instance (checks build inputs without importing the loader).


# ---------------------------------------------------------------------------
# Target
# ---------------------------------------------------------------------------

@dataclass
class Target:
    """A loaded allocator: the callable, its kind, how to call it, and where it came from."""

    func: Callable
    kind: str
    name: str
    path: str
    sha256: str
    k: int | None = None
    vectorized: bool = False
    arg_names: frozenset = field(default_factory=frozenset)
    accepts_var_kwargs: bool = False
    #: the function's docstring, else its file's (shown in the report: what was audited)
    doc: str = ""
    #: how a worker process loads it (``load_target(load_spec)``); None for a callable
    load_spec: str | None = None
    #: loaded only in worker processes: ``func`` cannot be called in this process
    remote: bool = False
    #: the declared domain of the scores it takes (CLAIM_DOMAINS); generated inputs are mapped into it
    claims: str = "real"
    #: True when no decorator or parameter said the kind and it was guessed from the function's name
    kind_guessed: bool = False
    #: data columns the target reads by name (a model's ``feature_names_in_``): checked against --data up front
    columns: tuple = ()
    #: how many input columns a model without column names was fitted on (n_features_in_): checked up front
    n_inputs: int | None = None

    def describe(self) -> dict:
        d = {"path": self.path, "kind": self.kind, "sha256": self.sha256, "function": self.name,
             "vectorized": self.vectorized}
        if self.doc:
            d["doc"] = self.doc
        return d

    def call_kwargs(self, inst: Instance, rng: np.random.Generator, size: int | None = None) -> dict:
        args = inst.arguments()
        if self.k is not None and inst.k is None:
            args["k"] = self.k
        args["rng"] = rng
        if size is not None:
            args["size"] = size
        if self.accepts_var_kwargs:
            return args
        return {a: args[a] for a in self.arg_names if a in args}

    def effective_k(self, inst: Instance) -> int | None:
        return inst.k if inst.k is not None else self.k


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _infer_kind(func: Callable, params: set[str]) -> str | None:
    name = func.__name__.lower()
    if "decide" in name or "decision" in name:
        return "decision"
    if "predictions" in params:
        return "ranking"
    if "capacities" in params or "arrivals" in params:
        return "assignment"
    if "rank" in name or "sort" in name:
        return "ranking"
    if "assign" in name:
        return "assignment"
    if "k" in params:
        return "selection"
    if any(w in name for w in ("select", "allocate", "choose", "pick", "lottery", "top")):
        return "selection"
    return None


def target_from_callable(func: Callable, *, path: str = "", sha256: str = "", kind: str | None = None,
                         k: int | None = None) -> Target:
    """Wrap a Python callable as a :class:`Target`, inferring its kind when not marked."""
    if not callable(func):
        raise TargetError(f"{path or func!r} is not callable")
    meta = getattr(func, "__fairaudit__", {})
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError) as e:  # builtins without signatures
        raise TargetError(f"cannot read the signature of {func!r}: {e}") from e
    params = {p.name for p in sig.parameters.values()
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    var_kw = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    unknown = [p.name for p in sig.parameters.values()
               if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in _ARG_NAMES
               and p.default is inspect.Parameter.empty]
    fname = getattr(func, "__name__", repr(func))
    where = path or fname
    if unknown:
        raise TargetError(
            f"{where}: function '{fname}' has required parameters fairaudit cannot supply: "
            f"{', '.join(unknown)}. Name them from: {', '.join(sorted(_ARG_NAMES))}.")
    guessed = (not (kind or meta.get("kind")) and not params & {"predictions", "capacities", "arrivals", "k"}
               and _infer_kind(func, params) is not None)     # from the function's name alone
    kind = kind or meta.get("kind") or _infer_kind(func, params)
    if kind is None:
        raise TargetError(
            f"{where}: cannot tell whether '{fname}' selects, ranks or assigns. Add a decorator, e.g.\n"
            f"    import fairaudit as fa\n    @fa.selector(k=10)   # or @fa.ranker / @fa.assigner / @fa.decider\n"
            f"    def {fname}(...): ...")
    if kind not in KINDS:
        raise TargetError(f"{where}: unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    vectorized = meta.get("vectorized")
    if vectorized is None:
        vectorized = "size" in params
    if vectorized and "size" not in params and not var_kw:
        raise TargetError(f"{where}: marked vectorized but '{fname}' has no 'size' parameter")
    claims = meta.get("claims", DEFAULT_CLAIMS[kind])
    if claims not in CLAIM_DOMAINS:
        raise TargetError(f"{where}: claims={claims!r} is not a claim domain; expected one of {', '.join(CLAIM_DOMAINS)}")
    return Target(func=func, kind=kind, name=fname, path=where, sha256=sha256, k=k if k is not None else meta.get("k"),
                  vectorized=bool(vectorized), arg_names=frozenset(params), accepts_var_kwargs=var_kw,
                  doc=_docstring(func), claims=claims, kind_guessed=guessed)


def _docstring(obj, limit: int = 2000) -> str:
    doc = inspect.getdoc(obj) if obj is not None else None
    if not doc or not isinstance(doc, str):
        return ""
    return doc if len(doc) <= limit else doc[:limit].rstrip() + " …"


def _pick_function(module, where: str) -> Callable:
    funcs = {n: f for n, f in vars(module).items()
             if inspect.isfunction(f) and getattr(f, "__module__", None) == module.__name__ and not n.startswith("_")}
    marked = {n: f for n, f in funcs.items() if hasattr(f, "__fairaudit__")}
    if len(marked) == 1:
        return next(iter(marked.values()))
    if len(marked) > 1:
        raise TargetError(f"{where}: several decorated allocators ({', '.join(sorted(marked))}); "
                          f"name one as {where}:FUNCTION")
    named = [funcs[n] for n in _CANDIDATE_NAMES if n in funcs]
    if len(named) == 1:
        return named[0]
    if len(funcs) == 1:
        return next(iter(funcs.values()))
    if not funcs:
        raise TargetError(f"{where}: defines no function to audit")
    raise TargetError(f"{where}: several functions ({', '.join(sorted(funcs))}) and none decorated; "
                      f"decorate the allocator with @fa.selector / @fa.ranker / @fa.assigner "
                      f"or name it as {where}:FUNCTION")


# ---------------------------------------------------------------------------
# Output validation (vectorised over a batch of outcomes)
# ---------------------------------------------------------------------------

def _as_int_matrix(out, rows: int, what: str) -> np.ndarray:
    try:
        arr = np.asarray(out)
    except Exception as e:  # ragged lists etc.
        raise ValueError(f"returned something that is not an array of {what} ({type(out).__name__}: {e})")
    if arr.dtype == object:
        raise ValueError(f"returned a ragged or non-numeric object ({type(out).__name__}); expected {what}")
    if arr.ndim == 1 and rows == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] != rows:
        raise ValueError(f"returned shape {arr.shape}; expected {rows if rows > 1 else ''}"
                         f"{' × ' if rows > 1 else ''}{what}")
    if arr.dtype == bool:
        return arr
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"returned values of type {arr.dtype}; expected integer {what}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            bad = arr[~(np.isfinite(arr) & (arr == np.round(arr)))][0]
            raise ValueError(f"returned a non-integer index {show_value(bad)}; expected integer {what}")
        arr = arr.astype(np.int64)
    return arr.astype(np.int64, copy=False)


def validate_outcomes(kind: str, out, inst: Instance, rows: int, k: int | None) -> np.ndarray:
    """Check a batch of ``rows`` outcomes and return them as an int array.

    selection → (rows, k) indices in pick order (a boolean mask of length n is accepted
    and converted, order unknown); ranking → (rows, n) permutations; assignment →
    (rows, T) locations in ``[-1, N)``, capacities respected. Raises ``ValueError``
    with what was wrong (the sampler adds which input and draw)."""
    n = inst.n
    if kind == "selection":
        arr = _as_int_matrix(out, rows, f"{k} indices")
        if arr.dtype == bool:
            if arr.shape[1] != n:
                raise ValueError(f"returned a boolean mask of length {arr.shape[1]}; expected length n={n}")
            counts = arr.sum(axis=1)
            if k is not None and np.any(counts != k):
                raise ValueError(f"returned a mask selecting {int(counts[counts != k][0])} individuals; expected k={k}"
                                 + PER_PERSON_HINT)
            return np.nonzero(arr)[1].reshape(rows, -1)
        if k is not None and arr.shape[1] != k:
            raise ValueError(f"returned {arr.shape[1]} indices; expected k={k}"
                             + (PER_PERSON_HINT if arr.shape[1] != n else ""))
        _check_range(arr, 0, n, "index", f"n={n}")
        s = np.sort(arr, axis=1)
        dup = np.nonzero(s[:, 1:] == s[:, :-1])
        if dup[0].size:
            raise ValueError(f"returned index {int(s[dup[0][0], dup[1][0]])} more than once (duplicates)")
        return arr
    if kind == "ranking":
        arr = _as_int_matrix(out, rows, f"a permutation of {n}")
        if arr.dtype == bool:
            raise ValueError("returned booleans; expected a permutation of indices")
        if arr.shape[1] != n:
            raise ValueError(f"returned {arr.shape[1]} positions; expected a permutation of all n={n}")
        _check_range(arr, 0, n, "index", f"n={n}")
        s = np.sort(arr, axis=1)
        if not np.array_equal(s, np.broadcast_to(np.arange(n), s.shape)):
            raise ValueError("returned a list that is not a permutation (an index repeated or missing)")
        return arr
    if kind == "assignment":
        T, N = np.shape(inst.scores)
        arr = _as_int_matrix(out, rows, f"{T} locations")
        if arr.dtype == bool:
            raise ValueError("returned booleans; expected a location index per arrival")
        if arr.shape[1] != T:
            raise ValueError(f"returned {arr.shape[1]} locations; expected one per arrival (T={T})")
        _check_range(arr, -1, N, "location", f"N={N} (−1 = unassigned)")
        cap = inst.capacities
        if cap is not None and np.issubdtype(np.asarray(cap).dtype, np.integer):
            counts = np.stack([np.bincount(r[r >= 0], minlength=N) for r in arr])
            over = np.nonzero(counts > np.asarray(cap)[None, :])
            if over[0].size:
                loc = int(over[1][0])
                raise ValueError(f"assigned {int(counts[over[0][0], loc])} arrivals to location {loc}, "
                                 f"over its capacity {int(np.asarray(cap)[loc])}")
        return arr
    if kind == "decision":
        return _decisions(out, rows, n)
    raise ValueError(f"unknown kind {kind!r}")


def _decisions(out, rows: int, n: int) -> np.ndarray:
    """A batch of per-person decisions as a ``(rows, n)`` boolean array: booleans, or
    numbers that are all 0 or 1; anything else is refused saying what it was."""
    what = f"one yes/no (boolean or 0/1) per individual, n={n}"
    try:
        arr = np.asarray(out)
    except Exception as e:  # ragged lists etc.
        raise ValueError(f"returned something that is not an array of decisions ({type(out).__name__}: {e}); "
                         f"expected {what}")
    if arr.dtype == object:
        raise ValueError(f"returned a ragged or non-numeric object ({type(out).__name__}); expected {what}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]                 # column vectors (n × 1), as predict sometimes returns
    if arr.ndim == 2 and rows == 1 and arr.shape[0] == n and arr.shape[1] == 1:
        arr = arr.T
    if arr.ndim == 1 and rows == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] != rows:
        raise ValueError(f"returned shape {arr.shape}; expected {f'{rows} × ' if rows > 1 else ''}{what}")
    if arr.shape[1] != n:
        raise ValueError(f"returned {arr.shape[1]} decisions; expected {what}")
    if arr.dtype == bool:
        return arr
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"returned values of type {arr.dtype}; expected {what}")
    if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
        i = int(np.argwhere(np.isnan(arr))[0][1])
        raise ValueError(f"returned NaN for individual {i}; expected {what}")
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        r, i = np.argwhere(bad)[0]
        raise ValueError(f"returned {show_value(arr[r, i])} for individual {int(i)}; expected {what} "
                         f"(a probability is not a decision: threshold it, or draw from it with rng)")
    return arr.astype(bool)


def _check_range(arr: np.ndarray, lo: int, hi: int, what: str, bound: str):
    bad = (arr < lo) | (arr >= hi)
    if bad.any():
        v = int(arr[bad][0])
        raise ValueError(f"returned {what} {v}, out of range for {bound}")
