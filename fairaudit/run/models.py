"""Fitted scikit-learn estimators as audit targets: a model is a per-person decision rule.

``fairaudit check model.joblib --data people.csv``, ``fairaudit check model.skops …`` and
``fairaudit check my_module:pipeline …`` (any object with ``predict``, or ``predict_proba``
with ``--threshold``) audit the model as a ``decision`` target: one yes/no per row of the
data, any number of yeses. What the adapter promises:

- **Columns by name.** The model's inputs are the columns in ``feature_names_in_`` (set
  by scikit-learn when it was fitted on a DataFrame), looked up among the data's feature
  and group columns; a column the data lacks is a one-line error naming it, before any
  draw. A model fitted on a bare array (no ``feature_names_in_``) gets the data's feature
  columns in file order when their number matches ``n_features_in_``.
- **Decisions.** ``predict`` (its output must be 0/1 or booleans); with a threshold,
  ``predict_proba(X)[:, 1] >= threshold`` instead.
- **Randomized models** — a ``predict`` taking ``random_state`` — get an integer seed
  drawn from the audit's generator for each draw, so their decisions are a pure function
  of ``--seed`` like any allocator's. One that also has ``_pmf_predict`` (Fairlearn's
  ``ThresholdOptimizer``, whose ``predict`` says yes when ``pmf[:, 1]`` exceeds a uniform)
  is drawn the same way in one call per batch: ``pmf[:, 1]`` once, the uniforms from the
  audit's generator. A
  ``predict`` taking ``sensitive_features`` gets the columns named in the estimator's
  attribute ``fairaudit_sensitive_features`` (set it before saving), else the data's
  group columns.
- **Deterministic models** are called once per batch of draws (their decisions do not
  change between draws).

Trust. ``.joblib``/``.pkl`` files are unpickled, and unpickling runs whatever code the
file names: load only models you would run. ``.skops`` files are loaded with
``skops.io.load``, trusting only the types ``skops.io.get_untrusted_types`` lists for the
file — it refuses code objects a pickle would run, but the types it lists are trusted
without review here, so the same rule applies: audit only files you trust.
"""
from __future__ import annotations

import hashlib
import inspect
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TargetError
from ..text import exception_text
from .targets import Target

from .spec import MODEL_SUFFIXES, is_model_path  # noqa: F401  (a model adapter names what it reads)


def is_estimator(obj) -> bool:
    """Anything with ``predict`` or ``predict_proba`` that is not a plain function."""
    return not inspect.isroutine(obj) and not inspect.isclass(obj) and (
        callable(getattr(obj, "predict", None)) or callable(getattr(obj, "predict_proba", None)))


def load_model_file(path: str):
    """Load a fitted estimator from ``.joblib``/``.pkl`` (unpickled: runs code — trusted
    files only) or ``.skops``; a one-line :class:`TargetError` when it cannot be read."""
    p = Path(path)
    if not p.is_file():
        raise TargetError(f"model file not found: {path}")
    import sys
    folder = str(p.resolve().parent)      # classes defined beside the file unpickle, as a .py target's imports do
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        if p.suffix.lower() == ".skops":
            import skops.io as sio
            return sio.load(p, trusted=sio.get_untrusted_types(file=p))
        import joblib
        return joblib.load(p)
    except TargetError:
        raise
    except ModuleNotFoundError as e:
        from .extras import missing_extra
        if missing_extra(e.name):
            raise TargetError(f"{path}: cannot be loaded: {missing_extra(e.name)}") from e
        raise TargetError(f"{path}: cannot be loaded: it needs the module {e.name!r}, which is not importable here "
                          f"(install it, or run with PYTHONPATH set to the folder that holds it)") from e
    except Exception as e:
        raise TargetError(f"{path}: cannot be loaded as a fitted model ({type(e).__name__}: {exception_text(e)}); "
                          f"a model saved with another scikit-learn version may not load — rebuild it here") from e


def model_columns(est) -> tuple[str, ...]:
    """The columns ``est`` reads: its ``feature_names_in_``, else (a meta-estimator such as
    ``ThresholdOptimizer``, which keeps none) its fitted inner ``estimator_``'s."""
    for obj in (est, getattr(est, "estimator_", None)):
        names = getattr(obj, "feature_names_in_", None)
        if names is not None:
            return tuple(str(c) for c in names)
    return ()


def estimator_target(est, *, path: str, sha256: str = "", threshold: float | None = None,
                     load_spec: str | None = None):
    """The :class:`~fairaudit.run.targets.Target` (kind ``decision``) deciding with ``est``."""
    has_predict = callable(getattr(est, "predict", None))
    has_proba = callable(getattr(est, "predict_proba", None))
    name = type(est).__name__
    if threshold is not None and not has_proba:
        raise TargetError(f"{path}: --threshold needs predict_proba, and this {name} has none; "
                          f"drop --threshold to use its predict")
    if threshold is None and not has_predict:
        raise TargetError(f"{path}: this {name} has predict_proba but no predict; give --threshold T "
                          f"(decision: predict_proba[:, 1] >= T)")
    if threshold is not None and not 0 <= threshold <= 1:
        raise TargetError(f"{path}: --threshold {threshold:g} is not a probability in [0, 1]")
    columns = model_columns(est)
    method = est.predict if threshold is None else est.predict_proba
    try:
        params = set(inspect.signature(method).parameters)
    except (TypeError, ValueError):
        params = set()
    randomized = threshold is None and "random_state" in params
    wants_sensitive = "sensitive_features" in params
    # a randomized predict that draws a yes with the chance its probability mass function gives
    # (Fairlearn's post-processors: predict = pmf[:, 1] >= uniform): the pmf once per batch, the
    # coins from the audit's generator — the same decision distribution, one call instead of size
    pmf = getattr(est, "_pmf_predict", None) if randomized else None
    sensitive = getattr(est, "fairaudit_sensitive_features", None)
    n_in = getattr(est, "n_features_in_", None)

    def X_of(features, groups):
        import pandas as pd
        tables = [t for t in (features, groups) if t is not None]
        if not columns:
            if features is None or (n_in is not None and features.shape[1] != n_in):
                have = 0 if features is None else features.shape[1]
                raise TargetError(f"{path}: the {name} was fitted without column names (no feature_names_in_) on "
                                  f"{n_in} features, and the data has {have} feature columns; refit it on a "
                                  f"DataFrame so its columns are matched by name")
            return features
        have = {c: t for t in tables for c in t.columns}
        missing = [c for c in columns if c not in have]
        if missing:
            raise TargetError(missing_columns_message(path, name, missing, list(have)))
        return pd.DataFrame({c: have[c][c].to_numpy() for c in columns})

    def sens_of(groups):
        if groups is None:
            raise TargetError(f"{path}: the {name}'s predict needs sensitive_features, and the data has no group columns "
                              f"(name them with --groups)")
        cols = list(sensitive) if sensitive else list(groups.columns)
        miss = [c for c in cols if c not in groups.columns]
        if miss:
            raise TargetError(f"{path}: sensitive feature column(s) {', '.join(miss)} are not group columns of the data")
        return groups[cols[0]] if len(cols) == 1 else groups[cols]

    def once(X, groups, seed):
        kw: dict[str, Any] = {}
        if wants_sensitive:
            kw["sensitive_features"] = sens_of(groups)
        if randomized:
            kw["random_state"] = seed
        out = method(X, **kw)
        if threshold is not None:
            out = np.asarray(out)
            out = (out[:, 1] if out.ndim == 2 else out) >= threshold
        return np.asarray(out)

    def decide(features=None, groups=None, rng=None, size=None):
        X = X_of(features, groups)
        B = 1 if size is None else int(size)
        if pmf is not None:
            kw = {"sensitive_features": sens_of(groups)} if wants_sensitive else {}
            p = np.asarray(pmf(X, **kw), dtype=float)[:, 1]
            out = rng.random((B, len(p))) < p
            return out[0] if size is None else out
        if randomized:                     # one seed per draw, from the audit's generator
            seeds = rng.integers(0, 2**31 - 1, size=B)
            outs = [once(X, groups, int(s)) for s in seeds]
        else:
            outs = [once(X, groups, None)] * B
        return outs[0] if size is None else np.stack(outs)

    decide.__name__ = name
    how = (f"predict_proba(X)[:, 1] >= {threshold:g}" if threshold is not None else
           "a yes with chance _pmf_predict(X)[:, 1], coins from the audit's generator" if pmf is not None else
           "predict(X, random_state=<seed from the audit's generator>)" if randomized else "predict(X)")
    doc = (f"A fitted {name} deciding per person by {how}, on columns "
           f"{', '.join(columns) if columns else '(the data features, in order)'}.")
    return Target(func=decide, kind="decision", name=name, path=path, sha256=sha256, vectorized=True,
                  arg_names=frozenset({"features", "groups", "rng", "size"}), doc=doc, load_spec=load_spec,
                  claims="real", columns=columns, n_inputs=None if columns or n_in is None else int(n_in))


def missing_columns_message(path: str, name: str, missing, have) -> str:
    return (f"{path}: the {name} reads column(s) {', '.join(missing)} (its feature_names_in_) that the data "
            f"does not have; the data has {', '.join(map(str, have)) or 'no feature or group columns'}")


def file_sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
