"""fairaudit — property-based audits of allocation and ranking systems.

Public API: the allocator decorators (:func:`selector`, :func:`ranker`,
:func:`assigner`, :func:`decider`), :class:`Instance`, :func:`load_target`, the :class:`Sampler`,
result types (:class:`Estimate`, :class:`CheckResult`, :class:`AuditResult`) and
:func:`audit`, which runs checks on a target and returns an :class:`AuditResult`;
the exact UA ranking (:func:`ua_marginals`, :func:`ua_sample`) and the
cross-population simulator (:func:`simulate_pool`, :func:`simulate_pools`,
:func:`epsilon_hat`; more in :mod:`fairaudit.populations`).
"""
from ._version import __version__
from .errors import AllocatorError, DataError, FairauditError, LogError, TargetError

# Everything else is loaded on first use (``__getattr__`` below): ``import fairaudit`` —
# which the command line does before it knows what it will run, and every allocator file
# does in every worker process — imports no numpy, scipy or pandas, so ``fairaudit
# --help``, ``--version`` and an argument error answer at once (issue 30). The pytest
# plugin imports scipy up front for pytester's in-process runs (fairaudit.pytest_plugin).

__all__ = [
    "__version__", "selector", "ranker", "assigner", "decider", "Instance", "Target", "load_target",
    "target_from_callable", "Sampler", "Estimate", "FairauditError", "TargetError", "DataError",
    "LogError", "AllocatorError", "audit", "CheckResult", "AuditResult", "Statistic",
    "ua_marginals", "ua_sample", "ua_position_given_label", "ua_marginals_iid",
    "simulate_pool", "simulate_pools", "epsilon_hat",
]

# The cross-population simulator of Kearns, Roth and Wu (fairaudit.populations), loaded on first use.
_POPULATIONS = ("simulate_pool", "simulate_pools", "epsilon_hat")


#: loaded on first use: ``import fairaudit`` (which every allocator file does, in every
#: worker process) stays cheap — scipy is imported only by what needs it
_UA = ("ua_marginals", "ua_marginals_iid", "ua_position_given_label", "ua_sample")


def __dir__():
    """The public names (those loaded on first use included), then the rest."""
    return sorted(set(__all__) | set(globals()))


_TARGETS = ("Target", "assigner", "decider", "load_target", "ranker", "selector", "target_from_callable")


def __getattr__(name):
    # Lazy: numpy comes with the first allocator decorator, the engine pulls in pandas
    # and the check registry.
    if name in _TARGETS:
        from . import targets
        return getattr(targets, name)
    if name == "Instance":
        from .instance import Instance
        return Instance
    if name == "Sampler":
        from .sampler import Sampler
        return Sampler
    if name == "Estimate":
        from .stats import Estimate
        return Estimate
    if name in _UA:
        from . import ua
        return getattr(ua, name)
    if name in ("audit",):
        from .engine import audit
        return audit
    if name in _POPULATIONS:
        from . import populations
        return getattr(populations, name)
    if name in ("CheckResult", "AuditResult", "Statistic"):
        from . import notebook, result    # notebook: how results show themselves (result.PRESENTERS)
        return getattr(result, name)
    # Submodules an allocator file may reach as attributes (``fa.ua.ua_sample``): they
    # are not imported up front.
    import importlib.util
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(name)
