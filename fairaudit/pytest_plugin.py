"""The fairaudit pytest plugin, loaded through the ``pytest11`` entry point when
fairaudit is installed (disable with ``-p no:fairaudit``).

Adds
- the ``fairaudit`` fixture: an object with ``assert_fair(allocator, checks=..., data=..., **config)``
  and ``audit(...)``, using the session's seed / draws / confidence unless overridden,
  and keeping every result it produced (``.results``);
- command-line options ``--fairaudit-seed N``, ``--fairaudit-draws N``,
  ``--fairaudit-confidence X`` (defaults: the CLI's; they apply to the fixture and to the
  tests made by :func:`fairaudit.testing.parametrize_with_checks`), and
  ``--fairaudit-json DIR`` to write every audit's JSON result there (a CI artifact): the
  fixture's, ``assert_fair``'s and those of ``parametrize_with_checks`` tests;
- the ``fairaudit`` marker, so ``pytest -m fairaudit`` selects fairness tests (tests made
  by :func:`fairaudit.testing.parametrize_with_checks` and tests using the fixture get it).

Importing this module imports scipy (for pytester, below); fairaudit's engine is imported only when a test uses it.
"""
from __future__ import annotations

from pathlib import Path

import pytest

# pytester's in-process runs restore sys.modules afterwards, and scipy cannot be imported
# a second time in one process: import it here, before any run, as ``import fairaudit``
# did before it became lazy (issue 30). The pytest process pays this once; the command
# line does not.
import fairaudit.stats  # noqa: E402,F401
import fairaudit.ua  # noqa: E402,F401


def pytest_addoption(parser):
    group = parser.getgroup("fairaudit", "fairness audits (fairaudit)")
    group.addoption("--fairaudit-seed", type=int, default=None, help="seed of fairaudit audits (default 0)")
    group.addoption("--fairaudit-draws", type=int, default=None, help="maximum draws per input for fairaudit audits")
    group.addoption("--fairaudit-confidence", type=float, default=None, help="confidence of fairaudit audits (default 0.95)")
    group.addoption("--fairaudit-json", default=None, metavar="DIR", help="write each fairaudit audit's JSON result into DIR")


def _testing_module():
    # Through sys.modules, not the package attribute: pytester's in-process runs restore
    # sys.modules afterwards, so the attribute may name a stale copy of the module.
    import importlib
    return importlib.import_module("fairaudit.testing")


def _defaults(config) -> dict:
    opt = config.getoption
    return {k: v for k, v in (("seed", opt("--fairaudit-seed")), ("draws", opt("--fairaudit-draws")),
                              ("confidence", opt("--fairaudit-confidence"))) if v is not None}


def pytest_configure(config):
    config.addinivalue_line("markers", "fairaudit: a fairness audit (fairaudit)")
    json_dir = config.getoption("--fairaudit-json")
    if json_dir:   # every audit of the session is saved, assert_fair's and parametrize_with_checks' too
        testing = _testing_module()
        config._fairaudit_saved_json = dict(testing.SESSION_JSON)
        testing.SESSION_JSON.clear()
        testing.SESSION_JSON["dir"] = str(Path(json_dir).resolve())
    defaults = _defaults(config)
    if defaults:   # parametrize_with_checks tests use them too
        testing = _testing_module()
        config._fairaudit_saved_defaults = dict(testing.SESSION_DEFAULTS)
        testing.SESSION_DEFAULTS.clear()
        testing.SESSION_DEFAULTS.update(defaults)


def pytest_unconfigure(config):
    saved_json = getattr(config, "_fairaudit_saved_json", None)
    if saved_json is not None:
        testing = _testing_module()
        testing.SESSION_JSON.clear()
        testing.SESSION_JSON.update(saved_json)
    saved = getattr(config, "_fairaudit_saved_defaults", None)
    if saved is not None:
        testing = _testing_module()
        testing.SESSION_DEFAULTS.clear()
        testing.SESSION_DEFAULTS.update(saved)


def pytest_collection_modifyitems(items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        if "fairaudit" in getattr(item, "fixturenames", ()) or (
                callspec is not None and type(callspec.params.get("check")).__name__ == "_CheckCallable"):
            item.add_marker("fairaudit")


class FairauditFixture:
    """What the ``fairaudit`` fixture returns."""

    def __init__(self, defaults: dict, json_dir: str | None, test_name: str):
        self.defaults = defaults
        self.json_dir = json_dir
        self.test_name = test_name
        self.results: list = []

    def _cfg(self, config: dict) -> dict:
        return {**self.defaults, **config}

    def _keep(self, result):
        self.results.append(result)      # its JSON is saved by fairaudit.testing (--fairaudit-json)

    def audit(self, allocator, checks=None, data=None, **config):
        from .testing import audit_allocator
        result = audit_allocator(allocator, checks=checks, data=data, **self._cfg(config))
        self._keep(result)
        return result

    def assert_fair(self, allocator, checks=None, data=None, **config):
        __tracebackhide__ = True
        from .testing import FairnessAssertionError, assert_fair
        try:
            result = assert_fair(allocator, checks=checks, data=data, **self._cfg(config))
        except FairnessAssertionError as e:
            if e.result is not None:
                self._keep(e.result)
            raise
        self._keep(result)
        return result


@pytest.fixture
def fairaudit(request) -> FairauditFixture:
    """Audit allocators inside a test: ``fairaudit.assert_fair(alloc, checks=[...], data=...)``."""
    return FairauditFixture(_defaults(request.config), request.config.getoption("--fairaudit-json"),
                            request.node.nodeid)
