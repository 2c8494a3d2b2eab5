"""Target specs: the one parser of ``file.py``, ``file.py:function``, ``package.module:function``,
``model.joblib`` / ``model.skops`` and a model's ``[threshold=T]`` suffix.

Every place that reads a spec (loading a target, shipping it to workers, keying warm
pools, naming a test, replaying a result) goes through :meth:`TargetSpec.parse`, so a
spec means the same everywhere. The rules:

- a trailing ``[threshold=T]`` is a fitted model's decision threshold (``--threshold``);
- a path ending in a model suffix (``.joblib``, ``.pkl``, ``.pickle``, ``.skops``) is a model file;
- a path to an existing file, or any spec ending in ``.py``, is a file path whatever
  characters it holds (a ``:`` included);
- otherwise ``FILE.py:function`` or ``module:function``, split at the last ``:`` (a
  Windows drive letter's ``:`` is not a separator).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import TargetError

MODEL_SUFFIXES = (".joblib", ".pkl", ".pickle", ".skops")
_THRESHOLD_SUFFIX = re.compile(r"\[threshold=([^\]]*)\]$")


def is_model_path(spec: str) -> bool:
    return str(spec).lower().endswith(MODEL_SUFFIXES)


def _is_drive_path(spec: str) -> bool:
    return len(spec) > 1 and spec[1] == ":" and spec[0].isalpha() and "\\" in spec and spec.count(":") == 1


@dataclass(frozen=True)
class TargetSpec:
    """A parsed target spec. ``location`` is the file path (``.py`` or model file) or the
    module name; ``function`` the name after the ``:`` (None: pick the allocator of the
    file); ``threshold`` a model's ``[threshold=T]``."""

    location: str
    function: str | None = None
    threshold: float | None = None

    @classmethod
    def parse(cls, spec) -> "TargetSpec":
        """Parse ``spec``; a threshold that is not a number is a one-line :class:`TargetError`."""
        spec = str(spec)
        threshold = None
        m = _THRESHOLD_SUFFIX.search(spec)
        if m:
            try:
                threshold = float(m.group(1))
            except ValueError:
                raise TargetError(f"--threshold {m.group(1)!r} is not a number") from None
            spec = spec[:m.start()]
        if is_model_path(spec):
            return cls(spec, None, threshold)
        if ":" in spec and not spec.endswith(".py") and not Path(spec).is_file() and not _is_drive_path(spec):
            location, func = spec.rsplit(":", 1)
            return cls(location, func, threshold)
        return cls(spec, None, threshold)

    # -- what it names ---------------------------------------------------------
    @property
    def is_model_file(self) -> bool:
        return is_model_path(self.location)

    @property
    def is_file(self) -> bool:
        """A ``.py`` file (not a module name, not a model file)."""
        return self.location.endswith(".py")

    @property
    def path(self) -> Path | None:
        """The file it names (``.py`` or model file), or None for a module."""
        return Path(self.location) if self.is_file or self.is_model_file else None

    @property
    def base(self) -> str:
        """The spec without its threshold: ``location`` or ``location:function``."""
        return f"{self.location}:{self.function}" if self.function else self.location

    @property
    def name(self) -> str:
        """A short name: the function, else the file's stem (``top_k`` for ``a/top_k.py``)."""
        if self.function:
            return self.function
        return Path(self.location).name.removesuffix(".py")

    def replace_location(self, location: str) -> "TargetSpec":
        return TargetSpec(str(location), self.function, self.threshold)

    def with_threshold(self, threshold: float | None) -> "TargetSpec":
        return TargetSpec(self.location, self.function, threshold)

    def __str__(self) -> str:
        return self.base if self.threshold is None else f"{self.base}[threshold={float(self.threshold)!r}]"


def with_threshold(spec, threshold: float | None) -> str:
    """``spec`` carrying a model's decision threshold (``--threshold``) to every process that loads it."""
    return str(spec) if threshold is None else f"{spec}[threshold={float(threshold)!r}]"
