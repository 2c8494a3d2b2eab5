"""Loading a target from its spec (:mod:`fairaudit.run.spec`): an allocator file, a
``module:function`` or a fitted model (:mod:`fairaudit.run.models`).

Kept apart from :mod:`fairaudit.run.targets` (what a loaded target is) so that the model
adapter can build targets without an import circle.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ..errors import TargetError
from ..text import exception_text
from . import models
from .spec import TargetSpec
from .targets import Target, _docstring, _file_hash, _pick_function, target_from_callable


def import_file(path: str | Path, where: str | None = None) -> ModuleType:
    """Import a Python file as a module (executed afresh on every call) under a name
    derived from its resolved path, registered in ``sys.modules`` so that joblib workers
    can pickle its functions by reference. An exception raised by the file itself
    becomes a one-line :class:`TargetError` naming ``where`` (default: the path)."""
    p = Path(path)
    mod_name = "fairaudit_target_" + hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:12]
    sp = importlib.util.spec_from_file_location(mod_name, p)
    module = importlib.util.module_from_spec(sp)
    sys.modules[mod_name] = module
    try:
        sp.loader.exec_module(module)
    except SystemExit as e:   # sys.exit() at import: the file cannot be loaded, the audit goes on to say so
        raise TargetError(f"{where or path}: importing it raised SystemExit (sys.exit({e.code!r})) — "
                          f"an allocator file must not end the process") from None
    except Exception as e:  # the user's file itself is broken
        from ..extras import missing_extra
        hint = missing_extra(e.name) if isinstance(e, ModuleNotFoundError) else None
        raise TargetError(f"{where or path}: importing it raised {type(e).__name__}: {exception_text(e)}"
                          + (f"; {hint}" if hint else "")) from e
    # the module's name exists only in this process: a closure over it (or over one of its
    # functions) sent to a worker must carry the module's code, not a name to import
    import cloudpickle
    cloudpickle.register_pickle_by_value(module)
    return module


def load_target(spec: str) -> Target:
    """Load an allocator from ``path/to/file.py``, ``path/to/file.py:function`` or
    ``package.module:function``, or a fitted scikit-learn model from ``model.joblib``,
    ``model.skops`` or ``module:name`` / ``file.py:name`` naming an estimator (see
    :mod:`fairaudit.run.models`; ``[threshold=T]`` appended: decide by ``predict_proba``).
    Raises :class:`TargetError` with a one-line reason."""
    full_spec = str(spec)
    parsed = TargetSpec.parse(full_spec)
    spec, threshold = parsed.base, parsed.threshold
    if parsed.is_model_file:
        est = models.load_model_file(spec)
        if not models.is_estimator(est):
            raise TargetError(f"{spec}: holds a {type(est).__name__}, not a fitted model with predict or predict_proba")
        return models.estimator_target(est, path=spec, sha256=_file_hash(Path(spec)), threshold=threshold,
                                       load_spec=full_spec)
    file_part, func_name = parsed.location, parsed.function
    p = Path(file_part)
    if file_part.endswith(".py"):
        if not p.is_file():
            raise TargetError(f"allocator file not found: {file_part}")
        folder = str(p.resolve().parent)       # sibling imports work, as with `python file.py`
        if folder not in sys.path:
            sys.path.insert(0, folder)
        module = import_file(p, where=file_part)
        sha = _file_hash(p)
        where = file_part
    else:
        if func_name is None:
            raise TargetError(f"target {spec!r} is neither a .py file nor module:function")
        # Python's path, then the current folder: the same in this process (--in-process) as
        # in the worker processes (whose path is the audit's with their own '' = cwd after it)
        import os
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.append(os.getcwd())
        try:
            module = importlib.import_module(file_part)
        except Exception as e:
            hint = ""
            if isinstance(e, ModuleNotFoundError) and e.name and file_part.split(".")[0] == e.name.split(".")[0]:
                hint = (f" — {e.name!r} is neither on Python's path nor in the current folder: run the command "
                        f"from the folder holding {file_part.split('.')[0]!r}, install your package "
                        f"(`pip install -e .`), or give the file: "
                        f"`fairaudit check path/to/{file_part.replace('.', '/')}.py:{func_name}`")
            raise TargetError(f"cannot import module {file_part!r}: {type(e).__name__}: {exception_text(e)}{hint}") from e
        mf = getattr(module, "__file__", None)
        sha = _file_hash(Path(mf)) if mf and Path(mf).is_file() else ""
        where = spec
    if func_name:
        if not hasattr(module, func_name):
            raise TargetError(f"{where}: has no function '{func_name}'")
        func = getattr(module, func_name)
        if models.is_estimator(func):
            t = models.estimator_target(func, path=where, sha256=sha, threshold=threshold, load_spec=full_spec)
            if getattr(module, "__doc__", None):
                t.doc = _docstring(module)
            return t
    else:
        func = _pick_function(module, where)
    if threshold is not None:
        raise TargetError(f"{where}: --threshold applies to a fitted model (predict_proba), not to a function")
    t = target_from_callable(func, path=where, sha256=sha)
    if not t.doc and getattr(module, "__doc__", None):
        t.doc = _docstring(module)
    t.load_spec = spec
    return t
