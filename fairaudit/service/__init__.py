"""Deployed services as audit targets (issue 27): a selection, ranking or decision API
audited over HTTP — ``fairaudit check service.toml`` — with a query budget, faults
survived (retries, backoff honouring ``Retry-After``, rate limit, concurrency), and
every request and response recorded for an exact offline replay
(``--from-recording``).

* :mod:`fairaudit.service.spec` — the service file and its published schema
  (``fairaudit/schema/service-v1.schema.json``);
* :mod:`fairaudit.service.source` — the HTTP client and the draw source the sampler
  uses in place of worker processes (``Sampler(source=...)``);
* :mod:`fairaudit.service.recording` — the hash-chained JSON Lines recording.

The checks never learn they are talking to HTTP: they ask the sampler for draws.
"""
from __future__ import annotations

from .spec import is_service_spec, load_service, schema

__all__ = ["is_service_spec", "load_service", "schema", "open_service_sampler"]


def open_service_sampler(path, config, command: str = ""):
    """The sampler of the service file ``path`` under an :class:`~fairaudit.engine.AuditConfig`:
    its draws come over HTTP (recorded to ``config.record``) or from ``config.from_recording``.
    The file is validated and the service probed here: every problem is a
    :class:`~fairaudit.errors.TargetError` before any check runs."""
    from ..sampler import Sampler
    from .source import open_source
    src = open_source(path, seed=config.seed, max_queries=config.max_queries, record=config.record,
                      from_recording=config.from_recording, command=command)
    return Sampler(src.target, config.seed, source=src, timeout=config.timeout, budget_seconds=config.budget,
                   progress=config.progress)
