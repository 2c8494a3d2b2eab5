"""What to install when an optional dependency is missing (issue 32).

The distribution of this project is ``fairaudit-audit`` (the name ``fairaudit`` on the
package registry belongs to another, unrelated project); the command ``fairaudit`` and
``import fairaudit`` keep their names. Until it is published, its extras are installed
from a checkout of this repository: ``pip install -e ".[models]"``. Every install hint
fairaudit prints comes from :func:`install_hint`, naming the extra — not the import name
(``sklearn``) a ``ModuleNotFoundError`` carries.
"""
from __future__ import annotations

#: the distribution name of this project (pyproject.toml's [project] name)
DISTRIBUTION = "fairaudit-audit"

#: top-level import name -> (extra, what it provides)
EXTRAS = {
    "sklearn": ("models", "scikit-learn"),
    "skops": ("models", "skops"),
    "dask": ("dask", "dask[distributed]"),
    "distributed": ("dask", "dask[distributed]"),
    "pyspark": ("spark", "pyspark"),
    "fairlearn": ("examples", "fairlearn"),
}


def install_hint(extra: str) -> str:
    """``pip install -e ".[models]"`` (in the fairaudit checkout) — the extra of this project."""
    return f'pip install -e ".[{extra}]" in the fairaudit checkout (the {extra} extra of {DISTRIBUTION})'


def missing_extra(module_name: str | None) -> str | None:
    """The sentence for a missing import that an extra of this project provides, else None."""
    if not module_name:
        return None
    root = str(module_name).split(".")[0]
    if root not in EXTRAS:
        return None
    import importlib.util
    try:
        if importlib.util.find_spec(root) is not None:      # installed: a submodule is missing, not the extra
            return None
    except (ImportError, ValueError):
        pass
    extra, package = EXTRAS[root]
    return f"it needs {package} (import name {root!r}), from the '{extra}' extra, which is not installed: {install_hint(extra)}"
